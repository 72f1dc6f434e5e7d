// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <diffusion/core.hpp>
#include <diffusion/model/gaussian_mixture.hpp>
#include <diffusion/process/vp_discrete.hpp>
#include <diffusion/random/random.hpp>
#include <diffusion/sampler/ddim.hpp>
#include <diffusion/sampler/ddpm.hpp>

#include "support/closeness.hpp"
#include "support/golden_run.hpp"
#include "support/json.hpp"
#include "support/mixture_fixture.hpp"
#include "support/normal_batch.hpp"
#include "support/recording_model.hpp"
#include "support/statistics.hpp"

using namespace diffusion;
using tensor_d = reference_tensor<double>;

namespace {

using test::max_abs_difference;

using test::normal_batch;

}  // namespace

TEST_CASE("ddim eta = 0 reproduces diffusers DDIMScheduler step by step", "[sampler][ddim][golden]") {
  const auto golden = test_support::load_json(std::string(DIFFUSION_TEST_DATA_DIR) + "/diffusers_ddim_linear_leading_eta0.json");
  const auto process = vp_discrete::linear(1e-4, 0.02, 1000);
  const auto grid = leading_grid(1000, 50);
  REQUIRE(grid.values() == golden["timesteps"].as_vector());
  gaussian_mixture_model<vp_discrete> model(test::golden_mixture(), process);
  const ddim sampler(process, grid, {.eta = 0.0, .set_alpha_to_one = true});
  // An empty replay source: eta = 0 draws no noise.
  CHECK(test::check_matches_diffusers_run(sampler, model, replay_noise(std::vector<std::vector<double>>{}), golden) == 50);
}

TEST_CASE("ddim eta = 0 is deterministic and uses no noise", "[sampler][ddim]") {
  const auto process = vp_discrete::linear(1e-4, 0.02, 1000);
  gaussian_mixture_model<vp_discrete> model(test::golden_mixture(), process);
  reference_backend<double> be;
  const ddim sampler(process, trailing_grid(1000, 25));
  const auto x_T = normal_batch(128, 2, 1);
  const tensor_d a = sample(sampler, model, be, x_T, philox_noise(1));
  const tensor_d b = sample(sampler, model, be, x_T, philox_noise(999));
  CHECK(a.data == b.data);
  replay_noise none(std::vector<std::vector<double>>{});
  CHECK_NOTHROW(sample(sampler, model, be, x_T, none));  // an empty replay source is never asked
}

TEST_CASE("ddim inversion and back returns the start", "[sampler][ddim][inversion]") {
  const auto process = vp_discrete::linear(1e-4, 0.02, 1000);
  gaussian_mixture_model<vp_discrete> model(test::golden_mixture(), process);
  reference_backend<double> be;
  const auto x_T = normal_batch(256, 2, 42);

  SECTION("fixed-point inversion inverts every step to round-off") {
    // With 50 steps the DDIM map of this mixture is so expansive between the modes that the
    // fixed-point iteration does not contract for every point; from ~200 steps on it does.
    const auto grid = leading_grid(1000, 200);
    const tensor_d x0 = sample(ddim(process, grid), model, be, x_T, philox_noise(0));
    const tensor_d back = sample(ddim_inversion(process, grid, {.fixed_point_iterations = 30}), model, be, x0, philox_noise(0));
    CHECK(max_abs_difference(back, x_T) < 1e-8);
    const tensor_d again = sample(ddim(process, grid), model, be, back, philox_noise(0));
    CHECK(max_abs_difference(again, x0) < 1e-10);
  }
  SECTION("plain inversion converges as the step shrinks") {
    // The plain inversion evaluates eps at the wrong end of each step: its error falls with the step.
    double previous = 1e300;
    for (std::size_t steps : {25, 100, 400}) {
      const auto g = leading_grid(1000, steps);
      const tensor_d start = sample(ddim(process, g), model, be, x_T, philox_noise(0));
      const tensor_d back = sample(ddim_inversion(process, g), model, be, start, philox_noise(0));
      const double err = max_abs_difference(back, x_T);
      INFO(steps << " steps: round-trip error " << err);
      CHECK(err < previous / 2);
      previous = err;
    }
  }
}

TEST_CASE("ddim_inversion folds an x0, v or score model's conversion to eps into its update",
          "[sampler][ddim][inversion][parameterization]") {
  // The same inversion and x0_hat whatever the exact model predicts, with the passes over memory of
  // an eps model (no conversion pass per model call); x0_hat is the exact x0 at the new point.
  const auto process = vp_discrete::linear(1e-4, 0.02, 1000);
  const auto grid = leading_grid(1000, 20);
  const ddim_inversion inversion(process, grid, {.fixed_point_iterations = 2});
  const tensor_d x0 = normal_batch(32, 2, 5);
  // The observer's x0_hat costs one more model call at the new point: the step's last.
  auto invert = [&]<class Param>(Param) {
    return test::run_observed<Param>(inversion, process, x0, philox_noise(0), true);
  };
  const test::observed_run eps = invert(eps_param{});
  test::check_same_run(invert(x0_param{}), eps);
  test::check_same_run(invert(v_param{}), eps);
  test::check_same_run(invert(score_param{}), eps);
}

TEST_CASE("ddim with 50 steps reproduces the mixture for eta 0 and 1", "[sampler][ddim][statistics]") {
  const auto mixture = test::golden_mixture();
  const auto process = vp_discrete::linear(1e-4, 0.02, 1000);
  gaussian_mixture_model<vp_discrete> model(mixture, process);
  reference_backend<double> be;
  const std::size_t n = 16384;
  const double eta = GENERATE(0.0, 1.0);
  INFO("eta = " << eta);
  const tensor_d x = sample(ddim(process, leading_grid(1000, 50), {.eta = eta}), model, be, normal_batch(n, 2, 77),
                            philox_noise(78));
  test::check_reproduces_mixture(mixture, x.data);
}

TEST_CASE("ddim rejects an eta outside [0, eta_max] and an empty grid", "[sampler][ddim][errors]") {
  using Catch::Matchers::Contains;
  const auto process = vp_discrete::linear(1e-4, 0.02, 1000);
  const time_grid grid = leading_grid(1000, 10);
  CHECK_THROWS_WITH(ddim(process, grid, {.eta = -0.5}), Contains("eta = -0.5") && Contains("[0, "));
  CHECK_THROWS_AS(ddim(process, grid, {.eta = std::nan("")}), std::invalid_argument);
  // eta_max: the largest eta whose sigma_t(eta)^2 stays within 1 - alpha_bar_prev at every step;
  // beyond it the eps term would be the root of a negative number (it was silently dropped).
  double eta_max = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < grid.size(); ++i) {
    const double abar = process.alpha_bar(grid[i]);
    const double abar_prev = i + 1 < grid.size() ? process.alpha_bar(grid[i + 1]) : 1.0;
    const double sigma_1 = ddim_sigma(1.0, abar, abar_prev);
    if (sigma_1 > 0.0) eta_max = std::min(eta_max, std::sqrt((1.0 - abar_prev) / (sigma_1 * sigma_1)));
  }
  REQUIRE(eta_max > 1.0);
  CHECK_NOTHROW(ddim(process, grid, {.eta = 1.0}));
  CHECK_NOTHROW(ddim(process, grid, {.eta = eta_max}));
  CHECK_THROWS_WITH(ddim(process, grid, {.eta = 1.5}), Contains("eta = 1.5") && Contains("sigma_t(eta)^2"));
  CHECK_THROWS_AS(ddim(process, grid, {.eta = eta_max * (1.0 + 1e-9)}), std::invalid_argument);
  CHECK_THROWS_WITH(ddim(process, time_grid{}), Contains("grid size = 0") && Contains("at least 1"));
  CHECK_THROWS_WITH(ddim_inversion(process, time_grid{}), Contains("grid size = 0"));
}

TEST_CASE("ddim with a clipped x0_hat keeps the model's eps unless use_clipped_model_output", "[sampler][ddim]") {
  // diffusers' DDIMScheduler.step: x0_hat is clipped, and eps is re-derived from it only with
  // use_clipped_model_output=True; by default the update uses the model's eps. One step, by hand.
  const auto process = vp_discrete::linear();
  gaussian_mixture_model<vp_discrete> model(test::golden_mixture(), process);
  reference_backend<double> be;
  const time_grid grid({500.0, 300.0});
  tensor_d x = normal_batch(64, 2, 3);
  for (double& v : x.data) v *= 3.0;  // far out, so that clipping to [-1, 1] is active
  tensor_d eps = x;
  model(x, 500.0, eps);
  const double abar = process.alpha_bar(500.0), abar_prev = process.alpha_bar(300.0);
  tensor_d keep = x, rederive = x;
  std::size_t clipped = 0;
  for (std::size_t j = 0; j < x.data.size(); ++j) {
    const double x0 = (x.data[j] - std::sqrt(1.0 - abar) * eps.data[j]) / std::sqrt(abar);
    const double x0_clipped = std::clamp(x0, -1.0, 1.0);
    clipped += x0_clipped != x0;
    const double eps_clipped = (x.data[j] - std::sqrt(abar) * x0_clipped) / std::sqrt(1.0 - abar);
    keep.data[j] = std::sqrt(abar_prev) * x0_clipped + std::sqrt(1.0 - abar_prev) * eps.data[j];
    rederive.data[j] = std::sqrt(abar_prev) * x0_clipped + std::sqrt(1.0 - abar_prev) * eps_clipped;
  }
  REQUIRE(clipped > 10);
  auto one_step = [&](bool use_clipped) {
    const ddim sampler(process, grid, {.correction = x0_correction::clip(1.0), .use_clipped_model_output = use_clipped});
    auto ws = sampler.make_workspace(be, x);
    tensor_d y = x;
    philox_noise noise(0);
    sampler.step(be, model, noise, ws, y, 0);
    return y;
  };
  CHECK(max_abs_difference(one_step(false), keep) < 1e-12);
  CHECK(max_abs_difference(one_step(true), rederive) < 1e-12);
  CHECK(max_abs_difference(keep, rederive) > 0.1);
}

TEST_CASE("ddim at zero terminal SNR: exact with a v model, an explicit error with an eps model",
          "[sampler][ddim][zero-snr]") {
  // Lin et al. 2024: with alpha_bar(T-1) = 0 and the trailing grid, the first step starts from pure
  // noise; x0_hat follows from v there (x0 = -v at alpha = 0) but not from eps.
  const auto mixture = test::golden_mixture();
  const auto process = vp_discrete::linear().with_zero_terminal_snr();
  REQUIRE(process.alpha_bar(999) == 0.0);
  reference_backend<double> be;
  const ddim sampler(process, trailing_grid(1000, 50));
  SECTION("v model") {
    gaussian_mixture_model<vp_discrete, v_param> model(mixture, process);
    const std::size_t n = 16384;
    const tensor_d x = sample(sampler, model, be, normal_batch(n, 2, 5), philox_noise(6));
    for (double v : x.data) REQUIRE(std::isfinite(v));
    test::check_mean_and_covariance(x.data, 2, mixture.mean(), mixture.covariance());
  }
  SECTION("eps model") {
    gaussian_mixture_model<vp_discrete, eps_param> model(mixture, process);
    CHECK_THROWS_AS(sample(sampler, model, be, normal_batch(4, 2, 5), philox_noise(6)), std::domain_error);
  }
}

TEST_CASE("ddim set_alpha_to_one decides the last step's alpha_bar_prev", "[sampler][ddim]") {
  // A one-entry grid {0}: with alpha_bar_prev = 1 the step returns x0_hat = E[x0 | x]; with
  // alpha_bar_prev = alpha_bar(0) it maps x_0 to itself, since x = sqrt(abar_0) x0_hat + sqrt(1 - abar_0) eps.
  const auto process = vp_discrete::linear();
  gaussian_mixture_model<vp_discrete, x0_param> denoiser(test::golden_mixture(), process);
  gaussian_mixture_model<vp_discrete> model(test::golden_mixture(), process);
  reference_backend<double> be;
  const auto x = normal_batch(32, 2, 9);
  const tensor_d to_one = sample(ddim(process, time_grid({0.0}), {.set_alpha_to_one = true}), model, be, x, philox_noise(0));
  tensor_d x0_hat = x;
  denoiser(x, 0.0, x0_hat);
  CHECK(max_abs_difference(to_one, x0_hat) < 1e-12);
  const tensor_d to_abar0 = sample(ddim(process, time_grid({0.0}), {.set_alpha_to_one = false}), model, be, x, philox_noise(0));
  CHECK(max_abs_difference(to_abar0, x) < 1e-12);
}

TEST_CASE("an observer does not change the samples of ddpm and ddim, in float", "[sampler][ddim][ddpm][observer]") {
  // With an observer the samplers form x0_hat for it; the update itself must stay the one pass it
  // is without one (in float the unfused form of the update differs in the last bits).
  const auto process = vp_discrete::linear();
  gaussian_mixture_model<vp_discrete, v_param> model(test::golden_mixture(), process);
  reference_backend<float> be;
  const auto xd = normal_batch(64, 2, 11);
  reference_tensor<float> x(xd.shape);
  for (std::size_t j = 0; j < x.data.size(); ++j) x.data[j] = static_cast<float>(xd.data[j]);
  auto check = [&](const auto& sampler) {
    std::size_t seen = 0;
    const auto plain = sample(sampler, model, be, x, philox_noise(3));
    const auto observed = sample(sampler, model, be, x, philox_noise(3), [&](const step_info<reference_tensor<float>>& s) {
      seen += s.prediction.data.size() == x.data.size();
    });
    CHECK(seen == sampler.num_steps());
    CHECK(plain.data == observed.data);
  };
  check(ddpm_ancestral(process, trailing_grid(1000, 25)));
  check(ddim(process, trailing_grid(1000, 25)));
  check(ddim(process, trailing_grid(1000, 25), {.eta = 0.5}));
}
