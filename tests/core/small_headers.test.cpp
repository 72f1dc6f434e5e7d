// SPDX-License-Identifier: MIT
// Small public headers checked on their own (each included first, by name, so each must compile
// alone).
#include <diffusion/core/linspace.hpp>
#include <diffusion/process/concepts.hpp>
#include <diffusion/process/sde_concepts.hpp>
#include <diffusion/loss/loss_batch.hpp>
#include <diffusion/sampler/workspace.hpp>
#include <diffusion/sampler/x0_correction.hpp>

#include <catch2/catch.hpp>

#include <diffusion/backend/reference.hpp>
#include <diffusion/process/sde.hpp>
#include <diffusion/process/ve_discrete.hpp>
#include <diffusion/process/vp_discrete.hpp>

using namespace diffusion;

TEST_CASE("linspace hits both ends exactly and is symmetric", "[core][linspace]") {
  const auto v = linspace(1.0, 1e-3, 11);
  REQUIRE(v.size() == 11);
  CHECK(v.front() == 1.0);
  CHECK(v.back() == 1e-3);
  for (std::size_t i = 1; i < v.size(); ++i) CHECK(v[i] < v[i - 1]);
  CHECK(linspace(2.0, 3.0, 1) == std::vector<double>{2.0});
}

TEST_CASE("the process concepts sort the library's processes", "[process][concepts]") {
  static_assert(discrete_vp_process<vp_discrete> && !discrete_ve_process<vp_discrete>);
  static_assert(discrete_ve_process<ve_discrete> && !discrete_vp_process<ve_discrete>);
  static_assert(sde_process<vp_sde> && sde_process<subvp_sde> && sde_process<ve_sde>);
  static_assert(has_ancestral_step<vp_sde> && has_ancestral_step<ve_sde> && !has_ancestral_step<subvp_sde>);
  static_assert(!sde_process<vp_discrete> && !continuous_process<ve_discrete>);
  SUCCEED();
}

TEST_CASE("x0 corrections validate their options and act on x0_hat", "[sampler][x0_correction]") {
  CHECK_THROWS_WITH(x0_correction::clip(0.0).validate("here"), Catch::Matchers::Contains("clip_range"));
  CHECK_THROWS_WITH(x0_correction::dynamic_threshold(0.0).validate("here"), Catch::Matchers::Contains("ratio"));
  CHECK_THROWS_WITH(x0_correction::dynamic_threshold(0.9, 0.5).validate("here"), Catch::Matchers::Contains("max_value"));
  reference_backend<double> be;
  std::vector<double> scratch(4);
  reference_tensor<double> x({1, 4}, {-3.0, -0.5, 0.5, 3.0});
  detail::correct_x0(be, x0_correction::clip(1.0), x, scratch);
  CHECK(x.data == std::vector<double>{-1.0, -0.5, 0.5, 1.0});
  // Dynamic thresholding with ratio 1: s = max |x| = 2 (within [1, max_value]), x / s.
  reference_tensor<double> y({1, 4}, {-2.0, -1.0, 1.0, 2.0});
  detail::correct_x0(be, x0_correction::dynamic_threshold(1.0, 4.0), y, scratch);
  CHECK(y.data == std::vector<double>{-1.0, -0.5, 0.5, 1.0});
}

TEST_CASE("workspaces and loss batches are shaped like x", "[sampler][loss]") {
  const reference_tensor<float> x({3, 5});
  const denoising_workspace<reference_tensor<float>> ws(x);
  CHECK((ws.model_out.shape == x.shape && ws.prediction.shape == x.shape && ws.noise.shape == x.shape));
  CHECK(ws.scratch.size() == 5);
  const loss_batch<reference_tensor<float>> batch(x);
  CHECK(batch.x_t.shape == x.shape);
  CHECK(batch.t.size() == 3);
}
