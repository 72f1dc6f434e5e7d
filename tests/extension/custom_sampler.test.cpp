// SPDX-License-Identifier: MIT
// Adding a process and a sampler outside the library's headers: the EDM process (Karras et al.
// 2022: alpha = 1, sigma(t) = t) and k-diffusion's Euler sampler on Karras sigmas, written here
// against the public concepts only, reproduce crowsonkb/k-diffusion's `sample_euler` step by step
// (tests/data/kdiff_euler.json; REFERENCE.md items 6-7). docs/concepts.md walks through this file.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include <diffusion/core.hpp>

#include "support/json.hpp"
#include "support/mixture_fixture.hpp"

namespace dm = diffusion;

// --- A process: one struct with alpha(t), sigma(t) and a time kind (dm::noise_process). --------
struct edm_process {
  using time_kind = dm::continuous_time;
  double alpha(double) const { return 1.0; }
  double sigma(double t) const { return t; }  // time is the noise level itself
};
static_assert(dm::noise_process<edm_process>);

// Karras et al. 2022, Eq. 5: sigma_i = (smax^(1/rho) + i/(n-1) (smin^(1/rho) - smax^(1/rho)))^rho.
dm::time_grid karras_sigmas(std::size_t n, double sigma_min, double sigma_max, double rho) {
  const std::vector<double> ramp = dm::linspace(0.0, 1.0, n);
  const double min_inv_rho = std::pow(sigma_min, 1.0 / rho), max_inv_rho = std::pow(sigma_max, 1.0 / rho);
  std::vector<double> s(n);
  for (std::size_t i = 0; i < n; ++i) s[i] = std::pow(max_inv_rho + ramp[i] * (min_inv_rho - max_inv_rho), rho);
  return dm::time_grid(std::move(s));
}

// --- A sampler: grid, workspace, one update rule (dm::sampler_for). ----------------------------
// Euler on the probability-flow ODE in sigma (Karras et al. 2022, Alg. 1 without the Heun
// correction): d = (x - D(x, sigma)) / sigma, x += d (sigma_next - sigma); after the last sigma, 0.
template <class Process>
class karras_euler {
 public:
  karras_euler(Process process, dm::time_grid sigmas) : m_process(process), m_sigmas(std::move(sigmas)) {}

  std::size_t num_steps() const { return m_sigmas.size(); }
  double time(std::size_t i) const { return m_sigmas[i]; }
  double time_next(std::size_t i) const { return i + 1 < m_sigmas.size() ? m_sigmas[i + 1] : 0.0; }

  template <dm::tensor T>
  struct workspace {
    T prediction;  // the denoised D(x, sigma): what observers see
    bool need_prediction = true;
  };
  template <class Backend, dm::tensor T>
  workspace<T> make_workspace(Backend&, const T& x) const {
    return {dm::make_like(x)};
  }

  template <class Backend, class Model, class Noise, dm::tensor T>
  void step(Backend& be, Model& model, Noise&, workspace<T>& ws, T& x, std::size_t i) const {
    using S = dm::scalar_of<T>;
    const double sigma = time(i), h = time_next(i) - sigma;
    dm::predict_as<dm::x0_param>(be, model, m_process, x, sigma, ws.prediction);  // any model works
    // x + h (x - D)/sigma as one fused pass
    be.lincomb(x, S(1.0 + h / sigma), x, S(-h / sigma), ws.prediction);
  }

 private:
  Process m_process;
  dm::time_grid m_sigmas;
};
static_assert(dm::sampler_for<karras_euler<edm_process>, dm::reference_backend<double>>);

TEST_CASE("Karras sigmas equal k-diffusion's get_sigmas_karras", "[extension][golden]") {
  const auto golden = test_support::load_json(std::string(DIFFUSION_TEST_DATA_DIR) + "/kdiff_sigmas_karras.json");
  const auto want = golden["sigmas_float64"].as_vector();  // n + 1 entries, the last an appended 0
  const auto grid = karras_sigmas(20, 0.002, 80.0, 7.0);
  REQUIRE(grid.size() + 1 == want.size());
  for (std::size_t i = 0; i < grid.size(); ++i) CHECK_THAT(grid[i], Catch::Matchers::WithinRel(want[i], 1e-14));  // pow and linspace round differently from torch by a few ulp
  CHECK(want.back() == 0.0);
}

TEST_CASE("a sampler written outside the library reproduces k-diffusion's sample_euler", "[extension][golden]") {
  const auto golden = test_support::load_json(std::string(DIFFUSION_TEST_DATA_DIR) + "/kdiff_euler.json");
  const auto sigmas = karras_sigmas(20, 0.002, 80.0, 7.0);
  const karras_euler sampler(edm_process{}, sigmas);
  // k-diffusion's model is the denoiser D(x, sigma) = E[x0 | x]: an x0 predictor.
  dm::gaussian_mixture_model<edm_process, dm::x0_param> denoiser(dm::test::golden_mixture(), edm_process{});
  dm::reference_backend<double> be;
  const auto x_T = golden["inputs"]["x_T"].as_matrix();
  const auto& per_step = golden["per_step_callback"];

  auto close = [](const std::vector<double>& got, const std::vector<double>& want) {
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, std::abs(got[i] - want[i]) / (1e-12 + 1e-10 * std::abs(want[i])));
    return worst <= 1.0;
  };
  std::size_t seen = 0;
  const auto x = dm::sample(sampler, denoiser, be, dm::reference_tensor<double>({x_T.size() / 2, 2}, x_T),
                            dm::replay_noise(std::vector<std::vector<double>>{}),
                            [&](const dm::step_info<dm::reference_tensor<double>>& s) {
                              INFO("step " << s.index);
                              CHECK_THAT(s.t, Catch::Matchers::WithinRel(per_step[s.index]["sigma"].as_double(), 1e-14));
                              CHECK(close(s.prediction.data, per_step[s.index]["denoised"].as_matrix()));
                              // k-diffusion's callback shows x before step i: ours after step i - 1.
                              if (s.index + 1 < s.count) CHECK(close(s.x.data, per_step[s.index + 1]["x"].as_matrix()));
                              ++seen;
                            });
  CHECK(seen == 20);
  CHECK(close(x.data, golden["final_sample"].as_matrix()));
}
