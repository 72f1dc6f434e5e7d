// SPDX-License-Identifier: MIT
// Per-time loss weights lambda(t): the last column of the table "All three losses are the same
// denoising objective" (DESIGN.md).
//
// A weight only means something together with the target it multiplies. At a fixed x_t every
// parameterization is an affine function of the implied eps prediction, K = x_coef x + c_K eps
// (parameterization.hpp, detail::from_eps), so the error of a K prediction is c_K times the error
// of the eps prediction it implies:
//     |K_hat - K|^2 = c_K^2 |eps_hat - eps|^2,
//     c_eps = 1,  c_x0 = -sigma/alpha,  c_v = (alpha^2 + sigma^2)/alpha,  c_score = -1/sigma.
// A weighting published for one target therefore gives the same loss for every target when it is
// divided by c_K^2; the weightings below are written that way, so min-SNR or lambda = sigma^2 mean
// the same objective whatever the network predicts.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>

#include "../core/errors.hpp"
#include "../model/parameterization.hpp"
#include "../process/concepts.hpp"

namespace diffusion {

/// A loss weighting for a process: `w(process, t, target)` is the weight lambda(t) >= 0 that
/// multiplies the squared error of a `target` prediction at time t.
template <class W, class Process>
concept loss_weighting = requires(const W& w, const Process& p, double t, parameterization target) {
  { w(p, t, target) } -> std::convertible_to<double>;
};

namespace detail {

/// SNR(t) = alpha(t)^2 / sigma(t)^2 (Kingma et al. 2021, Eq. 1), from the process's own snr(t)
/// where it has one (vp_discrete forms it from alpha_bar without the square roots).
template <has_marginal_coefficients Process>
double snr_at(const Process& p, double t) {
  if constexpr (requires { { p.snr(t) } -> std::convertible_to<double>; }) {
    return p.snr(t);
  } else {
    const double alpha = p.alpha(t);
    const double sigma = p.sigma(t);
    return (alpha * alpha) / (sigma * sigma);
  }
}

/// c_K^2: |K_hat - K|^2 = c_K^2 |eps_hat - eps|^2 at fixed x_t, with c_K the eps coefficient of the
/// one conversion eps -> K (parameterization.hpp). Infinite for x0 and v at alpha = 0, where no eps
/// error is visible in K.
inline double eps_error_scale(parameterization target, double alpha, double sigma) {
  const double c = from_eps(target, alpha, sigma).pred_coef;
  return c * c;
}

/// The weight on a `target` error that gives the same loss as weight `w_eps` on the eps error.
inline double weight_from_eps(double w_eps, parameterization target, double alpha, double sigma) {
  if (target == parameterization::eps) return w_eps;
  return w_eps / eps_error_scale(target, alpha, sigma);
}

}  // namespace detail

/// lambda(t) = 1 on whatever the network predicts: Ho et al. 2020's L_simple (Eq. 14) for an eps
/// target, plain mean squared error for x0 or v targets.
struct unit_weight {
  template <class Process>
  double operator()(const Process&, double, parameterization) const {
    return 1.0;
  }
};

/// Min-SNR-gamma weighting (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting
/// Strategy", ICCV): lambda = min(SNR(t), gamma) on the x0 error, hence
///     eps target:  min(SNR, gamma) / SNR
///     x0 target:   min(SNR, gamma)
///     v target:    min(SNR, gamma) / (SNR + 1)     (for VP processes, alpha^2 + sigma^2 = 1)
///     score:       min(SNR, gamma) / SNR * sigma^2
/// the published eps and v forms (also diffusers' train_text_to_image.py `snr_gamma`). Every form
/// is the eps form divided by c_K^2 (see the top of this file); for v this is the general
/// min(SNR, gamma)/SNR * alpha^2/(alpha^2 + sigma^2)^2, which equals the published form on VP
/// processes and keeps the loss target-independent on others.
class min_snr_weight {
 public:
  /// \param gamma the SNR cap (5 in the paper). \throws std::invalid_argument unless finite and > 0.
  explicit min_snr_weight(double gamma) : m_gamma(gamma) {
    require(std::isfinite(gamma) && gamma > 0.0, "min_snr_weight", "gamma", gamma, "(0, inf), finite");
  }

  double gamma() const noexcept { return m_gamma; }

  template <has_marginal_coefficients Process>
  double operator()(const Process& p, double t, parameterization target) const {
    const double snr = detail::snr_at(p, t);
    if (target == parameterization::x0) return x0_weight(snr);
    return detail::weight_from_eps(eps_weight(snr), target, p.alpha(t), p.sigma(t));
  }

  /// min(SNR, gamma), the x0-target weight.
  double x0_weight(double snr) const { return std::min(snr, m_gamma); }

  /// min(SNR, gamma) / SNR, the eps-target weight, written as min(1, gamma/SNR) so that SNR = 0
  /// (a zero-terminal-SNR timestep) gives its limit 1 instead of 0/0.
  double eps_weight(double snr) const { return snr > m_gamma ? m_gamma / snr : 1.0; }

 private:
  double m_gamma;
};

/// NCSN's lambda(sigma) = sigma^2 on the score error (Song & Ermon 2019, Eq. 6 and Sec. 4.2), which
/// makes every noise level contribute equally: on an eps target it is 1 (sigma^2 |s - (-eps/sigma)|^2
/// = |sigma s + eps|^2). Song et al. 2021 choose the same for their continuous objective (Eq. 7:
/// lambda(t) proportional to 1 / E|grad log p_0t(x_t | x_0)|^2, i.e. sigma(t)^2 for a Gaussian
/// kernel). Converted to the target as above.
struct sigma_squared_weight {
  template <has_marginal_coefficients Process>
  double operator()(const Process& p, double t, parameterization target) const {
    const double sigma = p.sigma(t);
    if (target == parameterization::score) return sigma * sigma;
    return detail::weight_from_eps(1.0, target, p.alpha(t), sigma);
  }
};

}  // namespace diffusion
