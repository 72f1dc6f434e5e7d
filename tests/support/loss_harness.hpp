// SPDX-License-Identifier: MIT
// What the loss tests share: single-Gaussian data, whose exact models and loss minima have closed
// forms, and the loops that run an exact model through a loss sample by sample.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <diffusion/backend/reference.hpp>
#include <diffusion/loss/loss_batch.hpp>
#include <diffusion/model/gaussian_mixture.hpp>
#include <diffusion/random/philox_noise.hpp>

#include "normal_batch.hpp"

namespace diffusion::test {

/// The data N(mu, s^2 I) in D = 3 dimensions: s = data_std, mu = data_mean, D = dim.
inline constexpr double data_std = 0.7;
inline const std::vector<double> data_mean{0.5, -1.0, 2.0};
inline constexpr std::size_t dim = 3;

inline gaussian_mixture single_gaussian() { return gaussian_mixture({1.0}, {data_mean}, std::vector<double>{data_std}); }

/// Runs `model` on every sample of the batch at its own t, one sample at a time: a predictor
/// takes one t per call, a loss draws one t per sample.
template <class Model>
void predict_per_sample(Model& model, const loss_batch<reference_tensor<double>>& batch, reference_tensor<double>& out) {
  const std::size_t d = sample_size(batch.x_t);
  reference_tensor<double> x1({1, d}), o1({1, d});
  for (std::size_t b = 0; b < batch.size(); ++b) {
    std::copy_n(batch.x_t.data.begin() + static_cast<std::ptrdiff_t>(b * d), d, x1.data.begin());
    model(x1, batch.t[b], o1);
    std::copy_n(o1.data.begin(), d, out.data.begin() + static_cast<std::ptrdiff_t>(b * d));
  }
}

/// Draws t and the noise for the samples x0 from Philox (seed, stream 0) into `batch`, and
/// evaluates `loss` at the exact `model`; returns the loss (the per-sample losses stay in
/// batch.sample_loss). Losses drawn with the same seed see the same t and noise.
template <class Loss, class Model>
double exact_model_loss(const Loss& loss, Model& model, const reference_tensor<double>& x0, std::uint64_t seed,
                        loss_batch<reference_tensor<double>>& batch) {
  reference_backend<double> be;
  philox_noise noise(seed, 0);
  loss.draw(be, x0, noise, batch);
  reference_tensor<double> out = make_like(x0);
  predict_per_sample(model, batch, out);
  return loss.evaluate(be, batch, out);
}

/// Draws `batches` batches of B samples of the model's data (Philox seed, stream 0) and of the
/// loss's t and noise (stream 1), and appends to
/// - exact_losses: every sample's loss at the exact model;
/// - offset_diff: the paired increase of each sample's loss when a constant delta is added to the
///   model's output (same draws);
/// - offset_residual: that increase minus its expectation lambda(t) r D delta^2, where r is the
///   reduction's factor (1/2 for a half sum, 1/D for a mean): the cross term 2 delta sum_j e_j has
///   mean 0, since the exact model's residual e has mean 0 given x_t.
template <class Loss, class Model>
void exact_and_offset(const Loss& loss, Model& model, std::size_t batches, std::size_t B, std::uint64_t seed,
                      double delta, double r, std::vector<double>& exact_losses, std::vector<double>& offset_diff,
                      std::vector<double>& offset_residual) {
  reference_backend<double> be;
  philox_noise data_noise(seed, 0), loss_noise(seed, 1);
  reference_tensor<double> x0({B, dim}), out({B, dim}), moved({B, dim});
  loss_batch batch(x0);
  for (std::size_t k = 0; k < batches; ++k) {
    model.mixture().sample(data_noise, x0);
    loss.draw(be, x0, loss_noise, batch);
    predict_per_sample(model, batch, out);
    (void)loss.evaluate(be, batch, out);
    const std::vector<double> exact = batch.sample_loss;
    exact_losses.insert(exact_losses.end(), exact.begin(), exact.end());
    for (std::size_t i = 0; i < out.data.size(); ++i) moved.data[i] = out.data[i] + delta;
    (void)loss.evaluate(be, batch, moved);
    for (std::size_t b = 0; b < B; ++b) {
      const double diff = batch.sample_loss[b] - exact[b];
      offset_diff.push_back(diff);
      offset_residual.push_back(diff - batch.weight[b] * r * static_cast<double>(dim) * delta * delta);
    }
  }
}

}  // namespace diffusion::test
