// SPDX-License-Identifier: MIT
// The DDPM loss at the exact model: analytic minimum, perturbations, target identities, min-SNR
// and the distribution of the drawn timesteps. Statistical checks use fixed seeds and tolerances
// of 5 standard errors of the sample at hand.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include <diffusion/backend/reference.hpp>
#include <diffusion/loss/ddpm_loss.hpp>
#include <diffusion/model/gaussian_mixture.hpp>
#include <diffusion/process/vp_discrete.hpp>
#include <diffusion/random/philox_noise.hpp>

#include "support/loss_harness.hpp"
#include "support/statistics.hpp"

namespace {

namespace dm = diffusion;
using tensor = dm::reference_tensor<double>;
using backend = dm::reference_backend<double>;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using namespace dm::test;  // the data, loops and sample_mean of loss_harness.hpp and statistics.hpp

// Per-element residual variance of the exact eps predictor at (alpha, sigma) for N(mu, s^2 I) data.
//
// Derivation: x_t = a x0 + sigma eps with x0 ~ N(mu, s^2) and eps ~ N(0, 1) independent, so per
// element (eps, x_t) is jointly Gaussian with Var(x_t) = v = a^2 s^2 + sigma^2 and
// Cov(eps, x_t) = sigma. The exact predictor is the posterior mean E[eps | x_t] = sigma (x_t - a mu)/v,
// and its expected squared error is the posterior variance
//     E[(E[eps | x_t] - eps)^2] = Var(eps | x_t) = 1 - sigma^2 / v = a^2 s^2 / (a^2 s^2 + sigma^2).
// With t ~ U{0..T-1} and the per-sample mean over elements, the expected L_simple is the mean over
// t of this value (times lambda(t) when weighted).
double eps_residual(double a, double sigma) {
  const double as2 = a * a * data_std * data_std;
  return as2 / (as2 + sigma * sigma);
}

// Draws `batches` batches of `batch_size`, evaluates the exact `Param` model and collects every
// sample's loss.
template <class Loss, class Model>
std::vector<double> sample_losses(const Loss& loss, Model& model, std::size_t batches, std::size_t batch_size,
                                  std::uint64_t seed) {
  backend be;
  dm::philox_noise data_noise(seed, 0), loss_noise(seed, 1);
  tensor x0({batch_size, dim}), out({batch_size, dim}), grad({batch_size, dim});
  dm::loss_batch batch(x0);
  std::vector<double> all;
  for (std::size_t k = 0; k < batches; ++k) {
    model.mixture().sample(data_noise, x0);
    loss.draw(be, x0, loss_noise, batch);
    predict_per_sample(model, batch, out);
    const double value = loss.evaluate(be, batch, out, grad);
    double mean = 0.0;
    for (double l : batch.sample_loss) mean += l;
    REQUIRE_THAT(value, WithinRel(mean / static_cast<double>(batch_size), 1e-12));
    all.insert(all.end(), batch.sample_loss.begin(), batch.sample_loss.end());
  }
  return all;
}

}  // namespace

TEST_CASE("ddpm_eps_loss at the exact model reaches its analytic value", "[loss][ddpm]") {
  const auto process = dm::vp_discrete::linear();
  const std::size_t T = process.num_timesteps();
  dm::gaussian_mixture_model<dm::vp_discrete, dm::eps_param> model(single_gaussian(), process);

  SECTION("weight 1 (L_simple), mean over elements") {
    const dm::ddpm_eps_loss loss{process};
    double expected = 0.0;
    for (std::size_t t = 0; t < T; ++t) {
      const double td = static_cast<double>(t);
      expected += eps_residual(process.alpha(td), process.sigma(td));
    }
    expected /= static_cast<double>(T);
    const sample_mean m(sample_losses(loss, model, 20, 2000, 11));
    CHECK_THAT(m.mean, WithinAbs(expected, 5.0 * m.se));
    CHECK(m.se < 0.01 * expected);  // the check has teeth
  }

  SECTION("sum over elements is D times the mean") {
    const dm::ddpm_eps_loss loss{process, dm::unit_weight{}, {.reduction = dm::loss_reduction::sum}};
    double expected = 0.0;
    for (std::size_t t = 0; t < T; ++t) {
      const double td = static_cast<double>(t);
      expected += static_cast<double>(dim) * eps_residual(process.alpha(td), process.sigma(td));
    }
    expected /= static_cast<double>(T);
    const sample_mean m(sample_losses(loss, model, 20, 2000, 12));
    CHECK_THAT(m.mean, WithinAbs(expected, 5.0 * m.se));
  }

  SECTION("min-SNR-5 weighting gives the weighted mean") {
    const dm::ddpm_eps_loss loss{process, dm::min_snr_weight{5.0}};
    double expected = 0.0;
    for (std::size_t t = 0; t < T; ++t) {
      const double td = static_cast<double>(t);
      const double snr = process.alpha_bar(td) / (1.0 - process.alpha_bar(td));
      expected += std::min(snr, 5.0) / snr * eps_residual(process.alpha(td), process.sigma(td));
    }
    expected /= static_cast<double>(T);
    const sample_mean m(sample_losses(loss, model, 20, 2000, 13));
    CHECK_THAT(m.mean, WithinAbs(expected, 5.0 * m.se));
    CHECK(m.se < 0.01 * expected);
  }
}

TEST_CASE("ddpm_eps_loss: perturbing the exact model raises the loss", "[loss][ddpm]") {
  const auto process = dm::vp_discrete::linear();
  dm::gaussian_mixture_model<dm::vp_discrete, dm::eps_param> model(single_gaussian(), process);
  const dm::ddpm_eps_loss loss{process};
  backend be;
  dm::philox_noise data_noise(21, 0), loss_noise(21, 1);
  const std::size_t B = 2000;
  tensor x0({B, dim}), out({B, dim}), moved({B, dim});
  dm::loss_batch batch(x0);
  std::vector<double> offset_diff, scale_diff;  // paired differences, same draws
  const double delta = 0.25, c = 0.1;
  for (int k = 0; k < 20; ++k) {
    model.mixture().sample(data_noise, x0);
    loss.draw(be, x0, loss_noise, batch);
    predict_per_sample(model, batch, out);
    (void)loss.evaluate(be, batch, out);
    const std::vector<double> exact = batch.sample_loss;

    // A constant offset: E[(e + delta)^2] - E[e^2] = delta^2, since the exact residual has mean 0.
    for (std::size_t i = 0; i < out.data.size(); ++i) moved.data[i] = out.data[i] + delta;
    (void)loss.evaluate(be, batch, moved);
    for (std::size_t b = 0; b < B; ++b) offset_diff.push_back(batch.sample_loss[b] - exact[b]);

    // Scaling by (1 + c): the increase is c^2 |eps_hat|^2 / D + 2 c eps_hat . (eps_hat - eps) / D,
    // and the second term has mean 0 (the exact residual is orthogonal to any function of x_t).
    for (std::size_t i = 0; i < out.data.size(); ++i) moved.data[i] = (1.0 + c) * out.data[i];
    (void)loss.evaluate(be, batch, moved);
    for (std::size_t b = 0; b < B; ++b) {
      double norm2 = 0.0;
      for (std::size_t j = 0; j < dim; ++j) norm2 += out.data[b * dim + j] * out.data[b * dim + j];
      scale_diff.push_back(batch.sample_loss[b] - exact[b] - c * c * norm2 / static_cast<double>(dim));
    }
  }
  const sample_mean off(offset_diff);
  CHECK(off.mean > 0.0);
  CHECK_THAT(off.mean, WithinAbs(delta * delta, 5.0 * off.se));
  CHECK(off.se < 0.05 * delta * delta);
  const sample_mean sc(scale_diff);
  CHECK_THAT(sc.mean, WithinAbs(0.0, 5.0 * sc.se));
}

TEST_CASE("ddpm_loss: x0 and v targets at their exact models relate to the eps loss", "[loss][ddpm]") {
  const auto process = dm::vp_discrete::linear();
  const dm::gaussian_mixture data = single_gaussian();
  dm::gaussian_mixture_model<dm::vp_discrete, dm::eps_param> eps_model(data, process);
  dm::gaussian_mixture_model<dm::vp_discrete, dm::x0_param> x0_model(data, process);
  dm::gaussian_mixture_model<dm::vp_discrete, dm::v_param> v_model(data, process);
  const std::size_t B = 2000;
  tensor x0({B, dim});

  SECTION("per sample: x0 error = (sigma/alpha) eps error, v error = eps error / alpha (VP)") {
    const dm::ddpm_eps_loss eps_loss{process};
    const dm::ddpm_loss x0_loss{process, dm::x0_param{}};
    const dm::ddpm_loss v_loss{process, dm::v_param{}};
    dm::philox_noise data_noise(31, 0);
    data.sample(data_noise, x0);
    // Same seed for the three losses: the same t and eps.
    dm::loss_batch b_eps(x0), b_x0(x0), b_v(x0);
    (void)exact_model_loss(eps_loss, eps_model, x0, 32, b_eps);
    (void)exact_model_loss(x0_loss, x0_model, x0, 32, b_x0);
    (void)exact_model_loss(v_loss, v_model, x0, 32, b_v);
    REQUIRE(b_eps.t == b_x0.t);
    REQUIRE(b_eps.t == b_v.t);
    for (std::size_t b = 0; b < B; ++b) {
      const double abar = process.alpha_bar(b_eps.t[b]);
      CHECK_THAT(b_x0.sample_loss[b], WithinRel((1.0 - abar) / abar * b_eps.sample_loss[b], 1e-9));
      CHECK_THAT(b_v.sample_loss[b], WithinRel(b_eps.sample_loss[b] / abar, 1e-9));
    }
  }

  SECTION("Monte Carlo: the exact x0 model's loss is E_t[s^2 sigma^2 / (a^2 s^2 + sigma^2)]") {
    const dm::ddpm_loss x0_loss{process, dm::x0_param{}};
    double expected = 0.0;
    for (std::size_t t = 0; t < process.num_timesteps(); ++t) {
      const double td = static_cast<double>(t), a = process.alpha(td), s = process.sigma(td);
      expected += (s * s) / (a * a) * eps_residual(a, s);
    }
    expected /= static_cast<double>(process.num_timesteps());
    const sample_mean m(sample_losses(x0_loss, x0_model, 20, 2000, 33));
    CHECK_THAT(m.mean, WithinAbs(expected, 5.0 * m.se));
    CHECK(m.se < 0.01 * expected);
  }
}

TEST_CASE("min-SNR weighting makes eps, x0 and v losses the same objective", "[loss][ddpm][min_snr]") {
  const auto process = dm::vp_discrete::linear();
  const dm::gaussian_mixture data = single_gaussian();
  dm::gaussian_mixture_model<dm::vp_discrete, dm::eps_param> eps_model(data, process);
  dm::gaussian_mixture_model<dm::vp_discrete, dm::x0_param> x0_model(data, process);
  dm::gaussian_mixture_model<dm::vp_discrete, dm::v_param> v_model(data, process);
  const double gamma = GENERATE(1.0, 5.0);
  const dm::min_snr_weight w{gamma};
  const dm::ddpm_eps_loss eps_loss{process, w};
  const dm::ddpm_loss x0_loss{process, dm::x0_param{}, w};
  const dm::ddpm_loss v_loss{process, dm::v_param{}, w};

  // The published weights (Hang et al. 2023; diffusers' snr_gamma), at every timestep.
  for (std::size_t t = 0; t < process.num_timesteps(); ++t) {
    const double td = static_cast<double>(t);
    const double snr = process.alpha_bar(td) / (1.0 - process.alpha_bar(td));
    CHECK_THAT(eps_loss.weight(td), WithinRel(std::min(snr, gamma) / snr, 1e-12));
    CHECK_THAT(x0_loss.weight(td), WithinRel(std::min(snr, gamma), 1e-12));
    CHECK_THAT(v_loss.weight(td), WithinRel(std::min(snr, gamma) / (snr + 1.0), 1e-12));
  }

  // At the exact models the weighted per-sample losses coincide for the same draw.
  const std::size_t B = 500;
  tensor x0({B, dim});
  dm::philox_noise data_noise(41, 0);
  data.sample(data_noise, x0);
  dm::loss_batch b_eps(x0), b_x0(x0), b_v(x0);
  const double l_eps = exact_model_loss(eps_loss, eps_model, x0, 42, b_eps);
  const double l_x0 = exact_model_loss(x0_loss, x0_model, x0, 42, b_x0);
  const double l_v = exact_model_loss(v_loss, v_model, x0, 42, b_v);
  for (std::size_t b = 0; b < B; ++b) {
    CHECK_THAT(b_x0.sample_loss[b], WithinRel(b_eps.sample_loss[b], 1e-9));
    CHECK_THAT(b_v.sample_loss[b], WithinRel(b_eps.sample_loss[b], 1e-9));
  }
  CHECK_THAT(l_x0, WithinRel(l_eps, 1e-9));
  CHECK_THAT(l_v, WithinRel(l_eps, 1e-9));
}

TEST_CASE("ddpm_eps_loss draws integer timesteps uniform on {0..T-1}", "[loss][ddpm][time]") {
  const std::size_t T = GENERATE(std::size_t{10}, std::size_t{1000});
  const auto process = dm::vp_discrete::linear(1e-4, 0.02, T);
  const dm::ddpm_eps_loss loss{process};
  backend be;
  const std::size_t N = 1000000;
  tensor x0({N, 1});
  dm::loss_batch batch(x0);
  dm::philox_noise noise(51);
  loss.draw(be, x0, noise, batch);

  std::vector<double> counts(T, 0.0);
  double sum = 0.0;
  bool all_valid = true;
  for (double t : batch.t) {
    all_valid = all_valid && t == std::floor(t) && t >= 0.0 && t <= static_cast<double>(T - 1);
    if (!all_valid) break;
    counts[static_cast<std::size_t>(t)] += 1.0;
    sum += t;
  }
  REQUIRE(all_valid);
  // Both ends are reached (each is expected N/T >= 1000 times).
  CHECK(counts.front() > 0.0);
  CHECK(counts.back() > 0.0);
  const double n = static_cast<double>(N), tt = static_cast<double>(T);
  // Pearson's chi-square over T cells: mean T - 1, variance 2 (T - 1) under uniformity.
  const double expected_count = n / tt;
  double chi2 = 0.0;
  for (double c : counts) chi2 += (c - expected_count) * (c - expected_count) / expected_count;
  CHECK(chi2 < (tt - 1.0) + 5.0 * std::sqrt(2.0 * (tt - 1.0)));
  CHECK(chi2 > (tt - 1.0) - 5.0 * std::sqrt(2.0 * (tt - 1.0)));
  // Mean (T - 1)/2 and variance (T^2 - 1)/12 of the discrete uniform.
  const double mean = sum / n;
  const double var_expected = (tt * tt - 1.0) / 12.0;
  CHECK_THAT(mean, WithinAbs((tt - 1.0) / 2.0, 5.0 * std::sqrt(var_expected / n)));
  double ss = 0.0;
  for (double t : batch.t) ss += (t - mean) * (t - mean);
  // Var of (t - mu)^2 for a uniform of width T is about T^4/180.
  CHECK_THAT(ss / (n - 1.0), WithinAbs(var_expected, 5.0 * tt * tt / std::sqrt(180.0 * n)));
}

TEST_CASE("ddpm_eps_loss with per-sample streams is batch-size invariant", "[loss][ddpm]") {
  const auto process = dm::vp_discrete::linear();
  const dm::ddpm_eps_loss loss{process};
  backend be;
  tensor small({4, dim}), large({9, dim});
  for (std::size_t i = 0; i < small.data.size(); ++i) small.data[i] = 0.1 * static_cast<double>(i);
  for (std::size_t i = 0; i < large.data.size(); ++i) large.data[i] = 0.1 * static_cast<double>(i);
  dm::loss_batch bs(small), bl(large);
  dm::philox_noise ns(61, 100, true), nl(61, 100, true);
  loss.draw(be, small, ns, bs);
  loss.draw(be, large, nl, bl);
  for (std::size_t b = 0; b < 4; ++b) CHECK(bs.t[b] == bl.t[b]);
  for (std::size_t i = 0; i < small.data.size(); ++i) {
    CHECK(bs.noise.data[i] == bl.noise.data[i]);
    CHECK(bs.x_t.data[i] == bl.x_t.data[i]);
  }
}
