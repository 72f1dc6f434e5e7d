// SPDX-License-Identifier: MIT
// The adaptive solvers against independent references, with real tolerances (rejections included):
// sample_adaptive / invert_adaptive against scipy's solve_ivp(RK45) itself, and sample_adaptive_sde
// against Algorithm 1 of Jolicoeur-Martineau et al. 2021 written out as their code computes it
// (tests/data/generate_adaptive_solvers.py, which wrote tests/data/adaptive_solvers.json). The
// counts must be equal and the accepted step times and samples equal up to rounding: a change to
// the error norm, the tolerance scale, the step rule or its constants changes them (the by-hand
// tests elsewhere fix the step sizes and cannot see the controller).
#include <catch2/catch.hpp>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <diffusion/diffusion.hpp>

#include "support/closeness.hpp"
#include "support/json.hpp"
#include "support/mixture_fixture.hpp"

using namespace diffusion;
using tensor_d = reference_tensor<double>;

namespace {

const test_support::json& golden() {
  static const test_support::json data =
      test_support::load_json(std::string(DIFFUSION_TEST_DATA_DIR) + "/adaptive_solvers.json");
  return data;
}

tensor_d matrix(const test_support::json& j) {
  const std::vector<double> v = j.as_matrix();
  return tensor_d({j.size(), v.size() / j.size()}, v);
}

// Calls f(case, process, exact score model) for every case of the named list, with the process
// the case names as the generator defines it.
template <class F>
void for_each_case(const char* list, std::size_t expected, F&& f) {
  const auto& cases = golden()[list];
  REQUIRE(cases.size() == expected);
  for (std::size_t c = 0; c < cases.size(); ++c) {
    const auto& g = cases[c];
    INFO("case " << g["name"].as_string());
    auto run = [&](const auto& p) {
      gaussian_mixture_model<std::remove_cvref_t<decltype(p)>, score_param> model(test::golden_mixture(), p);
      f(g, p, model);
    };
    const std::string& name = g["process"].as_string();
    if (name == "vp_sde")
      run(vp_sde(0.1, 20.0));
    else if (name == "subvp_sde")
      run(subvp_sde(0.1, 20.0));
    else if (name == "ve_sde")
      run(ve_sde(0.01, 50.0));
    else
      FAIL("unknown process " << name);
  }
}

}  // namespace

TEST_CASE("adaptive SDE: counts, step times and samples of the reference algorithm, rejections included",
          "[sampler][adaptive_sde][golden]") {
  for_each_case("adaptive_sde", 4, [](const test_support::json& g, const auto& p, auto& model) {
    reference_backend<double> be;
    const auto& o = g["options"];
    const adaptive_sde_options options{.eps_rel = o["eps_rel"].as_double(),
                                       .eps_abs = o["eps_abs"].as_double(),
                                       .h_init = o["h_init"].as_double(),
                                       .eps = o["eps"].as_double(),
                                       .safety = o["safety"].as_double(),
                                       .exponent = o["exponent"].as_double(),
                                       .denoise = o["denoise"].as_bool(),
                                       .error_norm = o["per_sample_max"].as_bool()
                                                         ? adaptive_error_norm::per_sample_max
                                                         : adaptive_error_norm::batch_rms};
    std::vector<std::vector<double>> draws;
    for (std::size_t k = 0; k < g["noise"].size(); ++k) draws.push_back(g["noise"][k].as_flat());
    replay_noise noise(draws);
    std::vector<double> times;
    const auto result = sample_adaptive_sde(p, model, be, matrix(g["x_T"]), noise, options,
                                            [&](const step_info<tensor_d>& s) {
                                              times.push_back(s.t);
                                              times.push_back(s.t_next);
                                            });
    const auto& report = g["report"];
    CHECK(result.report.accepted == static_cast<std::size_t>(report["accepted"].as_int()));
    CHECK(result.report.rejected == static_cast<std::size_t>(report["rejected"].as_int()));
    CHECK(result.report.model_calls == static_cast<std::size_t>(report["model_calls"].as_int()));
    CHECK(noise.remaining() == 0);  // one draw per attempt, every draw the reference used
    // The observer also sees the denoising step, reported at (eps, eps).
    std::vector<double> want_times = g["step_times"].as_flat();
    if (options.denoise) want_times.insert(want_times.end(), {options.eps, options.eps});
    test::check_close(times, want_times, 1e-10, 1e-12, "accepted step times");
    test::check_close(result.x.data, g["x"].as_matrix(), 1e-9, 1e-10, "final sample");
  });
}

TEST_CASE("Dormand-Prince: the counts and the solution of scipy's solve_ivp(RK45)", "[sampler][probability_flow][golden]") {
  for_each_case("dormand_prince", 4, [](const test_support::json& g, const auto& p, auto& model) {
    reference_backend<double> be;
    const adaptive_options options{.rtol = g["rtol"].as_double(),
                                   .atol = g["atol"].as_double(),
                                   .eps = g["eps"].as_double(),
                                   .first_step = g["first_step"].as_double()};
    const tensor_d start = matrix(g["x_start"]);
    const auto result = g["direction"].as_string() == "invert" ? invert_adaptive(p, model, be, start, options)
                                                               : sample_adaptive(p, model, be, start, options);
    CHECK(result.report.accepted_steps == static_cast<std::size_t>(g["accepted_steps"].as_int()));
    CHECK(result.report.function_evaluations == static_cast<std::size_t>(g["function_evaluations"].as_int()));
    CHECK(result.report.model_calls == result.report.function_evaluations);
    test::check_close(result.x.data, g["x"].as_matrix(), 1e-9, 1e-10, "final state");
  });
}
