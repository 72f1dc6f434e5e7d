// SPDX-License-Identifier: MIT
// Beta schedules: parity with diffusers' float64 tables (REFERENCE.md item 1) and closed-form
// properties where there is no golden table (sigmoid, zero terminal SNR).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include <diffusion/process/beta_schedules.hpp>
#include <diffusion/process/vp_discrete.hpp>

#include "support/json.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using Catch::Matchers::WithinULP;

namespace {

const test_support::json& tables() {
  static const test_support::json j = test_support::load_test_data("diffusers_schedule_tables.json");
  return j;
}

// Every entry within `ulp` ULP of the golden value; reports the first failure only.
void check_within_ulp(const std::vector<double>& got, const std::vector<double>& want, std::uint64_t ulp) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("index " << i);
    REQUIRE_THAT(got[i], WithinULP(want[i], ulp));
  }
}

std::vector<double> alpha_bars_of(const std::vector<double>& betas) { return diffusion::vp_discrete(betas).alpha_bars(); }

}  // namespace

// The bounds are what the library achieves. linear: betas within 1 ULP (<= 2.2e-16 relative) and
// alpha_bar within 2 ULP; scaled_linear: betas within 3 ULP (squaring doubles the linspace's
// relative error) and alpha_bar within 6 ULP (<= 7.8e-16 relative). torch's AVX2 linspace kernel
// computes blocks of four as base + k step, which no scalar formula reproduces bit for bit; both
// use only IEEE-exact operations (fma, sqrt), so these bounds hold on every platform. cosine is
// bit-exact here; its bound leaves room for another libm's cos.
TEST_CASE("schedules match diffusers' float64 tables", "[process][schedule][golden]") {
  const auto& s = tables()["schedules"];
  const std::size_t T = static_cast<std::size_t>(tables()["T"].as_int());
  REQUIRE(T == 1000);

  SECTION("linear 1e-4 .. 0.02") {
    const auto& g = s["linear"];
    const auto betas = diffusion::linear_betas(g["beta_start"].as_double(), g["beta_end"].as_double(), T);
    check_within_ulp(betas, g["float64_same_formula"]["betas"].as_vector(), 1);
    check_within_ulp(alpha_bars_of(betas), g["float64_same_formula"]["alphas_cumprod"].as_vector(), 2);
    // Both ends are exact, as in torch.linspace.
    CHECK(betas.front() == 1e-4);
    CHECK(betas.back() == 0.02);
  }
  SECTION("scaled_linear 0.00085 .. 0.012") {
    const auto& g = s["scaled_linear"];
    const auto betas = diffusion::scaled_linear_betas(g["beta_start"].as_double(), g["beta_end"].as_double(), T);
    check_within_ulp(betas, g["float64_same_formula"]["betas"].as_vector(), 3);
    check_within_ulp(alpha_bars_of(betas), g["float64_same_formula"]["alphas_cumprod"].as_vector(), 6);
  }
  SECTION("squaredcos_cap_v2") {
    const auto& g = s["squaredcos_cap_v2"];
    const auto betas = diffusion::cosine_betas(T);
    check_within_ulp(betas, g["float64_same_formula"]["betas"].as_vector(), 4);
    check_within_ulp(alpha_bars_of(betas), g["float64_same_formula"]["alphas_cumprod"].as_vector(), 8);
  }
  SECTION("the stock float32 tables are the same schedules to float32 precision") {
    for (const char* name : {"linear", "scaled_linear", "squaredcos_cap_v2"}) {
      INFO(name);
      const auto& g = s[name];
      const auto f32 = g["stock_float32"]["alphas_cumprod"].as_vector();
      const auto f64 = g["float64_same_formula"]["alphas_cumprod"].as_vector();
      // float32 cumulative products drift by ~1e-5 relative over 1000 steps; that is why the
      // library keeps its tables in double.
      for (std::size_t i = 0; i < T; i += 37) REQUIRE_THAT(f32[i], WithinRel(f64[i], 1e-3));
    }
  }
}

TEST_CASE("linear and scaled_linear closed forms", "[process][schedule]") {
  SECTION("linear is evenly spaced") {
    const auto b = diffusion::linear_betas(0.1, 0.4, 4);
    REQUIRE(b.size() == 4);
    CHECK_THAT(b[1], WithinRel(0.2, 1e-15));
    CHECK_THAT(b[2], WithinRel(0.3, 1e-15));
  }
  SECTION("scaled_linear squares an even spacing of square roots") {
    const auto b = diffusion::scaled_linear_betas(0.01, 0.09, 3);
    CHECK_THAT(b[0], WithinRel(0.01, 1e-15));
    CHECK_THAT(b[1], WithinRel(0.04, 1e-15));
    CHECK_THAT(b[2], WithinRel(0.09, 1e-15));
  }
  SECTION("T = 1 gives beta_start, as torch.linspace does") {
    CHECK(diffusion::linear_betas(0.1, 0.4, 1) == std::vector<double>{0.1});
  }
}

TEST_CASE("cosine schedule", "[process][schedule]") {
  SECTION("alpha_bar is f(t)/f(0) wherever the cap is inactive (Nichol & Dhariwal 2021, Eq. 17)") {
    const std::size_t T = 1000;
    const auto b = diffusion::cosine_betas(T);
    const auto abar = alpha_bars_of(b);
    auto f = [](double t) {
      const double c = std::cos((t + 0.008) / 1.008 * std::numbers::pi / 2);
      return c * c;
    };
    for (std::size_t i : {0u, 1u, 100u, 500u, 900u, 990u}) {
      INFO("i = " << i);
      CHECK_THAT(abar[i], WithinRel(f(static_cast<double>(i + 1) / T) / f(0.0), 1e-12));
    }
  }
  SECTION("betas are capped at max_beta and increase up to it") {
    const double cap = GENERATE(0.999, 0.5, 0.02);
    const auto b = diffusion::cosine_betas(1000, cap);
    CHECK(b.back() == cap);
    for (std::size_t i = 1; i < b.size(); ++i) {
      REQUIRE(b[i] <= cap);
      REQUIRE(b[i] >= b[i - 1]);
    }
  }
  SECTION("the uncapped schedule ends at beta = 1 (f(1) = 0), which the cap exists to avoid") {
    const auto b = diffusion::cosine_betas(1000, 1.0);
    CHECK_THAT(b.back(), WithinAbs(1.0, 1e-12));
  }
}

TEST_CASE("sigmoid schedule", "[process][schedule]") {
  const double b0 = 1e-4, b1 = 0.02;
  const std::size_t T = 1000;
  const auto b = diffusion::sigmoid_betas(b0, b1, T);
  REQUIRE(b.size() == T);
  SECTION("ends at logistic(-6) and logistic(6) of the range, midpoint-symmetric") {
    const double l6 = 1.0 / (1.0 + std::exp(-6.0)), lm6 = 1.0 / (1.0 + std::exp(6.0));
    CHECK_THAT(b.front(), WithinRel(lm6 * (b1 - b0) + b0, 1e-14));
    CHECK_THAT(b.back(), WithinRel(l6 * (b1 - b0) + b0, 1e-14));
    // logistic(-x) = 1 - logistic(x), so beta_i + beta_{T-1-i} = b0 + b1.
    for (std::size_t i = 0; i < T; i += 50) CHECK_THAT(b[i] + b[T - 1 - i], WithinRel(b0 + b1, 1e-14));
  }
  SECTION("strictly increasing inside (beta_start, beta_end)") {
    for (std::size_t i = 0; i < T; ++i) {
      REQUIRE(b[i] > b0);
      REQUIRE(b[i] < b1);
      if (i > 0) REQUIRE(b[i] > b[i - 1]);
    }
  }
}

TEST_CASE("zero terminal SNR rescaling (Lin et al. 2024, Algorithm 1)", "[process][schedule]") {
  const auto original = GENERATE(diffusion::linear_betas(1e-4, 0.02, 1000),
                                 diffusion::scaled_linear_betas(0.00085, 0.012, 1000), diffusion::cosine_betas(1000),
                                 diffusion::linear_betas(0.1, 0.2, 2));
  const auto rescaled = diffusion::rescale_zero_terminal_snr(original);
  const std::size_t T = original.size();
  REQUIRE(rescaled.size() == T);
  const auto abar_old = alpha_bars_of(original);
  const auto abar_new = alpha_bars_of(rescaled);

  SECTION("the last beta is 1 and alpha_bar(T-1) is 0") {
    CHECK(rescaled.back() == 1.0);
    CHECK(abar_new.back() == 0.0);
  }
  SECTION("sqrt(alpha_bar_0) is unchanged") {
    CHECK_THAT(std::sqrt(abar_new.front()), WithinRel(std::sqrt(abar_old.front()), 1e-14));
  }
  SECTION("sqrt(alpha_bar) is the affine map of the old one that fixes the first and zeroes the last") {
    const double s0 = std::sqrt(abar_old.front()), sT = std::sqrt(abar_old.back());
    for (std::size_t i = 0; i < T; i += 7) {
      const double want = (std::sqrt(abar_old[i]) - sT) * s0 / (s0 - sT);
      REQUIRE_THAT(std::sqrt(abar_new[i]), WithinRel(want, 1e-12) || WithinAbs(want, 1e-15));
    }
  }
  SECTION("alpha_bar stays strictly decreasing and the other betas stay in (0, 1)") {
    for (std::size_t i = 0; i + 1 < T; ++i) {
      REQUIRE(rescaled[i] > 0.0);
      REQUIRE(rescaled[i] < 1.0);
      REQUIRE(abar_new[i + 1] < abar_new[i]);
    }
  }
  SECTION("rescaling twice changes nothing beyond rounding") {
    const auto twice = diffusion::rescale_zero_terminal_snr(rescaled);
    CHECK(twice.back() == 1.0);
    for (std::size_t i = 0; i + 1 < T; i += 7) REQUIRE_THAT(twice[i], WithinRel(rescaled[i], 1e-9));
  }
}

TEST_CASE("schedule parameters are validated", "[process][schedule][errors]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  SECTION("T = 0") {
    CHECK_THROWS_WITH(diffusion::linear_betas(1e-4, 0.02, 0), Contains("num_timesteps = 0") && Contains("at least 1"));
    CHECK_THROWS_WITH(diffusion::scaled_linear_betas(1e-4, 0.02, 0), Contains("num_timesteps"));
    CHECK_THROWS_WITH(diffusion::cosine_betas(0), Contains("num_timesteps"));
    CHECK_THROWS_WITH(diffusion::sigmoid_betas(1e-4, 0.02, 0), Contains("num_timesteps"));
  }
  SECTION("non-finite beta_start") {
    const double bad = GENERATE_COPY(values<double>({nan, inf}));
    CHECK_THROWS_WITH(diffusion::linear_betas(bad, 0.02, 10), Contains("beta_start") && Contains("(0, 1)"));
    CHECK_THROWS_WITH(diffusion::scaled_linear_betas(bad, 0.02, 10), Contains("beta_start"));
    CHECK_THROWS_WITH(diffusion::sigmoid_betas(bad, 0.02, 10), Contains("beta_start"));
  }
  SECTION("beta_start or beta_end outside (0, 1)") {
    const double bad = GENERATE(0.0, -0.1, 1.0, 1.5);
    CHECK_THROWS_WITH(diffusion::linear_betas(bad, 0.02, 10), Contains("linear_betas") && Contains("beta_start") &&
                                                                   Contains("(0, 1)"));
    CHECK_THROWS_WITH(diffusion::linear_betas(1e-4, bad, 10), Contains("beta_end") && Contains("(0, 1)"));
    CHECK_THROWS_WITH(diffusion::scaled_linear_betas(1e-4, bad, 10), Contains("beta_end"));
    CHECK_THROWS_WITH(diffusion::sigmoid_betas(1e-4, bad, 10), Contains("beta_end"));
  }
  SECTION("max_beta outside (0, 1]") {
    const double bad = GENERATE_COPY(values<double>({0.0, 1.5, -1.0, nan}));
    CHECK_THROWS_WITH(diffusion::cosine_betas(10, bad), Contains("max_beta") && Contains("(0, 1]"));
  }
  SECTION("negative or non-finite s") {
    const double bad = GENERATE_COPY(values<double>({-0.1, inf}));
    CHECK_THROWS_WITH(diffusion::cosine_betas(10, 0.999, bad), Contains("s = ") && Contains("[0, inf)"));
  }
  SECTION("rescaling needs T >= 2") {
    CHECK_THROWS_WITH(diffusion::rescale_zero_terminal_snr({0.1}), Contains("betas.size() = 1") &&
                                                                       Contains("at least 2"));
  }
  SECTION("rescaling rejects invalid betas, naming the entry") {
    CHECK_THROWS_WITH(diffusion::rescale_zero_terminal_snr({0.1, 0.0, 0.2}), Contains("betas[1] = 0") &&
                                                                                Contains("(0, 1)"));
  }
}
