// SPDX-License-Identifier: MIT
// What a model predicts (eps, x0, score, v) and the one place where predictions are converted.
//
// With x = alpha x0 + sigma eps every parameterization is a linear function of (x, prediction):
//   x0    = (x - sigma eps) / alpha
//   score = -eps / sigma
//   v     = alpha eps - sigma x0                      (Salimans & Ho 2022, Sec. 4)
// so converting is one fused linear combination target = c_x x + c_pred prediction.
#pragma once

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>

#include "../core/errors.hpp"

namespace diffusion {

enum class parameterization { eps, x0, score, v };

/// Tags a model uses to declare its output: `using parameterization = diffusion::eps_param;`.
struct eps_param { static constexpr parameterization kind = parameterization::eps; };
struct x0_param { static constexpr parameterization kind = parameterization::x0; };
struct score_param { static constexpr parameterization kind = parameterization::score; };
struct v_param { static constexpr parameterization kind = parameterization::v; };

template <class P>
concept parameterization_tag = requires {
  { P::kind } -> std::convertible_to<parameterization>;
};

constexpr std::string_view name(parameterization p) {
  switch (p) {
    case parameterization::eps: return "eps";
    case parameterization::x0: return "x0";
    case parameterization::score: return "score";
    case parameterization::v: return "v";
  }
  return "?";
}

/// target = x_coef * x + pred_coef * prediction.
struct conversion {
  double x_coef;
  double pred_coef;
};

namespace detail {

// eps expressed through (x, prediction), from x = alpha x0 + sigma eps.
inline conversion to_eps(parameterization from, double alpha, double sigma) {
  switch (from) {
    case parameterization::eps: return {0.0, 1.0};
    case parameterization::x0: return {1.0 / sigma, -alpha / sigma};  // eps = (x - alpha x0) / sigma
    case parameterization::score: return {0.0, -sigma};              // eps = -sigma score
    case parameterization::v: {                                      // sigma x + alpha v = (alpha^2 + sigma^2) eps
      const double n = alpha * alpha + sigma * sigma;
      return {sigma / n, alpha / n};
    }
  }
  return {0.0, 0.0};
}

[[noreturn, gnu::cold, gnu::noinline]] inline void throw_conversion_error(parameterization from, parameterization to,
                                                                          double alpha, double sigma) {
  throw std::domain_error(concat({"convert_coefficients: cannot convert a ", name(from), " prediction to ", name(to),
                                  " at alpha = ", alpha, ", sigma = ", sigma,
                                  "; valid range: alpha > 0 and sigma > 0 (finite)"}));
}

// (x, eps) -> target: target = a x + b eps.
inline conversion from_eps(parameterization to, double alpha, double sigma) {
  switch (to) {
    case parameterization::eps: return {0.0, 1.0};
    case parameterization::x0: return {1.0 / alpha, -sigma / alpha};
    case parameterization::score: return {0.0, -1.0 / sigma};
    case parameterization::v: {  // v = alpha eps - sigma (x - sigma eps)/alpha
      return {-sigma / alpha, alpha + sigma * sigma / alpha};
    }
  }
  return {0.0, 0.0};
}

}  // namespace detail

/// Coefficients turning a `from` prediction at a point with marginal coefficients (alpha, sigma)
/// into a `to` prediction: to = x_coef x + pred_coef from. Throws std::domain_error where the
/// conversion is undefined: sigma = 0 from x0 or to score; alpha = 0 to x0 or v, except between x0
/// and v, which determine each other wherever alpha^2 + sigma^2 > 0 (v prediction stays usable at
/// zero terminal SNR, Lin et al. 2024, Sec. 3.2); and wherever a coefficient is not finite.
inline conversion convert_coefficients(parameterization from, parameterization to, double alpha, double sigma) {
  if (from == to) return {0.0, 1.0};
  using enum parameterization;
  const bool x0_v = (from == x0 && to == v) || (from == v && to == x0);
  const bool needs_sigma = from == x0 || to == score;
  const bool needs_alpha = !x0_v && (to == x0 || to == v);
  conversion c{std::numeric_limits<double>::quiet_NaN(), 0.0};
  if (!(needs_sigma && !(sigma > 0.0)) && !(needs_alpha && !(alpha > 0.0)) && std::isfinite(alpha) &&
      std::isfinite(sigma)) {
    const double n = alpha * alpha + sigma * sigma;
    if (from == x0 && to == v) {
      c = {alpha / sigma, -n / sigma};  // v = alpha (x - alpha x0)/sigma - sigma x0
    } else if (from == v && to == x0) {
      c = {alpha / n, -sigma / n};  // alpha x - sigma v = (alpha^2 + sigma^2) x0
    } else {
      // Through eps; for these pairs the composition has no cancellation (x0 <-> v would lose
      // (sigma/alpha)^2 ulps in x_coef).
      const conversion e = detail::to_eps(from, alpha, sigma);
      const conversion t = detail::from_eps(to, alpha, sigma);
      c = {t.x_coef + t.pred_coef * e.x_coef, t.pred_coef * e.pred_coef};
    }
  }
  if (!std::isfinite(c.x_coef) || !std::isfinite(c.pred_coef)) [[unlikely]]
    detail::throw_conversion_error(from, to, alpha, sigma);
  return c;
}

}  // namespace diffusion
