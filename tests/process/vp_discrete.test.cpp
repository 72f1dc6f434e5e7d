// SPDX-License-Identifier: MIT
// The discrete VP process (Ho et al. 2020): tables, marginal coefficients, the strided posterior
// (REFERENCE.md item 3) against the golden diffusers variances and the closed form, the forward
// sample, and input validation.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <diffusion/backend/reference.hpp>
#include <diffusion/core/time_grid.hpp>
#include <diffusion/process/forward.hpp>
#include <diffusion/process/vp_discrete.hpp>

#include "support/json.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using Catch::Matchers::WithinULP;
using diffusion::vp_discrete;

static_assert(diffusion::discrete_vp_process<vp_discrete>);
static_assert(diffusion::discrete_process<vp_discrete>);
static_assert(!diffusion::continuous_process<vp_discrete>);

namespace {

const test_support::json& tables() {
  static const test_support::json j = test_support::load_test_data("diffusers_schedule_tables.json");
  return j;
}

}  // namespace

TEST_CASE("vp_discrete: tables and marginal coefficients", "[process][vp_discrete]") {
  const vp_discrete p = vp_discrete::linear();
  REQUIRE(p.num_timesteps() == 1000);
  REQUIRE(p.betas().size() == 1000);
  REQUIRE(p.alpha_bars().size() == 1000);
  CHECK_FALSE(p.has_zero_terminal_snr());

  SECTION("alpha_bar is the cumulative product of 1 - beta (Ho et al. 2020, Eq. 4)") {
    double prod = 1.0;
    for (std::size_t t = 0; t < 1000; ++t) {
      prod *= 1.0 - p.betas()[t];
      REQUIRE(p.alpha_bar(static_cast<double>(t)) == prod);
      REQUIRE(p.beta(static_cast<double>(t)) == p.betas()[t]);
    }
  }
  SECTION("alpha^2 + sigma^2 = 1 and snr = alpha^2 / sigma^2") {
    for (double t : {0.0, 1.0, 487.0, 998.0, 999.0}) {
      INFO("t = " << t);
      const double a = p.alpha(t), s = p.sigma(t), abar = p.alpha_bar(t);
      CHECK_THAT(a, WithinULP(std::sqrt(abar), 0));
      CHECK_THAT(s, WithinULP(std::sqrt(1.0 - abar), 0));
      CHECK_THAT(a * a + s * s, WithinAbs(1.0, 4e-16));
      CHECK_THAT(p.snr(t), WithinRel(abar / (1.0 - abar), 1e-15));
    }
  }
  SECTION("the golden float64 alphas_cumprod") {
    const auto want = tables()["schedules"]["linear"]["float64_same_formula"]["alphas_cumprod"].as_vector();
    for (std::size_t t = 0; t < 1000; ++t) REQUIRE_THAT(p.alpha_bars()[t], WithinULP(want[t], 4));
  }
  SECTION("every factory builds its schedule") {
    CHECK(vp_discrete::scaled_linear().betas() == diffusion::scaled_linear_betas(0.00085, 0.012, 1000));
    CHECK(vp_discrete::cosine().betas() == diffusion::cosine_betas(1000));
    CHECK(vp_discrete::cosine(500, 0.5).betas() == diffusion::cosine_betas(500, 0.5));
    CHECK(vp_discrete::sigmoid().betas() == diffusion::sigmoid_betas(1e-4, 0.02, 1000));
    CHECK(vp_discrete::linear(1e-3, 0.05, 20).betas() == diffusion::linear_betas(1e-3, 0.05, 20));
  }
}

TEST_CASE("vp_discrete: zero terminal SNR", "[process][vp_discrete]") {
  const vp_discrete p = vp_discrete::scaled_linear().with_zero_terminal_snr();
  CHECK(p.has_zero_terminal_snr());
  CHECK(p.betas() == diffusion::rescale_zero_terminal_snr(vp_discrete::scaled_linear().betas()));
  CHECK(p.alpha_bar(999) == 0.0);
  CHECK(p.alpha(999) == 0.0);
  CHECK(p.sigma(999) == 1.0);
  CHECK(p.snr(999) == 0.0);
  CHECK(p.snr(998) > 0.0);
  SECTION("a betas vector ending in exactly 1 is accepted directly") {
    const vp_discrete q(std::vector<double>{0.1, 0.5, 1.0});
    CHECK(q.alpha_bar(2) == 0.0);
  }
  SECTION("and the posterior of its first step puts all weight on x0") {
    const auto c = diffusion::posterior(p.alpha_bar(999), p.alpha_bar(979));
    CHECK(c.xt_coef == 0.0);
    CHECK_THAT(c.x0_coef, WithinRel(std::sqrt(p.alpha_bar(979)), 1e-15));
    CHECK(c.variance_fixed_large == 1.0);
    CHECK_THAT(c.variance_fixed_small, WithinRel(1.0 - p.alpha_bar(979), 1e-15));
  }
}

TEST_CASE("posterior: the golden diffusers DDPM variances", "[process][posterior][golden]") {
  const auto& v = tables()["ddpm_get_variance"];
  const vp_discrete p = vp_discrete::linear();

  // Without set_timesteps, diffusers' previous timestep is t - 1, and alpha_bar_prev = 1 at t = 0.
  auto prev_abar = [&](double t) { return t == 0.0 ? 1.0 : p.alpha_bar(t - 1.0); };

  SECTION("fixed_small with float64 tables (t = 0, 487, 999)") {
    for (const char* key : {"0", "487", "999"}) {
      INFO("t = " << key);
      const double t = std::stod(key);
      const auto c = diffusion::posterior(p.alpha_bar(t), prev_abar(t));
      const double want = v["fixed_small_float64_tables"][key].as_double();
      CHECK_THAT(c.variance_fixed_small, WithinULP(want, 4));
    }
  }
  SECTION("the 1e-20 floor at t = 0") {
    const auto c = diffusion::posterior(p.alpha_bar(0), 1.0);
    CHECK(c.variance_fixed_small == 1e-20);
    CHECK(c.xt_coef == 0.0);
    CHECK(c.x0_coef == 1.0);
  }
  SECTION("fixed_large is the step's beta; with prev = t - 1 that is betas[t]") {
    for (double t : {0.0, 487.0, 999.0}) {
      INFO("t = " << t);
      const auto c = diffusion::posterior(p.alpha_bar(t), prev_abar(t));
      // 1 - abar_t/abar_prev cancels: ~1e-16/beta relative, so 1e-11 for beta = 1e-4.
      CHECK_THAT(c.variance_fixed_large, WithinRel(p.beta(t), 1e-11));
      // diffusers' stock float32 value, to float32 precision.
      const double f32 = v["by_variance_type"]["fixed_large"][std::to_string(static_cast<int>(t))].as_double();
      CHECK_THAT(c.variance_fixed_large, WithinRel(f32, 2e-4));
    }
  }
  SECTION("fixed_small after set_timesteps(50, leading), stock float32 tables") {
    // Computed here in double from diffusers' float32 alpha_bar table, so agreement is to float32
    // rounding of the final operations only.
    const auto abar32 = tables()["schedules"]["linear"]["stock_float32"]["alphas_cumprod"].as_vector();
    const auto grid = diffusion::leading_grid(1000, 50);
    const auto& want = v["fixed_small_after_set_timesteps_50_leading"];
    REQUIRE(want.size() == 4);
    for (std::size_t i = 0; i < grid.size(); ++i) {
      const std::string key = std::to_string(static_cast<int>(grid[i]));
      if (!want.contains(key)) continue;
      INFO("t = " << key);
      const double abar_prev = i + 1 < grid.size() ? abar32[static_cast<std::size_t>(grid[i + 1])] : 1.0;
      const auto c = diffusion::posterior(abar32[static_cast<std::size_t>(grid[i])], abar_prev);
      CHECK_THAT(c.variance_fixed_small, WithinRel(want[key].as_double(), 1e-5));
    }
  }
}

TEST_CASE("posterior: closed form of Ho et al. 2020, Eq. 7, on strided steps", "[process][posterior]") {
  const vp_discrete p = GENERATE(vp_discrete::linear(), vp_discrete::cosine(), vp_discrete::scaled_linear());
  const auto [t, prev] = GENERATE(table<int, int>({{999, 979}, {980, 960}, {500, 499}, {500, 250}, {1, 0}, {37, 3}}));
  INFO("t = " << t << ", prev = " << prev);
  const double abar_t = p.alpha_bar(t), abar_prev = p.alpha_bar(prev);
  const auto c = diffusion::posterior(abar_t, abar_prev);

  // The step's alpha is the product of the skipped per-step alphas, 1 - beta_s for prev < s <= t.
  double alpha_step = 1.0;
  for (int s = prev + 1; s <= t; ++s) alpha_step *= 1.0 - p.beta(s);
  const double beta_step = 1.0 - alpha_step;

  SECTION("coefficients") {
    CHECK_THAT(c.x0_coef, WithinRel(std::sqrt(abar_prev) * beta_step / (1.0 - abar_t), 1e-12));
    CHECK_THAT(c.xt_coef, WithinRel(std::sqrt(alpha_step) * (1.0 - abar_prev) / (1.0 - abar_t), 1e-12));
    CHECK_THAT(c.variance_fixed_small, WithinRel((1.0 - abar_prev) / (1.0 - abar_t) * beta_step, 1e-12));
    CHECK_THAT(c.variance_fixed_large, WithinRel(beta_step, 1e-12));
  }
  SECTION("with prev = t - 1 the step's beta is the table's beta") {
    if (prev + 1 == t) CHECK_THAT(c.variance_fixed_large, WithinRel(p.beta(t), 1e-10));
  }
  SECTION("the posterior is consistent with the marginals") {
    // If x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, then mean(x_prev) and var(x_prev) given x0,
    // averaged over eps, must give back q(x_prev | x0) = N(sqrt(abar_prev) x0, 1 - abar_prev):
    //   x0_coef + xt_coef sqrt(abar_t) = sqrt(abar_prev),
    //   xt_coef^2 (1 - abar_t) + beta_tilde = 1 - abar_prev.
    CHECK_THAT(c.x0_coef + c.xt_coef * std::sqrt(abar_t), WithinRel(std::sqrt(abar_prev), 1e-12));
    CHECK_THAT(c.xt_coef * c.xt_coef * (1.0 - abar_t) + c.variance_fixed_small,
               WithinRel(1.0 - abar_prev, 1e-12));
  }
}

TEST_CASE("forward_sample: x_t = alpha(t) x0 + sigma(t) eps", "[process][forward]") {
  using be_t = diffusion::reference_backend<double>;
  using tensor = be_t::tensor_type;
  const be_t be;
  const vp_discrete p = vp_discrete::linear();
  const tensor x0({2, 3}, {1, -2, 3, 0.5, 0, -1});
  const tensor eps({2, 3}, {0.1, 0.2, -0.3, 1.5, -2, 0});
  tensor xt({2, 3});
  const double t = 487;
  diffusion::forward_sample(be, p, t, x0, eps, xt);
  for (std::size_t i = 0; i < 6; ++i)
    CHECK_THAT(xt.data[i], WithinULP(p.alpha(t) * x0.data[i] + p.sigma(t) * eps.data[i], 0));

  SECTION("float tensors get the coefficients rounded once to float") {
    diffusion::reference_backend<float> bef;
    const diffusion::reference_tensor<float> x0f({1, 2}, {1.0f, -1.0f});
    const diffusion::reference_tensor<float> epsf({1, 2}, {0.5f, 2.0f});
    auto xtf = diffusion::make_like(x0f);
    diffusion::forward_sample(bef, p, 999, x0f, epsf, xtf);
    const float a = static_cast<float>(p.alpha(999)), s = static_cast<float>(p.sigma(999));
    CHECK(xtf.data[0] == a * 1.0f + s * 0.5f);
    CHECK(xtf.data[1] == a * -1.0f + s * 2.0f);
  }
  SECTION("x_t may alias eps") {
    tensor e = eps;
    diffusion::forward_sample(be, p, t, x0, e, e);
    CHECK(e.data == xt.data);
  }
  SECTION("a shape mismatch throws, naming the tensor") {
    const tensor bad({3, 2});
    CHECK_THROWS_WITH(diffusion::forward_sample(be, p, t, x0, bad, xt), Contains("eps") && Contains("[3, 2]") &&
                                                                            Contains("[2, 3]"));
    tensor bad_out({2, 2});
    CHECK_THROWS_WITH(diffusion::forward_sample(be, p, t, x0, eps, bad_out), Contains("x_t"));
  }
  SECTION("an invalid t throws") {
    CHECK_THROWS_WITH(diffusion::forward_sample(be, p, 1000.0, x0, eps, xt), Contains("t = 1000"));
  }
}

TEST_CASE("vp_discrete: invalid input", "[process][vp_discrete][errors]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();

  SECTION("a beta outside (0, 1)") {
    const double bad = GENERATE(0.0, -0.01, 1.0, 1.5);
    CHECK_THROWS_WITH(vp_discrete(std::vector<double>{0.1, bad, 0.2}),
                      Contains("vp_discrete") && Contains("betas[1]") && Contains("(0, 1)"));
  }
  SECTION("a last beta above 1") {
    CHECK_THROWS_WITH(vp_discrete(std::vector<double>{0.1, 1.5}), Contains("betas[1] = 1.5") && Contains("(0, 1]"));
  }
  SECTION("a single beta of 1 (no timestep with signal)") {
    CHECK_THROWS_WITH(vp_discrete(std::vector<double>{1.0}), Contains("betas[0] = 1") && Contains("(0, 1)"));
  }
  SECTION("a non-finite beta") {
    const double bad = GENERATE_COPY(values<double>({nan, inf}));
    CHECK_THROWS_WITH(vp_discrete(std::vector<double>{bad, 0.2}), Contains("betas[0]"));
  }
  SECTION("T = 0") {
    CHECK_THROWS_WITH(vp_discrete(std::vector<double>{}), Contains("betas.size() = 0") && Contains("at least 1"));
    CHECK_THROWS_WITH(vp_discrete::linear(1e-4, 0.02, 0), Contains("num_timesteps = 0"));
  }
  SECTION("a non-finite beta_start") {
    CHECK_THROWS_WITH(vp_discrete::linear(nan, 0.02, 10), Contains("beta_start") && Contains("(0, 1)"));
  }
  SECTION("zero terminal SNR needs T >= 2") {
    CHECK_THROWS_WITH(vp_discrete::linear(1e-4, 0.02, 1).with_zero_terminal_snr(), Contains("at least 2"));
  }
  SECTION("a non-integer t") {
    const vp_discrete p = vp_discrete::linear(1e-4, 0.02, 10);
    CHECK_THROWS_WITH(p.alpha_bar(2.5), Contains("vp_discrete::alpha_bar") && Contains("t = 2.5") &&
                                            Contains("an integer in [0, num_timesteps - 1] = [0, 9]"));
    CHECK_THROWS_WITH(p.alpha(0.25), Contains("t = 0.25"));
  }
  SECTION("an out-of-range t") {
    const vp_discrete p = vp_discrete::linear(1e-4, 0.02, 10);
    const double bad = GENERATE(-1.0, 10.0, 1e300);
    CHECK_THROWS_WITH(p.sigma(bad), Contains("vp_discrete::sigma") && Contains("[0, 9]"));
    CHECK_THROWS_WITH(p.beta(bad), Contains("vp_discrete::beta"));
    CHECK_THROWS_WITH(p.snr(bad), Contains("vp_discrete::snr"));
  }
  SECTION("a non-finite t") {
    const vp_discrete p = vp_discrete::linear(1e-4, 0.02, 10);
    const double bad = GENERATE_COPY(values<double>({nan, inf, -inf}));
    CHECK_THROWS_WITH(p.alpha_bar(bad), Contains("t = ") && Contains("[0, 9]"));
  }
  SECTION("posterior with alpha_bar_t outside [0, 1)") {
    const double bad = GENERATE_COPY(values<double>({-0.1, 1.0, nan}));
    CHECK_THROWS_WITH(diffusion::posterior(bad, 1.0), Contains("alpha_bar_t") && Contains("[0, 1)"));
  }
  SECTION("posterior with alpha_bar_prev not above alpha_bar_t or above 1") {
    const double bad = GENERATE_COPY(values<double>({0.5, 0.4, 1.01, nan}));
    CHECK_THROWS_WITH(diffusion::posterior(0.5, bad), Contains("alpha_bar_prev") && Contains("(alpha_bar_t, 1]"));
  }
}
