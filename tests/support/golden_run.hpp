// SPDX-License-Identifier: MIT
// Comparisons with the recorded runs of reference implementations (tests/data/*.json): a sampler
// run step by step against a diffusers scheduler's float64 run.
#pragma once

#include <catch2/catch.hpp>

#include <cstddef>
#include <string>
#include <vector>

#include <diffusion/backend/reference.hpp>
#include <diffusion/sampler/driver.hpp>

#include "closeness.hpp"
#include "json.hpp"

namespace diffusion::test {

/// Runs `sampler` on the reference backend from the golden file's inputs.x_T ([N, 2]) with `noise`,
/// and checks it against runs.float64_tables, the diffusers scheduler with float64 tables: at every
/// step t exactly, and x (prev_sample) and x0_hat (pred_original_sample) to 1e-10 relative
/// (1e-12 absolute); then the final sample. Returns the number of steps the sampler took.
template <class Sampler, class Model, class Noise>
std::size_t check_matches_diffusers_run(const Sampler& sampler, Model& model, Noise&& noise,
                                        const test_support::json& golden) {
  using tensor_d = reference_tensor<double>;
  const auto& run = golden["runs"]["float64_tables"];
  const std::vector<double> x_T = golden["inputs"]["x_T"].as_matrix();
  reference_backend<double> be;
  std::size_t steps = 0;
  const tensor_d x = sample(sampler, model, be, tensor_d({x_T.size() / 2, 2}, x_T), noise,
                            [&](const step_info<tensor_d>& s) {
                              const auto& rec = run["per_step"][s.index];
                              REQUIRE(rec["t"].as_double() == s.t);
                              const std::string step = " at step " + std::to_string(s.index);
                              check_close(s.x.data, rec["prev_sample"].as_matrix(), 1e-10, 1e-12, "prev_sample" + step);
                              check_close(s.prediction.data, rec["pred_original_sample"].as_matrix(), 1e-10, 1e-12,
                                          "pred_original_sample" + step);
                              ++steps;
                            });
  check_close(x.data, run["final_sample"].as_matrix(), 1e-10, 1e-12, "final_sample");
  return steps;
}

}  // namespace diffusion::test
