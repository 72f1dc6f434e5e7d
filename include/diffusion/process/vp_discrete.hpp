// SPDX-License-Identifier: MIT
// The discrete variance-preserving process of DDPM (Ho et al. 2020) and its posterior q(x_prev | x_t, x_0).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/errors.hpp"
#include "beta_schedules.hpp"
#include "concepts.hpp"

namespace diffusion {

/// The DDPM forward process, Ho et al. 2020, Eqs. 2 and 4: q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0,
/// (1 - alpha_bar_t) I) with alpha_bar_t = prod_{s <= t} (1 - beta_s), timesteps t = 0, ..., T-1
/// (0-based, as diffusers indexes them: alpha_bar(0) = 1 - beta_0 is already noisy).
///
/// In the library's common notation x_t = alpha(t) x_0 + sigma(t) eps, so alpha(t) is
/// sqrt(alpha_bar_t) here, not the per-step alpha_t = 1 - beta_t of the paper.
///
/// Beta rule: every beta is finite and in (0, 1), except that the last may be exactly 1 (when
/// T >= 2), which is how a zero-terminal-SNR schedule ends (alpha_bar(T-1) = 0, sigma(T-1) = 1,
/// snr(T-1) = 0). All tables are computed once, in double, in the constructor; the accessors are
/// lookups.
class vp_discrete {
 public:
  using time_kind = discrete_time;

  /// \throws std::invalid_argument if `betas` breaks the beta rule above (the message names the
  ///         offending entry).
  /// Out of line (as check_betas): set-up code, compiled once per translation unit rather than
  /// inlined into every sampler's construction.
  [[gnu::noinline]] explicit vp_discrete(std::vector<double> betas) : m_betas(std::move(betas)) {
    detail::check_betas(m_betas, "vp_discrete");
    const std::size_t n = m_betas.size();
    m_alpha_bars.resize(n);
    m_alphas.resize(n);
    m_sigmas.resize(n);
    // A sequential cumulative product in double (as torch.cumprod in float64): float products
    // lose ~1e-5 over 1000 steps (STYLE.md B9).
    double abar = 1.0;
    for (std::size_t i = 0; i < n; ++i) {
      abar *= 1.0 - m_betas[i];
      m_alpha_bars[i] = abar;
      m_alphas[i] = std::sqrt(abar);
      m_sigmas[i] = std::sqrt(1.0 - abar);
    }
  }

  /// Linear betas (Ho et al. 2020, Sec. 4: 1e-4 .. 0.02, T = 1000); see linear_betas.
  static vp_discrete linear(double beta_start = 1e-4, double beta_end = 0.02, std::size_t num_timesteps = 1000) {
    return vp_discrete(linear_betas(beta_start, beta_end, num_timesteps));
  }
  /// Scaled-linear betas (Stable Diffusion's 0.00085 .. 0.012 by default); see scaled_linear_betas.
  static vp_discrete scaled_linear(double beta_start = 0.00085, double beta_end = 0.012,
                                   std::size_t num_timesteps = 1000) {
    return vp_discrete(scaled_linear_betas(beta_start, beta_end, num_timesteps));
  }
  /// Cosine betas (Nichol & Dhariwal 2021, Eq. 17); see cosine_betas.
  static vp_discrete cosine(std::size_t num_timesteps = 1000, double max_beta = 0.999, double s = 0.008) {
    return vp_discrete(cosine_betas(num_timesteps, max_beta, s));
  }
  /// Sigmoid betas (GeoDiff, as in diffusers); see sigmoid_betas.
  static vp_discrete sigmoid(double beta_start = 1e-4, double beta_end = 0.02, std::size_t num_timesteps = 1000) {
    return vp_discrete(sigmoid_betas(beta_start, beta_end, num_timesteps));
  }

  /// The same schedule rescaled to zero terminal SNR (Lin et al. 2024, Algorithm 1); see
  /// rescale_zero_terminal_snr. \throws std::invalid_argument if num_timesteps() < 2.
  vp_discrete with_zero_terminal_snr() const { return vp_discrete(rescale_zero_terminal_snr(m_betas)); }

  /// True when alpha_bar(T-1) = 0 (the last beta is 1).
  bool has_zero_terminal_snr() const { return m_betas.back() == 1.0; }

  /// T, the number of training timesteps; valid times are the integers 0, ..., T-1.
  std::size_t num_timesteps() const { return m_betas.size(); }

  /// beta_t. \throws std::invalid_argument unless t is an integer in [0, T-1] (as for all below).
  double beta(double t) const { return m_betas[index(t, "vp_discrete::beta")]; }
  /// alpha_bar_t = prod_{s <= t} (1 - beta_s), Ho et al. 2020, Eq. 4.
  double alpha_bar(double t) const { return m_alpha_bars[index(t, "vp_discrete::alpha_bar")]; }
  /// alpha(t) = sqrt(alpha_bar_t), the signal coefficient of x_t = alpha x_0 + sigma eps.
  double alpha(double t) const { return m_alphas[index(t, "vp_discrete::alpha")]; }
  /// sigma(t) = sqrt(1 - alpha_bar_t), the noise coefficient.
  double sigma(double t) const { return m_sigmas[index(t, "vp_discrete::sigma")]; }
  /// SNR(t) = alpha_bar_t / (1 - alpha_bar_t) (Kingma et al. 2021, Eq. 1 notation); 0 at a zero
  /// terminal SNR timestep.
  double snr(double t) const {
    const double abar = m_alpha_bars[index(t, "vp_discrete::snr")];
    return abar / (1.0 - abar);
  }

  const std::vector<double>& betas() const { return m_betas; }
  const std::vector<double>& alpha_bars() const { return m_alpha_bars; }

 private:
  // Times are integer-valued doubles because every process shares the concept's `double t`; a
  // fractional or out-of-range t is a caller's bug, so it throws instead of being rounded.
  std::size_t index(double t, std::string_view where) const {
    const double last = static_cast<double>(m_betas.size() - 1);
    if (!(std::isfinite(t) && t >= 0.0 && t <= last && t == std::floor(t))) [[unlikely]]
      detail::throw_invalid_parts(where, {"t"}, t, {"an integer in [0, num_timesteps - 1] = [0, ", last, "]"});
    return static_cast<std::size_t>(t);
  }

  std::vector<double> m_betas;
  std::vector<double> m_alpha_bars;
  std::vector<double> m_alphas;  // sqrt(alpha_bar)
  std::vector<double> m_sigmas;  // sqrt(1 - alpha_bar)
};

static_assert(discrete_vp_process<vp_discrete>);

/// Coefficients of the DDPM posterior q(x_prev | x_t, x_0) = N(x0_coef x_0 + xt_coef x_t, var I)
/// between two timesteps of a (possibly strided) grid.
struct posterior_coefficients {
  double x0_coef;               ///< sqrt(alpha_bar_prev) beta_t / (1 - alpha_bar_t)
  double xt_coef;               ///< sqrt(alpha_t) (1 - alpha_bar_prev) / (1 - alpha_bar_t)
  double variance_fixed_small;  ///< max((1 - alpha_bar_prev)/(1 - alpha_bar_t) beta_t, 1e-20): beta-tilde
  double variance_fixed_large;  ///< beta_t
};

/// The posterior q(x_prev | x_t, x_0), Ho et al. 2020, Eqs. 6-7, for a step from timestep t to an
/// earlier timestep prev of a strided grid (REFERENCE.md, item 3): the step's own
///   alpha_t = alpha_bar_t / alpha_bar_prev,  beta_t = 1 - alpha_t
/// replace the training table's alpha_t and beta_t, so the formulas hold for any gap (with
/// prev = t - 1 they are the paper's). After the last grid entry alpha_bar_prev = 1.
///   mean = sqrt(alpha_bar_prev) beta_t / (1 - alpha_bar_t) x_0
///        + sqrt(alpha_t) (1 - alpha_bar_prev) / (1 - alpha_bar_t) x_t          (Eq. 7)
///   fixed_small variance = (1 - alpha_bar_prev) / (1 - alpha_bar_t) beta_t   (beta-tilde, Eq. 7)
///   fixed_large variance = beta_t                                            (Sec. 3.2)
/// The small variance is 0 for the step to alpha_bar_prev = 1; it is floored at 1e-20 as diffusers
/// does (DDPMScheduler._get_variance clamps it "to ensure it's not 0"), so that its logarithm
/// stays finite. The operations follow diffusers' order, so results agree to the last bits.
/// \throws std::invalid_argument unless 0 <= alpha_bar_t < alpha_bar_prev <= 1 (both finite).
inline posterior_coefficients posterior(double alpha_bar_t, double alpha_bar_prev) {
  require(std::isfinite(alpha_bar_t) && alpha_bar_t >= 0.0 && alpha_bar_t < 1.0, "posterior", "alpha_bar_t",
          alpha_bar_t, "[0, 1)");
  // Called once per sampling step: the message is built only on failure, so the loop never allocates.
  if (!(std::isfinite(alpha_bar_prev) && alpha_bar_prev > alpha_bar_t && alpha_bar_prev <= 1.0)) [[unlikely]]
    detail::throw_invalid_parts("posterior", {"alpha_bar_prev"}, alpha_bar_prev,
                                {"(alpha_bar_t, 1] = (", alpha_bar_t, ", 1]"});
  const double alpha_t = alpha_bar_t / alpha_bar_prev;
  const double beta_t = 1.0 - alpha_t;
  const double one_minus_abar_t = 1.0 - alpha_bar_t;
  const double one_minus_abar_prev = 1.0 - alpha_bar_prev;
  posterior_coefficients c;
  c.x0_coef = std::sqrt(alpha_bar_prev) * beta_t / one_minus_abar_t;
  c.xt_coef = std::sqrt(alpha_t) * one_minus_abar_prev / one_minus_abar_t;
  c.variance_fixed_small = std::max(one_minus_abar_prev / one_minus_abar_t * beta_t, 1e-20);
  c.variance_fixed_large = beta_t;
  return c;
}

}  // namespace diffusion
