// SPDX-License-Identifier: MIT
// The continuous-time DSM loss of score SDEs: score_sde's get_sde_loss_fn on the same draws (both
// weightings, both reductions), gradients by central differences, the likelihood weight g(t)^2,
// the analytic minimum at the exact score for VP and VE, perturbations, the score/eps identity and
// the eps_t range.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

#include <diffusion/backend/reference.hpp>
#include <diffusion/loss/likelihood_weight.hpp>
#include <diffusion/loss/sde_loss.hpp>
#include <diffusion/model/gaussian_mixture.hpp>
#include <diffusion/process/sde.hpp>
#include <diffusion/process/vp_discrete.hpp>
#include <diffusion/random/philox_noise.hpp>

#include "support/loss_harness.hpp"
#include "support/statistics.hpp"

namespace {

namespace dm = diffusion;
using tensor = dm::reference_tensor<double>;
using backend = dm::reference_backend<double>;
using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using namespace dm::test;  // the data, loops and sample_mean of loss_harness.hpp and statistics.hpp

static_assert(std::is_base_of_v<dm::denoising_loss<dm::vp_sde, dm::uniform_continuous_time, dm::score_param,
                                                   dm::sigma_squared_weight>,
                                dm::sde_dsm_loss<dm::vp_sde>>);
static_assert(dm::loss_weighting<dm::likelihood_weight, dm::vp_sde>);
static_assert(dm::loss_weighting<dm::likelihood_weight, dm::ve_sde>);
static_assert(!dm::loss_weighting<dm::likelihood_weight, dm::vp_discrete>);  // no g(t)

// Composite Simpson's rule with n (even) intervals.
template <class F>
double simpson(F f, double a, double b, std::size_t n) {
  const double h = (b - a) / static_cast<double>(n);
  double s = f(a) + f(b);
  for (std::size_t i = 1; i < n; ++i) s += (i % 2 ? 4.0 : 2.0) * f(a + h * static_cast<double>(i));
  return s * h / 3.0;
}

// score_sde losses.py get_sde_loss_fn on the drawn t and z, transcribed:
//   not likelihood_weighting: losses = reduce((score * std + z)^2)
//   likelihood_weighting:     losses = reduce((score + z / std)^2) * g(t)^2
// reduce = mean over elements (reduce_mean) or 0.5 * sum; loss = mean over the batch.
template <class Process>
double score_sde_loss(const Process& p, const dm::loss_batch<tensor>& batch, const tensor& score, bool likelihood,
                      bool reduce_mean) {
  const std::size_t B = batch.size(), D = dm::sample_size(score);
  double total = 0.0;
  for (std::size_t b = 0; b < B; ++b) {
    const double t = batch.t[b], std_t = p.sigma(t);
    double acc = 0.0;
    for (std::size_t j = 0; j < D; ++j) {
      const double z = batch.noise.data[b * D + j], s = score.data[b * D + j];
      const double e = likelihood ? s + z / std_t : s * std_t + z;
      acc += e * e;
    }
    double loss = reduce_mean ? acc / static_cast<double>(D) : 0.5 * acc;
    if (likelihood) loss *= p.diffusion(t) * p.diffusion(t);
    total += loss;
  }
  return total / static_cast<double>(B);
}

template <class Loss>
void check_against_score_sde(const Loss& loss, bool likelihood, bool reduce_mean) {
  backend be;
  const std::size_t B = 6, D = 4;
  const tensor x0 = normal_batch(B, D, 1, 0);
  tensor score = normal_batch(B, D, 1, 1), grad({B, D});
  dm::loss_batch batch(x0);
  dm::philox_noise noise(2);
  loss.draw(be, x0, noise, batch);
  const auto& p = loss.process();
  for (std::size_t b = 0; b < B; ++b) {
    const double t = batch.t[b];
    CHECK(t >= loss.eps_t());
    CHECK(t < 1.0);
    // score_sde: t = rand * (T - eps) + eps; x_t = mean + std z with mean = alpha x0.
    CHECK_THAT(t, WithinRel(batch.uniform[b] * (1.0 - loss.eps_t()) + loss.eps_t(), 1e-15));
    for (std::size_t j = 0; j < D; ++j) {
      const std::size_t i = b * D + j;
      CHECK_THAT(batch.x_t.data[i],
                 WithinRel(p.alpha(t) * x0.data[i] + p.sigma(t) * batch.noise.data[i], 1e-14) || WithinAbs(0.0, 1e-15));
    }
  }
  const double value = loss.evaluate(be, batch, score, grad);
  CHECK_THAT(value, WithinRel(score_sde_loss(p, batch, score, likelihood, reduce_mean), 1e-13));

  tensor probe = score;
  const double h = 1e-4;
  for (std::size_t i = 0; i < score.data.size(); ++i) {
    probe.data[i] = score.data[i] + h;
    const double up = loss.evaluate(be, batch, probe);
    probe.data[i] = score.data[i] - h;
    const double down = loss.evaluate(be, batch, probe);
    probe.data[i] = score.data[i];
    const double fd = (up - down) / (2.0 * h);
    INFO("element " << i << ", t = " << batch.t[i / D]);
    CHECK_THAT(grad.data[i], WithinRel(fd, 1e-7) || WithinAbs(fd, 1e-10 * std::abs(value)));
  }
}

}  // namespace

TEST_CASE("sde_dsm_loss is score_sde's get_sde_loss_fn on the same draws", "[loss][sde]") {
  const dm::sde_dsm_options half{};
  const dm::sde_dsm_options mean{.eps_t = 1e-3, .reduction = dm::loss_reduction::mean};
  CHECK(half.eps_t == 1e-5);
  CHECK(half.reduction == dm::loss_reduction::half_sum);
  SECTION("VP, sigma^2 weighting") {
    check_against_score_sde(dm::sde_dsm_loss{dm::vp_sde{}}, false, false);
    check_against_score_sde(dm::sde_dsm_loss{dm::vp_sde{}, dm::sigma_squared_weight{}, mean}, false, true);
  }
  SECTION("VP, likelihood weighting") {
    check_against_score_sde(dm::sde_dsm_loss{dm::vp_sde{}, dm::likelihood_weight{}}, true, false);
    check_against_score_sde(dm::sde_dsm_loss{dm::vp_sde{}, dm::likelihood_weight{}, mean}, true, true);
  }
  SECTION("sub-VP and VE") {
    check_against_score_sde(dm::sde_dsm_loss{dm::subvp_sde{}, dm::likelihood_weight{}}, true, false);
    check_against_score_sde(dm::sde_dsm_loss{dm::ve_sde{}}, false, false);
    check_against_score_sde(dm::sde_dsm_loss{dm::ve_sde{}, dm::likelihood_weight{}, mean}, true, true);
  }
}

TEST_CASE("likelihood_weight is g(t)^2 on the score error, converted for other targets", "[loss][sde]") {
  const dm::vp_sde vp;
  const dm::ve_sde ve(0.01, 50.0);
  const dm::likelihood_weight w;
  for (const double t : {1e-3, 0.3, 0.9}) {
    INFO("t = " << t);
    const double g = vp.diffusion(t), a = vp.alpha(t), s = vp.sigma(t);
    CHECK(w(vp, t, dm::parameterization::score) == g * g);
    CHECK_THAT(w(vp, t, dm::parameterization::eps), WithinRel(g * g / (s * s), 1e-14));
    // |x0_hat - x0| = (sigma/alpha) |eps_hat - eps|: the x0 weight is the eps weight (alpha/sigma)^2.
    CHECK_THAT(w(vp, t, dm::parameterization::x0), WithinRel(g * g / (s * s) * (a * a) / (s * s), 1e-13));
    // VE: g^2 = sigma^2 2 ln(sigma_max / sigma_min), so the eps weight is constant.
    CHECK_THAT(w(ve, t, dm::parameterization::score), WithinRel(ve.sigma(t) * ve.sigma(t) * 2.0 * std::log(5000.0), 1e-13));
    CHECK_THAT(w(ve, t, dm::parameterization::eps), WithinRel(2.0 * std::log(5000.0), 1e-13));
  }
}

TEST_CASE("sde_dsm_loss at the exact score reaches its analytic minimum; perturbations raise it", "[loss][sde]") {
  // Derivation (per element). x_t = a x0 + sigma eps, x0 ~ N(mu, s^2), eps ~ N(0, 1): (eps, x_t) is
  // jointly Gaussian with Var(x_t) = v = a^2 s^2 + sigma^2 and Cov(eps, x_t) = sigma. The target
  // y = -eps/sigma has E[y | x_t] = -(x_t - a mu)/v, the exact score, and conditional variance
  // Var(y | x_t) = Var(eps | x_t)/sigma^2 = (1 - sigma^2/v)/sigma^2 = a^2 s^2 / (sigma^2 v).
  // So the exact model's expected loss is r D E_t[lambda(t) a^2 s^2 / (sigma^2 v)]:
  //   lambda = sigma^2:  r D E_t[a^2 s^2 / (a^2 s^2 + sigma^2)]
  //   lambda = g^2:      r D E_t[(g^2/sigma^2) a^2 s^2 / (a^2 s^2 + sigma^2)]
  // with t ~ U(eps_t, 1), r = 1/2 (half sum) or 1/D (mean). For VE (a = 1, sigma = smin R^t,
  // g^2/sigma^2 = 2 ln R =: k) the likelihood case integrates in closed form:
  //   int dt / (1 + c e^{k t}) = t - ln(1 + c e^{k t}) / k,  c = smin^2 / s^2.
  // An offset delta on the score raises each sample's loss by lambda r (2 delta sum_j e_j + D delta^2),
  // whose first term has mean 0 (the exact residual has mean 0 given x_t).
  const double s2 = data_std * data_std;
  const double delta = 0.05;
  std::vector<double> exact, diff, residual;

  SECTION("VP, sigma^2 weighting, half sum") {
    const dm::vp_sde p;
    const dm::sde_dsm_loss loss{p};
    dm::gaussian_mixture_model<dm::vp_sde, dm::score_param> model(single_gaussian(), p);
    const double eps_t = loss.eps_t();
    const double expected = 0.5 * dim *
                            simpson([&](double t) {
                              const double a = p.alpha(t), s = p.sigma(t);
                              return a * a * s2 / (a * a * s2 + s * s);
                            }, eps_t, 1.0, 20000) / (1.0 - eps_t);
    exact_and_offset(loss, model, 20, 2000, 51, delta, 0.5, exact, diff, residual);
    const sample_mean m(exact);
    CHECK_THAT(m.mean, WithinAbs(expected, 5.0 * m.se));
    CHECK(m.se < 0.02 * expected);
  }
  SECTION("VE, likelihood weighting, mean over elements (closed form)") {
    const dm::ve_sde p(0.01, 50.0);
    const dm::sde_dsm_loss loss{p, dm::likelihood_weight{}, {.eps_t = 1e-5, .reduction = dm::loss_reduction::mean}};
    dm::gaussian_mixture_model<dm::ve_sde, dm::score_param> model(single_gaussian(), p);
    const double k = 2.0 * std::log(p.sigma_max() / p.sigma_min());
    const double c = p.sigma_min() * p.sigma_min() / s2;
    const auto antiderivative = [&](double t) { return t - std::log1p(c * std::exp(k * t)) / k; };
    const double eps_t = loss.eps_t();
    const double expected = k * (antiderivative(1.0) - antiderivative(eps_t)) / (1.0 - eps_t);
    // The quadrature of the same integrand agrees: the closed form is right.
    const double quadrature =
        simpson([&](double t) { return k * s2 / (s2 + p.sigma(t) * p.sigma(t)); }, eps_t, 1.0, 20000) / (1.0 - eps_t);
    REQUIRE_THAT(quadrature, WithinRel(expected, 1e-9));
    exact_and_offset(loss, model, 20, 2000, 52, delta, 1.0 / dim, exact, diff, residual);
    const sample_mean m(exact);
    CHECK_THAT(m.mean, WithinAbs(expected, 5.0 * m.se));
    CHECK(m.se < 0.02 * expected);
  }
  SECTION("VP, likelihood weighting, half sum, eps_t = 1e-3") {
    // g^2/sigma^2 ~ 1/t near 0: a heavier tail, hence the larger eps_t.
    const dm::vp_sde p;
    const dm::sde_dsm_loss loss{p, dm::likelihood_weight{}, {.eps_t = 1e-3}};
    dm::gaussian_mixture_model<dm::vp_sde, dm::score_param> model(single_gaussian(), p);
    const double eps_t = loss.eps_t();
    const double expected = 0.5 * dim *
                            simpson([&](double t) {
                              const double a = p.alpha(t), s = p.sigma(t), g = p.diffusion(t);
                              return g * g / (s * s) * a * a * s2 / (a * a * s2 + s * s);
                            }, eps_t, 1.0, 200000) / (1.0 - eps_t);
    exact_and_offset(loss, model, 20, 2000, 53, delta, 0.5, exact, diff, residual);
    const sample_mean m(exact);
    CHECK_THAT(m.mean, WithinAbs(expected, 5.0 * m.se));
    CHECK(m.se < 0.05 * expected);
  }
  const sample_mean d(diff);
  CHECK(d.mean > 10.0 * d.se);
  const sample_mean res(residual);
  CHECK_THAT(res.mean, WithinAbs(0.0, 5.0 * res.se));
}

TEST_CASE("sde_dsm_loss on a score equals the loss on the implied eps, per sample", "[loss][sde]") {
  // At fixed x_t, |s_hat - s|^2 = |eps_hat - eps|^2 / sigma^2 with eps_hat = -sigma s_hat, and the
  // weights are converted accordingly: sigma^2 on the score is 1 on eps, g^2 on the score is
  // g^2/sigma^2 on eps.
  const dm::vp_sde p;
  backend be;
  const std::size_t B = 200;
  const tensor x0 = normal_batch(B, dim, 61, 0);
  const tensor score = normal_batch(B, dim, 61, 1);
  tensor eps_hat({B, dim});
  const auto check = [&](const auto& score_loss, const auto& eps_loss) {
    dm::loss_batch bs(x0), be_(x0);
    dm::philox_noise n1(62), n2(62);
    score_loss.draw(be, x0, n1, bs);
    eps_loss.draw(be, x0, n2, be_);
    REQUIRE(bs.t == be_.t);
    for (std::size_t i = 0; i < eps_hat.data.size(); ++i) eps_hat.data[i] = -bs.sigma[i / dim] * score.data[i];
    (void)score_loss.evaluate(be, bs, score);
    (void)eps_loss.evaluate(be, be_, eps_hat);
    for (std::size_t b = 0; b < B; ++b) {
      INFO("sample " << b << ", t = " << bs.t[b]);
      CHECK_THAT(bs.sample_loss[b], WithinRel(be_.sample_loss[b], 1e-12));
    }
  };
  SECTION("sigma^2 weighting") {
    check(dm::sde_dsm_loss{p}, dm::sde_dsm_loss{p, dm::sigma_squared_weight{}, {}, dm::eps_param{}});
  }
  SECTION("likelihood weighting") {
    check(dm::sde_dsm_loss{p, dm::likelihood_weight{}}, dm::sde_dsm_loss{p, dm::likelihood_weight{}, {}, dm::eps_param{}});
  }
}

TEST_CASE("sde_dsm_loss rejects eps_t outside (0, T) with the parameter, value and range", "[loss][sde][errors]") {
  const double bad = GENERATE(0.0, -1e-5, 1.0, 1.5, std::numeric_limits<double>::quiet_NaN(),
                              std::numeric_limits<double>::infinity());
  CHECK_THROWS_AS(dm::sde_dsm_loss(dm::vp_sde{}, dm::sigma_squared_weight{}, {.eps_t = bad}), std::invalid_argument);
  CHECK_THROWS_WITH(dm::sde_dsm_loss(dm::ve_sde{}, dm::likelihood_weight{}, {.eps_t = bad}),
                    Contains("sde_dsm_loss") && Contains("eps_t") && Contains("(0, T) = (0, 1)"));
  CHECK_NOTHROW(dm::sde_dsm_loss(dm::vp_sde{}, dm::sigma_squared_weight{}, {.eps_t = 0.5}));
}
