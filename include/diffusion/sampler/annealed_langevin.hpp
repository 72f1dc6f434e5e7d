// SPDX-License-Identifier: MIT
// Sampling the noise levels of NCSN: annealed Langevin dynamics (Song & Ermon 2019, "Generative
// Modeling by Estimating Gradients of the Data Distribution", Alg. 1) with the conventions of
// ncsnv2 (Song & Ermon 2020, "Improved Techniques for Training Score-Based Generative Models";
// REFERENCE.md item 16), and consistent annealed sampling (Jolicoeur-Martineau et al. 2021,
// "Adversarial score matching and improved sampling for image generation", Alg. 2).
//
// Both walk the levels sigma_1 > ... > sigma_L of a discrete VE process from the largest down and
// make one fused pass over x per model call. Any model works: an eps, x0 or v model's conversion to
// the score through the process's sigma is folded into that pass (detail::evaluate_output).
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "../core/errors.hpp"
#include "../core/noise.hpp"
#include "../core/tensor.hpp"
#include "../model/parameterization.hpp"
#include "../model/predictor.hpp"
#include "../process/concepts.hpp"
#include "predictor_corrector.hpp"  // sde_workspace, detail::evaluate_output, detail::folded_update

namespace diffusion {

namespace detail {

/// The Langevin step size at level sigma_i, ncsnv2's `step_size = step_lr * (sigma / sigmas[-1]) ** 2`
/// (REFERENCE.md item 16), in that order of operations. Every level then has the same ratio of
/// step to level variance, a_i / sigma_i^2 (Song & Ermon 2019, Alg. 1 and its discussion). The
/// paper writes the step as x + (alpha_i / 2) s + sqrt(alpha_i) z with alpha_i = epsilon sigma_i^2 /
/// sigma_L^2; the code's x + a_i s + sqrt(2 a_i) z is the same update with a_i = alpha_i / 2, i.e.
/// its step_lr is the paper's epsilon / 2.
inline double annealed_step_size(double step_lr, double sigma, double sigma_min) {
  const double ratio = sigma / sigma_min;
  return step_lr * (ratio * ratio);
}

/// beta of consistent annealed sampling (Jolicoeur-Martineau et al. 2021, Alg. 2; their code's
/// `compute_beta`): beta = sqrt(1 - ((1 - eta) / gamma)^2) with eta = step_lr / sigma_L^2 and
/// gamma = sigma_{i+1} / sigma_i.
///
/// Why: with a perfect score and x = x0 + sigma_i z at level i, the step
/// x + eta sigma_i^2 score + beta sigma_{i+1} z' = x0 + (1 - eta) sigma_i z + beta sigma_{i+1} z'
/// has noise variance (1 - eta)^2 sigma_i^2 + beta^2 sigma_{i+1}^2, which equals sigma_{i+1}^2 (the
/// next level: the chain stays *consistent* with the schedule) exactly when
/// (1 - eta)^2 / gamma^2 + beta^2 = 1. Real beta needs |1 - eta| <= gamma.
inline double consistent_beta(double eta, double gamma) {
  const double r = (1.0 - eta) / gamma;
  return std::sqrt(1.0 - r * r);
}

template <class Process>
std::size_t checked_num_levels(const Process& p, const char* where) {
  const std::size_t levels = p.num_levels();
  require(levels >= 1, where, "process.num_levels()", levels, "at least 1");
  return levels;
}

}  // namespace detail

// ----------------------------------------------------------------------------------------------

/// Runtime options of annealed Langevin dynamics. The defaults are those of ncsnv2's
/// `anneal_Langevin_dynamics` (tuned there for sigma_L = 0.01).
struct annealed_langevin_options {
  /// ncsnv2's `step_lr`: the coefficient of the score at the smallest level (the paper's
  /// epsilon / 2, see detail::annealed_step_size). It scales with sigma_L^2, so it must be retuned
  /// when sigma_L changes. Must be finite and > 0.
  double step_lr = 8e-6;
  /// T of Alg. 1 (ncsnv2 `n_steps_each`): Langevin steps per level. At least 1.
  std::size_t n_steps_each = 200;
  /// After the last level, take one noise-free step x += sigma_L^2 score(x, sigma_L), Tweedie's
  /// estimate of E[x0 | x] (ncsnv2 `denoise`; Jolicoeur-Martineau et al. 2021 show that this final
  /// denoising closes most of the FID gap to GANs).
  bool denoise = true;
};

/// Annealed Langevin dynamics (Song & Ermon 2019, Alg. 1) as ncsnv2 runs it (REFERENCE.md item 16):
///
///     for i = 1..L:  a_i = step_lr (sigma_i / sigma_L)^2
///         repeat n_steps_each times:  s = score(x, sigma_i); z ~ N(0, I);
///                                     x = x + a_i s + sqrt(2 a_i) z
///     if denoise:    x = x + sigma_L^2 score(x, sigma_L)
///
/// Driver steps: step i is ONE model call. Steps 0 .. L n_steps_each - 1 are the Langevin steps, the
/// pair (level, inner step) = (i / n_steps_each, i % n_steps_each); with `denoise` one more step
/// follows. So num_steps() = L n_steps_each (+ 1), an observer sees every Langevin step, and
/// stopping early stops between any two model calls.
///
/// Time reported to observers: time(i) is the level index (0 = sigma_1, the largest) whose score
/// step i uses; time_next(i) is the next step's level, or L after the last step (one past the last
/// level: the chain has left the grid). The prediction is x0_hat = x + sigma_i^2 s at the point the
/// score was taken.
///
/// Noise: one normal draw per Langevin step, taken after the model call (ncsnv2's order); none for
/// the denoising step. L n_steps_each draws in all. The chain starts from the x_T the caller gives
/// (e.g. sigma_1 z, the VE prior; ncsnv2 starts image models from U[0, 1]).
///
/// \tparam Process a discrete VE process (diffusion::ve_discrete).
template <class Process>
class annealed_langevin {
  static_assert(discrete_ve_process<Process>,
                "diffusion::annealed_langevin needs a discrete variance-exploding process with noise levels "
                "(diffusion::ve_discrete, e.g. ve_discrete::geometric(sigma_max, sigma_min, L)); for DDPM processes use "
                "diffusion::ddpm_ancestral or diffusion::ddim, for continuous SDEs diffusion::predictor_corrector "
                "with diffusion::annealed_langevin_corrector");

 public:
  using process_type = Process;

  /// \throws std::invalid_argument unless options.step_lr is finite and > 0 and
  ///         options.n_steps_each >= 1.
  explicit annealed_langevin(Process process, annealed_langevin_options options = {})
      : m_process(std::move(process)), m_options(options) {
    constexpr const char* where = "annealed_langevin";
    require(std::isfinite(options.step_lr) && options.step_lr > 0.0, where, "step_lr", options.step_lr,
            "(0, inf), finite");
    require(options.n_steps_each >= 1, where, "n_steps_each", options.n_steps_each, "at least 1");
    m_levels = detail::checked_num_levels(m_process, where);
    const double sigma_min = m_process.sigma(static_cast<double>(m_levels - 1));
    m_step.resize(m_levels);
    m_noise_std.resize(m_levels);
    for (std::size_t l = 0; l < m_levels; ++l) {
      m_step[l] = detail::annealed_step_size(options.step_lr, m_process.sigma(static_cast<double>(l)), sigma_min);
      m_noise_std[l] = std::sqrt(m_step[l] * 2.0);  // ncsnv2: np.sqrt(step_size * 2)
    }
    m_denoise_coef = sigma_min * sigma_min;
  }

  const Process& process() const noexcept { return m_process; }
  const annealed_langevin_options& options() const noexcept { return m_options; }
  /// L, the number of noise levels.
  std::size_t num_levels() const noexcept { return m_levels; }
  /// a_l = step_lr (sigma_l / sigma_L)^2, the coefficient of the score at level l (0 = largest).
  double step_size(std::size_t level) const { return m_step.at(level); }

  /// L n_steps_each Langevin steps, plus one denoising step if options().denoise.
  std::size_t num_steps() const noexcept { return m_levels * m_options.n_steps_each + (m_options.denoise ? 1 : 0); }
  /// The level whose score step i uses: i / n_steps_each, and L-1 for the denoising step.
  std::size_t level(std::size_t i) const noexcept {
    return is_denoising_step(i) ? m_levels - 1 : i / m_options.n_steps_each;
  }
  /// Whether step i is the final noise-free step.
  bool is_denoising_step(std::size_t i) const noexcept {
    return m_options.denoise && i == m_levels * m_options.n_steps_each;
  }
  double time(std::size_t i) const noexcept { return static_cast<double>(level(i)); }
  double time_next(std::size_t i) const noexcept {
    return i + 1 < num_steps() ? time(i + 1) : static_cast<double>(m_levels);
  }

  template <class Backend, tensor T>
  sde_workspace<T> make_workspace(Backend&, const T& x) const { return sde_workspace<T>(x); }

  template <class Backend, class Model, class Noise, tensor T>
  void step(Backend& be, Model& model, Noise& noise, sde_workspace<T>& ws, T& x, std::size_t i) const {
    using S = scalar_of<T>;
    const std::size_t l = level(i);
    const conversion k = detail::evaluate_output(be, model, m_process, x, static_cast<double>(l), ws);
    if (is_denoising_step(i)) {
      // x + sigma_L^2 score: Tweedie's E[x0 | x] at alpha = 1, no noise (ncsnv2 `denoise`).
      const detail::folded_update u(1.0, m_denoise_coef, k);
      be.lincomb(x, S(u.x_coef), x, S(u.output_coef), ws.score);
      return;
    }
    const detail::folded_update u(1.0, m_step[l], k);
    lincomb_with_noise(be, noise, ws.noise, x, S(u.x_coef), x, S(u.output_coef), ws.score, S(m_noise_std[l]));
  }

 private:
  Process m_process;
  annealed_langevin_options m_options;
  std::size_t m_levels = 0;
  std::vector<double> m_step;       // a_l
  std::vector<double> m_noise_std;  // sqrt(2 a_l)
  double m_denoise_coef = 0.0;      // sigma_L^2
};

// ----------------------------------------------------------------------------------------------

/// Runtime options of consistent annealed sampling.
struct consistent_annealed_options {
  /// eta sigma_L^2 in Jolicoeur-Martineau et al. 2021, Alg. 2 (their code's `step_lr`): the step at
  /// level i is step_lr (sigma_i / sigma_L)^2, as in annealed Langevin dynamics. No default: it must
  /// lie in (sigma_L^2 (1 - gamma), sigma_L^2 (1 + gamma)) for the levels at hand (the constructor's
  /// message gives the interval). step_lr = sigma_L^2 (1 - gamma^2) is the ancestral sampler of the
  /// VE chain; step_lr = sigma_L^2 (eta = 1) moves to the Tweedie estimate and adds fresh noise.
  double step_lr;
  /// Make the last level's (noise-free) step x + sigma_L^2 score instead of x + step_L score, so the
  /// result is the denoised sample E[x0 | x] of the reference code's `denoised_images` rather than
  /// its `images` (no extra model call).
  bool denoise = true;
};

/// Consistent annealed sampling (Jolicoeur-Martineau et al. 2021, Alg. 2 and their code's
/// `anneal_Langevin_dynamics_consistent`): one model call per level,
///
///     eta = step_lr / sigma_L^2
///     for i = 1..L:  s = score(x, sigma_i)
///                    x = x + eta sigma_i^2 s                       (= step_lr (sigma_i/sigma_L)^2 s)
///                    if i < L:  z ~ N(0, I);  x = x + beta_i sigma_{i+1} z,
///                               beta_i = sqrt(1 - ((1 - eta) / gamma_i)^2),  gamma_i = sigma_{i+1} / sigma_i
///
/// beta_i is chosen so that, with a perfect score, the noise left in x after step i is exactly
/// sigma_{i+1} (see detail::consistent_beta), unlike annealed Langevin dynamics whose noise level
/// lags the schedule. For geometric levels gamma_i = gamma is constant; other levels use their own
/// ratio at each step. With `denoise` the last step uses sigma_L^2 instead of eta sigma_L^2.
///
/// Driver steps: step i is level i (one model call), num_steps() = L; time(i) = i, time_next(i) =
/// i + 1 (L after the last). Noise: one draw per level after the model call, none at the last
/// level: L - 1 draws. The prediction is x0_hat = x + sigma_i^2 s.
///
/// \tparam Process a discrete VE process (diffusion::ve_discrete).
template <class Process>
class consistent_annealed_sampling {
  static_assert(discrete_ve_process<Process>,
                "diffusion::consistent_annealed_sampling needs a discrete variance-exploding process with noise levels "
                "(diffusion::ve_discrete, e.g. ve_discrete::geometric(sigma_max, sigma_min, L)); for DDPM processes use "
                "diffusion::ddpm_ancestral or diffusion::ddim, for continuous SDEs diffusion::predictor_corrector");

 public:
  using process_type = Process;

  /// \throws std::invalid_argument unless options.step_lr is finite and > 0 and every beta_i is
  ///         real and positive, i.e. sigma_L^2 (1 - gamma) < step_lr < sigma_L^2 (1 + gamma) with
  ///         gamma the smallest ratio sigma_{i+1} / sigma_i (the bound the reference code asserts).
  consistent_annealed_sampling(Process process, consistent_annealed_options options)
      : m_process(std::move(process)), m_options(options) {
    constexpr const char* where = "consistent_annealed_sampling";
    m_levels = detail::checked_num_levels(m_process, where);
    const double sigma_min = m_process.sigma(static_cast<double>(m_levels - 1));
    std::vector<double> sigmas(m_levels);
    for (std::size_t l = 0; l < m_levels; ++l) sigmas[l] = m_process.sigma(static_cast<double>(l));
    double gamma_min = 1.0;
    for (std::size_t l = 0; l + 1 < m_levels; ++l) gamma_min = std::min(gamma_min, sigmas[l + 1] / sigmas[l]);
    const double eta = options.step_lr / (sigma_min * sigma_min);
    const bool in_range = m_levels == 1 ? options.step_lr > 0.0 : std::abs(1.0 - eta) < gamma_min;
    if (!(std::isfinite(options.step_lr) && in_range)) [[unlikely]] {
      if (m_levels == 1) throw_invalid(where, "step_lr", options.step_lr, "(0, inf), finite");
      detail::throw_invalid_parts(where, {"step_lr"}, options.step_lr,
                                  {"(sigma_L^2 (1 - gamma), sigma_L^2 (1 + gamma)) = (",
                                   sigma_min * sigma_min * (1.0 - gamma_min), ", ",
                                   sigma_min * sigma_min * (1.0 + gamma_min), ") with sigma_L = ", sigma_min,
                                   " and gamma = min sigma_{i+1}/sigma_i = ", gamma_min,
                                   ", so that beta = sqrt(1 - ((1 - eta)/gamma)^2) is real and positive"});
    }
    m_step.resize(m_levels);
    m_noise_std.assign(m_levels, 0.0);
    for (std::size_t l = 0; l < m_levels; ++l) {
      m_step[l] = detail::annealed_step_size(options.step_lr, sigmas[l], sigma_min);
      if (l + 1 < m_levels) m_noise_std[l] = sigmas[l + 1] * detail::consistent_beta(eta, sigmas[l + 1] / sigmas[l]);
    }
    if (options.denoise) m_step[m_levels - 1] = sigma_min * sigma_min;
  }

  const Process& process() const noexcept { return m_process; }
  const consistent_annealed_options& options() const noexcept { return m_options; }
  std::size_t num_levels() const noexcept { return m_levels; }
  /// The coefficient of the score at level l: step_lr (sigma_l / sigma_L)^2 (sigma_L^2 at the last
  /// level with denoise).
  double step_size(std::size_t level) const { return m_step.at(level); }
  /// beta_l sigma_{l+1}, the standard deviation of the noise added after level l (0 at the last).
  double noise_std(std::size_t level) const { return m_noise_std.at(level); }

  std::size_t num_steps() const noexcept { return m_levels; }
  double time(std::size_t i) const noexcept { return static_cast<double>(i); }
  double time_next(std::size_t i) const noexcept { return static_cast<double>(i + 1); }

  template <class Backend, tensor T>
  sde_workspace<T> make_workspace(Backend&, const T& x) const { return sde_workspace<T>(x); }

  template <class Backend, class Model, class Noise, tensor T>
  void step(Backend& be, Model& model, Noise& noise, sde_workspace<T>& ws, T& x, std::size_t i) const {
    using S = scalar_of<T>;
    const detail::folded_update u(1.0, m_step[i],
                                  detail::evaluate_output(be, model, m_process, x, static_cast<double>(i), ws));
    if (i + 1 == m_levels) {
      // sigma_{L+1} = 0: the last level adds no noise (and draws none, as the reference code).
      be.lincomb(x, S(u.x_coef), x, S(u.output_coef), ws.score);
      return;
    }
    lincomb_with_noise(be, noise, ws.noise, x, S(u.x_coef), x, S(u.output_coef), ws.score, S(m_noise_std[i]));
  }

 private:
  Process m_process;
  consistent_annealed_options m_options;
  std::size_t m_levels = 0;
  std::vector<double> m_step;       // step_lr (sigma_l / sigma_L)^2
  std::vector<double> m_noise_std;  // beta_l sigma_{l+1}
};

}  // namespace diffusion
