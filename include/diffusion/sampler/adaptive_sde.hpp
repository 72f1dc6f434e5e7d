// SPDX-License-Identifier: MIT
// The adaptive-step solver of the reverse SDE of Jolicoeur-Martineau, Li, Piche-Taillefer, Kachman
// and Mitliagkas 2021, "Gotta Go Fast When Generating Data with Score-Based Models" (Algorithm 1,
// "dynamic step size extrapolation + improved Euler"), as their code runs it
// (AlexiaJM/score_sde_fast_sampling `AdaptivePredictor` with its defaults: improved Euler on the
// SDE, extrapolation, the error scaled by the previous proposal, the scaled L2 norm).
//
// From t = T towards eps, with step h > 0 and one draw z ~ N(0, I) per attempted step:
//   x'   = x + h (-f(t) x + g(t)^2 s(x, t)) + sqrt(h) g(t) z                 Euler-Maruyama
//   x''  = x + 1/2 [(x' - x) + h (-f(t-h) x' + g(t-h)^2 s(x', t-h)) + sqrt(h) g(t-h) z]
//                                                                            improved Euler (Heun)
//   delta = max(eps_abs, eps_rel max(|x'|, |x'_prev|))                      elementwise
//   E    = || (x' - x'') / delta ||_2 / sqrt(n)
//   accept if E <= 1: x <- x'' (extrapolation), x'_prev <- x', t <- t - h
//   h    <- min(t - eps, theta h E^-r)                 after every attempt, accepted or not
// then the final denoising step x <- x + sigma(eps)^2 s(x, eps).
//
// One time for the whole batch: a model takes one t per call (model/predictor.hpp), so the paper's
// per-sample times and steps would cost one call per sample. The batch steps together and E
// aggregates the per-sample errors E_b (adaptive_error_norm): by default their root mean square
// (the paper's scaled norm over the batch as one state; the cost does not grow with the batch
// size), or their maximum (every sample meets the paper's per-sample test, but the batch's worst
// sample sets every step: on the 2-D mixture that costs about 4x the calls at a batch of 32768; see
// docs/sampler_costs.md).
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/errors.hpp"
#include "../core/noise.hpp"
#include "../core/observer.hpp"
#include "../core/tensor.hpp"
#include "../process/sde_concepts.hpp"
#include "predictor_corrector.hpp"

namespace diffusion {

/// How the per-sample errors E_b = ||(x'_b - x''_b) / delta_b||_2 / sqrt(n) of one attempted step
/// become the batch's E.
enum class adaptive_error_norm {
  /// E = sqrt(mean_b E_b^2), the paper's scaled L2 norm over the whole batch taken as one vector:
  /// the step sequence hardly depends on the batch size, but single samples may exceed the tolerance.
  batch_rms,
  /// E = max_b E_b: a step is accepted only if every sample meets the paper's per-sample test; the
  /// steps shrink as the batch grows (its largest noise draw grows).
  per_sample_max,
};

/// Options of sample_adaptive_sde. Defaults are those of the paper's code (get_pc_sampler, config
/// `sampling_h_init`, `sampling_reltol`, `sampling_abstol`, `sampling_safety`, `sampling_exp`);
/// eps_abs = 0.0078 ~ 2/256 is one intensity level of images scaled to [-1, 1].
struct adaptive_sde_options {
  double eps_rel = 0.01;   ///< relative tolerance, > 0
  double eps_abs = 0.0078; ///< absolute tolerance, > 0, in the units of x
  double h_init = 0.01;    ///< the first attempted step, in (0, T - eps]
  double eps = 1e-3;       ///< the end time, in (0, T): the score is still finite there
  double safety = 0.9;     ///< theta, the safety factor of the step rule, in (0, 1]
  double exponent = 0.9;   ///< r, the exponent of the step rule, > 0
  /// A safety stop: sampling throws std::runtime_error rather than call the model more often.
  std::size_t max_model_calls = 100000;
  /// End with x <- x + sigma(eps)^2 s(x, eps) (one more model call), as the paper does.
  bool denoise = true;
  adaptive_error_norm error_norm = adaptive_error_norm::batch_rms;
};

/// What a run cost.
struct adaptive_sde_report {
  std::size_t accepted = 0;     ///< accepted steps
  std::size_t rejected = 0;     ///< rejected steps (each cost two model calls and one draw, too)
  std::size_t model_calls = 0;  ///< 2 per attempted step, +1 for the denoising step
};

template <tensor T>
struct adaptive_sde_result {
  T x;
  adaptive_sde_report report;
};

/// Scratch space of the adaptive solver, made once per run.
template <tensor T>
struct adaptive_sde_workspace {
  /// In `score`: the model's output at (x, t), then at (x', t - h), then x''; noise z and x0_hat
  /// for observers.
  sde_workspace<T> sde;
  T proposal;           ///< x', the Euler-Maruyama proposal
  T previous_proposal;  ///< x'_prev, the proposal of the last accepted step (x_T before the first)

  explicit adaptive_sde_workspace(const T& x) : sde(x), proposal(make_like(x)), previous_proposal(make_like(x)) {}
};

namespace detail {

/// Throws std::invalid_argument unless the options are valid for a process on [0, end_time].
inline void validate(const adaptive_sde_options& o, double end_time) {
  constexpr const char* where = "sample_adaptive_sde";
  require(std::isfinite(o.eps_rel) && o.eps_rel > 0.0, where, "eps_rel", o.eps_rel, "(0, inf), finite");
  require(std::isfinite(o.eps_abs) && o.eps_abs > 0.0, where, "eps_abs", o.eps_abs, "(0, inf), finite");
  if (!(std::isfinite(o.eps) && o.eps > 0.0 && o.eps < end_time)) [[unlikely]]
    throw_invalid_parts(where, {"eps"}, o.eps, {"(0, T) = (0, ", end_time, ")"});
  if (!(std::isfinite(o.h_init) && o.h_init > 0.0 && o.h_init <= end_time - o.eps)) [[unlikely]]
    throw_invalid_parts(where, {"h_init"}, o.h_init, {"(0, T - eps] = (0, ", end_time - o.eps, "]"});
  require(std::isfinite(o.safety) && o.safety > 0.0 && o.safety <= 1.0, where, "safety", o.safety, "(0, 1]");
  require(std::isfinite(o.exponent) && o.exponent > 0.0, where, "exponent", o.exponent, "(0, inf), finite");
  require(o.max_model_calls >= (o.denoise ? 3u : 2u), where, "max_model_calls", o.max_model_calls,
          o.denoise ? "at least 3 (one attempted step and the denoising step)" : "at least 2 (one attempted step)");
}

[[noreturn, gnu::cold, gnu::noinline]] inline void throw_non_finite_error(double error, double t) {
  throw std::domain_error(concat({"sample_adaptive_sde: the step error is ", error, " at t = ", t,
                                  " (a non-finite model output or state); valid range: finite"}));
}

[[noreturn, gnu::cold, gnu::noinline]] inline void throw_max_model_calls(std::size_t max_model_calls, double t,
                                                                         double h) {
  throw std::runtime_error(concat({"sample_adaptive_sde: max_model_calls = ", max_model_calls, " reached at t = ", t,
                                   " with step h = ", h, "; loosen eps_rel or eps_abs, or raise max_model_calls"}));
}

/// The Euler-Maruyama proposal of Algorithm 1, a step h > 0 backwards along the reverse SDE
/// dx = [f(t) x - g(t)^2 s] dt + g(t) dw-bar (Song et al. 2021, Eq. 6):
///   x' = (1 - h f(t)) x + h g(t)^2 s + sqrt(h) g(t) z,
/// with the score s given as the model's output at (x, t) and its conversion (folded_update).
template <class Backend, class Process, tensor T>
void euler_maruyama_proposal(Backend& be, const Process& p, const T& x, const T& output, const conversion& to_score,
                             const T& z, double t, double h, T& out) {
  using S = scalar_of<T>;
  const double f = p.drift_scale(t), g = p.diffusion(t);
  const folded_update u(1.0 - h * f, h * g * g, to_score);
  be.lincomb(out, S(u.x_coef), x, S(u.output_coef), output, S(std::sqrt(h) * g), z);
}

/// The improved-Euler (Heun) result of Algorithm 1 with the proposal's noise z: with K1 = x' - x and
/// K2 = h (-f(t') x' + g(t')^2 s(x', t')) + sqrt(h) g(t') z at t' = t - h,
///   x'' = x + (K1 + K2) / 2 = x/2 + (1 - h f(t'))/2 x' + h g(t')^2/2 s' + sqrt(h) g(t')/2 z,
/// with s' given as the model's output at (x', t') and its conversion. `out` may alias
/// `output_next`.
template <class Backend, class Process, tensor T>
void improved_euler(Backend& be, const Process& p, const T& x, const T& proposal, const T& output_next,
                    const conversion& to_score_next, const T& z, double t_next, double h, T& out) {
  using S = scalar_of<T>;
  const double f = p.drift_scale(t_next), g = p.diffusion(t_next);
  const folded_update u(0.5 * (1.0 - h * f), 0.5 * h * g * g, to_score_next);
  be.lincomb(out, S(0.5), x, S(u.x_coef), proposal, S(u.output_coef), output_next, S(0.5 * std::sqrt(h) * g), z);
}

/// The error of Algorithm 1: per sample b, E_b^2 = sum_j ((x'_j - x''_j) / delta_j)^2 / n
/// with delta_j = max(eps_abs, eps_rel max(|x'_j|, |x'_prev,j|)), and their max or mean.
template <tensor T>
double scaled_error(const T& proposal, const T& improved, const T& previous, const adaptive_sde_options& o) {
  const auto a = elements(proposal), b = elements(improved), prev = elements(previous);
  const std::size_t batch = batch_size(proposal), n = sample_size(proposal);
  double worst = 0.0, total = 0.0;
  for (std::size_t s = 0; s < batch; ++s) {
    double sq = 0.0;
    for (std::size_t j = s * n; j < (s + 1) * n; ++j) {
      const double xp = static_cast<double>(a[j]);
      const double delta = std::max(o.eps_abs, o.eps_rel * std::max(std::abs(xp), std::abs(static_cast<double>(prev[j]))));
      const double e = (xp - static_cast<double>(b[j])) / delta;
      sq += e * e;
    }
    sq /= static_cast<double>(n);
    worst = std::max(worst, sq);
    total += sq;
  }
  const double e2 = o.error_norm == adaptive_error_norm::per_sample_max ? worst : total / static_cast<double>(batch);
  return std::sqrt(e2);
}

/// The step rule of Algorithm 1: h <- min(t - eps, theta h E^-r). E = 0 lets h grow to the end.
inline double next_step_size(double h, double error, double remaining, const adaptive_sde_options& o) {
  if (!(error > 0.0)) return remaining;
  return std::min(remaining, o.safety * h * std::pow(error, -o.exponent));
}

/// The final denoising step of the paper's code (Tweedie's formula as it writes it, without the
/// division by alpha(eps), which is 1 - 5e-5 for the default VP SDE and 1 for VE):
///   x <- x + sigma(eps)^2 s(x, eps),
/// with the score given as the model's output at (x, eps) and its conversion.
template <class Backend, class Process, tensor T>
void denoise_step(Backend& be, const Process& p, const T& output, const conversion& to_score, double eps, T& x) {
  using S = scalar_of<T>;
  const double sigma = p.sigma(eps);
  const folded_update u(1.0, sigma * sigma, to_score);
  be.lincomb(x, S(u.x_coef), x, S(u.output_coef), output);
}

/// One attempt of Algorithm 1 from (x, t) with step h to t_next (= t - h, or eps exactly at the
/// end): draws z, forms x' into ws.proposal and x'' into ws.sde.score, and returns the error E.
/// \throws std::domain_error if E is not finite (a model output with NaN or inf).
template <class Backend, class Model, class Process, class Noise, tensor T>
double attempt_step(Backend& be, Model& model, const Process& p, Noise& noise, adaptive_sde_workspace<T>& ws,
                    const T& x, double t, double t_next, double h, const adaptive_sde_options& o) {
  const conversion k = evaluate_output(be, model, p, x, t, ws.sde);
  draw_normal(be, noise, ws.sde.noise);
  euler_maruyama_proposal(be, p, x, ws.sde.score, k, ws.sde.noise, t, h, ws.proposal);
  const conversion k_next = evaluate_output(be, model, p, ws.proposal, t_next, ws.sde);
  T& improved = ws.sde.score;  // the model's output at (x', t - h) is not needed once x'' is formed
  improved_euler(be, p, x, ws.proposal, ws.sde.score, k_next, ws.sde.noise, t_next, h, improved);
  const double error = scaled_error(ws.proposal, improved, ws.previous_proposal, o);
  if (!std::isfinite(error)) [[unlikely]]
    throw_non_finite_error(error, t);
  return error;
}

}  // namespace detail

/// Samples the reverse SDE of `process` from x_T (moved in; draw it with process.sample_prior)
/// down to options.eps with adaptive steps (Jolicoeur-Martineau et al. 2021, Algorithm 1; see the
/// top of this file), then denoises. Returns the sample and what it cost.
///
/// \param model    a predictor of any parameterization; its conversion to the score through the
///                 process is folded into the updates (detail::evaluate_output); 2 calls per
///                 attempted step and 1 for the denoising step.
/// \param noise    one standard normal draw shaped like x per attempted step, accepted or rejected,
///                 in order; the denoising step draws nothing. The step sequence depends on every
///                 sample of the batch, so results are not batch-size invariant.
/// \param obs      called after every accepted step (t -> t_next) and after the denoising step
///                 (t = t_next = eps), with prediction = x0_hat of the last model call; returning
///                 observer_action::stop returns the current x at once. The number of steps is not
///                 known in advance: count is index + 2 while steps follow and index + 1 on the
///                 last, so `index + 1 == count` marks the last step as for fixed-step samplers.
/// \throws std::invalid_argument for invalid options (naming the option, its value and range);
///         std::runtime_error when the next attempt would exceed options.max_model_calls;
///         std::domain_error when the error becomes non-finite (a model output with NaN or inf).
///
/// Nothing is allocated inside the step loop: the workspace is made once, up front.
template <sde_process Process, class Model, class Backend, class Noise, class Observer = null_observer>
adaptive_sde_result<typename Backend::tensor_type> sample_adaptive_sde(const Process& process, Model&& model,
                                                                       Backend& be, typename Backend::tensor_type x,
                                                                       Noise&& noise,
                                                                       const adaptive_sde_options& options = {},
                                                                       Observer&& obs = {}) {
  using T = typename Backend::tensor_type;
  static_assert(tensor_backend<Backend>,
                "diffusion::sample_adaptive_sde: the third argument must be a backend "
                "(diffusion::reference_backend<S>, diffusion::eigen_backend<S, Rank>, ...)");
  static_assert(noise_source<std::remove_cvref_t<Noise>, typename Backend::scalar_type>,
                "diffusion::sample_adaptive_sde: the fifth argument must be a noise source with "
                "fill_normal(span, batch) and fill_uniform(span, batch), e.g. diffusion::philox_noise{seed}");
  static_assert(observer<Observer, T>,
                "diffusion::sample_adaptive_sde: the observer must be callable as "
                "obs(const diffusion::step_info<T>&) and return void or diffusion::observer_action");
  constexpr bool observed = !std::same_as<std::remove_cvref_t<Observer>, null_observer>;
  const double end_time = Process::end_time();
  detail::validate(options, end_time);
  // The error norm averages over the elements (or samples): an empty x has none.
  require(size(x) >= 1, "sample_adaptive_sde", "number of elements of x", size(x), "at least 1");

  adaptive_sde_workspace<T> ws(x);
  ws.sde.need_prediction = observed;
  be.lincomb(ws.previous_proposal, scalar_of<T>(1), x);  // x'_prev starts as x_T, as the paper's code does
  adaptive_sde_report report;
  const std::size_t final_calls = options.denoise ? 1 : 0;

  double t = end_time, h = options.h_init;
  while (t > options.eps) {
    if (report.model_calls + 2 + final_calls > options.max_model_calls) [[unlikely]]
      detail::throw_max_model_calls(options.max_model_calls, t, h);
    // A step that reaches the end lands on eps exactly, not on t - h rounded.
    const double t_next = h >= t - options.eps ? options.eps : t - h;

    const double error = detail::attempt_step(be, model, process, noise, ws, x, t, t_next, h, options);
    report.model_calls += 2;
    const bool accept = error <= 1.0;
    const double t_before = t;
    if (accept) {
      be.lincomb(x, scalar_of<T>(1), ws.sde.score);  // x <- x''
      be.lincomb(ws.previous_proposal, scalar_of<T>(1), ws.proposal);
      t = t_next;
      ++report.accepted;
    } else {
      ++report.rejected;
    }
    h = detail::next_step_size(h, error, t - options.eps, options);

    if constexpr (observed) {
      if (accept) {
        const std::size_t index = report.accepted - 1;
        const bool final_step = !(t > options.eps) && !options.denoise;
        const step_info<T> info{index, final_step ? index + 1 : index + 2, t_before, t, x, ws.sde.prediction};
        if (detail::notify(obs, info)) return {std::move(x), report};
      }
    }
  }

  if (options.denoise) {
    const conversion k = detail::evaluate_output(be, model, process, x, options.eps, ws.sde);
    detail::denoise_step(be, process, ws.sde.score, k, options.eps, x);
    report.model_calls += 1;
    if constexpr (observed) {
      const std::size_t index = report.accepted;
      const step_info<T> info{index, index + 1, options.eps, options.eps, x, ws.sde.prediction};
      detail::notify(obs, info);
    }
  }
  return {std::move(x), report};
}

}  // namespace diffusion
