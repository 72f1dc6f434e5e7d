// SPDX-License-Identifier: MIT
// Scratch space for the samplers of the DDPM family: made once per run by make_workspace, so the
// step loop never allocates.
#pragma once

#include <cstddef>
#include <vector>

#include "../core/tensor.hpp"

namespace diffusion {

template <tensor T>
struct denoising_workspace {
  T model_out;   ///< the model's output, converted to what the sampler needs
  T prediction;  ///< x0_hat, what the observer sees
  T noise;       ///< one draw of N(0, I)
  std::vector<double> scratch;  ///< one sample of doubles (dynamic thresholding)
  /// The driver sets this to false when nothing observes x0_hat, so a sampler may fuse it away.
  bool need_prediction = true;

  explicit denoising_workspace(const T& x)
      : model_out(make_like(x)), prediction(make_like(x)), noise(make_like(x)), scratch(sample_size(x)) {}
};

}  // namespace diffusion
