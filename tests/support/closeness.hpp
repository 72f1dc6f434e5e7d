// SPDX-License-Identifier: MIT
// Elementwise closeness of two results.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <iomanip>
#include <string>
#include <vector>

#include <diffusion/backend/reference.hpp>

namespace diffusion::test {

/// CHECKs |got_i - want_i| <= atol + rtol |want_i| for every element, as one assertion whose
/// message names `what` and the worst element.
inline void check_close(const std::vector<double>& got, const std::vector<double>& want, double rtol, double atol,
                        const std::string& what) {
  REQUIRE(got.size() == want.size());
  double worst = 0.0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double excess = std::abs(got[i] - want[i]) / (atol + rtol * std::abs(want[i]));
    if (excess > worst) worst = excess, at = i;
  }
  INFO(what << ": worst element " << at << " got " << std::setprecision(17) << got[at] << " want " << want[at]
            << " (|got - want| / (atol + rtol |want|) = " << worst << ")");
  CHECK(worst <= 1.0);
}

/// max_i |a_i - b_i| of two tensors of the same shape (REQUIREd).
inline double max_abs_difference(const reference_tensor<double>& a, const reference_tensor<double>& b) {
  REQUIRE(a.shape == b.shape);
  double m = 0.0;
  for (std::size_t i = 0; i < a.data.size(); ++i) m = std::max(m, std::abs(a.data[i] - b.data[i]));
  return m;
}

}  // namespace diffusion::test
