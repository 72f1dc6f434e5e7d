// SPDX-License-Identifier: MIT
// The sliced Wasserstein distance of the examples (examples/common/sliced_wasserstein.hpp) against
// closed forms, and the example data sets (examples/common/datasets.hpp).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <span>
#include <vector>

#include "common/datasets.hpp"
#include "common/sliced_wasserstein.hpp"

namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
namespace ex = examples;

}  // namespace

TEST_CASE("sliced Wasserstein: zero between a point set and any reordering of it", "[examples][sw]") {
  const std::vector<double> a = ex::make_dataset(ex::dataset::moons, 500, 1);
  REQUIRE(ex::sliced_wasserstein(a, a, 2) == 0.0);
  std::vector<double> b(a.size());
  for (std::size_t i = 0; i < 500; ++i) {  // reverse the order of the points
    b[2 * i] = a[2 * (499 - i)];
    b[2 * i + 1] = a[2 * (499 - i) + 1];
  }
  REQUIRE(ex::sliced_wasserstein(a, b, 2) == 0.0);
}

TEST_CASE("sliced Wasserstein in 1-D is the Wasserstein distance: a shift by c costs |c|", "[examples][sw]") {
  // In one dimension every direction is +-1, and W_p between a set and its translate is |c|.
  const std::vector<double> a{0.3, -1.2, 2.5, 0.0, 7.0};
  std::vector<double> b = a;
  for (double& v : b) v -= 0.75;
  REQUIRE_THAT(ex::sliced_wasserstein(a, b, 1), WithinRel(0.75, 1e-14));
  REQUIRE_THAT(ex::sliced_wasserstein(a, b, 1, {.order = 2}), WithinRel(0.75, 1e-14));
  // Two-point sets {0, 1} and {0, 3}: the sorted coupling pairs 1 with 3, W_1 = 1, W_2 = sqrt(2).
  const std::vector<double> c{1.0, 0.0}, d{0.0, 3.0};
  REQUIRE_THAT(ex::sliced_wasserstein(c, d, 1), WithinRel(1.0, 1e-15));
  REQUIRE_THAT(ex::sliced_wasserstein(c, d, 1, {.order = 2}), WithinRel(std::sqrt(2.0), 1e-15));
}

TEST_CASE("sliced Wasserstein of a 2-D translation is |d| E|cos|, 2|d|/pi", "[examples][sw]") {
  // For a translate, every projection contributes |<theta, d>| exactly; averaged over K uniform
  // directions that is |d| times the mean of |cos phi| (mean 2/pi, sd sqrt(1/2 - 4/pi^2) = 0.308).
  const std::vector<double> a = ex::make_dataset(ex::dataset::mixture, 300, 2);
  std::vector<double> b = a;
  for (std::size_t i = 0; i < 300; ++i) b[2 * i] += 3.0, b[2 * i + 1] -= 4.0;  // |d| = 5
  const std::size_t k = 1024;
  const double tol = 5.0 * 5.0 * std::sqrt(0.5 - 4.0 / (std::numbers::pi * std::numbers::pi)) / std::sqrt(double(k));
  REQUIRE_THAT(ex::sliced_wasserstein(a, b, 2, {.projections = k}), WithinAbs(5.0 * 2.0 / std::numbers::pi, tol));
}

TEST_CASE("sliced Wasserstein is symmetric, scales with the data and SW_2 >= SW_1", "[examples][sw]") {
  const std::vector<double> a = ex::make_dataset(ex::dataset::swiss_roll, 400, 3);
  const std::vector<double> b = ex::make_dataset(ex::dataset::mixture, 400, 4);
  const double ab = ex::sliced_wasserstein(a, b, 2);
  REQUIRE(ab > 0.5);
  REQUIRE_THAT(ex::sliced_wasserstein(b, a, 2), WithinRel(ab, 1e-14));
  std::vector<double> a2 = a, b2 = b;
  for (double& v : a2) v *= 2.5;
  for (double& v : b2) v *= 2.5;
  REQUIRE_THAT(ex::sliced_wasserstein(a2, b2, 2), WithinRel(2.5 * ab, 1e-12));
  REQUIRE(ex::sliced_wasserstein(a, b, 2, {.order = 2}) >= ab);
  // Float samples against double data give the double result up to float rounding.
  const std::vector<float> af(a.begin(), a.end());
  REQUIRE_THAT(ex::sliced_wasserstein(af, b, 2), WithinRel(ab, 1e-5));
}

TEST_CASE("sliced Wasserstein rejects mismatched inputs", "[examples][sw]") {
  const std::vector<double> a(10, 0.0), b(8, 0.0), c(9, 0.0);
  REQUIRE_THROWS_WITH(ex::sliced_wasserstein(a, b, 2), Contains("b.size()"));
  REQUIRE_THROWS_WITH(ex::sliced_wasserstein(c, c, 2), Contains("a.size()"));
  REQUIRE_THROWS_WITH(ex::sliced_wasserstein(a, a, 0), Contains("dim"));
  REQUIRE_THROWS_WITH(ex::sliced_wasserstein(a, a, 2, {.order = 3}), Contains("order"));
}

TEST_CASE("the noise floor shrinks with the sample size", "[examples][sw]") {
  // Independent draws of the same distribution: SW_1 ~ 1/sqrt(n). Averaged over 4 pairs, 16x the
  // points must give a clearly smaller distance (expected 4x).
  for (const ex::dataset d : ex::all_datasets) {
    double small = 0.0, large = 0.0;
    for (std::uint64_t s = 0; s < 4; ++s) {
      small += ex::sliced_wasserstein(ex::make_dataset(d, 250, 10 + s), ex::make_dataset(d, 250, 20 + s), 2);
      large += ex::sliced_wasserstein(ex::make_dataset(d, 4000, 30 + s), ex::make_dataset(d, 4000, 40 + s), 2);
    }
    INFO(ex::name(d));
    REQUIRE(large < 0.5 * small);
  }
}

TEST_CASE("data sets are pure functions of (n, seed), inside [-4, 4]^2", "[examples][datasets]") {
  for (const ex::dataset d : ex::all_datasets) {
    INFO(ex::name(d));
    const std::vector<double> a = ex::make_dataset(d, 3000, 5), b = ex::make_dataset(d, 3000, 5);
    REQUIRE(a.size() == 6000);
    REQUIRE(a == b);
    REQUIRE(a != ex::make_dataset(d, 3000, 6));
    REQUIRE(std::all_of(a.begin(), a.end(), [](double v) { return std::abs(v) < 4.0; }));
    // The spread the input scaling uses is of order 1 for all three.
    REQUIRE(ex::rms_spread(a) > 1.0);
    REQUIRE(ex::rms_spread(a) < 2.5);
  }
}

TEST_CASE("data set shapes: moons centred, mixture weights, swiss roll radius", "[examples][datasets]") {
  constexpr std::size_t n = 20000;
  // Each fraction within 5 binomial standard errors.
  auto within = [](double count, double p) {
    return std::abs(count / double(n) - p) < 5.0 * std::sqrt(p * (1 - p) / double(n));
  };
  // The two moons' means (0, 2/pi) and (1, 1/2 - 2/pi) average to (1/2, 1/4), which the
  // generator moves to the origin: each coordinate's mean within 5 standard errors of 0.
  const std::vector<double> moons = ex::make_dataset(ex::dataset::moons, n, 7);
  for (std::size_t j = 0; j < 2; ++j) {
    double m = 0.0, ss = 0.0;
    for (std::size_t i = 0; i < n; ++i) m += moons[2 * i + j];
    m /= double(n);
    for (std::size_t i = 0; i < n; ++i) ss += (moons[2 * i + j] - m) * (moons[2 * i + j] - m);
    REQUIRE(std::abs(m) < 5.0 * std::sqrt(ss / double(n - 1) / double(n)));
  }

  const std::vector<double> mix = ex::make_dataset(ex::dataset::mixture, n, 8);
  const auto gm = ex::golden_mixture();
  std::vector<double> count(3, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t best = 0;
    double best_d = 1e300;
    for (std::size_t k = 0; k < 3; ++k) {
      const double dx = mix[2 * i] - gm.mean(k, 0), dy = mix[2 * i + 1] - gm.mean(k, 1);
      if (dx * dx + dy * dy < best_d) best_d = dx * dx + dy * dy, best = k;
    }
    count[best] += 1;
  }
  for (std::size_t k = 0; k < 3; ++k) REQUIRE(within(count[k], gm.weight(k)));

  const std::vector<double> roll = ex::make_dataset(ex::dataset::swiss_roll, n, 9);
  for (std::size_t i = 0; i < n; ++i) {
    const double r = std::hypot(roll[2 * i], roll[2 * i + 1]);
    // radius t/4 with t in [1.5 pi, 4.5 pi], plus N(0, 0.1^2) per coordinate (6 sd margins).
    REQUIRE(r > 1.5 * std::numbers::pi / 4 - 0.85);
    REQUIRE(r < 4.5 * std::numbers::pi / 4 + 0.85);
  }
}
