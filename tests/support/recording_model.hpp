// SPDX-License-Identifier: MIT
// A model wrapper that keeps the point of its last call, so that a test can check the x0_hat an
// observer receives against the exact x0 there (Tweedie's formula at the evaluated point).
#pragma once

#include <diffusion/backend/reference.hpp>
#include <diffusion/model/gaussian_mixture.hpp>

#include "support/closeness.hpp"

namespace diffusion::test {

template <class Model>
struct recording_model {
  using parameterization = typename Model::parameterization;
  Model inner;
  reference_tensor<double> last_x{std::vector<std::size_t>{0}};
  double last_t = 0.0;

  void operator()(const reference_tensor<double>& x, double t, reference_tensor<double>& out) {
    last_x = x;
    last_t = t;
    inner(x, t, out);
  }
};

/// CHECKs that `x0_hat` is the exact posterior mean of `mixture` under `process` at the model's
/// last evaluated point.
template <class Process, class Model>
void check_x0_hat_at_last_call(const gaussian_mixture& mixture, const Process& process,
                               const recording_model<Model>& model, const reference_tensor<double>& x0_hat) {
  gaussian_mixture_model<Process, x0_param> exact(mixture, process);
  reference_tensor<double> want(model.last_x.shape);
  exact(model.last_x, model.last_t, want);
  check_close(x0_hat.data, want.data, 1e-9, 1e-11, "x0_hat against the exact x0 at the last model call");
}

}  // namespace diffusion::test
