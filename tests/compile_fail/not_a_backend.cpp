// A type that is not a backend in the backend's place.
// expect: the third argument must be a backend
#include <diffusion/core.hpp>

struct not_a_backend {
  using tensor_type = diffusion::reference_tensor<double>;
  using scalar_type = double;
};

int main() {
  not_a_backend be;
  auto model = diffusion::make_predictor<diffusion::eps_param>(
      [](const diffusion::reference_tensor<double>& x, double) { return x; });
  const diffusion::ddim sampler(diffusion::vp_discrete::linear(), diffusion::leading_grid(1000, 10));
  auto x = diffusion::sample(sampler, model, be, diffusion::reference_tensor<double>({4, 2}), diffusion::philox_noise(1));
  return static_cast<int>(x.data.size());
}
