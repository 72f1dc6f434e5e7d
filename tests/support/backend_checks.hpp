// SPDX-License-Identifier: MIT
// What the tests of the Eigen and xtensor backends share: the reference backend as their oracle
// (the expected result of every backend operation, with the magnitude that bounds its rounding),
// the comparisons in units in the last place, and the tensor_traits checks.
//
// Expected agreement: every operation forms the same products and sums in the same order as the
// reference loops, so in a build without fused multiply-add contraction the results are
// bit-identical; where the compiler may contract a*b + c into an FMA (__FMA__ defined, e.g.
// -march=native) they differ by rounding only, and the bound is 4 eps * sum_k |a_k x_k|.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <type_traits>
#include <vector>

#include <diffusion/backend/reference.hpp>
#include <diffusion/core/tensor.hpp>

namespace diffusion::test {

/// Distance in units in the last place; 0 for two NaNs.
template <class S>
std::uint64_t ulp_distance(S a, S b) {
  if (std::isnan(a) && std::isnan(b)) return 0;
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<std::uint64_t>::max();
  using I = std::conditional_t<sizeof(S) == 4, std::int32_t, std::int64_t>;
  // Map the sign-magnitude bit patterns onto a monotone integer line.
  auto ordered = [](S x) {
    const I i = std::bit_cast<I>(x);
    return i < 0 ? static_cast<std::int64_t>(std::numeric_limits<I>::min()) - static_cast<std::int64_t>(i)
                 : static_cast<std::int64_t>(i);
  };
  const std::int64_t d = ordered(a) - ordered(b);
  return static_cast<std::uint64_t>(d < 0 ? -d : d);
}

/// Whether this build may contract a*b + c into a fused multiply-add, which rounds once instead of
/// twice (GCC contracts by default where the target has FMA).
inline constexpr bool may_contract_fma =
#if defined(__FMA__) || defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
    true;
#else
    false;
#endif

struct ulp_comparison {
  std::uint64_t max_ulp = 0;
  std::size_t differing = 0;
};

template <class S>
ulp_comparison compare_ulps(std::span<const S> got, std::span<const S> want) {
  REQUIRE(got.size() == want.size());
  ulp_comparison c;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const std::uint64_t d = ulp_distance(got[i], want[i]);
    c.max_ulp = std::max(c.max_ulp, d);
    c.differing += d != 0;
  }
  return c;
}

/// A backend's result against the reference result: bit-identical unless FMA contraction is
/// possible; in any case |got - want| <= 4 eps * scale elementwise, where scale = sum_k |a_k x_k| is
/// the magnitude of the terms (the rounding of a sum of up to 4 terms is bounded by that, while a
/// bound in ULP of the result would not hold where the terms cancel).
template <class S>
void require_matches_reference(std::span<const S> got, std::span<const S> want, std::span<const S> scale) {
  REQUIRE(got.size() == want.size());
  REQUIRE(scale.size() == want.size());
  const ulp_comparison c = compare_ulps(got, want);
  double worst = 0;  // largest |got - want| / (eps * scale)
  bool within = true;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i]) && std::isnan(got[i])) continue;
    const double err = std::abs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
    const double bound = 4.0 * std::numeric_limits<S>::epsilon() * static_cast<double>(scale[i]);
    within = within && err <= bound;
    if (err > 0) worst = std::max(worst, err / (std::numeric_limits<S>::epsilon() * static_cast<double>(scale[i])));
  }
  INFO("elements differing " << c.differing << " of " << got.size() << ", max ULP distance " << c.max_ulp
                             << ", max error / (eps * sum|a x|) " << worst);
  REQUIRE(within);
  if constexpr (!may_contract_fma) REQUIRE(c.differing == 0);
}

template <class S>
void require_identical(std::span<const S> got, std::span<const S> want) {
  const ulp_comparison c = compare_ulps(got, want);
  INFO("max ULP distance " << c.max_ulp << ", elements differing " << c.differing << " of " << got.size());
  REQUIRE(c.differing == 0);
}

/// Uniform values in [-4, 4) from mt19937(seed), reproducible across standard libraries (no std::
/// distribution).
template <class S>
void fill_uniform(std::span<S> out, std::uint32_t seed) {
  std::mt19937 gen(seed);
  for (S& v : out) v = static_cast<S>((gen() >> 8) * 0x1p-24 * 8.0 - 4.0);
}

/// The expected result of each backend operation on the inputs x1..x4 (as reference tensors),
/// computed by the reference backend, with the magnitude sum_k |a_k x_k| that bounds its rounding:
///   lincomb with 1 to 4 terms (want1..want4), lincomb_per_sample (want_ps) and clamp (want_c).
/// The coefficients are fixed here; a test calls the backend under test with the same ones.
template <class S>
struct reference_oracle {
  static constexpr S a1 = S(0.9995), a2 = S(-0.0316), a3 = S(1.7), a4 = S(-0.3333);
  static constexpr S lo = S(-1.5), hi = S(2.25);  // clamp's bounds
  std::vector<S> pa, pb;                          // lincomb_per_sample's coefficients, one a sample
  reference_tensor<S> want1, want2, want3, want4, want_ps, want_c;
  reference_tensor<S> scale1, scale2, scale3, scale4, scale_ps, scale_c;

  reference_oracle(const reference_tensor<S>& r1, const reference_tensor<S>& r2, const reference_tensor<S>& r3,
                   const reference_tensor<S>& r4) {
    const std::size_t batch = diffusion::batch_size(r1);
    pa.resize(batch);
    pb.resize(batch);
    std::vector<S> qa(batch), qb(batch);
    for (std::size_t s = 0; s < batch; ++s) {
      pa[s] = S(1) / std::sqrt(S(s + 2));
      pb[s] = -S(s) / S(7) + S(0.1);
      qa[s] = std::abs(pa[s]);
      qb[s] = std::abs(pb[s]);
    }

    // |x| and |a|, to form the magnitude of the terms, sum_k |a_k x_k|, that bounds the rounding.
    auto absolute = [](reference_tensor<S> r) {
      for (auto& v : r.data) v = std::abs(v);
      return r;
    };
    const auto q1 = absolute(r1), q2 = absolute(r2), q3 = absolute(r3), q4 = absolute(r4);
    const reference_backend<S> ref;
    scale1 = diffusion::make_like(r1), scale2 = scale1, scale3 = scale1, scale4 = scale1, scale_ps = scale1;
    ref.lincomb(scale1, std::abs(a1), q1);
    ref.lincomb(scale2, std::abs(a1), q1, std::abs(a2), q2);
    ref.lincomb(scale3, std::abs(a1), q1, std::abs(a2), q2, std::abs(a3), q3);
    ref.lincomb(scale4, std::abs(a1), q1, std::abs(a2), q2, std::abs(a3), q3, std::abs(a4), q4);
    ref.lincomb_per_sample(scale_ps, qa, q1, qb, q2);
    scale_c = reference_tensor<S>(r1.shape);  // clamp does no arithmetic: exact

    want1 = diffusion::make_like(r1), want2 = want1, want3 = want1, want4 = want1, want_ps = want1, want_c = want1;
    ref.lincomb(want1, a1, r1);
    ref.lincomb(want2, a1, r1, a2, r2);
    ref.lincomb(want3, a1, r1, a2, r2, a3, r3);
    ref.lincomb(want4, a1, r1, a2, r2, a3, r3, a4, r4);
    ref.lincomb_per_sample(want_ps, pa, r1, pb, r2);
    ref.clamp(want_c, r1, lo, hi);
  }
};

/// lincomb sums its terms left to right, as the reference does: (big + (-big)) + 1 = 1 but
/// (big + 1) + (-big) = 0 in float, so the association is observable. `ones` is a [3, 5] float
/// tensor of ones.
template <class Backend, class T>
void check_sums_left_to_right(const Backend& be, const T& ones) {
  const float big = 0x1p25f;
  auto y = diffusion::make_like(ones);
  be.lincomb(y, big, ones, -big, ones, 1.0f, ones);
  CHECK(y(2, 4) == 1.0f);
  be.lincomb(y, big, ones, 1.0f, ones, -big, ones);
  CHECK(y(2, 4) == 0.0f);
  be.lincomb(y, big, ones, 1.0f, ones, -big, ones, 1.0f, ones);
  CHECK(y(0, 0) == 1.0f);
}

/// clamp keeps NaN and maps infinities to the bounds. `x` is a [1, 19] float tensor of 0.5; this
/// sets NaN at elements 1 and 18 (19 elements: the vectorised path and the scalar tail both see
/// one), +inf at 2, -inf at 3 and 7 at 17, then clamps to [-1, 1].
template <class Backend, class T>
void check_clamp_nan_and_infinities(const Backend& be, T& x) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  x(0, 1) = nan;
  x(0, 18) = nan;
  x(0, 2) = inf;
  x(0, 3) = -inf;
  x(0, 17) = 7.0f;
  auto y = diffusion::make_like(x);
  be.clamp(y, x, -1.0f, 1.0f);
  CHECK(std::isnan(y(0, 1)));
  CHECK(std::isnan(y(0, 18)));
  CHECK(y(0, 2) == 1.0f);
  CHECK(y(0, 3) == -1.0f);
  CHECK(y(0, 17) == 1.0f);
  CHECK(y(0, 0) == 0.5f);
}

/// The tensor_traits of a row-major tensor type T of doubles whose dimension 0 is the batch, on
/// tensors make(d0, d1, d2) of rank 3: sizes, shape string, element order, elements() and make_like.
template <class T, class Make>
void check_batch_major_traits(Make make) {
  T x = make(2, 3, 4);
  for (std::size_t i = 0; i < 24; ++i) x.data()[i] = static_cast<double>(i);
  CHECK(diffusion::size(x) == 24);
  CHECK(diffusion::batch_size(x) == 2);
  CHECK(diffusion::sample_size(x) == 12);
  CHECK(diffusion::tensor_traits<T>::shape_string(x) == "[2, 3, 4]");
  // Sample 1 is elements [12, 24): x(1, i, j) is element 12 + 4 i + j.
  CHECK(x(1, 2, 3) == 23.0);
  CHECK(x(1, 0, 1) == 13.0);

  const auto e = diffusion::elements(x);
  CHECK(e.data() == x.data());
  CHECK(e.size() == 24);
  const T& cx = x;
  const auto ce = diffusion::elements(cx);
  static_assert(std::is_same_v<decltype(ce), const std::span<const double>>);
  CHECK(ce[5] == 5.0);

  const T y = diffusion::make_like(x);
  CHECK(diffusion::same_shape(x, y));
  CHECK_FALSE(diffusion::same_shape(x, make(2, 4, 3)));
  CHECK_FALSE(diffusion::same_shape(x, make(3, 3, 4)));

  const T empty = make(0, 5, 1);
  CHECK(diffusion::batch_size(empty) == 0);
  CHECK(diffusion::size(empty) == 0);
  CHECK(diffusion::sample_size(empty) == 0);
}

}  // namespace diffusion::test
