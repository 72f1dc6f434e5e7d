// SPDX-License-Identifier: MIT
// The Philox4x32 counter-based bijection: a stateless, constexpr function of (counter, key).
#pragma once

#include <array>
#include <cstdint>

namespace diffusion {

/// A 128-bit Philox counter, as four 32-bit words (word 0 is the least significant in Random123).
using philox_counter = std::array<std::uint32_t, 4>;
/// A 64-bit Philox key, as two 32-bit words.
using philox_key = std::array<std::uint32_t, 2>;

namespace detail {

// Multipliers and Weyl key increments of Philox4x32 (Salmon et al. 2011, "Parallel random numbers:
// as easy as 1, 2, 3", SC11, section "The Philox PRF"; the same constants as Random123's philox.h
// and the C++26 std::philox4x32, [rand.eng.philox]). The increments are the golden ratio and
// sqrt(3) - 1 as 32-bit fractions.
inline constexpr std::uint32_t philox_m4x32_0 = 0xD2511F53u;
inline constexpr std::uint32_t philox_m4x32_1 = 0xCD9E8D57u;
inline constexpr std::uint32_t philox_w32_0 = 0x9E3779B9u;
inline constexpr std::uint32_t philox_w32_1 = 0xBB67AE85u;

/// One Philox4x32 round (Salmon et al. 2011, the Philox S-box): two 32x32 -> 64-bit products, whose
/// high halves are xored with the other words and the round key, followed by the fixed word
/// permutation. Written with plain 64-bit products so that it is constexpr and a compiler can
/// vectorise a loop over many counters.
constexpr philox_counter philox4x32_round(const philox_counter& x, const philox_key& k) {
  const std::uint64_t p0 = std::uint64_t{philox_m4x32_0} * x[0];
  const std::uint64_t p1 = std::uint64_t{philox_m4x32_1} * x[2];
  const auto hi0 = static_cast<std::uint32_t>(p0 >> 32);
  const auto lo0 = static_cast<std::uint32_t>(p0);
  const auto hi1 = static_cast<std::uint32_t>(p1 >> 32);
  const auto lo1 = static_cast<std::uint32_t>(p1);
  return {hi1 ^ x[1] ^ k[0], lo1, hi0 ^ x[3] ^ k[1], lo0};
}

/// The key schedule (Salmon et al. 2011): round r uses key + r * (W0, W1) modulo 2^32.
constexpr philox_key philox4x32_bump_key(const philox_key& k) {
  return {static_cast<std::uint32_t>(k[0] + philox_w32_0), static_cast<std::uint32_t>(k[1] + philox_w32_1)};
}

}  // namespace detail

/// Philox4x32 with `Rounds` rounds (Salmon, Moraes, Dror, Shaw 2011, "Parallel random numbers: as
/// easy as 1, 2, 3", SC11): a keyed bijection of 128-bit counters. Stateless: the output is a pure
/// function of (counter, key), which is what makes noise independent of thread count and
/// evaluation order.
///
/// \tparam Rounds 10 is the recommended, Crush-resistant variant; 7 exists for the published
///                known-answer tests.
/// \see Random123's philox.h (round order: round with the key, then bump the key before each
///      further round).
template <unsigned Rounds>
constexpr philox_counter philox4x32(philox_counter counter, philox_key key) {
  static_assert(Rounds >= 1, "philox4x32 needs at least one round");
  counter = detail::philox4x32_round(counter, key);
  for (unsigned r = 1; r < Rounds; ++r) {
    key = detail::philox4x32_bump_key(key);
    counter = detail::philox4x32_round(counter, key);
  }
  return counter;
}

/// Philox4x32-10, the library's default counter-based generator (see philox4x32).
constexpr philox_counter philox4x32_10(philox_counter counter, philox_key key) { return philox4x32<10>(counter, key); }

}  // namespace diffusion
