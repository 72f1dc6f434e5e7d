// The continuous-time DSM loss with NCSN noise levels.
// expect: sde_dsm_loss needs a continuous-time SDE process
#include <diffusion/core.hpp>

int main() {
  const diffusion::sde_dsm_loss loss{diffusion::ve_discrete::geometric(1.0, 0.1, 3)};
  return loss.eps_t() > 0 ? 0 : 1;
}
