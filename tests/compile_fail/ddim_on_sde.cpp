// A discrete-only sampler with a continuous SDE.
// expect: ddim needs a discrete variance-preserving process
#include <diffusion/core.hpp>

int main() {
  const diffusion::ddim sampler(diffusion::vp_sde{}, diffusion::leading_grid(1000, 50));
  return static_cast<int>(sampler.num_steps());
}
