// A model that does not say what it predicts.
// expect: declare `using parameterization = diffusion::eps_param
#include <diffusion/core.hpp>

struct net {
  void operator()(const diffusion::reference_tensor<double>& x, double, diffusion::reference_tensor<double>& out) {
    out = x;
  }
};

int main() {
  diffusion::reference_backend<double> be;
  net model;
  const diffusion::ddim sampler(diffusion::vp_discrete::linear(), diffusion::leading_grid(1000, 10));
  auto x = diffusion::sample(sampler, model, be, diffusion::reference_tensor<double>({4, 2}), diffusion::philox_noise(1));
  return static_cast<int>(x.data.size());
}
