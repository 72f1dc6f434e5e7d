// SPDX-License-Identifier: MIT
// From 32-bit random words to uniforms and standard normals (Box-Muller), in the tensor's scalar type.
//
// Every function here is a pure function of its words, and the block functions are plain loops of
// arithmetic over arrays, so that a later SIMD pass can vectorise them without -ffast-math and the
// value of an element never depends on which block or thread produced it.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <span>
#include <type_traits>

// The transform's helpers are forced inline: a plain -O2 build otherwise keeps them as calls, and a
// loop that calls them does not vectorise.
#if defined(__GNUC__) || defined(__clang__)
#define DIFFUSION_ALWAYS_INLINE [[gnu::always_inline]] inline
#elif defined(_MSC_VER)
#define DIFFUSION_ALWAYS_INLINE __forceinline
#else
#define DIFFUSION_ALWAYS_INLINE inline
#endif

// g++ tunes AVX-512 targets to prefer 256-bit vectors (a frequency trade-off for short bursts of
// SIMD in scalar code). The normal transform is long, dense arithmetic, and 512-bit vectors make it
// ~30% faster on the reference machine (PERFORMANCE.md); the hint changes no value (the same
// operations per element). Only g++ knows it as a target attribute.
//
// A build for the x86-64 baseline (SSE2: plain -O2) gets the transform twice instead, for SSE2 and
// for AVX2, and the loader picks the one the CPU runs (g++'s target_clones, a glibc ifunc): 0.84
// instead of 1.63 ns per normal on the reference machine. Both clones give the bits of the scalar
// code: AVX2 does not imply FMA, so the AVX2 clone contracts no a * b + c the default code does
// not, and a build with FMA (-mfma) makes madd call std::fma in every clone alike. Defining
// DIFFUSION_NO_RUNTIME_DISPATCH before the first include turns this (and Philox's, philox.hpp) off.
// Not under ThreadSanitizer: it instruments the ifunc's resolver, which the dynamic loader runs
// before the sanitizer's runtime is up, and the program dies before main.
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#define DIFFUSION_WIDE_SIMD [[gnu::target("prefer-vector-width=512")]]
#elif defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) && defined(__GLIBC__) && \
    !defined(__AVX2__) && !defined(DIFFUSION_NO_RUNTIME_DISPATCH) && !defined(__SANITIZE_THREAD__)
#define DIFFUSION_WIDE_SIMD [[gnu::target_clones("default", "avx2")]]
#else
#define DIFFUSION_WIDE_SIMD
#endif

namespace diffusion {

namespace detail {

/// How many bits of a 32-bit word a uniform in S uses: all 32 where S holds them exactly (double),
/// else the top digits(S) bits (24 for float), so that the uniform is exact in S and never rounds
/// up to 1.
template <std::floating_point S>
inline constexpr int uniform_bits = std::numeric_limits<S>::digits < 32 ? std::numeric_limits<S>::digits : 32;

/// 2^-uniform_bits<S>, the spacing of the uniform grid.
template <std::floating_point S>
inline constexpr S uniform_step = S(1) / static_cast<S>(std::uint64_t{1} << uniform_bits<S>);

/// The top uniform_bits<S> bits of `w` as an integer below 2^uniform_bits<S>.
template <std::floating_point S>
constexpr std::uint32_t uniform_mantissa(std::uint32_t w) noexcept {
  return w >> (32 - uniform_bits<S>);
}

}  // namespace detail

/// A uniform in [0, 1) from one 32-bit word: m * 2^-b with m the top b bits of w (b = 32 for double,
/// 24 for float). Exact in S, so float and double agree up to the float grid, and the result is
/// strictly below 1.
template <std::floating_point S>
constexpr S uniform_from_word(std::uint32_t w) noexcept {
  return static_cast<S>(detail::uniform_mantissa<S>(w)) * detail::uniform_step<S>;
}

/// A uniform in (0, 1] from one 32-bit word: (m + 1) * 2^-b, with m and b as in uniform_from_word.
/// Exact in S; never 0, so log() in the Box-Muller transform stays finite. The smallest value is
/// 2^-32 for double (largest |z| = sqrt(64 ln 2) ~ 6.66) and 2^-24 for float (~ 5.77).
template <std::floating_point S>
constexpr S uniform_open_closed_from_word(std::uint32_t w) noexcept {
  return (static_cast<S>(detail::uniform_mantissa<S>(w)) + S(1)) * detail::uniform_step<S>;
}

/// Two independent standard normals.
template <std::floating_point S>
struct normal_pair {
  S first;
  S second;
};

namespace detail {

// The elementary functions of the Box-Muller transform, written as plain arithmetic on one value so
// that a loop over arrays of them vectorises without -ffast-math (std::log, std::cos and std::sin
// are library calls, and g++ does not vectorise std::sqrt while errno is kept), and so that a value
// is the same bit for bit whether it is computed in a vector loop, in scalar code or folded at
// compile time: every multiply-add is written as madd, never left to the compiler's contraction.
// Each takes only the arguments the transform gives it (documented ranges, not checked).

/// a * b + c, with one rounding (std::fma) where the target has a fast fused multiply-add and two
/// roundings elsewhere, so that a build never calls a slow software fma.
template <std::floating_point S>
DIFFUSION_ALWAYS_INLINE S madd(S a, S b, S c) noexcept {
#if defined(FP_FAST_FMAF) || defined(__FMA__) || defined(__ARM_FEATURE_FMA)
  constexpr bool fast_float = true;
#else
  constexpr bool fast_float = false;
#endif
#if defined(FP_FAST_FMA) || defined(__FMA__) || defined(__ARM_FEATURE_FMA)
  constexpr bool fast_double = true;
#else
  constexpr bool fast_double = false;
#endif
  if constexpr (std::same_as<S, float> ? fast_float : fast_double) {
    return std::fma(a, b, c);
  } else {
    // Two roundings, also where the compiler may contract a * b + c into one: clang does by
    // default, and folds the fused form at compile time while the target computes the unfused one
    // at run time (g++ defines FP_FAST_FMA wherever it would contract; clang defines it nowhere,
    // hence __FMA__ above).
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
    const S product = a * b;
    return product + c;
  }
}

/// The IEEE-754 binary layout of S.
template <std::floating_point S>
struct ieee_layout;
template <>
struct ieee_layout<float> {
  using bits = std::uint32_t;
  static constexpr int mantissa_bits = 23;
  static constexpr int exponent_bias = 127;
  static constexpr bits sqrt_half = 0x3f3504f3u;  // sqrt(1/2) rounded
  static constexpr bits rsqrt_magic = 0x5f375a86u;  // Lomont 2003, "Fast inverse square root"
};
template <>
struct ieee_layout<double> {
  using bits = std::uint64_t;
  static constexpr int mantissa_bits = 52;
  static constexpr int exponent_bias = 1023;
  static constexpr bits sqrt_half = 0x3fe6a09e667f3bcdull;
  static constexpr bits rsqrt_magic = 0x5fe6eb50c7b537a9ull;
};

/// x = 2^k (1 + f) with 1 + f in [sqrt(1/2), sqrt(2)), for positive normal x, read off the bits
/// (the reduction of Cephes' logf and fdlibm's e_log.c, without a branch).
template <std::floating_point S>
struct log_reduction {
  S k;
  S f;
};

template <std::floating_point S>
DIFFUSION_ALWAYS_INLINE log_reduction<S> reduce_log_argument(S x) noexcept {
  using L = ieee_layout<S>;
  using bits = typename L::bits;
  constexpr bits one = std::bit_cast<bits>(S(1));
  constexpr bits mantissa_mask = (bits{1} << L::mantissa_bits) - 1;
  // Offsetting the bits by 1 - sqrt(1/2) makes [sqrt(1/2), sqrt(2)) one binade.
  const bits shifted = std::bit_cast<bits>(x) + (one - L::sqrt_half);
  const auto exponent = static_cast<std::int32_t>(shifted >> L::mantissa_bits) - L::exponent_bias;
  const S m = std::bit_cast<S>((shifted & mantissa_mask) + L::sqrt_half);
  return {static_cast<S>(exponent), m - S(1)};
}

/// ln x for positive normal float x: Cephes' logf (Moshier 1989, "Methods and Programs for
/// Mathematical Functions", logf.c): ln(1 + f) = f - f^2/2 + f^3 P(f), P of degree 8, and
/// k ln 2 added in two parts; relative error about 1 ulp.
DIFFUSION_ALWAYS_INLINE float log_positive(float x) noexcept {
  const log_reduction<float> r = reduce_log_argument(x);
  const float f = r.f, z = f * f;
  float p = 7.0376836292e-2f;
  p = madd(p, f, -1.1514610310e-1f);
  p = madd(p, f, 1.1676998740e-1f);
  p = madd(p, f, -1.2420140846e-1f);
  p = madd(p, f, 1.4249322787e-1f);
  p = madd(p, f, -1.6668057665e-1f);
  p = madd(p, f, 2.0000714765e-1f);
  p = madd(p, f, -2.4999993993e-1f);
  p = madd(p, f, 3.3333331174e-1f);
  float y = (p * f) * z;
  y = madd(r.k, -2.12194440e-4f, y);  // ln 2 = 0.693359375 - 2.12194440e-4, the first part exact
  y = madd(z, -0.5f, y);
  return madd(r.k, 0.693359375f, f + y);
}

/// ln x for positive normal double x: fdlibm's e_log.c (Sun Microsystems 1993): with
/// s = f / (2 + f), ln(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)), R of degree 7, and k ln 2 in two
/// parts; error below 1 ulp.
DIFFUSION_ALWAYS_INLINE double log_positive(double x) noexcept {
  const log_reduction<double> r = reduce_log_argument(x);
  const double f = r.f;
  const double s = f / (2.0 + f), z = s * s, w = z * z;
  const double t2 =
      z * madd(w, madd(w, madd(w, 1.479819860511658591e-01, 1.818357216161805012e-01), 2.857142874366239149e-01),
               6.666666666666735130e-01);
  const double big_r = madd(w * w, madd(w, 1.531383769920937332e-01, 2.222219843214978396e-01),
                            madd(w, 3.999999999940941908e-01, t2));  // t1 + t2
  const double half_f = 0.5 * f;  // f^2/2 is formed inside each use, so no product is left to contraction
  const double tail = madd(s, madd(half_f, f, big_r), r.k * 1.90821492927058770002e-10);  // k ln2_lo
  return madd(r.k, 6.93147180369123816490e-01, -(madd(half_f, f, -tail) - f));           // k ln2_hi: exact
}

/// sqrt(x) for x >= 0 (finite): 1/sqrt(x) from the exponent-halving bit estimate (relative error
/// below 3.5%), refined by Newton steps y <- y (3/2 - x y^2 / 2), each squaring the error, then one
/// Newton step on sqrt itself, s <- s + y (x - s^2) / 2; a few ulp at most, and exactly 0 at 0.
template <std::floating_point S>
DIFFUSION_ALWAYS_INLINE S sqrt_nonnegative(S x) noexcept {
  using L = ieee_layout<S>;
  S y = std::bit_cast<S>(L::rsqrt_magic - (std::bit_cast<typename L::bits>(x) >> 1));
  const S half_x = S(0.5) * x;
  y = y * madd(-half_x * y, y, S(1.5));
  y = y * madd(-half_x * y, y, S(1.5));
  if constexpr (std::same_as<S, double>) {
    y = y * madd(-half_x * y, y, S(1.5));
  }
  const S s = x * y;
  return madd(S(0.5) * y, madd(-s, s, x), s);
}

/// cos and sin of 2 pi m 2^-b for an integer m in [0, 2^b), b = uniform_bits<S>: the quarter turn
/// j nearest the angle is taken off exactly in integers, which leaves |a| <= pi/4 for Cephes'
/// sinf/cosf (float) or sin/cos (double) polynomials (Moshier 1989); the quarter turn then swaps
/// and negates them. Error about 1 ulp; exactly (1, 0) at m = 0.
template <std::floating_point S>
DIFFUSION_ALWAYS_INLINE normal_pair<S> cos_sin_turns(std::uint32_t m) noexcept {
  using bits = typename ieee_layout<S>::bits;
  constexpr int b = uniform_bits<S>;
  // In the lanes of S's width (for double, m + 2^29 needs more than 32 bits).
  using signed_bits = std::make_signed_t<bits>;
  const bits j = (bits{m} + (bits{1} << (b - 3))) >> (b - 2);
  const auto rest = static_cast<std::int32_t>(static_cast<signed_bits>(m) - static_cast<signed_bits>(j << (b - 2)));
  constexpr S radians_per_step = S(2) * std::numbers::pi_v<S> * uniform_step<S>;  // exact scaling by 2^-b
  const S a = static_cast<S>(rest) * radians_per_step;
  const S z = a * a;
  S sin_a, cos_a;
  if constexpr (std::same_as<S, float>) {
    const float ps = madd(madd(-1.9515295891e-4f, z, 8.3321608736e-3f), z, -1.6666654611e-1f);
    sin_a = madd(ps * z, a, a);
    const float pc = madd(madd(2.443315711809948e-5f, z, -1.388731625493765e-3f), z, 4.166664568298827e-2f);
    cos_a = madd(pc * z, z, madd(z, -0.5f, 1.0f));
  } else {
    double ps = 1.58962301576546568060e-10;
    ps = madd(ps, z, -2.50507477628578072866e-8);
    ps = madd(ps, z, 2.75573136213857245213e-6);
    ps = madd(ps, z, -1.98412698295895385996e-4);
    ps = madd(ps, z, 8.33333333332211858878e-3);
    ps = madd(ps, z, -1.66666666666666307295e-1);
    sin_a = madd(ps * z, a, a);
    double pc = -1.13585365213876817300e-11;
    pc = madd(pc, z, 2.08757008419747316778e-9);
    pc = madd(pc, z, -2.75573141792967388112e-7);
    pc = madd(pc, z, 2.48015872888517045348e-5);
    pc = madd(pc, z, -1.38888888888730564116e-3);
    pc = madd(pc, z, 4.16666666666665929218e-2);
    cos_a = madd(pc * z, z, madd(z, -0.5, 1.0));
  }
  // Angle a + j pi/2: (cos, sin) = (c, s), (-s, c), (-c, -s), (s, -c) for j mod 4 = 0, 1, 2, 3.
  const bool odd = (j & 1) != 0;
  const S c = odd ? sin_a : cos_a;
  const S s = odd ? cos_a : sin_a;
  constexpr int sign_shift = 8 * sizeof(S) - 2;  // bit 1 of j to the sign bit
  const bits cos_sign = ((j + 1) & 2) << sign_shift;
  const bits sin_sign = (j & 2) << sign_shift;
  return {std::bit_cast<S>(std::bit_cast<bits>(c) ^ cos_sign), std::bit_cast<S>(std::bit_cast<bits>(s) ^ sin_sign)};
}

/// m as S, exactly (m < 2^32), through a signed 32-bit conversion, which every SIMD instruction
/// set has (an unsigned one is missing before AVX-512).
template <std::floating_point S>
DIFFUSION_ALWAYS_INLINE S exact_from_word(std::uint32_t m) noexcept {
  if constexpr (std::numeric_limits<S>::digits >= 32) {
    return static_cast<S>(static_cast<std::int32_t>(m ^ 0x80000000u)) + S(2147483648.0);
  } else {
    // float: only called with m < 2^24 (uniform_mantissa), which fits an int32 and is exact in S.
    return static_cast<S>(static_cast<std::int32_t>(m));
  }
}

}  // namespace detail

/// The Box-Muller transform (Box & Muller 1958, "A note on the generation of random normal
/// deviates", Ann. Math. Statist. 29(2), p. 610):
/// \f$ z_0 = \sqrt{-2 \ln u_1} \cos(2\pi u_2),\ z_1 = \sqrt{-2 \ln u_1} \sin(2\pi u_2) \f$,
/// with u1 in (0, 1] from `w0` (uniform_open_closed_from_word) and u2 in [0, 1) from `w1`
/// (uniform_from_word). Computed in S with the library's own log, sqrt and cos/sin (detail above,
/// a few ulp from the exact transform), so that it vectorises and gives the same bits on every
/// standard library; std::normal_distribution is never used because its algorithm is
/// implementation-defined.
template <std::floating_point S>
DIFFUSION_ALWAYS_INLINE normal_pair<S> box_muller(std::uint32_t w0, std::uint32_t w1) noexcept {
  const S u1 = (detail::exact_from_word<S>(detail::uniform_mantissa<S>(w0)) + S(1)) * detail::uniform_step<S>;
  const S radius = detail::sqrt_nonnegative(S(-2) * detail::log_positive(u1));
  const normal_pair<S> turn = detail::cos_sin_turns<S>(detail::uniform_mantissa<S>(w1));
  return {radius * turn.first, radius * turn.second};
}

namespace detail {

/// Box-Muller on N pairs held in separate arrays: (cos_out[i], sin_out[i]) = box_muller(radius_words[i],
/// angle_words[i]). N is a compile-time constant so that even a plain -O2 build (whose vectoriser
/// takes only loops without a scalar remainder) vectorises it.
template <std::floating_point S, std::size_t N>
DIFFUSION_WIDE_SIMD void box_muller_arrays(const std::uint32_t* __restrict radius_words, const std::uint32_t* __restrict angle_words,
                              S* __restrict cos_out, S* __restrict sin_out) noexcept {
  for (std::size_t i = 0; i < N; ++i) {
    const normal_pair<S> z = box_muller<S>(radius_words[i], angle_words[i]);
    cos_out[i] = z.first;
    sin_out[i] = z.second;
  }
}

}  // namespace detail

/// Box-Muller over an array of words: out[2i] and out[2i + 1] are box_muller(words[2i],
/// words[2i + 1]). Requires out.size() == words.size() and an even size (not checked: an internal
/// kernel, called with buffers the caller sized). The pairs go through detail::box_muller_arrays in
/// passes of a fixed length, so that the transform vectorises in any build.
template <std::floating_point S>
void box_muller_block(std::span<const std::uint32_t> words, std::span<S> out) {
  constexpr std::size_t pass = 64;  // pairs per pass
  const std::size_t pairs = std::min(words.size(), out.size()) / 2;
  // Zero-initialised: a short last pass transforms these (or an earlier pass's) words and drops them.
  alignas(64) std::array<std::uint32_t, pass> radius_words{}, angle_words{};
  alignas(64) std::array<S, pass> cos_part, sin_part;
  for (std::size_t first = 0; first < pairs; first += pass) {
    const std::size_t n = std::min(pass, pairs - first);
    for (std::size_t k = 0; k < n; ++k) {
      radius_words[k] = words[2 * (first + k)];
      angle_words[k] = words[2 * (first + k) + 1];
    }
    detail::box_muller_arrays<S, pass>(radius_words.data(), angle_words.data(), cos_part.data(), sin_part.data());
    for (std::size_t k = 0; k < n; ++k) {
      out[2 * (first + k)] = cos_part[k];
      out[2 * (first + k) + 1] = sin_part[k];
    }
  }
}


/// Uniforms in [0, 1) over an array of words: out[i] = uniform_from_word(words[i]).
template <std::floating_point S>
void uniform_block(std::span<const std::uint32_t> words, std::span<S> out) {
  const std::size_t n = std::min(words.size(), out.size());
  for (std::size_t i = 0; i < n; ++i) out[i] = uniform_from_word<S>(words[i]);
}

}  // namespace diffusion
