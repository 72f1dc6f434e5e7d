// SPDX-License-Identifier: MIT
// The driver loop: iteration and observers. A sampler knows one update rule; this file knows the
// loop (in the spirit of Boost.Odeint's integrate_n_steps).
#pragma once

#include <concepts>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "../core/noise.hpp"
#include "../core/observer.hpp"
#include "../core/tensor.hpp"

namespace diffusion {

/// A sampler for backend B: a fixed number of steps over an explicit time grid, a workspace of
/// scratch tensors made once per run, and a step that updates x in place.
///
/// Required members (S a sampler, ws its workspace, i < num_steps()):
///   std::size_t num_steps() const;
///   double time(i) const; double time_next(i) const;      what the observer reports
///   auto make_workspace(B& be, const T& x) const;          all allocation happens here
///   void step(B& be, Model& m, Noise& n, Workspace& ws, T& x, std::size_t i) const;
///   ws.prediction                                          x0_hat after the step (a T)
template <class S, class B>
concept sampler_for = tensor_backend<B> && requires(const S& s, B& be, const typename B::tensor_type& x,
                                                    std::size_t i) {
  { s.num_steps() } -> std::convertible_to<std::size_t>;
  { s.time(i) } -> std::convertible_to<double>;
  { s.time_next(i) } -> std::convertible_to<double>;
  s.make_workspace(be, x);
};

/// Runs `sampler` from the state x (x_T, moved in) and returns the final sample.
///
/// \param model     a predictor (see model/predictor.hpp); the sampler converts its output to what
///                  it needs through the process.
/// \param be        the backend that computes (Eigen device, reference loops, ...).
/// \param noise     a noise source (random/): draws are consumed in the order the sampler's
///                  reference implementation consumes them.
/// \param obs       called after every step with a step_info; may return observer_action::stop.
///
/// No allocation happens inside the step loop: the sampler's workspace is made once, up front.
template <class Sampler, class Model, class Backend, class Noise, class Observer = null_observer>
typename Backend::tensor_type sample(const Sampler& sampler, Model&& model, Backend& be,
                                     typename Backend::tensor_type x, Noise&& noise, Observer&& obs = {}) {
  using T = typename Backend::tensor_type;
  static_assert(tensor_backend<Backend>,
                "diffusion::sample: the third argument must be a backend (diffusion::reference_backend<S>, "
                "diffusion::eigen_backend<S, Rank>, ...) satisfying diffusion::tensor_backend");
  static_assert(sampler_for<Sampler, Backend>,
                "diffusion::sample: the first argument must be a sampler (diffusion::ddpm_ancestral, "
                "diffusion::ddim, ...) satisfying diffusion::sampler_for<Sampler, Backend>");
  static_assert(noise_source<std::remove_cvref_t<Noise>, typename Backend::scalar_type>,
                "diffusion::sample: the fifth argument must be a noise source with fill_normal(span, batch) and "
                "fill_uniform(span, batch), e.g. diffusion::philox_noise{seed}");
  static_assert(observer<Observer, T>,
                "diffusion::sample: the observer must be callable as obs(const diffusion::step_info<T>&) and "
                "return void or diffusion::observer_action");

  auto ws = sampler.make_workspace(be, x);
  // A sampler may skip forming x0_hat when nobody looks at it.
  if constexpr (requires { ws.need_prediction; })
    ws.need_prediction = !std::same_as<std::remove_cvref_t<Observer>, null_observer>;
  const std::size_t n = sampler.num_steps();
  for (std::size_t i = 0; i < n; ++i) {
    sampler.step(be, model, noise, ws, x, i);
    if constexpr (!std::same_as<std::remove_cvref_t<Observer>, null_observer>) {
      const step_info<T> info{i, n, sampler.time(i), sampler.time_next(i), x, ws.prediction};
      if (detail::notify(obs, info)) break;
    }
  }
  return x;
}

}  // namespace diffusion
