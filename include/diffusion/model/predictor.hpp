// SPDX-License-Identifier: MIT
// The predictor interface: a model is called as model(x, t, out) and declares what it predicts.
#pragma once

#include <concepts>
#include <type_traits>
#include <utility>

#include "../core/tensor.hpp"
#include "../process/concepts.hpp"
#include "parameterization.hpp"

namespace diffusion {

/// A predictor for tensors of type T: `p(x, t, out)` writes its prediction for state x at time t
/// into `out` (already shaped like x), and `P::parameterization` names what it predicts.
/// `t` is the process's own time coordinate: the integer timestep of a discrete process, t of a
/// continuous one.
///
/// Semantic requirements: p does not resize `out` (the driver checks the shape after every call
/// and throws if it changed) and does not keep references to x or out.
template <class P, class T>
concept predictor = tensor<T> && requires(P& p, const T& x, double t, T& out) {
  typename std::remove_cvref_t<P>::parameterization;
  requires parameterization_tag<typename std::remove_cvref_t<P>::parameterization>;
  p(x, t, out);
};

/// Wraps any callable as a predictor with a declared parameterization. The callable may be
/// `void f(const T& x, double t, T& out)` (allocation-free) or `T f(const T& x, double t)`
/// (convenient; its result is moved into out after a shape check).
template <parameterization_tag Param, class F>
struct function_predictor {
  using parameterization = Param;
  F f;

  template <tensor T>
  void operator()(const T& x, double t, T& out) {
    if constexpr (std::invocable<F&, const T&, double, T&>) {
      f(x, t, out);
    } else {
      static_assert(std::invocable<F&, const T&, double>,
                    "function_predictor: the callable must be f(const T& x, double t, T& out) or "
                    "T f(const T& x, double t)");
      T result = f(x, t);
      require_same_shape(result, x, "function_predictor", "model output");
      out = std::move(result);
    }
  }
};

/// `make_predictor<eps_param>(f)`: declares that callable f predicts eps.
template <parameterization_tag Param, class F>
function_predictor<Param, std::decay_t<F>> make_predictor(F&& f) {
  return {std::forward<F>(f)};
}

/// Evaluates `model` at (x, t) into `out`, exactly as the model predicts, and checks that it kept
/// the shape of x. Every model call of the library goes through here.
template <class Model, tensor T>
void call_model(Model& model, const T& x, double t, T& out) {
  static_assert(predictor<Model, T>,
                "the model must be callable as model(x, t, out) and declare `using parameterization = "
                "diffusion::eps_param;` (or x0_param, score_param, v_param); wrap a plain callable with "
                "diffusion::make_predictor<diffusion::eps_param>(f)");
  model(x, t, out);
  require_same_shape(out, x, "model", "output");
}

namespace detail {
template <class Model>
constexpr parameterization declared_parameterization() {
  if constexpr (requires { std::remove_cvref_t<Model>::parameterization::kind; })
    return std::remove_cvref_t<Model>::parameterization::kind;
  else
    return parameterization::eps;  // unreachable in a valid program: call_model's static_assert fires first
}
}  // namespace detail

/// What `Model` predicts.
template <class Model>
inline constexpr parameterization parameterization_of = detail::declared_parameterization<Model>();

/// Evaluates `model` at (x, t) and converts its output into parameterization `Want` using the
/// process's alpha(t), sigma(t) (the one place conversions happen: convert_coefficients).
template <parameterization_tag Want, class Backend, class Model, has_marginal_coefficients Process, tensor T>
void predict_as(Backend& be, Model& model, const Process& process, const T& x, double t, T& out) {
  call_model(model, x, t, out);
  constexpr parameterization have = parameterization_of<Model>;
  if constexpr (have != Want::kind) {
    const conversion c = convert_coefficients(have, Want::kind, process.alpha(t), process.sigma(t));
    using S = typename Backend::scalar_type;
    be.lincomb(out, static_cast<S>(c.x_coef), x, static_cast<S>(c.pred_coef), out);
  }
}

namespace detail {

/// Evaluates `model` at (x, t) into `out`, exactly as the model predicts, and returns what makes
/// that output the score there: score = to_score.x_coef x + to_score.pred_coef out. Every
/// parameterization's score is affine in (x, output) (convert_coefficients), so a sampler folds
/// these two numbers into its own update's coefficients instead of converting in a pass over
/// memory of its own. For a score model they are {0, 1}, which leave the update's coefficients as
/// they were, bit for bit.
template <class Model, has_marginal_coefficients Process, tensor T>
conversion evaluate_as_score(Model& model, const Process& p, const T& x, double t, T& out) {
  call_model(model, x, t, out);
  constexpr parameterization have = parameterization_of<Model>;
  if constexpr (have == parameterization::score)
    return {0.0, 1.0};
  else
    return convert_coefficients(have, parameterization::score, p.alpha(t), p.sigma(t));
}

/// An update x_coef x + score_coef score (+ noise) with the score given as the model's output and
/// its conversion: (x_coef + score_coef k.x_coef) x + (score_coef k.pred_coef) output. For a score
/// model (k = {0, 1}) these are x_coef and score_coef themselves.
struct folded_update {
  double x_coef;
  double output_coef;

  folded_update(double x_coef_, double score_coef, const conversion& k)
      : x_coef(x_coef_ + score_coef * k.x_coef), output_coef(score_coef * k.pred_coef) {}
};

/// x0_hat = (x + sigma(t)^2 score)/alpha(t), Tweedie's formula (Efron 2011; Song et al. 2021,
/// Eq. 14 with the Gaussian perturbation kernel), from the model's output at (x, t) and its
/// conversion to the score (evaluate_as_score).
template <class Backend, has_marginal_coefficients Process, tensor T>
void tweedie_x0(Backend& be, const Process& p, const T& x, const T& output, const conversion& to_score, double t,
                T& out) {
  using S = typename Backend::scalar_type;
  const double alpha = p.alpha(t), sigma = p.sigma(t);
  be.lincomb(out, static_cast<S>((1.0 + sigma * sigma * to_score.x_coef) / alpha), x,
             static_cast<S>(sigma * sigma * to_score.pred_coef / alpha), output);
}

}  // namespace detail

}  // namespace diffusion
