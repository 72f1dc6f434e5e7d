// SPDX-License-Identifier: MIT
// The 3-component 2-D mixture every golden file uses (REFERENCE.md, golden/).
#pragma once

#include <diffusion/model/gaussian_mixture.hpp>

namespace diffusion::test {

inline gaussian_mixture golden_mixture() {
  return gaussian_mixture({0.5, 0.3, 0.2}, {{-2.0, 0.0}, {2.0, 1.0}, {0.0, -2.5}}, {0.3, 0.3, 0.3});
}

}  // namespace diffusion::test
