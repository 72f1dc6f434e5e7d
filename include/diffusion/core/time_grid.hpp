// SPDX-License-Identifier: MIT
// Time grids as explicit lists of values. Samplers walk the list; the previous timestep is always
// the next entry, never recomputed arithmetically (REFERENCE.md item 4 explains why).
#pragma once

#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include "errors.hpp"
#include "linspace.hpp"

namespace diffusion {

/// A decreasing list of times visited by a sampler, first entry first.
class time_grid {
 public:
  time_grid() = default;

  /// A user-given list. Entries must be finite and strictly decreasing.
  /// The grid makers and this constructor are set-up code, kept out of line: one copy per
  /// translation unit instead of one inlined into every sampler's construction (compile cost).
  [[gnu::noinline]] explicit time_grid(std::vector<double> values) : m_t(std::move(values)) {
    require(!m_t.empty(), "time_grid", "number of times", 0, "at least 1");
    for (std::size_t i = 0; i < m_t.size(); ++i) {
      if (!std::isfinite(m_t[i])) [[unlikely]]
        detail::throw_invalid_parts("time_grid", {"t[", i, "]"}, m_t[i], {"a finite number"});
      if (i > 0 && !(m_t[i] < m_t[i - 1])) [[unlikely]]
        detail::throw_invalid_parts("time_grid", {"t[", i, "]"}, m_t[i],
                                    {"strictly below t[", i - 1, "] = ", m_t[i - 1]});
    }
  }

  std::size_t size() const { return m_t.size(); }
  double operator[](std::size_t i) const { return m_t[i]; }
  const std::vector<double>& values() const { return m_t; }
  auto begin() const { return m_t.begin(); }
  auto end() const { return m_t.end(); }

 private:
  std::vector<double> m_t;
};

namespace detail {

inline void check_steps(std::size_t num_train_timesteps, std::size_t steps, const char* where) {
  require(num_train_timesteps >= 1, where, "num_train_timesteps", num_train_timesteps, "at least 1");
  if (!(steps >= 1 && steps <= num_train_timesteps)) [[unlikely]]
    throw_invalid_parts(where, {"steps"}, steps, {"[1, num_train_timesteps] = [1, ", num_train_timesteps, "]"});
}

// numpy.round and Python's round: half to even. std::nearbyint does that in the default
// rounding mode, which the library never changes.
inline double round_half_even(double v) { return std::nearbyint(v); }

}  // namespace detail

/// "leading" spacing (diffusers, DDIM paper): t_k = k * (T / n) + offset for k = n-1, ..., 0.
/// For 50 of 1000: 980, 960, ..., 0.
[[gnu::noinline]] inline time_grid leading_grid(std::size_t num_train_timesteps, std::size_t steps,
                                                std::size_t steps_offset = 0) {
  detail::check_steps(num_train_timesteps, steps, "leading_grid");
  const std::size_t ratio = num_train_timesteps / steps;
  // The first timestep, (steps - 1) ratio + steps_offset, must stay below num_train_timesteps.
  const std::size_t max_offset = num_train_timesteps - 1 - (steps - 1) * ratio;
  if (steps_offset > max_offset) [[unlikely]]
    detail::throw_invalid_parts("leading_grid", {"steps_offset"}, steps_offset,
                                {"[0, ", max_offset, "] (the first timestep, (steps - 1) * ", ratio,
                                 " + steps_offset, must stay below num_train_timesteps = ", num_train_timesteps, ")"});
  std::vector<double> t(steps);
  for (std::size_t k = 0; k < steps; ++k) t[steps - 1 - k] = static_cast<double>(k * ratio + steps_offset);
  return time_grid(std::move(t));
}

/// "trailing" spacing (Lin et al. 2024, Table 2): round(T - k T/n) - 1 for k = 0, ..., n-1.
/// For 50 of 1000: 999, 979, ..., 19.
///
/// Computed as diffusers computes it, np.round(np.arange(T, 0, -T/n)) - 1: numpy's arange forms
/// entry k as T + k delta with delta = (T - T/n) - T, which differs from -T/n in the last bits, and
/// at a tie of the rounding that decides the entry (T = 1000, n = 48: 937.4999... rounds to 937,
/// where T - 3 T/n = 937.5 would round to 938; 49 of the n <= 1000 differ so). For 62 of them
/// (n = 61, 103, ...) arange also makes an (n+1)-th entry, -1, which diffusers then uses as a
/// timestep; this grid keeps n entries, equal to diffusers' first n.
[[gnu::noinline]] inline time_grid trailing_grid(std::size_t num_train_timesteps, std::size_t steps) {
  detail::check_steps(num_train_timesteps, steps, "trailing_grid");
  const double T = static_cast<double>(num_train_timesteps);
  const double delta = (T - T / static_cast<double>(steps)) - T;
  std::vector<double> t(steps);
  for (std::size_t k = 0; k < steps; ++k) t[k] = detail::round_half_even(T + static_cast<double>(k) * delta) - 1.0;
  return time_grid(std::move(t));
}

/// "linspace" spacing: round(linspace(0, T - 1, n)), reversed. For n = 1 the single entry is 0,
/// as numpy.linspace(0, T-1, 1) gives.
[[gnu::noinline]] inline time_grid linspace_grid(std::size_t num_train_timesteps, std::size_t steps) {
  detail::check_steps(num_train_timesteps, steps, "linspace_grid");
  const double stop = static_cast<double>(num_train_timesteps - 1);
  std::vector<double> t(steps);
  if (steps == 1) {
    t[0] = 0.0;
  } else {
    // numpy.linspace: k * step for k < n - 1, and exactly `stop` at the end.
    const double step = stop / static_cast<double>(steps - 1);
    for (std::size_t k = 0; k < steps; ++k) {
      const double v = (k + 1 == steps) ? stop : static_cast<double>(k) * step;
      t[steps - 1 - k] = detail::round_half_even(v);
    }
  }
  return time_grid(std::move(t));
}

/// The continuous grid of score_sde (Song et al. 2021): linspace(t_end, eps, steps), from the end
/// of the SDE's interval down to eps > 0, where the score is still finite (REFERENCE.md item 11).
[[gnu::noinline]] inline time_grid continuous_grid(std::size_t steps, double eps = 1e-3, double t_end = 1.0) {
  require(steps >= 1, "continuous_grid", "steps", steps, "at least 1");
  require(std::isfinite(t_end) && t_end > 0.0, "continuous_grid", "t_end", t_end, "(0, inf)");
  if (!(std::isfinite(eps) && eps > 0.0 && eps < t_end)) [[unlikely]]
    detail::throw_invalid_parts("continuous_grid", {"eps"}, eps, {"(0, t_end) = (0, ", t_end, ")"});
  std::vector<double> t = linspace(t_end, eps, steps);
  // eps a few ulps below t_end leaves fewer distinct doubles than steps: blame steps here rather
  // than let time_grid report a repeated entry the caller never wrote.
  for (std::size_t i = 1; i < t.size(); ++i)
    if (!(t[i] < t[i - 1])) [[unlikely]]
      detail::throw_invalid_parts("continuous_grid", {"steps"}, steps,
                                  {"at most the number of distinct times linspace(t_end, eps, steps) can hold "
                                   "between t_end = ", t_end, " and eps = ", eps, " (times ", i - 1, " and ", i,
                                   " are both ", t[i], ")"});
  return time_grid(std::move(t));
}

}  // namespace diffusion
