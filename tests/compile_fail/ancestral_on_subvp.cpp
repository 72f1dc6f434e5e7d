// The ancestral predictor with a process that has no ancestral step.
// expect: ancestral_predictor needs process.ancestral_step(t)
#include <diffusion/core.hpp>

int main() {
  diffusion::reference_backend<double> be;
  const diffusion::subvp_sde process;
  diffusion::gaussian_mixture_model<diffusion::subvp_sde> model(
      diffusion::gaussian_mixture({1.0}, {{0.0, 0.0}}, std::vector<double>{1.0}), process);
  const diffusion::predictor_corrector sampler(process, diffusion::ancestral_predictor{});
  auto x = diffusion::sample(sampler, model, be, diffusion::reference_tensor<double>({4, 2}), diffusion::philox_noise(1));
  return static_cast<int>(x.data.size());
}
