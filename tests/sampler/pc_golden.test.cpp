// SPDX-License-Identifier: MIT
// The predictor-corrector sampler's predictors and correctors against score_sde's sampling.py
// transcribed in float64 with replayed noise (tests/data/generate_pc_samplers.py wrote
// tests/data/pc_samplers.json): reverse diffusion (VP, VE, and VP's probability flow), ancestral
// (VP, VE), Euler-Maruyama (VP, sub-VP) with the Langevin, annealed Langevin and no corrector,
// denoised and not. The statistics tests cannot see a wrong Langevin step size (an exact score
// leaves p_t unchanged whatever the step); here a 1% larger snr moves each corrected case's final
// sample by 2.7e-3 or more at its largest change (the generator asserts more than 1e-6), against a
// tolerance of 1e-10.
//
// Each case runs with the exact model predicting the score (no conversion: the golden's own
// arithmetic) and again predicting eps, x0 and v, converted by the sampler through the process's
// alpha(t) and sigma(t): the same samples up to rounding.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <diffusion/core.hpp>
#include <diffusion/process/sde.hpp>
#include <diffusion/sampler/predictor_corrector.hpp>

#include "support/closeness.hpp"
#include "support/json.hpp"
#include "support/mixture_fixture.hpp"

using namespace diffusion;
using tensor_d = reference_tensor<double>;
using test_support::json;

namespace {

/// max_i |got_i - want_i| / (atol + rtol |want_i|): at most 1 where test::check_close passes.
double worst_excess(const std::vector<double>& got, const std::vector<double>& want, double rtol, double atol) {
  double worst = got.size() == want.size() ? 0.0 : std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < got.size() && i < want.size(); ++i)
    worst = std::max(worst, std::abs(got[i] - want[i]) / (atol + rtol * std::abs(want[i])));
  return worst;
}

struct tolerance {
  double rtol, atol;
};

/// Runs case g with the mixture's exact model predicting Param, on sampler parts (process,
/// predictor, corrector); checks the grid, the discrete indices, x_T, x after every step, that
/// every draw is consumed, and the final sample, with and without an observer.
template <class Param, class Process, class Predictor, class Corrector>
void run_case(const json& g, const Process& process, Predictor predictor, Corrector corrector, tolerance tol,
              const char* model_name) {
  INFO("model predicting " << model_name);
  const std::size_t n = process.num_steps();
  const predictor_corrector sampler(process, predictor, corrector,
                                    {.steps = n, .eps = g["eps"].as_double(), .denoise = g["denoise"].as_bool()});
  // score_sde's grid is torch.linspace(T, eps, N), whose vectorised kernel rounds a few entries
  // differently from the library's two-sided formula; the discrete indices must agree exactly.
  const auto timesteps = g["timesteps"].as_vector();
  REQUIRE(timesteps.size() == n);
  REQUIRE(sampler.num_steps() == n);
  for (std::size_t i = 0; i < n; ++i) {
    CHECK_THAT(sampler.time(i), Catch::Matchers::WithinULP(timesteps[i], 2));
    CHECK(process.discrete_index(sampler.time(i)) == static_cast<std::size_t>(g["discrete_index"][i].as_int()));
  }

  std::vector<std::vector<double>> draws;
  for (std::size_t k = 0; k < g["noise"].size(); ++k) draws.push_back(g["noise"][k].as_flat());
  replay_noise noise(draws);
  reference_backend<double> be;
  const std::vector<double> x_T = g["x_T"].as_matrix();
  tensor_d x({g["x_T"].size(), x_T.size() / g["x_T"].size()});
  process.sample_prior(be, noise, x);  // draw 0; VE multiplies it by sigma_max, as score_sde
  CHECK(x.data == x_T);

  gaussian_mixture_model<Process, Param> model(test::golden_mixture(), process);
  std::vector<std::vector<double>> states;
  const tensor_d result =
      sample(sampler, model, be, std::move(x), noise, [&](const step_info<tensor_d>& s) { states.push_back(s.x.data); });
  CHECK(noise.remaining() == 0);  // every draw score_sde used, and no more

  // The first step that differs: a wrong coefficient shows where it first acts.
  const auto& per_step = g["per_step"];
  REQUIRE(states.size() == per_step.size());
  for (std::size_t i = 0; i < states.size(); ++i) {
    const std::vector<double> want = per_step[i].as_matrix();
    if (worst_excess(states[i], want, tol.rtol, tol.atol) > 1.0) {
      test::check_close(states[i], want, tol.rtol, tol.atol,
                        "x after step " + std::to_string(i) + " (the first that differs) at t = " +
                            std::to_string(sampler.time(i)));
      break;
    }
  }
  test::check_close(result.data, g["x"].as_matrix(), tol.rtol, tol.atol, "final sample");

  // Without an observer the sampler skips x0_hat; the sample must not change, bit for bit.
  replay_noise again(draws);
  tensor_d x_again({g["x_T"].size(), x_T.size() / g["x_T"].size()});
  process.sample_prior(be, again, x_again);
  gaussian_mixture_model<Process, Param> fresh_model(test::golden_mixture(), process);
  CHECK(sample(sampler, fresh_model, be, std::move(x_again), again).data == result.data);
  CHECK(again.remaining() == 0);
}

/// The golden case's process, predictor and corrector, passed to f(process, predictor, corrector).
template <class F>
void with_sampler_parts(const json& g, F&& f) {
  const auto& s = g["sde"];
  const std::string sde = s["type"].as_string(), pred = g["predictor"].as_string(), corr = g["corrector"].as_string();
  const auto n = static_cast<std::size_t>(s["N"].as_int());
  const auto steps = static_cast<std::size_t>(g["n_steps"].as_int());
  const double snr = g["snr"].as_double();
  const reverse_diffusion_predictor reverse_diffusion{.probability_flow = g["probability_flow"].as_bool()};
  if (pred != "reverse_diffusion") REQUIRE_FALSE(g["probability_flow"].as_bool());
  const langevin_corrector langevin{.snr = snr, .steps = steps};
  const annealed_langevin_corrector annealed{.snr = snr, .steps = steps};
  if (sde == "vp") {
    const vp_sde p(s["beta_min"].as_double(), s["beta_max"].as_double(), n);
    if (pred == "reverse_diffusion" && corr == "langevin") return f(p, reverse_diffusion, langevin);
    if (pred == "reverse_diffusion" && corr == "none") return f(p, reverse_diffusion, no_corrector{});
    if (pred == "ancestral" && corr == "none") return f(p, ancestral_predictor{}, no_corrector{});
    if (pred == "euler_maruyama" && corr == "annealed_langevin") return f(p, euler_maruyama_predictor{}, annealed);
  } else if (sde == "subvp") {
    const subvp_sde p(s["beta_min"].as_double(), s["beta_max"].as_double(), n);
    if (pred == "euler_maruyama" && corr == "langevin") return f(p, euler_maruyama_predictor{}, langevin);
  } else if (sde == "ve") {
    const ve_sde p(s["sigma_min"].as_double(), s["sigma_max"].as_double(), n);
    if (pred == "reverse_diffusion" && corr == "langevin") return f(p, reverse_diffusion, langevin);
    if (pred == "ancestral" && corr == "langevin") return f(p, ancestral_predictor{}, langevin);
  }
  FAIL("no sampler in this test for " << sde << " / " << pred << " / " << corr << ": add it to with_sampler_parts");
}

}  // namespace

TEST_CASE("predictor-corrector samplers reproduce score_sde's predictors and correctors step by step",
          "[sampler][sde][golden]") {
  const auto golden = test_support::load_json(std::string(DIFFUSION_TEST_DATA_DIR) + "/pc_samplers.json");
  const auto& cases = golden["cases"];
  REQUIRE(cases.size() == 7);
  // The score model: the golden's arithmetic up to the order of operations and the grid's last
  // bits. Measured: |difference| / (1e-12 + 1e-10 |want|) at most 0.002 over every step of every
  // case (differences of ~2e-13 relative).
  const tolerance exact{1e-10, 1e-12};
  for (std::size_t c = 0; c < cases.size(); ++c) {
    const auto& g = cases[c];
    INFO("case " << g["name"].as_string());
    with_sampler_parts(g, [&](const auto& process, auto predictor, auto corrector) {
      // eps, x0 and v models: the sampler turns the output into the score through alpha(t) and
      // sigma(t) (score = -eps / sigma, (alpha x0 - x) / sigma^2, ...), which changes the rounding
      // only, but the model's own rounding of eps or x0 (~1e-16 |x|) reaches the score multiplied by
      // 1/sigma^2. With sigma(eps)^2 ~ 1e-4 (VP: 1.1e-4, VE: 1.0e-4) that stays below the exact
      // tolerance (measured at most 0.014 of it); sub-VP's sigma(1e-3) = 1 - alpha^2 = 1.1e-4 gives
      // sigma^2 = 1.2e-8, hence a score off by ~1e-9 relative, which the Langevin step passes on
      // through its mean score norm: the last step differs by up to 1.9e-9 relative (measured the
      // same with the conversion as a pass of its own and folded into the coefficients), so that
      // case gets 1e-8, still far below what a 1% change of snr does (2.7e-3).
      const double s_end = process.sigma(g["eps"].as_double());
      const tolerance converted = s_end * s_end > 1e-6 ? exact : tolerance{1e-8, 1e-10};
      run_case<score_param>(g, process, predictor, corrector, exact, "the score");
      run_case<eps_param>(g, process, predictor, corrector, converted, "eps");
      run_case<x0_param>(g, process, predictor, corrector, converted, "x0");
      run_case<v_param>(g, process, predictor, corrector, converted, "v");
    });
  }
}
