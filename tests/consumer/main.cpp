// SPDX-License-Identifier: MIT
// The program every consumer project builds: it only needs the public header and the
// diffusion::diffusion target's usage requirements.
#include <cstdio>

#include <diffusion/diffusion.hpp>

// The target's compile definitions must reach consumers too (see the top-level CMakeLists.txt).
#ifndef EIGEN_USE_THREADS
#error "diffusion::diffusion did not pass EIGEN_USE_THREADS on to its consumer"
#endif

static_assert(diffusion::tensor_backend<diffusion::reference_backend<double>>);

int main() {
  // "leading" spacing, 50 of 1000 steps: 980, 960, ..., 0.
  const diffusion::time_grid grid = diffusion::leading_grid(1000, 50);
  diffusion::reference_backend<double> backend;
  diffusion::reference_tensor<double> x({2, 2}, {1.0, 2.0, 3.0, 4.0});
  backend.lincomb(x, 0.5, x, 1.0, x);  // x = 1.5 x, in place
  if (grid.size() != 50 || grid[0] != 980.0 || grid[49] != 0.0 || x.data[3] != 6.0) {
    std::puts("FAIL: unexpected values from the library");
    return 1;
  }
  std::puts("OK");
  return 0;
}
