// SPDX-License-Identifier: MIT
// linspace as the reference implementations compute it, so that tables and time grids agree with
// them to the last bits.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

namespace diffusion {

/// torch.linspace(start, end, n) in float64: start + i step for the first half and
/// end - (n - 1 - i) step for the second, step = (end - start)/(n - 1), so both ends are exact.
/// The products are fused (std::fma) so that the result does not depend on whether the compiler
/// contracts a*b + c; torch's AVX2 kernel fuses them too. For n = 1 the result is {start}.
/// Set-up code, kept out of line: one copy per translation unit instead of one per caller (compile cost).
[[gnu::noinline]] inline std::vector<double> linspace(double start, double end, std::size_t n) {
  std::vector<double> v(n);
  if (n == 1) {
    v[0] = start;
    return v;
  }
  const double step = (end - start) / static_cast<double>(n - 1);
  const std::size_t halfway = n / 2;
  for (std::size_t i = 0; i < n; ++i)
    v[i] = i < halfway ? std::fma(step, static_cast<double>(i), start)
                       : std::fma(-step, static_cast<double>(n - 1 - i), end);
  return v;
}

}  // namespace diffusion
