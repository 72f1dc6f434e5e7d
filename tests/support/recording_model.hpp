// SPDX-License-Identifier: MIT
// A model wrapper that keeps the point of its last call, so that a test can check the x0_hat an
// observer receives against the exact x0 there (Tweedie's formula at the evaluated point).
#pragma once

#include <cstddef>
#include <vector>

#include <diffusion/backend/reference.hpp>
#include <diffusion/core/observer.hpp>
#include <diffusion/model/gaussian_mixture.hpp>
#include <diffusion/sampler/driver.hpp>

#include "support/closeness.hpp"
#include "support/mixture_fixture.hpp"
#include "support/pass_counting_backend.hpp"

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

/// What a parameterization test compares between runs of one sampler with the exact mixture
/// model predicting different things: the result, x0_hat at every step, and the passes over memory.
struct observed_run {
  reference_tensor<double> x;
  std::vector<double> predictions;  ///< x0_hat of every step, as the observer saw it
  std::size_t passes = 0;           ///< lincomb calls (pass_counting_backend)
};

/// Samples with the golden mixture's exact model predicting `Param` on a pass-counting backend. With
/// `x0_hat_at_last_call`, every step's x0_hat is also checked against the exact x0 at the model's
/// last call (right for samplers whose last call in a step is where x0_hat is formed).
template <class Param, class Sampler, class Process, class Noise>
observed_run run_observed(const Sampler& sampler, const Process& process, const reference_tensor<double>& x_T,
                          Noise noise, bool x0_hat_at_last_call) {
  observed_run r;
  pass_counting_backend be{{}, &r.passes};
  recording_model<gaussian_mixture_model<Process, Param>> model{{golden_mixture(), process}};
  r.x = sample(sampler, model, be, x_T, noise, [&](const step_info<reference_tensor<double>>& s) {
    r.predictions.insert(r.predictions.end(), s.prediction.data.begin(), s.prediction.data.end());
    if (x0_hat_at_last_call) check_x0_hat_at_last_call(golden_mixture(), process, model, s.prediction);
  });
  return r;
}

/// CHECKs that two runs agree to rounding: result, x0_hat and passes.
inline void check_same_run(const observed_run& got, const observed_run& want, std::size_t extra_passes = 0) {
  check_close(got.x.data, want.x.data, 1e-9, 1e-11, "samples");
  check_close(got.predictions, want.predictions, 1e-9, 1e-11, "x0_hat");
  CHECK(got.passes == want.passes + extra_passes);
}

}  // namespace diffusion::test
