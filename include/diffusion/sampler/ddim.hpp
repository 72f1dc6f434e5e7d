// SPDX-License-Identifier: MIT
// DDIM (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models", Eq. 12) over any explicit
// grid of training timesteps, and its inversion.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <utility>

#include "../core/noise.hpp"
#include "../core/time_grid.hpp"
#include "../model/parameterization.hpp"
#include "../model/predictor.hpp"
#include "../process/concepts.hpp"
#include "workspace.hpp"
#include "x0_correction.hpp"

namespace diffusion {

struct ddim_options {
  /// eta = 0: deterministic DDIM; eta = 1: the DDPM posterior variance (Song et al. 2021, Eq. 16).
  double eta = 0.0;
  /// After the last grid entry, alpha_bar_prev = 1 (true) or alpha_bar(0) (false), as diffusers'
  /// `set_alpha_to_one`.
  bool set_alpha_to_one = true;
  x0_correction correction = {};
  /// With a correction of x0_hat: false (diffusers' default) keeps the model's eps in the update,
  /// true re-derives eps from the corrected x0_hat, eps = (x - sqrt(abar) x0_hat)/sqrt(1 - abar)
  /// (diffusers' `step(use_clipped_model_output=True)`). Without a correction both are the same.
  bool use_clipped_model_output = false;
};

/// sigma_t(eta) of Song et al. 2021, Eq. 16: eta sqrt((1 - abar_prev)/(1 - abar_t) (1 - abar_t/abar_prev)).
inline double ddim_sigma(double eta, double alpha_bar, double alpha_bar_prev) {
  return eta * std::sqrt((1.0 - alpha_bar_prev) / (1.0 - alpha_bar) * (1.0 - alpha_bar / alpha_bar_prev));
}

/// The DDIM update x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma z.
template <class Process>
class ddim {
  static_assert(discrete_vp_process<Process>,
                "ddim needs a discrete variance-preserving process with alpha_bar(t) and num_timesteps() "
                "(e.g. diffusion::vp_discrete); for continuous SDEs use the probability-flow ODE samplers");

 public:
  using process_type = Process;

  /// \throws std::invalid_argument for an empty grid, a time the process rejects, an invalid
  ///         correction, or eta outside [0, eta_max], where eta_max >= 1 is the largest eta whose
  ///         sigma_t(eta)^2 stays within 1 - alpha_bar_prev at every step of the grid (beyond it
  ///         the update's eps term would be the square root of a negative number).
  ddim(Process process, time_grid grid, ddim_options options = {})
      : m_process(std::move(process)), m_grid(std::move(grid)), m_options(options) {
    require(m_grid.size() >= 1, "ddim", "grid size", m_grid.size(), "at least 1");
    options.correction.validate("ddim");
    for (double t : m_grid) (void)m_process.alpha_bar(t);
    const double eta_max = largest_eta();
    if (!(options.eta >= 0.0 && options.eta <= eta_max)) [[unlikely]]
      detail::throw_invalid_parts("ddim", {"eta"}, options.eta,
                                  {"[0, ", eta_max, "] on this grid (sigma_t(eta)^2 <= 1 - alpha_bar_prev)"});
  }

  const Process& process() const { return m_process; }
  const time_grid& grid() const { return m_grid; }
  std::size_t num_steps() const { return m_grid.size(); }
  double time(std::size_t i) const { return m_grid[i]; }
  double time_next(std::size_t i) const { return i + 1 < m_grid.size() ? m_grid[i + 1] : -1.0; }

  /// alpha_bar at the entry after step i (the "previous timestep" in the papers' reverse order).
  double alpha_bar_prev(std::size_t i) const {
    if (i + 1 < m_grid.size()) return m_process.alpha_bar(m_grid[i + 1]);
    return m_options.set_alpha_to_one ? 1.0 : m_process.alpha_bar(0.0);
  }

  template <class Backend, tensor T>
  denoising_workspace<T> make_workspace(Backend&, const T& x) const { return denoising_workspace<T>(x); }

  template <class Backend, class Model, class Noise, tensor T>
  void step(Backend& be, Model& model, Noise& noise, denoising_workspace<T>& ws, T& x, std::size_t i) const {
    using S = scalar_of<T>;
    const double t = m_grid[i];
    const double alpha_bar = m_process.alpha_bar(t);
    const double alpha_bar_prev = this->alpha_bar_prev(i);
    const double sigma = ddim_sigma(m_options.eta, alpha_bar, alpha_bar_prev);
    // The constructor bounds eta, so a negative 1 - abar_prev - sigma^2 is rounding (eta = 1 at
    // the last step, or eta = eta_max).
    const double dir = std::sqrt(std::max(1.0 - alpha_bar_prev - sigma * sigma, 0.0));

    const x0_eps_coefficients c = detail::evaluate_x0_eps(model, m_process, x, t, ws);
    // diffusers draws a noise tensor at every step when eta > 0 (even where sigma is 0).
    const bool stochastic = m_options.eta > 0.0;

    const double a = std::sqrt(alpha_bar_prev);
    const bool corrected = m_options.correction.mode != x0_correction::kind::none;
    // An observer's x0_hat is formed on the side: the update does not depend on whether one is
    // attached (in float the two forms of the update differ in the last bits).
    if (corrected) {
      be.lincomb(ws.prediction, S(c.x0.x_coef), x, S(c.x0.pred_coef), ws.model_out);
      detail::correct_x0(be, m_options.correction, ws.prediction, ws.scratch);
      if (m_options.use_clipped_model_output) {
        // eps re-derived from the corrected x0_hat: eps = (x - sqrt(abar) x0)/sqrt(1 - abar).
        be.lincomb(ws.model_out, S(1.0 / std::sqrt(1.0 - alpha_bar)), x,
                   S(-std::sqrt(alpha_bar) / std::sqrt(1.0 - alpha_bar)), ws.prediction);
      } else {
        be.lincomb(ws.model_out, S(c.eps.x_coef), x, S(c.eps.pred_coef), ws.model_out);
      }
      if (stochastic)
        lincomb_with_noise(be, noise, ws.noise, x, S(a), ws.prediction, S(dir), ws.model_out, S(sigma));
      else
        be.lincomb(x, S(a), ws.prediction, S(dir), ws.model_out);
    } else {
      if (ws.need_prediction) be.lincomb(ws.prediction, S(c.x0.x_coef), x, S(c.x0.pred_coef), ws.model_out);
      // x_prev is linear in (x, model output): one pass.
      const double cx = a * c.x0.x_coef + dir * c.eps.x_coef;
      const double cp = a * c.x0.pred_coef + dir * c.eps.pred_coef;
      if (stochastic)
        lincomb_with_noise(be, noise, ws.noise, x, S(cx), x, S(cp), ws.model_out, S(sigma));
      else
        be.lincomb(x, S(cx), x, S(cp), ws.model_out);
    }
  }

 private:
  // min over the steps of sqrt((1 - abar_prev) / sigma_t(1)^2): sigma_t(eta) = eta sigma_t(1).
  double largest_eta() const {
    double eta_max = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < m_grid.size(); ++i) {
      const double alpha_bar = m_process.alpha_bar(m_grid[i]), alpha_bar_prev = this->alpha_bar_prev(i);
      const double sigma_1 = ddim_sigma(1.0, alpha_bar, alpha_bar_prev);
      if (sigma_1 > 0.0) eta_max = std::min(eta_max, std::sqrt((1.0 - alpha_bar_prev) / (sigma_1 * sigma_1)));
    }
    return eta_max;
  }

  Process m_process;
  time_grid m_grid;
  ddim_options m_options;
};

struct ddim_inversion_options {
  bool set_alpha_to_one = true;
  /// 0: the usual inversion, which evaluates eps at the known (cleaner) point, exact only as the step
  /// shrinks. n > 0: n fixed-point iterations solving the deterministic DDIM step for its input, so
  /// that ddim(eta = 0) maps the result back to the start up to the iteration's convergence. The
  /// iteration contracts where |c_eps / c_x| times the Lipschitz constant of eps is below 1, which
  /// needs short steps where eps changes fast (for a well-separated mixture: ~200 of 1000 steps).
  std::size_t fixed_point_iterations = 0;
};

/// Runs deterministic DDIM (eta = 0) backwards over the same grid as `ddim`: from a clean sample to
/// x at grid[0]. Step i inverts sampling step n-1-i.
template <class Process>
class ddim_inversion {
  static_assert(discrete_vp_process<Process>,
                "ddim_inversion needs a discrete variance-preserving process (e.g. diffusion::vp_discrete)");

 public:
  using process_type = Process;

  ddim_inversion(Process process, time_grid grid, ddim_inversion_options options = {})
      : m_process(std::move(process)), m_grid(std::move(grid)), m_options(options) {
    require(m_grid.size() >= 1, "ddim_inversion", "grid size", m_grid.size(), "at least 1");
    for (double t : m_grid) (void)m_process.alpha_bar(t);
  }

  std::size_t num_steps() const { return m_grid.size(); }
  /// Inversion moves up the grid: from the entry after k = n-1-i to grid[k].
  double time(std::size_t i) const { return i == 0 ? -1.0 : time_next(i - 1); }
  double time_next(std::size_t i) const { return i < m_grid.size() ? m_grid[m_grid.size() - 1 - i] : -1.0; }

  template <class Backend, tensor T>
  denoising_workspace<T> make_workspace(Backend&, const T& x) const { return denoising_workspace<T>(x); }

  template <class Backend, class Model, class Noise, tensor T>
  void step(Backend& be, Model& model, Noise&, denoising_workspace<T>& ws, T& x, std::size_t i) const {
    using S = scalar_of<T>;
    const std::size_t k = m_grid.size() - 1 - i;
    const double t = m_grid[k];  // the model's time in the DDIM step being inverted
    const double alpha_bar = m_process.alpha_bar(t);
    const double alpha_bar_prev = k + 1 < m_grid.size() ? m_process.alpha_bar(m_grid[k + 1])
                                  : m_options.set_alpha_to_one ? 1.0
                                                               : m_process.alpha_bar(0.0);
    // Sampling: x_prev = c_x x + c_eps eps(x, t) with
    const double c_x = std::sqrt(alpha_bar_prev / alpha_bar);
    const double c_eps = std::sqrt(1.0 - alpha_bar_prev) - std::sqrt(alpha_bar_prev * (1.0 - alpha_bar) / alpha_bar);
    // so x = (x_prev - c_eps eps(x, t)) / c_x; eps is first taken at x_prev, then iterated. An x0,
    // v or score model's eps = k.x_coef x + k.pred_coef output is folded into the same pass.
    constexpr bool eps_model = parameterization_of<Model> == parameterization::eps;
    be.lincomb(ws.prediction, S(1), x);  // keeps x_prev
    const double a = 1.0 / c_x, b = -c_eps / c_x;
    const conversion to_eps =
        convert_coefficients(parameterization_of<Model>, parameterization::eps, m_process.alpha(t), m_process.sigma(t));
    const std::size_t evaluations = 1 + m_options.fixed_point_iterations;
    for (std::size_t it = 0; it < evaluations; ++it) {
      call_model(model, x, t, ws.model_out);
      if constexpr (eps_model)
        be.lincomb(x, S(a), ws.prediction, S(b), ws.model_out);
      else
        be.lincomb(x, S(a), ws.prediction, S(b * to_eps.x_coef), x, S(b * to_eps.pred_coef), ws.model_out);
    }
    if (!ws.need_prediction) return;
    // What the observer sees: x0_hat at the new point (one more model call, only when observed).
    call_model(model, x, t, ws.model_out);
    if constexpr (eps_model) {
      be.lincomb(ws.prediction, S(1.0 / std::sqrt(alpha_bar)), x,
                 S(-std::sqrt(1.0 - alpha_bar) / std::sqrt(alpha_bar)), ws.model_out);
    } else {
      const conversion k = convert_coefficients(parameterization_of<Model>, parameterization::x0, m_process.alpha(t),
                                                m_process.sigma(t));
      be.lincomb(ws.prediction, S(k.x_coef), x, S(k.pred_coef), ws.model_out);
    }
  }

 private:
  Process m_process;
  time_grid m_grid;
  ddim_inversion_options m_options;
};

}  // namespace diffusion
