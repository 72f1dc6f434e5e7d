// SPDX-License-Identifier: MIT
// Adding a backend outside the library's headers: a user's own tensor type (a batch of fixed-size
// float arrays) plugs in through dm::tensor_traits, and a backend of four short functions makes
// every sampler run on it, with results bit-identical to the reference backend.
// docs/concepts.md walks through this file.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <span>
#include <string>
#include <vector>

#include <diffusion/core.hpp>

#include "support/mixture_fixture.hpp"

namespace dm = diffusion;

// The user's tensor: B points in 2-D, stored as an array of structs.
struct point_batch {
  std::vector<std::array<double, 2>> points;
};

// 1. Memory and shape: a tensor_traits specialization.
template <>
struct dm::tensor_traits<point_batch> {
  using scalar_type = double;
  static std::size_t size(const point_batch& x) { return 2 * x.points.size(); }
  static std::size_t batch_size(const point_batch& x) { return x.points.size(); }
  static bool same_shape(const point_batch& a, const point_batch& b) { return a.points.size() == b.points.size(); }
  static point_batch make_like(const point_batch& x) { return {std::vector<std::array<double, 2>>(x.points.size())}; }
  // std::array<double, 2> has no padding, so the points are one contiguous row-major buffer.
  static std::span<double> elements(point_batch& x) { return {x.points.data()->data(), size(x)}; }
  static std::span<const double> elements(const point_batch& x) { return {x.points.data()->data(), size(x)}; }
  static std::string shape_string(const point_batch& x) {
    // Not "[" + std::to_string(n) + ...: inlined into the library's failure paths, that form trips
    // a known GCC 12 -Wrestrict false positive at -O3 (std::string::insert of a literal).
    std::string s = std::to_string(x.points.size());
    s.append(", 2]");
    return '[' + s;
  }
};
static_assert(dm::tensor<point_batch>);

// 2. Compute: fused linear combinations, per-sample coefficients and clamp.
struct point_backend {
  using scalar_type = double;
  using tensor_type = point_batch;

  template <class... Rest>
  void lincomb(point_batch& y, double a, const point_batch& x, const Rest&... rest) const {
    for (std::size_t i = 0; i < y.points.size(); ++i)
      for (std::size_t d = 0; d < 2; ++d) y.points[i][d] = sum(i, d, a, x, rest...);  // y may alias an input
  }
  void lincomb_per_sample(point_batch& y, std::span<const double> a, const point_batch& x1, std::span<const double> b,
                          const point_batch& x2) const {
    for (std::size_t i = 0; i < y.points.size(); ++i)
      for (std::size_t d = 0; d < 2; ++d) y.points[i][d] = a[i] * x1.points[i][d] + b[i] * x2.points[i][d];
  }
  void clamp(point_batch& y, const point_batch& x, double lo, double hi) const {
    for (std::size_t i = 0; i < y.points.size(); ++i)
      for (std::size_t d = 0; d < 2; ++d) y.points[i][d] = std::clamp(x.points[i][d], lo, hi);
  }

 private:
  // Left to right, like the library's backends, so results agree to the bit.
  static double sum(std::size_t i, std::size_t d, double a, const point_batch& x) { return a * x.points[i][d]; }
  template <class... Rest>
  static double sum(std::size_t i, std::size_t d, double a, const point_batch& x, double b, const point_batch& x2,
                    const Rest&... rest) {
    return sum_from(a * x.points[i][d] + b * x2.points[i][d], i, d, rest...);
  }
  static double sum_from(double acc, std::size_t, std::size_t) { return acc; }
  template <class... Rest>
  static double sum_from(double acc, std::size_t i, std::size_t d, double c, const point_batch& x3, const Rest&... rest) {
    return sum_from(acc + c * x3.points[i][d], i, d, rest...);
  }
};
static_assert(dm::tensor_backend<point_backend>);

TEST_CASE("a backend written outside the library runs every sampler, bit-identical to the reference",
          "[extension][backend]") {
  const std::size_t n = 257;
  point_batch x{std::vector<std::array<double, 2>>(n)};
  dm::philox_noise(1).fill_normal(dm::elements(x), n);
  dm::reference_tensor<double> xr({n, 2});
  std::ranges::copy(dm::elements(std::as_const(x)), xr.data.begin());
  point_backend be;
  dm::reference_backend<double> ref;

  auto same = [&](const auto& sampler, const auto& process) {
    dm::gaussian_mixture_model model(dm::test::golden_mixture(), process);
    const auto mine = dm::sample(sampler, model, be, x, dm::philox_noise(2));
    const auto theirs = dm::sample(sampler, model, ref, xr, dm::philox_noise(2));
    const auto e = dm::elements(mine);
    return std::equal(e.begin(), e.end(), theirs.data.begin());
  };
  const auto vp = dm::vp_discrete::linear();
  CHECK(same(dm::ddpm_ancestral(vp, dm::leading_grid(1000, 20), {.correction = dm::x0_correction::clip(2.0)}), vp));
  CHECK(same(dm::ddim(vp, dm::trailing_grid(1000, 20), {.eta = 0.5}), vp));
  const dm::vp_sde sde(0.1, 20.0, 100);
  CHECK(same(dm::predictor_corrector(sde, dm::reverse_diffusion_predictor{}, dm::langevin_corrector{}), sde));
}
