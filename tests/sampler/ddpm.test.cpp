// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include <diffusion/core.hpp>
#include <diffusion/model/gaussian_mixture.hpp>
#include <diffusion/process/vp_discrete.hpp>
#include <diffusion/random/random.hpp>
#include <diffusion/sampler/ddpm.hpp>

#include "support/closeness.hpp"
#include "support/golden_run.hpp"
#include "support/json.hpp"
#include "support/mixture_fixture.hpp"
#include "support/normal_batch.hpp"
#include "support/statistics.hpp"

using namespace diffusion;
using tensor_d = reference_tensor<double>;

using test::check_close;

TEST_CASE("ddpm ancestral reproduces diffusers DDPMScheduler step by step", "[sampler][ddpm][golden]") {
  const auto golden = test_support::load_json(std::string(DIFFUSION_TEST_DATA_DIR) + "/diffusers_ddpm_linear_50steps_leading.json");
  const auto process = vp_discrete::linear(1e-4, 0.02, 1000);
  const auto grid = leading_grid(1000, 50);
  const auto timesteps = golden["timesteps"].as_vector();
  REQUIRE(grid.values() == timesteps);

  std::vector<std::vector<double>> draws;
  for (std::size_t k = 0; k < golden["inputs"]["noise"].size(); ++k)
    draws.push_back(golden["inputs"]["noise"][k].as_matrix());
  REQUIRE(draws.size() == 49);
  replay_noise noise(draws);

  gaussian_mixture_model<vp_discrete> model(test::golden_mixture(), process);
  const ddpm_ancestral sampler(process, grid, {.variance = ddpm_variance::fixed_small});
  CHECK(test::check_matches_diffusers_run(sampler, model, noise, golden) == 50);
  CHECK(noise.remaining() == 0);  // 49 draws: none at t = 0
}

TEST_CASE("ddpm ancestral without an observer takes the fused path and agrees", "[sampler][ddpm]") {
  const auto process = vp_discrete::linear(1e-4, 0.02, 1000);
  gaussian_mixture_model<vp_discrete> model(test::golden_mixture(), process);
  reference_backend<double> be;
  const tensor_d x_T = test::normal_batch(256, 2, 7);
  for (auto variance : {ddpm_variance::fixed_small, ddpm_variance::fixed_large}) {
    const ddpm_ancestral sampler(process, leading_grid(1000, 20), {.variance = variance});
    const tensor_d fused = sample(sampler, model, be, x_T, philox_noise(11));
    const tensor_d observed = sample(sampler, model, be, x_T, philox_noise(11), [](const step_info<tensor_d>&) {});
    check_close(fused.data, observed.data, 1e-12, 1e-12, "fused vs observed");
  }
}

TEST_CASE("ddpm ancestral with 1000 steps reproduces the mixture", "[sampler][ddpm][statistics]") {
  const auto mixture = test::golden_mixture();
  const auto process = vp_discrete::linear(1e-4, 0.02, 1000);
  gaussian_mixture_model<vp_discrete> model(mixture, process);
  reference_backend<double> be;
  const std::size_t n = 8192;
  tensor_d x_T = test::normal_batch(n, 2, 2024, 1);
  const ddpm_ancestral sampler(process, leading_grid(1000, 1000));
  const tensor_d x = sample(sampler, model, be, std::move(x_T), philox_noise(2024, 2));

  test::check_reproduces_mixture(mixture, x.data);
}

TEST_CASE("ddpm ancestral x0 clipping and dynamic thresholding bound x0_hat", "[sampler][ddpm]") {
  const auto process = vp_discrete::linear(1e-4, 0.02, 1000);
  gaussian_mixture_model<vp_discrete> model(test::golden_mixture(), process);
  reference_backend<double> be;
  const tensor_d x_T = test::normal_batch(64, 2, 3);
  SECTION("clip") {
    const ddpm_ancestral sampler(process, leading_grid(1000, 10), {.correction = x0_correction::clip(1.5)});
    double worst = 0;
    sample(sampler, model, be, x_T, philox_noise(5), [&](const step_info<tensor_d>& s) {
      for (double v : s.prediction.data) worst = std::max(worst, std::abs(v));
    });
    CHECK(worst <= 1.5);
    CHECK(worst > 1.4);  // the data reach |x| = 2.5, so clipping was active
  }
  SECTION("dynamic threshold") {
    const ddpm_ancestral sampler(process, leading_grid(1000, 10),
                                 {.correction = x0_correction::dynamic_threshold(0.9, 2.0)});
    double worst = 0;
    sample(sampler, model, be, x_T, philox_noise(5), [&](const step_info<tensor_d>& s) {
      for (double v : s.prediction.data) worst = std::max(worst, std::abs(v));
    });
    CHECK(worst <= 1.0 + 1e-12);  // thresholded samples are divided by s >= their 90% quantile... and clamped
  }
  SECTION("bad options") {
    CHECK_THROWS_WITH(ddpm_ancestral(process, leading_grid(1000, 10), {.correction = x0_correction::clip(-1.0)}),
                      Catch::Matchers::Contains("clip_range"));
    CHECK_THROWS_WITH(
        ddpm_ancestral(process, leading_grid(1000, 10), {.correction = x0_correction::dynamic_threshold(1.5)}),
        Catch::Matchers::Contains("ratio"));
  }
}

TEST_CASE("ddpm ancestral rejects a model whose output shape differs from x", "[sampler][ddpm][errors]") {
  const auto process = vp_discrete::linear(1e-4, 0.02, 1000);
  reference_backend<double> be;
  auto bad = make_predictor<eps_param>([](const tensor_d& x, double) { return tensor_d({x.shape[0], 3}); });
  const ddpm_ancestral sampler(process, leading_grid(1000, 10));
  CHECK_THROWS_WITH(sample(sampler, bad, be, tensor_d({4, 2}), philox_noise(1)),
                    Catch::Matchers::Contains("model output") && Catch::Matchers::Contains("[4, 3]") &&
                        Catch::Matchers::Contains("[4, 2]"));
}

TEST_CASE("ddpm ancestral rejects grids outside the training timesteps", "[sampler][ddpm][errors]") {
  const auto process = vp_discrete::linear(1e-4, 0.02, 100);
  CHECK_THROWS_AS(ddpm_ancestral(process, leading_grid(1000, 10)), std::invalid_argument);
  CHECK_THROWS_AS(ddpm_ancestral(process, time_grid({50.5, 10.0})), std::invalid_argument);
}
