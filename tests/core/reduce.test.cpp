// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include <diffusion/backend/reference.hpp>
#include <diffusion/core/reduce.hpp>

using namespace diffusion;

TEST_CASE("reductions accumulate in double and per sample", "[core][reduce]") {
  const reference_tensor<float> x({2, 3}, {1.f, 2.f, 2.f, 3.f, 0.f, 4.f});
  CHECK(squared_norm(x) == 34.0);
  CHECK(mean(x) == 2.0);
  std::vector<double> norms(2);
  sample_squared_norms(x, norms);
  CHECK(norms == std::vector<double>{9.0, 25.0});
  CHECK(mean_sample_norm(x) == 4.0);  // (3 + 5) / 2
  std::vector<double> wrong(3);
  CHECK_THROWS_WITH(sample_squared_norms(x, wrong),
                    Catch::Matchers::Contains("out.size()") && Catch::Matchers::Contains("batch size of x, 2"));
}

TEST_CASE("float sums do not lose what a float accumulator would", "[core][reduce]") {
  // 2^24 + 1 ones: a float accumulator stops at 2^24.
  reference_tensor<float> x({(1u << 24) + 1, 1});
  for (float& v : x.data) v = 1.f;
  CHECK(squared_norm(x) == static_cast<double>((1u << 24) + 1));
}
