// SPDX-License-Identifier: MIT
// The noise kernels with the run-time dispatch turned off (DIFFUSION_NO_RUNTIME_DISPATCH): the code a
// baseline x86-64 build runs on a CPU without AVX2, which the other random tests never reach on a
// machine that has it. Its words and normals must be the scalar functions' bit for bit, as the
// dispatched ones are (philox.test.cpp, normal.test.cpp).
#define DIFFUSION_NO_RUNTIME_DISPATCH 1

#include <catch2/catch.hpp>

#include <bit>
#include <cstdint>
#include <tuple>
#include <vector>

#include <diffusion/random/normal.hpp>
#include <diffusion/random/philox.hpp>
#include <diffusion/random/philox_noise.hpp>

#if defined(DIFFUSION_PHILOX_AVX2_DISPATCH)
#error "DIFFUSION_NO_RUNTIME_DISPATCH must turn Philox's AVX2 dispatch off"
#endif

namespace {

using scalar_types = std::tuple<float, double>;

// Edge words (0, 1, the top of the range) and a spread of others.
std::vector<std::uint32_t> test_words(std::size_t n) {
  std::vector<std::uint32_t> w{0u, 1u, 0xffffffffu, 0xfffffffeu, 0x80000000u, 0x7fffffffu};
  std::uint32_t x = 0x9E3779B9u;
  while (w.size() < n) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    w.push_back(x);
  }
  return w;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("without run-time dispatch, box_muller_block is box_muller bit for bit", "[rng][normal]",
                        scalar_types) {
  using S = TestType;
  const std::vector<std::uint32_t> w = test_words(20000);
  std::vector<S> normals(w.size());
  diffusion::box_muller_block<S>(w, normals);
  for (std::size_t i = 0; i + 1 < w.size(); i += 2) {
    const auto z = diffusion::box_muller<S>(w[i], w[i + 1]);
    INFO("pair " << i / 2);
    REQUIRE(std::bit_cast<std::uint64_t>(static_cast<double>(normals[i])) ==
            std::bit_cast<std::uint64_t>(static_cast<double>(z.first)));
    REQUIRE(std::bit_cast<std::uint64_t>(static_cast<double>(normals[i + 1])) ==
            std::bit_cast<std::uint64_t>(static_cast<double>(z.second)));
  }
}

TEST_CASE("without run-time dispatch, philox4x32_10_blocks is philox4x32_10 word for word", "[rng][philox]") {
  const diffusion::philox_key key{0x243f6a88u, 0x85a308d3u};
  const diffusion::detail::philox_round_keys keys(key);
  for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{203}}) {
    std::vector<std::uint32_t> w(4 * n);
    const std::uint64_t block = 0xfffffff0u;  // carries into word 1
    diffusion::detail::philox4x32_10_blocks(block, 3, 9, keys, n, w.data(), w.data() + n, w.data() + 2 * n,
                                            w.data() + 3 * n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t c = block + i;
      const diffusion::philox_counter want =
          diffusion::philox4x32_10({static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(c >> 32), 3, 9}, key);
      INFO("n " << n << ", counter " << i);
      REQUIRE(diffusion::philox_counter{w[i], w[n + i], w[2 * n + i], w[3 * n + i]} == want);
    }
  }
}

TEST_CASE("without run-time dispatch, philox_noise gives the same normals as the dispatched build's formula",
          "[rng][philox]") {
  // Element j of a draw is box_muller of its counter's words (the documented layout).
  const std::uint64_t seed = 0x299f31d0a4093822ull;
  diffusion::philox_noise noise(seed, 5);
  std::vector<float> z(1000);
  noise.fill_normal(std::span<float>(z), 1);
  for (std::size_t j = 0; j < z.size(); ++j) {
    const std::uint64_t block = j / 4;
    const diffusion::philox_counter w = diffusion::philox4x32_10(
        {static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32), 0, 5},
        {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
    const std::size_t pair = (j % 4) / 2;
    const auto want = diffusion::box_muller<float>(w[2 * pair], w[2 * pair + 1]);
    INFO("element " << j);
    REQUIRE(std::bit_cast<std::uint32_t>(z[j]) == std::bit_cast<std::uint32_t>(j % 2 == 0 ? want.first : want.second));
  }
}
