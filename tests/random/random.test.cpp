// SPDX-License-Identifier: MIT
// The noise layer's umbrella header: every source in it is a noise_source for float and double.
#include <catch2/catch.hpp>

#include <random>
#include <span>
#include <vector>

#include <diffusion/random/random.hpp>
#include <diffusion/core/noise.hpp>

template <class N>
constexpr bool serves_float_and_double = diffusion::noise_source<N, float>&& diffusion::noise_source<N, double>;

static_assert(serves_float_and_double<diffusion::philox_noise>);
static_assert(serves_float_and_double<diffusion::engine_noise<std::mt19937>>);
static_assert(serves_float_and_double<diffusion::engine_noise<std::mt19937&>>);
static_assert(serves_float_and_double<diffusion::replay_noise>);
// A type without fill_uniform is not a noise source.
struct normals_only {
  void fill_normal(std::span<float>, std::size_t) {}
};
static_assert(!diffusion::noise_source<normals_only, float>);

TEST_CASE("random.hpp brings in the whole noise layer", "[rng]") {
  static_assert(diffusion::philox4x32_10({0, 0, 0, 0}, {0, 0})[0] == 0x6627e8d5u);
  diffusion::philox_noise p(1);
  diffusion::engine_noise e{std::mt19937(1)};
  diffusion::replay_noise r({{0.0, 1.0}});
  std::vector<double> z(2);
  p.fill_normal(std::span<double>(z), 1);
  e.fill_normal(std::span<double>(z), 1);
  r.fill_normal(std::span<double>(z), 1);
  CHECK(z == std::vector<double>{0.0, 1.0});
}
