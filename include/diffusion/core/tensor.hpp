// SPDX-License-Identifier: MIT
// What the library asks of a tensor type and of a backend.
//
// The split follows Boost.Odeint's state/algebra separation: `tensor_traits<T>` knows memory and
// shape (size, batch, elements), a backend object knows how to compute on it (fused linear
// combinations on a device). Backend headers specialize `tensor_traits`; nothing here names a
// tensor library.
#pragma once

#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <type_traits>

#include "errors.hpp"

namespace diffusion {

/// Customization point: specialize for a tensor type. Dimension 0 is the batch dimension and the
/// elements of one sample are contiguous (row-major), so sample b occupies
/// elements()[b * sample_size, (b + 1) * sample_size).
///
/// Required static members:
///   using scalar_type;
///   std::size_t size(const T&);          number of elements
///   std::size_t batch_size(const T&);    extent of dimension 0
///   bool same_shape(const T&, const T&);
///   T make_like(const T&);               same shape, contents unspecified
///   std::span<scalar_type> elements(T&); std::span<const scalar_type> elements(const T&);
///   std::string shape_string(const T&);  for error messages, e.g. "[64, 2]"
template <class T>
struct tensor_traits;

template <class T>
concept tensor = requires(T& y, const T& x) {
  typename tensor_traits<T>::scalar_type;
  { tensor_traits<T>::size(x) } -> std::convertible_to<std::size_t>;
  { tensor_traits<T>::batch_size(x) } -> std::convertible_to<std::size_t>;
  { tensor_traits<T>::same_shape(x, x) } -> std::convertible_to<bool>;
  { tensor_traits<T>::make_like(x) } -> std::same_as<T>;
  { tensor_traits<T>::elements(y) } -> std::same_as<std::span<typename tensor_traits<T>::scalar_type>>;
  { tensor_traits<T>::elements(x) } -> std::same_as<std::span<const typename tensor_traits<T>::scalar_type>>;
  { tensor_traits<T>::shape_string(x) } -> std::convertible_to<std::string>;
};

template <tensor T>
using scalar_of = typename tensor_traits<T>::scalar_type;

template <tensor T>
std::size_t size(const T& x) { return tensor_traits<T>::size(x); }
template <tensor T>
std::size_t batch_size(const T& x) { return tensor_traits<T>::batch_size(x); }
/// Elements per batch sample.
template <tensor T>
std::size_t sample_size(const T& x) {
  const std::size_t b = batch_size(x);
  return b == 0 ? 0 : size(x) / b;
}
template <tensor T>
T make_like(const T& x) { return tensor_traits<T>::make_like(x); }
template <tensor T>
auto elements(T& x) { return tensor_traits<T>::elements(x); }
template <tensor T>
auto elements(const T& x) { return tensor_traits<T>::elements(x); }
template <tensor T>
bool same_shape(const T& a, const T& b) { return tensor_traits<T>::same_shape(a, b); }

namespace detail {
/// "<where>: <parameter> = a tensor of shape [..] is invalid; valid range: shape [..] (<whose>)",
/// with a's shape first and b's, the expected one, second.
template <tensor T>
[[noreturn, gnu::cold, gnu::noinline]] void throw_shape_mismatch(const T& a, const T& b, std::string_view where,
                                                                 std::string_view parameter,
                                                                 std::string_view whose = "the shape of x") {
  const std::string shape_a = tensor_traits<T>::shape_string(a), shape_b = tensor_traits<T>::shape_string(b);
  throw_invalid_parts(where, {parameter}, concat({"a tensor of shape ", shape_a}),
                      {"shape ", shape_b, " (", whose, ")"});
}
}  // namespace detail

/// Throws std::invalid_argument unless `a` and `b` have the same shape.
template <tensor T>
void require_same_shape(const T& a, const T& b, std::string_view where, std::string_view parameter) {
  if (!same_shape(a, b)) [[unlikely]]
    detail::throw_shape_mismatch(a, b, where, parameter);
}

/// A backend: the compute half of the odeint algebra/operations split.
///
/// Semantic requirements the compiler cannot check:
/// - lincomb(y, a1, x1, ..., an, xn) sets y = a1*x1 + ... + an*xn elementwise in one pass over
///   memory, allocates nothing, and y may alias any of the x's;
/// - lincomb_per_sample(y, a, x1, b, x2) sets y[s, ...] = a[s]*x1[s, ...] + b[s]*x2[s, ...] with
///   one coefficient per batch sample s (a.size() == b.size() == batch_size);
/// - clamp(y, x, lo, hi) sets y = min(max(x, lo), hi); y may alias x; lo > hi (or a NaN bound)
///   throws std::invalid_argument;
/// - results are identical whatever the number of threads the backend uses.
template <class B>
concept tensor_backend =
    requires(B& be, typename B::tensor_type& y, const typename B::tensor_type& x, typename B::scalar_type a,
             std::span<const typename B::scalar_type> per_sample) {
      typename B::tensor_type;
      typename B::scalar_type;
      requires tensor<typename B::tensor_type>;
      requires std::same_as<typename B::scalar_type, scalar_of<typename B::tensor_type>>;
      be.lincomb(y, a, x);
      be.lincomb(y, a, x, a, x);
      be.lincomb(y, a, x, a, x, a, x);
      be.lincomb(y, a, x, a, x, a, x, a, x);
      be.lincomb_per_sample(y, per_sample, x, per_sample, x);
      be.clamp(y, x, a, a);
    };

}  // namespace diffusion
