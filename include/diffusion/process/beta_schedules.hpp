// SPDX-License-Identifier: MIT
// Beta schedules of the discrete VP (DDPM) process, computed in double.
//
// Each schedule reproduces the formula of huggingface/diffusers (DDPMScheduler.__init__,
// betas_for_alpha_bar, rescale_zero_terminal_snr) evaluated in float64, so the tables agree with
// that library's float64 tables to a few ULP (REFERENCE.md, item 1).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/errors.hpp"
#include "../core/linspace.hpp"

namespace diffusion {

namespace detail {

inline void check_num_timesteps(std::size_t num_timesteps, std::string_view where) {
  require(num_timesteps >= 1, where, "num_timesteps", num_timesteps, "at least 1");
}

/// A finite value strictly inside (0, 1), as every beta of a schedule must be.
inline void check_open_unit(double value, std::string_view where, std::string_view parameter) {
  require(std::isfinite(value) && value > 0.0 && value < 1.0, where, parameter, value, "(0, 1)");
}

/// The rule for a beta table: T >= 1, every entry finite and in (0, 1), except that the last entry
/// may be exactly 1 when T >= 2. A last beta of 1 makes alpha_bar(T-1) = 0, the zero terminal SNR
/// of Lin et al. 2024 (Algorithm 1), where x_{T-1} is pure noise; with T = 1 it would leave no
/// timestep that carries any signal, so it is rejected there.
[[gnu::noinline]] inline void check_betas(const std::vector<double>& betas, std::string_view where) {
  require(!betas.empty(), where, "betas.size()", betas.size(), "at least 1");
  const std::size_t last = betas.size() - 1;
  for (std::size_t i = 0; i < betas.size(); ++i) {
    const double b = betas[i];
    const bool may_be_one = i == last && i > 0;
    if (!(std::isfinite(b) && b > 0.0 && (b < 1.0 || (may_be_one && b == 1.0)))) [[unlikely]]
      throw_invalid_parts(where, {"betas[", i, "]"}, b,
                          {may_be_one     ? "(0, 1] (only the last beta may be 1: zero terminal SNR)"
                           : i == last ? "(0, 1) (a last beta of 1 needs num_timesteps >= 2)"
                                       : "(0, 1)"});
  }
}

/// The logistic function 1/(1 + e^{-x}).
inline double logistic(double x) { return 1.0 / (1.0 + std::exp(-x)); }

/// f(t) = cos^2((t + s)/(1 + s) pi/2), Nichol & Dhariwal 2021, Eq. 17 (before normalising by f(0)),
/// with diffusers' order of operations.
inline double cosine_alpha_bar(double t, double s) {
  const double c = std::cos((t + s) / (1.0 + s) * std::numbers::pi / 2.0);
  return c * c;
}

}  // namespace detail

/// Linearly spaced betas, Ho et al. 2020, Sec. 4 (there 1e-4 .. 0.02 over T = 1000):
/// beta_i = linspace(beta_start, beta_end, T)_i (diffusers "linear").
/// \throws std::invalid_argument unless T >= 1 and beta_start, beta_end are in (0, 1).
inline std::vector<double> linear_betas(double beta_start, double beta_end, std::size_t num_timesteps) {
  detail::check_num_timesteps(num_timesteps, "linear_betas");
  detail::check_open_unit(beta_start, "linear_betas", "beta_start");
  detail::check_open_unit(beta_end, "linear_betas", "beta_end");
  return linspace(beta_start, beta_end, num_timesteps);
}

/// Betas whose square roots are linearly spaced (Rombach et al. 2022, Stable Diffusion; diffusers
/// "scaled_linear"): beta_i = linspace(sqrt(beta_start), sqrt(beta_end), T)_i^2.
/// \throws std::invalid_argument unless T >= 1 and beta_start, beta_end are in (0, 1).
inline std::vector<double> scaled_linear_betas(double beta_start, double beta_end, std::size_t num_timesteps) {
  detail::check_num_timesteps(num_timesteps, "scaled_linear_betas");
  detail::check_open_unit(beta_start, "scaled_linear_betas", "beta_start");
  detail::check_open_unit(beta_end, "scaled_linear_betas", "beta_end");
  std::vector<double> b = linspace(std::sqrt(beta_start), std::sqrt(beta_end), num_timesteps);
  for (double& v : b) v = v * v;
  return b;
}

/// The cosine schedule, Nichol & Dhariwal 2021, Eq. 17 with betas from alpha_bar ratios as in
/// their Sec. 3.2 (diffusers "squaredcos_cap_v2"):
///   beta_i = min(1 - f((i + 1)/T) / f(i/T), max_beta),  f(t) = cos^2((t + s)/(1 + s) pi/2).
/// The cap keeps the last betas away from 1, where f reaches 0 (their choice: 0.999).
/// \throws std::invalid_argument unless T >= 1, max_beta is in (0, 1] and s is finite and >= 0.
inline std::vector<double> cosine_betas(std::size_t num_timesteps, double max_beta = 0.999, double s = 0.008) {
  detail::check_num_timesteps(num_timesteps, "cosine_betas");
  require(std::isfinite(max_beta) && max_beta > 0.0 && max_beta <= 1.0, "cosine_betas", "max_beta", max_beta,
          "(0, 1]");
  require(std::isfinite(s) && s >= 0.0, "cosine_betas", "s", s, "[0, inf), finite");
  const double T = static_cast<double>(num_timesteps);
  std::vector<double> b(num_timesteps);
  for (std::size_t i = 0; i < num_timesteps; ++i) {
    const double t1 = static_cast<double>(i) / T;
    const double t2 = static_cast<double>(i + 1) / T;
    b[i] = std::min(1.0 - detail::cosine_alpha_bar(t2, s) / detail::cosine_alpha_bar(t1, s), max_beta);
  }
  return b;
}

/// The sigmoid schedule of GeoDiff (Xu et al. 2022), as diffusers "sigmoid" computes it:
///   beta_i = logistic(linspace(-6, 6, T)_i) (beta_end - beta_start) + beta_start.
/// \throws std::invalid_argument unless T >= 1 and beta_start, beta_end are in (0, 1).
inline std::vector<double> sigmoid_betas(double beta_start, double beta_end, std::size_t num_timesteps) {
  detail::check_num_timesteps(num_timesteps, "sigmoid_betas");
  detail::check_open_unit(beta_start, "sigmoid_betas", "beta_start");
  detail::check_open_unit(beta_end, "sigmoid_betas", "beta_end");
  std::vector<double> b = linspace(-6.0, 6.0, num_timesteps);
  for (double& v : b) v = detail::logistic(v) * (beta_end - beta_start) + beta_start;
  return b;
}

/// Zero terminal SNR, Lin et al. 2024 ("Common Diffusion Noise Schedules and Sample Steps are
/// Flawed"), Algorithm 1: shift sqrt(alpha_bar) so that its last entry is 0 and scale it so that
/// its first is unchanged, then recover the betas from alpha_bar ratios. The last returned beta
/// is exactly 1 (alpha_bar(T-1) = 0); the others stay in (0, 1).
/// \throws std::invalid_argument unless T >= 2 and the betas satisfy the rule of vp_discrete
///         (an input whose last beta is already 1 comes back unchanged up to rounding).
inline std::vector<double> rescale_zero_terminal_snr(std::vector<double> betas) {
  constexpr std::string_view where = "rescale_zero_terminal_snr";
  require(betas.size() >= 2, where, "betas.size()", betas.size(), "at least 2");
  detail::check_betas(betas, where);
  std::vector<double> sqrt_abar(betas.size());
  double abar = 1.0;
  for (std::size_t i = 0; i < betas.size(); ++i) {
    abar *= 1.0 - betas[i];
    sqrt_abar[i] = std::sqrt(abar);
  }
  const double first = sqrt_abar.front();
  const double last = sqrt_abar.back();
  // Only rounding can make them equal (betas so small that alpha_bar never moves).
  require(last < first, where, "alpha_bar", abar, "strictly below alpha_bar(0) at the last timestep");
  const double scale = first / (first - last);
  for (double& v : sqrt_abar) v = (v - last) * scale;
  // alpha_i = alpha_bar_i / alpha_bar_{i-1}, alpha_0 = alpha_bar_0; diffusers' order of operations.
  double prev = 1.0;
  for (std::size_t i = 0; i < betas.size(); ++i) {
    const double abar_i = sqrt_abar[i] * sqrt_abar[i];
    betas[i] = 1.0 - (i == 0 ? abar_i : abar_i / prev);
    prev = abar_i;
  }
  return betas;
}

}  // namespace diffusion
