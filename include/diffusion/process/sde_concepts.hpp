// SPDX-License-Identifier: MIT
// What a forward SDE with a drift linear in x provides (Song et al. 2021, "Score-Based Generative
// Modeling through Stochastic Differential Equations"): the coefficients f(t), g(t) of
// dx = f(t) x dt + g(t) dw on [0, T], its prior, and the discretization that the reverse-diffusion
// predictor and the Langevin corrector use.
#pragma once

#include <concepts>
#include <cstddef>
#include <span>

#include "concepts.hpp"

namespace diffusion {

/// One step of a forward SDE discretized as x_{i+1} = x_i + f_i(x_i) + G_i z_i (Song et al. 2021,
/// App. E, reverse diffusion samplers), with f_i linear in x: f_i(x) = f_coef x.
struct sde_discretization {
  double f_coef;  ///< f_i(x) = f_coef x
  double g_coef;  ///< G_i, the standard deviation of the step's noise
};

/// One ancestral sampling step: x_mean = x_coef x + score_coef score, x = x_mean + noise_std z
/// (Song et al. 2021, App. F; score_sde `AncestralSamplingPredictor`).
struct ancestral_coefficients {
  double x_coef;
  double score_coef;
  double noise_std;
};

/// A process with ancestral sampling steps at the discrete index of t (VP: DDPM's step, VE:
/// SMLD's step; score_sde has none for sub-VP).
template <class P>
concept has_ancestral_step = requires(const P& p, double t) {
  { p.ancestral_step(t) } -> std::same_as<ancestral_coefficients>;
};

/// The SDE coefficients of dx = f(t) x dt + g(t) dw (Song et al. 2021, Eq. 5 with f(x, t) = f(t) x).
///
/// Semantic requirements the compiler cannot check: with x_t = alpha(t) x_0 + sigma(t) eps the
/// marginal of the same process,
///   drift_scale(t) = f(t) = d log alpha / dt,
///   diffusion(t)^2 = g(t)^2 = d sigma^2 / dt - 2 f(t) sigma(t)^2,
/// (DESIGN.md, "One view of all three families"); both are finite on [0, end_time()].
template <class P>
concept has_sde_coefficients = requires(const P& p, double t) {
  { p.drift_scale(t) } -> std::convertible_to<double>;
  { p.diffusion(t) } -> std::convertible_to<double>;
};

/// The prior p_T = N(0, prior_std()^2 I) that sampling starts from.
///
/// Semantic requirements: prior_log_density(x) is log p_T(x) of ONE sample x (all its
/// coordinates); the process also has a member template sample_prior(be, noise, x) that fills the
/// tensor x with prior_std() times exactly one standard normal draw of `noise`.
template <class P>
concept has_sde_prior = requires(const P& p, std::span<const double> x) {
  { p.prior_std() } -> std::convertible_to<double>;
  { p.prior_log_density(x) } -> std::convertible_to<double>;
};

/// The discretization with N steps used by the reverse-diffusion predictor and the Langevin
/// corrector (REFERENCE.md, item 13).
///
/// Semantic requirements: discrete_index(t) = floor(t (N - 1) / T) with N = num_steps();
/// discretize(t) and langevin_alpha(t) are the values at that index.
template <class P>
concept has_sde_discretization = requires(const P& p, double t) {
  { p.num_steps() } -> std::convertible_to<std::size_t>;
  { p.discrete_index(t) } -> std::convertible_to<std::size_t>;
  { p.discretize(t) } -> std::same_as<sde_discretization>;
  { p.langevin_alpha(t) } -> std::convertible_to<double>;
};

/// A continuous-time forward SDE on [0, end_time()] with a drift linear in x: marginal
/// coefficients, SDE coefficients, prior and discretization. Every SDE sampler requires it.
template <class P>
concept sde_process = continuous_process<P> && has_sde_coefficients<P> && has_sde_prior<P> &&
                      has_sde_discretization<P> && requires {
                        { P::end_time() } -> std::convertible_to<double>;
                      };

}  // namespace diffusion
