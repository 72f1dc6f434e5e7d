// SPDX-License-Identifier: MIT
// Compile-time measurement (docs/PERFORMANCE.md): the baseline, Eigen's Tensor module alone, with
// the thread-pool device the library enables. Compiled, never run.
#ifndef EIGEN_USE_THREADS
#define EIGEN_USE_THREADS
#endif
#include <unsupported/Eigen/CXX11/Tensor>
