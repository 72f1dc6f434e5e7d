// SPDX-License-Identifier: MIT
// Compile-time measurement (docs/PERFORMANCE.md): the whole library with the Eigen backend, and five
// samplers instantiated through the driver, as a user's translation unit would. Compared with
// eigen_tensor.cpp, which includes only Eigen's Tensor module. Compiled, never run.
#include <diffusion/diffusion.hpp>

namespace dm = diffusion;

using tensor = Eigen::Tensor<float, 4, Eigen::RowMajor>;
using backend = dm::eigen_backend<float, 4>;

struct eps_model {
  using parameterization = dm::eps_param;
  void operator()(const tensor&, double, tensor&) const {}  // the network is not the library's cost
};

tensor run_ddpm(const tensor& x) {
  backend be;
  const dm::ddpm_ancestral sampler(dm::vp_discrete::linear(), dm::leading_grid(1000, 50));
  return dm::sample(sampler, eps_model{}, be, x, dm::philox_noise(1));
}

tensor run_ddim(const tensor& x) {
  backend be;
  const dm::ddim sampler(dm::vp_discrete::linear(), dm::leading_grid(1000, 50), {.eta = 0.0});
  return dm::sample(sampler, eps_model{}, be, x, dm::philox_noise(2));
}

tensor run_euler_maruyama(const tensor& x) {
  backend be;
  const auto sampler = dm::euler_maruyama(dm::vp_sde());
  return dm::sample(sampler, eps_model{}, be, x, dm::philox_noise(3));
}

tensor run_langevin_pc(const tensor& x) {
  backend be;
  const dm::predictor_corrector<dm::vp_sde, dm::euler_maruyama_predictor, dm::langevin_corrector> sampler{dm::vp_sde()};
  return dm::sample(sampler, eps_model{}, be, x, dm::philox_noise(4));
}

tensor run_probability_flow_heun(const tensor& x) {
  backend be;
  const dm::probability_flow<dm::vp_sde, dm::heun_method> sampler(dm::vp_sde(), {.steps = 100});
  return dm::sample(sampler, eps_model{}, be, x, dm::philox_noise(5));
}
