// SPDX-License-Identifier: MIT
// Probability-flow ODE samplers: fixed-step Euler, Heun, RK4 and adaptive Dormand-Prince 5(4).
// This binary replaces the global operator new to check that the step loops allocate nothing.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>
#include <span>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include <diffusion/diffusion.hpp>
#include <diffusion/process/sde.hpp>
#include <diffusion/sampler/adaptive_ode.hpp>
#include <diffusion/sampler/probability_flow.hpp>

#include "support/closeness.hpp"
#include "support/counting_model.hpp"
#include "support/mixture_fixture.hpp"
#include "support/recording_model.hpp"
#include "support/statistics.hpp"
#include "support/allocation_counter.hpp"

using namespace diffusion;
using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using tensor_d = reference_tensor<double>;

static_assert(sampler_for<probability_flow<vp_sde, euler_method>, reference_backend<double>>);
static_assert(sampler_for<probability_flow<subvp_sde, heun_method>, reference_backend<float>>);
static_assert(sampler_for<probability_flow<ve_sde, rk4_method>, eigen_backend<double, 2>>);
static_assert(probability_flow<vp_sde, euler_method>::order == 1 && probability_flow<vp_sde, heun_method>::order == 2 &&
              probability_flow<vp_sde, rk4_method>::order == 4);

namespace {

using test::counting_model;

// A noise source that fails the test if a deterministic sampler draws from it.
struct no_noise {
  template <class S>
  void fill_normal(std::span<S>, std::size_t) {
    throw std::logic_error("a deterministic sampler drew noise");
  }
  template <class S>
  void fill_uniform(std::span<S>, std::size_t) {
    throw std::logic_error("a deterministic sampler drew noise");
  }
};

template <class Process>
tensor_d prior_draw(const Process& p, std::size_t n, std::uint64_t seed) {
  reference_backend<double> be;
  philox_noise noise(seed);
  tensor_d x({n, 2});
  p.sample_prior(be, noise, x);
  return x;
}

using test::max_abs_difference;

// Mean, covariance and component weights of `out` against those of p_eps, within 5 standard errors.
template <class Process>
void check_reproduces_mixture(const Process& p, const tensor_d& out, double eps) {
  const auto mixture = test::golden_mixture();
  // p_eps = the data scaled by alpha(eps), plus N(0, sigma(eps)^2 I).
  const double a = p.alpha(eps), s = p.sigma(eps);
  std::vector<double> mean = mixture.mean(), cov = mixture.covariance();
  for (double& m : mean) m *= a;
  for (std::size_t k = 0; k < 4; ++k) cov[k] = a * a * cov[k] + (k == 0 || k == 3 ? s * s : 0.0);
  test::check_mean_and_covariance(out.data, 2, mean, cov);
  test::check_component_fractions(mixture, out.data);
}

template <class Method, class Process>
void check_fixed_step_statistics(const Process& p, std::size_t steps, std::uint64_t seed) {
  gaussian_mixture_model<Process, score_param> inner(test::golden_mixture(), p);
  counting_model<decltype(inner)> model{inner};
  reference_backend<double> be;
  const probability_flow<Process, Method> sampler(p, {.steps = steps});
  const tensor_d out = sample(sampler, model, be, prior_draw(p, 4096, seed), no_noise{});
  INFO(steps << " steps, " << model.calls << " model calls");
  CHECK(model.calls == sampler.model_calls());
  check_reproduces_mixture(p, out, 1e-3);
}

template <class Process>
void check_adaptive_statistics(const Process& p, std::uint64_t seed) {
  gaussian_mixture_model<Process, score_param> inner(test::golden_mixture(), p);
  counting_model<decltype(inner)> model{inner};
  reference_backend<double> be;
  const auto r = sample_adaptive(p, model, be, prior_draw(p, 4096, seed));  // rtol = atol = 1e-5, eps = 1e-3
  INFO("Dormand-Prince: " << r.report.accepted_steps << " accepted, " << r.report.rejected_steps << " rejected, "
                          << r.report.model_calls << " model calls");
  CHECK(model.calls == r.report.model_calls);
  CHECK(r.report.model_calls == 2 + 6 * (r.report.accepted_steps + r.report.rejected_steps));
  check_reproduces_mixture(p, r.x, 1e-3);
}

}  // namespace

TEST_CASE("fixed-step probability flow: grid, step count and model calls", "[sampler][probability_flow]") {
  const vp_sde p;
  gaussian_mixture_model<vp_sde> inner(test::golden_mixture(), p);  // eps_param: converted to the score
  counting_model<decltype(inner)> model{inner};
  reference_backend<double> be;
  const probability_flow<vp_sde, heun_method> sampler(p, {.steps = 10, .eps = 1e-3});
  REQUIRE(sampler.num_steps() == 10);
  // continuous_grid(11, eps): 11 times from T = 1 to eps, the real spacing (1 - eps)/10.
  CHECK(sampler.grid().values() == continuous_grid(11, 1e-3).values());
  CHECK(sampler.time(0) == 1.0);
  CHECK(sampler.time_next(9) == 1e-3);
  CHECK_THAT(sampler.time(3) - sampler.time_next(3), WithinRel(0.0999, 1e-12));

  SECTION("Euler, Heun and RK4 call the model 1, 2 and 4 times per step") {
    const tensor_d x_T = prior_draw(p, 16, 1);
    model.calls = 0;
    (void)sample(probability_flow<vp_sde, euler_method>(p, {.steps = 7}), model, be, x_T, no_noise{});
    CHECK(model.calls == 7);
    model.calls = 0;
    (void)sample(probability_flow<vp_sde, heun_method>(p, {.steps = 7}), model, be, x_T, no_noise{});
    CHECK(model.calls == 14);
    model.calls = 0;
    (void)sample(probability_flow<vp_sde, rk4_method>(p, {.steps = 7}), model, be, x_T, no_noise{});
    CHECK(model.calls == 28);
    CHECK(probability_flow<vp_sde, rk4_method>(p, {.steps = 7}).model_calls() == 28);
  }
  SECTION("a user grid takes one step between consecutive entries") {
    const probability_flow<vp_sde, euler_method> custom(p, time_grid({1.0, 0.5, 0.1, 0.01}));
    CHECK(custom.num_steps() == 3);
    CHECK(custom.time_next(2) == 0.01);
  }
  SECTION("a grid ending at sigma = 0: refused before any model call where the last step needs a score there") {
    // Heun and RK4 evaluate the model at each step's end; an eps model gives no score at t = 0.
    const tensor_d x_T = prior_draw(p, 4, 2);
    const time_grid to_zero(linspace(1.0, 0.0, 11));
    model.calls = 0;
    CHECK_THROWS_WITH(sample(probability_flow<vp_sde, heun_method>(p, to_zero), model, be, x_T, no_noise{}),
                      Contains("grid[last] = 0") && Contains("sigma(t) > 0") && Contains("eps prediction") &&
                          Contains("euler_method"));
    CHECK_THROWS_WITH(sample(probability_flow<vp_sde, rk4_method>(p, to_zero), model, be, x_T, no_noise{}),
                      Contains("grid[last] = 0"));
    CHECK(model.calls == 0);
    // Euler evaluates only at each step's start; a score model needs no conversion.
    CHECK_NOTHROW(sample(probability_flow<vp_sde, euler_method>(p, to_zero), model, be, x_T, no_noise{}));
    CHECK(model.calls == 10);
    gaussian_mixture_model<vp_sde, score_param> score_model(test::golden_mixture(), p);
    CHECK_NOTHROW(sample(probability_flow<vp_sde, heun_method>(p, to_zero), score_model, be, x_T, no_noise{}));
  }
}

namespace {

// The fixed-step methods fold an eps, x0 or v model's conversion to the score into their updates:
// the same samples and x0_hat as a score model to rounding, with the same passes over memory. With
// Euler (one model call per step) x0_hat is also checked against the exact x0 at the call.
template <class Method>
void check_flow_parameterizations(const vp_sde& p, const tensor_d& x_T) {
  const probability_flow<vp_sde, Method> sampler(p, {.steps = 12, .eps = 1e-3});
  auto run = [&]<class Param>(Param) {
    return test::run_observed<Param>(sampler, p, x_T, no_noise{}, std::is_same_v<Method, euler_method>);
  };
  const test::observed_run score = run(score_param{});
  test::check_same_run(run(eps_param{}), score);
  test::check_same_run(run(x0_param{}), score);
  test::check_same_run(run(v_param{}), score);
}

}  // namespace

TEST_CASE("the fixed-step methods fold an eps, x0 or v model's conversion; x0_hat is Tweedie's",
          "[sampler][probability_flow][parameterization]") {
  const vp_sde p;
  tensor_d x_T({16, 2});
  philox_noise(3).fill_normal(std::span<double>(x_T.data), 16);
  check_flow_parameterizations<euler_method>(p, x_T);
  check_flow_parameterizations<heun_method>(p, x_T);
  check_flow_parameterizations<rk4_method>(p, x_T);
}

TEST_CASE("one step of each method, by hand", "[sampler][probability_flow]") {
  // The updates against the textbook formulas written out on a single sample.
  const vp_sde p;
  gaussian_mixture_model<vp_sde, score_param> model(test::golden_mixture(), p);
  reference_backend<double> be;
  const tensor_d x({1, 2}, {0.3, -0.7});
  const double t = 0.6, t_next = 0.35, h = t_next - t;
  auto drift = [&](const tensor_d& y, double s) {
    tensor_d score = make_like(y), d = make_like(y);
    model(y, s, score);
    for (std::size_t j = 0; j < 2; ++j)
      d.data[j] = p.drift_scale(s) * y.data[j] - 0.5 * p.diffusion(s) * p.diffusion(s) * score.data[j];
    return d;
  };
  auto axpy = [](const tensor_d& y, double a, const tensor_d& d) {
    tensor_d r = y;
    for (std::size_t j = 0; j < 2; ++j) r.data[j] += a * d.data[j];
    return r;
  };
  const time_grid grid({t, t_next});
  SECTION("Euler") {
    const tensor_d want = axpy(x, h, drift(x, t));
    const tensor_d got = sample(probability_flow<vp_sde, euler_method>(p, grid), model, be, x, no_noise{});
    CHECK(max_abs_difference(got, want) < 1e-15);
  }
  SECTION("Heun") {
    const tensor_d k1 = drift(x, t), k2 = drift(axpy(x, h, k1), t_next);
    const tensor_d want = axpy(axpy(x, h / 2, k1), h / 2, k2);
    const tensor_d got = sample(probability_flow<vp_sde, heun_method>(p, grid), model, be, x, no_noise{});
    CHECK(max_abs_difference(got, want) < 1e-15);
  }
  SECTION("RK4") {
    const double tm = t + h / 2;
    const tensor_d k1 = drift(x, t), k2 = drift(axpy(x, h / 2, k1), tm), k3 = drift(axpy(x, h / 2, k2), tm),
                   k4 = drift(axpy(x, h, k3), t_next);
    const tensor_d want = axpy(axpy(axpy(axpy(x, h / 6, k1), h / 3, k2), h / 3, k3), h / 6, k4);
    const tensor_d got = sample(probability_flow<vp_sde, rk4_method>(p, grid), model, be, x, no_noise{});
    CHECK(max_abs_difference(got, want) < 1e-14);
  }
}

TEST_CASE("for Gaussian data the probability flow is affine, and every solver follows it", "[sampler][probability_flow]") {
  // With data N(mu, s^2 I), p_t = N(alpha mu, v_t I), v_t = alpha^2 s^2 + sigma^2, and the flow keeps
  // z = (x - alpha mu)/sqrt(v_t) fixed: d/dt of alpha mu + sqrt(v_t) z is f x - g^2/2 score because
  // dv/dt = 2 f v + g^2 (Song et al. 2021, App. B). So x_eps = alpha(eps) mu + sqrt(v_eps/v_T)(x_T - alpha(T) mu).
  const gaussian_mixture gaussian({1.0}, {{1.5, -0.5}}, std::vector<double>{0.4});
  auto check = [&](const auto& p) {
    using P = std::remove_cvref_t<decltype(p)>;
    gaussian_mixture_model<P, score_param> model(gaussian, p);
    reference_backend<double> be;
    const double eps = 1e-3;
    const tensor_d x_T = prior_draw(p, 32, 5);
    tensor_d want = x_T;
    const double v_T = std::pow(p.alpha(1.0) * 0.4, 2) + std::pow(p.sigma(1.0), 2);
    const double v_eps = std::pow(p.alpha(eps) * 0.4, 2) + std::pow(p.sigma(eps), 2);
    const double mu[2] = {1.5, -0.5};
    for (std::size_t i = 0; i < want.data.size(); ++i)
      want.data[i] = p.alpha(eps) * mu[i % 2] + std::sqrt(v_eps / v_T) * (x_T.data[i] - p.alpha(1.0) * mu[i % 2]);
    const double scale = std::sqrt(v_eps);  // the spread of the result
    // Dormand-Prince at 1e-10 lands within a few tolerances of the spread (measured 1-3e-10).
    const double dp = max_abs_difference(sample_adaptive(p, model, be, x_T, {.rtol = 1e-10, .atol = 1e-10}).x, want);
    CHECK(dp < 1e-9 * scale);
    // The fixed-step solvers converge to it with their orders: the error against the closed form
    // shrinks by about 2^p when the step is halved (VE's uniform grid in t is the hardest case).
    auto observed = [&](auto method, std::size_t steps, double order) {
      using M = decltype(method);
      const double e1 = max_abs_difference(sample(probability_flow<P, M>(p, {.steps = steps}), model, be, x_T, no_noise{}), want);
      const double e2 = max_abs_difference(sample(probability_flow<P, M>(p, {.steps = 2 * steps}), model, be, x_T, no_noise{}), want);
      INFO("order " << order << ": error/spread " << e1 / scale << " at " << steps << " steps, " << e2 / scale << " at " << 2 * steps);
      CHECK_THAT(std::log2(e1 / e2), WithinAbs(order, 0.3));
    };
    observed(euler_method{}, 500, 1.0);
    observed(heun_method{}, 100, 2.0);
    observed(rk4_method{}, 50, 4.0);
  };
  SECTION("VP") { check(vp_sde()); }
  SECTION("sub-VP") { check(subvp_sde()); }
  SECTION("VE") { check(ve_sde(0.01, 50.0)); }
}

TEST_CASE("every probability-flow solver reproduces the mixture", "[sampler][probability_flow][statistics]") {
  // 4096 samples each. The mixture is easy for the ODE, and 5 standard errors of 4096 samples are
  // a coarse sieve: measured (VP, seed 1), the worst statistic is 4.4 SE for Euler and Heun at 5
  // steps, 2.4-2.7 SE at 10 and at most 1.3 SE from 20; RK4 1.3 SE at 5 steps; Dormand-Prince
  // 1.2 SE at rtol = atol = 1e-2 (38 model calls). The step counts below give every VP method the
  // same budget of 100 model calls, where all sit at their converged 1.2 SE.
  SECTION("VP, Euler, 100 steps (100 model calls)") { check_fixed_step_statistics<euler_method>(vp_sde(), 100, 1); }
  SECTION("VP, Heun, 50 steps (100 model calls)") { check_fixed_step_statistics<heun_method>(vp_sde(), 50, 2); }
  SECTION("VP, RK4, 25 steps (100 model calls)") { check_fixed_step_statistics<rk4_method>(vp_sde(), 25, 3); }
  SECTION("VP, Dormand-Prince, rtol = atol = 1e-5 (104 model calls)") { check_adaptive_statistics(vp_sde(), 4); }
  SECTION("sub-VP, Heun, 50 steps (100 model calls)") { check_fixed_step_statistics<heun_method>(subvp_sde(), 50, 5); }
  SECTION("sub-VP, Dormand-Prince (110 model calls)") { check_adaptive_statistics(subvp_sde(), 6); }
  // VE starts from N(0, 50^2 I) and needs more steps (measured: Heun 44 SE at 5 steps, 24 at 10,
  // 4.1 at 20, 0.7 from 40; Dormand-Prince 3.3 SE at 1e-2, 0.9 from 1e-3).
  SECTION("VE, Heun, 100 steps (200 model calls)") { check_fixed_step_statistics<heun_method>(ve_sde(), 100, 7); }
  SECTION("VE, Dormand-Prince (128 model calls)") { check_adaptive_statistics(ve_sde(), 8); }
}

TEST_CASE("probability-flow sampling is deterministic", "[sampler][probability_flow]") {
  const vp_sde p;
  gaussian_mixture_model<vp_sde, score_param> model(test::golden_mixture(), p);
  reference_backend<double> be;
  const tensor_d x_T = prior_draw(p, 64, 9);
  const probability_flow<vp_sde, rk4_method> sampler(p, {.steps = 20});
  CHECK(sample(sampler, model, be, x_T, no_noise{}).data == sample(sampler, model, be, x_T, philox_noise(1)).data);
  const auto a = sample_adaptive(p, model, be, x_T);
  const auto b = sample_adaptive(p, model, be, x_T);
  CHECK(a.x.data == b.x.data);
  CHECK(a.report.model_calls == b.report.model_calls);
}

TEST_CASE("Dormand-Prince inversion: forward to T and back returns the start", "[sampler][probability_flow]") {
  const double tol = 1e-10;
  auto check = [&](const auto& p) {
    using P = std::remove_cvref_t<decltype(p)>;
    const auto mixture = test::golden_mixture();
    gaussian_mixture_model<P, score_param> model(mixture, p);
    reference_backend<double> be;
    tensor_d x0({256, 2});
    philox_noise noise(21);
    mixture.sample(noise, x0);
    const auto encoded = invert_adaptive(p, model, be, x0, {.rtol = tol, .atol = tol});
    const auto decoded = sample_adaptive(p, model, be, encoded.x, {.rtol = tol, .atol = tol});
    INFO("forward " << encoded.report.model_calls << " model calls, back " << decoded.report.model_calls);
    // Each solve's global error is a few times its tolerance relative to |x| (~3 here); the round
    // trip adds two of them (measured: below 1e-9).
    CHECK(max_abs_difference(decoded.x, x0) < 1e-8);
    // And the encoding is far from the start: a real round trip, not an identity.
    CHECK(max_abs_difference(encoded.x, x0) > 1.0);
  };
  SECTION("VP") { check(vp_sde()); }
  SECTION("VE") { check(ve_sde(0.01, 50.0)); }
}

TEST_CASE("Dormand-Prince: rejected steps, a given first step, the report", "[sampler][probability_flow]") {
  const vp_sde p;
  gaussian_mixture_model<vp_sde, score_param> inner(test::golden_mixture(), p);
  counting_model<decltype(inner)> model{inner};
  reference_backend<double> be;
  const tensor_d x_T = prior_draw(p, 64, 3);
  const auto reference = sample_adaptive(p, inner, be, x_T, {.rtol = 1e-10, .atol = 1e-10}).x;
  // A first step over the whole interval is far too long: the controller must reject and shrink it.
  const auto r = sample_adaptive(p, model, be, x_T, {.rtol = 1e-6, .atol = 1e-6, .first_step = 1.0});
  INFO(r.report.accepted_steps << " accepted, " << r.report.rejected_steps << " rejected");
  CHECK(r.report.rejected_steps >= 1);
  // With the first step given there is no probe evaluation: 1 + 6 per attempted step.
  CHECK(r.report.function_evaluations == 1 + 6 * (r.report.accepted_steps + r.report.rejected_steps));
  CHECK(model.calls == r.report.model_calls);
  CHECK(max_abs_difference(r.x, reference) < 1e-4);
  // A tighter tolerance costs more steps and gets closer.
  const auto tight = sample_adaptive(p, inner, be, x_T, {.rtol = 1e-8, .atol = 1e-8});
  CHECK(tight.report.accepted_steps > r.report.accepted_steps);
  CHECK(max_abs_difference(tight.x, reference) < max_abs_difference(r.x, reference));
}

TEST_CASE("observers of the probability-flow samplers", "[sampler][probability_flow][observer]") {
  const vp_sde p;
  const auto mixture = test::golden_mixture();
  gaussian_mixture_model<vp_sde, score_param> model(mixture, p);
  gaussian_mixture_model<vp_sde, x0_param> denoiser(mixture, p);
  reference_backend<double> be;
  const tensor_d x_T = prior_draw(p, 8, 4);

  SECTION("fixed step: x0_hat at the start of each step, Tweedie from the step's first score") {
    const probability_flow<vp_sde, heun_method> sampler(p, {.steps = 5});
    tensor_d previous = x_T;
    std::size_t seen = 0;
    (void)sample(sampler, model, be, x_T, no_noise{}, [&](const step_info<tensor_d>& s) {
      CHECK(s.index == seen);
      CHECK(s.count == 5);
      CHECK(s.t == sampler.time(s.index));
      CHECK(s.t_next == sampler.time_next(s.index));
      tensor_d want = make_like(previous);
      denoiser(previous, s.t, want);  // E[x0 | x_t] at the step's start
      CHECK(max_abs_difference(s.prediction, want) < 1e-12);
      previous = s.x;
      ++seen;
    });
    CHECK(seen == 5);
  }
  SECTION("adaptive: x0_hat at the accepted point; count known at the last step; early stop") {
    std::vector<double> times;
    std::size_t last_count = 0;
    const auto r = sample_adaptive(p, model, be, x_T, {}, [&](const step_info<tensor_d>& s) {
      CHECK(s.index == times.size());
      if (!times.empty()) CHECK(s.t == times.back());
      times.push_back(s.t_next);
      tensor_d want = make_like(s.x);
      denoiser(s.x, s.t_next, want);
      CHECK(max_abs_difference(s.prediction, want) < 1e-10);
      last_count = s.count;
    });
    CHECK(times.size() == r.report.accepted_steps);
    CHECK(times.back() == 1e-3);
    CHECK(last_count == r.report.accepted_steps);

    std::size_t calls = 0;
    const auto stopped = sample_adaptive(p, model, be, x_T, {}, [&](const step_info<tensor_d>& s) {
      ++calls;
      return s.index == 2 ? observer_action::stop : observer_action::proceed;
    });
    CHECK(calls == 3);
    CHECK(stopped.report.accepted_steps == 3);
  }
}

TEST_CASE("the probability-flow step loops allocate nothing", "[sampler][probability_flow][allocation]") {
  const vp_sde p;
  gaussian_mixture_model<vp_sde> model(test::golden_mixture(), p);
  reference_backend<float> be;
  reference_tensor<float> x({64, 2});
  std::vector<std::size_t> counts;
  counts.reserve(64);
  auto record = [&](const step_info<reference_tensor<float>>&) { counts.push_back(diffusion::test::allocations.load()); };
  auto check = [&](const auto& sampler) {
    counts.clear();
    (void)sample(sampler, model, be, x, no_noise{}, record);
    REQUIRE(counts.size() == sampler.num_steps());
    CHECK(counts.back() == counts.front());
  };
  check(probability_flow<vp_sde, euler_method>(p, {.steps = 10}));
  check(probability_flow<vp_sde, heun_method>(p, {.steps = 10}));
  check(probability_flow<vp_sde, rk4_method>(p, {.steps = 10}));
  counts.clear();
  (void)sample_adaptive(p, model, be, x, {}, record);
  REQUIRE(counts.size() >= 2);
  CHECK(counts.back() == counts.front());
}

TEST_CASE("probability flow on the Eigen backend agrees with the reference backend", "[sampler][probability_flow][eigen]") {
  const vp_sde p;
  gaussian_mixture_model<vp_sde> model(test::golden_mixture(), p);
  const tensor_d x_T = prior_draw(p, 100, 8);
  reference_backend<double> ref;
  eigen_backend<double, 2> eig;
  Eigen::Tensor<double, 2, Eigen::RowMajor> x(100, 2);
  std::copy(x_T.data.begin(), x_T.data.end(), x.data());
  auto close = [](const auto& e, const tensor_d& r) {
    for (std::size_t i = 0; i < r.data.size(); ++i) REQUIRE_THAT(e.data()[i], WithinRel(r.data[i], 1e-12) || WithinAbs(r.data[i], 1e-14));
  };
  const probability_flow<vp_sde, rk4_method> sampler(p, {.steps = 10});
  close(sample(sampler, model, eig, x, no_noise{}), sample(sampler, model, ref, x_T, no_noise{}));
  const auto a = sample_adaptive(p, model, eig, x);
  const auto b = sample_adaptive(p, model, ref, x_T);
  CHECK(a.report.accepted_steps == b.report.accepted_steps);
  close(a.x, b.x);
}

TEST_CASE("probability-flow samplers reject bad input", "[sampler][probability_flow][errors]") {
  const vp_sde p;
  gaussian_mixture_model<vp_sde> model(test::golden_mixture(), p);
  reference_backend<double> be;
  const tensor_d x = prior_draw(p, 4, 1);
  using euler = probability_flow<vp_sde, euler_method>;
  CHECK_THROWS_WITH(euler(p, {.steps = 0}), Contains("steps") && Contains("at least 1"));
  CHECK_THROWS_WITH(euler(p, {.eps = 0.0}), Contains("eps") && Contains("(0, 1)"));
  CHECK_THROWS_WITH(euler(p, {.eps = 1.0}), Contains("eps"));
  CHECK_THROWS_WITH(euler(p, {.eps = std::numeric_limits<double>::quiet_NaN()}), Contains("eps"));
  CHECK_THROWS_WITH(euler(p, time_grid({0.5})), Contains("number of grid times") && Contains("at least 2"));
  CHECK_THROWS_WITH(euler(p, time_grid({1.5, 0.5})), Contains("grid[0]") && Contains("[0, T]"));
  CHECK_THROWS_WITH(euler(p, time_grid({0.5, -0.1})), Contains("grid[last]"));

  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  for (double bad : {0.0, -1e-3, inf, -inf, nan}) {
    CHECK_THROWS_WITH(sample_adaptive(p, model, be, x, {.rtol = bad}),
                      Contains("sample_adaptive") && Contains("rtol") && Contains("(0, inf)"));
    CHECK_THROWS_WITH(sample_adaptive(p, model, be, x, {.atol = bad}), Contains("atol") && Contains("(0, inf)"));
    CHECK_THROWS_WITH(invert_adaptive(p, model, be, x, {.rtol = bad}), Contains("invert_adaptive") && Contains("rtol"));
  }
  CHECK_THROWS_WITH(sample_adaptive(p, model, be, x, {.eps = 0.0}), Contains("eps") && Contains("(0, 1)"));
  CHECK_THROWS_WITH(sample_adaptive(p, model, be, x, {.eps = 2.0}), Contains("eps"));
  CHECK_THROWS_WITH(sample_adaptive(p, model, be, x, {.first_step = -0.1}), Contains("first_step"));
  CHECK_THROWS_WITH(sample_adaptive(p, model, be, x, {.first_step = nan}), Contains("first_step"));
  CHECK_THROWS_WITH(sample_adaptive(p, model, be, x, {.max_steps = 0}), Contains("max_steps"));
  CHECK_THROWS_WITH(sample_adaptive(p, model, be, x, {.max_steps = 2}),
                    Contains("max_steps = 2") && Contains("did not reach"));
  CHECK_THROWS_WITH(sample_adaptive(p, model, be, tensor_d({0, 2})), Contains("x") && Contains("at least 1"));
  // A model returning NaN from the start is caught at the first evaluations; one that turns NaN on
  // the way makes every step fail, so the step shrinks until it underflows and the solver says so.
  auto broken_below = [](double t_bad) {
    return make_predictor<score_param>([t_bad](const tensor_d& y, double t) {
      tensor_d out = y;
      for (double& v : out.data) v = t < t_bad ? std::numeric_limits<double>::quiet_NaN() : -v;
      return out;
    });
  };
  CHECK_THROWS_WITH(sample_adaptive(p, broken_below(2.0), be, x), Contains("not finite") && Contains("t = 1"));
  CHECK_THROWS_WITH(sample_adaptive(p, broken_below(0.5), be, x), Contains("step size") && Contains("non-finite"));
}
