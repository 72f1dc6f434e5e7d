// SPDX-License-Identifier: MIT
// The counter-based noise source: layout, pure-function property, batch-size invariance, statistics.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <numeric>
#include <algorithm>
#include <concepts>
#include <random>
#include <span>
#include <stdexcept>
#include <tuple>
#include <vector>

#include <diffusion/backend/reference.hpp>
#include <diffusion/core/noise.hpp>
#include <diffusion/random/philox_noise.hpp>

#include "moments.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;
using diffusion::philox_noise;

static_assert(diffusion::noise_source<philox_noise, float>);
static_assert(diffusion::noise_source<philox_noise, double>);

namespace {

using scalar_types = std::tuple<float, double>;

template <class S>
bool bit_identical(const std::vector<S>& a, const std::vector<S>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(S)) == 0;
}

// Element j of (seed, stream, draw) computed straight from the documented layout.
template <class S>
S expected_normal(std::uint64_t seed, std::uint32_t stream, std::uint32_t draw, std::uint64_t j) {
  const std::uint64_t block = j / 4;
  const diffusion::philox_counter w = diffusion::philox4x32_10(
      {static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32), draw, stream},
      {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
  const std::size_t pair = (j % 4) / 2;
  const auto z = diffusion::box_muller<S>(w[2 * pair], w[2 * pair + 1]);
  return j % 2 == 0 ? z.first : z.second;
}

template <class S>
S expected_uniform(std::uint64_t seed, std::uint32_t stream, std::uint32_t draw, std::uint64_t j) {
  const std::uint64_t block = j / 4;
  const diffusion::philox_counter w = diffusion::philox4x32_10(
      {static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32), draw, stream},
      {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
  return diffusion::uniform_from_word<S>(w[j % 4]);
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("philox_noise seed 0, stream 0, draw 0 is the all-zero known-answer block", "[rng][philox]",
                        scalar_types) {
  using S = TestType;
  // Counter (0, 0, 0, 0) and key (0, 0) give Random123's first known answer.
  const std::uint32_t w[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
  philox_noise noise(0);
  std::vector<S> z(4), u(4);
  noise.fill_normal(std::span<S>(z), 1);
  philox_noise noise2(0);
  noise2.fill_uniform(std::span<S>(u), 1);
  const auto p0 = diffusion::box_muller<S>(w[0], w[1]);
  const auto p1 = diffusion::box_muller<S>(w[2], w[3]);
  CHECK(z[0] == p0.first);
  CHECK(z[1] == p0.second);
  CHECK(z[2] == p1.first);
  CHECK(z[3] == p1.second);
  for (std::size_t i = 0; i < 4; ++i) CHECK(u[i] == diffusion::uniform_from_word<S>(w[i]));
  // Pinned values (from the double formulas; libm-independent to the tolerance): r0 = sqrt(-2 ln u1)
  // with u1 = (0x6627e8d5 + 1) 2^-32, theta = 2 pi 0xe169c58d 2^-32, and so on. Float uses the top 24
  // bits of each word, so it agrees to ~1e-6.
  const double tol = std::same_as<S, float> ? 2e-6 : 1e-13;
  const double u1a = (0x6627e8d5 + 1.0) / 4294967296.0, u2a = 0xe169c58d / 4294967296.0;
  const double u1b = (0xbc57ac4c + 1.0) / 4294967296.0, u2b = 0x9b00dbd8 / 4294967296.0;
  const double pi2 = 2 * std::numbers::pi;
  CHECK_THAT(static_cast<double>(z[0]), WithinAbs(std::sqrt(-2 * std::log(u1a)) * std::cos(pi2 * u2a), tol));
  CHECK_THAT(static_cast<double>(z[1]), WithinAbs(std::sqrt(-2 * std::log(u1a)) * std::sin(pi2 * u2a), tol));
  CHECK_THAT(static_cast<double>(z[2]), WithinAbs(std::sqrt(-2 * std::log(u1b)) * std::cos(pi2 * u2b), tol));
  CHECK_THAT(static_cast<double>(z[3]), WithinAbs(std::sqrt(-2 * std::log(u1b)) * std::sin(pi2 * u2b), tol));
}

TEMPLATE_LIST_TEST_CASE("philox_noise element j of draw k of stream s follows the documented counter layout",
                        "[rng][philox]", scalar_types) {
  using S = TestType;
  const std::uint64_t seed = 0x299f31d0a4093822ull;
  const std::uint32_t stream = GENERATE(0u, 7u, 0xfffffff0u);
  const bool per_sample = GENERATE(false, true);
  // Samples of a few counters (up to 16 elements) take the pair-by-pair path of the transform,
  // longer ones the vector path; sizes that are not multiples of 4 end inside a counter.
  const std::size_t batch = 3, d = GENERATE(as<std::size_t>{}, 1, 2, 3, 5, 16, 17, 37);
  philox_noise noise(seed, stream, per_sample);
  std::vector<S> z(batch * d), u(batch * d);
  for (std::uint32_t k = 0; k < 3; ++k) {
    noise.fill_normal(std::span<S>(z), batch);   // draw 2k
    noise.fill_uniform(std::span<S>(u), batch);  // draw 2k + 1
    for (std::size_t b = 0; b < batch; ++b)
      for (std::size_t i = 0; i < d; ++i) {
        const std::size_t flat = b * d + i;
        const std::uint32_t s = per_sample ? stream + static_cast<std::uint32_t>(b) : stream;
        const std::uint64_t j = per_sample ? i : flat;
        INFO("draw " << 2 * k << ", sample " << b << ", element " << i);
        REQUIRE(z[flat] == expected_normal<S>(seed, s, 2 * k, j));
        REQUIRE(u[flat] == expected_uniform<S>(seed, s, 2 * k + 1, j));
      }
  }
  CHECK(noise.draw_index() == 6);
}

TEMPLATE_LIST_TEST_CASE("fill_normal_range over any split is bit-identical to a whole fill", "[rng][philox]",
                        scalar_types) {
  using S = TestType;
  const bool per_sample = GENERATE(false, true);
  std::mt19937 split_rng(1234);  // chooses the split points
  const std::size_t sizes[][2] = {{1, 1},   {3, 1},       {4, 2},     {5, 5},    {6, 3},
                                  {257, 1}, {7 * 149, 7}, {2048, 16}, {1030, 10}};
  for (const auto& sz : sizes) {
    const std::size_t n = sz[0], batch = sz[1];
    philox_noise noise(0xdeadbeefcafef00dull, 11, per_sample);
    std::vector<S> whole_z(n), whole_u(n);
    const std::uint64_t draw_z = noise.draw_index();
    noise.fill_normal(std::span<S>(whole_z), batch);
    const std::uint64_t draw_u = noise.draw_index();
    noise.fill_uniform(std::span<S>(whole_u), batch);
    for (int trial = 0; trial < 20; ++trial) {
      // Random cut points (not multiples of 4 in general), filled in a shuffled order.
      std::vector<std::size_t> cuts{0, n};
      const int pieces = 1 + static_cast<int>(split_rng() % 7);
      for (int p = 0; p < pieces; ++p) cuts.push_back(split_rng() % (n + 1));
      std::sort(cuts.begin(), cuts.end());
      std::vector<std::size_t> order(cuts.size() - 1);
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), split_rng);
      std::vector<S> z(n, S(-99)), u(n, S(-99));
      for (std::size_t p : order) {
        noise.fill_normal_range(std::span<S>(z), batch, draw_z, cuts[p], cuts[p + 1]);
        noise.fill_uniform_range(std::span<S>(u), batch, draw_u, cuts[p], cuts[p + 1]);
      }
      INFO("n = " << n << ", batch = " << batch << ", trial " << trial);
      REQUIRE(bit_identical(z, whole_z));
      REQUIRE(bit_identical(u, whole_u));
    }
  }
}

TEST_CASE("fill_normal_range writes only out[begin, end)", "[rng][philox]") {
  const philox_noise noise(5, 0, true);
  std::vector<double> z(40, -99.0);
  noise.fill_normal_range(std::span<double>(z), 4, 0, 13, 27);
  for (std::size_t i = 0; i < z.size(); ++i) {
    INFO("element " << i);
    CHECK((z[i] == -99.0) == (i < 13 || i >= 27));
  }
  std::vector<double> e(40, -99.0);
  noise.fill_normal_range(std::span<double>(e), 4, 0, 17, 17);  // empty range
  CHECK(std::all_of(e.begin(), e.end(), [](double v) { return v == -99.0; }));
}

TEMPLATE_LIST_TEST_CASE("per-sample streams make a sample's noise independent of the batch size", "[rng][philox]",
                        scalar_types) {
  using S = TestType;
  const std::size_t d = GENERATE(1u, 5u, 13u, 64u);
  const std::size_t small = 3, large = 8;
  philox_noise a(77, 100, true), b(77, 100, true);
  std::vector<S> za(small * d), zb(large * d);
  for (int draw = 0; draw < 3; ++draw) {
    a.fill_normal(std::span<S>(za), small);
    b.fill_normal(std::span<S>(zb), large);
    for (std::size_t i = 0; i < small * d; ++i) REQUIRE(za[i] == zb[i]);
  }
  SECTION("sample b of a per-sample source is stream (stream + b) of a plain source with one sample") {
    philox_noise per_sample(77, 100, true), plain(77, 102, false);
    std::vector<S> batch(large * d), one(d);
    per_sample.fill_normal(std::span<S>(batch), large);
    plain.fill_normal(std::span<S>(one), 1);
    for (std::size_t i = 0; i < d; ++i) REQUIRE(batch[2 * d + i] == one[i]);
  }
  SECTION("without per-sample streams the sample-size split changes the noise of sample 1") {
    philox_noise p(77, 100, false), q(77, 100, true);
    std::vector<S> zp(small * d), zq(small * d);
    p.fill_normal(std::span<S>(zp), small);
    q.fill_normal(std::span<S>(zq), small);
    bool any_difference = false;
    for (std::size_t i = d; i < 2 * d; ++i) any_difference = any_difference || zp[i] != zq[i];
    CHECK(any_difference);
  }
}

TEMPLATE_LIST_TEST_CASE("draws, streams and seeds give different noise; the draw index is shared and explicit",
                        "[rng][philox]", scalar_types) {
  using S = TestType;
  const std::size_t n = 1000;
  auto fill = [&](philox_noise& p) {
    std::vector<S> z(n);
    p.fill_normal(std::span<S>(z), 1);
    return z;
  };
  auto count_equal = [](const std::vector<S>& x, const std::vector<S>& y) {
    std::size_t c = 0;
    for (std::size_t i = 0; i < x.size(); ++i) c += x[i] == y[i];
    return c;
  };
  philox_noise p(42);
  const auto d0 = fill(p);
  const auto d1 = fill(p);
  CHECK(count_equal(d0, d1) == 0);
  philox_noise q(42, 1), r(43);
  CHECK(count_equal(d0, fill(q)) == 0);
  CHECK(count_equal(d0, fill(r)) == 0);
  philox_noise same(42);
  CHECK(bit_identical(d0, fill(same)));

  SECTION("normals and uniforms share the draw counter") {
    philox_noise s(42);
    std::vector<S> u(n);
    s.fill_uniform(std::span<S>(u), 1);
    CHECK(s.draw_index() == 1);
    CHECK(bit_identical(fill(s), d1));  // draw 1
  }
  SECTION("next_draw hands out the index and advances, as a backend's own fill does") {
    philox_noise s(42);
    CHECK(s.next_draw() == 0);
    CHECK(s.draw_index() == 1);
    std::vector<S> z(n);
    s.fill_normal_range(std::span<S>(z), 1, s.next_draw(), 0, n);
    CHECK(bit_identical(z, d1));
    CHECK(s.draw_index() == 2);
  }
  SECTION("accessors") {
    const philox_noise s(0x123456789abcdefull, 9, true);
    CHECK(s.seed() == 0x123456789abcdefull);
    CHECK(s.stream() == 9);
    CHECK(s.per_sample_streams());
    CHECK(s.draw_index() == 0);
  }
}

TEMPLATE_LIST_TEST_CASE("one million philox normals have the moments and tails of N(0, 1)", "[rng][philox][stats]",
                        scalar_types) {
  using S = TestType;
  const std::size_t n = 1'000'000;
  const std::uint64_t seed = GENERATE(1ull, 0x9e3779b97f4a7c15ull);
  philox_noise noise(seed);
  std::vector<S> z(n);
  noise.fill_normal(std::span<S>(z), 1);
  const auto m = diffusion_test::sample_moments<S>(z);
  const double root_n = std::sqrt(static_cast<double>(n));
  // Five standard errors of each statistic for an i.i.d. N(0, 1) sample of size n.
  CHECK_THAT(m.mean, WithinAbs(0.0, 5 * 1.0 / root_n));
  CHECK_THAT(m.variance, WithinAbs(1.0, 5 * std::sqrt(2.0) / root_n));
  CHECK_THAT(m.skewness, WithinAbs(0.0, 5 * std::sqrt(6.0) / root_n));
  CHECK_THAT(m.excess_kurtosis, WithinAbs(0.0, 5 * std::sqrt(24.0) / root_n));
  // Tails: P(|z| > 4) = erfc(4 / sqrt 2) = 6.334e-5; the count is Binomial(n, p).
  for (double t : {2.0, 3.0, 4.0}) {
    const double p = std::erfc(t / std::sqrt(2.0));
    std::size_t count = 0;
    for (S v : z) count += std::abs(static_cast<double>(v)) > t;
    const double expected = p * static_cast<double>(n);
    INFO("P(|z| > " << t << ")");
    CHECK_THAT(static_cast<double>(count), WithinAbs(expected, 5 * std::sqrt(expected * (1 - p))));
  }
  CHECK(diffusion_test::ks_distance<S>(z, diffusion_test::normal_cdf) < diffusion_test::ks_tolerance(n));
  // Neighbours inside one Philox block (lags 1, 2, 3), across blocks (4) and far apart are uncorrelated.
  const std::span<const S> all(z);
  for (std::size_t lag : {1u, 2u, 3u, 4u, 5u, 1000u}) {
    INFO("lag " << lag);
    CHECK(std::abs(diffusion_test::correlation(all.first(n - lag), all.last(n - lag))) < 5 / root_n);
  }
  // Squares too: Box-Muller pairs share a radius, which must not show up as dependence.
  std::vector<S> sq(n);
  for (std::size_t i = 0; i < n; ++i) sq[i] = z[i] * z[i];
  const std::span<const S> sqs(sq);
  for (std::size_t lag : {1u, 2u, 4u}) {
    INFO("lag of squares " << lag);
    // Var(z^2) = 2; the correlation of independent squares has standard error 1/sqrt(n).
    CHECK(std::abs(diffusion_test::correlation(sqs.first(n - lag), sqs.last(n - lag))) < 5 / root_n);
  }
}

TEMPLATE_LIST_TEST_CASE("draws, streams and per-sample samples are uncorrelated", "[rng][philox][stats]",
                        scalar_types) {
  using S = TestType;
  const std::size_t n = 200'000;
  const double tol = 5 / std::sqrt(static_cast<double>(n));
  philox_noise a(2024, 0), b(2024, 1);
  std::vector<S> a0(n), a1(n), b0(n);
  a.fill_normal(std::span<S>(a0), 1);
  a.fill_normal(std::span<S>(a1), 1);
  b.fill_normal(std::span<S>(b0), 1);
  CHECK(std::abs(diffusion_test::correlation<S>(a0, a1)) < tol);
  CHECK(std::abs(diffusion_test::correlation<S>(a0, b0)) < tol);
  philox_noise ps(2024, 0, true);
  std::vector<S> two(2 * n);
  ps.fill_normal(std::span<S>(two), 2);
  const std::span<const S> t(two);
  CHECK(std::abs(diffusion_test::correlation(t.first(n), t.last(n))) < tol);
}

TEMPLATE_LIST_TEST_CASE("one million philox uniforms lie in [0, 1) with the moments of U[0, 1)", "[rng][philox][stats]",
                        scalar_types) {
  using S = TestType;
  const std::size_t n = 1'000'000;
  philox_noise noise(31337, 3);
  std::vector<S> u(n);
  noise.fill_uniform(std::span<S>(u), 1);
  CHECK(std::all_of(u.begin(), u.end(), [](S v) { return v >= S(0) && v < S(1); }));
  const auto m = diffusion_test::sample_moments<S>(u);
  const double root_n = std::sqrt(static_cast<double>(n));
  // Var(u) = 1/12; Var((u - 1/2)^2) = 1/80 - 1/144 = 1/180.
  CHECK_THAT(m.mean, WithinAbs(0.5, 5 * std::sqrt(1.0 / 12) / root_n));
  CHECK_THAT(m.variance, WithinAbs(1.0 / 12, 5 * std::sqrt(1.0 / 180) / root_n));
  CHECK(diffusion_test::ks_distance<S>(u, [](double x) { return std::clamp(x, 0.0, 1.0); }) <
        diffusion_test::ks_tolerance(n));
}

TEST_CASE("philox_noise works through draw_normal and draw_uniform on a tensor", "[rng][philox]") {
  diffusion::reference_backend<float> be;
  diffusion::reference_tensor<float> z({4, 3}), u({4, 3});
  philox_noise noise(8, 0, true);
  diffusion::draw_normal(be, noise, z);
  diffusion::draw_uniform(noise, u);
  CHECK(noise.draw_index() == 2);
  philox_noise again(8, 0, true);
  std::vector<float> expected(12);
  again.fill_normal(std::span<float>(expected), 4);
  CHECK(z.data == expected);
}

TEST_CASE("philox_noise rejects a bad batch, range, draw index or stream overflow, naming the parameter",
          "[rng][philox][errors]") {
  philox_noise noise(1, 0, true);
  std::vector<double> z(12);
  const std::span<double> out(z);
  CHECK_THROWS_WITH(noise.fill_normal(out, 5), Contains("batch = 5") && Contains("divisor of out.size() = 12"));
  CHECK_THROWS_WITH(noise.fill_uniform(out, 0), Contains("batch = 0"));
  CHECK(noise.draw_index() == 0);  // a rejected fill does not consume a draw
  CHECK_THROWS_WITH(noise.fill_normal_range(out, 3, 0, 0, 13), Contains("end = 13") && Contains("[0, 12]"));
  CHECK_THROWS_WITH(noise.fill_normal_range(out, 3, 0, 7, 6), Contains("end = 6") && Contains("[begin, out.size()] = [7, 12]"));
  CHECK_THROWS_WITH(noise.fill_normal_range(out, 3, 0, 20, 25), Contains("begin = 20") && Contains("[0, out.size()] = [0, 12]"));
  // write_normal_range's messages name its own parameters.
  std::vector<double> block(4);
  const std::span<double> dst(block);
  CHECK_THROWS_WITH(noise.write_normal_range(12, 3, 0, 20, dst), Contains("begin = 20") && Contains("[0, size] = [0, 12]"));
  CHECK_THROWS_WITH(noise.write_normal_range(12, 3, 0, 10, dst),
                    Contains("begin + dst.size() = 14") && Contains("[begin, size] = [10, 12]"));
  CHECK_THROWS_WITH(noise.write_normal_range(12, 5, 0, 0, dst), Contains("batch = 5") && Contains("a divisor of size = 12"));
  CHECK_THROWS_WITH(noise.fill_normal_range(out, 3, std::uint64_t{1} << 32, 0, 12),
                    Contains("draw index = 4294967296") && Contains("[0, 2^32)"));
  CHECK_NOTHROW(noise.fill_normal_range(out, 3, 0xffffffffull, 0, 12));
  philox_noise high(1, 0xfffffffeu, true);
  CHECK_THROWS_WITH(high.fill_normal(out, 3), Contains("stream + batch - 1 = 4294967296"));
  CHECK_NOTHROW(high.fill_normal(out, 2));
  philox_noise plain(1, 0xffffffffu, false);
  CHECK_NOTHROW(plain.fill_normal(out, 3));  // one stream only: no overflow
  std::vector<double> empty;
  CHECK_NOTHROW(noise.fill_normal(std::span<double>(empty), 0));
  // An empty tensor draws nothing, so no stream is used: a [4, 0] tensor is fine at any stream.
  philox_noise last(1, 0xffffffffu, true);
  CHECK_NOTHROW(last.fill_normal(std::span<double>(empty), 4));
  CHECK(last.draw_index() == 1);
  CHECK_THROWS_AS(noise.fill_normal(out, 5), std::invalid_argument);
}
