// SPDX-License-Identifier: MIT
// Uniforms and the Box-Muller transform from 32-bit words.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <numbers>
#include <tuple>
#include <vector>

#include <diffusion/random/normal.hpp>
#include <diffusion/random/philox.hpp>

using Catch::Matchers::WithinAbs;

namespace {

using scalar_types = std::tuple<float, double>;

// Words for the property tests: Philox output is a convenient fixed, well-spread set.
std::vector<std::uint32_t> test_words(std::size_t n) {
  std::vector<std::uint32_t> w;
  for (std::uint32_t c = 0; w.size() < n; ++c)
    for (std::uint32_t x : diffusion::philox4x32_10({c, 0, 0, 0}, {0x12345678, 0x9abcdef0})) w.push_back(x);
  w.resize(n);
  // Edge words: the smallest and largest uniforms, and the grid steps next to them.
  const std::uint32_t edges[] = {0u, 1u, 0xffu, 0x100u, 0xffffff00u, 0xfffffeffu, 0xfffffffeu, 0xffffffffu};
  for (std::uint32_t e : edges)
    for (std::uint32_t f : edges) {
      w.push_back(e);
      w.push_back(f);
    }
  return w;
}

// Independent reference in long double: r = sqrt(-2 ln u1), theta = 2 pi u2 with u1 = (m1 + 1) 2^-b,
// u2 = m2 2^-b and m the top b bits of the word.
struct reference_pair {
  long double z0, z1, radius;
};

reference_pair reference_box_muller(std::uint32_t w0, std::uint32_t w1, int bits) {
  const long double scale = std::ldexp(1.0L, -bits);
  const long double u1 = (static_cast<long double>(w0 >> (32 - bits)) + 1.0L) * scale;
  const long double u2 = static_cast<long double>(w1 >> (32 - bits)) * scale;
  const long double r = std::sqrt(-2.0L * std::log(u1));
  const long double theta = 2.0L * std::numbers::pi_v<long double> * u2;
  return {r * std::cos(theta), r * std::sin(theta), r};
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("uniform_from_word is exact on a 2^-b grid and stays in [0, 1)", "[rng][normal]",
                        scalar_types) {
  using S = TestType;
  constexpr int bits = std::numeric_limits<S>::digits < 32 ? std::numeric_limits<S>::digits : 32;
  CHECK(bits == (std::same_as<S, float> ? 24 : 32));
  const S step = std::ldexp(S(1), -bits);
  CHECK(diffusion::uniform_from_word<S>(0u) == S(0));
  CHECK(diffusion::uniform_from_word<S>(0xffffffffu) == S(1) - step);
  CHECK(diffusion::uniform_from_word<S>(0xffffffffu) < S(1));
  CHECK(diffusion::uniform_from_word<S>(0x80000000u) == S(0.5));
  CHECK(diffusion::uniform_open_closed_from_word<S>(0u) == step);
  CHECK(diffusion::uniform_open_closed_from_word<S>(0xffffffffu) == S(1));
  CHECK(diffusion::uniform_open_closed_from_word<S>(0x7fffffffu) == S(0.5));
  for (std::uint32_t w : test_words(4096)) {
    const S u = diffusion::uniform_from_word<S>(w);
    const S v = diffusion::uniform_open_closed_from_word<S>(w);
    REQUIRE(u >= S(0));
    REQUIRE(u < S(1));
    REQUIRE(v > S(0));
    REQUIRE(v <= S(1));
    // Exact: the value is the top `bits` bits of the word scaled, with no rounding.
    REQUIRE(static_cast<long double>(u) == std::ldexp(static_cast<long double>(w >> (32 - bits)), -bits));
    REQUIRE(v - u == step);
  }
  static_assert(diffusion::uniform_from_word<S>(0x40000000u) == S(0.25), "constexpr");
}

TEST_CASE("float uniforms are the double uniforms truncated to 24 bits", "[rng][normal]") {
  for (std::uint32_t w : test_words(4096)) {
    const double d = diffusion::uniform_from_word<double>(w);
    REQUIRE(diffusion::uniform_from_word<float>(w) ==
            static_cast<float>(std::ldexp(std::floor(std::ldexp(d, 24)), -24)));
  }
}

TEMPLATE_LIST_TEST_CASE("box_muller matches the Box-Muller formulas evaluated in long double", "[rng][normal]",
                        scalar_types) {
  using S = TestType;
  constexpr int bits = std::numeric_limits<S>::digits < 32 ? std::numeric_limits<S>::digits : 32;
  const std::vector<std::uint32_t> w = test_words(20000);
  // Rounding of u is nil, of 2 pi u a few eps relative (so a few eps * r absolute after cos/sin),
  // of log/sqrt/cos/sin about one ulp each: 16 eps * max(1, r) bounds the error.
  const double eps = std::numeric_limits<S>::epsilon();
  for (std::size_t i = 0; i + 1 < w.size(); i += 2) {
    const auto z = diffusion::box_muller<S>(w[i], w[i + 1]);
    const reference_pair ref = reference_box_muller(w[i], w[i + 1], bits);
    const double tol = 16 * eps * std::max(1.0, static_cast<double>(ref.radius));
    INFO("words " << w[i] << ", " << w[i + 1]);
    REQUIRE_THAT(static_cast<double>(z.first), WithinAbs(static_cast<double>(ref.z0), tol));
    REQUIRE_THAT(static_cast<double>(z.second), WithinAbs(static_cast<double>(ref.z1), tol));
  }
}

TEMPLATE_LIST_TEST_CASE("box_muller at the ends of the uniform range", "[rng][normal]", scalar_types) {
  using S = TestType;
  SECTION("u1 = 1 gives radius 0") {
    const auto z = diffusion::box_muller<S>(0xffffffffu, 0x12345678u);
    CHECK(z.first == S(0));
    CHECK(z.second == S(0));
  }
  SECTION("the smallest u1 gives the largest radius, finite") {
    const auto z = diffusion::box_muller<S>(0u, 0u);  // theta = 0: all of it in the cosine
    // u1 = 2^-b: r = sqrt(2 b ln 2), 5.77 for float (b = 24) and 6.66 for double (b = 32).
    const double bits = std::same_as<S, float> ? 24 : 32;
    const double r_max = std::sqrt(2.0 * bits * std::log(2.0));
    CHECK_THAT(static_cast<double>(z.first), WithinAbs(r_max, 1e-5));
    CHECK(z.second == S(0));
    CHECK(std::isfinite(z.first));
  }
  SECTION("theta = pi / 2 puts the radius in the sine") {
    const auto z = diffusion::box_muller<S>(0x7fffffffu, 0x40000000u);  // u1 = 1/2, u2 = 1/4
    const double r = std::sqrt(2.0 * std::log(2.0));
    CHECK_THAT(static_cast<double>(z.first), WithinAbs(0.0, 4 * std::numeric_limits<S>::epsilon()));
    CHECK_THAT(static_cast<double>(z.second), WithinAbs(r, 4 * std::numeric_limits<S>::epsilon()));
  }
}

TEMPLATE_LIST_TEST_CASE("the block kernels equal the per-element functions bit for bit", "[rng][normal]",
                        scalar_types) {
  using S = TestType;
  const std::vector<std::uint32_t> w = test_words(1000);
  std::vector<S> normals(w.size()), uniforms(w.size());
  diffusion::box_muller_block<S>(w, normals);
  diffusion::uniform_block<S>(w, uniforms);
  for (std::size_t i = 0; i + 1 < w.size(); i += 2) {
    const auto z = diffusion::box_muller<S>(w[i], w[i + 1]);
    REQUIRE(std::bit_cast<std::uint64_t>(static_cast<double>(normals[i])) ==
            std::bit_cast<std::uint64_t>(static_cast<double>(z.first)));
    REQUIRE(std::bit_cast<std::uint64_t>(static_cast<double>(normals[i + 1])) ==
            std::bit_cast<std::uint64_t>(static_cast<double>(z.second)));
  }
  for (std::size_t i = 0; i < w.size(); ++i) REQUIRE(uniforms[i] == diffusion::uniform_from_word<S>(w[i]));
}
