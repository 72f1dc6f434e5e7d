// SPDX-License-Identifier: MIT
// The adaptive-step reverse-SDE solver (Jolicoeur-Martineau et al. 2021, Algorithm 1): the step
// formulas by hand, acceptance/rejection and the step rule, noise and model-call accounting, option
// errors, no allocation in the loop, the mixture's statistics, and the cost against Euler-Maruyama.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <new>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <diffusion/backend/eigen.hpp>
#include <diffusion/core.hpp>
#include <diffusion/process/sde.hpp>
#include <diffusion/sampler/adaptive_sde.hpp>
#include <diffusion/sampler/predictor_corrector.hpp>

#include "support/closeness.hpp"
#include "support/mixture_fixture.hpp"
#include "support/pass_counting_backend.hpp"
#include "support/recording_model.hpp"
#include "support/statistics.hpp"
#include "support/allocation_counter.hpp"

using namespace diffusion;
using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;
using tensor_d = reference_tensor<double>;

namespace {

/// The golden mixture's weights and means with component std `s` (0.3 is the golden mixture).
gaussian_mixture mixture_with_std(double s) {
  return gaussian_mixture({0.5, 0.3, 0.2}, {{-2.0, 0.0}, {2.0, 1.0}, {0.0, -2.5}}, {s, s, s});
}

/// Records the time of every model call, and counts them.
template <class Inner>
struct recording_model {
  using parameterization = typename Inner::parameterization;
  Inner inner;
  std::vector<double>* times;
  template <class T>
  void operator()(const T& x, double t, T& out) {
    times->push_back(t);
    inner(x, t, out);
  }
};

/// The score of the exact mixture model at (x, t) for a batch, computed independently of the library's
/// predictor path.
template <class Process>
std::vector<double> exact_score(const gaussian_mixture& m, const Process& p, const std::vector<double>& x, double t) {
  std::vector<double> out(x.size()), r(m.components());
  for (std::size_t b = 0; b < x.size() / 2; ++b)
    m.score(std::span<const double>(x).subspan(2 * b, 2), p.alpha(t), p.sigma(t), r, std::span<double>(out).subspan(2 * b, 2));
  return out;
}

/// Within-component quality: each sample goes to its most likely component k of the data mixture;
/// q_i = sum_d ((x_d - mu_kd) / s_kd)^2 / D has mean 1 under the data. `rel` = mean(q) - 1 is the
/// relative error of the within-component variance, `se` its standard error; `weight_error` is
/// max_k |fraction assigned to k - w_k|.
struct component_quality {
  double rel = 0.0;
  double se = 0.0;
  double weight_error = 0.0;
};

component_quality within_component(const gaussian_mixture& m, std::span<const double> x) {
  const std::size_t d = m.dim(), n = x.size() / d;
  std::vector<double> r(m.components()), count(m.components(), 0.0);
  double sum = 0.0, sum_sq = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto xi = x.subspan(i * d, d);
    m.responsibilities(xi, 1.0, 0.0, r);
    const std::size_t k = static_cast<std::size_t>(std::max_element(r.begin(), r.end()) - r.begin());
    count[k] += 1.0;
    double q = 0.0;
    for (std::size_t j = 0; j < d; ++j) {
      const double z = (xi[j] - m.mean(k, j)) / m.std_dev(k, j);
      q += z * z;
    }
    q /= static_cast<double>(d);
    sum += q;
    sum_sq += q * q;
  }
  const double nn = static_cast<double>(n), mean = sum / nn;
  component_quality out;
  out.rel = mean - 1.0;
  out.se = std::sqrt(std::max(sum_sq / nn - mean * mean, 0.0) / nn);
  for (std::size_t k = 0; k < m.components(); ++k)
    out.weight_error = std::max(out.weight_error, std::abs(count[k] / nn - m.weight(k)));
  return out;
}

struct measured {
  std::size_t model_calls;
  component_quality quality;
};

template <class Process>
measured run_euler_maruyama(const Process& p, const gaussian_mixture& m, std::size_t n, std::uint64_t seed,
                            pc_options options) {
  reference_backend<double> be;
  gaussian_mixture_model<Process> model(m, p);
  philox_noise noise(seed);
  tensor_d x({n, 2});
  p.sample_prior(be, noise, x);
  const tensor_d out = sample(euler_maruyama(p, options), model, be, std::move(x), noise);
  return {options.steps, within_component(m, out.data)};
}

template <class Process>
measured run_adaptive(const Process& p, const gaussian_mixture& m, std::size_t n, std::uint64_t seed,
                      const adaptive_sde_options& options) {
  reference_backend<double> be;
  gaussian_mixture_model<Process> model(m, p);
  philox_noise noise(seed);
  tensor_d x({n, 2});
  p.sample_prior(be, noise, x);
  const auto r = sample_adaptive_sde(p, model, be, std::move(x), noise, options);
  return {r.report.model_calls, within_component(m, r.x.data)};
}

}  // namespace

TEST_CASE("adaptive SDE: two accepted steps and the denoising step follow Algorithm 1 by hand",
          "[sampler][adaptive_sde]") {
  const vp_sde p;
  const gaussian_mixture m = test::golden_mixture();
  const std::vector<double> x_T = {0.3, -1.2, 1.5, 0.7, -0.4, 2.1};
  const std::vector<std::vector<double>> draws = {{0.5, -1.0, 0.2, 1.3, -0.7, 0.1}, {-0.3, 0.8, 1.1, -0.2, 0.4, -1.5}};
  // Tolerances so loose that E is tiny: both steps are accepted and the second reaches eps. The end
  // eps = 0.5 keeps the steps short enough for the hand computation to agree to 1e-12.
  const double eps = 0.5;
  const adaptive_sde_options o{.eps_rel = 1e6, .eps_abs = 1e6, .h_init = 0.3, .eps = eps};

  // By hand: K1 = h (-f(t) x + g(t)^2 s(x, t)) + sqrt(h) g(t) z, x' = x + K1,
  // K2 = h (-f(t-h) x' + g(t-h)^2 s(x', t-h)) + sqrt(h) g(t-h) z, x'' = x + (K1 + K2)/2.
  auto step = [&](const std::vector<double>& x, const std::vector<double>& z, double t, double h) {
    const std::vector<double> s1 = exact_score(m, p, x, t);
    std::vector<double> xp(x.size()), out(x.size());
    const double f1 = p.drift_scale(t), g1 = p.diffusion(t);
    for (std::size_t i = 0; i < x.size(); ++i) xp[i] = x[i] + h * (-f1 * x[i] + g1 * g1 * s1[i]) + std::sqrt(h) * g1 * z[i];
    const std::vector<double> s2 = exact_score(m, p, xp, t - h);
    const double f2 = p.drift_scale(t - h), g2 = p.diffusion(t - h);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double k1 = xp[i] - x[i];
      const double k2 = h * (-f2 * xp[i] + g2 * g2 * s2[i]) + std::sqrt(h) * g2 * z[i];
      out[i] = x[i] + 0.5 * (k1 + k2);
    }
    return out;
  };
  const std::vector<double> x1 = step(x_T, draws[0], 1.0, 0.3);
  const std::vector<double> x2 = step(x1, draws[1], 0.7, 0.7 - eps);
  std::vector<double> x3 = x2;
  const std::vector<double> s3 = exact_score(m, p, x2, eps);
  const double sigma_eps = p.sigma(eps);
  for (std::size_t i = 0; i < x3.size(); ++i) x3[i] += sigma_eps * sigma_eps * s3[i];

  reference_backend<double> be;
  replay_noise noise(draws);
  std::vector<double> times;
  recording_model<gaussian_mixture_model<vp_sde>> model{{m, p}, &times};
  struct seen {
    std::size_t index, count;
    double t, t_next;
    std::vector<double> x;
  };
  std::vector<seen> steps;
  const auto r = sample_adaptive_sde(p, model, be, tensor_d({3, 2}, x_T), noise, o, [&](const step_info<tensor_d>& s) {
    steps.push_back({s.index, s.count, s.t, s.t_next, s.x.data});
  });

  CHECK(r.report.accepted == 2);
  CHECK(r.report.rejected == 0);
  CHECK(r.report.model_calls == 5);
  CHECK(noise.remaining() == 0);  // one draw per attempted step, none for the denoising step
  REQUIRE(times.size() == 5);
  CHECK(times[0] == 1.0);
  CHECK_THAT(times[1], WithinAbs(0.7, 1e-15));
  CHECK(times[2] == times[1]);
  CHECK(times[3] == eps);  // the step reaching the end lands on eps exactly
  CHECK(times[4] == eps);
  REQUIRE(steps.size() == 3);
  CHECK(steps[0].t == 1.0);
  CHECK(steps[1].t_next == eps);
  CHECK((steps[2].t == eps && steps[2].t_next == eps));
  for (std::size_t k = 0; k < 3; ++k) {
    CHECK(steps[k].index == k);
    CHECK(steps[k].count == (k == 2 ? 3 : k + 2));  // index + 1 == count only on the last step
  }
  for (std::size_t i = 0; i < 6; ++i) {
    CHECK_THAT(steps[0].x[i], WithinAbs(x1[i], 1e-12));
    CHECK_THAT(steps[1].x[i], WithinAbs(x2[i], 1e-12));
    CHECK_THAT(r.x.data[i], WithinAbs(x3[i], 1e-12));
  }
}

TEST_CASE("adaptive SDE: a rejected step keeps t and x and retries with the step rule's smaller h",
          "[sampler][adaptive_sde]") {
  const vp_sde p;
  const gaussian_mixture m = test::golden_mixture();
  reference_backend<double> be;
  std::vector<double> times;
  recording_model<gaussian_mixture_model<vp_sde>> model{{m, p}, &times};
  philox_noise noise(5);
  tensor_d x({16, 2});
  p.sample_prior(be, noise, x);
  const adaptive_sde_options o{.eps_rel = 1e-3, .eps_abs = 1e-3, .h_init = 0.5, .denoise = false};
  std::size_t observed = 0;
  const auto r = sample_adaptive_sde(p, model, be, x, noise, o, [&](const step_info<tensor_d>&) { ++observed; });

  REQUIRE(r.report.rejected >= 1);
  CHECK(observed == r.report.accepted);  // the observer sees accepted steps only
  CHECK(r.report.model_calls == 2 * (r.report.accepted + r.report.rejected));
  CHECK(noise.draw_index() == 1 + r.report.accepted + r.report.rejected);  // the prior, then one per attempt
  // The first attempt (h = 0.5) is rejected: the second starts from t = 1 again with a smaller step.
  REQUIRE(times.size() >= 4);
  CHECK(times[0] == 1.0);
  CHECK_THAT(times[1], WithinAbs(0.5, 1e-15));
  CHECK(times[2] == 1.0);
  CHECK(times[3] > 0.5);
  // Every attempt evaluates at (t, t - h) with t the time reached so far.
  for (std::size_t k = 0; k + 1 < times.size(); k += 2) CHECK(times[k + 1] < times[k]);
  CHECK(times.back() == 1e-3);
}

TEST_CASE("adaptive SDE: an observer's stop returns the state after that step, without denoising",
          "[sampler][adaptive_sde]") {
  const vp_sde p;
  reference_backend<double> be;
  std::vector<double> times;
  recording_model<gaussian_mixture_model<vp_sde>> model{{test::golden_mixture(), p}, &times};
  philox_noise noise(8);
  tensor_d x({32, 2});
  p.sample_prior(be, noise, x);
  std::vector<double> seen;
  const auto r = sample_adaptive_sde(p, model, be, x, noise, {}, [&](const step_info<tensor_d>& s) {
    if (s.index < 2) return observer_action::proceed;
    seen = s.x.data;
    return observer_action::stop;
  });
  CHECK(r.report.accepted == 3);
  CHECK(r.x.data == seen);
  CHECK(times.size() == r.report.model_calls);
  CHECK(times.back() > 1e-3);
}

TEST_CASE("adaptive SDE: the run is deterministic per seed and identical on the Eigen backend",
          "[sampler][adaptive_sde][eigen]") {
  const vp_sde p;
  const gaussian_mixture m = test::golden_mixture();
  const std::size_t n = 256;
  reference_backend<double> ref;
  philox_noise noise_ref(21);
  tensor_d x({n, 2});
  p.sample_prior(ref, noise_ref, x);
  const auto a = sample_adaptive_sde(p, gaussian_mixture_model<vp_sde>(m, p), ref, x, noise_ref);

  eigen_backend<double, 2> eig;
  philox_noise noise_eig(21);
  Eigen::Tensor<double, 2, Eigen::RowMajor> y(static_cast<Eigen::Index>(n), 2);
  p.sample_prior(eig, noise_eig, y);
  const auto b = sample_adaptive_sde(p, gaussian_mixture_model<vp_sde>(m, p), eig, y, noise_eig);

  CHECK(a.report.accepted == b.report.accepted);
  CHECK(a.report.rejected == b.report.rejected);
  CHECK(a.report.model_calls == b.report.model_calls);
  const auto e = elements(b.x);
  double worst = 0.0;
  for (std::size_t i = 0; i < a.x.data.size(); ++i) worst = std::max(worst, std::abs(a.x.data[i] - e[i]));
  CHECK(worst <= 1e-12);

  reference_backend<float> be_f;
  philox_noise noise_f(21);
  reference_tensor<float> xf({n, 2});
  p.sample_prior(be_f, noise_f, xf);
  const auto c = sample_adaptive_sde(p, gaussian_mixture_model<vp_sde>(m, p), be_f, xf, noise_f);
  CHECK(c.report.accepted > 0);
  for (float v : c.x.data) CHECK(std::isfinite(v));
}

TEST_CASE("adaptive SDE: an eps, x0 or v model's conversion is folded into the updates",
          "[sampler][adaptive_sde][parameterization]") {
  // The same run, step for step, whatever the exact model predicts, and the same passes over
  // memory: no conversion pass per model call.
  const vp_sde p;
  const gaussian_mixture m = test::golden_mixture();
  reference_backend<double> be;
  philox_noise prior(23);
  tensor_d x_T({64, 2});
  p.sample_prior(be, prior, x_T);
  std::size_t passes = 0;
  test::pass_counting_backend counted{{}, &passes};
  const adaptive_sde_options o{.eps_rel = 0.02};
  std::vector<double> observed_score, observed;
  // x0_hat is Tweedie's at the last model call (the proposal's evaluation, or the denoising one).
  test::recording_model<gaussian_mixture_model<vp_sde, score_param>> score_model{{m, p}};
  const auto score = sample_adaptive_sde(p, score_model, counted, x_T, philox_noise(24), o,
                                         [&](const step_info<tensor_d>& s) {
                                           observed_score.insert(observed_score.end(), s.prediction.data.begin(),
                                                                 s.prediction.data.end());
                                           test::check_x0_hat_at_last_call(m, p, score_model, s.prediction);
                                         });
  const std::size_t score_passes = std::exchange(passes, 0);
  auto check_same_run = [&](const auto& result, const char* what) {
    INFO(what);
    CHECK(result.report.accepted == score.report.accepted);
    CHECK(result.report.rejected == score.report.rejected);
    CHECK(passes == score_passes);
    passes = 0;
    test::check_close(result.x.data, score.x.data, 1e-9, 1e-11, "samples");
    test::check_close(observed, observed_score, 1e-9, 1e-11, "x0_hat");
    observed.clear();
  };
  auto record = [&](const step_info<tensor_d>& s) {
    observed.insert(observed.end(), s.prediction.data.begin(), s.prediction.data.end());
  };
  check_same_run(sample_adaptive_sde(p, gaussian_mixture_model<vp_sde, eps_param>(m, p), counted, x_T,
                                     philox_noise(24), o, record),
                 "eps model");
  check_same_run(sample_adaptive_sde(p, gaussian_mixture_model<vp_sde, x0_param>(m, p), counted, x_T,
                                     philox_noise(24), o, record),
                 "x0 model");
  check_same_run(sample_adaptive_sde(p, gaussian_mixture_model<vp_sde, v_param>(m, p), counted, x_T,
                                     philox_noise(24), o, record),
                 "v model");
  CHECK(score.report.rejected > 0);
}

TEST_CASE("adaptive SDE: the step loop allocates nothing", "[sampler][adaptive_sde][allocation]") {
  const vp_sde p;
  reference_backend<double> be;
  gaussian_mixture_model<vp_sde> model(test::golden_mixture(), p);
  philox_noise noise(3);
  tensor_d x({64, 2});
  p.sample_prior(be, noise, x);
  std::vector<std::size_t> counts;
  counts.reserve(100000);
  const auto r = sample_adaptive_sde(p, model, be, std::move(x), noise, {.eps_rel = 1e-3, .eps_abs = 1e-3},
                                     [&](const step_info<tensor_d>&) { counts.push_back(diffusion::test::allocations.load()); });
  REQUIRE(r.report.rejected > 0);  // rejected attempts happen between these observer calls too
  REQUIRE(counts.size() == r.report.accepted + 1);
  CHECK(counts.back() == counts.front());
}

TEST_CASE("adaptive SDE: bad options throw naming the option, its value and the range",
          "[sampler][adaptive_sde][errors]") {
  const vp_sde p;
  reference_backend<double> be;
  gaussian_mixture_model<vp_sde> model(test::golden_mixture(), p);
  const tensor_d x({4, 2});
  auto run = [&](adaptive_sde_options o) {
    philox_noise noise(1);
    return sample_adaptive_sde(p, model, be, x, noise, o);
  };
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  for (const std::vector<std::size_t>& shape : {std::vector<std::size_t>{0, 2}, {4, 0}}) {
    philox_noise noise(1);
    CHECK_THROWS_WITH(sample_adaptive_sde(p, model, be, tensor_d(shape), noise),
                      Contains("number of elements of x = 0") && Contains("at least 1"));
  }
  for (double v : {0.0, -0.1, inf, nan}) {
    CHECK_THROWS_WITH(run({.eps_rel = v}), Contains("eps_rel") && Contains("(0, inf)"));
    CHECK_THROWS_WITH(run({.eps_abs = v}), Contains("eps_abs") && Contains("(0, inf)"));
    CHECK_THROWS_WITH(run({.h_init = v}), Contains("h_init") && Contains("(0, T - eps] = (0, 0.999]"));
    CHECK_THROWS_WITH(run({.eps = v}), Contains("eps = ") && Contains("(0, T) = (0, 1)"));
    CHECK_THROWS_WITH(run({.safety = v}), Contains("safety") && Contains("(0, 1]"));
    CHECK_THROWS_WITH(run({.exponent = v}), Contains("exponent") && Contains("(0, inf)"));
  }
  CHECK_THROWS_WITH(run({.eps_rel = 0.0}), Contains("eps_rel = 0 is invalid"));
  CHECK_THROWS_WITH(run({.h_init = 0.9995}), Contains("h_init = 0.99950000000000006"));
  CHECK_THROWS_WITH(run({.eps = 1.0}), Contains("eps = 1 is invalid"));
  CHECK_THROWS_WITH(run({.safety = 1.5}), Contains("safety = 1.5"));
  CHECK_THROWS_WITH(run({.max_model_calls = 2}), Contains("max_model_calls = 2") && Contains("at least 3"));
  CHECK_THROWS_WITH(run({.max_model_calls = 1, .denoise = false}), Contains("max_model_calls = 1") && Contains("at least 2"));
  CHECK_NOTHROW(run({.h_init = 0.999}));

  SECTION("the model-call limit stops a run that would exceed it") {
    CHECK_THROWS_AS(run({.eps_rel = 1e-6, .eps_abs = 1e-6, .max_model_calls = 41}), std::runtime_error);
    CHECK_THROWS_WITH(run({.eps_rel = 1e-6, .eps_abs = 1e-6, .max_model_calls = 41}),
                      Contains("max_model_calls = 41") && Contains("reached at t = "));
  }
  SECTION("a non-finite model output is reported, not stepped over") {
    auto bad = make_predictor<score_param>([](const tensor_d& in, double t, tensor_d& out) {
      for (std::size_t i = 0; i < in.data.size(); ++i) out.data[i] = t < 0.9 ? std::nan("") : -in.data[i];
    });
    philox_noise noise(1);
    CHECK_THROWS_AS(sample_adaptive_sde(p, bad, be, x, noise), std::domain_error);
  }
}

namespace {

template <class Process>
void check_reproduces_mixture(const Process& p, const adaptive_sde_options& o, std::size_t n, std::uint64_t seed) {
  const gaussian_mixture mixture = test::golden_mixture();
  gaussian_mixture_model<Process> model(mixture, p);
  reference_backend<double> be;
  philox_noise noise(seed);
  tensor_d x({n, 2});
  p.sample_prior(be, noise, x);
  const auto r = sample_adaptive_sde(p, model, be, std::move(x), noise, o);
  INFO("accepted " << r.report.accepted << ", rejected " << r.report.rejected << ", model calls "
                   << r.report.model_calls);
  test::check_reproduces_mixture(mixture, r.x.data);
  // The within-component spread, which the moments above barely see: within 5 standard errors
  // plus the bias of the final denoising step (posterior mean at eps: -sigma(eps)^2 / s^2 ~ -0.1%).
  const component_quality q = within_component(mixture, r.x.data);
  CHECK(std::abs(q.rel) <= 5 * q.se + 0.002);
}

}  // namespace

TEST_CASE("adaptive SDE reproduces the mixture's mean, covariance and weights", "[sampler][adaptive_sde][statistics]") {
  const std::size_t n = 8192;
  SECTION("VP, default options") { check_reproduces_mixture(vp_sde(), {}, n, 1); }
  SECTION("VE, default options") { check_reproduces_mixture(ve_sde(0.01, 50.0), {}, n, 2); }
  SECTION("sub-VP, default options") { check_reproduces_mixture(subvp_sde(), {}, n, 3); }
  SECTION("VP, per-sample maximum error") {
    check_reproduces_mixture(vp_sde(), {.eps_rel = 0.05, .eps_abs = 0.01, .error_norm = adaptive_error_norm::per_sample_max},
                             n, 4);
  }
}

// The requirement: the Euler-Maruyama quality with fewer model calls. Quality is the
// relative error of the within-component variance (see within_component), on the golden mixture's
// means and weights with components 3x narrower (std 0.1), where the step sizes near t = 0 matter.
TEST_CASE("adaptive SDE reaches Euler-Maruyama's quality with fewer model calls (VP, mixture)",
          "[sampler][adaptive_sde][cost]") {
  const vp_sde p;
  const gaussian_mixture m = mixture_with_std(0.1);
  const std::size_t n = 32768;
  const measured em100 = run_euler_maruyama(p, m, n, 3, {.steps = 100});
  const measured em200 = run_euler_maruyama(p, m, n, 3, {.steps = 200});
  const measured ad = run_adaptive(p, m, n, 3, {.eps_rel = 0.05, .eps_abs = 0.01});
  INFO("EM 100: " << em100.quality.rel << " +- " << em100.quality.se);
  INFO("EM 200: " << em200.quality.rel << " +- " << em200.quality.se);
  INFO("adaptive: " << ad.model_calls << " calls, " << ad.quality.rel << " +- " << ad.quality.se);
  CHECK(ad.model_calls < em200.model_calls);
  const double se_diff = std::hypot(ad.quality.se, em200.quality.se);
  CHECK(std::abs(ad.quality.rel) + 5 * se_diff <= std::abs(em200.quality.rel));
  // Euler-Maruyama's error shrinks with N (so the comparison is with a converging method), and
  // the adaptive solver is better than EM with a similar number of calls as well.
  CHECK(std::abs(em200.quality.rel) + 5 * std::hypot(em100.quality.se, em200.quality.se) <= std::abs(em100.quality.rel));
  CHECK(std::abs(ad.quality.rel) + 5 * std::hypot(ad.quality.se, em100.quality.se) <= std::abs(em100.quality.rel));
}

// The table of docs/sampler_costs.md (hidden; run with the tag [cost_table], ~2 minutes).
TEST_CASE("adaptive SDE vs Euler-Maruyama: cost table", "[.][cost_table]") {
  const std::size_t n = 32768;
  const std::uint64_t seed = 11;
  std::printf("| mixture std | SDE | sampler | model calls | within-component variance error | max weight error |\n");
  std::printf("|---|---|---|---|---|---|\n");
  auto row = [](double s, const char* sde, const std::string& name, const measured& r) {
    std::printf("| %.1f | %s | %s | %zu | %+.2f%% +- %.2f%% | %.4f |\n", s, sde, name.c_str(), r.model_calls,
                100 * r.quality.rel, 100 * r.quality.se, r.quality.weight_error);
    std::fflush(stdout);
  };
  auto table = [&](const auto& p, const char* sde, double s) {
    const gaussian_mixture m = mixture_with_std(s);
    for (std::size_t steps : {50, 100, 200, 400, 1000})
      row(s, sde, "EM N=" + std::to_string(steps), run_euler_maruyama(p, m, n, seed, {.steps = steps}));
    for (std::size_t steps : {100, 200})
      row(s, sde, "EM N=" + std::to_string(steps) + ", no final mean step",
          run_euler_maruyama(p, m, n, seed, {.steps = steps, .denoise = false}));
    row(s, sde, "adaptive rms, defaults (eps_rel 0.01, eps_abs 0.0078)", run_adaptive(p, m, n, seed, {}));
    row(s, sde, "adaptive rms, eps_rel 0.05, eps_abs 0.01", run_adaptive(p, m, n, seed, {.eps_rel = 0.05, .eps_abs = 0.01}));
    row(s, sde, "adaptive max, eps_rel 0.05, eps_abs 0.01",
        run_adaptive(p, m, n, seed, {.eps_rel = 0.05, .eps_abs = 0.01, .error_norm = adaptive_error_norm::per_sample_max}));
    row(s, sde, "adaptive max, eps_rel 0.2, eps_abs 0.01",
        run_adaptive(p, m, n, seed, {.eps_rel = 0.2, .eps_abs = 0.01, .error_norm = adaptive_error_norm::per_sample_max}));
  };
  for (double s : {0.3, 0.1}) {
    table(vp_sde(), "VP", s);
    table(ve_sde(0.01, 50.0), "VE", s);
  }
  SUCCEED();
}
