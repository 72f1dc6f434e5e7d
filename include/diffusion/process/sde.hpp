// SPDX-License-Identifier: MIT
// The continuous-time SDEs of Song et al. 2021 ("Score-Based Generative Modeling through
// Stochastic Differential Equations", Sec. 3.4 and App. B): VP, sub-VP and VE, on t in [0, 1].
//
// Every formula follows yang-song/score_sde_pytorch `sde_lib.py` (REFERENCE.md, items 11-15) in
// its order of operations, so values agree with that library's float64 values to the last bits,
// with two deliberate exceptions where its form cancels catastrophically and this library's is
// exact to rounding (both differ from it by at most ~5e-11 relative, and only for t or beta tiny):
//   - VP/sub-VP sigma(t) and the sub-VP diffusion use -expm1(u) for its 1 - exp(u);
//   - the VP discretization's f_coef = sqrt(1 - beta_i) - 1 is computed as
//     -beta_i / (1 + sqrt(1 - beta_i)).
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../core/errors.hpp"
#include "../core/linspace.hpp"
#include "../core/noise.hpp"
#include "../core/tensor.hpp"
#include "concepts.hpp"
#include "sde_concepts.hpp"

namespace diffusion {

/// The coefficients of a reverse-time process whose drift is linear in x and in the score:
///   drift = x_coef x + score_coef score,  noise scale noise_coef.
/// For the continuous processes the drift is per unit time (Song et al. 2021, Eqs. 6 and 13); for
/// the discretized ones it is the whole step's f (App. E), as score_sde's `RSDE.discretize` returns.
struct reverse_coefficients {
  double x_coef;      ///< f(t) or f_coef
  double score_coef;  ///< -g^2, or -g^2/2 for the probability flow
  double noise_coef;  ///< g, or 0 for the probability flow
};

namespace detail {

/// The SDEs' time interval is [0, T] with T = 1 (score_sde's `SDE.T`).
inline constexpr double sde_end_time = 1.0;

inline bool is_sde_time(double t) { return std::isfinite(t) && t >= 0.0 && t <= sde_end_time; }

inline void check_sde_time(double t, std::string_view where) {
  require(is_sde_time(t), where, "t", t, "[0, 1] (the SDE's time interval [0, T])");
}

inline void check_num_steps(std::size_t num_steps, std::string_view where) {
  require(num_steps >= 1, where, "num_steps", num_steps, "at least 1");
}

/// The discrete index of REFERENCE.md item 13, i = floor(t (N - 1) / T), in score_sde's order of
/// operations (`(t * (self.N - 1) / self.T).long()`), so a grid time lands on the same index.
inline std::size_t sde_discrete_index(double t, std::size_t num_steps) {
  return static_cast<std::size_t>(t * static_cast<double>(num_steps - 1) / sde_end_time);
}

/// log N(x; 0, std^2 I) of one sample in score_sde's order of operations (`prior_logp`):
///   -D/2 ln(2 pi std^2) - sum_j x_j^2 / (2 std^2).
inline double gaussian_prior_log_density(std::span<const double> x, double prior_std, std::string_view where) {
  require(!x.empty(), where, "x.size()", x.size(), "at least 1 (the coordinates of one sample)");
  double sum_sq = 0.0;
  for (double v : x) sum_sq += v * v;
  const double d = static_cast<double>(x.size());
  // With std = 1 both terms equal VP's -D/2 ln(2 pi) - |x|^2/2 bit for bit.
  const double var = prior_std * prior_std;
  return -d / 2.0 * std::log(2.0 * std::numbers::pi * var) - sum_sq / (2.0 * var);
}

/// The prior log-density of every sample of tensor x into out (one entry per batch sample).
template <tensor T>
void gaussian_prior_log_density(const T& x, std::span<double> out, double prior_std, std::string_view where) {
  const std::size_t batch = batch_size(x);
  require(out.size() == batch, where, "out.size()", out.size(), "the batch size of x, " + std::to_string(batch));
  const std::size_t d = sample_size(x);
  const auto e = elements(x);
  std::vector<double> sample(d);
  for (std::size_t b = 0; b < batch; ++b) {
    for (std::size_t j = 0; j < d; ++j) sample[j] = static_cast<double>(e[b * d + j]);
    out[b] = gaussian_prior_log_density(sample, prior_std, where);
  }
}

/// What the VP and sub-VP SDEs share (Song et al. 2021, App. B): the linear schedule
/// beta(t) = beta_min + t (beta_max - beta_min), hence the same alpha(t) = exp(-1/2 int_0^t beta),
/// the same drift f(t) = -beta(t)/2 (Eqs. 11 and 12), the prior N(0, I), and the discrete betas
/// beta_i = linspace(beta_min/N, beta_max/N, N)_i (the DDPM chain of Eq. 10 with N steps;
/// REFERENCE.md item 13) with the Langevin corrector's alpha_i = 1 - beta_i. vp_sde and subvp_sde
/// add what differs: sigma(t), g(t) and the discretization.
///
/// N = num_steps() is score_sde's `sde.N`: the number of sampling steps of its predictors and
/// correctors, and the size of the discrete beta table. The discrete quantities need N > beta_max
/// (every beta/N below 1); the continuous ones work for any N >= 1.
///
/// Error messages name the derived class and the member ("vp_sde::alpha: t = ..."); the checks of
/// t and of the discrete betas join the two only when they fail, so the per-step coefficients
/// allocate nothing.
class linear_beta_sde {
 public:
  using time_kind = continuous_time;

  /// T = 1: times lie in [0, 1]; every function of t below throws std::invalid_argument outside.
  static constexpr double end_time() { return sde_end_time; }

  double beta_min() const { return m_beta_min; }
  double beta_max() const { return m_beta_max; }
  /// N, the number of discretization steps.
  std::size_t num_steps() const { return m_num_steps; }

  /// beta(t) = beta_min + t (beta_max - beta_min) (App. B).
  double beta(double t) const { return beta_of(checked(t, "beta")); }
  /// log alpha(t) = -t^2 (beta_max - beta_min)/4 - t beta_min/2 (App. B).
  double log_alpha(double t) const { return log_alpha_of(checked(t, "log_alpha")); }
  /// alpha(t) = exp(log alpha(t)), the mean coefficient of the marginal (App. B).
  double alpha(double t) const { return std::exp(log_alpha_of(checked(t, "alpha"))); }
  /// f(t) = -beta(t)/2, drift = f(t) x (Eqs. 11 and 12).
  double drift_scale(double t) const { return -0.5 * beta_of(checked(t, "drift_scale")); }

  /// The prior N(0, I).
  static constexpr double prior_std() { return 1.0; }
  /// log N(x; 0, I) of one sample x: -D/2 ln(2 pi) - |x|^2/2 (score_sde `VPSDE.prior_logp`, which
  /// subVPSDE's equals).
  double prior_log_density(std::span<const double> x) const {
    return gaussian_prior_log_density(x, 1.0, qualified("prior_log_density"));
  }
  /// The prior log-density of each batch sample of x into out (out.size() == batch size).
  template <tensor T>
  void prior_log_density(const T& x, std::span<double> out) const {
    gaussian_prior_log_density(x, out, 1.0, qualified("prior_log_density"));
  }
  /// x_T = z ~ N(0, I): fills x with one normal draw of `noise` (score_sde `prior_sampling`).
  template <class Backend, class Noise, tensor T>
  void sample_prior(Backend& be, Noise& noise, T& x) const {
    draw_normal(be, noise, x);
  }

  /// i = floor(t (N - 1)), the index of the discrete tables at time t.
  std::size_t discrete_index(double t) const {
    return sde_discrete_index(checked(t, "discrete_index"), m_num_steps);
  }
  /// The Langevin corrector's alpha_i = 1 - beta_i at i = discrete_index(t) (Song et al. 2021,
  /// App. G, Algorithm 5; score_sde `LangevinCorrector` uses `sde.alphas`, not alpha-bar).
  /// score_sde takes this branch for subVPSDE too (`isinstance(sde, VPSDE) or isinstance(sde,
  /// subVPSDE)`), but its subVPSDE has no `alphas` table, so there it fails with an
  /// AttributeError; VP's table is the value that branch evidently intends.
  /// \throws std::invalid_argument if t is outside [0, 1] or beta_i >= 1 (num_steps <= beta_max).
  double langevin_alpha(double t) const { return 1.0 - checked_discrete_beta(discrete_index(t), "langevin_alpha"); }

  /// beta_i = linspace(beta_min/N, beta_max/N, N)_i (score_sde `discrete_betas`).
  const std::vector<double>& discrete_betas() const { return m_discrete_betas; }
  /// 1 - beta_i (score_sde `alphas`).
  const std::vector<double>& discrete_alphas() const { return m_discrete_alphas; }

 protected:
  /// \throws std::invalid_argument unless beta_min and beta_max are finite with
  ///         0 < beta_min <= beta_max, and num_steps >= 1; the message starts with `name`.
  linear_beta_sde(double beta_min, double beta_max, std::size_t num_steps, std::string_view name)
      : m_name(name), m_beta_min(beta_min), m_beta_max(beta_max), m_num_steps(num_steps) {
    require(std::isfinite(beta_min) && beta_min > 0.0, name, "beta_min", beta_min, "(0, inf), finite");
    require(std::isfinite(beta_max) && beta_max >= beta_min, name, "beta_max", beta_max,
            "[beta_min, inf) = [" + format_value(beta_min) + ", inf), finite");
    check_num_steps(num_steps, name);
    const double n = static_cast<double>(num_steps);
    m_discrete_betas = linspace(beta_min / n, beta_max / n, num_steps);
    m_discrete_alphas.resize(num_steps);
    for (std::size_t i = 0; i < num_steps; ++i) m_discrete_alphas[i] = 1.0 - m_discrete_betas[i];
  }

  /// t, checked to lie in [0, T]; `member` names the caller in the error message.
  double checked(double t, std::string_view member) const {
    if (!is_sde_time(t)) check_sde_time(t, qualified(member));
    return t;
  }
  /// "<class>::<member>", the `where` of an error message.
  std::string qualified(std::string_view member) const {
    return std::string(m_name).append("::").append(member);
  }

  /// beta(t) and log alpha(t) without the range check, for members that have checked t already.
  double beta_of(double t) const { return m_beta_min + t * (m_beta_max - m_beta_min); }
  /// -1/2 int_0^t beta in score_sde's order of operations (`log_mean_coeff`).
  double log_alpha_of(double t) const { return -0.25 * (t * t) * (m_beta_max - m_beta_min) - 0.5 * t * m_beta_min; }

  /// The discrete beta at index i, checked to be below 1: with N <= beta_max the last discrete
  /// betas reach 1 and sqrt(1 - beta_i) is undefined.
  double checked_discrete_beta(std::size_t i, std::string_view member) const {
    const double b = m_discrete_betas[i];
    if (!(b < 1.0))
      throw_invalid(qualified(member), "num_steps", m_num_steps,
                    "above beta_max = " + format_value(m_beta_max) + ", so that every discrete beta = beta/N is below 1 "
                    "(here beta_" + std::to_string(i) + " = " + format_value(b) + ")");
    return b;
  }

 private:
  std::string_view m_name;  // the derived class's, for error messages
  double m_beta_min;
  double m_beta_max;
  std::size_t m_num_steps;
  std::vector<double> m_discrete_betas;
  std::vector<double> m_discrete_alphas;  // 1 - beta_i
};

}  // namespace detail

/// The variance-preserving SDE, Song et al. 2021, Eq. 11: dx = -beta(t)/2 x dt + sqrt(beta(t)) dw,
/// beta(t) = beta_min + t (beta_max - beta_min), t in [0, 1]; the continuous limit of DDPM.
/// Marginal (App. B): x_t = alpha(t) x_0 + sigma(t) eps with alpha = exp(-1/2 int_0^t beta) and
/// sigma = sqrt(1 - alpha^2).
///
/// beta(t), alpha(t), the drift, the prior, the Langevin alpha_i and the discrete tables are
/// detail::linear_beta_sde's, shared with subvp_sde.
class vp_sde : public detail::linear_beta_sde {
 public:
  /// \throws std::invalid_argument unless beta_min and beta_max are finite with
  ///         0 < beta_min <= beta_max, and num_steps >= 1.
  explicit vp_sde(double beta_min = 0.1, double beta_max = 20.0, std::size_t num_steps = 1000)
      : linear_beta_sde(beta_min, beta_max, num_steps, "vp_sde") {}

  /// sigma(t) = sqrt(1 - alpha(t)^2), the marginal std (App. B); computed as
  /// sqrt(-expm1(2 log alpha)), which stays accurate as t -> 0 where score_sde's
  /// sqrt(1 - exp(2 log alpha)) loses digits (2e-11 relative at t = 1e-5, 3e-14 at t = 1e-3).
  double sigma(double t) const { return std::sqrt(-std::expm1(2.0 * log_alpha_of(checked(t, "sigma")))); }
  /// g(t) = sqrt(beta(t)) (Eq. 11).
  double diffusion(double t) const { return std::sqrt(beta_of(checked(t, "diffusion"))); }

  /// The DDPM discretization (Eq. 10): x_{i+1} = sqrt(1 - beta_i) x_i + sqrt(beta_i) z, i.e.
  /// f_coef = sqrt(1 - beta_i) - 1 and G = sqrt(beta_i) at i = discrete_index(t) (score_sde
  /// `VPSDE.discretize`). f_coef is computed as -beta_i / (1 + sqrt(1 - beta_i)), the same number
  /// without the cancellation of sqrt(1 - beta_i) - 1 (score_sde's sqrt(alpha) x - x differs from it
  /// by up to ~5e-12 relative for beta_i ~ 1e-4).
  /// \throws std::invalid_argument if t is outside [0, 1] or beta_i >= 1 (num_steps <= beta_max).
  sde_discretization discretize(double t) const {
    const double b = checked_discrete_beta(discrete_index(t), "discretize");
    return {-b / (1.0 + std::sqrt(1.0 - b)), std::sqrt(b)};
  }
  /// DDPM's ancestral step at i = discrete_index(t) (Ho et al. 2020, Alg. 2; score_sde
  /// `AncestralSamplingPredictor.vpsde_update_fn`): x_mean = (x + beta_i score)/sqrt(1 - beta_i),
  /// noise std sqrt(beta_i).
  /// \throws std::invalid_argument if t is outside [0, 1] or beta_i >= 1 (num_steps <= beta_max).
  ancestral_coefficients ancestral_step(double t) const {
    const double b = checked_discrete_beta(discrete_index(t), "ancestral_step");
    const double r = 1.0 / std::sqrt(1.0 - b);
    return {r, b * r, std::sqrt(b)};
  }
};

/// The sub-VP SDE, Song et al. 2021, Eq. 12:
///   dx = -beta(t)/2 x dt + sqrt(beta(t) (1 - exp(-2 int_0^t beta))) dw,
/// with VP's beta(t). Marginal (App. B): alpha(t) as for VP, and sigma(t) = 1 - alpha(t)^2 =
/// 1 - exp(-int_0^t beta) (REFERENCE.md item 15: a std, not a variance), so sigma <= VP's sigma.
///
/// beta(t), alpha(t), the drift, the prior, the Langevin alpha_i and the discrete tables are
/// detail::linear_beta_sde's, shared with vp_sde. score_sde's subVPSDE has no discretization of
/// its own: its `discretize` is the base class's Euler-Maruyama step with dt = 1/N, which this
/// class reproduces.
class subvp_sde : public detail::linear_beta_sde {
 public:
  /// \throws std::invalid_argument unless beta_min and beta_max are finite with
  ///         0 < beta_min <= beta_max, and num_steps >= 1.
  explicit subvp_sde(double beta_min = 0.1, double beta_max = 20.0, std::size_t num_steps = 1000)
      : linear_beta_sde(beta_min, beta_max, num_steps, "subvp_sde") {}

  /// sigma(t) = 1 - alpha(t)^2 (App. B; score_sde `subVPSDE.marginal_prob` std), computed as
  /// -expm1(2 log alpha) (score_sde's 1 - exp(.) loses ~5e-11 relative at t = 1e-5).
  double sigma(double t) const { return -std::expm1(2.0 * log_alpha_of(checked(t, "sigma"))); }
  /// g(t) = sqrt(beta(t) (1 - exp(-2 beta_min t - (beta_max - beta_min) t^2))) (Eq. 12, with
  /// int_0^t beta = beta_min t + (beta_max - beta_min) t^2 / 2); the discount is -expm1(.).
  double diffusion(double t) const {
    checked(t, "diffusion");
    const double discount = -std::expm1(-2.0 * beta_min() * t - (beta_max() - beta_min()) * (t * t));
    return std::sqrt(beta_of(t) * discount);
  }

  /// The Euler-Maruyama discretization with dt = 1/N (score_sde `SDE.discretize`, the base class's,
  /// which subVPSDE inherits): f_coef = f(t) dt, G = g(t) sqrt(dt), at t itself (not at a table
  /// index).
  sde_discretization discretize(double t) const {
    const double dt = 1.0 / static_cast<double>(num_steps());
    return {drift_scale(t) * dt, diffusion(t) * std::sqrt(dt)};
  }
};

/// The variance-exploding SDE, Song et al. 2021, Eq. 9 with sigma(t) = sigma_min
/// (sigma_max/sigma_min)^t (App. B): dx = sigma(t) sqrt(2 ln(sigma_max/sigma_min)) dw, t in [0, 1];
/// the continuous limit of NCSN.
///
/// Marginal convention: alpha(t) = 1 and sigma(t) = sigma_min (sigma_max/sigma_min)^t, as score_sde
/// `VESDE.marginal_prob` returns it, not the exact perturbation std sqrt(sigma(t)^2 - sigma_min^2) of
/// App. B: the data are taken as already smoothed by sigma_min at t = 0. That keeps parity with
/// score_sde (its training targets and samplers use this std) and sigma(0) = sigma_min > 0, so
/// the score is finite everywhere. f and g are unaffected (d sigma^2/dt is the same).
class ve_sde {
 public:
  using time_kind = continuous_time;

  /// \throws std::invalid_argument unless sigma_min and sigma_max are finite with
  ///         0 < sigma_min < sigma_max, sigma_max / sigma_min is finite, and num_steps >= 1.
  explicit ve_sde(double sigma_min = 0.01, double sigma_max = 50.0, std::size_t num_steps = 1000)
      : m_sigma_min(sigma_min), m_sigma_max(sigma_max), m_num_steps(num_steps) {
    constexpr std::string_view where = "ve_sde";
    require(std::isfinite(sigma_min) && sigma_min > 0.0, where, "sigma_min", sigma_min, "(0, inf), finite");
    require(std::isfinite(sigma_max) && sigma_max > sigma_min, where, "sigma_max", sigma_max,
            "(sigma_min, inf) = (" + detail::format_value(sigma_min) + ", inf), finite");
    detail::check_num_steps(num_steps, where);
    m_ratio = sigma_max / sigma_min;
    // sigma(t) = sigma_min ratio^t: an infinite ratio would make it infinite for every t > 0.
    if (!std::isfinite(m_ratio)) [[unlikely]]
      detail::throw_invalid_parts(where, {"sigma_max"}, sigma_max,
                                  {"at most DBL_MAX * sigma_min = ", std::numeric_limits<double>::max() * sigma_min,
                                   " (sigma_max / sigma_min must be finite)"});
    // score_sde: sqrt(2 * (log(sigma_max) - log(sigma_min))), the logs taken separately.
    m_diffusion_factor = std::sqrt(2.0 * (std::log(sigma_max) - std::log(sigma_min)));
    m_discrete_sigmas = linspace(std::log(sigma_min), std::log(sigma_max), num_steps);
    for (double& s : m_discrete_sigmas) s = std::exp(s);
  }

  /// T = 1: times lie in [0, 1]; every function of t below throws std::invalid_argument outside.
  static constexpr double end_time() { return detail::sde_end_time; }

  double sigma_min() const { return m_sigma_min; }
  double sigma_max() const { return m_sigma_max; }
  /// N, the number of discretization steps (and of discrete sigmas).
  std::size_t num_steps() const { return m_num_steps; }

  /// log alpha(t) = 0.
  double log_alpha(double t) const {
    checked(t, "ve_sde::log_alpha");
    return 0.0;
  }
  /// alpha(t) = 1: the VE marginal adds noise without shrinking the data.
  double alpha(double t) const {
    checked(t, "ve_sde::alpha");
    return 1.0;
  }
  /// sigma(t) = sigma_min (sigma_max/sigma_min)^t (App. B), the marginal std by score_sde's
  /// convention (see the class comment).
  double sigma(double t) const { return sigma_of(checked(t, "ve_sde::sigma")); }

  /// f(t) = 0 (Eq. 9).
  double drift_scale(double t) const {
    checked(t, "ve_sde::drift_scale");
    return 0.0;
  }
  /// g(t) = sqrt(d sigma^2/dt) = sigma(t) sqrt(2 ln(sigma_max/sigma_min)) (Eq. 9).
  double diffusion(double t) const { return sigma_of(checked(t, "ve_sde::diffusion")) * m_diffusion_factor; }

  /// The prior N(0, sigma_max^2 I).
  double prior_std() const { return m_sigma_max; }
  /// log N(x; 0, sigma_max^2 I) of one sample x: -D/2 ln(2 pi sigma_max^2) - |x|^2/(2 sigma_max^2)
  /// (score_sde `VESDE.prior_logp`).
  double prior_log_density(std::span<const double> x) const {
    return detail::gaussian_prior_log_density(x, m_sigma_max, "ve_sde::prior_log_density");
  }
  /// The prior log-density of each batch sample of x into out (out.size() == batch size).
  template <tensor T>
  void prior_log_density(const T& x, std::span<double> out) const {
    detail::gaussian_prior_log_density(x, out, m_sigma_max, "ve_sde::prior_log_density");
  }
  /// x_T = sigma_max z: fills x with one normal draw of `noise`, then scales it (score_sde
  /// `torch.randn(*shape) * self.sigma_max`).
  template <class Backend, class Noise, tensor T>
  void sample_prior(Backend& be, Noise& noise, T& x) const {
    draw_normal(be, noise, x);
    be.lincomb(x, static_cast<scalar_of<T>>(m_sigma_max), x);
  }

  /// i = floor(t (N - 1)).
  std::size_t discrete_index(double t) const {
    return detail::sde_discrete_index(checked(t, "ve_sde::discrete_index"), m_num_steps);
  }
  /// The SMLD/NCSN discretization (Eq. 8): x_{i+1} = x_i + sqrt(sigma_i^2 - sigma_{i-1}^2) z with
  /// sigma_{-1} = 0, so f_coef = 0 and G = sqrt(sigma_i^2 - sigma_{i-1}^2) at i = discrete_index(t)
  /// (score_sde `VESDE.discretize`).
  sde_discretization discretize(double t) const {
    const std::size_t i = discrete_index(t);
    const double s = m_discrete_sigmas[i];
    const double prev = i == 0 ? 0.0 : m_discrete_sigmas[i - 1];
    return {0.0, std::sqrt(s * s - prev * prev)};
  }
  /// The Langevin corrector's alpha = 1 for VE (Song et al. 2021, App. G, Algorithm 4).
  double langevin_alpha(double t) const {
    checked(t, "ve_sde::langevin_alpha");
    return 1.0;
  }
  /// SMLD's ancestral step at i = discrete_index(t) (Song et al. 2021, App. F, Eq. 47; score_sde
  /// `AncestralSamplingPredictor.vesde_update_fn`): x_mean = x + (sigma_i^2 - sigma_{i-1}^2) score,
  /// noise std sqrt(sigma_{i-1}^2 (sigma_i^2 - sigma_{i-1}^2) / sigma_i^2), sigma_{-1} = 0.
  ancestral_coefficients ancestral_step(double t) const {
    const std::size_t i = discrete_index(t);
    const double s2 = m_discrete_sigmas[i] * m_discrete_sigmas[i];
    const double prev2 = i == 0 ? 0.0 : m_discrete_sigmas[i - 1] * m_discrete_sigmas[i - 1];
    return {1.0, s2 - prev2, std::sqrt(prev2 * (s2 - prev2) / s2)};
  }

  /// sigma_i = exp(linspace(ln sigma_min, ln sigma_max, N))_i, smallest first (score_sde
  /// `discrete_sigmas`; note the order is the reverse of ve_discrete's).
  const std::vector<double>& discrete_sigmas() const { return m_discrete_sigmas; }

 private:
  static double checked(double t, std::string_view where) {
    detail::check_sde_time(t, where);
    return t;
  }
  double sigma_of(double t) const { return m_sigma_min * std::pow(m_ratio, t); }

  double m_sigma_min;
  double m_sigma_max;
  std::size_t m_num_steps;
  double m_ratio;             // sigma_max / sigma_min
  double m_diffusion_factor;  // sqrt(2 ln(sigma_max / sigma_min))
  std::vector<double> m_discrete_sigmas;
};

static_assert(sde_process<vp_sde>);
static_assert(sde_process<subvp_sde>);
static_assert(sde_process<ve_sde>);

/// The reverse-time SDE, Song et al. 2021, Eq. 6, for a drift linear in x:
///   dx = [f(t) x - g(t)^2 score] dt + g(t) dw-bar  (time runs from T to 0).
template <sde_process P>
reverse_coefficients reverse_sde_coefficients(const P& p, double t) {
  const double g = p.diffusion(t);
  return {p.drift_scale(t), -(g * g), g};
}

/// The probability flow ODE, Song et al. 2021, Eq. 13: dx = [f(t) x - g(t)^2 score / 2] dt, no noise.
template <sde_process P>
reverse_coefficients probability_flow_coefficients(const P& p, double t) {
  const double g = p.diffusion(t);
  return {p.drift_scale(t), -(g * g * 0.5), 0.0};
}

/// The discretized reverse SDE of the reverse-diffusion predictor (Song et al. 2021, App. E):
///   f_rev = f_i(x) - G_i^2 score, noise G_i,
/// so that x_{i} = x_{i+1} - f_rev + G_i z (score_sde `RSDE.discretize`, REFERENCE.md item 13).
template <sde_process P>
reverse_coefficients reverse_discretized_coefficients(const P& p, double t) {
  const sde_discretization d = p.discretize(t);
  return {d.f_coef, -(d.g_coef * d.g_coef), d.g_coef};
}

/// The discretized probability flow (score_sde `RSDE.discretize` with probability_flow = True):
///   f_rev = f_i(x) - G_i^2 score / 2, noise 0.
template <sde_process P>
reverse_coefficients probability_flow_discretized_coefficients(const P& p, double t) {
  const sde_discretization d = p.discretize(t);
  return {d.f_coef, -(d.g_coef * d.g_coef * 0.5), 0.0};
}

}  // namespace diffusion
