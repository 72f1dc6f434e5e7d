// SPDX-License-Identifier: MIT
// The storage of one training batch of a denoising loss, made once and reused every iteration.
#pragma once

#include <cstddef>
#include <vector>

#include "../core/tensor.hpp"

namespace diffusion {

/// One training batch: what the network sees (x_t, t), what it should output (target) and the
/// per-sample weights, for a batch shaped like x0. Build it once from the first x0
/// (`loss_batch batch(x0);`) and pass it to every draw / evaluate: neither allocates.
///
/// The loss fills the members; they are public so that the network code reads x_t and t, and so
/// that a parity test may write t and noise itself and call the loss's perturb().
template <tensor T>
struct loss_batch {
  using tensor_type = T;
  using scalar_type = scalar_of<T>;

  T x_t;     ///< the network input x_t = alpha(t) x0 + sigma(t) eps, per sample
  T noise;   ///< eps ~ N(0, I), the draw x_t was formed with
  T target;  ///< what the network should output (eps, x0, v or score of the draw)
  std::vector<double> t;            ///< per-sample time (integer timesteps for a discrete process)
  std::vector<double> alpha;        ///< per-sample alpha(t), in double
  std::vector<double> sigma;        ///< per-sample sigma(t), in double
  std::vector<double> weight;       ///< per-sample lambda(t), on the target's squared error
  std::vector<double> sample_loss;  ///< set by evaluate: each sample's weighted, reduced loss

  /// Scratch in the tensor's scalar type: the uniform draw for t, and the per-sample coefficients
  /// handed to be.lincomb_per_sample.
  std::vector<scalar_type> uniform, coef_a, coef_b;

  /// Storage for batches shaped like `x0`; contents unspecified until the first draw.
  explicit loss_batch(const T& x0)
      : x_t(make_like(x0)), noise(make_like(x0)), target(make_like(x0)),
        t(batch_size(x0)), alpha(batch_size(x0)), sigma(batch_size(x0)), weight(batch_size(x0)),
        sample_loss(batch_size(x0)), uniform(batch_size(x0)), coef_a(batch_size(x0)), coef_b(batch_size(x0)) {}

  /// The number of samples B.
  std::size_t size() const noexcept { return t.size(); }
};

}  // namespace diffusion
