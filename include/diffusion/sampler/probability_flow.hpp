// SPDX-License-Identifier: MIT
// Fixed-step solvers of the probability-flow ODE (Song et al. 2021, "Score-Based Generative
// Modeling through Stochastic Differential Equations", Sec. 4.3, Eq. 13):
//
//     dx/dt = f(t) x - 1/2 g(t)^2 score(x, t),
//
// integrated from t = T down to eps over an explicit decreasing time grid, with the real grid
// spacing as the step (not score_sde's -1/N). The update rule (Euler, Heun, classic RK4) is a
// compile-time policy of one sampler template; every update is a backend lincomb on scratch made
// once per run. The adaptive Dormand-Prince solver lives in adaptive_ode.hpp.
#pragma once

#include <array>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <string>
#include <utility>

#include "../core/errors.hpp"
#include "../core/tensor.hpp"
#include "../core/time_grid.hpp"
#include "../model/parameterization.hpp"
#include "../model/predictor.hpp"
#include "../process/sde.hpp"
#include "../process/sde_concepts.hpp"

namespace diffusion {

/// Scratch space of the fixed-step probability-flow samplers: `Scratch` tensors for the method's
/// intermediate drifts and stage points, plus x0_hat for observers; made once per run.
template <tensor T, std::size_t Scratch>
struct probability_flow_workspace {
  std::array<T, Scratch> scratch;
  T prediction;  ///< x0_hat = (x + sigma^2 score)/alpha at the step's start (Tweedie's formula)
  /// The driver sets this to false when nothing observes x0_hat.
  bool need_prediction = true;

  explicit probability_flow_workspace(const T& x)
      : scratch(make_array(x, std::make_index_sequence<Scratch>{})), prediction(make_like(x)) {}

 private:
  template <std::size_t... I>
  static std::array<T, Scratch> make_array(const T& x, std::index_sequence<I...>) {
    return {((void)I, make_like(x))...};
  }
};

namespace detail {

/// The probability-flow drift at time t as two scalars: drift = x_coef x + score_coef score, with
/// x_coef = f(t) and score_coef = -g(t)^2 / 2 (Song et al. 2021, Eq. 13; sde.hpp).
template <class Process>
reverse_coefficients flow_coefficients(const Process& p, double t) {
  return probability_flow_coefficients(p, t);
}

/// score(y, t) into `out`, converted from whatever the model predicts.
template <class Backend, class Model, class Process, tensor T>
void flow_score(Backend& be, Model& model, const Process& p, const T& y, double t, T& out) {
  predict_as<score_param>(be, model, p, y, t, out);
}

/// The flow at a point, in terms of the point y and the model's own output there: the drift
/// f(t) y - g(t)^2/2 score(y, t) = drift.x_coef y + drift.score_coef output, and the score
/// = to_score.x_coef y + to_score.pred_coef output.
struct flow_evaluation {
  reverse_coefficients drift;
  conversion to_score;
};

/// Evaluates the model at (y, t) into `out`, as it predicts, and returns the flow there. Every
/// parameterization's score is affine in (y, output) (convert_coefficients), so the conversion is
/// folded into the drift's two coefficients instead of taking a pass over memory of its own; for a
/// score model the coefficients are the flow's own, bit for bit.
template <class Model, class Process, tensor T>
flow_evaluation evaluate_flow(Model& model, const Process& p, const T& y, double t, T& out) {
  const conversion k = evaluate_as_score(model, p, y, t, out);
  const reverse_coefficients c = flow_coefficients(p, t);
  const folded_update u(c.x_coef, c.score_coef, k);
  return {{u.x_coef, u.output_coef, 0.0}, k};
}

}  // namespace detail

// ----------------------------------------------------------------------------------------------
// Update rules. Each advances x from t to t_next = t + h (h < 0 when sampling) with
// `model_calls_per_step` evaluations of the score, using only lincombs on the workspace.

/// Explicit Euler (order 1): x_next = x + h drift(x, t) = (1 + h f) x - h g^2/2 score.
struct euler_method {
  static constexpr std::size_t order = 1;
  static constexpr std::size_t model_calls_per_step = 1;
  static constexpr std::size_t scratch_tensors = 1;  // the model's output

  template <class Backend, class Model, class Process, tensor T>
  void advance(Backend& be, Model& model, const Process& p, probability_flow_workspace<T, scratch_tensors>& ws, T& x,
               double t, double t_next) const {
    using S = scalar_of<T>;
    T& out = ws.scratch[0];
    const double h = t_next - t;
    const detail::flow_evaluation e = detail::evaluate_flow(model, p, x, t, out);
    if (ws.need_prediction) detail::tweedie_x0(be, p, x, out, e.to_score, t, ws.prediction);
    const reverse_coefficients& c = e.drift;
    be.lincomb(x, S(1.0 + h * c.x_coef), x, S(h * c.score_coef), out);
  }
};

/// Heun's method, the explicit trapezoidal rule (order 2; Karras et al. 2022, Alg. 1 without
/// churn): x' = x + h d(x, t), x_next = x + h/2 (d(x, t) + d(x', t_next)), with d = f x + c score.
/// Written in the state and the two scores, so the final update is one 4-term lincomb:
///   x_next = (1 + h f1/2) x + (h f2/2) x' + (h c1/2) s1 + (h c2/2) s2.
struct heun_method {
  static constexpr std::size_t order = 2;
  static constexpr std::size_t model_calls_per_step = 2;
  static constexpr bool evaluates_at_step_end = true;  // d(x', t_next)
  static constexpr std::size_t scratch_tensors = 3;  // s1, x', s2 (the model's outputs stand for s1, s2)

  template <class Backend, class Model, class Process, tensor T>
  void advance(Backend& be, Model& model, const Process& p, probability_flow_workspace<T, scratch_tensors>& ws, T& x,
               double t, double t_next) const {
    using S = scalar_of<T>;
    T& s1 = ws.scratch[0];
    T& x_euler = ws.scratch[1];
    T& s2 = ws.scratch[2];
    const double h = t_next - t;
    const detail::flow_evaluation e1 = detail::evaluate_flow(model, p, x, t, s1);
    if (ws.need_prediction) detail::tweedie_x0(be, p, x, s1, e1.to_score, t, ws.prediction);
    const reverse_coefficients& c1 = e1.drift;
    be.lincomb(x_euler, S(1.0 + h * c1.x_coef), x, S(h * c1.score_coef), s1);
    const reverse_coefficients c2 = detail::evaluate_flow(model, p, x_euler, t_next, s2).drift;
    be.lincomb(x, S(1.0 + 0.5 * h * c1.x_coef), x, S(0.5 * h * c2.x_coef), x_euler, S(0.5 * h * c1.score_coef), s1,
               S(0.5 * h * c2.score_coef), s2);
  }
};

/// The classic fourth-order Runge-Kutta method (Kutta 1901; Hairer, Norsett & Wanner 1993,
/// Table II.1.2): k1 = d(x, t), k2 = d(x + h/2 k1, t + h/2), k3 = d(x + h/2 k2, t + h/2),
/// k4 = d(x + h k3, t + h), x_next = x + h/6 (k1 + 2 k2 + 2 k3 + k4).
/// k1 + 2 k2 + 2 k3 is accumulated in place, and k4 is folded into the last lincomb as
/// f4 y4 + c4 s4, so no update has more than four terms.
struct rk4_method {
  static constexpr std::size_t order = 4;
  static constexpr std::size_t model_calls_per_step = 4;
  static constexpr bool evaluates_at_step_end = true;  // k4 = d(x + h k3, t_next)
  static constexpr std::size_t scratch_tensors = 4;  // accumulated drift, current drift, stage point, output

  template <class Backend, class Model, class Process, tensor T>
  void advance(Backend& be, Model& model, const Process& p, probability_flow_workspace<T, scratch_tensors>& ws, T& x,
               double t, double t_next) const {
    using S = scalar_of<T>;
    T& acc = ws.scratch[0];
    T& k = ws.scratch[1];
    T& y = ws.scratch[2];
    T& s = ws.scratch[3];
    const double h = t_next - t;
    // The midpoint time; t_next is taken from the grid, never recomputed as t + h.
    const double t_mid = t + 0.5 * h;

    const detail::flow_evaluation e1 = detail::evaluate_flow(model, p, x, t, s);
    if (ws.need_prediction) detail::tweedie_x0(be, p, x, s, e1.to_score, t, ws.prediction);
    const reverse_coefficients& c1 = e1.drift;
    be.lincomb(acc, S(c1.x_coef), x, S(c1.score_coef), s);  // k1

    be.lincomb(y, S(1), x, S(0.5 * h), acc);  // x + h/2 k1
    const reverse_coefficients c2 = detail::evaluate_flow(model, p, y, t_mid, s).drift;
    be.lincomb(k, S(c2.x_coef), y, S(c2.score_coef), s);  // k2
    be.lincomb(acc, S(1), acc, S(2), k);                   // k1 + 2 k2

    be.lincomb(y, S(1), x, S(0.5 * h), k);  // x + h/2 k2
    const reverse_coefficients c3 = detail::evaluate_flow(model, p, y, t_mid, s).drift;
    be.lincomb(k, S(c3.x_coef), y, S(c3.score_coef), s);  // k3
    be.lincomb(acc, S(1), acc, S(2), k);                   // k1 + 2 k2 + 2 k3

    be.lincomb(y, S(1), x, S(h), k);  // x + h k3
    const reverse_coefficients c4 = detail::evaluate_flow(model, p, y, t_next, s).drift;
    be.lincomb(x, S(1), x, S(h / 6.0), acc, S(h / 6.0 * c4.x_coef), y, S(h / 6.0 * c4.score_coef), s);
  }
};

/// A fixed-step update rule for probability_flow.
template <class M>
concept probability_flow_method = requires {
  { M::order } -> std::convertible_to<std::size_t>;
  { M::model_calls_per_step } -> std::convertible_to<std::size_t>;
  { M::scratch_tensors } -> std::convertible_to<std::size_t>;
};

struct probability_flow_options {
  /// The number of ODE steps: the grid is continuous_grid(steps + 1, eps, T) =
  /// linspace(T, eps, steps + 1), so step i goes from grid[i] to grid[i + 1].
  std::size_t steps = 100;
  /// Where integration stops; the score is still finite there (score_sde's ODE sampler: 1e-3).
  double eps = 1e-3;
};

/// The probability-flow ODE sampler (Song et al. 2021, Eq. 13) with a fixed-step method:
/// `probability_flow<vp_sde, heun_method>`. Each step calls the model
/// Method::model_calls_per_step times (1, 2, 4 for Euler, Heun, RK4). Deterministic: the noise
/// source passed to `sample` is never drawn from (draw x_T with process.sample_prior first).
///
/// The observer's `prediction` is x0_hat at the start of the step, from the step's first score
/// evaluation (no extra model call), as predictor_corrector reports it.
template <class Process, class Method = euler_method>
class probability_flow {
  static_assert(sde_process<Process>,
                "probability_flow needs a continuous-time SDE process (diffusion::vp_sde, subvp_sde, ve_sde): for "
                "discrete DDPM processes the deterministic sampler is diffusion::ddim with eta = 0");
  static_assert(probability_flow_method<Method>,
                "probability_flow's second template argument must be an update rule: diffusion::euler_method, "
                "heun_method or rk4_method (adaptive Dormand-Prince: diffusion::sample_adaptive)");

 public:
  using process_type = Process;
  using method_type = Method;
  static constexpr std::size_t order = Method::order;
  static constexpr std::size_t model_calls_per_step = Method::model_calls_per_step;

  /// Integrates over continuous_grid(options.steps + 1, options.eps, T).
  /// \throws std::invalid_argument if steps = 0 or eps is outside (0, T).
  explicit probability_flow(Process process, probability_flow_options options = {}, Method method = {})
      : probability_flow(std::move(process), make_grid(options), method) {}

  /// Integrates over a user-given decreasing grid of at least two times within [0, T]
  /// (one step between consecutive entries). Heun and RK4 evaluate the model at each step's end,
  /// so with a model that does not predict the score they need sigma > 0 at the grid's end: they
  /// refuse such a grid at the first step, before any model call.
  /// \throws std::invalid_argument if the grid has fewer than two entries or leaves [0, T].
  probability_flow(Process process, time_grid grid, Method method = {})
      : m_process(std::move(process)), m_method(method), m_grid(std::move(grid)) {
    require(m_grid.size() >= 2, "probability_flow", "number of grid times", m_grid.size(),
            "at least 2 (one step needs a start and an end)");
    const double T = Process::end_time();
    if (!(m_grid[0] <= T)) [[unlikely]]
      detail::throw_invalid_parts("probability_flow", {"grid[0]"}, m_grid[0], {"[0, T] = [0, ", T, "]"});
    if (!(m_grid[m_grid.size() - 1] >= 0.0)) [[unlikely]]
      detail::throw_invalid_parts("probability_flow", {"grid[last]"}, m_grid[m_grid.size() - 1],
                                  {"[0, T] = [0, ", T, "]"});
  }

  const Process& process() const { return m_process; }
  const time_grid& grid() const { return m_grid; }
  std::size_t num_steps() const { return m_grid.size() - 1; }
  double time(std::size_t i) const { return m_grid[i]; }
  double time_next(std::size_t i) const { return m_grid[i + 1]; }
  /// Model calls of a full run: num_steps() * model_calls_per_step.
  std::size_t model_calls() const { return num_steps() * model_calls_per_step; }

  template <class Backend, tensor T>
  probability_flow_workspace<T, Method::scratch_tensors> make_workspace(Backend&, const T& x) const {
    return probability_flow_workspace<T, Method::scratch_tensors>(x);
  }

  /// \throws std::invalid_argument (at the first step, before any model call) if the method
  ///         evaluates the model at each step's end, the grid ends where sigma(t) = 0, and the model
  ///         does not predict the score: its prediction gives no score there.
  template <class Backend, class Model, class Noise, tensor T>
  void step(Backend& be, Model& model, Noise&, probability_flow_workspace<T, Method::scratch_tensors>& ws, T& x,
            std::size_t i) const {
    if (i == 0) check_grid_end<std::remove_cvref_t<Model>>();
    m_method.advance(be, model, m_process, ws, x, m_grid[i], m_grid[i + 1]);
  }

 private:
  template <class Model>
  void check_grid_end() const {
    if constexpr (requires { Method::evaluates_at_step_end; }) {
      if constexpr (Method::evaluates_at_step_end && parameterization_of<Model> != parameterization::score) {
        const double t_last = m_grid[m_grid.size() - 1];
        if (!(m_process.sigma(t_last) > 0.0)) [[unlikely]]
          detail::throw_invalid_parts(
              "probability_flow", {"grid[last]"}, t_last,
              {"times with sigma(t) > 0 (this method evaluates the model at each step's end, and a ",
               name(parameterization_of<Model>),
               " prediction gives no score where sigma = 0): end the grid above 0, or use euler_method"});
      }
    }
  }

  static time_grid make_grid(const probability_flow_options& o) {
    require(o.steps >= 1, "probability_flow", "steps", o.steps, "at least 1");
    const double T = Process::end_time();
    if (!(std::isfinite(o.eps) && o.eps > 0.0 && o.eps < T)) [[unlikely]]
      detail::throw_invalid_parts("probability_flow", {"eps"}, o.eps, {"(0, T) = (0, ", T, ")"});
    return continuous_grid(o.steps + 1, o.eps, T);
  }

  Process m_process;
  [[no_unique_address]] Method m_method;
  time_grid m_grid;
};

}  // namespace diffusion
