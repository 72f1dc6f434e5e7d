// SPDX-License-Identifier: MIT
// Convergence order of the fixed-step probability-flow solvers (odeint's test/numeric idea): on the
// mixture under the VP SDE, halving the step divides the error against a far finer reference by
// about 2^p, p = 1, 2, 4 for Euler, Heun and RK4.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include <diffusion/core.hpp>
#include <diffusion/process/sde.hpp>
#include <diffusion/sampler/adaptive_ode.hpp>
#include <diffusion/sampler/probability_flow.hpp>

#include "support/mixture_fixture.hpp"

using namespace diffusion;
using Catch::Matchers::WithinAbs;
using tensor_d = reference_tensor<double>;

namespace {

// 64 starting points x_T ~ N(0, I), the VP prior.
tensor_d start() {
  tensor_d x({64, 2});
  philox_noise(11).fill_normal(std::span<double>(x.data), 64);
  return x;
}

template <class Method>
tensor_d solve_fixed(std::size_t steps, const tensor_d& x_T) {
  const vp_sde p;
  gaussian_mixture_model<vp_sde, score_param> model(test::golden_mixture(), p);
  reference_backend<double> be;
  return sample(probability_flow<vp_sde, Method>(p, {.steps = steps}), model, be, x_T, philox_noise(0));
}

adaptive_result<tensor_d> solve_dopri5(double tol, const tensor_d& x_T) {
  const vp_sde p;
  gaussian_mixture_model<vp_sde, score_param> model(test::golden_mixture(), p);
  reference_backend<double> be;
  return sample_adaptive(p, model, be, x_T, {.rtol = tol, .atol = tol});
}

double rms_distance(const tensor_d& a, const tensor_d& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.data.size(); ++i) s += (a.data[i] - b.data[i]) * (a.data[i] - b.data[i]);
  return std::sqrt(s / static_cast<double>(a.data.size()));
}

// The observed orders log2(e(n) / e(2n)) for n = first, 2 first, 4 first.
template <class Method>
std::vector<double> observed_orders(std::size_t first, const tensor_d& x_T, const tensor_d& reference) {
  std::vector<double> errors;
  for (std::size_t n = first; n <= 8 * first; n *= 2) errors.push_back(rms_distance(solve_fixed<Method>(n, x_T), reference));
  std::vector<double> orders;
  for (std::size_t i = 0; i + 1 < errors.size(); ++i) {
    orders.push_back(std::log2(errors[i] / errors[i + 1]));
    UNSCOPED_INFO("steps " << first * (std::size_t{1} << i) << " -> " << first * (std::size_t{2} << i) << ": error "
                           << errors[i] << " -> " << errors[i + 1] << ", observed order " << orders.back());
  }
  return orders;
}

}  // namespace

TEST_CASE("the Dormand-Prince reference agrees with RK4 on 16384 steps", "[numeric][probability_flow]") {
  const tensor_d x_T = start();
  const auto dp = solve_dopri5(1e-12, x_T);
  const tensor_d rk4 = solve_fixed<rk4_method>(16384, x_T);
  // RK4's error at 4096 steps is 1.6e-13 RMS and falls 16-fold per halving, so at 16384 it is
  // below 1e-15: the distance is the tight Dormand-Prince solve's own error.
  INFO("Dormand-Prince at 1e-12: " << dp.report.accepted_steps << " accepted, " << dp.report.rejected_steps
                                   << " rejected, " << dp.report.model_calls << " model calls");
  const double distance = rms_distance(dp.x, rk4);
  INFO("RMS distance " << distance);
  CHECK_THAT(distance, WithinAbs(0.0, 1e-11));  // measured 4e-13
  const double distance13 = rms_distance(solve_dopri5(1e-13, x_T).x, rk4);
  INFO("at tolerance 1e-13: RMS distance " << distance13);
  CHECK_THAT(distance13, WithinAbs(0.0, 1e-12));  // measured 4e-14
}

TEST_CASE("fixed-step probability-flow solvers converge with orders 1, 2 and 4", "[numeric][probability_flow]") {
  const tensor_d x_T = start();
  // The reference's own error (below 1e-12, previous test) is under 0.2% of the smallest error
  // measured here, RK4's 6e-10 at 512 steps, so it does not bend the observed orders.
  const tensor_d reference = solve_dopri5(1e-13, x_T).x;
  // Step counts where each method is in its asymptotic regime (measured: Euler from 16 steps,
  // Heun from 32, RK4 from 64; below that the observed orders are 1.1, 1.6-1.8 and 2.4-3.5).
  SECTION("Euler: order 1") {
    for (double p : observed_orders<euler_method>(32, x_T, reference)) CHECK_THAT(p, WithinAbs(1.0, 0.3));
  }
  SECTION("Heun: order 2") {
    for (double p : observed_orders<heun_method>(64, x_T, reference)) CHECK_THAT(p, WithinAbs(2.0, 0.3));
  }
  SECTION("RK4: order 4") {
    for (double p : observed_orders<rk4_method>(64, x_T, reference)) CHECK_THAT(p, WithinAbs(4.0, 0.3));
  }
}
