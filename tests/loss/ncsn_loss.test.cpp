// SPDX-License-Identifier: MIT
// The NCSN loss: ncsnv2's anneal_dsm_score_estimation on the same draws, gradients by central
// differences, the analytic minimum at the exact score, perturbations, the identity with the eps
// loss, the level distribution and the options.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include <diffusion/backend/reference.hpp>
#include <diffusion/loss/ncsn_loss.hpp>
#include <diffusion/model/gaussian_mixture.hpp>
#include <diffusion/process/ve_discrete.hpp>
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

static_assert(std::is_base_of_v<dm::denoising_loss<dm::ve_discrete, dm::uniform_discrete_time, dm::score_param,
                                                   dm::sigma_squared_weight>,
                                dm::ncsn_loss<dm::ve_discrete>>);
static_assert(dm::ncsn_loss<dm::ve_discrete>::target == dm::parameterization::score);
static_assert(dm::ncsn_loss<dm::ve_discrete, dm::eps_param>::target == dm::parameterization::eps);

dm::ve_discrete levels() { return dm::ve_discrete::geometric(10.0, 0.01, 20); }

}  // namespace

TEST_CASE("ncsn_loss is ncsnv2's anneal_dsm_score_estimation on the same draws", "[loss][ncsn]") {
  const dm::ve_discrete process = levels();
  const dm::ncsn_loss loss{process};
  CHECK(loss.options().reduction == dm::loss_reduction::half_sum);
  backend be;
  const std::size_t B = 6, D = 4;
  const tensor x0 = normal_batch(B, D, 1, 0);
  tensor scores = normal_batch(B, D, 1, 1), grad({B, D});
  dm::loss_batch batch(x0);
  dm::philox_noise noise(2);
  loss.draw(be, x0, noise, batch);
  const double value = loss.evaluate(be, batch, scores, grad);

  // ncsnv2 losses/dsm.py, anneal_dsm_score_estimation (anneal_power = 2), transcribed:
  //   noise = randn * used_sigmas; perturbed = samples + noise; target = -1/used_sigmas^2 * noise;
  //   loss = 1/2 ((scores - target)^2).sum(-1) * used_sigmas^2; loss.mean(0).
  double want = 0.0;
  for (std::size_t b = 0; b < B; ++b) {
    const double t = batch.t[b];
    REQUIRE(t == std::floor(t));
    REQUIRE(t >= 0.0);
    REQUIRE(t <= 19.0);
    const double sigma = process.sigmas()[static_cast<std::size_t>(t)];
    double sq = 0.0;
    for (std::size_t j = 0; j < D; ++j) {
      const std::size_t i = b * D + j;
      const double scaled_noise = batch.noise.data[i] * sigma;
      CHECK_THAT(batch.x_t.data[i], WithinRel(x0.data[i] + scaled_noise, 1e-15) || WithinAbs(0.0, 1e-15));
      const double target = -1.0 / (sigma * sigma) * scaled_noise;
      CHECK_THAT(batch.target.data[i], WithinRel(target, 1e-14));
      sq += (scores.data[i] - target) * (scores.data[i] - target);
    }
    want += 0.5 * sq * sigma * sigma;
  }
  want /= static_cast<double>(B);
  CHECK_THAT(value, WithinRel(want, 1e-13));

  // Quadratic in the output: central differences are exact up to rounding.
  tensor probe = scores;
  const double h = 1e-4;
  for (std::size_t i = 0; i < scores.data.size(); ++i) {
    probe.data[i] = scores.data[i] + h;
    const double up = loss.evaluate(be, batch, probe);
    probe.data[i] = scores.data[i] - h;
    const double down = loss.evaluate(be, batch, probe);
    probe.data[i] = scores.data[i];
    const double fd = (up - down) / (2.0 * h);
    INFO("element " << i << ", level " << batch.t[i / D]);
    CHECK_THAT(grad.data[i], WithinRel(fd, 1e-7) || WithinAbs(fd, 1e-10 * std::abs(value)));
  }
}

TEST_CASE("ncsn_loss draws every level with probability 1/L", "[loss][ncsn]") {
  const dm::ve_discrete process = levels();
  const dm::ncsn_loss loss{process};
  backend be;
  const std::size_t B = 20000, L = process.num_levels();
  const tensor x0({B, 1});
  dm::loss_batch batch(x0);
  dm::philox_noise noise(3);
  loss.draw(be, x0, noise, batch);
  std::vector<double> count(L, 0.0);
  for (double t : batch.t) count[static_cast<std::size_t>(t)] += 1.0;
  const double p = 1.0 / static_cast<double>(L);
  for (std::size_t l = 0; l < L; ++l) {
    INFO("level " << l);
    CHECK_THAT(count[l] / B, WithinAbs(p, 5.0 * std::sqrt(p * (1 - p) / B)));
  }
}

TEST_CASE("ncsn_loss at the exact score reaches its analytic minimum; perturbations raise it", "[loss][ncsn]") {
  // Derivation. Per element, x_t = x0 + sigma eps with x0 ~ N(mu, s^2), eps ~ N(0, 1) independent,
  // so (eps, x_t) is jointly Gaussian with Var(x_t) = v = s^2 + sigma^2 and Cov(eps, x_t) = sigma.
  // The score target is y = -eps/sigma; the loss-minimising output at x_t is E[y | x_t] = -E[eps |
  // x_t]/sigma = -(x_t - mu)/v, the exact score of p_sigma, and the remaining expected squared
  // error is Var(y | x_t) = Var(eps | x_t)/sigma^2 = (1 - sigma^2/v)/sigma^2. With the weight
  // sigma^2 that is 1 - sigma^2/v = s^2/(s^2 + sigma^2) per element, the same as the eps loss at
  // its optimum. The half-sum over D elements and the uniform level give
  //     E[loss] = (D/2) (1/L) sum_i s^2 / (s^2 + sigma_i^2).
  const dm::ve_discrete process = levels();
  const dm::ncsn_loss loss{process};
  dm::gaussian_mixture_model<dm::ve_discrete, dm::score_param> model(single_gaussian(), process);
  double expected = 0.0;
  for (double sigma : process.sigmas()) expected += data_std * data_std / (data_std * data_std + sigma * sigma);
  expected *= 0.5 * static_cast<double>(dim) / static_cast<double>(process.num_levels());

  // A constant offset delta on the score: per sample the loss grows by
  // sigma^2 (1/2) (2 delta sum_j e_j + D delta^2), and the first term has mean 0 because the
  // exact residual e has mean 0 given x_t. So diff - sigma^2 D delta^2 / 2 has mean 0.
  std::vector<double> exact_losses, offset_diff, offset_residual;
  const double delta = 0.05;
  exact_and_offset(loss, model, 20, 2000, 31, delta, 0.5, exact_losses, offset_diff, offset_residual);
  const sample_mean m(exact_losses);
  CHECK_THAT(m.mean, WithinAbs(expected, 5.0 * m.se));
  CHECK(m.se < 0.02 * expected);  // the check has teeth
  const sample_mean diff(offset_diff);
  CHECK(diff.mean > 10.0 * diff.se);
  const sample_mean res(offset_residual);
  CHECK_THAT(res.mean, WithinAbs(0.0, 5.0 * res.se));
}

TEST_CASE("ncsn_loss with lambda = sigma^2 is (D/2) times the eps loss on the same draws, per sample",
          "[loss][ncsn]") {
  // sigma^2 (1/2) sum_j (s_j + eps_j/sigma)^2 = (1/2) sum_j (-sigma s_j - eps_j)^2 = (D/2) * mean_j
  // (eps_hat_j - eps_j)^2 with eps_hat = -sigma s: the same draws (t, eps) give per-sample losses in
  // the ratio D/2 (DESIGN.md, "All three losses are the same denoising objective").
  const dm::ve_discrete process = levels();
  const std::size_t L = process.num_levels();
  const dm::ncsn_loss ncsn{process};
  const dm::denoising_loss eps_loss{process, dm::uniform_discrete_time(0, L - 1), dm::eps_param{}, dm::unit_weight{}};
  const dm::ncsn_loss ncsn_eps{process, dm::eps_param{}};  // the NCSN objective on an eps network
  dm::gaussian_mixture_model<dm::ve_discrete, dm::score_param> score_model(single_gaussian(), process);
  dm::gaussian_mixture_model<dm::ve_discrete, dm::eps_param> eps_model(single_gaussian(), process);
  backend be;
  const std::size_t B = 500;
  tensor x0({B, dim}), score({B, dim}), eps_hat({B, dim}), eps_exact({B, dim});
  dm::philox_noise data(41, 0);
  single_gaussian().sample(data, x0);
  dm::loss_batch b_ncsn(x0), b_eps(x0), b_ncsn_eps(x0);
  dm::philox_noise n1(42), n2(42), n3(42);
  ncsn.draw(be, x0, n1, b_ncsn);
  eps_loss.draw(be, x0, n2, b_eps);
  ncsn_eps.draw(be, x0, n3, b_ncsn_eps);
  REQUIRE(b_ncsn.t == b_eps.t);
  REQUIRE(b_ncsn.noise.data == b_eps.noise.data);

  predict_per_sample(score_model, b_ncsn, score);
  predict_per_sample(eps_model, b_eps, eps_exact);
  for (std::size_t i = 0; i < score.data.size(); ++i) eps_hat.data[i] = -b_ncsn.sigma[i / dim] * score.data[i];
  const double v_ncsn = ncsn.evaluate(be, b_ncsn, score);
  const std::vector<double> l_ncsn = b_ncsn.sample_loss;
  const double v_eps = eps_loss.evaluate(be, b_eps, eps_hat);
  const double half_d = 0.5 * static_cast<double>(dim);
  for (std::size_t b = 0; b < B; ++b) {
    INFO("sample " << b << ", level " << b_ncsn.t[b]);
    CHECK_THAT(l_ncsn[b], WithinRel(half_d * b_eps.sample_loss[b], 1e-12));
  }
  CHECK_THAT(v_ncsn, WithinRel(half_d * v_eps, 1e-12));

  // The exact eps model's own output (not derived from the score) gives the same per-sample losses,
  // on the eps loss and on ncsn_loss with an eps target (weight 1 on eps, half sum).
  (void)eps_loss.evaluate(be, b_eps, eps_exact);
  (void)ncsn_eps.evaluate(be, b_ncsn_eps, eps_exact);
  for (std::size_t b = 0; b < B; ++b) {
    INFO("sample " << b << ", level " << b_ncsn.t[b]);
    CHECK_THAT(l_ncsn[b], WithinRel(half_d * b_eps.sample_loss[b], 1e-12));
    CHECK_THAT(l_ncsn[b], WithinRel(b_ncsn_eps.sample_loss[b], 1e-12));
    CHECK(b_ncsn_eps.weight[b] == 1.0);
  }
}

TEST_CASE("ncsn_loss options and bad input", "[loss][ncsn][errors]") {
  const dm::ve_discrete process = levels();
  backend be;
  const tensor x0 = normal_batch(4, 5, 5, 0);
  SECTION("a mean reduction is (2/D) times the default half sum") {
    const dm::ncsn_loss half{process};
    const dm::ncsn_loss mean{process, dm::score_param{}, {.reduction = dm::loss_reduction::mean}};
    dm::loss_batch b1(x0), b2(x0);
    dm::philox_noise n1(6), n2(6);
    half.draw(be, x0, n1, b1);
    mean.draw(be, x0, n2, b2);
    const tensor out = normal_batch(4, 5, 5, 1);
    CHECK_THAT(mean.evaluate(be, b2, out), WithinRel(half.evaluate(be, b1, out) * 2.0 / 5.0, 1e-14));
  }
  SECTION("levels outside the process are rejected with the index and the range") {
    const dm::ncsn_loss loss{process};
    dm::loss_batch batch(x0);
    batch.noise = normal_batch(4, 5, 5, 2);
    batch.t = {0.0, 19.0, 20.0, 3.0};
    CHECK_THROWS_WITH(loss.perturb(be, x0, batch), Catch::Matchers::Contains("20") && Catch::Matchers::Contains("[0, 19]"));
    batch.t = {0.0, 1.5, 2.0, 3.0};
    CHECK_THROWS_AS(loss.perturb(be, x0, batch), std::invalid_argument);
  }
}
