// SPDX-License-Identifier: MIT
// Scratch space for the samplers of the DDPM family: made once per run by make_workspace, so the
// step loop never allocates.
#pragma once

#include <cstddef>
#include <vector>

#include "../core/tensor.hpp"
#include "../model/parameterization.hpp"
#include "../model/predictor.hpp"

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

/// x0_hat and eps as linear functions of (x, model output): x0_hat = x0.x_coef x + x0.pred_coef out,
/// eps = eps.x_coef x + eps.pred_coef out. Taken from whatever the model predicts, so an x0 or v
/// model stays exact where alpha_bar = 0 (zero terminal SNR, Lin et al. 2024), where an eps model
/// cannot give x0 (convert_coefficients throws std::domain_error there).
struct x0_eps_coefficients {
  conversion x0;
  conversion eps;
};

namespace detail {

/// Evaluates the model at (x, t) into ws.model_out, as it predicts, and returns how x0_hat and eps
/// follow from it at the process's alpha(t), sigma(t).
template <class Model, class Process, tensor T>
x0_eps_coefficients evaluate_x0_eps(Model& model, const Process& process, const T& x, double t,
                                    denoising_workspace<T>& ws) {
  call_model(model, x, t, ws.model_out);
  const double alpha = process.alpha(t), sigma = process.sigma(t);
  return {convert_coefficients(parameterization_of<Model>, parameterization::x0, alpha, sigma),
          convert_coefficients(parameterization_of<Model>, parameterization::eps, alpha, sigma)};
}

}  // namespace detail

}  // namespace diffusion
