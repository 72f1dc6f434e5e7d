// SPDX-License-Identifier: MIT
// The adaptive Dormand-Prince 5(4) solver (Dormand & Prince 1980) and, on it, adaptive sampling and
// inversion with the probability-flow ODE (Song et al. 2021, Eq. 13). The step-size control follows
// scipy's `solve_ivp(method="RK45")`, which score_sde's ODE sampler and likelihood call, so step
// sequences and evaluation counts are comparable with that library's.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/errors.hpp"
#include "../core/observer.hpp"
#include "../core/tensor.hpp"
#include "../process/sde_concepts.hpp"
#include "probability_flow.hpp"

namespace diffusion {

/// What an adaptive solve did.
struct adaptive_report {
  std::size_t accepted_steps = 0;
  std::size_t rejected_steps = 0;
  /// Evaluations of the ODE's right-hand side: 1 at the start, 1 to choose the first step (unless
  /// first_step is given), and 6 per attempted step (the 7th stage is the next step's first: FSAL).
  std::size_t function_evaluations = 0;
  /// Calls of the model: one per evaluation for sampling, more for a Hutchinson likelihood.
  std::size_t model_calls = 0;
};

/// The state reached and the report.
template <tensor T>
struct adaptive_result {
  T x;
  adaptive_report report;
};

/// Controls of the adaptive Dormand-Prince solver.
struct adaptive_options {
  /// Relative and absolute tolerances of the local error: a step is accepted when
  /// RMS_j(err_j / (atol + rtol max(|x_j|, |x_new_j|))) < 1 over all elements (Hairer, Norsett &
  /// Wanner 1993, Sec. II.4, Eqs. 4.10-4.11). score_sde's ODE sampler and likelihood use 1e-5 for both.
  double rtol = 1e-5;
  double atol = 1e-5;
  /// Sampling runs from T down to eps; inversion from eps up to T.
  double eps = 1e-3;
  /// The first step's size; 0 chooses it from the ODE (Hairer et al. 1993, Sec. II.4).
  double first_step = 0.0;
  /// Attempted (accepted + rejected) steps before the solver gives up with std::runtime_error.
  std::size_t max_steps = 100000;
};

namespace detail {

/// The solver's controls, shared by sampling and likelihood.
struct ode_controls {
  double rtol;
  double atol;
  double first_step;
  std::size_t max_steps;
};

inline ode_controls checked_ode_controls(double rtol, double atol, double first_step, std::size_t max_steps,
                                         const char* where) {
  require(std::isfinite(rtol) && rtol > 0.0, where, "rtol", rtol, "(0, inf), finite");
  require(std::isfinite(atol) && atol > 0.0, where, "atol", atol, "(0, inf), finite");
  require(std::isfinite(first_step) && first_step >= 0.0, where, "first_step", first_step,
          "[0, inf), finite (0: chosen automatically)");
  require(max_steps >= 1, where, "max_steps", max_steps, "at least 1");
  return {rtol, atol, first_step, max_steps};
}

/// The Dormand-Prince 5(4) pair (Dormand & Prince 1980, Table 2; Hairer et al. 1993, Table II.5.2):
/// stage i is evaluated at t + c_i h and y + h sum_j a_ij k_j; row 6 of `a` is the 5th-order
/// solution b (so stage 6, at the new point, is the next step's stage 0: FSAL), and `e` = b - b_hat
/// weights the embedded 4th-order error estimate over all seven stages.
struct dopri5_tableau {
  static constexpr std::array<double, 7> c{0.0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1.0, 1.0};
  static constexpr double a[7][6] = {
      {0, 0, 0, 0, 0, 0},
      {1.0 / 5, 0, 0, 0, 0, 0},
      {3.0 / 40, 9.0 / 40, 0, 0, 0, 0},
      {44.0 / 45, -56.0 / 15, 32.0 / 9, 0, 0, 0},
      {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729, 0, 0},
      {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656, 0},
      {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84}};
  static constexpr std::array<double, 7> e{-71.0 / 57600, 0.0, 71.0 / 16695, -71.0 / 1920, 17253.0 / 339200,
                                           -22.0 / 525, 1.0 / 40};
  /// The error estimate is of order 4: step factors use err^(-1/5).
  static constexpr double error_exponent = -1.0 / 5.0;
};

/// The step-size controller (Hairer et al. 1993, Sec. II.4, Eqs. 4.12-4.13) with scipy's constants
/// (scipy.integrate._ivp.rk): the next step is h min(max_factor, safety err^(-1/5)) after an
/// acceptance, h max(min_factor, safety err^(-1/5)) after a rejection, and at most h right after a
/// rejection.
inline constexpr double step_safety = 0.9;
inline constexpr double step_min_factor = 0.2;
inline constexpr double step_max_factor = 10.0;

/// y = base + sum_i a_i x_i over the nonzero a_i, as chained lincombs of at most four terms.
template <class Backend, tensor T, std::size_t N>
void accumulate_terms(Backend& be, T& y, const T& base, const std::array<double, N>& a,
                      const std::array<T*, N>& x) {
  using S = scalar_of<T>;
  std::array<std::pair<S, const T*>, N> terms{};
  std::size_t n = 0;
  for (std::size_t i = 0; i < N; ++i)
    if (a[i] != 0.0) terms[n++] = {S(a[i]), x[i]};
  const T* src = &base;
  std::size_t i = 0;
  do {
    const std::size_t m = std::min<std::size_t>(3, n - i);
    switch (m) {
      case 0: be.lincomb(y, S(1), *src); break;
      case 1: be.lincomb(y, S(1), *src, terms[i].first, *terms[i].second); break;
      case 2:
        be.lincomb(y, S(1), *src, terms[i].first, *terms[i].second, terms[i + 1].first, *terms[i + 1].second);
        break;
      default:
        be.lincomb(y, S(1), *src, terms[i].first, *terms[i].second, terms[i + 1].first, *terms[i + 1].second,
                   terms[i + 2].first, *terms[i + 2].second);
        break;
    }
    i += m;
    src = &y;
  } while (i < n);
}

/// The Dormand-Prince 5(4) integrator over a tensor state x and `aux_size` auxiliary per-sample
/// doubles whose derivative depends on (x, t) only (the likelihood's log-density integral). All
/// scratch is made by the constructor; solve() allocates nothing.
///
/// The right-hand side is called as rhs(be, y, t, dy, daux) and writes dy/dt into dy (shaped like
/// x) and daux/dt into daux (aux_size entries).
template <tensor T>
class dopri5_solver {
 public:
  dopri5_solver(const T& x, std::size_t aux_size)
      : m_storage(make_stages(x, std::make_index_sequence<7>{})), m_stage(make_like(x)), m_x_new(make_like(x)),
        m_aux_k(7 * aux_size), m_aux_new(aux_size), m_aux_size(aux_size) {
    for (std::size_t i = 0; i < 7; ++i) m_k[i] = &m_storage[i];
  }

  /// Integrates from t0 to t1 (either direction), updating x and aux in place. After each
  /// accepted step calls on_accept(index, t, t_new, x_new), which returns true to stop there.
  /// \throws std::runtime_error if the step size underflows or max_steps attempts do not reach t1.
  template <class Backend, class Rhs, class OnAccept>
  adaptive_report solve(Backend& be, Rhs& rhs, T& x, std::span<double> aux, double t0, double t1,
                        const ode_controls& ctl, OnAccept&& on_accept) {
    using tab = dopri5_tableau;
    adaptive_report report;
    const double direction = t1 > t0 ? 1.0 : -1.0;
    const double interval = std::abs(t1 - t0);
    T* cur = &x;
    T* next = &m_x_new;
    auto evaluate = [&](const T& y, double t, std::size_t stage) {
      rhs(be, y, t, *m_k[stage], aux_k(stage));
      ++report.function_evaluations;
    };

    evaluate(x, t0, 0);
    // A first step past t1 is cut to land on t1, as every step is.
    double h_abs = ctl.first_step > 0.0 ? ctl.first_step : initial_step(be, x, aux, t0, t1, interval, ctl, evaluate);
    double t = t0;
    std::size_t attempts = 0;
    while (direction * (t - t1) < 0.0) {
      // scipy's floor: ten times the spacing of representable times at t.
      const double min_step =
          10.0 * std::abs(std::nextafter(t, direction * std::numeric_limits<double>::infinity()) - t);
      h_abs = std::max(h_abs, min_step);
      bool rejected = false;
      double t_new = t;
      for (;;) {
        if (attempts == ctl.max_steps) throw_max_steps(ctl.max_steps, t0, t1, t);
        if (h_abs < min_step) throw_underflow(h_abs, t);
        ++attempts;
        t_new = t + direction * h_abs;
        if (direction * (t_new - t1) > 0.0) t_new = t1;  // land on t1 exactly
        const double h = t_new - t;
        h_abs = std::abs(h);
        attempt(be, *cur, *next, aux, t, t_new, evaluate);
        const double err = error_norm(*cur, *next, aux, h, ctl);
        if (err < 1.0) {
          double factor = err == 0.0 ? step_max_factor
                                     : std::min(step_max_factor, step_safety * std::pow(err, tab::error_exponent));
          if (rejected) factor = std::min(1.0, factor);
          h_abs *= factor;
          break;
        }
        // A non-finite error (overflow, NaN) shrinks the step by min_factor: std::max keeps 0.2.
        h_abs *= std::max(step_min_factor, step_safety * std::pow(err, tab::error_exponent));
        rejected = true;
        ++report.rejected_steps;
      }
      // Accept: the new point becomes the current one, its derivative the next stage 0 (FSAL).
      std::swap(cur, next);
      std::swap(m_k[0], m_k[6]);
      for (std::size_t m = 0; m < m_aux_size; ++m) {
        aux[m] = m_aux_new[m];
        aux_k(0)[m] = aux_k(6)[m];
      }
      const double t_old = t;
      t = t_new;
      const std::size_t index = report.accepted_steps++;
      if (on_accept(index, t_old, t, std::as_const(*cur))) break;
    }
    if (cur != &x) be.lincomb(x, scalar_of<T>(1), *cur);
    return report;
  }

 private:
  template <std::size_t... I>
  static std::array<T, 7> make_stages(const T& x, std::index_sequence<I...>) {
    return {((void)I, make_like(x))...};
  }

  /// One attempted step from (x, t) to t_new: stages 1..6 (stage 6 at the new point x_new, which
  /// also gives the next step's stage 0) and the new auxiliary values.
  template <class Backend, class Evaluate>
  void attempt(Backend& be, const T& x, T& x_new, std::span<const double> aux, double t, double t_new,
               Evaluate& evaluate) {
    using tab = dopri5_tableau;
    const double h = t_new - t;
    for (std::size_t s = 1; s < 7; ++s) {
      std::array<double, 6> coef{};
      for (std::size_t j = 0; j < s; ++j) coef[j] = h * tab::a[s][j];
      T& y = s == 6 ? x_new : m_stage;
      accumulate_terms(be, y, x, coef, first_six());
      // Stages with c = 1 are evaluated at t_new itself, never at a rounded t + h past t1.
      evaluate(std::as_const(y), tab::c[s] == 1.0 ? t_new : t + tab::c[s] * h, s);
    }
    for (std::size_t m = 0; m < m_aux_size; ++m) {
      double v = aux[m];
      for (std::size_t j = 0; j < 6; ++j) v += h * tab::a[6][j] * aux_k(j)[m];
      m_aux_new[m] = v;
    }
  }

  /// RMS over all tensor and auxiliary elements of err_j / (atol + rtol max(|x_j|, |x_new_j|)), with
  /// err = h sum_i e_i k_i the embedded error estimate (Hairer et al. 1993, Sec. II.4, Eqs. 4.10-4.11),
  /// in double.
  double error_norm(const T& x, const T& x_new, std::span<const double> aux, double h, const ode_controls& ctl) {
    using tab = dopri5_tableau;
    const auto xe = elements(x);
    const auto ne = elements(x_new);
    std::array<std::span<const scalar_of<T>>, 7> k;
    for (std::size_t i = 0; i < 7; ++i) k[i] = elements(std::as_const(*m_k[i]));
    double sum = 0.0;
    for (std::size_t j = 0; j < xe.size(); ++j) {
      double err = 0.0;
      for (std::size_t i = 0; i < 7; ++i) err += tab::e[i] * static_cast<double>(k[i][j]);
      const double scale = ctl.atol + ctl.rtol * std::max(std::abs(static_cast<double>(xe[j])),
                                                          std::abs(static_cast<double>(ne[j])));
      const double r = h * err / scale;
      sum += r * r;
    }
    for (std::size_t m = 0; m < m_aux_size; ++m) {
      double err = 0.0;
      for (std::size_t i = 0; i < 7; ++i) err += tab::e[i] * aux_k(i)[m];
      const double scale = ctl.atol + ctl.rtol * std::max(std::abs(aux[m]), std::abs(m_aux_new[m]));
      const double r = h * err / scale;
      sum += r * r;
    }
    return std::sqrt(sum / static_cast<double>(xe.size() + m_aux_size));
  }

  /// The starting step of Hairer et al. 1993, Sec. II.4 (scipy `select_initial_step`, order 4):
  /// h0 = 0.01 |y0|/|f0| in the error norm (1e-6 when either is tiny), one explicit Euler probe to
  /// estimate the second derivative d2, h1 = (0.01 / max(|f0|, d2))^(1/5), h = min(100 h0, h1, |t1 - t0|).
  /// Uses stage 1 and the stage point as scratch; costs one evaluation.
  template <class Backend, class Evaluate>
  double initial_step(Backend& be, const T& x, std::span<const double> aux, double t0, double t1, double interval,
                      const ode_controls& ctl, Evaluate& evaluate) {
    using S = scalar_of<T>;
    const auto xe = elements(x);
    const double n = static_cast<double>(xe.size() + m_aux_size);
    auto scale = [&](double y) { return ctl.atol + std::abs(y) * ctl.rtol; };
    double d0 = 0.0, d1 = 0.0;
    {
      const auto f0 = elements(std::as_const(*m_k[0]));
      for (std::size_t j = 0; j < xe.size(); ++j) {
        const double sc = scale(static_cast<double>(xe[j]));
        d0 += sq(static_cast<double>(xe[j]) / sc);
        d1 += sq(static_cast<double>(f0[j]) / sc);
      }
      for (std::size_t m = 0; m < m_aux_size; ++m) {
        d0 += sq(aux[m] / scale(aux[m]));
        d1 += sq(aux_k(0)[m] / scale(aux[m]));
      }
      d0 = std::sqrt(d0 / n);
      d1 = std::sqrt(d1 / n);
    }
    if (!std::isfinite(d1)) throw_not_finite(t0);
    double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
    h0 = std::min(h0, interval);
    const double direction = t1 > t0 ? 1.0 : -1.0;
    be.lincomb(m_stage, S(1), x, S(direction * h0), *m_k[0]);
    // The probe time stays inside [t0, t1] even where t0 + h0 rounds past t1.
    const double t_probe = h0 >= interval ? t1 : t0 + direction * h0;
    evaluate(std::as_const(m_stage), t_probe, 1);
    double d2 = 0.0;
    {
      const auto f0 = elements(std::as_const(*m_k[0]));
      const auto f1 = elements(std::as_const(*m_k[1]));
      for (std::size_t j = 0; j < xe.size(); ++j)
        d2 += sq((static_cast<double>(f1[j]) - static_cast<double>(f0[j])) / scale(static_cast<double>(xe[j])));
      for (std::size_t m = 0; m < m_aux_size; ++m) d2 += sq((aux_k(1)[m] - aux_k(0)[m]) / scale(aux[m]));
      d2 = std::sqrt(d2 / n) / h0;
    }
    if (!std::isfinite(d2)) throw_not_finite(t_probe);
    const double h1 = (d1 <= 1e-15 && d2 <= 1e-15) ? std::max(1e-6, h0 * 1e-3)
                                                   : std::pow(0.01 / std::max(d1, d2), 1.0 / 5.0);
    return std::min({100.0 * h0, h1, interval});
  }

  static double sq(double v) { return v * v; }

  [[noreturn, gnu::cold, gnu::noinline]] static void throw_max_steps(std::size_t max_steps, double t0, double t1,
                                                                     double t) {
    throw std::runtime_error(concat({"dormand_prince: max_steps = ", max_steps, " attempted steps did not reach t = ",
                                     t1, " from t = ", t0, " (stopped at t = ", t,
                                     "); raise max_steps or loosen rtol/atol"}));
  }
  [[noreturn, gnu::cold, gnu::noinline]] static void throw_not_finite(double t) {
    throw std::runtime_error(concat(
        {"dormand_prince: the right-hand side is not finite at t = ", t, " (the model returned non-finite values)"}));
  }
  [[noreturn, gnu::cold, gnu::noinline]] static void throw_underflow(double h_abs, double t) {
    throw std::runtime_error(concat({"dormand_prince: the step size fell to ", h_abs, " at t = ", t,
                                     ", below ten times the spacing of representable times (rtol/atol too tight, or "
                                     "the model returned non-finite values)"}));
  }

  std::span<double> aux_k(std::size_t stage) { return {m_aux_k.data() + stage * m_aux_size, m_aux_size}; }
  std::array<T*, 6> first_six() const { return {m_k[0], m_k[1], m_k[2], m_k[3], m_k[4], m_k[5]}; }

  std::array<T, 7> m_storage;
  std::array<T*, 7> m_k{};
  T m_stage;
  T m_x_new;
  std::vector<double> m_aux_k;  // 7 x aux_size
  std::vector<double> m_aux_new;
  std::size_t m_aux_size;
};

/// dx/dt of the probability-flow ODE, f(t) x - g(t)^2/2 score(x, t) (Song et al. 2021, Eq. 13), as
/// the Dormand-Prince right-hand side (evaluate_flow: the conversion of the model's output to the
/// score is folded into the drift). It keeps the last output, so x0_hat at the last evaluated
/// point (the accepted step's end, by FSAL) costs no model call.
template <class Process, class Model, tensor T>
class flow_rhs {
 public:
  flow_rhs(const Process& process, Model& model, const T& x)
      : m_process(process), m_model(model), m_output(make_like(x)) {}

  template <class Backend>
  void operator()(Backend& be, const T& y, double t, T& dy, std::span<double> /*no auxiliary state*/) {
    using S = scalar_of<T>;
    const flow_evaluation e = evaluate_flow(m_model, m_process, y, t, m_output);
    m_to_score = e.to_score;
    be.lincomb(dy, S(e.drift.x_coef), y, S(e.drift.score_coef), m_output);
  }

  /// The model's output at the last evaluated point, and its conversion to the score there.
  const T& output() const { return m_output; }
  const conversion& to_score() const { return m_to_score; }

 private:
  const Process& m_process;
  Model& m_model;
  T m_output;
  conversion m_to_score{0.0, 1.0};
};

/// Solves the probability-flow ODE from t0 to t1 with Dormand-Prince and reports each accepted step.
template <class Process, class Model, class Backend, class Observer>
adaptive_result<typename Backend::tensor_type> solve_flow(const Process& process, Model& model, Backend& be,
                                                          typename Backend::tensor_type x, double t0, double t1,
                                                          const ode_controls& ctl, Observer& obs, const char* where) {
  using T = typename Backend::tensor_type;
  require(size(x) >= 1, where, "number of elements of x", size(x), "at least 1");
  flow_rhs<Process, Model, T> rhs(process, model, x);
  dopri5_solver<T> solver(x, 0);
  adaptive_report report;
  if constexpr (std::same_as<std::remove_cvref_t<Observer>, null_observer>) {
    report = solver.solve(be, rhs, x, {}, t0, t1, ctl, [](std::size_t, double, double, const T&) { return false; });
  } else {
    T prediction = make_like(x);
    report = solver.solve(be, rhs, x, {}, t0, t1, ctl,
                          [&](std::size_t index, double t, double t_new, const T& x_new) {
                            tweedie_x0(be, process, x_new, rhs.output(), rhs.to_score(), t_new, prediction);
                            // The step count is known only once the last step lands on t1.
                            const std::size_t count = t_new == t1 ? index + 1 : 0;
                            return notify(obs, step_info<T>{index, count, t, t_new, x_new, prediction});
                          });
  }
  report.model_calls = report.function_evaluations;
  return {std::move(x), report};
}

template <class Process, class Backend>
constexpr void check_adaptive_arguments() {
  static_assert(sde_process<Process>,
                "sample_adaptive / invert_adaptive need a continuous-time SDE process (diffusion::vp_sde, subvp_sde, "
                "ve_sde) as the first argument");
  static_assert(tensor_backend<Backend>,
                "sample_adaptive / invert_adaptive: the third argument must be a backend "
                "(diffusion::reference_backend<S>, diffusion::eigen_backend<S, Rank>, ...)");
}

template <class Process>
ode_controls checked_adaptive_options(const adaptive_options& o, const char* where) {
  const double T = Process::end_time();
  if (!(std::isfinite(o.eps) && o.eps > 0.0 && o.eps < T)) [[unlikely]]
    throw_invalid_parts(where, {"eps"}, o.eps, {"(0, T) = (0, ", T, ")"});
  return checked_ode_controls(o.rtol, o.atol, o.first_step, o.max_steps, where);
}

}  // namespace detail

/// Samples by solving the probability-flow ODE (Song et al. 2021, Eq. 13) from x_T at t = T down
/// to options.eps with adaptive Dormand-Prince 5(4) (score_sde's ODE sampler without its final
/// denoising step). Deterministic: draw x_T first, e.g. with process.sample_prior(be, noise, x).
///
/// \param obs  called after every accepted step with a step_info: `index` counts accepted steps,
///             `count` is 0 until the last step (then index + 1), `prediction` is x0_hat at the new
///             point (t_next), from the score the solver already evaluated there; may return
///             observer_action::stop, which ends the solve at that step.
/// \returns    the sample at eps and the report (accepted and rejected steps, model calls).
/// \throws std::invalid_argument for rtol, atol <= 0 or non-finite, eps outside (0, T), a negative
///         first_step, max_steps = 0 or an empty x; std::runtime_error if the solver fails.
template <class Process, class Model, class Backend, class Observer = null_observer>
adaptive_result<typename Backend::tensor_type> sample_adaptive(const Process& process, Model&& model, Backend& be,
                                                               typename Backend::tensor_type x,
                                                               adaptive_options options = {}, Observer&& obs = {}) {
  detail::check_adaptive_arguments<Process, Backend>();
  static_assert(observer<Observer, typename Backend::tensor_type>,
                "sample_adaptive: the observer must be callable as obs(const diffusion::step_info<T>&) and return "
                "void or diffusion::observer_action");
  const detail::ode_controls ctl = detail::checked_adaptive_options<Process>(options, "sample_adaptive");
  return detail::solve_flow(process, model, be, std::move(x), Process::end_time(), options.eps, ctl, obs, "sample_adaptive");
}

/// Inverts sampling: solves the same probability-flow ODE forward from x at t = options.eps up to T
/// (the encoder of Song et al. 2021, Sec. 4.3, "identifiable encoding"). Same options, observer and
/// report as sample_adaptive; sampling the result with the same tolerances returns to x up to the
/// solver's error.
template <class Process, class Model, class Backend, class Observer = null_observer>
adaptive_result<typename Backend::tensor_type> invert_adaptive(const Process& process, Model&& model, Backend& be,
                                                               typename Backend::tensor_type x,
                                                               adaptive_options options = {}, Observer&& obs = {}) {
  detail::check_adaptive_arguments<Process, Backend>();
  static_assert(observer<Observer, typename Backend::tensor_type>,
                "invert_adaptive: the observer must be callable as obs(const diffusion::step_info<T>&) and return "
                "void or diffusion::observer_action");
  const detail::ode_controls ctl = detail::checked_adaptive_options<Process>(options, "invert_adaptive");
  return detail::solve_flow(process, model, be, std::move(x), options.eps, Process::end_time(), ctl, obs, "invert_adaptive");
}

}  // namespace diffusion
