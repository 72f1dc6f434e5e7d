// SPDX-License-Identifier: MIT
// Time-sampling policies: the map from u in [0, 1) to training times.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include <diffusion/loss/time_sampling.hpp>
#include <diffusion/process/vp_discrete.hpp>
#include <diffusion/random/philox_noise.hpp>

namespace {
namespace dm = diffusion;
using Catch::Matchers::WithinAbs;
}  // namespace

TEST_CASE("uniform_discrete_time maps [0, 1) onto {first..last} in equal parts", "[loss][time]") {
  const dm::uniform_discrete_time s(3, 7);  // 5 timesteps
  CHECK(s.count() == 5);
  CHECK(s(0.0) == 3.0);
  CHECK(s(0.2 - 1e-12) == 3.0);
  CHECK(s(0.2) == 4.0);
  CHECK(s(0.8) == 7.0);
  CHECK(s(std::nextafter(1.0, 0.0)) == 7.0);
  CHECK(s(std::nextafter(1.0f, 0.0f)) == 7.0);

  const auto p = dm::vp_discrete::linear();
  const auto all = dm::uniform_discrete_time::over(p);
  CHECK(all.first() == 0);
  CHECK(all.last() == 999);
  // u within an ulp of 1 rounds u * 1000 up to 1000; the result must stay on the grid.
  CHECK(all(std::nextafter(1.0, 0.0)) == 999.0);
  const dm::uniform_discrete_time single(4, 4);
  CHECK(single(0.0) == 4.0);
  CHECK(single(0.999) == 4.0);
}

TEST_CASE("uniform_continuous_time is uniform on [t_min, t_max)", "[loss][time]") {
  const dm::uniform_continuous_time s(1e-3, 1.0);
  CHECK(s(0.0) == 1e-3);
  CHECK(s(0.5) == 1e-3 + 0.5 * (1.0 - 1e-3));
  const dm::uniform_continuous_time d;  // score_sde's defaults
  CHECK(d.t_min() == 1e-5);
  CHECK(d.t_max() == 1.0);

  const std::size_t n = 200000;
  std::vector<double> u(n);
  dm::philox_noise noise(71);
  noise.fill_uniform(std::span<double>(u), n);
  double sum = 0.0, lo = 1.0, hi = 0.0;
  for (double v : u) {
    const double t = s(v);
    sum += t;
    lo = std::min(lo, t);
    hi = std::max(hi, t);
  }
  const double width = 1.0 - 1e-3;
  CHECK(lo >= 1e-3);
  CHECK(hi < 1.0);
  CHECK(lo < 1e-3 + 1e-3 * width);  // both ends are approached: n = 2e5 draws
  CHECK(hi > 1.0 - 1e-3 * width);
  CHECK_THAT(sum / static_cast<double>(n), WithinAbs(1e-3 + width / 2.0, 5.0 * width / std::sqrt(12.0 * n)));
}
