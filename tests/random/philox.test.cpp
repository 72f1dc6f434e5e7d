// SPDX-License-Identifier: MIT
// Philox4x32 against the published Random123 known-answer vectors.
#include <catch2/catch.hpp>

#include <array>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <utility>
#include <vector>

#include <diffusion/random/philox.hpp>

namespace {

using diffusion::philox_counter;
using diffusion::philox_key;

struct kat {
  philox_counter counter;
  philox_key key;
  philox_counter expected;
};

// Known answers of Random123 (D. E. Shaw Research), file `kat_vectors` of the Random123
// distribution, lines "philox4x32 10 ..." and "philox4x32 7 ..." (format: counter[4] key[2] ->
// output[4], hex words). Copied from DEShawResearch/Random123-Boost,
// libs/random/test/test_philox.cpp (commit 916db91ae4c6fd8324ef054a518851321ab41f91), which states
// they are "cut-and-pasted from the kat_vectors file in the original Random123 distribution"; the
// same three 10-round lines appear verbatim in several independent ports.
constexpr std::array<kat, 3> kat_rounds_10{{
    {{0x00000000, 0x00000000, 0x00000000, 0x00000000},
     {0x00000000, 0x00000000},
     {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
}};

constexpr std::array<kat, 3> kat_rounds_7{{
    {{0x00000000, 0x00000000, 0x00000000, 0x00000000},
     {0x00000000, 0x00000000},
     {0x5f6fb709, 0x0d893f64, 0x4f121f81, 0x4f730a48}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x5207ddc2, 0x45165e59, 0x4d8ee751, 0x8c52f662}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0x4dfccaba, 0x190a87f0, 0xc47362ba, 0xb6b5242a}},
}};

// The function is constexpr: the known answers hold at compile time too.
static_assert(diffusion::philox4x32_10(kat_rounds_10[2].counter, kat_rounds_10[2].key) == kat_rounds_10[2].expected);
static_assert(diffusion::philox4x32<7>(kat_rounds_7[0].counter, kat_rounds_7[0].key) == kat_rounds_7[0].expected);

}  // namespace

TEST_CASE("philox4x32_10 reproduces the Random123 known-answer vectors", "[rng][philox]") {
  const kat v = GENERATE(from_range(kat_rounds_10));
  const philox_counter out = diffusion::philox4x32_10(v.counter, v.key);
  for (std::size_t i = 0; i < 4; ++i) {
    INFO("word " << i);
    CHECK(out[i] == v.expected[i]);
  }
  CHECK(diffusion::philox4x32<10>(v.counter, v.key) == v.expected);
}

TEST_CASE("philox4x32 with 7 rounds reproduces the Random123 known-answer vectors", "[rng][philox]") {
  // The 7-round answers differ from the 10-round ones only by the number of key bumps, so they pin
  // the round count and the key schedule separately.
  const kat v = GENERATE(from_range(kat_rounds_7));
  CHECK(diffusion::philox4x32<7>(v.counter, v.key) == v.expected);
}

TEST_CASE("philox4x32_10 spreads a one-bit change of counter or key over the whole output", "[rng][philox]") {
  // Avalanche: a flipped input bit changes Binomial(128, 1/2) output bits for an ideal bijection.
  // Over the 32 bits of one input word the total has mean 32 * 64 = 2048 and standard deviation
  // sqrt(32 * 32) = 32; 5 standard errors is 160.
  const philox_counter base{0x01234567, 0x89abcdef, 0x0badf00d, 0xdeadbeef};
  const philox_key key{0x243f6a88, 0x85a308d3};
  const philox_counter y = diffusion::philox4x32_10(base, key);
  auto distance = [&](const philox_counter& z) {
    int d = 0;
    for (std::size_t i = 0; i < 4; ++i) d += std::popcount(y[i] ^ z[i]);
    return d;
  };
  for (std::size_t word = 0; word < 4; ++word) {
    int total = 0;
    for (unsigned bit = 0; bit < 32; ++bit) {
      philox_counter c = base;
      c[word] ^= 1u << bit;
      total += distance(diffusion::philox4x32_10(c, key));
    }
    INFO("counter word " << word);
    CHECK(std::abs(total - 2048) < 160);
  }
  for (std::size_t word = 0; word < 2; ++word) {
    int total = 0;
    for (unsigned bit = 0; bit < 32; ++bit) {
      philox_key k = key;
      k[word] ^= 1u << bit;
      total += distance(diffusion::philox4x32_10(base, k));
    }
    INFO("key word " << word);
    CHECK(std::abs(total - 2048) < 160);
  }
}

TEST_CASE("philox4x32_10_blocks gives philox4x32_10 word for word, on every SIMD path and length",
          "[rng][philox]") {
  // The block generator runs groups of counters side by side (32 at a time with AVX-512, 8 with
  // AVX2, 2 with SSE2), then single vectors, then a partial one: every length up to two groups of
  // the widest path and beyond, from block starts where the counter carries into word 1 and
  // wraps around 2^64. A baseline x86-64 g++ build has two paths, the compiled one and AVX2
  // (chosen at run time): both are checked, the second where the CPU runs it.
  using blocks_function = void (*)(std::uint64_t, std::uint32_t, std::uint32_t,
                                   const diffusion::detail::philox_round_keys&, std::size_t, std::uint32_t*,
                                   std::uint32_t*, std::uint32_t*, std::uint32_t*);
  std::vector<std::pair<const char*, blocks_function>> paths{
      {"dispatched", &diffusion::detail::philox4x32_10_blocks},
      {"as compiled", &diffusion::detail::philox4x32_10_blocks_as_compiled}};
#if defined(DIFFUSION_PHILOX_AVX2_DISPATCH)
  if (diffusion::detail::philox_cpu_has_avx2()) paths.emplace_back("AVX2", &diffusion::detail::philox4x32_10_blocks_avx2);
#endif
  const auto [path_name, blocks] = GENERATE_REF(from_range(paths));
  INFO("path " << path_name);
  const diffusion::detail::philox_round_keys keys({0xa4093822u, 0x299f31d0u});
  const std::uint32_t draw = 5, stream = 0xfffffff0u;
  for (const std::uint64_t block : {std::uint64_t{0}, std::uint64_t{0xffffffffu} - 20, ~std::uint64_t{0} - 40}) {
    for (std::size_t n = 0; n <= 200; n += (n < 80 ? 1 : 29)) {
      std::vector<std::uint32_t> w(4 * n + 4, 0xdeadbeefu);  // one spare word after each array
      std::uint32_t* const w0 = w.data();
      std::uint32_t* const w1 = w0 + n + 1;
      std::uint32_t* const w2 = w1 + n + 1;
      std::uint32_t* const w3 = w2 + n + 1;
      blocks(block, draw, stream, keys, n, w0, w1, w2, w3);
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t c = block + i;
        const philox_counter want = diffusion::philox4x32_10(
            {static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(c >> 32), draw, stream},
            {0xa4093822u, 0x299f31d0u});
        INFO("block " << block << ", n " << n << ", counter " << i);
        REQUIRE(philox_counter{w0[i], w1[i], w2[i], w3[i]} == want);
      }
      CHECK(w0[n] == 0xdeadbeefu);  // nothing past n is written
      CHECK(w1[n] == 0xdeadbeefu);
      CHECK(w2[n] == 0xdeadbeefu);
      CHECK(w3[n] == 0xdeadbeefu);
    }
  }
}
