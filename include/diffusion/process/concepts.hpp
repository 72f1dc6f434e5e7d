// SPDX-License-Identifier: MIT
// What a forward noise process provides. Every process in scope perturbs data with a Gaussian
// kernel x_t = alpha(t) x_0 + sigma(t) eps (DESIGN.md, "One view of all three families").
#pragma once

#include <concepts>
#include <cstddef>

namespace diffusion {

/// Time-kind tags: a discrete process is indexed by integer timesteps or levels, a continuous one
/// by t in an interval. Samplers state which kind they accept.
struct discrete_time {};
struct continuous_time {};

/// The marginal coefficients alpha(t), sigma(t) of x_t = alpha(t) x_0 + sigma(t) eps, in double.
template <class P>
concept has_marginal_coefficients = requires(const P& p, double t) {
  { p.alpha(t) } -> std::convertible_to<double>;
  { p.sigma(t) } -> std::convertible_to<double>;
};

/// A forward noise process: marginal coefficients plus a declared time kind.
template <class P>
concept noise_process = has_marginal_coefficients<P> && requires { typename P::time_kind; };

template <class P>
concept discrete_process = noise_process<P> && std::same_as<typename P::time_kind, discrete_time>;

template <class P>
concept continuous_process = noise_process<P> && std::same_as<typename P::time_kind, continuous_time>;

/// A discrete variance-preserving process (DDPM family): cumulative products alpha_bar(t) of a
/// beta table, with num_timesteps() training timesteps 0..T-1.
template <class P>
concept discrete_vp_process = discrete_process<P> && requires(const P& p, double t) {
  { p.alpha_bar(t) } -> std::convertible_to<double>;
  { p.num_timesteps() } -> std::convertible_to<std::size_t>;
};

/// A discrete variance-exploding process (NCSN, Song & Ermon 2019, Sec. 4.1): L = num_levels()
/// noise levels indexed by the time t = 0, ..., L-1.
///
/// Semantic requirements the compiler cannot check: alpha(i) = 1 at every level, and sigma(i) is
/// strictly decreasing in i (index 0 is the largest level, the paper's sigma_1; index L-1 the
/// smallest, sigma_L), as diffusion::ve_discrete orders them.
template <class P>
concept discrete_ve_process = discrete_process<P> && requires(const P& p) {
  { p.num_levels() } -> std::convertible_to<std::size_t>;
};

}  // namespace diffusion
