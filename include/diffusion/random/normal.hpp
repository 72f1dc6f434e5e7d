// SPDX-License-Identifier: MIT
// From 32-bit random words to uniforms and standard normals (Box-Muller), in the tensor's scalar type.
//
// Every function here is a pure function of its words, and the block functions are plain loops of
// arithmetic over arrays, so that a later SIMD pass can vectorise them without -ffast-math and the
// value of an element never depends on which block or thread produced it.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <span>

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

/// The Box-Muller transform (Box & Muller 1958, "A note on the generation of random normal
/// deviates", Ann. Math. Statist. 29(2), p. 610):
/// \f$ z_0 = \sqrt{-2 \ln u_1} \cos(2\pi u_2),\ z_1 = \sqrt{-2 \ln u_1} \sin(2\pi u_2) \f$,
/// with u1 in (0, 1] from `w0` (uniform_open_closed_from_word) and u2 in [0, 1) from `w1`
/// (uniform_from_word). Computed in S; std::normal_distribution is never used because its algorithm
/// is implementation-defined.
template <std::floating_point S>
normal_pair<S> box_muller(std::uint32_t w0, std::uint32_t w1) {
  const S radius = std::sqrt(S(-2) * std::log(uniform_open_closed_from_word<S>(w0)));
  const S theta = S(2) * std::numbers::pi_v<S> * uniform_from_word<S>(w1);
  return {radius * std::cos(theta), radius * std::sin(theta)};
}

/// Box-Muller over an array of words: out[2i] and out[2i + 1] are box_muller(words[2i],
/// words[2i + 1]). Requires out.size() == words.size() and an even size (not checked: an internal
/// kernel, called with buffers the caller sized).
template <std::floating_point S>
void box_muller_block(std::span<const std::uint32_t> words, std::span<S> out) {
  const std::size_t pairs = std::min(words.size(), out.size()) / 2;
  for (std::size_t i = 0; i < pairs; ++i) {
    const normal_pair<S> z = box_muller<S>(words[2 * i], words[2 * i + 1]);
    out[2 * i] = z.first;
    out[2 * i + 1] = z.second;
  }
}

/// Uniforms in [0, 1) over an array of words: out[i] = uniform_from_word(words[i]).
template <std::floating_point S>
void uniform_block(std::span<const std::uint32_t> words, std::span<S> out) {
  const std::size_t n = std::min(words.size(), out.size());
  for (std::size_t i = 0; i < n; ++i) out[i] = uniform_from_word<S>(words[i]);
}

}  // namespace diffusion
