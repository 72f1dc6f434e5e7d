// SPDX-License-Identifier: MIT
// DDPM and DDIM in the configurations the diffusers golden files do not cover, against diffusers'
// DDPMScheduler.step and DDIMScheduler.step transcribed in float64 with replayed noise
// (tests/data/generate_discrete_samplers.py wrote tests/data/discrete_samplers.json): DDPM's
// fixed_large variance and dynamic thresholding, DDIM with eta 0.5 and 1 (set_alpha_to_one off),
// and DDIM's clipped x0_hat with and without use_clipped_model_output. Each of these passed the
// other tests with its formula broken (a review mutated them); here each changes the sample.
#include <catch2/catch.hpp>

#include <cstddef>
#include <string>
#include <vector>

#include <diffusion/diffusion.hpp>

#include "support/closeness.hpp"
#include "support/json.hpp"
#include "support/mixture_fixture.hpp"

using namespace diffusion;
using tensor_d = reference_tensor<double>;

TEST_CASE("DDPM and DDIM reproduce diffusers' steps: fixed_large, dynamic thresholding, eta > 0, clipping",
          "[sampler][ddpm][ddim][golden]") {
  const auto golden = test_support::load_json(std::string(DIFFUSION_TEST_DATA_DIR) + "/discrete_samplers.json");
  const auto& cases = golden["cases"];
  REQUIRE(cases.size() == 6);
  const auto process = vp_discrete::linear(1e-4, 0.02, 1000);
  gaussian_mixture_model<vp_discrete, eps_param> model(test::golden_mixture(), process);
  reference_backend<double> be;
  for (std::size_t c = 0; c < cases.size(); ++c) {
    const auto& g = cases[c];
    INFO("case " << g["name"].as_string());
    const auto& o = g["options"];
    const time_grid grid(g["grid"].as_vector());
    const std::vector<double> x_T = g["x_T"].as_matrix();
    const tensor_d x({g["x_T"].size(), x_T.size() / g["x_T"].size()}, x_T);
    std::vector<std::vector<double>> draws;
    for (std::size_t k = 0; k < g["noise"].size(); ++k) draws.push_back(g["noise"][k].as_flat());
    replay_noise noise(draws);
    tensor_d result;
    if (g["sampler"].as_string() == "ddpm") {
      ddpm_options options;
      if (o.contains("variance")) options.variance = ddpm_variance::fixed_large;
      if (o.contains("dynamic_threshold"))
        options.correction = x0_correction::dynamic_threshold(o["dynamic_threshold"][0].as_double(),
                                                              o["dynamic_threshold"][1].as_double());
      result = sample(ddpm_ancestral(process, grid, options), model, be, x, noise);
    } else {
      ddim_options options;
      if (o.contains("eta")) options.eta = o["eta"].as_double();
      if (o.contains("set_alpha_to_one")) options.set_alpha_to_one = o["set_alpha_to_one"].as_bool();
      if (o.contains("clip")) options.correction = x0_correction::clip(o["clip"].as_double());
      if (o.contains("use_clipped_model_output"))
        options.use_clipped_model_output = o["use_clipped_model_output"].as_bool();
      result = sample(ddim(process, grid, options), model, be, x, noise);
    }
    CHECK(noise.remaining() == 0);  // every draw the reference used, and no more
    test::check_close(result.data, g["x"].as_matrix(), 1e-10, 1e-12, "final sample");
  }
}
