// The NCSN loss with a DDPM process.
// expect: ncsn_loss needs a discrete variance-exploding process
#include <diffusion/core.hpp>

int main() {
  const diffusion::ncsn_loss loss{diffusion::vp_discrete::linear()};
  return loss.weight(0.0) > 0 ? 0 : 1;
}
