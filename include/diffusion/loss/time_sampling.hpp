// SPDX-License-Identifier: MIT
// How a denoising loss draws the training time of each sample: the first column of the table
// "All three losses are the same denoising objective" (DESIGN.md). One uniform u in [0, 1) per
// sample is mapped to a time, so a loss consumes exactly one uniform draw for its times whatever
// the policy.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <string>

#include "../core/errors.hpp"
#include "../process/concepts.hpp"

namespace diffusion {

/// A time-sampling policy: `s(u)` maps u in [0, 1) to a training time, and `S::time_kind` says
/// which processes it serves (a discrete policy yields integer timesteps or levels, a continuous
/// one times in an interval).
///
/// Semantic requirement: for u ~ U[0, 1), s(u) has the policy's distribution.
template <class S>
concept time_sampling = requires(const S& s, double u) {
  typename S::time_kind;
  { s(u) } -> std::convertible_to<double>;
};

/// t ~ U{first, first + 1, ..., last}: the DDPM training time, t ~ Uniform({1, ..., T}) in Ho et al.
/// 2020, Alg. 1 line 3, written 0-based as the reference code and diffusers draw it (0..T-1).
/// Also NCSN's level index i ~ U{1..L} (Song & Ermon 2019, Eq. 6), 0-based.
class uniform_discrete_time {
 public:
  using time_kind = discrete_time;

  /// \throws std::invalid_argument unless first <= last.
  uniform_discrete_time(std::size_t first, std::size_t last) : m_first(first), m_last(last) {
    if (first > last) [[unlikely]]
      detail::throw_invalid_parts("uniform_discrete_time", {"first"}, first, {"[0, last] = [0, ", last, "]"});
  }

  /// All training timesteps 0, ..., T-1 of a process with num_timesteps() = T.
  /// \throws std::invalid_argument if the process has no timesteps.
  template <class Process>
    requires requires(const Process& p) {
      { p.num_timesteps() } -> std::convertible_to<std::size_t>;
    }
  static uniform_discrete_time over(const Process& process) {
    const std::size_t n = process.num_timesteps();
    require(n >= 1, "uniform_discrete_time::over", "num_timesteps()", n, "at least 1");
    return uniform_discrete_time(0, n - 1);
  }

  /// t = first + floor(u n), n = last - first + 1: each of the n integers has probability 1/n.
  double operator()(double u) const {
    const double n = static_cast<double>(count());
    // u n can round up to n when u lies within an ulp of 1 (e.g. u = 1 - 2^-53, n = 1000), which
    // would be one past `last`; the min keeps that single rounding case inside the range.
    const double k = std::min(std::floor(u * n), n - 1.0);
    return static_cast<double>(m_first) + k;
  }

  std::size_t first() const noexcept { return m_first; }
  std::size_t last() const noexcept { return m_last; }
  /// The number of timesteps drawn from, last - first + 1.
  std::size_t count() const noexcept { return m_last - m_first + 1; }

 private:
  std::size_t m_first;
  std::size_t m_last;
};

/// t ~ U(t_min, t_max): the continuous training time of the SDE losses (Song et al. 2021, Eq. 7,
/// t ~ U[0, T] with the lower end moved to a small t_min, "eps" in score_sde's losses.py, where
/// sigma(t) would vanish).
class uniform_continuous_time {
 public:
  using time_kind = continuous_time;

  /// \param t_min the smallest time (score_sde's default eps = 1e-5).
  /// \param t_max the largest time (the SDE's end time T, usually 1).
  /// \throws std::invalid_argument unless both are finite, t_min >= 0 and t_min < t_max.
  explicit uniform_continuous_time(double t_min = 1e-5, double t_max = 1.0) : m_t_min(t_min), m_t_max(t_max) {
    require_finite(t_max, "uniform_continuous_time", "t_max");
    if (!(std::isfinite(t_min) && t_min >= 0.0 && t_min < t_max)) [[unlikely]]
      detail::throw_invalid_parts("uniform_continuous_time", {"t_min"}, t_min, {"[0, t_max) = [0, ", t_max, ")"});
  }

  /// t = t_min + u (t_max - t_min), as score_sde's `torch.rand(B) * (sde.T - eps) + eps`.
  double operator()(double u) const { return m_t_min + u * (m_t_max - m_t_min); }

  double t_min() const noexcept { return m_t_min; }
  double t_max() const noexcept { return m_t_max; }

 private:
  double m_t_min;
  double m_t_max;
};

static_assert(time_sampling<uniform_discrete_time>);
static_assert(time_sampling<uniform_continuous_time>);

}  // namespace diffusion
