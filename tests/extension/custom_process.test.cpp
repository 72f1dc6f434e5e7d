// SPDX-License-Identifier: MIT
// Adding processes outside the library's headers: a discrete VP process with a schedule of its own
// (used by the DDPM-family samplers) and a continuous SDE with a cosine schedule (used by the
// reverse-SDE sampler), each only the members its concept asks for. docs/concepts.md walks
// through this file.
#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>
#include <vector>

#include <diffusion/core.hpp>

#include "support/mixture_fixture.hpp"
#include "support/statistics.hpp"

namespace dm = diffusion;
using tensor_d = dm::reference_tensor<double>;

// --- A discrete VP process: alpha_bar(t) for integer t in [0, T) (dm::discrete_vp_process). ---
// alpha_bar(t) = 1 - ((t + 1)/T)^2 * (1 - alpha_bar_min): a schedule the library does not ship.
struct quadratic_vp {
  using time_kind = dm::discrete_time;
  std::size_t T = 1000;
  double alpha_bar_min = 1e-3;
  std::size_t num_timesteps() const { return T; }
  double alpha_bar(double t) const {
    if (!(t >= 0 && t < static_cast<double>(T) && t == std::floor(t))) dm::throw_invalid("quadratic_vp", "t", t, "[0, T)");
    const double u = (t + 1.0) / static_cast<double>(T);
    return 1.0 - u * u * (1.0 - alpha_bar_min);
  }
  double alpha(double t) const { return std::sqrt(alpha_bar(t)); }
  double sigma(double t) const { return std::sqrt(1.0 - alpha_bar(t)); }
};
static_assert(dm::discrete_vp_process<quadratic_vp>);

// --- A continuous SDE: alpha(t) = cos(theta t), sigma = sin(theta t) (variance preserving). ----
// f = d log alpha/dt = -theta tan(theta t); g^2 = d sigma^2/dt - 2 f sigma^2 = -2 f (DESIGN.md).
struct cosine_vp_sde {
  using time_kind = dm::continuous_time;
  double theta = 1.43;  // beta(1) = -2 f(1) ~ 20, like the linear VP SDE
  static constexpr double end_time() { return 1.0; }
  double alpha(double t) const { return std::cos(theta * t); }
  double sigma(double t) const { return std::sin(theta * t); }
  double drift_scale(double t) const { return -theta * std::tan(theta * t); }
  double diffusion(double t) const { return std::sqrt(-2.0 * drift_scale(t)); }
};
static_assert(dm::continuous_process<cosine_vp_sde> && dm::has_sde_coefficients<cosine_vp_sde>);

namespace {

void check_mixture(const tensor_d& x) {
  const auto mixture = dm::test::golden_mixture();
  dm::test::check_mean_and_covariance(x.data, 2, mixture.mean(), mixture.covariance());
}

}  // namespace

TEST_CASE("a discrete VP process written outside the library drives ddim and ddpm", "[extension][process]") {
  const quadratic_vp process;
  dm::gaussian_mixture_model<quadratic_vp> model(dm::test::golden_mixture(), process);
  dm::reference_backend<double> be;
  const std::size_t n = 8192;
  // Start from the exact marginal at t = T-1 (alpha_bar_min > 0, so it is not quite N(0, I)).
  tensor_d x0({n, 2}), z({n, 2}), x_T({n, 2});
  dm::philox_noise noise(11);
  dm::test::golden_mixture().sample(noise, x0);
  noise.fill_normal(std::span<double>(z.data), n);
  dm::forward_sample(be, process, 999.0, x0, z, x_T);
  SECTION("ddim") { check_mixture(dm::sample(dm::ddim(process, dm::trailing_grid(1000, 100)), model, be, x_T, noise)); }
  SECTION("ddpm") {
    check_mixture(dm::sample(dm::ddpm_ancestral(process, dm::trailing_grid(1000, 250)), model, be, x_T, noise));
  }
}

TEST_CASE("an SDE written outside the library drives the reverse-SDE sampler", "[extension][process]") {
  const cosine_vp_sde process;
  // The derived relation of DESIGN.md holds: f = d log alpha/dt, g^2 = d sigma^2/dt - 2 f sigma^2.
  for (double t : {0.1, 0.5, 0.9}) {
    const double h = 1e-6;
    const double dlog_alpha = (std::log(process.alpha(t + h)) - std::log(process.alpha(t - h))) / (2 * h);
    const double dsigma2 = (std::pow(process.sigma(t + h), 2) - std::pow(process.sigma(t - h), 2)) / (2 * h);
    CHECK_THAT(process.drift_scale(t), Catch::Matchers::WithinRel(dlog_alpha, 1e-6));
    CHECK_THAT(std::pow(process.diffusion(t), 2),
               Catch::Matchers::WithinRel(dsigma2 - 2 * process.drift_scale(t) * std::pow(process.sigma(t), 2), 1e-6));
  }
  dm::gaussian_mixture_model<cosine_vp_sde> model(dm::test::golden_mixture(), process);
  dm::reference_backend<double> be;
  const std::size_t n = 8192;
  tensor_d x0({n, 2}), z({n, 2}), x_T({n, 2});
  dm::philox_noise noise(12);
  dm::test::golden_mixture().sample(noise, x0);
  noise.fill_normal(std::span<double>(z.data), n);
  dm::forward_sample(be, process, 1.0, x0, z, x_T);  // the exact marginal at T: no prior mismatch
  // No num_steps() on the process: the step count is given; Euler-Maruyama needs nothing more.
  const auto sampler = dm::predictor_corrector(process, dm::euler_maruyama_predictor{}, dm::no_corrector{}, {.steps = 1000});
  check_mixture(dm::sample(sampler, model, be, x_T, noise));
  CHECK_THROWS_WITH(dm::predictor_corrector(process, dm::euler_maruyama_predictor{}, dm::no_corrector{}, {}),
                    Catch::Matchers::Contains("steps"));
}
