// SPDX-License-Identifier: MIT
// The exact oracle: gaussian_mixture (moments, density, score, posterior mean, exact samples) and
// gaussian_mixture_model (eps, x0, score, v of the perturbed data at any t).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <span>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <diffusion/backend/reference.hpp>
#include <diffusion/model/gaussian_mixture.hpp>
#include <diffusion/model/parameterization.hpp>
#include <diffusion/process/vp_discrete.hpp>
#include <diffusion/random/philox_noise.hpp>

#include "support/mixture_fixture.hpp"
#include "support/statistics.hpp"

using namespace diffusion;
using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using tensor_d = reference_tensor<double>;
using tensor_f = reference_tensor<float>;

namespace {

/// Two 3-D components with diagonal covariances; weights 1 : 3 (normalised to 0.25, 0.75).
gaussian_mixture diagonal_mixture() {
  return gaussian_mixture({1.0, 3.0}, {{1.0, -1.0, 0.0}, {-1.0, 2.0, 4.0}}, std::vector<std::vector<double>>{{0.5, 1.0, 2.0}, {1.0, 0.1, 0.2}});
}

/// A process with alpha = 1, sigma = t (VE / EDM), which reaches sigma = 0 at t = 0.
struct ve_identity {
  double alpha(double) const { return 1.0; }
  double sigma(double t) const { return t; }
};

struct marginal {
  double alpha, sigma;
};

/// Data (1, 0), VP pairs from clean to nearly pure noise, VE pairs up to sigma = 50.
std::vector<marginal> marginals() {
  std::vector<marginal> m{{1.0, 0.0}};
  for (double abar : {0.9999, 0.9, 0.5, 0.1, 1e-3}) m.push_back({std::sqrt(abar), std::sqrt(1.0 - abar)});
  for (double sigma : {0.05, 1.0, 50.0}) m.push_back({1.0, sigma});
  return m;
}

/// Points spread over and beyond the data: `n` points of dimension d, N(0, scale^2).
std::vector<double> points(std::size_t n, std::size_t d, std::uint64_t seed, double scale) {
  std::vector<double> x(n * d);
  philox_noise(seed).fill_normal(std::span<double>(x), 1);
  for (double& v : x) v *= scale;
  return x;
}

std::string describe(marginal m) {
  return "alpha = " + detail::format_value(m.alpha) + ", sigma = " + detail::format_value(m.sigma);
}

template <class F>
std::string invalid_argument_message(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no std::invalid_argument)";
}

}  // namespace

TEST_CASE("gaussian_mixture accessors and weight normalisation", "[model][mixture]") {
  const gaussian_mixture g = diagonal_mixture();
  CHECK(g.components() == 2);
  CHECK(g.dim() == 3);
  CHECK(g.weight(0) == 0.25);
  CHECK(g.weight(1) == 0.75);
  CHECK(g.mean(1, 2) == 4.0);
  CHECK(g.std_dev(0, 2) == 2.0);
  CHECK(g.std_dev(1, 1) == 0.1);
  // The isotropic constructor is the diagonal one with every std repeated.
  const gaussian_mixture iso = test::golden_mixture();
  const gaussian_mixture diag({0.5, 0.3, 0.2}, {{-2.0, 0.0}, {2.0, 1.0}, {0.0, -2.5}},
                              std::vector<std::vector<double>>{{0.3, 0.3}, {0.3, 0.3}, {0.3, 0.3}});
  for (std::size_t k = 0; k < 3; ++k)
    for (std::size_t d = 0; d < 2; ++d) {
      CHECK(iso.std_dev(k, d) == 0.3);
      CHECK(iso.mean(k, d) == diag.mean(k, d));
    }
  const std::vector<double> x{0.3, -0.7};
  CHECK(iso.log_density(x, 0.6, 0.8) == diag.log_density(x, 0.6, 0.8));
}

TEST_CASE("gaussian_mixture mean and covariance against hand-computed values", "[model][mixture]") {
  SECTION("the golden 3-component 2-D mixture") {
    // mean = 0.5 (-2, 0) + 0.3 (2, 1) + 0.2 (0, -2.5) = (-0.4, -0.2)
    // E[x x^T] = sum_k w_k (mu_k mu_k^T + 0.09 I) = [[3.29, 0.6], [0.6, 1.64]]
    // cov = E[x x^T] - mean mean^T = [[3.13, 0.52], [0.52, 1.60]]
    const gaussian_mixture g = test::golden_mixture();
    const std::vector<double> m = g.mean();
    REQUIRE(m.size() == 2);
    CHECK_THAT(m[0], WithinRel(-0.4, 1e-15));
    CHECK_THAT(m[1], WithinRel(-0.2, 1e-15));
    const std::vector<double> c = g.covariance();
    REQUIRE(c.size() == 4);
    CHECK_THAT(c[0], WithinRel(3.13, 1e-14));
    CHECK_THAT(c[1], WithinRel(0.52, 1e-14));
    CHECK_THAT(c[2], WithinRel(0.52, 1e-14));
    CHECK_THAT(c[3], WithinRel(1.60, 1e-14));
  }
  SECTION("a diagonal-std mixture in 3-D") {
    // Two components: cov = sum_k w_k S_k + w_0 w_1 (mu_0 - mu_1)(mu_0 - mu_1)^T with
    // w = (1/4, 3/4), mu_0 - mu_1 = (2, -3, -4), w_0 w_1 = 3/16:
    //   diag: 0.0625 + 0.75 + 0.75 = 1.5625, 0.25 + 0.0075 + 1.6875 = 1.945, 1 + 0.03 + 3 = 4.03
    //   off:  (3/16)(-6) = -1.125, (3/16)(-8) = -1.5, (3/16)(12) = 2.25
    const gaussian_mixture g = diagonal_mixture();
    const std::vector<double> m = g.mean();
    const std::vector<double> want_m{-0.5, 1.25, 3.0};
    for (std::size_t d = 0; d < 3; ++d) CHECK_THAT(m[d], WithinRel(want_m[d], 1e-15));
    const std::vector<double> c = g.covariance();
    const std::vector<double> want_c{1.5625, -1.125, -1.5, -1.125, 1.945, 2.25, -1.5, 2.25, 4.03};
    REQUIRE(c.size() == 9);
    for (std::size_t k = 0; k < 9; ++k) {
      INFO("entry " << k);
      CHECK_THAT(c[k], WithinRel(want_c[k], 1e-14));
    }
  }
}

TEST_CASE("log_density is the normalised density of the perturbed mixture", "[model][mixture]") {
  SECTION("one component: log N(x; alpha mu, alpha^2 s^2 + sigma^2)") {
    const gaussian_mixture g({2.0}, {{1.5}}, std::vector<double>{0.4});
    const double alpha = 0.6, sigma = 0.8, x = 0.3;
    const double v = alpha * alpha * 0.16 + sigma * sigma;
    const double want = -0.5 * (x - alpha * 1.5) * (x - alpha * 1.5) / v - 0.5 * std::log(2.0 * std::numbers::pi * v);
    CHECK_THAT(g.log_density(std::vector<double>{x}, alpha, sigma), WithinRel(want, 1e-15));
  }
  SECTION("a 1-D mixture integrates to 1 at every (alpha, sigma)") {
    const gaussian_mixture g({0.2, 0.5, 0.3}, {{-3.0}, {0.0}, {2.0}}, std::vector<double>{0.5, 0.2, 1.0});
    for (const marginal mg : {marginal{1.0, 0.0}, marginal{0.7, 0.7}, marginal{0.1, 1.0}, marginal{1.0, 5.0}}) {
      INFO(describe(mg));
      // Trapezoid over +-12 standard deviations of the widest component; the integrand is smooth
      // and decays like a Gaussian, so the rule converges exponentially fast.
      const double half = 12.0 * std::sqrt(mg.alpha * mg.alpha + mg.sigma * mg.sigma) + 3.0 * mg.alpha;
      const std::size_t n = 20000;
      const double h = 2.0 * half / static_cast<double>(n);
      double integral = 0.0;
      for (std::size_t i = 0; i <= n; ++i) {
        const double x = -half + h * static_cast<double>(i);
        integral += (i == 0 || i == n ? 0.5 : 1.0) * std::exp(g.log_density(std::vector<double>{x}, mg.alpha, mg.sigma));
      }
      CHECK_THAT(integral * h, WithinAbs(1.0, 1e-10));
    }
  }
  SECTION("far from the data log_density stays finite (log-sum-exp)") {
    const gaussian_mixture g = test::golden_mixture();
    const std::vector<double> far{200.0, -150.0};
    const double lp = g.log_density(far);
    CHECK(std::isfinite(lp));
    CHECK(lp < -1e5);
    std::vector<double> r(3);
    g.responsibilities(far, 1.0, 0.0, r);
    CHECK_THAT(r[0] + r[1] + r[2], WithinRel(1.0, 1e-15));
    CHECK(r[2] > 0.999);  // (0, -2.5) is the nearest mean
  }
}

TEST_CASE("score is the gradient of log_density", "[model][mixture]") {
  for (const gaussian_mixture& g : {test::golden_mixture(), diagonal_mixture()}) {
    const std::size_t D = g.dim();
    const std::vector<double> xs = points(12, D, 3, 2.5);
    std::vector<double> r(g.components()), score(D);
    for (const marginal mg : marginals()) {
      // Central differences: truncation ~ h^2 |f'''| / 6, rounding ~ 1e-16 |f| / h; the step
      // scales with the smallest standard deviation of p_t.
      double v_min = std::numeric_limits<double>::infinity();
      for (std::size_t k = 0; k < g.components(); ++k)
        for (std::size_t d = 0; d < D; ++d)
          v_min = std::min(v_min, mg.alpha * mg.alpha * g.std_dev(k, d) * g.std_dev(k, d) + mg.sigma * mg.sigma);
      const double h = 1e-4 * std::sqrt(v_min);
      for (std::size_t i = 0; i < xs.size(); i += D) {
        const std::vector<double> x(xs.begin() + static_cast<std::ptrdiff_t>(i),
                                    xs.begin() + static_cast<std::ptrdiff_t>(i + D));
        g.score(x, mg.alpha, mg.sigma, r, score);
        double norm = 0.0;
        for (double s : score) norm = std::max(norm, std::abs(s));
        for (std::size_t d = 0; d < D; ++d) {
          std::vector<double> xp = x, xm = x;
          xp[d] += h;
          xm[d] -= h;
          const double fd = (g.log_density(xp, mg.alpha, mg.sigma) - g.log_density(xm, mg.alpha, mg.sigma)) / (2 * h);
          INFO(describe(mg) << ", point " << i / D << ", coordinate " << d << ": score " << score[d] << ", fd " << fd);
          CHECK(std::abs(score[d] - fd) <= 1e-6 * std::max(std::abs(fd), 1e-3 * norm));
        }
      }
    }
  }
}

TEST_CASE("posterior_mean satisfies Tweedie's formula E[x0|x] = (x + sigma^2 score) / alpha", "[model][mixture]") {
  // Efron 2011, "Tweedie's formula and selection bias", Eq. 2.8, for x = alpha x0 + sigma eps.
  for (const gaussian_mixture& g : {test::golden_mixture(), diagonal_mixture()}) {
    const std::size_t D = g.dim();
    const std::vector<double> xs = points(16, D, 4, 2.5);
    std::vector<double> r(g.components()), score(D), x0(D);
    for (const marginal mg : marginals()) {
      if (mg.alpha < 0.1) continue;  // the Tweedie form divides by alpha; see the golden README
      for (std::size_t i = 0; i < xs.size(); i += D) {
        const std::span<const double> x(xs.data() + i, D);
        g.posterior_mean(x, mg.alpha, mg.sigma, r, x0);
        g.score(x, mg.alpha, mg.sigma, r, score);
        for (std::size_t d = 0; d < D; ++d) {
          const double tweedie = (x[d] + mg.sigma * mg.sigma * score[d]) / mg.alpha;
          INFO(describe(mg) << ", point " << i / D << ", coordinate " << d);
          // Relative to the terms that cancel in the Tweedie form.
          const double scale = std::abs(x[d]) + mg.sigma * mg.sigma * std::abs(score[d]);
          CHECK(std::abs(x0[d] - tweedie) <= 1e-12 * scale / mg.alpha);
        }
      }
    }
  }
  SECTION("limits: E[x0|x] = x on the data, the data mean at alpha = 0") {
    const gaussian_mixture g = diagonal_mixture();
    const std::vector<double> x{0.3, -2.0, 7.0};
    std::vector<double> r(2), x0(3);
    g.posterior_mean(x, 1.0, 0.0, r, x0);
    for (std::size_t d = 0; d < 3; ++d) CHECK_THAT(x0[d], WithinRel(x[d], 1e-15));
    g.posterior_mean(x, 0.0, 1.0, r, x0);
    const std::vector<double> m = g.mean();
    for (std::size_t d = 0; d < 3; ++d) CHECK_THAT(x0[d], WithinRel(m[d], 1e-14));
  }
}

namespace {
using all_params = std::tuple<eps_param, x0_param, score_param, v_param>;

template <class Param, class Process>
tensor_d evaluate(const Process& process, const gaussian_mixture& g, const tensor_d& x, double t) {
  gaussian_mixture_model<Process, Param> model(g, process);
  tensor_d out(x.shape);
  model(x, t, out);
  return out;
}
}  // namespace

TEST_CASE("gaussian_mixture_model computes each parameterization from the oracle", "[model][mixture]") {
  const gaussian_mixture g = test::golden_mixture();
  const vp_discrete process = vp_discrete::linear();
  const std::vector<double> pts = points(10, 2, 8, 2.0);
  const tensor_d x({10, 2}, pts);
  for (const double t : {0.0, 300.0, 999.0}) {
    const double alpha = process.alpha(t), sigma = process.sigma(t);
    const tensor_d eps = evaluate<eps_param>(process, g, x, t);
    const tensor_d x0 = evaluate<x0_param>(process, g, x, t);
    const tensor_d score = evaluate<score_param>(process, g, x, t);
    const tensor_d v = evaluate<v_param>(process, g, x, t);
    std::vector<double> r(3), want_x0(2), want_score(2);
    for (std::size_t b = 0; b < 10; ++b) {
      const std::span<const double> xb(x.data.data() + 2 * b, 2);
      g.posterior_mean(xb, alpha, sigma, r, want_x0);
      g.score(xb, alpha, sigma, r, want_score);
      for (std::size_t d = 0; d < 2; ++d) {
        const std::size_t j = 2 * b + d;
        INFO("t = " << t << ", sample " << b << ", coordinate " << d);
        CHECK(x0.data[j] == want_x0[d]);
        CHECK(score.data[j] == want_score[d]);
        // eps = E[eps | x] = (x - alpha E[x0|x]) / sigma, v = alpha eps - sigma x0 (Salimans & Ho 2022).
        CHECK_THAT(eps.data[j], WithinRel((x.data[j] - alpha * want_x0[d]) / sigma, 1e-15));
        CHECK_THAT(v.data[j], WithinRel(alpha * eps.data[j] - sigma * want_x0[d], 1e-14) || WithinAbs(0.0, 1e-15));
      }
    }
  }
}

TEMPLATE_LIST_TEST_CASE("gaussian_mixture_model predictions are mutually consistent through convert_coefficients",
                        "[model][mixture]", all_params) {
  using from = TestType;
  const gaussian_mixture g = diagonal_mixture();
  auto check_all = [&](const auto& process, double t) {
    const double alpha = process.alpha(t), sigma = process.sigma(t);
    // Points from the marginal at t: x = alpha x0 + sigma eps.
    tensor_d x0({32, 3}), eps({32, 3}), x({32, 3});
    philox_noise noise(21);
    g.sample(noise, x0);
    noise.fill_normal(std::span<double>(eps.data), 32);
    for (std::size_t i = 0; i < x.data.size(); ++i) x.data[i] = alpha * x0.data[i] + sigma * eps.data[i];
    const tensor_d pred = evaluate<from>(process, g, x, t);
    auto check_to = [&](const tensor_d& want, parameterization to) {
      const conversion c = convert_coefficients(from::kind, to, alpha, sigma);
      double err = 0.0, scale = 1.0;
      for (std::size_t i = 0; i < want.data.size(); ++i) {
        err = std::max(err, std::abs(c.x_coef * x.data[i] + c.pred_coef * pred.data[i] - want.data[i]));
        scale = std::max(scale, std::abs(want.data[i]));
      }
      INFO("t = " << t << " (" << describe({alpha, sigma}) << "), " << name(from::kind) << " -> " << name(to)
                  << ": scaled error " << err / scale);
      // The oracles' own rounding is amplified by 1/sigma or 1/alpha in the conversions (see
      // predictor.test.cpp); a few 1e-13 here.
      CHECK(err <= 2e-12 * scale);
    };
    check_to(evaluate<eps_param>(process, g, x, t), parameterization::eps);
    check_to(evaluate<x0_param>(process, g, x, t), parameterization::x0);
    check_to(evaluate<score_param>(process, g, x, t), parameterization::score);
    check_to(evaluate<v_param>(process, g, x, t), parameterization::v);
  };
  const vp_discrete vp = vp_discrete::linear();
  for (const double t : {0.0, 50.0, 400.0, 800.0}) check_all(vp, t);
  const ve_identity ve;
  for (const double t : {0.02, 1.0, 50.0}) check_all(ve, t);
}

TEST_CASE("gaussian_mixture_model input checks", "[model][mixture]") {
  const vp_discrete process = vp_discrete::linear();
  gaussian_mixture_model<vp_discrete, eps_param> model(test::golden_mixture(), process);
  CHECK(model.mixture().dim() == 2);
  CHECK(model.process().num_timesteps() == 1000);
  SECTION("the elements per sample must be the mixture's dimension") {
    const tensor_d x({4, 3});
    tensor_d out({4, 3});
    CHECK_THAT(invalid_argument_message([&] { model(x, 10.0, out); }),
               Contains("gaussian_mixture_model") && Contains("elements per sample = 3") && Contains("2"));
    const tensor_d flat({4});  // 1 element per sample
    tensor_d flat_out({4});
    CHECK_THAT(invalid_argument_message([&] { model(flat, 10.0, flat_out); }), Contains("elements per sample = 1"));
  }
  SECTION("out must be shaped like x") {
    const tensor_d x({4, 2});
    tensor_d out({3, 2});
    CHECK_THAT(invalid_argument_message([&] { model(x, 10.0, out); }),
               Contains("gaussian_mixture_model") && Contains("[3, 2]") && Contains("[4, 2]"));
  }
  SECTION("the process checks t") {
    const tensor_d x({4, 2});
    tensor_d out({4, 2});
    CHECK_THROWS_AS(model(x, 1000.0, out), std::invalid_argument);
    CHECK_THROWS_AS(model(x, 2.5, out), std::invalid_argument);
  }
}

TEST_CASE("eps and v are undefined at sigma = 0; x0 and score are not", "[model][mixture]") {
  const ve_identity process;  // sigma(0) = 0
  const tensor_d x({2, 2}, {0.5, -1.0, 2.0, 1.5});
  tensor_d out(x.shape);
  gaussian_mixture_model<ve_identity, eps_param> eps_model(test::golden_mixture(), process);
  gaussian_mixture_model<ve_identity, v_param> v_model(test::golden_mixture(), process);
  gaussian_mixture_model<ve_identity, x0_param> x0_model(test::golden_mixture(), process);
  gaussian_mixture_model<ve_identity, score_param> score_model(test::golden_mixture(), process);
  CHECK_THROWS_AS(eps_model(x, 0.0, out), std::domain_error);
  CHECK_THROWS_WITH(eps_model(x, 0.0, out), Contains("sigma = 0") && Contains("sigma > 0"));
  CHECK_THROWS_AS(v_model(x, 0.0, out), std::domain_error);
  CHECK_NOTHROW(eps_model(x, 1e-3, out));
  x0_model(x, 0.0, out);
  for (std::size_t i = 0; i < x.data.size(); ++i)
    CHECK_THAT(out.data[i], WithinRel(x.data[i], 1e-15));  // on the data, E[x0 | x0 = x] = x
  score_model(x, 0.0, out);
  std::vector<double> r(3), want(2);
  test::golden_mixture().score(std::span<const double>(x.data.data(), 2), 1.0, 0.0, r, want);
  CHECK(out.data[0] == want[0]);
  CHECK(out.data[1] == want[1]);
}

TEST_CASE("gaussian_mixture constructor errors name the parameter", "[model][mixture]") {
  using vv = std::vector<std::vector<double>>;
  auto make_iso = [](std::vector<double> w, vv m, std::vector<double> s) {
    return [=] { gaussian_mixture g(w, m, s); };
  };
  auto make_diag = [](std::vector<double> w, vv m, vv s) {
    return [=] { gaussian_mixture g(w, m, s); };
  };
  CHECK_THAT(invalid_argument_message(make_iso({}, {}, {})),
             Contains("gaussian_mixture") && Contains("number of components = 0") && Contains("at least 1"));
  CHECK_THAT(invalid_argument_message(make_iso({0.5, 0.5}, {{0.0}}, {1.0, 1.0})),
             Contains("means.size() = 1") && Contains("2"));
  CHECK_THAT(invalid_argument_message(make_iso({0.5, 0.5}, {{0.0}, {1.0}}, {1.0})),
             Contains("stds.size() = 1") && Contains("2"));
  CHECK_THAT(invalid_argument_message(make_iso({0.5, 0.5}, {{0.0}, {1.0}}, {1.0, 1.0, 1.0})), Contains("stds.size() = 3"));
  CHECK_THAT(invalid_argument_message(make_iso({1.0}, {{}}, {1.0})), Contains("dimension = 0"));
  CHECK_THAT(invalid_argument_message(make_iso({0.5, 0.5}, {{0.0, 1.0}, {1.0}}, {1.0, 1.0})),
             Contains("means[1].size() = 1") && Contains("2"));
  CHECK_THAT(invalid_argument_message(make_diag({0.5, 0.5}, {{0.0, 1.0}, {1.0, 2.0}}, {{1.0, 1.0}, {1.0}})),
             Contains("stds[1].size() = 1") && Contains("2"));
  CHECK_THAT(invalid_argument_message(make_iso({0.5, 0.0}, {{0.0}, {1.0}}, {1.0, 1.0})),
             Contains("weights[1] = 0") && Contains("(0, inf)"));
  CHECK_THAT(invalid_argument_message(make_iso({-0.5, 1.0}, {{0.0}, {1.0}}, {1.0, 1.0})),
             Contains("weights[0] = -0.5"));
  CHECK_THAT(invalid_argument_message(make_iso({std::numeric_limits<double>::infinity(), 1.0}, {{0.0}, {1.0}}, {1.0, 1.0})),
             Contains("weights[0] = inf"));
  CHECK_THAT(invalid_argument_message(make_iso({0.5, 0.5}, {{0.0}, {1.0}}, {1.0, 0.0})),
             Contains("stds = 0") && Contains("(0, inf)"));
  CHECK_THAT(invalid_argument_message(make_iso({0.5, 0.5}, {{0.0}, {1.0}}, {-2.0, 1.0})), Contains("stds = -2"));
  CHECK_THAT(invalid_argument_message(make_diag({1.0}, {{0.0, 1.0}}, {{1.0, std::nan("")}})), Contains("stds = "));
  CHECK_THAT(invalid_argument_message(make_iso({1.0}, {{0.0, std::numeric_limits<double>::infinity()}}, {1.0})),
             Contains("means = inf") && Contains("finite"));
  CHECK_NOTHROW(make_iso({0.5, 0.5}, {{0.0}, {1.0}}, {1.0, 1.0})());
}

TEST_CASE("gaussian_mixture::sample reproduces the mixture's moments and weights", "[model][mixture][statistics]") {
  const std::size_t n = 100000;
  SECTION("the golden 2-D mixture: mean, covariance and component fractions within 5 standard errors") {
    const gaussian_mixture g = test::golden_mixture();
    tensor_d x({n, 2});
    philox_noise noise(2024);
    g.sample(noise, x);
    CHECK(noise.draw_index() == 2);  // one uniform draw for the components, one normal draw
    // The components are > 13 std apart, so the most likely component is the one drawn.
    test::check_reproduces_mixture(g, x.data);
    // Within each component, the spread is its own std (0.3): pooled within-component variance.
    double within = 0.0;
    std::vector<double> r(3);
    for (std::size_t i = 0; i < n; ++i) {
      const std::span<const double> xi(x.data.data() + 2 * i, 2);
      g.responsibilities(xi, 1.0, 0.0, r);
      const std::size_t k = static_cast<std::size_t>(std::max_element(r.begin(), r.end()) - r.begin());
      for (std::size_t d = 0; d < 2; ++d) within += (xi[d] - g.mean(k, d)) * (xi[d] - g.mean(k, d));
    }
    within /= 2.0 * static_cast<double>(n);
    // Var of a chi^2-type mean of 2n squared N(0, 0.09) values: 2 * 0.09^2 / (2n).
    CHECK(std::abs(within - 0.09) <= 5.0 * std::sqrt(2.0 * 0.09 * 0.09 / (2.0 * static_cast<double>(n))));
  }
  SECTION("a diagonal 3-D mixture with overlapping components: mean and covariance") {
    const gaussian_mixture g = diagonal_mixture();
    tensor_d x({n, 3});
    philox_noise noise(77);
    g.sample(noise, x);
    test::check_mean_and_covariance(x.data, 3, g.mean(), g.covariance());
  }
  SECTION("float tensors and determinism") {
    const gaussian_mixture g = test::golden_mixture();
    tensor_f a({1000, 2}), b({1000, 2});
    philox_noise na(5), nb(5);
    g.sample(na, a);
    g.sample(nb, b);
    CHECK(a.data == b.data);
    tensor_d d({1000, 2});
    philox_noise nd(5);
    g.sample(nd, d);
    for (std::size_t i = 0; i < d.data.size(); ++i)
      CHECK_THAT(static_cast<double>(a.data[i]), WithinAbs(d.data[i], 1e-5));
  }
  SECTION("the tensor's sample size must be the mixture's dimension") {
    tensor_d x({10, 3});
    philox_noise noise(1);
    CHECK_THAT(invalid_argument_message([&] { test::golden_mixture().sample(noise, x); }),
               Contains("gaussian_mixture::sample") && Contains("elements per sample = 3"));
  }
}
