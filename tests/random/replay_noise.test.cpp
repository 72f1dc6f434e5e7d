// SPDX-License-Identifier: MIT
// Replaying user-supplied noise arrays: order, conversion, exhaustion and size errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <span>
#include <stdexcept>
#include <vector>

#include <diffusion/backend/reference.hpp>
#include <diffusion/core/noise.hpp>
#include <diffusion/random/replay_noise.hpp>

using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using diffusion::replay_noise;

static_assert(diffusion::noise_source<replay_noise, float>);
static_assert(diffusion::noise_source<replay_noise, double>);

TEST_CASE("replay_noise hands out the arrays in order, normals and uniforms in one sequence", "[rng][replay]") {
  replay_noise noise({{0.5, -1.25, 2.0}, {0.25, 0.75, 0.125}, {-0.1, 0.2, -0.3}});
  CHECK(noise.size() == 3);
  CHECK(noise.remaining() == 3);
  std::vector<double> z(3);
  noise.fill_normal(std::span<double>(z), 1);
  CHECK(z == std::vector<double>{0.5, -1.25, 2.0});
  CHECK(noise.remaining() == 2);
  CHECK(noise.draw_index() == 1);
  std::vector<double> u(3);
  noise.fill_uniform(std::span<double>(u), 3);
  CHECK(u == std::vector<double>{0.25, 0.75, 0.125});
  std::vector<float> f(3);
  noise.fill_normal(std::span<float>(f), 1);
  CHECK(f == std::vector<float>{-0.1f, 0.2f, -0.3f});  // converted as static_cast<float>
  CHECK(noise.remaining() == 0);
}

TEST_CASE("replay_noise feeds draw_normal on a tensor", "[rng][replay]") {
  diffusion::reference_backend<double> be;
  diffusion::reference_tensor<double> z({2, 2});
  replay_noise noise({{1, 2, 3, 4}});
  diffusion::draw_normal(be, noise, z);
  CHECK(z.data == std::vector<double>{1, 2, 3, 4});
}

TEST_CASE("replay_noise reports exhaustion with the draw index and the number of arrays", "[rng][replay][errors]") {
  replay_noise noise({{1.0}, {2.0}, {3.0}});
  std::vector<double> z(1);
  for (int i = 0; i < 3; ++i) noise.fill_normal(std::span<double>(z), 1);
  CHECK_THROWS_AS(noise.fill_normal(std::span<double>(z), 1), std::invalid_argument);
  CHECK_THROWS_WITH(noise.fill_normal(std::span<double>(z), 1),
                    Equals("replay_noise: draw index = 3 is invalid; valid range: [0, 3) (arrays supplied)"));
  CHECK_THROWS_WITH(noise.fill_uniform(std::span<double>(z), 1), Contains("draw index = 3"));
  replay_noise empty({});
  CHECK(empty.remaining() == 0);
  CHECK_THROWS_WITH(empty.fill_normal(std::span<double>(z), 1),
                    Equals("replay_noise: draw index = 0 is invalid; valid range: [0, 0) (arrays supplied)"));
}

TEST_CASE("replay_noise rejects an array whose size differs from the tensor, without consuming it",
          "[rng][replay][errors]") {
  replay_noise noise({{1, 2, 3, 4}, {5, 6, 7, 8, 9}});
  std::vector<double> z(4);
  noise.fill_normal(std::span<double>(z), 2);
  CHECK_THROWS_AS(noise.fill_normal(std::span<double>(z), 2), std::invalid_argument);
  CHECK_THROWS_WITH(noise.fill_normal(std::span<double>(z), 2),
                    Contains("arrays[1].size() = 5") && Contains("valid range: 4"));
  CHECK(noise.remaining() == 1);
  std::vector<double> right(5);
  noise.fill_normal(std::span<double>(right), 1);
  CHECK(right == std::vector<double>{5, 6, 7, 8, 9});
}

TEST_CASE("replay_noise rejects non-finite normals and uniforms outside [0, 1)", "[rng][replay][errors]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> z(2);
  std::vector<float> f(2);
  SECTION("normals") {
    replay_noise noise({{0.0, nan}, {1e300, 0.0}});
    CHECK_THROWS_WITH(noise.fill_normal(std::span<double>(z), 1), Contains("arrays[0][1] = nan"));
    CHECK(noise.remaining() == 2);
    noise = replay_noise({{1e300, 0.0}});
    CHECK_NOTHROW(noise.fill_normal(std::span<double>(z), 1));  // finite in double
    noise = replay_noise({{1e300, 0.0}});
    CHECK_THROWS_WITH(noise.fill_normal(std::span<float>(f), 1), Contains("arrays[0][0] = 1.0000000000000001e+300"));
  }
  SECTION("uniforms") {
    CHECK_THROWS_WITH(replay_noise({{0.5, 1.0}}).fill_uniform(std::span<double>(z), 1),
                      Contains("arrays[0][1] = 1") && Contains("[0, 1)"));
    CHECK_THROWS_WITH(replay_noise({{-0.25, 0.5}}).fill_uniform(std::span<double>(z), 1),
                      Contains("arrays[0][0] = -0.25"));
    // Just below 1 in double, but rounds to 1.0f in float.
    const double almost_one = 1.0 - 1e-10;
    CHECK_NOTHROW(replay_noise({{almost_one, 0.0}}).fill_uniform(std::span<double>(z), 1));
    CHECK_THROWS_WITH(replay_noise({{almost_one, 0.0}}).fill_uniform(std::span<float>(f), 1), Contains("arrays[0][0]"));
  }
}
