// SPDX-License-Identifier: MIT
// The discrete VE process of NCSN (Song & Ermon 2019): geometric levels as ncsnv2 builds them,
// the level-index time convention, the marginal coefficients, and input validation.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include <diffusion/backend/reference.hpp>
#include <diffusion/process/forward.hpp>
#include <diffusion/process/ve_discrete.hpp>

using Catch::Matchers::Contains;
using Catch::Matchers::WithinRel;
using Catch::Matchers::WithinULP;
using diffusion::ve_discrete;

static_assert(diffusion::noise_process<ve_discrete>);
static_assert(diffusion::discrete_process<ve_discrete>);
static_assert(!diffusion::continuous_process<ve_discrete>);
static_assert(!diffusion::discrete_vp_process<ve_discrete>);

namespace {
constexpr double not_a_number = std::numeric_limits<double>::quiet_NaN();
constexpr double infinity = std::numeric_limits<double>::infinity();
}  // namespace

TEST_CASE("ve_discrete: geometric levels as ncsnv2 builds them", "[process][ve_discrete]") {
  SECTION("ncsnv2's CIFAR-10 levels: sigma_begin 50, sigma_end 0.01, 232 classes") {
    // numpy 1.24: np.exp(np.linspace(np.log(50.0), np.log(0.01), 232)) in float64. exp differs by
    // an ULP or so between libms, hence the 2-ULP tolerance.
    const ve_discrete p = ve_discrete::geometric(50.0, 0.01, 232);
    REQUIRE(p.num_levels() == 232);
    REQUIRE(p.sigmas().size() == 232);
    CHECK_THAT(p.sigma(0), WithinULP(49.99999999999999, 2));
    CHECK_THAT(p.sigma(1), WithinULP(48.190024508442576, 2));
    CHECK_THAT(p.sigma(115), WithinULP(0.7202635392685112, 2));
    CHECK_THAT(p.sigma(230), WithinULP(0.010375591319992048, 2));
    CHECK_THAT(p.sigma(231), WithinULP(0.010000000000000004, 2));
    CHECK(p.sigma_max() == p.sigma(0));
    CHECK(p.sigma_min() == p.sigma(231));
  }
  SECTION("ten levels from 1 to 0.01 (numpy values)") {
    const std::vector<double> want{1.0, 0.599484250318941, 0.3593813663804628, 0.21544346900318842,
                                   0.12915496650148844, 0.07742636826811275, 0.046415888336127815,
                                   0.027825594022071264, 0.0166810053720006, 0.010000000000000004};
    const ve_discrete p = ve_discrete::geometric(1.0, 0.01, 10);
    for (std::size_t i = 0; i < want.size(); ++i) {
      INFO("i = " << i);
      CHECK_THAT(p.sigmas()[i], WithinULP(want[i], 2));
    }
  }
  SECTION("a geometric sequence: sigma_i = sigma_max (sigma_min/sigma_max)^(i/(L-1)), constant ratio") {
    const double smax = 90.0, smin = 0.02;
    const std::size_t L = 37;
    const ve_discrete p = ve_discrete::geometric(smax, smin, L);
    const double ratio = p.sigma(1) / p.sigma(0);
    CHECK(ratio < 1.0);
    for (std::size_t i = 0; i < L; ++i) {
      const double di = static_cast<double>(i);
      INFO("i = " << i);
      CHECK_THAT(p.sigma(di), WithinRel(smax * std::pow(smin / smax, di / static_cast<double>(L - 1)), 1e-13));
      if (i > 0) {
        CHECK(p.sigma(di) < p.sigma(di - 1));  // index 0 is the largest
        CHECK_THAT(p.sigma(di) / p.sigma(di - 1), WithinRel(ratio, 1e-13));
      }
    }
  }
}

TEST_CASE("ve_discrete: marginal coefficients and the forward sample", "[process][ve_discrete]") {
  const ve_discrete p(std::vector<double>{5.0, 1.0, 0.25});
  REQUIRE(p.num_levels() == 3);
  CHECK(p.sigmas() == std::vector<double>{5.0, 1.0, 0.25});
  for (double i : {0.0, 1.0, 2.0}) {
    CHECK(p.alpha(i) == 1.0);
    CHECK(p.sigma(i) == p.sigmas()[static_cast<std::size_t>(i)]);
  }
  CHECK(p.sigma_max() == 5.0);
  CHECK(p.sigma_min() == 0.25);

  SECTION("x_i = x_0 + sigma_i eps (Song & Ermon 2019, Sec. 4.1)") {
    diffusion::reference_backend<double> be;
    using T = diffusion::reference_tensor<double>;
    const T x0({2, 2}, {1.0, -2.0, 0.5, 3.0});
    const T eps({2, 2}, {0.3, -1.1, 2.0, 0.7});
    T x({2, 2});
    diffusion::forward_sample(be, p, 1.0, x0, eps, x);
    for (std::size_t j = 0; j < 4; ++j) CHECK(x.data[j] == x0.data[j] + 1.0 * eps.data[j]);
    diffusion::forward_sample(be, p, 0.0, x0, eps, x);
    for (std::size_t j = 0; j < 4; ++j) CHECK(x.data[j] == x0.data[j] + 5.0 * eps.data[j]);
  }
  SECTION("a single level is a valid process") {
    const ve_discrete one(std::vector<double>{0.7});
    CHECK(one.num_levels() == 1);
    CHECK(one.sigma(0) == 0.7);
  }
}

TEST_CASE("ve_discrete: bad input throws std::invalid_argument naming the parameter", "[process][ve_discrete][errors]") {
  SECTION("no levels") {
    CHECK_THROWS_AS(ve_discrete(std::vector<double>{}), std::invalid_argument);
    CHECK_THROWS_WITH(ve_discrete(std::vector<double>{}), Contains("sigmas.size() = 0") && Contains("at least 1"));
  }
  SECTION("a non-positive level") {
    CHECK_THROWS_AS(ve_discrete(std::vector<double>{1.0, 0.0}), std::invalid_argument);
    CHECK_THROWS_WITH(ve_discrete(std::vector<double>{1.0, 0.0}), Contains("sigmas[1] = 0") && Contains("(0, inf)"));
    CHECK_THROWS_WITH(ve_discrete(std::vector<double>{-1.0}), Contains("sigmas[0] = -1"));
  }
  SECTION("a non-finite level") {
    CHECK_THROWS_WITH(ve_discrete(std::vector<double>{infinity, 1.0}), Contains("sigmas[0] = inf"));
    CHECK_THROWS_WITH(ve_discrete(std::vector<double>{2.0, not_a_number}), Contains("sigmas[1] = nan"));
  }
  SECTION("levels not strictly decreasing") {
    CHECK_THROWS_AS(ve_discrete(std::vector<double>{1.0, 1.0}), std::invalid_argument);
    CHECK_THROWS_WITH(ve_discrete(std::vector<double>{1.0, 1.0}),
                      Contains("sigmas[1] = 1") && Contains("strictly below sigmas[0] = 1"));
    CHECK_THROWS_WITH(ve_discrete(std::vector<double>{0.1, 0.5, 1.0}), Contains("sigmas[1] = 0.5") &&
                                                                         Contains("largest first"));
  }
  SECTION("geometric: sigma_min >= sigma_max") {
    CHECK_THROWS_AS(ve_discrete::geometric(1.0, 1.0, 10), std::invalid_argument);
    CHECK_THROWS_WITH(ve_discrete::geometric(1.0, 1.0, 10), Contains("ve_discrete::geometric") &&
                                                               Contains("sigma_max = 1") && Contains("(sigma_min, inf)"));
    CHECK_THROWS_WITH(ve_discrete::geometric(0.01, 50.0, 10), Contains("sigma_max = 0.01"));
  }
  SECTION("geometric: non-positive or non-finite sigma_min") {
    CHECK_THROWS_WITH(ve_discrete::geometric(1.0, 0.0, 10), Contains("sigma_min = 0") && Contains("(0, inf)"));
    CHECK_THROWS_WITH(ve_discrete::geometric(1.0, -0.5, 10), Contains("sigma_min = -0.5"));
    CHECK_THROWS_WITH(ve_discrete::geometric(1.0, not_a_number, 10), Contains("sigma_min = nan"));
  }
  SECTION("geometric: non-finite sigma_max") {
    CHECK_THROWS_WITH(ve_discrete::geometric(infinity, 0.01, 10), Contains("sigma_max = inf"));
    CHECK_THROWS_WITH(ve_discrete::geometric(not_a_number, 0.01, 10), Contains("sigma_max = nan"));
  }
  SECTION("geometric: fewer than two levels") {
    CHECK_THROWS_WITH(ve_discrete::geometric(1.0, 0.01, 1), Contains("num_levels = 1") && Contains("at least 2"));
    CHECK_THROWS_WITH(ve_discrete::geometric(1.0, 0.01, 0), Contains("num_levels = 0"));
  }
  SECTION("a level index that is fractional, negative, too large or not finite") {
    const ve_discrete p = ve_discrete::geometric(1.0, 0.01, 10);
    for (double i : {0.5, -1.0, 10.0, not_a_number, infinity}) {
      INFO("i = " << i);
      CHECK_THROWS_AS(p.sigma(i), std::invalid_argument);
      CHECK_THROWS_WITH(p.sigma(i), Contains("ve_discrete::sigma: i = ") && Contains("[0, 9]"));
      CHECK_THROWS_WITH(p.alpha(i), Contains("ve_discrete::alpha: i = "));
    }
    CHECK_NOTHROW(p.sigma(9.0));
  }
}
