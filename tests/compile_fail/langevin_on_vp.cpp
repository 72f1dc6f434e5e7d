// An NCSN sampler with a DDPM process.
// expect: annealed_langevin needs a discrete variance-exploding process
#include <diffusion/core.hpp>

int main() {
  const diffusion::annealed_langevin sampler(diffusion::vp_discrete::linear(), {});
  return static_cast<int>(sampler.num_steps());
}
