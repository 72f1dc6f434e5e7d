// SPDX-License-Identifier: MIT
// The reference backend, counting its passes over memory: every lincomb (the reference backend has
// no fused noise pass, so a step's noise comes through lincomb too). Tests use it to check that a
// sampler folds a model's conversion into its update instead of converting in a pass of its own.
#pragma once

#include <cstddef>
#include <utility>

#include <diffusion/backend/reference.hpp>

namespace diffusion::test {

struct pass_counting_backend : reference_backend<double> {
  std::size_t* passes;

  template <class... Args>
  void lincomb(Args&&... args) const {
    ++*passes;
    reference_backend<double>::lincomb(std::forward<Args>(args)...);
  }
};

}  // namespace diffusion::test
