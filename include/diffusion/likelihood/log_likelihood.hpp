// SPDX-License-Identifier: MIT
// The probability-flow log-likelihood (Song et al. 2021, Sec. 4.3 and App. D.2, Eq. 39; score_sde
// `likelihood.py`): for data x read as x_eps,
//
//     log p_eps(x) = log p_T(x_T) + int_eps^T div f~(x_t, t) dt,   f~ = f(t) x - 1/2 g(t)^2 score(x, t),
//
// where x_t solves the probability-flow ODE dx/dt = f~(x, t) forward from x_eps = x. The state and
// the integral are solved jointly by Dormand-Prince 5(4) (rtol = atol = 1e-5 and eps = 1e-5 by
// default, as score_sde), and div f~ = f(t) D - 1/2 g(t)^2 tr(grad score) is exact when the model
// provides the divergence of its score, otherwise a Hutchinson estimate (divergence.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../core/errors.hpp"
#include "../core/reduce.hpp"
#include "../core/tensor.hpp"
#include "../model/predictor.hpp"
#include "../process/sde.hpp"
#include "../process/sde_concepts.hpp"
#include "../sampler/adaptive_ode.hpp"
#include "../sampler/probability_flow.hpp"
#include "divergence.hpp"

namespace diffusion {

struct likelihood_options {
  /// Tolerances of the joint solve; the error norm runs over the state and the log-density
  /// integral together, as scipy's solve_ivp does in score_sde.
  double rtol = 1e-5;
  double atol = 1e-5;
  /// The ODE starts at t = eps, where the data are read as x_eps (score_sde's likelihood: 1e-5).
  double eps = 1e-5;
  /// The first step's size; 0 chooses it from the ODE.
  double first_step = 0.0;
  /// Attempted steps before the solver gives up with std::runtime_error.
  std::size_t max_steps = 100000;
};

/// Per-sample results of a likelihood solve, in double.
template <tensor T>
struct likelihood_result {
  std::vector<double> log_density;        ///< log p_eps(x) in nats: prior_log_density + delta_log_density
  std::vector<double> bits_per_dim;       ///< -log_density / (D ln 2), D = elements per sample
  std::vector<double> prior_log_density;  ///< log p_T(x_T) under the process's prior N(0, prior_std^2 I)
  std::vector<double> delta_log_density;  ///< int_eps^T div f~(x_t, t) dt
  T latent;                               ///< x_T, the end of the forward probability flow
  /// Solver counts; model_calls counts model(x, t, out) calls. With the exact divergence the model's
  /// score_divergence is called once per function evaluation as well.
  adaptive_report report;
};

/// Bits per dimension of a log-density in nats over D dimensions: -log p / (D ln 2) (score_sde
/// `likelihood.py`). score_sde then adds `7. - inverse_scaler(-1.)` (8 for data kept in [0, 1], 7
/// for data centred to [-1, 1]) to turn the density of continuous data into bits of 8-bit discrete
/// data; that offset is NOT applied here, since it depends on how the data were scaled and
/// quantized.
/// \throws std::invalid_argument if dim is 0 or log_density is NaN.
inline double bits_per_dim(double log_density, std::size_t dim) {
  require(dim >= 1, "bits_per_dim", "dim", dim, "at least 1");
  require(!std::isnan(log_density), "bits_per_dim", "log_density", log_density, "a number (not NaN)");
  return -log_density / (static_cast<double>(dim) * std::numbers::ln2);
}

namespace detail {

/// The joint right-hand side with the model's exact divergence:
///   dx/dt = f x + c score,  d(delta)/dt = f D + c tr(grad score),  c = -g^2/2 (Song et al. 2021, Eq. 39).
template <class Process, class Model, tensor T>
class exact_likelihood_rhs {
 public:
  static constexpr std::size_t model_calls_per_evaluation = 1;

  exact_likelihood_rhs(const Process& process, Model& model, const T& x)
      : m_process(process), m_model(model), m_score(make_like(x)), m_dim(static_cast<double>(sample_size(x))) {}

  template <class Backend>
  void operator()(Backend& be, const T& y, double t, T& dy, std::span<double> d_delta) {
    using S = scalar_of<T>;
    flow_score(be, m_model, m_process, y, t, m_score);
    const reverse_coefficients c = flow_coefficients(m_process, t);
    be.lincomb(dy, S(c.x_coef), y, S(c.score_coef), m_score);
    m_model.score_divergence(y, t, d_delta);
    for (double& d : d_delta) d = c.x_coef * m_dim + c.score_coef * d;
  }

 private:
  const Process& m_process;
  Model& m_model;
  T m_score;
  double m_dim;
};

/// The joint right-hand side with a Hutchinson estimate of tr(grad score) per sample:
///   v^T J v ~ v . (score(y + h v) - score(y - h v)) / (2h),
///   h = relative_step sigma^(2/3) max(sigma, |y|_rms)^(1/3)  (the choice is argued in divergence.hpp).
/// The drift's linear part has the exact trace f D, so only the score's Jacobian is estimated
/// (score_sde estimates the whole drift's: the same number for Rademacher probes, where |v|^2 = D,
/// and a smaller variance for Gaussian ones).
template <class Process, class Model, tensor T>
class hutchinson_likelihood_rhs {
 public:
  static constexpr std::size_t model_calls_per_evaluation = 3;

  hutchinson_likelihood_rhs(const Process& process, Model& model, const T& x, const T& probe, double relative_step)
      : m_process(process), m_model(model), m_probe(probe), m_score(make_like(x)), m_point(make_like(x)),
        m_plus(make_like(x)), m_relative_step(relative_step), m_dim(static_cast<double>(sample_size(x))) {}

  template <class Backend>
  void operator()(Backend& be, const T& y, double t, T& dy, std::span<double> d_delta) {
    using S = scalar_of<T>;
    flow_score(be, m_model, m_process, y, t, m_score);
    const reverse_coefficients c = flow_coefficients(m_process, t);
    be.lincomb(dy, S(c.x_coef), y, S(c.score_coef), m_score);

    const double sigma = m_process.sigma(t);
    const double rms = std::sqrt(squared_norm(y) / static_cast<double>(size(y)));
    const double h = m_relative_step * std::cbrt(sigma * sigma * std::max(sigma, rms));  // divergence.hpp
    be.lincomb(m_point, S(1), y, S(h), m_probe);
    flow_score(be, m_model, m_process, m_point, t, m_plus);
    be.lincomb(m_point, S(1), y, S(-h), m_probe);
    flow_score(be, m_model, m_process, m_point, t, m_score);  // the score at y - h v

    const auto v = elements(m_probe);
    const auto plus = elements(std::as_const(m_plus));
    const auto minus = elements(std::as_const(m_score));
    const std::size_t d = sample_size(y);
    for (std::size_t b = 0; b < d_delta.size(); ++b) {
      double vjv = 0.0;
      for (std::size_t j = b * d; j < (b + 1) * d; ++j)
        vjv += static_cast<double>(v[j]) * (static_cast<double>(plus[j]) - static_cast<double>(minus[j]));
      d_delta[b] = c.x_coef * m_dim + c.score_coef * (vjv / (2.0 * h));
    }
  }

 private:
  const Process& m_process;
  Model& m_model;
  const T& m_probe;
  T m_score;
  T m_point;
  T m_plus;
  double m_relative_step;
  double m_dim;
};

template <class Process, class Backend>
constexpr void check_likelihood_arguments() {
  static_assert(sde_process<Process>,
                "log_likelihood needs a continuous-time SDE process (diffusion::vp_sde, subvp_sde, ve_sde) as the "
                "first argument");
  static_assert(tensor_backend<Backend>,
                "log_likelihood: the third argument must be a backend (diffusion::reference_backend<S>, "
                "diffusion::eigen_backend<S, Rank>, ...)");
}

template <class Process, tensor T>
ode_controls checked_likelihood_options(const likelihood_options& o, const T& x) {
  constexpr const char* where = "log_likelihood";
  const double T_end = Process::end_time();
  if (!(std::isfinite(o.eps) && o.eps > 0.0 && o.eps < T_end)) [[unlikely]]
    throw_invalid_parts(where, {"eps"}, o.eps, {"(0, T) = (0, ", T_end, ")"});
  require(size(x) >= 1, where, "number of elements of x", size(x), "at least 1");
  // A non-finite data point would surface as a non-finite model output or a collapsed step size,
  // blaming the model or the solver.
  const auto e = elements(x);
  for (std::size_t i = 0; i < e.size(); ++i)
    if (!std::isfinite(e[i])) [[unlikely]]
      throw_invalid_parts(where, {"x[", i, "] (flat index)"}, e[i], {"finite"});
  return checked_ode_controls(o.rtol, o.atol, o.first_step, o.max_steps, where);
}

/// Solves the joint ODE from eps to T and assembles the per-sample results.
template <class Process, class Backend, class Rhs, tensor T>
likelihood_result<T> solve_likelihood(const Process& process, Backend& be, Rhs& rhs, const T& x,
                                      const likelihood_options& o, const ode_controls& ctl) {
  const std::size_t batch = batch_size(x);
  likelihood_result<T> r{std::vector<double>(batch), std::vector<double>(batch), std::vector<double>(batch),
                         std::vector<double>(batch, 0.0), make_like(x), {}};
  be.lincomb(r.latent, scalar_of<T>(1), x);
  dopri5_solver<T> solver(x, batch);
  r.report = solver.solve(be, rhs, r.latent, std::span<double>(r.delta_log_density), o.eps, Process::end_time(), ctl,
                          [](std::size_t, double, double, const T&) { return false; });
  r.report.model_calls = r.report.function_evaluations * Rhs::model_calls_per_evaluation;
  process.prior_log_density(r.latent, std::span<double>(r.prior_log_density));
  for (std::size_t b = 0; b < batch; ++b) {
    r.log_density[b] = r.prior_log_density[b] + r.delta_log_density[b];
    r.bits_per_dim[b] = bits_per_dim(r.log_density[b], sample_size(x));
  }
  return r;
}

}  // namespace detail

/// The probability-flow log-likelihood of every batch sample of x with the model's exact divergence
/// of the score (Song et al. 2021, Sec. 4.3, Eq. 39): log p_eps(x) in nats and bits per dimension.
/// The model must provide score_divergence(x, t, out) (has_score_divergence); for any other model
/// use the Hutchinson overload.
///
/// The result is exact up to the ODE's error and the prior mismatch: the solve ends in p_T, which
/// the prior N(0, prior_std^2 I) only approximates (for VP with beta_max = 20, alpha(1) = 0.0066).
/// \throws std::invalid_argument for rtol, atol <= 0 or non-finite, eps outside (0, T), a negative
///         first_step, max_steps = 0 or an empty x; std::runtime_error if the solver fails.
template <class Process, class Model, class Backend>
likelihood_result<typename Backend::tensor_type> log_likelihood(const Process& process, Model&& model, Backend& be,
                                                                const typename Backend::tensor_type& x,
                                                                likelihood_options options = {}) {
  using T = typename Backend::tensor_type;
  detail::check_likelihood_arguments<Process, Backend>();
  static_assert(has_score_divergence<std::remove_reference_t<Model>, T>,
                "log_likelihood: this model has no exact divergence (score_divergence(x, t, out)); estimate it with "
                "log_likelihood(process, model, be, x, diffusion::hutchinson_estimator<>{}, noise, options)");
  const detail::ode_controls ctl = detail::checked_likelihood_options<Process>(options, x);
  detail::exact_likelihood_rhs<Process, std::remove_reference_t<Model>, T> rhs(process, model, x);
  return detail::solve_likelihood(process, be, rhs, x, options, ctl);
}

/// The probability-flow log-likelihood with a Hutchinson estimate of the divergence (Song et al.
/// 2021, App. D.2): one probe per sample, drawn once from `noise` (one draw) and kept for the whole
/// solve, as score_sde does; the estimate is unbiased up to the ODE and finite-difference errors.
/// Average over several probes (solves, or copies of x in the batch) to reduce its variance.
/// Three model calls per function evaluation.
template <class Process, class Model, class Backend, class Probe, class Noise>
likelihood_result<typename Backend::tensor_type> log_likelihood(const Process& process, Model&& model, Backend& be,
                                                                const typename Backend::tensor_type& x,
                                                                hutchinson_estimator<Probe> estimator, Noise&& noise,
                                                                likelihood_options options = {}) {
  using T = typename Backend::tensor_type;
  detail::check_likelihood_arguments<Process, Backend>();
  static_assert(noise_source<std::remove_cvref_t<Noise>, typename Backend::scalar_type>,
                "log_likelihood: the Hutchinson probes need a noise source with fill_normal(span, batch) and "
                "fill_uniform(span, batch), e.g. diffusion::philox_noise{seed}");
  const detail::ode_controls ctl = detail::checked_likelihood_options<Process>(options, x);
  estimator.validate("log_likelihood");
  T probe = make_like(x);
  Probe::draw(be, noise, probe);
  detail::hutchinson_likelihood_rhs<Process, std::remove_reference_t<Model>, T> rhs(
      process, model, x, probe, estimator.template step_for<typename Backend::scalar_type>());
  return detail::solve_likelihood(process, be, rhs, x, options, ctl);
}

}  // namespace diffusion
