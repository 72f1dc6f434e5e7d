// SPDX-License-Identifier: MIT
// The Philox4x32 counter-based bijection: a stateless, constexpr function of (counter, key).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

// The block generator below has SIMD paths for x86 (SSE2 is part of x86-64, AVX2 and AVX-512F when
// the compiler targets them); every other target uses the portable loop. All paths give the same
// words: the arithmetic is integer. Only the header of the instruction set in use is included:
// <immintrin.h> alone costs a plain -O2 compile ~0.5 s, <emmintrin.h> nothing.
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#define DIFFUSION_PHILOX_X86_SIMD 1
#elif defined(__SSE2__) || defined(_M_X64) || defined(_M_AMD64)
#include <emmintrin.h>
#define DIFFUSION_PHILOX_X86_SIMD 1
#endif

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

namespace detail {

/// The ten round keys of Philox4x32-10 (the key schedule of philox4x32, unrolled once per block).
struct philox_round_keys {
  std::array<std::uint32_t, 10> k0;
  std::array<std::uint32_t, 10> k1;

  explicit constexpr philox_round_keys(philox_key key) : k0{}, k1{} {
    for (std::size_t r = 0; r < 10; ++r) {
      k0[r] = key[0];
      k1[r] = key[1];
      key = philox4x32_bump_key(key);
    }
  }
};

#if defined(DIFFUSION_PHILOX_X86_SIMD)
// g++ 12 warns that the "undefined" pass-through operand inside its own AVX-512 intrinsics "may be
// used uninitialized" (GCC bug 105593, fixed in g++ 13); the warning is about the compiler's header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
// One Philox round on L counters held in 64-bit lanes, one vector per counter word. The 32x32 ->
// 64-bit products are exactly what the x86 unsigned even-lane multiply (pmuludq) computes, so a
// lane needs no shuffling; the upper half of a lane may hold garbage, which the multiply ignores
// and the final 32-bit store drops (only low halves ever feed low halves: xor, and the high half
// of a product shifted down). A round is a chain of dependent instructions (multiply, shift, xor:
// ~7 cycles), so `interleave` groups of counters go through the rounds side by side to keep the
// multiplier busy: 0.45 -> 0.34 ns per word with AVX-512, 0.68 -> 0.63 with AVX2 (one g++ 12
// -O3 build on the project's machine, docs/PERFORMANCE.md).
#if defined(__AVX512F__)
struct philox_x86_lanes {
  using vec = __m512i;
  static constexpr std::size_t width = 8;
  static constexpr std::size_t interleave = 4;  // of 32 registers, 16 hold the counters
  static vec broadcast(std::uint64_t v) { return _mm512_set1_epi64(static_cast<long long>(v)); }
  static vec iota(std::uint64_t first) {
    return _mm512_add_epi64(broadcast(first), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static vec mul(vec a, vec b) { return _mm512_mul_epu32(a, b); }
  static vec high(vec a) { return _mm512_srli_epi64(a, 32); }
  static vec xor3(vec a, vec b, vec c) { return _mm512_ternarylogic_epi64(a, b, c, 0x96); }
  static void store_low(std::uint32_t* out, vec a) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi64_epi32(a));
  }
};
#elif defined(__AVX2__)
struct philox_x86_lanes {
  using vec = __m256i;
  static constexpr std::size_t width = 4;
  static constexpr std::size_t interleave = 2;  // of 16 registers, 8 hold the counters
  static vec broadcast(std::uint64_t v) { return _mm256_set1_epi64x(static_cast<long long>(v)); }
  static vec iota(std::uint64_t first) { return _mm256_add_epi64(broadcast(first), _mm256_setr_epi64x(0, 1, 2, 3)); }
  static vec mul(vec a, vec b) { return _mm256_mul_epu32(a, b); }
  static vec high(vec a) { return _mm256_srli_epi64(a, 32); }
  static vec xor3(vec a, vec b, vec c) { return _mm256_xor_si256(_mm256_xor_si256(a, b), c); }
  static void store_low(std::uint32_t* out, vec a) {
    const __m256i low_words = _mm256_permutevar8x32_epi32(a, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(low_words));
  }
};
#else
struct philox_x86_lanes {
  using vec = __m128i;
  static constexpr std::size_t width = 2;
  static constexpr std::size_t interleave = 1;  // more spills registers (measured slower)
  static vec broadcast(std::uint64_t v) { return _mm_set1_epi64x(static_cast<long long>(v)); }
  static vec iota(std::uint64_t first) { return _mm_add_epi64(broadcast(first), _mm_set_epi64x(1, 0)); }
  static vec mul(vec a, vec b) { return _mm_mul_epu32(a, b); }
  static vec high(vec a) { return _mm_srli_epi64(a, 32); }
  static vec xor3(vec a, vec b, vec c) { return _mm_xor_si128(_mm_xor_si128(a, b), c); }
  static void store_low(std::uint32_t* out, vec a) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_shuffle_epi32(a, _MM_SHUFFLE(3, 1, 2, 0)));
  }
};
#endif
#endif

#if defined(DIFFUSION_PHILOX_X86_SIMD)
/// Philox4x32-10 of U groups of philox_x86_lanes::width consecutive counters from `first` (words
/// 0-1 the counter, 2 the draw, 3 the stream): x[w][u] holds word w of group u in its lanes' low
/// halves. The U groups go through each round side by side (see philox_x86_lanes::interleave).
template <std::size_t U>
struct philox_x86_group {
  philox_x86_lanes::vec x[4][U];  // a plain array: vector types lose their alignment in std::array's argument
};

template <std::size_t U>
philox_x86_group<U> philox_x86_counters(std::uint64_t first, std::uint32_t draw, std::uint32_t stream,
                                        const philox_round_keys& keys) {
  using L = philox_x86_lanes;
  const L::vec m0 = L::broadcast(philox_m4x32_0), m1 = L::broadcast(philox_m4x32_1);
  philox_x86_group<U> g;
  auto& x = g.x;
  #pragma GCC unroll 4
  for (std::size_t u = 0; u < U; ++u) {
    x[0][u] = L::iota(first + u * L::width);
    x[1][u] = L::high(x[0][u]);
    x[2][u] = L::broadcast(draw);
    x[3][u] = L::broadcast(stream);
  }
  // Unrolled, also at -O2, whose own unrolling leaves this loop rolled (1.7x slower with AVX2).
#pragma GCC unroll 10
  for (std::size_t r = 0; r < 10; ++r) {
    const L::vec k0 = L::broadcast(keys.k0[r]), k1 = L::broadcast(keys.k1[r]);
    #pragma GCC unroll 4
    for (std::size_t u = 0; u < U; ++u) {
      const L::vec p0 = L::mul(x[0][u], m0), p1 = L::mul(x[2][u], m1);
      x[0][u] = L::xor3(L::high(p1), x[1][u], k0);
      x[2][u] = L::xor3(L::high(p0), x[3][u], k1);
      x[1][u] = p1;
      x[3][u] = p0;
    }
  }
  return g;
}
#endif

/// philox4x32_10_blocks (below) on the instruction set the compiler targets.
inline void philox4x32_10_blocks_as_compiled(std::uint64_t block, std::uint32_t draw, std::uint32_t stream,
                                             const philox_round_keys& keys, std::size_t n, std::uint32_t* w0,
                                             std::uint32_t* w1, std::uint32_t* w2, std::uint32_t* w3) {
#if defined(DIFFUSION_PHILOX_X86_SIMD)
  using L = philox_x86_lanes;
  constexpr std::size_t U = L::interleave, W = L::width;
  std::size_t i = 0;
  for (; i + U * W <= n; i += U * W) {
    const auto g = philox_x86_counters<U>(block + i, draw, stream, keys);
    #pragma GCC unroll 4
    for (std::size_t u = 0; u < U; ++u) {
      L::store_low(w0 + i + u * W, g.x[0][u]);
      L::store_low(w1 + i + u * W, g.x[1][u]);
      L::store_low(w2 + i + u * W, g.x[2][u]);
      L::store_low(w3 + i + u * W, g.x[3][u]);
    }
  }
  for (; i < n; i += W) {  // the rest, one vector at a time; the last one may be partial
    const auto g = philox_x86_counters<1>(block + i, draw, stream, keys);
    std::array<std::uint32_t, 4 * W> last;
    for (std::size_t w = 0; w < 4; ++w) L::store_low(last.data() + w * W, g.x[w][0]);
    for (std::size_t k = 0; k < W && i + k < n; ++k) {  // nothing past n is written
      w0[i + k] = last[k];
      w1[i + k] = last[W + k];
      w2[i + k] = last[2 * W + k];
      w3[i + k] = last[3 * W + k];
    }
  }
#else
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t b = block + i;
    philox_counter x{static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32), draw, stream};
    for (std::size_t r = 0; r < 10; ++r) x = philox4x32_round(x, {keys.k0[r], keys.k1[r]});
    w0[i] = x[0];
    w1[i] = x[1];
    w2[i] = x[2];
    w3[i] = x[3];
  }
#endif
}
#if defined(DIFFUSION_PHILOX_X86_SIMD) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// A build for the x86-64 baseline (SSE2, plain -O2) also gets an AVX2 version, used when the CPU
// has AVX2 (g++ 12 or later with glibc: __builtin_cpu_supports): 0.62 instead of 1.7 ns per word on
// the reference machine. It is written with g++'s vector extensions and the pmuludq builtin under
// a target pragma, so that <immintrin.h> (~0.3 s of every compile) is not needed; integer
// arithmetic, so its words are the same as every other path's. DIFFUSION_NO_RUNTIME_DISPATCH,
// defined before the first include, turns it off (as it does the transform's, normal.hpp).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) && defined(__GLIBC__) && \
    !defined(__AVX2__) && !defined(DIFFUSION_NO_RUNTIME_DISPATCH)
#define DIFFUSION_PHILOX_AVX2_DISPATCH 1
#pragma GCC push_options
#pragma GCC target("avx2")
using philox_avx2_vec = unsigned long long __attribute__((vector_size(32)));

inline philox_avx2_vec philox_avx2_all(std::uint64_t v) { return philox_avx2_vec{v, v, v, v}; }

/// The even-lane 32x32 -> 64-bit products (pmuludq), as philox_x86_lanes::mul.
inline philox_avx2_vec philox_avx2_mul(philox_avx2_vec a, philox_avx2_vec b) {
  using v8si = int __attribute__((vector_size(32)));
  return reinterpret_cast<philox_avx2_vec>(
      __builtin_ia32_pmuludq256(reinterpret_cast<v8si>(a), reinterpret_cast<v8si>(b)));
}

inline void philox_avx2_store_low(std::uint32_t* out, philox_avx2_vec a) {
  using v8si = int __attribute__((vector_size(32)));
  using v4si = int __attribute__((vector_size(16)));
  const v4si low = __builtin_shufflevector(reinterpret_cast<v8si>(a), reinterpret_cast<v8si>(a), 0, 2, 4, 6);
  __builtin_memcpy(out, &low, sizeof low);
}

/// philox4x32_10_blocks with AVX2: the rounds of philox_x86_counters on 2 groups of 4 counters
/// side by side (64-bit lanes, the garbage-tolerant upper halves included); the last n mod 8
/// counters go to the compiled path.
inline void philox4x32_10_blocks_avx2(std::uint64_t block, std::uint32_t draw, std::uint32_t stream,
                                      const philox_round_keys& keys, std::size_t n, std::uint32_t* w0,
                                      std::uint32_t* w1, std::uint32_t* w2, std::uint32_t* w3) {
  using vec = philox_avx2_vec;
  const vec m0 = philox_avx2_all(philox_m4x32_0), m1 = philox_avx2_all(philox_m4x32_1);
  constexpr std::size_t U = 2, W = 4;
  std::size_t i = 0;
  for (; i + U * W <= n; i += U * W) {
    vec x[4][U];
    #pragma GCC unroll 4
    for (std::size_t u = 0; u < U; ++u) {
      const std::uint64_t c = block + i + u * W;
      x[0][u] = vec{c, c + 1, c + 2, c + 3};
      x[1][u] = x[0][u] >> 32;
      x[2][u] = philox_avx2_all(draw);
      x[3][u] = philox_avx2_all(stream);
    }
#pragma GCC unroll 10
    for (std::size_t r = 0; r < 10; ++r) {
      const vec k0 = philox_avx2_all(keys.k0[r]), k1 = philox_avx2_all(keys.k1[r]);
      #pragma GCC unroll 4
      for (std::size_t u = 0; u < U; ++u) {
        const vec p0 = philox_avx2_mul(x[0][u], m0), p1 = philox_avx2_mul(x[2][u], m1);
        x[0][u] = (p1 >> 32) ^ x[1][u] ^ k0;
        x[2][u] = (p0 >> 32) ^ x[3][u] ^ k1;
        x[1][u] = p1;
        x[3][u] = p0;
      }
    }
    #pragma GCC unroll 4
    for (std::size_t u = 0; u < U; ++u) {
      philox_avx2_store_low(w0 + i + u * W, x[0][u]);
      philox_avx2_store_low(w1 + i + u * W, x[1][u]);
      philox_avx2_store_low(w2 + i + u * W, x[2][u]);
      philox_avx2_store_low(w3 + i + u * W, x[3][u]);
    }
  }
  if (i < n) philox4x32_10_blocks_as_compiled(block + i, draw, stream, keys, n - i, w0 + i, w1 + i, w2 + i, w3 + i);
}
#pragma GCC pop_options

/// Whether this CPU runs philox4x32_10_blocks_avx2 (asked once). __builtin_cpu_init first: a
/// call from a constructor that runs before libgcc's own would otherwise read an empty CPU model
/// and keep the slow path for the whole run.
inline bool philox_cpu_has_avx2() noexcept {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has;
}
#endif

/// Philox4x32-10 of the n counters (block + i mod 2^64 as words 0-1, draw, stream) for i < n, the
/// key `keys`, written word by word: w0[i], w1[i], w2[i], w3[i] are words 0-3 of counter i (the
/// output of philox4x32_10, bit for bit). The layout of separate word arrays is what the normal
/// transform reads as whole vectors.
inline void philox4x32_10_blocks(std::uint64_t block, std::uint32_t draw, std::uint32_t stream,
                                 const philox_round_keys& keys, std::size_t n, std::uint32_t* w0, std::uint32_t* w1,
                                 std::uint32_t* w2, std::uint32_t* w3) {
#if defined(DIFFUSION_PHILOX_AVX2_DISPATCH)
  if (philox_cpu_has_avx2()) return philox4x32_10_blocks_avx2(block, draw, stream, keys, n, w0, w1, w2, w3);
#endif
  philox4x32_10_blocks_as_compiled(block, draw, stream, keys, n, w0, w1, w2, w3);
}

}  // namespace detail

}  // namespace diffusion
