// SPDX-License-Identifier: MIT
// The adapter over standard engines: words in order, Box-Muller, ownership, statistics.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <tuple>
#include <vector>

#include <diffusion/core/noise.hpp>
#include <diffusion/random/engine_noise.hpp>

#include "moments.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;
using diffusion::engine_noise;

static_assert(diffusion::noise_source<engine_noise<std::mt19937>, float>);
static_assert(diffusion::noise_source<engine_noise<std::mt19937>, double>);
static_assert(diffusion::noise_source<engine_noise<std::mt19937&>, float>);
static_assert(diffusion::noise_source<engine_noise<std::mt19937_64>, double>);
static_assert(
    diffusion::noise_source<engine_noise<std::independent_bits_engine<std::minstd_rand, 32, std::uint32_t>>, double>);

namespace {

using scalar_types = std::tuple<float, double>;

}  // namespace

TEST_CASE("engine_noise takes 32-bit words straight from a 32-bit engine", "[rng][engine]") {
  // The standard fixes mt19937's output: the 10000th value of a default-constructed engine is
  // 4123659995 ([rand.predef]).
  engine_noise noise{std::mt19937{}};
  std::uint32_t w = 0;
  for (int i = 0; i < 10000; ++i) w = noise.next_word();
  CHECK(w == 4123659995u);
}

TEST_CASE("engine_noise word extraction for wider and narrower engines", "[rng][engine]") {
  SECTION("a 64-bit engine gives the low 32 bits of each output") {
    std::mt19937_64 reference(5);
    engine_noise noise{std::mt19937_64(5)};
    for (int i = 0; i < 100; ++i) REQUIRE(noise.next_word() == static_cast<std::uint32_t>(reference()));
  }
  SECTION("a 24-bit engine is concatenated: two outputs a, b give the low 32 bits of (a << 24) | b") {
    std::ranlux24 reference(5);
    engine_noise noise{std::ranlux24(5)};
    for (int i = 0; i < 100; ++i) {
      const auto a = static_cast<std::uint32_t>(reference());
      const auto b = static_cast<std::uint32_t>(reference());
      REQUIRE(noise.next_word() == ((a << 24) | b));
    }
  }
}

TEMPLATE_LIST_TEST_CASE("engine_noise normals are Box-Muller of consecutive word pairs, in order", "[rng][engine]",
                        scalar_types) {
  using S = TestType;
  const std::size_t n = GENERATE(1u, 2u, 7u, 256u, 257u, 1001u);
  std::mt19937 reference(99);
  engine_noise noise{std::mt19937(99)};
  std::vector<S> z(n);
  noise.fill_normal(std::span<S>(z), 1);
  for (std::size_t i = 0; i < n; i += 2) {
    const auto w0 = static_cast<std::uint32_t>(reference());
    const auto w1 = static_cast<std::uint32_t>(reference());
    const auto p = diffusion::box_muller<S>(w0, w1);
    REQUIRE(z[i] == p.first);
    if (i + 1 < n) REQUIRE(z[i + 1] == p.second);
  }
  // An odd count consumed a whole last pair: the engines are still in step.
  CHECK(noise.next_word() == static_cast<std::uint32_t>(reference()));

  SECTION("uniforms take exactly one word each") {
    std::vector<S> u(n);
    noise.fill_uniform(std::span<S>(u), 1);
    for (std::size_t i = 0; i < n; ++i)
      REQUIRE(u[i] == diffusion::uniform_from_word<S>(static_cast<std::uint32_t>(reference())));
    CHECK(noise.next_word() == static_cast<std::uint32_t>(reference()));
  }
}

TEST_CASE("engine_noise owns a copy, or holds a reference when built from std::ref", "[rng][engine]") {
  std::mt19937 engine(7);
  const std::mt19937 untouched(7);
  std::vector<double> z(10);
  SECTION("owning") {
    engine_noise noise{engine};
    static_assert(std::same_as<decltype(noise), engine_noise<std::mt19937>>);
    noise.fill_normal(std::span<double>(z), 1);
    CHECK(engine == untouched);
    CHECK(noise.engine() != untouched);
  }
  SECTION("by reference") {
    engine_noise noise{std::ref(engine)};
    static_assert(std::same_as<decltype(noise), engine_noise<std::mt19937&>>);
    noise.fill_normal(std::span<double>(z), 1);
    CHECK(engine != untouched);
    CHECK(&noise.engine() == &engine);
    std::mt19937 expected(7);
    expected.discard(10);
    CHECK(engine == expected);
  }
}

TEMPLATE_LIST_TEST_CASE("engine_noise is deterministic for a fixed seed and differs between seeds", "[rng][engine]",
                        scalar_types) {
  using S = TestType;
  engine_noise a{std::mt19937(2024)}, b{std::mt19937(2024)}, c{std::mt19937(2025)};
  std::vector<S> za(500), zb(500), zc(500);
  for (int draw = 0; draw < 3; ++draw) {
    a.fill_normal(std::span<S>(za), 5);
    b.fill_normal(std::span<S>(zb), 5);
    c.fill_normal(std::span<S>(zc), 5);
    CHECK(za == zb);
    CHECK(za != zc);
  }
}

TEMPLATE_LIST_TEST_CASE("one million engine_noise normals and uniforms have the right moments", "[rng][engine][stats]",
                        scalar_types) {
  using S = TestType;
  const std::size_t n = 1'000'000;
  const double root_n = std::sqrt(static_cast<double>(n));
  SECTION("normals, mt19937") {
    engine_noise noise{std::mt19937(12345)};
    std::vector<S> z(n);
    noise.fill_normal(std::span<S>(z), 1);
    const auto m = diffusion_test::sample_moments<S>(z);
    CHECK_THAT(m.mean, WithinAbs(0.0, 5 / root_n));
    CHECK_THAT(m.variance, WithinAbs(1.0, 5 * std::sqrt(2.0) / root_n));
    CHECK_THAT(m.skewness, WithinAbs(0.0, 5 * std::sqrt(6.0) / root_n));
    CHECK_THAT(m.excess_kurtosis, WithinAbs(0.0, 5 * std::sqrt(24.0) / root_n));
    const double p = std::erfc(4 / std::sqrt(2.0));
    std::size_t tail = 0;
    for (S v : z) tail += std::abs(static_cast<double>(v)) > 4;
    CHECK_THAT(static_cast<double>(tail), WithinAbs(p * n, 5 * std::sqrt(p * n)));
    CHECK(diffusion_test::ks_distance<S>(z, diffusion_test::normal_cdf) < diffusion_test::ks_tolerance(n));
  }
  SECTION("uniforms, ranlux24 concatenated") {
    engine_noise noise{std::ranlux24(12345)};
    std::vector<S> u(n);
    noise.fill_uniform(std::span<S>(u), 1);
    CHECK(std::all_of(u.begin(), u.end(), [](S v) { return v >= S(0) && v < S(1); }));
    const auto m = diffusion_test::sample_moments<S>(u);
    CHECK_THAT(m.mean, WithinAbs(0.5, 5 * std::sqrt(1.0 / 12) / root_n));
    CHECK_THAT(m.variance, WithinAbs(1.0 / 12, 5 * std::sqrt(1.0 / 180) / root_n));
  }
}

TEST_CASE("engine_noise rejects a batch that does not divide the tensor", "[rng][engine][errors]") {
  engine_noise noise{std::mt19937(1)};
  std::vector<float> z(10);
  CHECK_THROWS_WITH(noise.fill_normal(std::span<float>(z), 3),
                    Contains("engine_noise") && Contains("batch = 3") && Contains("out.size() = 10"));
  CHECK_THROWS_WITH(noise.fill_uniform(std::span<float>(z), 0), Contains("batch = 0"));
  // Nothing was consumed by the rejected calls.
  std::mt19937 reference(1);
  CHECK(noise.next_word() == static_cast<std::uint32_t>(reference()));
}
