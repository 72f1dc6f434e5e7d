// SPDX-License-Identifier: MIT
// The reference backend: plain loops over std::vector. It is the test oracle for every other
// backend, so it stays as simple as possible.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/tensor.hpp"

namespace diffusion {

/// A dense row-major tensor: shape[0] is the batch dimension.
template <class Scalar>
struct reference_tensor {
  using scalar_type = Scalar;
  std::vector<std::size_t> shape;
  std::vector<Scalar> data;

  reference_tensor() = default;
  explicit reference_tensor(std::vector<std::size_t> shape_)
      : shape(std::move(shape_)),
        data(std::accumulate(shape.begin(), shape.end(), std::size_t{1}, std::multiplies<>{})) {}
  reference_tensor(std::vector<std::size_t> shape_, std::vector<Scalar> data_)
      : shape(std::move(shape_)), data(std::move(data_)) {
    const std::size_t n = std::accumulate(shape.begin(), shape.end(), std::size_t{1}, std::multiplies<>{});
    if (data.size() != n) [[unlikely]]
      detail::throw_invalid_parts("reference_tensor", {"data.size()"}, data.size(), {"the product of the shape, ", n});
  }
};

template <class Scalar>
struct tensor_traits<reference_tensor<Scalar>> {
  using T = reference_tensor<Scalar>;
  using scalar_type = Scalar;
  static std::size_t size(const T& x) { return x.data.size(); }
  static std::size_t batch_size(const T& x) { return x.shape.empty() ? 1 : x.shape[0]; }
  static bool same_shape(const T& a, const T& b) { return a.shape == b.shape; }
  static T make_like(const T& x) { return T(x.shape); }
  static std::span<Scalar> elements(T& x) { return x.data; }
  static std::span<const Scalar> elements(const T& x) { return x.data; }
  static std::string shape_string(const T& x) {
    std::string s = "[";
    for (std::size_t i = 0; i < x.shape.size(); ++i) s.append(i ? ", " : "").append(std::to_string(x.shape[i]));
    return s + "]";
  }
};

/// The reference backend over reference_tensor<Scalar>.
template <class Scalar>
struct reference_backend {
  using scalar_type = Scalar;
  using tensor_type = reference_tensor<Scalar>;

  /// y = sum_k a_k x_k, elementwise; y may alias any x_k.
  template <class... Rest>
  void lincomb(tensor_type& y, Scalar a, const tensor_type& x, const Rest&... rest) const {
    static_assert(sizeof...(Rest) % 2 == 0 && sizeof...(Rest) <= 6,
                  "lincomb takes 1 to 4 (coefficient, tensor) pairs");
    check_terms(y, 1, a, x, rest...);
    const std::size_t n = x.data.size();
    for (std::size_t i = 0; i < n; ++i) y.data[i] = sum_terms(i, a, x, rest...);
  }

  /// y[s, ...] = a[s] x1[s, ...] + b[s] x2[s, ...].
  void lincomb_per_sample(tensor_type& y, std::span<const Scalar> a, const tensor_type& x1,
                          std::span<const Scalar> b, const tensor_type& x2) const {
    constexpr std::string_view where = "reference_backend::lincomb_per_sample";
    check_shape(where, "x1", y, x1);
    check_shape(where, "x2", y, x2);
    const std::size_t batch = tensor_traits<tensor_type>::batch_size(x1);
    detail::check_coefficient_count(where, "a.size()", a.size(), batch);
    detail::check_coefficient_count(where, "b.size()", b.size(), batch);
    const std::size_t d = batch == 0 ? 0 : x1.data.size() / batch;
    for (std::size_t s = 0; s < batch; ++s)
      for (std::size_t j = s * d; j < (s + 1) * d; ++j) y.data[j] = a[s] * x1.data[j] + b[s] * x2.data[j];
  }

  /// y = min(max(x, lo), hi).
  void clamp(tensor_type& y, const tensor_type& x, Scalar lo, Scalar hi) const {
    check_shape("reference_backend::clamp", "x", y, x);
    detail::check_clamp_bounds("reference_backend::clamp", lo, hi);
    for (std::size_t i = 0; i < x.data.size(); ++i) y.data[i] = std::min(std::max(x.data[i], lo), hi);
  }

 private:
  // Every backend checks shapes: a mismatch would read or write past the end of a vector. The
  // data's size too, since reference_tensor's members are public.
  static bool same_extent(const tensor_type& y, const tensor_type& x) {
    return y.shape == x.shape && y.data.size() == x.data.size();
  }
  static void check_shape(std::string_view where, std::string_view parameter, const tensor_type& y,
                          const tensor_type& x) {
    if (!same_extent(y, x)) [[unlikely]]
      detail::throw_shape_mismatch(x, y, where, parameter, "the shape of y");
  }
  static void check_terms(const tensor_type&, int) {}
  template <class... Rest>
  static void check_terms(const tensor_type& y, int k, Scalar, const tensor_type& x, const Rest&... rest) {
    if (!same_extent(y, x)) [[unlikely]]
      detail::throw_shape_mismatch(x, y, "reference_backend::lincomb", detail::concat({"x", k}), "the shape of y");
    check_terms(y, k + 1, rest...);
  }

  // Left to right, as Eigen and xtensor evaluate `x1*a1 + x2*a2 + ...`, so backends agree.
  static Scalar sum_terms(std::size_t i, Scalar a, const tensor_type& x) { return a * x.data[i]; }
  static Scalar sum_terms(std::size_t i, Scalar a, const tensor_type& x, Scalar b, const tensor_type& x2) {
    return a * x.data[i] + b * x2.data[i];
  }
  static Scalar sum_terms(std::size_t i, Scalar a, const tensor_type& x, Scalar b, const tensor_type& x2, Scalar c,
                          const tensor_type& x3) {
    return a * x.data[i] + b * x2.data[i] + c * x3.data[i];
  }
  static Scalar sum_terms(std::size_t i, Scalar a, const tensor_type& x, Scalar b, const tensor_type& x2, Scalar c,
                          const tensor_type& x3, Scalar d, const tensor_type& x4) {
    return a * x.data[i] + b * x2.data[i] + c * x3.data[i] + d * x4.data[i];
  }
};

}  // namespace diffusion
