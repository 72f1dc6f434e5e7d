// SPDX-License-Identifier: MIT
// DDPM ancestral sampling (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", Alg. 2),
// over any explicit grid of training timesteps, with the posterior of Eqs. 6-7 taken between
// consecutive grid entries (REFERENCE.md item 3).
#pragma once

#include <cmath>
#include <cstddef>
#include <utility>

#include "../core/noise.hpp"
#include "../core/time_grid.hpp"
#include "../model/parameterization.hpp"
#include "../model/predictor.hpp"
#include "../process/concepts.hpp"
#include "../process/vp_discrete.hpp"
#include "workspace.hpp"
#include "x0_correction.hpp"

namespace diffusion {

/// The variance of the reverse step (Ho et al. 2020, Sec. 3.2).
enum class ddpm_variance {
  fixed_small,  ///< beta-tilde, the posterior variance: right when x0 is deterministic
  fixed_large,  ///< beta: right when x0 ~ N(0, I)
};

struct ddpm_options {
  ddpm_variance variance = ddpm_variance::fixed_small;
  x0_correction correction = {};
};

/// Ancestral sampler: x_prev = mean(x0_hat, x) + sqrt(var) z for each grid entry, no noise at t = 0.
template <class Process>
class ddpm_ancestral {
  static_assert(discrete_vp_process<Process>,
                "ddpm_ancestral needs a discrete variance-preserving process with alpha_bar(t) and "
                "num_timesteps() (e.g. diffusion::vp_discrete); for continuous SDEs use the SDE samplers");

 public:
  using process_type = Process;

  ddpm_ancestral(Process process, time_grid grid, ddpm_options options = {})
      : m_process(std::move(process)), m_grid(std::move(grid)), m_options(options) {
    options.correction.validate("ddpm_ancestral");
    require(m_grid.size() >= 1, "ddpm_ancestral", "grid size", m_grid.size(), "at least 1");
    // alpha_bar validates every entry: integer timesteps in [0, T-1].
    for (double t : m_grid) (void)m_process.alpha_bar(t);
  }

  const Process& process() const { return m_process; }
  const time_grid& grid() const { return m_grid; }
  std::size_t num_steps() const { return m_grid.size(); }
  double time(std::size_t i) const { return m_grid[i]; }
  /// The next grid entry; -1 after the last (where alpha_bar_prev = 1).
  double time_next(std::size_t i) const { return i + 1 < m_grid.size() ? m_grid[i + 1] : -1.0; }

  template <class Backend, tensor T>
  denoising_workspace<T> make_workspace(Backend&, const T& x) const { return denoising_workspace<T>(x); }

  template <class Backend, class Model, class Noise, tensor T>
  void step(Backend& be, Model& model, Noise& noise, denoising_workspace<T>& ws, T& x, std::size_t i) const {
    using S = scalar_of<T>;
    const double t = m_grid[i];
    const double alpha_bar = m_process.alpha_bar(t);
    const double alpha_bar_prev = i + 1 < m_grid.size() ? m_process.alpha_bar(m_grid[i + 1]) : 1.0;
    const posterior_coefficients c = posterior(alpha_bar, alpha_bar_prev);
    const double variance =
        m_options.variance == ddpm_variance::fixed_small ? c.variance_fixed_small : c.variance_fixed_large;
    // diffusers draws no noise at t = 0, so 1000 steps use 999 draws.
    const double noise_std = t > 0 ? std::sqrt(variance) : 0.0;

    // x0_hat = (x - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar) (Ho et al. 2020, Eq. 15), taken from
    // whatever the model predicts.
    const conversion x0 = detail::evaluate_x0_eps(model, m_process, x, t, ws).x0;

    // An observer's x0_hat is formed on the side: the update below does not depend on whether
    // one is attached (in float the two forms of the update differ in the last bits).
    if (m_options.correction.mode != x0_correction::kind::none) {
      be.lincomb(ws.prediction, S(x0.x_coef), x, S(x0.pred_coef), ws.model_out);
      detail::correct_x0(be, m_options.correction, ws.prediction, ws.scratch);
      if (noise_std > 0)
        lincomb_with_noise(be, noise, ws.noise, x, S(c.x0_coef), ws.prediction, S(c.xt_coef), x, S(noise_std));
      else
        be.lincomb(x, S(c.x0_coef), ws.prediction, S(c.xt_coef), x);
    } else {
      if (ws.need_prediction) be.lincomb(ws.prediction, S(x0.x_coef), x, S(x0.pred_coef), ws.model_out);
      // The mean is linear in (x, model output) when x0_hat is not corrected: one pass, with the
      // noise generated inside it where the backend can.
      const double a = c.x0_coef * x0.x_coef + c.xt_coef;
      const double b = c.x0_coef * x0.pred_coef;
      if (noise_std > 0)
        lincomb_with_noise(be, noise, ws.noise, x, S(a), x, S(b), ws.model_out, S(noise_std));
      else
        be.lincomb(x, S(a), x, S(b), ws.model_out);
    }
  }

 private:
  Process m_process;
  time_grid m_grid;
  ddpm_options m_options;
};

}  // namespace diffusion
