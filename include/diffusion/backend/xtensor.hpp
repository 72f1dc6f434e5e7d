// SPDX-License-Identifier: MIT
// The xtensor backend: tensor_traits for row-major xt::xtensor, xt::xarray and xtensor_buffer (an
// xt::xtensor_adaptor that either owns its elements or borrows a user's buffer), and a backend whose
// linear combinations and clamp are each one `xt::noalias(y) = expr` assignment. This is one of the
// two places in the library that may include xtensor (DESIGN.md, Layers); it does not include Eigen.
//
// Sampling a user's buffer in place. A sampler makes its scratch tensors with make_like(x), which
// must return the type of x. An adaptor from `xt::adapt(ptr, n, xt::no_ownership(), shape)` cannot
// own memory, so it cannot be that type. xtensor_buffer<S, Rank> can: it is the adaptor
// `xt::adapt_smart_ptr` builds, over a pointer plus a std::shared_ptr<void> owner. make_like gives
// it an owning allocation; borrow_xtensor(ptr, shape) or borrow_xtensor(adaptor) gives it the user's
// pointer and an empty owner, with no copy and no allocation. A copy of an xtensor_buffer is another
// handle to the same elements (as a copy of any xtensor adaptor over a raw buffer is), so
// `sample(sampler, model, be, borrow_xtensor(ptr, shape), noise)` takes x by value and still writes
// every step into the user's buffer, which holds x_0 at the end.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xbuffer_adaptor.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xtensor.hpp>

#include "../core/errors.hpp"
#include "../core/noise.hpp"
#include "../core/tensor.hpp"

namespace diffusion {

/// A row-major tensor of rank `Rank` over elements held by a std::shared_ptr<void> owner: either
/// its own allocation (from make_like) or a user's buffer with an empty owner (from borrow_xtensor).
/// It is the type `xt::adapt_smart_ptr(p, {d0, ..., dN-1}, std::shared_ptr<void>(...))` returns for
/// a pointer prvalue p (e.g. vector.data()) under the default row-major layout.
///
/// Copies and assignments from another xtensor_buffer rebind the handle, they do not copy elements
/// (as for every xtensor adaptor over a raw buffer); assigning an expression writes elements.
template <class Scalar, std::size_t Rank>
using xtensor_buffer =
    xt::xtensor_adaptor<xt::xbuffer_adaptor<Scalar*, xt::smart_ownership, std::shared_ptr<void>>, Rank,
                        xt::layout_type::row_major>;

namespace detail {

template <class Shape>
std::string xtensor_shape_string(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s.append(i ? ", " : "").append(std::to_string(shape[i]));
  return s + "]";
}

/// What every row-major, contiguous xtensor type shares: the elements are data()[0, size()), and
/// dimension 0 is the batch (a rank-0 xarray is one sample, as a rank-0 reference_tensor is).
template <class T>
struct xtensor_traits_base {
  using scalar_type = typename T::value_type;
  static std::size_t size(const T& x) { return x.size(); }
  static std::size_t batch_size(const T& x) { return x.dimension() == 0 ? 1 : x.shape()[0]; }
  static bool same_shape(const T& a, const T& b) { return std::ranges::equal(a.shape(), b.shape()); }
  static std::span<scalar_type> elements(T& x) { return {x.data(), x.size()}; }
  static std::span<const scalar_type> elements(const T& x) { return {x.data(), x.size()}; }
  static std::string shape_string(const T& x) { return xtensor_shape_string(x.shape()); }
};

}  // namespace detail

/// Row-major xt::xtensor (xt::xtensor<S, N> with the default layout): dimension 0 is the batch and
/// each sample's elements are contiguous. Column-major and dynamic layouts are deliberately not
/// supported: there the batch index would not be the slowest-moving one.
template <class EC, std::size_t N>
  requires(N >= 1)
struct tensor_traits<xt::xtensor_container<EC, N, xt::layout_type::row_major, xt::xtensor_expression_tag>>
    : detail::xtensor_traits_base<xt::xtensor_container<EC, N, xt::layout_type::row_major, xt::xtensor_expression_tag>> {
  using T = xt::xtensor_container<EC, N, xt::layout_type::row_major, xt::xtensor_expression_tag>;
  static T make_like(const T& x) { return T(x.shape()); }
};

/// Row-major xt::xarray (xt::xarray<S> with the default layout).
template <class EC, class SC>
struct tensor_traits<xt::xarray_container<EC, xt::layout_type::row_major, SC, xt::xtensor_expression_tag>>
    : detail::xtensor_traits_base<xt::xarray_container<EC, xt::layout_type::row_major, SC, xt::xtensor_expression_tag>> {
  using T = xt::xarray_container<EC, xt::layout_type::row_major, SC, xt::xtensor_expression_tag>;
  static T make_like(const T& x) { return T(x.shape()); }
};

/// xtensor_buffer: make_like allocates a new buffer that the result owns, whatever x's owner.
template <class Scalar, std::size_t Rank>
  requires(Rank >= 1)
struct tensor_traits<xtensor_buffer<Scalar, Rank>> : detail::xtensor_traits_base<xtensor_buffer<Scalar, Rank>> {
  using T = xtensor_buffer<Scalar, Rank>;
  static T make_like(const T& x) {
    const std::size_t n = x.size();
    std::shared_ptr<Scalar[]> memory = std::make_shared_for_overwrite<Scalar[]>(n);
    Scalar* data = memory.get();
    return T(typename T::storage_type(data, n, std::shared_ptr<void>(std::move(memory))), x.shape());
  }
};

/// Wraps the user's buffer data[0, product(shape)) as an xtensor_buffer without copying it: the
/// result (and every copy of it) reads and writes that buffer, which must outlive them.
template <class Scalar, std::size_t Rank>
  requires(Rank >= 1)
xtensor_buffer<Scalar, Rank> borrow_xtensor(Scalar* data, const std::array<std::size_t, Rank>& shape) {
  std::size_t n = 1;
  for (std::size_t e : shape) n *= e;
  using T = xtensor_buffer<Scalar, Rank>;
  // An empty owner: shared_ptr<void>{} holds no control block, so it neither allocates nor frees.
  return T(typename T::storage_type(data, n, std::shared_ptr<void>{}), shape);
}

/// Wraps the elements of a row-major xtensor container, adaptor or view of static rank (e.g. the
/// result of `xt::adapt(ptr, n, xt::no_ownership(), shape)`, an xt::xtensor, or rows of one,
/// `xt::view(a, xt::range(2, 4), xt::all())`) as an xtensor_buffer over the same memory, without
/// copying. `e` must outlive the result, and must not be resized meanwhile.
/// \throws std::invalid_argument if e's elements are not contiguous in row-major order (a view
///         of some columns, a strided view): a buffer cannot describe them.
template <class E>
  requires(!std::is_const_v<E> && E::static_layout == xt::layout_type::row_major &&
           requires(E& e) {
             { e.data() } -> std::convertible_to<typename E::value_type*>;
             e.data_offset();
             e.strides();
             std::tuple_size<typename E::shape_type>::value;
           })
auto borrow_xtensor(E& e) {
  constexpr std::size_t rank = std::tuple_size<typename E::shape_type>::value;
  std::array<std::size_t, rank> shape;
  std::copy(e.shape().begin(), e.shape().end(), shape.begin());
  // The strides of a contiguous row-major block of this shape (a dimension of extent 1 may have any).
  std::size_t stride = 1;
  for (std::size_t r = rank; r-- > 0;) {
    if (shape[r] > 1 && static_cast<std::size_t>(e.strides()[r]) != stride) [[unlikely]]
      detail::throw_invalid_parts("borrow_xtensor", {"strides()[", r, "]"}, static_cast<long long>(e.strides()[r]),
                                  {stride, " (the elements must be contiguous in row-major order)"});
    stride *= shape[r];
  }
  // data() of a view is its underlying container's; its first element is data_offset() further.
  return borrow_xtensor<typename E::value_type, rank>(e.data() + e.data_offset(), shape);
}

/// The xtensor backend over `Tensor`, one of xt::xtensor<S, N>, xt::xarray<S> or
/// xtensor_buffer<S, N> (row-major; see the aliases below).
///
/// lincomb and clamp are one `xt::noalias(y) = expr` assignment each: one fused pass over memory
/// with no temporaries. noalias skips xtensor's overlap check (which would evaluate into a
/// temporary); that is sound because every operation is elementwise, so y may alias any input.
/// lincomb_per_sample is a plain loop (see there). No operation allocates. Sums are formed left
/// to right, `x1*a1 + x2*a2 + ...`, exactly as the reference backend forms them, so the two agree
/// bit for bit unless the compiler contracts a*b + c into a fused multiply-add. Single-threaded.
///
/// \tparam Tensor  the tensor type; its scalar is float or double.
template <class Tensor>
class basic_xtensor_backend {
  static_assert(tensor<Tensor>,
                "diffusion::basic_xtensor_backend: Tensor must be a row-major xt::xtensor<S, N> (N >= 1), "
                "xt::xarray<S> or diffusion::xtensor_buffer<S, N> (is XTENSOR_DEFAULT_LAYOUT column-major?)");
  static_assert(std::is_floating_point_v<scalar_of<Tensor>>,
                "diffusion::basic_xtensor_backend: the scalar type must be float or double");

 public:
  using tensor_type = Tensor;
  using scalar_type = scalar_of<Tensor>;

  /// y = a1*x1, elementwise. All tensors must have y's shape.
  void lincomb(tensor_type& y, scalar_type a1, const tensor_type& x1) const {
    check_terms(y, x1);
    assign(y, [&](const auto& v1) { return v1 * a1; }, x1);
  }
  /// y = a1*x1 + a2*x2, in one pass; y may alias x1 or x2.
  void lincomb(tensor_type& y, scalar_type a1, const tensor_type& x1, scalar_type a2, const tensor_type& x2) const {
    check_terms(y, x1, x2);
    assign(y, [&](const auto& v1, const auto& v2) { return v1 * a1 + v2 * a2; }, x1, x2);
  }
  /// y = a1*x1 + a2*x2 + a3*x3, in one pass; y may alias any x_k.
  void lincomb(tensor_type& y, scalar_type a1, const tensor_type& x1, scalar_type a2, const tensor_type& x2,
               scalar_type a3, const tensor_type& x3) const {
    check_terms(y, x1, x2, x3);
    assign(y, [&](const auto& v1, const auto& v2, const auto& v3) { return v1 * a1 + v2 * a2 + v3 * a3; }, x1, x2,
           x3);
  }
  /// y = a1*x1 + a2*x2 + a3*x3 + a4*x4, in one pass; y may alias any x_k.
  void lincomb(tensor_type& y, scalar_type a1, const tensor_type& x1, scalar_type a2, const tensor_type& x2,
               scalar_type a3, const tensor_type& x3, scalar_type a4, const tensor_type& x4) const {
    check_terms(y, x1, x2, x3, x4);
    assign(
        y,
        [&](const auto& v1, const auto& v2, const auto& v3, const auto& v4) {
          return v1 * a1 + v2 * a2 + v3 * a3 + v4 * a4;
        },
        x1, x2, x3, x4);
  }

  /// y[s, ...] = a[s]*x1[s, ...] + b[s]*x2[s, ...]: one coefficient pair per batch sample s, in one
  /// pass over memory. y may alias x1 or x2.
  ///
  /// A plain loop over each sample's contiguous elements rather than an xtensor assignment: the
  /// one-assignment form, `x1 * a + x2 * b` with a, b adapted as [B, 1] and broadcast over [B, D],
  /// allocates nothing but takes xtensor's stepper path and measured 7-30x slower than this loop
  /// (1M floats, D = 2 to 3072, -O2 and -O3 -march=native, with xsimd), and one assignment per
  /// sample is slower still for small D. The compiler vectorizes the inner loop.
  void lincomb_per_sample(tensor_type& y, std::span<const scalar_type> a, const tensor_type& x1,
                          std::span<const scalar_type> b, const tensor_type& x2) const {
    constexpr std::string_view where = "xtensor_backend::lincomb_per_sample";
    check_shape(where, "x1", y, x1);
    check_shape(where, "x2", y, x2);
    const std::size_t batch = traits::batch_size(y);
    detail::check_coefficient_count(where, "a.size()", a.size(), batch);
    detail::check_coefficient_count(where, "b.size()", b.size(), batch);
    if (batch == 0) return;

    const std::size_t d = traits::size(y) / batch;
    scalar_type* out = y.data();
    const scalar_type* in1 = x1.data();
    const scalar_type* in2 = x2.data();
    for (std::size_t s = 0; s < batch; ++s) {
      const scalar_type as = a[s], bs = b[s];
      for (std::size_t j = s * d; j < (s + 1) * d; ++j) out[j] = in1[j] * as + in2[j] * bs;
    }
  }

  /// y = min(max(x, lo), hi), elementwise; NaN stays NaN. y may alias x. Requires lo <= hi (the
  /// backends would disagree otherwise): throws std::invalid_argument if not, or if a bound is NaN.
  void clamp(tensor_type& y, const tensor_type& x, scalar_type lo, scalar_type hi) const {
    constexpr std::string_view where = "xtensor_backend::clamp";
    check_shape(where, "x", y, x);
    detail::check_clamp_bounds(where, lo, hi);
    // clip is select(x < lo, lo, select(hi < x, hi, x)): equal to min(max(x, lo), hi) for lo <= hi,
    // NaN included.
    assign(y, [&](const auto& v) { return xt::clip(v, lo, hi); }, x);
  }

  /// Fills z with one draw of standard normal noise from `noise`, consuming exactly one draw
  /// (noise.next_draw() once, after the draw was served: a request the source refuses consumes
  /// none) and writing all elements with fill_normal_range: the bits equal
  /// noise.fill_normal(elements(z), batch_size(z)). (A source without the range interface is filled
  /// by diffusion::draw_normal's generic path.)
  template <class Noise>
    requires detail::range_normal_source<Noise, scalar_type>
  void fill_normal(tensor_type& z, Noise& noise) const {
    const std::span<scalar_type> out = traits::elements(z);
    std::as_const(noise).fill_normal_range(out, traits::batch_size(z), noise.draw_index(), 0, out.size());
    noise.next_draw();
  }

 private:
  using traits = tensor_traits<tensor_type>;

  // xt::xarray's assignment builds the broadcast shape in a small vector that moves to the heap
  // above rank 4, so on a video tensor [B, C, T, H, W] every step would allocate: its operations
  // are evaluated over flat rank-1 adaptors of the same memory instead (elementwise, so the values
  // are the same). Static-rank tensors are assigned as they are.
  static constexpr bool dynamic_rank = !requires { std::tuple_size<typename tensor_type::shape_type>::value; };

  template <class P>
  static auto flat(P* data, std::size_t n) {
    return xt::adapt(data, n, xt::no_ownership(), std::array<std::size_t, 1>{n});
  }

  // y = expr(x...), one noalias assignment (sound: every operation here is elementwise).
  template <class F, class... X>
  static void assign(tensor_type& y, F&& expr, const X&... x) {
    if constexpr (dynamic_rank) {
      const std::size_t n = traits::size(y);
      auto yv = flat(y.data(), n);
      xt::noalias(yv) = expr(flat(x.data(), n)...);
    } else {
      xt::noalias(y) = expr(x...);
    }
  }

  template <class... X>
  static void check_terms(const tensor_type& y, const X&... x) {
    int k = 0;
    (check_term(y, ++k, x), ...);
  }
  static void check_term(const tensor_type& y, int k, const tensor_type& x) {
    // xtensor would broadcast (or resize y to) a mismatched shape instead of failing.
    if (!traits::same_shape(y, x)) [[unlikely]]
      detail::throw_shape_mismatch(x, y, "xtensor_backend::lincomb", detail::concat({"x", k}), "the shape of y");
  }

  static void check_shape(std::string_view where, std::string_view parameter, const tensor_type& y,
                          const tensor_type& x) {
    if (!traits::same_shape(y, x)) [[unlikely]]
      detail::throw_shape_mismatch(x, y, where, parameter, "the shape of y");
  }
};

/// The xtensor backend over xt::xtensor<Scalar, Rank> (row-major, owning).
template <class Scalar, std::size_t Rank>
using xtensor_backend = basic_xtensor_backend<xt::xtensor<Scalar, Rank>>;

/// The xtensor backend over xt::xarray<Scalar> (row-major, dynamic rank).
template <class Scalar>
using xarray_backend = basic_xtensor_backend<xt::xarray<Scalar>>;

/// The xtensor backend over xtensor_buffer<Scalar, Rank>: samples a borrowed user buffer in place.
template <class Scalar, std::size_t Rank>
using xtensor_buffer_backend = basic_xtensor_backend<xtensor_buffer<Scalar, Rank>>;

}  // namespace diffusion
