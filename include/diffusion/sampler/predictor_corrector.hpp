// SPDX-License-Identifier: MIT
// Sampling the reverse-time SDE (Song et al. 2021, "Score-Based Generative Modeling through
// Stochastic Differential Equations", Sec. 4.2 and Alg. 1-3): a predictor (Euler-Maruyama, reverse
// diffusion, ancestral) composed at compile time with a corrector (none, Langevin, annealed
// Langevin). Conventions follow score_sde (REFERENCE.md items 11-14) so trajectories match it.
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <string>
#include <utility>

#include "../core/errors.hpp"
#include "../core/noise.hpp"
#include "../core/reduce.hpp"
#include "../core/tensor.hpp"
#include "../core/time_grid.hpp"
#include "../model/parameterization.hpp"
#include "../model/predictor.hpp"
#include "../process/sde_concepts.hpp"

namespace diffusion {

/// Scratch space of the SDE samplers, made once per run.
template <tensor T>
struct sde_workspace {
  /// The model's output at the current point, as the model predicts it: the samplers fold its
  /// conversion to the score into their coefficients (detail::evaluate_output). The Langevin
  /// corrector converts an x0 or v model's output here in place, and it is then the score.
  T score;
  T noise;       ///< one draw of N(0, I)
  T prediction;  ///< x0_hat = (x + sigma^2 score) / alpha (Tweedie's formula), for observers
  /// The driver sets this to false when nothing observes x0_hat.
  bool need_prediction = true;

  explicit sde_workspace(const T& x) : score(make_like(x)), noise(make_like(x)), prediction(make_like(x)) {}
};

namespace detail {

/// Evaluates the model at (x, t) into ws.score, as it predicts, and, when observed, x0_hat into
/// ws.prediction; returns the conversion of ws.score to the score (evaluate_as_score), which the
/// caller folds into its update.
template <class Backend, class Model, class Process, tensor T>
conversion evaluate_output(Backend& be, Model& model, const Process& p, const T& x, double t, sde_workspace<T>& ws) {
  const conversion to_score = evaluate_as_score(model, p, x, t, ws.score);
  if (ws.need_prediction) tweedie_x0(be, p, x, ws.score, to_score, t, ws.prediction);
  return to_score;
}

}  // namespace detail

// ----------------------------------------------------------------------------------------------
// Predictors: one step of the reverse SDE from t to t + dt (dt < 0). `return_mean` asks for the
// noise-free mean x_mean instead of x_mean + noise (score_sde's final "denoise"); the draw is
// consumed either way, as score_sde does.

/// Euler-Maruyama on the reverse SDE dx = [f(t) x - g(t)^2 score] dt + g(t) dw-bar
/// (Song et al. 2021, Eq. 6): x_mean = x + (f x - g^2 score) dt, x = x_mean + g sqrt(-dt) z.
struct euler_maruyama_predictor {
  template <class Backend, class Model, class Process, class Noise, tensor T>
  void predict(Backend& be, Model& model, const Process& p, Noise& noise, sde_workspace<T>& ws, T& x, double t,
               double dt, bool return_mean) const {
    using S = scalar_of<T>;
    const conversion k = detail::evaluate_output(be, model, p, x, t, ws);
    const double f = p.drift_scale(t), g = p.diffusion(t);
    const detail::folded_update u(1.0 + f * dt, -g * g * dt, k);
    if (return_mean) {
      draw_normal(be, noise, ws.noise);  // consumed but unused, as score_sde does
      be.lincomb(x, S(u.x_coef), x, S(u.output_coef), ws.score);
    } else {
      lincomb_with_noise(be, noise, ws.noise, x, S(u.x_coef), x, S(u.output_coef), ws.score, S(g * std::sqrt(-dt)));
    }
  }
};

/// The reverse-diffusion predictor (Song et al. 2021, Eq. 46-47; score_sde
/// `ReverseDiffusionPredictor`): with the forward discretization x_{i+1} = x_i + f_i x_i + G_i z,
/// x_mean = x - (f_i x - G_i^2 score), x = x_mean + G_i z. With probability_flow the score term is
/// halved and no noise is added (a draw is still consumed).
struct reverse_diffusion_predictor {
  static constexpr bool uses_discretization = true;  ///< reads the process's N-step tables
  bool probability_flow = false;

  template <class Backend, class Model, class Process, class Noise, tensor T>
  void predict(Backend& be, Model& model, const Process& p, Noise& noise, sde_workspace<T>& ws, T& x, double t,
               double /*dt*/, bool return_mean) const {
    using S = scalar_of<T>;
    const conversion k = detail::evaluate_output(be, model, p, x, t, ws);
    const sde_discretization d = p.discretize(t);
    const double g2 = d.g_coef * d.g_coef * (probability_flow ? 0.5 : 1.0);
    const double noise_std = probability_flow ? 0.0 : d.g_coef;
    const detail::folded_update u(1.0 - d.f_coef, g2, k);
    if (return_mean || noise_std == 0.0) {
      draw_normal(be, noise, ws.noise);  // consumed but unused, as score_sde does
      be.lincomb(x, S(u.x_coef), x, S(u.output_coef), ws.score);
    } else {
      lincomb_with_noise(be, noise, ws.noise, x, S(u.x_coef), x, S(u.output_coef), ws.score, S(noise_std));
    }
  }
};

/// The ancestral-sampling predictor: the DDPM (VP) or SMLD (VE) ancestral step at the discrete
/// index of t.
struct ancestral_predictor {
  static constexpr bool uses_discretization = true;
  template <class Backend, class Model, class Process, class Noise, tensor T>
  void predict(Backend& be, Model& model, const Process& p, Noise& noise, sde_workspace<T>& ws, T& x, double t,
               double /*dt*/, bool return_mean) const {
    static_assert(has_ancestral_step<Process>,
                  "ancestral_predictor needs process.ancestral_step(t) (vp_sde and ve_sde provide it; sub-VP has no "
                  "ancestral step, as in score_sde): use euler_maruyama_predictor or reverse_diffusion_predictor");
    if constexpr (has_ancestral_step<Process>) {
      using S = scalar_of<T>;
      const conversion k = detail::evaluate_output(be, model, p, x, t, ws);
      const ancestral_coefficients c = p.ancestral_step(t);
      const detail::folded_update u(c.x_coef, c.score_coef, k);
      if (return_mean) {
        draw_normal(be, noise, ws.noise);  // consumed but unused, as score_sde does
        be.lincomb(x, S(u.x_coef), x, S(u.output_coef), ws.score);
      } else {
        lincomb_with_noise(be, noise, ws.noise, x, S(u.x_coef), x, S(u.output_coef), ws.score, S(c.noise_std));
      }
    }
  }
};

// ----------------------------------------------------------------------------------------------
// Correctors: MCMC steps at a fixed t that pull x towards p_t.

/// No correction: the PC sampler reduces to its predictor.
struct no_corrector {
  template <class Backend, class Model, class Process, class Noise, tensor T>
  void correct(Backend&, Model&, const Process&, Noise&, sde_workspace<T>&, T&, double) const {}
};

/// Langevin MCMC with the signal-to-noise step rule (Song et al. 2021, Alg. 5; REFERENCE.md item
/// 14): step = 2 alpha_i (snr * mean_b |z_b| / mean_b |score_b|)^2, x += step score + sqrt(2 step) z.
/// The step depends on the whole batch through the mean norms, as in score_sde. An eps model's
/// score is its output times -1/sigma, so its norm is the output's times 1/sigma and nothing is
/// converted; an x0 or v model's score also has an x term, and is converted in a pass of its own.
struct langevin_corrector {
  static constexpr bool uses_discretization = true;  ///< alpha_i at the process's discrete index
  double snr = 0.16;
  std::size_t steps = 1;

  void validate() const {
    require(std::isfinite(snr) && snr > 0.0, "langevin_corrector", "snr", snr, "(0, inf)");
  }

  template <class Backend, class Model, class Process, class Noise, tensor T>
  void correct(Backend& be, Model& model, const Process& p, Noise& noise, sde_workspace<T>& ws, T& x, double t) const {
    using S = scalar_of<T>;
    const double alpha = p.langevin_alpha(t);
    for (std::size_t k = 0; k < steps; ++k) {
      conversion to_score = detail::evaluate_output(be, model, p, x, t, ws);
      if constexpr (parameterization_of<Model> != parameterization::score &&
                    parameterization_of<Model> != parameterization::eps) {
        be.lincomb(ws.score, S(to_score.x_coef), x, S(to_score.pred_coef), ws.score);
        to_score = {0.0, 1.0};
      }
      draw_normal(be, noise, ws.noise);
      // to_score.x_coef is 0 here: |score_b| = |pred_coef| |output_b|.
      const double score_norm = std::abs(to_score.pred_coef) * mean_sample_norm(be, ws.score);
      const double ratio = snr * mean_sample_norm(be, ws.noise) / score_norm;
      const double step = 2.0 * alpha * ratio * ratio;
      be.lincomb(x, S(1), x, S(step * to_score.pred_coef), ws.score, S(std::sqrt(2.0 * step)), ws.noise);
    }
  }
};

/// Annealed Langevin dynamics as a corrector (score_sde `AnnealedLangevinDynamics`):
/// step = 2 alpha_i (snr sigma(t))^2 with sigma(t) the marginal std.
struct annealed_langevin_corrector {
  static constexpr bool uses_discretization = true;
  double snr = 0.16;
  std::size_t steps = 1;

  void validate() const {
    require(std::isfinite(snr) && snr > 0.0, "annealed_langevin_corrector", "snr", snr, "(0, inf)");
  }

  template <class Backend, class Model, class Process, class Noise, tensor T>
  void correct(Backend& be, Model& model, const Process& p, Noise& noise, sde_workspace<T>& ws, T& x, double t) const {
    using S = scalar_of<T>;
    const double alpha = p.langevin_alpha(t);
    const double sigma = p.sigma(t);
    const double step = 2.0 * alpha * (snr * sigma) * (snr * sigma);
    for (std::size_t k = 0; k < steps; ++k) {
      const detail::folded_update u(1.0, step, detail::evaluate_output(be, model, p, x, t, ws));
      lincomb_with_noise(be, noise, ws.noise, x, S(u.x_coef), x, S(u.output_coef), ws.score, S(std::sqrt(2.0 * step)));
    }
  }
};

/// Whether a predictor or corrector reads the process's N-step tables.
template <class Policy>
constexpr bool uses_discretization() {
  if constexpr (requires { Policy::uses_discretization; })
    return Policy::uses_discretization;
  else
    return false;
}

struct pc_options {
  /// N: the number of predictor steps, over linspace(T, eps, N) with dt = -T/N (REFERENCE.md 11-12).
  /// 0 takes the process's num_steps(), as score_sde does (one N for the tables and the loop).
  std::size_t steps = 0;
  /// The last time visited; the score is still finite there.
  double eps = 1e-3;
  /// Return the last predictor's noise-free mean (score_sde's `denoise`).
  bool denoise = true;
};

/// The predictor-corrector sampler (Song et al. 2021, Alg. 1): at each t of the grid, the corrector
/// runs first, then the predictor. Any predictor combines with any corrector at compile time.
template <class Process, class Predictor = euler_maruyama_predictor, class Corrector = no_corrector>
class predictor_corrector {
  static_assert(continuous_process<Process> && has_sde_coefficients<Process> &&
                    requires { { Process::end_time() } -> std::convertible_to<double>; },
                "predictor_corrector needs a continuous-time SDE process with drift_scale(t), diffusion(t) and a "
                "static end_time() (diffusion::vp_sde, subvp_sde, ve_sde): for discrete DDPM processes use "
                "diffusion::ddpm_ancestral or diffusion::ddim");
  static_assert(!(uses_discretization<Predictor>() || uses_discretization<Corrector>()) ||
                    has_sde_discretization<Process>,
                "this predictor or corrector reads the process's N-step discretization (num_steps(), "
                "discrete_index(t), discretize(t), langevin_alpha(t)), which the process does not provide: use "
                "euler_maruyama_predictor with no_corrector, or add those members to the process");

 public:
  using process_type = Process;

  predictor_corrector(Process process, Predictor predictor = {}, Corrector corrector = {}, pc_options options = {})
      : m_process(std::move(process)), m_predictor(predictor), m_corrector(corrector),
        m_options(resolve(options, m_process)), m_grid(make_grid(m_options)) {
    if constexpr (requires { corrector.validate(); }) corrector.validate();
  }

  const Process& process() const { return m_process; }
  const time_grid& grid() const { return m_grid; }
  const pc_options& options() const { return m_options; }
  std::size_t num_steps() const { return m_grid.size(); }
  double time(std::size_t i) const { return m_grid[i]; }
  /// The next grid entry; after the last, t + dt.
  double time_next(std::size_t i) const { return i + 1 < m_grid.size() ? m_grid[i + 1] : m_grid[i] + dt(); }
  /// score_sde's step dt = -T/N, used by the predictors whatever the grid spacing.
  double dt() const { return -Process::end_time() / static_cast<double>(m_options.steps); }

  template <class Backend, tensor T>
  sde_workspace<T> make_workspace(Backend&, const T& x) const { return sde_workspace<T>(x); }

  template <class Backend, class Model, class Noise, tensor T>
  void step(Backend& be, Model& model, Noise& noise, sde_workspace<T>& ws, T& x, std::size_t i) const {
    const double t = m_grid[i];
    m_corrector.correct(be, model, m_process, noise, ws, x, t);
    const bool last = i + 1 == m_grid.size();
    m_predictor.predict(be, model, m_process, noise, ws, x, t, dt(), last && m_options.denoise);
  }

 private:
  static pc_options resolve(pc_options o, const Process& p) {
    if constexpr (has_sde_discretization<Process>) {
      if (o.steps == 0) o.steps = p.num_steps();
    } else {
      require(o.steps >= 1, "predictor_corrector", "steps", o.steps,
              "at least 1 (the process has no num_steps() to take it from)");
    }
    // The discrete tables (reverse diffusion, ancestral, Langevin alpha) are indexed by the
    // process's N; a loop of another length would walk them at the wrong rate.
    if constexpr (uses_discretization<Predictor>() || uses_discretization<Corrector>())
      if (o.steps != p.num_steps()) [[unlikely]]
        detail::throw_invalid_parts("predictor_corrector", {"steps"}, o.steps,
                                    {"0 or the process's num_steps() = ", p.num_steps(),
                                     " (this predictor or corrector reads the process's N-step tables)"});
    return o;
  }

  static time_grid make_grid(const pc_options& o) {
    if (!(std::isfinite(o.eps) && o.eps > 0.0 && o.eps < Process::end_time())) [[unlikely]]
      detail::throw_invalid_parts("predictor_corrector", {"eps"}, o.eps, {"(0, T) = (0, ", Process::end_time(), ")"});
    return continuous_grid(o.steps, o.eps, Process::end_time());
  }

  Process m_process;
  [[no_unique_address]] Predictor m_predictor;
  [[no_unique_address]] Corrector m_corrector;
  pc_options m_options;
  time_grid m_grid;
};

/// Euler-Maruyama on the reverse SDE with no corrector (score_sde's EM sampler).
template <class Process>
predictor_corrector<Process, euler_maruyama_predictor, no_corrector> euler_maruyama(Process process,
                                                                                     pc_options options = {}) {
  return {std::move(process), {}, {}, options};
}

}  // namespace diffusion
