// SPDX-License-Identifier: MIT
// Reductions over tensors, accumulated in double in a fixed order, so that their results do not
// depend on the backend, the device or the number of threads (the step rules that use them, e.g.
// the Langevin corrector's snr rule, stay bit-reproducible).
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <span>

#include "errors.hpp"
#include "tensor.hpp"

namespace diffusion {

namespace detail {

/// sum_j v_j^2 in double over 8 fixed partial sums (element j goes to sum j % 8), combined
/// pairwise: a pure function of the values, whatever the backend or thread count, and a loop the
/// compiler vectorises (one running sum would serialise every addition).
template <class S>
double sum_of_squares(std::span<const S> v) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const std::size_t n = v.size(), whole = n - n % 8;
  for (std::size_t j = 0; j < whole; j += 8)
    for (std::size_t k = 0; k < 8; ++k) acc[k] += static_cast<double>(v[j + k]) * static_cast<double>(v[j + k]);
  for (std::size_t j = whole; j < n; ++j) acc[j - whole] += static_cast<double>(v[j]) * static_cast<double>(v[j]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

}  // namespace detail

/// sum_j x_j^2 over all elements.
template <tensor T>
double squared_norm(const T& x) {
  return detail::sum_of_squares(elements(x));
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
  if (out.size() != batch) [[unlikely]]
    detail::throw_invalid_parts("sample_squared_norms", {"out.size()"}, out.size(), {"the batch size of x, ", batch});
  const auto e = elements(x);
  for (std::size_t b = 0; b < batch; ++b) out[b] = detail::sum_of_squares(e.subspan(b * d, d));
}

/// The mean over the batch of the per-sample Euclidean norms |x_b|: each sample summed by
/// sum_of_squares, the norms added in sample order.
template <tensor T>
double mean_sample_norm(const T& x) {
  const std::size_t batch = batch_size(x), d = sample_size(x);
  const auto e = elements(x);
  double total = 0.0;
  for (std::size_t b = 0; b < batch; ++b) total += std::sqrt(detail::sum_of_squares(e.subspan(b * d, d)));
  return batch == 0 ? 0.0 : total / static_cast<double>(batch);
}

/// mean_sample_norm on the backend's own threads where it provides `be.mean_sample_norm(x)` (the
/// threaded Eigen backend splits the samples; the bits are the same), otherwise the function above.
template <class Backend, tensor T>
double mean_sample_norm(const Backend& be, const T& x) {
  if constexpr (requires { { be.mean_sample_norm(x) } -> std::convertible_to<double>; })
    return be.mean_sample_norm(x);
  else
    return mean_sample_norm(x);
}

}  // namespace diffusion
