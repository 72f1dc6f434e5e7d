// SPDX-License-Identifier: MIT
// The discrete variance-exploding process of NCSN (Song & Ermon 2019): noise levels
// sigma_1 > sigma_2 > ... > sigma_L, each perturbing the data without shrinking it.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/errors.hpp"
#include "concepts.hpp"

namespace diffusion {

namespace detail {

/// numpy.linspace(start, stop, n) in float64: start + i step with step = (stop - start)/(n - 1),
/// the product and the sum rounded separately (numpy multiplies, then adds, in two passes), and the
/// last entry set to stop exactly. ncsnv2 builds its sigmas with it. (torch.linspace, which
/// score_sde uses, is diffusion::linspace.)
inline std::vector<double> numpy_linspace(double start, double stop, std::size_t n) {
  std::vector<double> v(n);
  if (n == 1) {
    v[0] = start;
    return v;
  }
  const double step = (stop - start) / static_cast<double>(n - 1);
  for (std::size_t i = 0; i < n; ++i) {
    // volatile keeps the product rounded on its own: a compiler allowed to contract (GCC's default
    // outside strict ISO mode, with FMA hardware) would otherwise fuse it into the sum.
    const volatile double offset = static_cast<double>(i) * step;
    v[i] = offset + start;
  }
  v[n - 1] = stop;
  return v;
}

}  // namespace detail

/// The NCSN forward process (Song & Ermon 2019, "Generative Modeling by Estimating Gradients of
/// the Data Distribution", Sec. 4.1): q_sigma(x | x_0) = N(x_0, sigma^2 I) at each of L noise
/// levels, so in the library's notation x = alpha x_0 + sigma eps with alpha = 1.
///
/// Time convention: the time is the level index i = 0, ..., L-1 (an integer-valued double, as for
/// every discrete process), and index 0 is the LARGEST sigma: sigmas()[i] is the paper's
/// sigma_{i+1}, exactly as ncsnv2's `sigmas` array is ordered, so annealed Langevin dynamics walks
/// i = 0, 1, ..., L-1 from coarse to fine. (This is the opposite direction from vp_discrete, whose
/// timestep 0 is the least noisy.)
///
/// Level rule: at least one level; every sigma finite and positive; strictly decreasing.
class ve_discrete {
 public:
  using time_kind = discrete_time;

  /// User-supplied levels, largest first.
  /// \throws std::invalid_argument if `sigmas` breaks the level rule above (the message names the
  ///         offending entry).
  explicit ve_discrete(std::vector<double> sigmas) : m_sigmas(std::move(sigmas)) {
    constexpr std::string_view where = "ve_discrete";
    require(!m_sigmas.empty(), where, "sigmas.size()", m_sigmas.size(), "at least 1");
    for (std::size_t i = 0; i < m_sigmas.size(); ++i) {
      if (!(std::isfinite(m_sigmas[i]) && m_sigmas[i] > 0.0)) [[unlikely]]
        detail::throw_invalid_parts(where, {"sigmas[", i, "]"}, m_sigmas[i], {"(0, inf), finite"});
      if (i > 0 && !(m_sigmas[i] < m_sigmas[i - 1])) [[unlikely]]
        detail::throw_invalid_parts(where, {"sigmas[", i, "]"}, m_sigmas[i],
                                    {"strictly below sigmas[", i - 1, "] = ", m_sigmas[i - 1],
                                     " (levels are ordered largest first)"});
    }
  }

  /// Geometric levels (Song & Ermon 2019, Sec. 4.2: sigma_1/sigma_2 = ... = sigma_{L-1}/sigma_L > 1),
  /// built as ncsnv2 builds them: sigmas = exp(linspace(ln sigma_max, ln sigma_min, L)), so
  /// sigmas()[0] = sigma_max and sigmas()[L-1] = sigma_min (up to the rounding of exp(log(.))).
  /// \throws std::invalid_argument unless sigma_max and sigma_min are finite with
  ///         0 < sigma_min < sigma_max, and num_levels >= 2.
  static ve_discrete geometric(double sigma_max, double sigma_min, std::size_t num_levels) {
    constexpr std::string_view where = "ve_discrete::geometric";
    require(std::isfinite(sigma_min) && sigma_min > 0.0, where, "sigma_min", sigma_min, "(0, inf), finite");
    if (!(std::isfinite(sigma_max) && sigma_max > sigma_min)) [[unlikely]]
      detail::throw_invalid_parts(where, {"sigma_max"}, sigma_max,
                                  {"(sigma_min, inf) = (", sigma_min, ", inf), finite"});
    require(num_levels >= 2, where, "num_levels", num_levels, "at least 2 (sigma_max and sigma_min are both levels)");
    std::vector<double> s = detail::numpy_linspace(std::log(sigma_max), std::log(sigma_min), num_levels);
    for (double& v : s) v = std::exp(v);
    return ve_discrete(std::move(s));
  }

  /// L, the number of noise levels; valid times are the integers 0, ..., L-1.
  std::size_t num_levels() const { return m_sigmas.size(); }

  /// alpha(i) = 1: the VE kernel adds noise without shrinking the data (Song & Ermon 2019, Sec. 4.1).
  /// \throws std::invalid_argument unless i is an integer in [0, L-1] (as for sigma).
  double alpha(double i) const {
    (void)index(i, "ve_discrete::alpha");
    return 1.0;
  }
  /// sigma(i) = sigmas()[i], the noise level of index i (index 0 is the largest).
  double sigma(double i) const { return m_sigmas[index(i, "ve_discrete::sigma")]; }

  /// The largest level, sigmas()[0] (the paper's sigma_1).
  double sigma_max() const { return m_sigmas.front(); }
  /// The smallest level, sigmas()[L-1] (the paper's sigma_L).
  double sigma_min() const { return m_sigmas.back(); }

  /// All levels, largest first.
  const std::vector<double>& sigmas() const { return m_sigmas; }

 private:
  // Levels are integer-valued doubles because every process shares the concept's `double t`; a
  // fractional or out-of-range index is a caller's bug, so it throws instead of being rounded.
  std::size_t index(double i, std::string_view where) const {
    const double last = static_cast<double>(m_sigmas.size() - 1);
    if (!(std::isfinite(i) && i >= 0.0 && i <= last && i == std::floor(i))) [[unlikely]]
      detail::throw_invalid_parts(where, {"i"}, i,
                                  {"an integer level index in [0, num_levels - 1] = [0, ", last,
                                   "] (0 is the largest sigma)"});
    return static_cast<std::size_t>(i);
  }

  std::vector<double> m_sigmas;  // largest first
};

static_assert(discrete_process<ve_discrete>);

}  // namespace diffusion
