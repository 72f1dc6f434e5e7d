// SPDX-License-Identifier: MIT
// Batches of standard normals for test inputs (x_T, probes, model outputs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include <diffusion/backend/reference.hpp>
#include <diffusion/random/philox_noise.hpp>

namespace diffusion::test {

/// A [n, d] batch of scale * z, z ~ N(0, I) from one draw of philox_noise(seed, stream).
inline reference_tensor<double> normal_batch(std::size_t n, std::size_t d, std::uint64_t seed, std::uint32_t stream = 0,
                                             double scale = 1.0) {
  reference_tensor<double> x({n, d});
  philox_noise(seed, stream).fill_normal(std::span<double>(x.data), n);
  for (double& v : x.data) v *= scale;
  return x;
}

}  // namespace diffusion::test
