// Consistent annealed sampling with a continuous SDE.
// expect: consistent_annealed_sampling needs a discrete variance-exploding process
#include <diffusion/core.hpp>

int main() {
  const diffusion::consistent_annealed_sampling sampler(diffusion::ve_sde{}, {.step_lr = 1.0});
  return static_cast<int>(sampler.num_steps());
}
