// SPDX-License-Identifier: MIT
// Reductions over tensors, accumulated in double in element order, so that their results do not
// depend on the backend, the device or the number of threads (the step rules that use them, e.g.
// the Langevin corrector's snr rule, stay bit-reproducible).
#pragma once

#include <cmath>
#include <cstddef>
#include <span>

#include "errors.hpp"
#include "tensor.hpp"

namespace diffusion {

/// sum_j x_j^2 over all elements.
template <tensor T>
double squared_norm(const T& x) {
  double s = 0.0;
  for (const auto v : elements(x)) s += static_cast<double>(v) * static_cast<double>(v);
  return s;
}

/// The mean of all elements.
template <tensor T>
double mean(const T& x) {
  double s = 0.0;
  for (const auto v : elements(x)) s += static_cast<double>(v);
  return size(x) == 0 ? 0.0 : s / static_cast<double>(size(x));
}

/// |x_b|^2 of every batch sample b into out (out.size() == batch_size(x)).
template <tensor T>
void sample_squared_norms(const T& x, std::span<double> out) {
  const std::size_t batch = batch_size(x), d = sample_size(x);
  if (out.size() != batch)
    throw_invalid("sample_squared_norms", "out.size()", out.size(), "the batch size of x, " + std::to_string(batch));
  const auto e = elements(x);
  for (std::size_t b = 0; b < batch; ++b) {
    double s = 0.0;
    for (std::size_t j = b * d; j < (b + 1) * d; ++j) s += static_cast<double>(e[j]) * static_cast<double>(e[j]);
    out[b] = s;
  }
}

/// The mean over the batch of the per-sample Euclidean norms |x_b|.
template <tensor T>
double mean_sample_norm(const T& x) {
  const std::size_t batch = batch_size(x), d = sample_size(x);
  const auto e = elements(x);
  double total = 0.0;
  for (std::size_t b = 0; b < batch; ++b) {
    double s = 0.0;
    for (std::size_t j = b * d; j < (b + 1) * d; ++j) s += static_cast<double>(e[j]) * static_cast<double>(e[j]);
    total += std::sqrt(s);
  }
  return batch == 0 ? 0.0 : total / static_cast<double>(batch);
}

}  // namespace diffusion
