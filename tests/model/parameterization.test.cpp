// SPDX-License-Identifier: MIT
// convert_coefficients against the closed forms of every (from, to) pair. With x = alpha x0 + sigma eps:
//   x0 = (x - sigma eps) / alpha,  score = -eps / sigma,  v = alpha eps - sigma x0
// (Salimans & Ho 2022, Sec. 4 and Appendix D), so every pair is target = c_x x + c_p prediction.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <diffusion/model/parameterization.hpp>
#include <diffusion/random/philox_noise.hpp>

using namespace diffusion;
using Catch::Matchers::Contains;
using Catch::Matchers::WithinRel;

namespace {

using P = parameterization;
constexpr std::array<P, 4> all_kinds{P::eps, P::x0, P::score, P::v};

/// The closed form of each conversion, written from the definitions with n = alpha^2 + sigma^2
/// (sigma x + alpha v = n eps and alpha x - sigma v = n x0 follow from the two definitions):
conversion closed_form(P from, P to, double a, double s) {
  const double n = a * a + s * s;
  if (from == to) return {0.0, 1.0};
  switch (from) {
    case P::eps:
      switch (to) {
        case P::x0: return {1.0 / a, -s / a};          // x0 = (x - s eps) / a
        case P::score: return {0.0, -1.0 / s};         // score = -eps / s
        case P::v: return {-s / a, n / a};             // v = a eps - s (x - s eps) / a
        default: break;
      }
      break;
    case P::x0:
      switch (to) {
        case P::eps: return {1.0 / s, -a / s};         // eps = (x - a x0) / s
        case P::score: return {-1.0 / (s * s), a / (s * s)};  // score = -(x - a x0) / s^2
        case P::v: return {a / s, -n / s};             // v = a (x - a x0) / s - s x0
        default: break;
      }
      break;
    case P::score:
      switch (to) {
        case P::eps: return {0.0, -s};                 // eps = -s score
        case P::x0: return {1.0 / a, s * s / a};       // Tweedie: x0 = (x + s^2 score) / a
        case P::v: return {-s / a, -s * n / a};        // v = -a s score - s (x + s^2 score) / a
        default: break;
      }
      break;
    case P::v:
      switch (to) {
        case P::eps: return {s / n, a / n};            // eps = (s x + a v) / n
        case P::x0: return {a / n, -s / n};            // x0 = (a x - s v) / n
        case P::score: return {-1.0 / n, -a / (s * n)};  // score = -(s x + a v) / (s n)
        default: break;
      }
      break;
  }
  FAIL("unreachable");
  return {};
}

struct coefficients {
  double alpha, sigma;
};

/// VP-like pairs (alpha^2 + sigma^2 = 1) from clean to nearly pure noise, the VE-like pair
/// (alpha = 1, sigma = 50), EDM's extremes, and random pairs spanning six decades of SNR.
std::vector<coefficients> test_coefficients() {
  std::vector<coefficients> c;
  for (double abar : {0.9999, 0.99, 0.5, 0.05, 4.0358e-5})  // 4.0358e-5: abar(999) of the linear schedule
    c.push_back({std::sqrt(abar), std::sqrt(1.0 - abar)});
  c.push_back({1.0, 50.0});
  c.push_back({1.0, 0.002});
  c.push_back({1.0, 80.0});
  philox_noise noise(7);
  std::vector<double> u(40);
  noise.fill_uniform(std::span<double>(u), 1);
  for (std::size_t i = 0; i < u.size(); i += 2)
    c.push_back({std::exp(std::log(0.05) + u[i] * std::log(2.0 / 0.05)),        // alpha in [0.05, 2)
                 std::exp(std::log(0.01) + u[i + 1] * std::log(80.0 / 0.01))});  // sigma in [0.01, 80)
  return c;
}

std::string describe(P from, P to, coefficients c) {
  return std::string(name(from)) + " -> " + std::string(name(to)) + " at alpha = " + detail::format_value(c.alpha) +
         ", sigma = " + detail::format_value(c.sigma);
}

/// The message of the std::domain_error that convert_coefficients throws ("" if it throws nothing).
std::string domain_error_message(P from, P to, double alpha, double sigma) {
  try {
    (void)convert_coefficients(from, to, alpha, sigma);
  } catch (const std::domain_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("parameterization tags and names", "[predictor][parameterization]") {
  static_assert(parameterization_tag<eps_param> && parameterization_tag<x0_param> &&
                parameterization_tag<score_param> && parameterization_tag<v_param>);
  static_assert(!parameterization_tag<int> && !parameterization_tag<parameterization>);
  static_assert(eps_param::kind == P::eps && x0_param::kind == P::x0 && score_param::kind == P::score &&
                v_param::kind == P::v);
  static_assert(name(P::eps) == "eps" && name(P::x0) == "x0" && name(P::score) == "score" && name(P::v) == "v");
}

TEST_CASE("convert_coefficients matches the closed form of every pair", "[predictor][parameterization]") {
  const P from = GENERATE(from_range(all_kinds));
  const P to = GENERATE(from_range(all_kinds));
  for (const coefficients c : test_coefficients()) {
    INFO(describe(from, to, c));
    const conversion got = convert_coefficients(from, to, c.alpha, c.sigma);
    const conversion want = closed_form(from, to, c.alpha, c.sigma);
    // WithinRel(0, tol) accepts only 0: a coefficient that should vanish must vanish exactly.
    CHECK_THAT(got.x_coef, WithinRel(want.x_coef, 1e-12));
    CHECK_THAT(got.pred_coef, WithinRel(want.pred_coef, 1e-12));
  }
}

TEST_CASE("converted predictions agree with the definitions on actual values", "[predictor][parameterization]") {
  // Independent of closed_form above: build x0 and eps, form x and all four targets from the
  // definitions, and check target_to = c_x x + c_p target_from.
  philox_noise noise(11);
  std::vector<double> z(64);
  noise.fill_normal(std::span<double>(z), 1);
  const P from = GENERATE(from_range(all_kinds));
  const P to = GENERATE(from_range(all_kinds));
  for (const coefficients c : test_coefficients()) {
    INFO(describe(from, to, c));
    for (std::size_t i = 0; i < z.size(); i += 2) {
      const double x0 = 2.0 * z[i], eps = z[i + 1];
      const double x = c.alpha * x0 + c.sigma * eps;
      const double score = -eps / c.sigma;
      const double v = c.alpha * eps - c.sigma * x0;
      auto value = [&](P p) { return p == P::eps ? eps : p == P::x0 ? x0 : p == P::score ? score : v; };
      const conversion k = convert_coefficients(from, to, c.alpha, c.sigma);
      const double got = k.x_coef * x + k.pred_coef * value(from);
      // Rounding of the inputs is amplified by the size of the two terms that cancel.
      const double scale = std::abs(k.x_coef * x) + std::abs(k.pred_coef * value(from)) + std::abs(value(to));
      CHECK(std::abs(got - value(to)) <= 1e-13 * scale);
    }
  }
}

TEST_CASE("round trips A -> B -> A are the identity", "[predictor][parameterization]") {
  const P a = GENERATE(from_range(all_kinds));
  const P b = GENERATE(from_range(all_kinds));
  for (const coefficients c : test_coefficients()) {
    INFO(describe(a, b, c) << " and back");
    const conversion there = convert_coefficients(a, b, c.alpha, c.sigma);
    const conversion back = convert_coefficients(b, a, c.alpha, c.sigma);
    // a' = (back.x + back.p there.x) x + back.p there.p a
    CHECK_THAT(back.pred_coef * there.pred_coef, WithinRel(1.0, 1e-12));
    const double x_part = back.x_coef + back.pred_coef * there.x_coef;
    CHECK(std::abs(x_part) <= 1e-12 * (std::abs(back.x_coef) + std::abs(back.pred_coef * there.x_coef)));
  }
}

TEST_CASE("the same parameterization converts to itself everywhere", "[predictor][parameterization]") {
  const P p = GENERATE(from_range(all_kinds));
  for (const double alpha : {0.0, 0.5, 1.0})
    for (const double sigma : {0.0, 0.5, 50.0}) {
      const conversion k = convert_coefficients(p, p, alpha, sigma);
      CHECK(k.x_coef == 0.0);
      CHECK(k.pred_coef == 1.0);
    }
}

TEST_CASE("conversions that exist at sigma = 0 or alpha = 0 are allowed", "[predictor][parameterization]") {
  SECTION("sigma = 0: the clean end of a grid") {
    const double alpha = 0.8;
    for (auto [from, to] : {std::pair{P::eps, P::x0}, std::pair{P::eps, P::v}, std::pair{P::score, P::eps},
                            std::pair{P::score, P::x0}, std::pair{P::score, P::v}, std::pair{P::v, P::eps},
                            std::pair{P::v, P::x0}}) {
      INFO(name(from) << " -> " << name(to));
      const conversion got = convert_coefficients(from, to, alpha, 0.0);
      const conversion want = closed_form(from, to, alpha, 0.0);
      CHECK_THAT(got.x_coef, WithinRel(want.x_coef, 1e-15));
      CHECK_THAT(got.pred_coef, WithinRel(want.pred_coef, 1e-15));
    }
  }
  SECTION("alpha = 0: zero terminal SNR") {
    // x0 and v determine each other without alpha (alpha x - sigma v = (alpha^2 + sigma^2) x0), which
    // is why v prediction is the one that works at zero terminal SNR (Lin et al. 2024, Sec. 3.2).
    const double sigma = 1.0;
    for (auto [from, to] : {std::pair{P::eps, P::score}, std::pair{P::x0, P::eps}, std::pair{P::x0, P::score},
                            std::pair{P::score, P::eps}, std::pair{P::v, P::eps}, std::pair{P::v, P::score},
                            std::pair{P::v, P::x0}, std::pair{P::x0, P::v}}) {
      INFO(name(from) << " -> " << name(to));
      const conversion got = convert_coefficients(from, to, 0.0, sigma);
      const conversion want = closed_form(from, to, 0.0, sigma);
      CHECK_THAT(got.x_coef, WithinRel(want.x_coef, 1e-15));
      CHECK_THAT(got.pred_coef, WithinRel(want.pred_coef, 1e-15));
    }
  }
}

TEST_CASE("undefined conversions throw std::domain_error naming alpha and sigma", "[predictor][parameterization]") {
  SECTION("sigma = 0: to score, or from x0") {
    for (const double sigma : {0.0, -0.0, -1.0}) {
      for (auto [from, to] : {std::pair{P::eps, P::score}, std::pair{P::x0, P::score}, std::pair{P::v, P::score},
                              std::pair{P::x0, P::eps}, std::pair{P::x0, P::v}}) {
        INFO(name(from) << " -> " << name(to) << " at sigma = " << sigma);
        const std::string msg = domain_error_message(from, to, 0.7, sigma);
        CHECK_THAT(msg, Contains("convert_coefficients") && Contains(std::string(name(from))) &&
                            Contains(std::string(name(to))) && Contains("alpha = 0.69999999999999996") &&
                            Contains("sigma = " + detail::format_value(sigma)) && Contains("sigma > 0"));
      }
    }
  }
  SECTION("alpha = 0: to x0 or v from eps or score (x = sigma eps holds no trace of x0)") {
    for (const double alpha : {0.0, -0.5}) {
      for (auto [from, to] : {std::pair{P::eps, P::x0}, std::pair{P::score, P::x0}, std::pair{P::eps, P::v},
                              std::pair{P::score, P::v}}) {
        INFO(name(from) << " -> " << name(to) << " at alpha = " << alpha);
        const std::string msg = domain_error_message(from, to, alpha, 1.0);
        CHECK_THAT(msg, Contains("alpha = " + detail::format_value(alpha)) && Contains("sigma = 1") &&
                            Contains("alpha > 0"));
      }
    }
  }
  SECTION("alpha = sigma = 0 from v (x = 0 whatever x0 and eps are)") {
    for (const P to : {P::eps, P::x0, P::score}) {
      INFO("v -> " << name(to));
      CHECK_THAT(domain_error_message(P::v, to, 0.0, 0.0), Contains("alpha = 0") && Contains("sigma = 0"));
    }
  }
  SECTION("non-finite alpha or sigma, for every pair of different parameterizations") {
    const double inf = std::numeric_limits<double>::infinity();
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const P from = GENERATE(from_range(all_kinds));
    const P to = GENERATE(from_range(all_kinds));
    if (from != to) {
      for (auto [alpha, sigma] : {std::pair{nan, 0.5}, std::pair{0.5, nan}, std::pair{inf, 0.5},
                                  std::pair{0.5, inf}, std::pair{-inf, 0.5}}) {
        INFO(name(from) << " -> " << name(to) << " at alpha = " << alpha << ", sigma = " << sigma);
        const std::string msg = domain_error_message(from, to, alpha, sigma);
        CHECK_THAT(msg, Contains("alpha = ") && Contains("sigma = ") && Contains("finite"));
      }
    }
  }
}

TEST_CASE("every conversion either throws std::domain_error or returns finite coefficients",
          "[predictor][parameterization]") {
  // Nothing undefined may come back as inf or NaN coefficients, which would silently poison a run.
  const P from = GENERATE(from_range(all_kinds));
  const P to = GENERATE(from_range(all_kinds));
  const double inf = std::numeric_limits<double>::infinity();
  // alpha = sigma = 0 leaves v -> eps dividing by alpha^2 + sigma^2 = 0; 1e-200 and 1e200 overflow
  // coefficients such as 1/sigma^2 or alpha^2 + sigma^2.
  for (const double alpha : {0.0, 1e-200, 1e-3, 0.5, 1.0, 1e200, inf})
    for (const double sigma : {0.0, 1e-200, 1e-3, 0.5, 50.0, 1e200, inf}) {
      INFO(name(from) << " -> " << name(to) << " at alpha = " << alpha << ", sigma = " << sigma);
      try {
        const conversion k = convert_coefficients(from, to, alpha, sigma);
        CHECK(std::isfinite(k.x_coef));
        CHECK(std::isfinite(k.pred_coef));
      } catch (const std::domain_error&) {
        SUCCEED();
      }
    }
}
