// SPDX-License-Identifier: MIT
// The training loop of the examples (example code, not library API): minibatches of a fixed
// training set, one of the library's losses, the example network and Adam, with a per-step
// observer (progress bars live there, not here).
//
//     examples::train_report r = examples::train(loss, model, data, {.steps = 4000}, progress);
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <numbers>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <diffusion/backend/eigen.hpp>
#include <diffusion/core/errors.hpp>
#include <diffusion/core/observer.hpp>
#include <diffusion/loss/loss_batch.hpp>
#include <diffusion/random/philox_noise.hpp>

#include "adam.hpp"

namespace examples {

struct train_options {
  std::size_t steps = 4000;      ///< optimiser steps
  std::size_t batch_size = 256;  ///< samples per step
  double learning_rate = 2e-3;   ///< the peak learning rate
  std::size_t warmup = 100;      ///< steps of linear warm-up to the peak
  double max_grad_norm = 1.0;    ///< clip the global gradient norm to this (0: no clipping)
  std::uint64_t seed = 1;        ///< Philox seed of the minibatches and of the loss's t and eps

  void validate() const {
    constexpr const char* where = "train_options";
    diffusion::require(steps >= 1, where, "steps", steps, "at least 1");
    diffusion::require(batch_size >= 1, where, "batch_size", batch_size, "at least 1");
    diffusion::require(std::isfinite(learning_rate) && learning_rate > 0.0, where, "learning_rate", learning_rate,
                       "(0, inf)");
    diffusion::require(std::isfinite(max_grad_norm) && max_grad_norm >= 0.0, where, "max_grad_norm", max_grad_norm,
                       "[0, inf) (0: no clipping)");
  }
};

/// What a training observer sees after each step.
struct train_step_info {
  std::size_t index;     ///< the step just taken, 0-based
  std::size_t count;     ///< the number of steps of the run
  double loss;           ///< the minibatch loss of this step (before the update)
  double smoothed_loss;  ///< an exponential moving average of the loss (decay 0.98, bias-corrected)
  double learning_rate;  ///< the learning rate this step used
  double seconds;        ///< wall time since training started
};

/// The record of a run.
struct train_report {
  std::vector<double> loss;  ///< the minibatch loss of every step
  double seconds = 0.0;      ///< wall time of the whole run
  double cpu_seconds = 0.0;  ///< processor time of the whole run (std::clock: all threads of the process)
  std::size_t steps = 0;     ///< steps taken (fewer than asked if the observer stopped the run)
};

/// Linear warm-up, then cosine decay to 0 (Loshchilov & Hutter 2017, "SGDR", Eq. 5 without restarts):
/// lr_k = peak (k+1)/warmup for k < warmup, else peak (1 + cos(pi (k - warmup)/(steps - warmup))) / 2.
inline double scheduled_learning_rate(const train_options& o, std::size_t k) {
  if (k < o.warmup) return o.learning_rate * static_cast<double>(k + 1) / static_cast<double>(o.warmup);
  const double span = static_cast<double>(o.steps > o.warmup ? o.steps - o.warmup : 1);
  const double progress = static_cast<double>(k - o.warmup) / span;
  return o.learning_rate * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

/// Scales `g` so that its Euclidean norm is at most max_norm (Pascanu, Mikolov & Bengio 2013,
/// Alg. 1); returns the norm before clipping.
template <class S>
double clip_global_norm(std::span<S> g, double max_norm) {
  double ss = 0.0;
  for (const S v : g) ss += static_cast<double>(v) * static_cast<double>(v);
  const double norm = std::sqrt(ss);
  if (max_norm > 0.0 && norm > max_norm) {
    const S scale = static_cast<S>(max_norm / norm);
    for (S& v : g) v *= scale;
  }
  return norm;
}

/// Trains `model` (a denoiser, examples/common/denoiser.hpp) with `loss` (any of the library's
/// denoising losses for the model's process) on `data` (n points of model.net().config().data_dim
/// coordinates, interleaved), with Adam and the learning-rate schedule above.
///
/// Each step: draw a minibatch with replacement (uniform indices from Philox stream 0), let the
/// loss draw t and eps and form x_t (stream 1, one stream per sample), run the network, take the
/// loss and its gradient with respect to the network output from loss.evaluate, back-propagate,
/// clip, update. `obs(train_step_info)` is called after every step and may return
/// diffusion::observer_action::stop.
///
/// \throws std::invalid_argument for bad options or data; std::runtime_error if the loss stops
///         being finite.
template <class Loss, class Model, class Observer = diffusion::null_observer>
train_report train(const Loss& loss, Model& model, std::span<const double> data, const train_options& options,
                   Observer&& obs = {}) {
  using tensor = typename Model::tensor;
  using S = typename tensor::Scalar;
  options.validate();
  const std::size_t dim = model.net().config().data_dim;
  diffusion::require(!data.empty() && data.size() % dim == 0, "train", "data.size()", data.size(),
                     "a positive multiple of data_dim = " + std::to_string(dim));
  const std::size_t n = data.size() / dim;
  const auto batch = static_cast<Eigen::Index>(options.batch_size);
  const auto d = static_cast<Eigen::Index>(dim);

  diffusion::eigen_backend<S, 2> be;
  diffusion::philox_noise pick(options.seed, 0);
  // Per-sample streams from 1 on: sample b of every minibatch uses stream 1 + b.
  diffusion::philox_noise noise(options.seed, 1, /*per_sample_streams=*/true);
  tensor x0(batch, d), out(batch, d), grad(batch, d);
  diffusion::loss_batch<tensor> lb(x0);
  std::vector<double> u(options.batch_size);
  adam<S> opt(model.net().parameters().size(), {.learning_rate = options.learning_rate});

  train_report report;
  report.loss.reserve(options.steps);
  const auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  double ema = 0.0, ema_weight = 0.0;
  for (std::size_t k = 0; k < options.steps; ++k) {
    pick.fill_uniform(std::span<double>(u), 1);
    for (Eigen::Index b = 0; b < batch; ++b) {
      const std::size_t i = std::min(static_cast<std::size_t>(u[static_cast<std::size_t>(b)] * static_cast<double>(n)),
                                     n - 1);
      for (Eigen::Index j = 0; j < d; ++j) x0(b, j) = static_cast<S>(data[i * dim + static_cast<std::size_t>(j)]);
    }
    loss.draw(be, x0, noise, lb);
    model.forward(lb, out);
    const double value = loss.evaluate(be, lb, out, grad);
    if (!std::isfinite(value))
      throw std::runtime_error("train: the loss is " + std::to_string(value) + " at step " + std::to_string(k) +
                               "; lower train_options::learning_rate or max_grad_norm");
    model.backward(grad);
    clip_global_norm(model.net().gradients(), options.max_grad_norm);
    const double lr = scheduled_learning_rate(options, k);
    opt.set_learning_rate(lr);
    opt.step(model.net().parameters(), model.net().gradients());

    report.loss.push_back(value);
    report.steps = k + 1;
    // Bias-corrected as Adam's moments are (Kingma & Ba 2015, Sec. 3), so early values are not pulled to 0.
    ema = 0.98 * ema + 0.02 * value;
    ema_weight = 0.98 * ema_weight + 0.02;
    if constexpr (!std::same_as<std::remove_cvref_t<Observer>, diffusion::null_observer>) {
      const train_step_info info{k, options.steps, value, ema / ema_weight, lr, seconds()};
      using result = std::invoke_result_t<Observer&, const train_step_info&>;
      if constexpr (std::same_as<result, diffusion::observer_action>) {
        if (obs(info) == diffusion::observer_action::stop) break;
      } else {
        static_assert(std::is_void_v<result>, "a training observer must return void or diffusion::observer_action");
        obs(info);
      }
    }
  }
  report.seconds = seconds();
  report.cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  return report;
}

}  // namespace examples
