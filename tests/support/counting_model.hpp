// SPDX-License-Identifier: MIT
// A model wrapper that counts its calls, for tests that check how often a sampler evaluates the
// model.
#pragma once

#include <cstddef>

namespace diffusion::test {

/// Forwards each call to `inner` and counts it (each call evaluates the whole batch). Only the
/// call operator and the parameterization are forwarded: anything else the inner model offers
/// (an exact divergence, say) stays hidden.
template <class Model>
struct counting_model {
  using parameterization = typename Model::parameterization;
  Model& inner;
  std::size_t calls = 0;
  template <class T>
  void operator()(const T& x, double t, T& out) {
    ++calls;
    inner(x, t, out);
  }
};

}  // namespace diffusion::test
