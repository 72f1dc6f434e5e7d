// SPDX-License-Identifier: MIT
// The probability-flow log-likelihood against the exact log-density of mixture data at t = eps,
// and the Hutchinson estimate against the exact divergence.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include <diffusion/core.hpp>
#include <diffusion/likelihood/divergence.hpp>
#include <diffusion/likelihood/log_likelihood.hpp>
#include <diffusion/process/sde.hpp>

#include "support/counting_model.hpp"
#include "support/mixture_fixture.hpp"

using namespace diffusion;
using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using tensor_d = reference_tensor<double>;

namespace {

using test::counting_model;

// Counts model calls, and forwards and counts the exact divergence.
template <class Model>
struct counting_divergence_model : counting_model<Model> {
  std::size_t divergence_calls = 0;
  template <class T>
  void score_divergence(const T& x, double t, std::span<double> out) {
    ++divergence_calls;
    this->inner.score_divergence(x, t, out);
  }
};

// The model without its exact divergence: only the Hutchinson overload accepts it.
template <class Model>
struct black_box {
  using parameterization = typename Model::parameterization;
  Model& inner;
  template <class T>
  void operator()(const T& x, double t, T& out) {
    inner(x, t, out);
  }
};

// n exact samples of p_eps: x = alpha(eps) x0 + sigma(eps) z with x0 from the mixture.
template <class Process>
tensor_d perturbed_data(const Process& p, double eps, std::size_t n, std::uint64_t seed) {
  tensor_d x({n, 2}), z({n, 2});
  philox_noise noise(seed);
  test::golden_mixture().sample(noise, x);
  noise.fill_normal(std::span<double>(z.data), n);
  const double a = p.alpha(eps), s = p.sigma(eps);
  for (std::size_t i = 0; i < x.data.size(); ++i) x.data[i] = a * x.data[i] + s * z.data[i];
  return x;
}

std::span<const double> row(const tensor_d& x, std::size_t b) { return {x.data.data() + 2 * b, 2}; }

// Checks a likelihood solve against log p_eps of the mixture, sample by sample.
//
// Two errors separate the result from the exact log p_eps(x):
// - the prior mismatch: the solve ends at x_T ~ p_T and scores it with N(0, prior_std^2 I), which
//   only approximates p_T; measured exactly per sample as m_b = log N(x_T) - log p_T(x_T) with the
//   mixture's own p_T (for VP alpha(1) = 0.0066, so the means alpha mu_k are within 0.017 of 0);
// - the ODE error. The controller accepts a step when the RMS over all N state and log-density
//   entries of err / (atol + rtol |y|) is below 1, so one entry's local error is at most
//   sqrt(N) (atol + rtol |y|); summed over the accepted steps that gives the allowance
//   accepted_steps sqrt(N) (atol + rtol max|delta_b|), taking |y| <= max|delta_b| for the
//   log-density entries. This ignores the growth of earlier errors (the state's error reaches the
//   integral through div f~), so it is an estimate rather than a bound; measured, the errors stay
//   2-3x inside it at tolerance 1e-5 and 300x inside at 1e-9.
template <class Process>
void check_against_exact(const Process& p, double tol, std::size_t n, std::uint64_t seed) {
  const auto mixture = test::golden_mixture();
  gaussian_mixture_model<Process, score_param> inner(mixture, p);
  counting_divergence_model<decltype(inner)> model{{inner}};
  reference_backend<double> be;
  const double eps = 1e-5;
  const tensor_d x = perturbed_data(p, eps, n, seed);
  const auto r = log_likelihood(p, model, be, x, {.rtol = tol, .atol = tol, .eps = eps});

  REQUIRE(r.log_density.size() == n);
  CHECK(model.calls == r.report.model_calls);
  CHECK(model.divergence_calls == r.report.function_evaluations);
  CHECK(r.report.model_calls == r.report.function_evaluations);
  CHECK(r.report.function_evaluations == 2 + 6 * (r.report.accepted_steps + r.report.rejected_steps));

  double max_delta = 0.0;
  for (double d : r.delta_log_density) max_delta = std::max(max_delta, std::abs(d));
  const double entries = static_cast<double>(x.data.size() + n);
  const double ode_allowance = static_cast<double>(r.report.accepted_steps) * std::sqrt(entries) * (tol + tol * max_delta);

  double worst = 0.0, worst_corrected = 0.0, worst_mismatch = 0.0;
  for (std::size_t b = 0; b < n; ++b) {
    const double exact = mixture.log_density(row(x, b), p.alpha(eps), p.sigma(eps));
    const double exact_prior = mixture.log_density(row(r.latent, b), p.alpha(1.0), p.sigma(1.0));
    const double mismatch = r.prior_log_density[b] - exact_prior;
    const double corrected = r.log_density[b] - mismatch;
    worst = std::max(worst, std::abs(r.log_density[b] - exact));
    worst_corrected = std::max(worst_corrected, std::abs(corrected - exact));
    worst_mismatch = std::max(worst_mismatch, std::abs(mismatch));
    CHECK_THAT(r.log_density[b], WithinAbs(exact, std::abs(mismatch) + ode_allowance));
    CHECK_THAT(corrected, WithinAbs(exact, ode_allowance));
    CHECK_THAT(r.bits_per_dim[b], WithinRel(-r.log_density[b] / (2.0 * std::numbers::ln2), 1e-15));
  }
  INFO("tolerance " << tol << ": " << r.report.accepted_steps << " accepted, " << r.report.rejected_steps
                    << " rejected, " << r.report.model_calls << " model calls; max |error| " << worst
                    << ", without the prior mismatch " << worst_corrected << ", ODE allowance " << ode_allowance
                    << ", max |prior mismatch| " << worst_mismatch);
  CHECK(worst_corrected < ode_allowance);
  // |m_b| <= max_k |x_T . alpha(1) mu_k| / v + O(alpha^2 |mu|^2) with v the component variance at T:
  // for VP alpha(1) |mu_k| <= 0.017 and v ~ 1, for VE |mu_k| / v <= 0.001 with |x_T| ~ 50, so a
  // few hundredths at typical |x_T| (measured: 0.009 VP and sub-VP, 0.03 VE).
  CHECK(worst_mismatch < 0.1);
}

}  // namespace

TEST_CASE("gaussian_mixture::score_divergence is the trace of the score's Jacobian", "[likelihood][model]") {
  const auto mixture = test::golden_mixture();
  std::vector<double> r(3), up(2), down(2);
  const double h = 1e-5;
  for (const auto& [alpha, sigma] : std::vector<std::pair<double, double>>{{1.0, 0.01}, {0.8, 0.6}, {0.05, 0.999}}) {
    for (const std::vector<double>& x : {std::vector<double>{-2.1, 0.2}, {0.5, -1.0}, {1.0, 0.4}, {0.0, 0.0}}) {
      double fd = 0.0;
      for (std::size_t d = 0; d < 2; ++d) {
        std::vector<double> xp = x, xm = x;
        xp[d] += h;
        xm[d] -= h;
        mixture.score(xp, alpha, sigma, r, up);
        mixture.score(xm, alpha, sigma, r, down);
        fd += (up[d] - down[d]) / (2 * h);
      }
      const double exact = mixture.score_divergence(x, alpha, sigma, r);
      INFO("alpha " << alpha << ", sigma " << sigma << ", x (" << x[0] << ", " << x[1] << ")");
      // Central differences: truncation (h/0.3)^2 |score'''| and rounding 1e-16 |score| / h, both
      // far below 1e-4 relative at these points (|score'| <= 1/sigma^2 = 1e4 at sigma = 0.01).
      CHECK_THAT(exact, WithinRel(fd, 1e-6) || WithinAbs(fd, 1e-6));
    }
  }
  SECTION("the model's per-sample divergence is the mixture's") {
    const vp_sde p;
    gaussian_mixture_model<vp_sde> model(mixture, p);  // eps_param: the divergence is still the score's
    const tensor_d x({2, 2}, {-2.1, 0.2, 0.5, -1.0});
    std::vector<double> out(2);
    model.score_divergence(x, 0.3, out);
    for (std::size_t b = 0; b < 2; ++b)
      CHECK(out[b] == mixture.score_divergence(row(x, b), p.alpha(0.3), p.sigma(0.3), r));
    std::vector<double> wrong(3);
    CHECK_THROWS_WITH(model.score_divergence(x, 0.3, wrong), Contains("out.size()") && Contains("2"));
  }
}

TEST_CASE("with the exact divergence, the likelihood is the exact log-density at eps", "[likelihood]") {
  // 256 exact samples of p_eps; the default tolerance of score_sde and a tight one, where the
  // remaining error is the prior mismatch alone.
  const double tol = GENERATE(1e-5, 1e-9);
  SECTION("VP") { check_against_exact(vp_sde(), tol, 256, 1); }
  SECTION("sub-VP") { check_against_exact(subvp_sde(), tol, 256, 2); }
  SECTION("VE") { check_against_exact(ve_sde(0.01, 50.0), tol, 256, 3); }
}

// v^T (Hessian of log p_t) v for the mixture, in closed form:
// H = sum_k r_k (g_k g_k^T - diag(1/v_k)) - score score^T, g_k = (alpha mu_k - x)/v_k.
double exact_vhv(const gaussian_mixture& m, std::span<const double> x, std::span<const double> v, double alpha,
                 double sigma) {
  std::vector<double> r(m.components()), score(m.dim());
  m.score(x, alpha, sigma, r, score);
  double total = 0.0, sv = 0.0;
  for (std::size_t k = 0; k < m.components(); ++k) {
    double gv = 0.0, curvature = 0.0;
    for (std::size_t d = 0; d < m.dim(); ++d) {
      const double var = alpha * alpha * m.std_dev(k, d) * m.std_dev(k, d) + sigma * sigma;
      gv += (alpha * m.mean(k, d) - x[d]) / var * v[d];
      curvature += v[d] * v[d] / var;
    }
    total += r[k] * (gv * gv - curvature);
  }
  for (std::size_t d = 0; d < m.dim(); ++d) sv += score[d] * v[d];
  return total - sv * sv;
}

TEST_CASE("the central-difference v^T J v is accurate in double and float", "[likelihood][hutchinson]") {
  // One evaluation of the Hutchinson right-hand side against v^T H v in closed form. The step rule
  // of divergence.hpp predicts a relative error ~ (eps max(sigma, |x|) / sigma)^(2/3): ~1e-10 in
  // double and ~4e-4 in float at VP's sigma(1e-5) = 1e-3 (a step of eps^(1/3) sigma alone would
  // give ~1e-2 in float there, measured 7e-3).
  const vp_sde p;
  const auto mixture = test::golden_mixture();
  gaussian_mixture_model<vp_sde, score_param> model(mixture, p);
  auto check = [&](auto scalar, double t, double rel_tol) {
    using S = decltype(scalar);
    using T = reference_tensor<S>;
    reference_backend<S> be;
    const std::size_t n = 256;
    const tensor_d xd = perturbed_data(p, t, n, 17);
    T x({n, 2}), v({n, 2}), dx({n, 2});
    for (std::size_t i = 0; i < xd.data.size(); ++i) x.data[i] = static_cast<S>(xd.data[i]);
    philox_noise noise(5);
    rademacher_probe::draw(be, noise, v);
    detail::hutchinson_likelihood_rhs<vp_sde, decltype(model), T> rhs(
        p, model, x, v, hutchinson_estimator<>{}.template step_for<S>());
    std::vector<double> d_delta(n);
    rhs(be, x, t, dx, d_delta);
    const double f = p.drift_scale(t), c = -0.5 * p.diffusion(t) * p.diffusion(t);
    double err = 0.0, norm = 0.0;
    for (std::size_t b = 0; b < n; ++b) {
      std::vector<double> xb(2), vb(2);
      for (std::size_t d = 0; d < 2; ++d) {
        xb[d] = static_cast<double>(x.data[2 * b + d]);
        vb[d] = static_cast<double>(v.data[2 * b + d]);
      }
      const double vjv = (d_delta[b] - 2.0 * f) / c;
      const double want = exact_vhv(mixture, xb, vb, p.alpha(t), p.sigma(t));
      err += (vjv - want) * (vjv - want);
      norm += want * want;
    }
    const double rel = std::sqrt(err / norm);
    INFO((sizeof(S) == 4 ? "float" : "double") << " at t = " << t << ": relative RMS error " << rel);
    CHECK(rel < rel_tol);
  };
  for (double t : {1e-5, 1e-3, 0.1, 0.9}) {
    check(0.0, t, 1e-8);
    check(0.0f, t, 4e-3);
  }
}

TEST_CASE("the Hutchinson estimate averages to the exact-divergence likelihood", "[likelihood][hutchinson]") {
  // 8 points, each repeated 512 times in one batch so every copy gets its own probe (the probes
  // are one draw over the whole batch). The mean over a point's copies must match the exact-
  // divergence result within 5 standard errors of that mean; tight tolerances keep the ODE error
  // (~1e-8, previous test) and the central differences' (~1e-10 relative) far below the SE.
  const std::size_t points = 8, copies = 512, n = points * copies;
  const vp_sde p;
  const auto mixture = test::golden_mixture();
  gaussian_mixture_model<vp_sde, score_param> inner(mixture, p);
  reference_backend<double> be;
  const double eps = 1e-5;
  const tensor_d base = perturbed_data(p, eps, points, 7);
  tensor_d x({n, 2});
  for (std::size_t b = 0; b < n; ++b)
    for (std::size_t d = 0; d < 2; ++d) x.data[2 * b + d] = base.data[2 * (b / copies) + d];
  const likelihood_options options{.rtol = 1e-8, .atol = 1e-8, .eps = eps};
  const auto exact = log_likelihood(p, inner, be, base, options);

  auto check = [&](const auto& estimator, std::uint64_t seed) {
    black_box<decltype(inner)> model{inner};
    counting_model<black_box<decltype(inner)>> counted{model};
    const auto r = log_likelihood(p, counted, be, x, estimator, philox_noise(seed), options);
    CHECK(counted.calls == r.report.model_calls);
    CHECK(r.report.model_calls == 3 * r.report.function_evaluations);
    for (std::size_t k = 0; k < points; ++k) {
      double sum = 0.0, sum_sq = 0.0;
      for (std::size_t c = 0; c < copies; ++c) {
        const double v = r.log_density[k * copies + c];
        sum += v;
        sum_sq += v * v;
      }
      const double mean = sum / copies;
      const double sd = std::sqrt(std::max(sum_sq / copies - mean * mean, 0.0) * copies / (copies - 1));
      const double se = sd / std::sqrt(static_cast<double>(copies));
      INFO("point " << k << ": exact-divergence " << exact.log_density[k] << ", Hutchinson mean " << mean << " +- "
                    << se << " (probe sd " << sd << "), " << r.report.model_calls << " model calls");
      CHECK(sd > 0.0);  // the probes vary, so the test can tell a biased mean from noise
      CHECK_THAT(mean, WithinAbs(exact.log_density[k], 5 * se));
    }
  };
  SECTION("Rademacher probes") { check(hutchinson_estimator<rademacher_probe>{}, 11); }
  SECTION("Gaussian probes") { check(hutchinson_estimator<gaussian_probe>{}, 12); }
  SECTION("an explicit finite-difference step") { check(hutchinson_estimator<>{.relative_step = 1e-4}, 13); }
}

TEST_CASE("the likelihood in float agrees with double", "[likelihood][float]") {
  // float tensors, double bookkeeping: the state's rounding (6e-8 relative) is far below the
  // solver's tolerance, so float and double agree to the ODE error (~1e-2 nats at 1e-5, above).
  const vp_sde p;
  gaussian_mixture_model<vp_sde, score_param> model(test::golden_mixture(), p);
  const tensor_d x = perturbed_data(p, 1e-5, 64, 4);
  reference_tensor<float> xf({64, 2});
  for (std::size_t i = 0; i < x.data.size(); ++i) xf.data[i] = static_cast<float>(x.data[i]);
  reference_backend<double> be;
  reference_backend<float> bef;
  const auto want = log_likelihood(p, model, be, x, {.rtol = 1e-9, .atol = 1e-9});
  const auto exact = log_likelihood(p, model, bef, xf);
  for (std::size_t b = 0; b < 64; ++b) CHECK_THAT(exact.log_density[b], WithinAbs(want.log_density[b], 2e-2));
  // Rademacher signs come from the top bit of each noise word, so float and double get the same
  // probes: the two Hutchinson estimates differ by the ODE error and the float central
  // differences' (eps m / sigma)^(2/3) ~ (6e-8 * 2 / 1e-3)^(2/3) ~ 2e-3 relative error, where the
  // score varies fastest.
  const auto hutchinson = log_likelihood(p, model, bef, xf, hutchinson_estimator<>{}, philox_noise(2));
  const auto hutchinson_double =
      log_likelihood(p, model, be, x, hutchinson_estimator<>{}, philox_noise(2), {.rtol = 1e-9, .atol = 1e-9});
  double worst = 0.0;
  for (std::size_t b = 0; b < 64; ++b) {
    worst = std::max(worst, std::abs(hutchinson.log_density[b] - hutchinson_double.log_density[b]));
    CHECK_THAT(hutchinson.log_density[b], WithinAbs(hutchinson_double.log_density[b], 2e-2));
  }
  INFO("largest float-double difference of the Hutchinson estimates: " << worst);
  CHECK(worst > 0.0);
}

TEST_CASE("probes: Rademacher entries are +-1, Gaussian ones standard normal; one draw each", "[likelihood][hutchinson]") {
  reference_backend<double> be;
  tensor_d v({1000, 2});
  philox_noise noise(3);
  rademacher_probe::draw(be, noise, v);
  std::size_t plus = 0;
  for (double e : v.data) {
    REQUIRE((e == 1.0 || e == -1.0));
    plus += e > 0;
  }
  // 2000 fair signs: 5 standard errors are 5 sqrt(2000)/2 = 112.
  CHECK(std::abs(static_cast<double>(plus) - 1000.0) < 112.0);
  gaussian_probe::draw(be, noise, v);
  tensor_d z({1000, 2});
  philox_noise again(3);
  again.fill_uniform(std::span<double>(z.data), 1000);  // draw 0: the Rademacher signs
  again.fill_normal(std::span<double>(z.data), 1000);   // draw 1: the Gaussian probe
  CHECK(v.data == z.data);
}

TEST_CASE("bits per dimension", "[likelihood]") {
  CHECK_THAT(bits_per_dim(-std::numbers::ln2 * 6.0, 3), WithinRel(2.0, 1e-15));
  CHECK(bits_per_dim(0.0, 5) == 0.0);
  CHECK(bits_per_dim(-std::numeric_limits<double>::infinity(), 2) == std::numeric_limits<double>::infinity());
  CHECK_THROWS_WITH(bits_per_dim(-1.0, 0), Contains("bits_per_dim: dim = 0") && Contains("at least 1"));
  CHECK_THROWS_WITH(bits_per_dim(std::numeric_limits<double>::quiet_NaN(), 2), Contains("log_density = nan"));
}

TEST_CASE("the options' defaults are score_sde's", "[likelihood]") {
  // score_sde likelihood.py: get_likelihood_fn(rtol=1e-5, atol=1e-5, eps=1e-5), RK45.
  const likelihood_options o;
  CHECK(o.rtol == 1e-5);
  CHECK(o.atol == 1e-5);
  CHECK(o.eps == 1e-5);
  CHECK(o.first_step == 0.0);
  // The finite-difference step: cbrt(machine epsilon) by default, an explicit relative_step as given.
  CHECK(hutchinson_estimator<>{}.step_for<double>() == std::cbrt(std::numeric_limits<double>::epsilon()));
  CHECK(hutchinson_estimator<>{}.step_for<float>() ==
        std::cbrt(static_cast<double>(std::numeric_limits<float>::epsilon())));
  CHECK(hutchinson_estimator<>{.relative_step = 1e-2}.step_for<double>() == 1e-2);
}

TEST_CASE("log_likelihood rejects bad input", "[likelihood][errors]") {
  const vp_sde p;
  gaussian_mixture_model<vp_sde, score_param> model(test::golden_mixture(), p);
  reference_backend<double> be;
  const tensor_d x({4, 2}, {0, 0, 1, 1, -1, 0, 2, 1});
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  for (double bad : {0.0, -1e-5, inf, nan}) {
    CHECK_THROWS_WITH(log_likelihood(p, model, be, x, {.rtol = bad}), Contains("rtol") && Contains("(0, inf)"));
    CHECK_THROWS_WITH(log_likelihood(p, model, be, x, {.atol = bad}), Contains("atol") && Contains("(0, inf)"));
    CHECK_THROWS_AS(log_likelihood(p, model, be, x, hutchinson_estimator<>{}, philox_noise(1), {.rtol = bad}),
                    std::invalid_argument);
  }
  CHECK_THROWS_WITH(log_likelihood(p, model, be, x, {.eps = 0.0}), Contains("eps") && Contains("(0, 1)"));
  CHECK_THROWS_WITH(log_likelihood(p, model, be, x, {.eps = 1.0}), Contains("eps"));
  CHECK_THROWS_WITH(log_likelihood(p, model, be, x, {.first_step = -1.0}), Contains("first_step"));
  CHECK_THROWS_WITH(log_likelihood(p, model, be, x, {.max_steps = 0}), Contains("max_steps"));
  CHECK_THROWS_AS(log_likelihood(p, model, be, x, {.max_steps = 3}), std::runtime_error);
  CHECK_THROWS_WITH(log_likelihood(p, model, be, x, hutchinson_estimator<>{.relative_step = -1.0}, philox_noise(1)),
                    Contains("relative_step"));
  CHECK_THROWS_WITH(log_likelihood(p, model, be, tensor_d({0, 2}), {}), Contains("x") && Contains("at least 1"));
  CHECK_THROWS_WITH(log_likelihood(p, model, be, tensor_d({4, 3}), {}), Contains("elements per sample"));
  for (double bad : {inf, -inf, nan}) {
    tensor_d y = x;
    y.data[5] = bad;
    CHECK_THROWS_WITH(log_likelihood(p, model, be, y, {}), Contains("log_likelihood: x[5]") && Contains("finite"));
    CHECK_THROWS_WITH(log_likelihood(p, model, be, y, hutchinson_estimator<>{}, philox_noise(1)),
                      Contains("x[5]"));
  }
}
