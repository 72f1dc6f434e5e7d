// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include <diffusion/core.hpp>
#include <diffusion/process/sde.hpp>
#include <diffusion/sampler/predictor_corrector.hpp>

#include "support/closeness.hpp"
#include "support/json.hpp"
#include "support/mixture_fixture.hpp"
#include "support/normal_batch.hpp"
#include "support/recording_model.hpp"
#include "support/statistics.hpp"

using namespace diffusion;
using tensor_d = reference_tensor<double>;

TEST_CASE("Euler-Maruyama PC sampling reproduces score_sde's get_pc_sampler update by update",
          "[sampler][sde][golden]") {
  const auto golden = test_support::load_json(std::string(DIFFUSION_TEST_DATA_DIR) + "/scoresde_pc_vp_em.json");
  const vp_sde process(0.1, 20.0, 100);
  const auto sampler = euler_maruyama(process, {.steps = 100, .eps = 1e-3, .denoise = true});
  // torch's vectorised linspace rounds a few entries differently from the two-sided scalar formula.
  const auto timesteps = golden["timesteps"].as_vector();
  REQUIRE(timesteps.size() == sampler.grid().size());
  for (std::size_t i = 0; i < timesteps.size(); ++i) CHECK_THAT(sampler.grid()[i], Catch::Matchers::WithinULP(timesteps[i], 2));

  std::vector<std::vector<double>> draws;
  for (std::size_t k = 0; k < golden["inputs"]["noise"].size(); ++k) draws.push_back(golden["inputs"]["noise"][k].as_flat());
  REQUIRE(draws.size() == 101);
  replay_noise noise(draws);
  reference_backend<double> be;

  tensor_d x({64, 2});
  process.sample_prior(be, noise, x);  // draw 0
  CHECK(x.data == golden["inputs"]["x_T"].as_matrix());

  gaussian_mixture_model<vp_sde> model(test::golden_mixture(), process);
  const auto& updates = golden["per_update"];
  std::size_t seen = 0;
  const tensor_d result = sample(sampler, model, be, std::move(x), noise, [&](const step_info<tensor_d>& s) {
    const auto& rec = updates[s.index];
    REQUIRE(rec["who"].as_string() == "predictor");
    REQUIRE_THAT(s.t, Catch::Matchers::WithinULP(rec["t"].as_double(), 2));
    // The last update returns x_mean (denoise); the others x_mean + g sqrt(-dt) z.
    const bool last = s.index + 1 == s.count;
    test::check_close(s.x.data, (last ? rec["x_mean"] : rec["x"]).as_matrix(), 1e-10, 1e-12,
                      std::string(last ? "x_mean" : "x") + " of update " + std::to_string(s.index) + " at t = " +
                          std::to_string(s.t));
    ++seen;
  });
  CHECK(seen == 100);
  CHECK(noise.remaining() == 0);  // 1 + N draws: the last predictor still consumes its draw
  test::check_close(result.data, golden["final_sample_x_mean"].as_matrix(), 1e-10, 1e-12, "final_sample_x_mean");
}

namespace {

template <class Sampler, class Process>
void check_reproduces_mixture(const Sampler& sampler, const Process& process, std::size_t n, std::uint64_t seed) {
  const auto mixture = test::golden_mixture();
  gaussian_mixture_model<Process> model(mixture, process);
  reference_backend<double> be;
  philox_noise noise(seed);
  tensor_d x({n, 2});
  process.sample_prior(be, noise, x);
  const tensor_d out = sample(sampler, model, be, std::move(x), noise);
  test::check_reproduces_mixture(mixture, out.data);
}

}  // namespace

TEST_CASE("predictor-corrector samplers reproduce the mixture", "[sampler][sde][statistics]") {
  const std::size_t n = 8192;
  SECTION("VP, Euler-Maruyama, 1000 steps") {
    const vp_sde p;
    check_reproduces_mixture(euler_maruyama(p, {.steps = 1000}), p, n, 1);
  }
  SECTION("VP, reverse diffusion + Langevin, 500 steps") {
    const vp_sde p(0.1, 20.0, 500);
    check_reproduces_mixture(predictor_corrector(p, reverse_diffusion_predictor{}, langevin_corrector{.snr = 0.16}),
                             p, n, 2);
  }
  SECTION("VP, ancestral + annealed Langevin, 500 steps") {
    const vp_sde p(0.1, 20.0, 500);
    check_reproduces_mixture(
        predictor_corrector(p, ancestral_predictor{}, annealed_langevin_corrector{.snr = 0.16}), p, n,
        3);
  }
  SECTION("sub-VP, Euler-Maruyama + Langevin, 1000 steps") {
    const subvp_sde p;
    check_reproduces_mixture(predictor_corrector(p, euler_maruyama_predictor{}, langevin_corrector{}),
                             p, n, 4);
  }
  SECTION("VE, reverse diffusion + Langevin, 1000 steps") {
    const ve_sde p(0.01, 50.0, 1000);
    check_reproduces_mixture(
        predictor_corrector(p, reverse_diffusion_predictor{}, langevin_corrector{.snr = 0.16}), p, n,
        5);
  }
}

TEST_CASE("predictor-corrector rejects bad options", "[sampler][sde][errors]") {
  const vp_sde p;
  CHECK_THROWS_WITH(predictor_corrector(p, reverse_diffusion_predictor{}, no_corrector{}, {.steps = 10}),
                    Catch::Matchers::Contains("steps") && Catch::Matchers::Contains("num_steps() = 1000"));
  CHECK_THROWS_WITH(vp_sde(0.1, 20.0, 0), Catch::Matchers::Contains("num_steps"));
  CHECK_THROWS_WITH(euler_maruyama(p, {.eps = 0.0}), Catch::Matchers::Contains("eps") && Catch::Matchers::Contains("(0, 1)"));
  CHECK_THROWS_WITH(euler_maruyama(p, {.eps = 1.5}), Catch::Matchers::Contains("eps"));
  CHECK_THROWS_WITH(predictor_corrector(p, euler_maruyama_predictor{}, langevin_corrector{.snr = 0.0}),
                    Catch::Matchers::Contains("snr") && Catch::Matchers::Contains("(0, inf)"));
  CHECK_THROWS_WITH(predictor_corrector(p, euler_maruyama_predictor{}, annealed_langevin_corrector{.snr = -1.0}),
                    Catch::Matchers::Contains("snr"));
}

namespace {

// An eps, x0 or v model's score is affine in (x, output); every predictor and corrector folds that
// into its own coefficients. The four parameterizations of the same exact model must give the same
// samples and x0_hat to rounding, and eps models must cost the passes a score model costs.
template <class Process, class Predictor, class Corrector>
void check_parameterizations_agree(const Process& p, Predictor predictor, Corrector corrector, std::size_t steps,
                                   std::size_t corrector_steps) {
  const predictor_corrector sampler(p, predictor, corrector);
  const tensor_d x_T = test::normal_batch(16, 2, 11, 0, p.sigma(Process::end_time()));
  // The predictor's evaluation is a step's last model call, where x0_hat is formed.
  auto run = [&]<class Param>(Param) { return test::run_observed<Param>(sampler, p, x_T, philox_noise(7), true); };
  const test::observed_run score = run(score_param{});
  // An x0 or v model's score has an x term, so the Langevin corrector, which needs the score's
  // norm, converts it in a pass of its own; every other policy folds it.
  const std::size_t extra = std::is_same_v<Corrector, langevin_corrector> ? steps * corrector_steps : 0;
  test::check_same_run(run(eps_param{}), score);
  test::check_same_run(run(x0_param{}), score, extra);
  test::check_same_run(run(v_param{}), score, extra);
}

}  // namespace

TEST_CASE("predictors and correctors fold an eps, x0 or v model's conversion to the score",
          "[sampler][sde][parameterization]") {
  const vp_sde vp(0.1, 20.0, 40);
  const ve_sde ve(0.01, 50.0, 40);
  SECTION("Euler-Maruyama + Langevin") {
    check_parameterizations_agree(vp, euler_maruyama_predictor{}, langevin_corrector{.snr = 0.16, .steps = 2}, 40, 2);
  }
  SECTION("reverse diffusion + annealed Langevin") {
    check_parameterizations_agree(vp, reverse_diffusion_predictor{}, annealed_langevin_corrector{.snr = 0.16}, 40, 1);
  }
  SECTION("reverse diffusion, probability flow") {
    check_parameterizations_agree(vp, reverse_diffusion_predictor{.probability_flow = true}, no_corrector{}, 40, 0);
  }
  SECTION("ancestral + Langevin, VE") {
    check_parameterizations_agree(ve, ancestral_predictor{}, langevin_corrector{.snr = 0.16}, 40, 1);
  }
  SECTION("reverse diffusion + annealed Langevin, VE") {
    check_parameterizations_agree(ve, reverse_diffusion_predictor{}, annealed_langevin_corrector{.snr = 0.2}, 40, 1);
  }
}
