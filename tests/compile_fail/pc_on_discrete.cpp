// An SDE sampler with a discrete DDPM process.
// expect: predictor_corrector needs a continuous-time SDE process
#include <diffusion/core.hpp>

int main() {
  const auto sampler = diffusion::euler_maruyama(diffusion::vp_discrete::linear());
  return static_cast<int>(sampler.num_steps());
}
