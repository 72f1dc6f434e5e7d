// SPDX-License-Identifier: MIT
// Time grids (REFERENCE.md item 2): the spacings of diffusers' set_timesteps, checked against the
// golden files' timestep lists and against numpy results computed once and pasted here.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include <diffusion/core/time_grid.hpp>

#include "support/json.hpp"

using Catch::Matchers::Contains;
using diffusion::time_grid;

namespace {

std::vector<double> to_doubles(const test_support::json& a) { return a.as_vector(); }

}  // namespace

TEST_CASE("leading grid", "[core][time_grid]") {
  SECTION("50 of 1000 is 980, 960, ..., 0 and matches both golden diffusers runs") {
    const time_grid g = diffusion::leading_grid(1000, 50);
    REQUIRE(g.size() == 50);
    CHECK(g[0] == 980.0);
    CHECK(g[49] == 0.0);
    for (std::size_t i = 0; i < g.size(); ++i) CHECK(g[i] == 980.0 - 20.0 * static_cast<double>(i));
    const auto ddpm = test_support::load_test_data("diffusers_ddpm_linear_50steps_leading.json");
    const auto ddim = test_support::load_test_data("diffusers_ddim_linear_leading_eta0.json");
    CHECK(g.values() == to_doubles(ddpm["timesteps"]));
    CHECK(g.values() == to_doubles(ddim["timesteps"]));
  }
  SECTION("a ratio that does not divide T: 7 of 1000 uses T // n = 142") {
    CHECK(diffusion::leading_grid(1000, 7).values() == std::vector<double>{852, 710, 568, 426, 284, 142, 0});
  }
  SECTION("steps_offset shifts every entry") {
    const time_grid g = diffusion::leading_grid(1000, 50, 1);
    CHECK(g[0] == 981.0);
    CHECK(g[49] == 1.0);
  }
  SECTION("all T steps visit every timestep") {
    const time_grid g = diffusion::leading_grid(10, 10);
    CHECK(g.values() == std::vector<double>{9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
  }
  SECTION("an offset that pushes the first entry to T throws") {
    // The range gives the numbers: 49 * 20 + 19 = 999 is the last first entry below 1000.
    CHECK_THROWS_WITH(diffusion::leading_grid(1000, 50, 20), Contains("steps_offset = 20") && Contains("[0, 19]"));
    CHECK_NOTHROW(diffusion::leading_grid(1000, 50, 19));
  }
  SECTION("an offset of T or more throws") {
    CHECK_THROWS_WITH(diffusion::leading_grid(10, 1, 10), Contains("steps_offset = 10") && Contains("[0, 9]"));
  }
}

TEST_CASE("trailing grid", "[core][time_grid]") {
  SECTION("50 of 1000 is 999, 979, ..., 19") {
    const time_grid g = diffusion::trailing_grid(1000, 50);
    REQUIRE(g.size() == 50);
    for (std::size_t i = 0; i < g.size(); ++i) CHECK(g[i] == 999.0 - 20.0 * static_cast<double>(i));
  }
  SECTION("non-integer ratios, numpy.round(numpy.arange(T, 0, -T/n)) - 1") {
    CHECK(diffusion::trailing_grid(1000, 7).values() == std::vector<double>{999, 856, 713, 570, 428, 285, 142});
    CHECK(diffusion::trailing_grid(1000, 3).values() == std::vector<double>{999, 666, 332});
  }
  SECTION("halves round to even: 10, 7.5, 5, 2.5 -> 10, 8, 5, 2") {
    CHECK(diffusion::trailing_grid(10, 4).values() == std::vector<double>{9, 7, 4, 1});
  }
  SECTION("entries as numpy's arange forms them: T + k delta, delta = (T - T/n) - T") {
    // 48 of 1000: arange's entry 3 is 937.4999..., not 937.5, so it rounds down (numpy 1.24:
    // np.round(np.arange(1000, 0, -1000/48)) - 1 has 936, 686, 436, 186 at entries 3, 15, 27, 39).
    const time_grid g = diffusion::trailing_grid(1000, 48);
    REQUIRE(g.size() == 48);
    CHECK(g[3] == 936.0);
    CHECK(g[15] == 686.0);
    CHECK(g[27] == 436.0);
    CHECK(g[39] == 186.0);
    CHECK(g[0] == 999.0);
    CHECK(g[47] == 20.0);
  }
}

TEST_CASE("linspace grid", "[core][time_grid]") {
  SECTION("numpy.linspace(0, T-1, n).round()[::-1]") {
    const std::vector<double> expected50{999, 979, 958, 938, 917, 897, 877, 856, 836, 816, 795, 775, 754,
                                         734, 714, 693, 673, 652, 632, 612, 591, 571, 550, 530, 510, 489,
                                         469, 449, 428, 408, 387, 367, 347, 326, 306, 285, 265, 245, 224,
                                         204, 183, 163, 143, 122, 102, 82,  61,  41,  20,  0};
    CHECK(diffusion::linspace_grid(1000, 50).values() == expected50);
    CHECK(diffusion::linspace_grid(1000, 7).values() == std::vector<double>{999, 832, 666, 500, 333, 166, 0});
  }
  SECTION("halves round to even: 4.5 -> 4, 2.5 -> 2") {
    CHECK(diffusion::linspace_grid(10, 3).values() == std::vector<double>{9, 4, 0});
    CHECK(diffusion::linspace_grid(10, 5).values() == std::vector<double>{9, 7, 4, 2, 0});
    CHECK(diffusion::linspace_grid(6, 3).values() == std::vector<double>{5, 2, 0});
  }
  SECTION("one step is {0}") { CHECK(diffusion::linspace_grid(1000, 1).values() == std::vector<double>{0}); }
}

TEST_CASE("grid step counts are validated", "[core][time_grid]") {
  SECTION("steps = 0 throws, naming steps and the range") {
    CHECK_THROWS_WITH(diffusion::leading_grid(1000, 0), Contains("steps = 0") && Contains("[1, 1000]"));
    CHECK_THROWS_WITH(diffusion::trailing_grid(1000, 0), Contains("steps = 0"));
    CHECK_THROWS_WITH(diffusion::linspace_grid(1000, 0), Contains("steps = 0"));
  }
  SECTION("more steps than training timesteps throws") {
    CHECK_THROWS_WITH(diffusion::leading_grid(1000, 1001), Contains("steps = 1001") && Contains("[1, 1000]"));
    CHECK_THROWS_WITH(diffusion::trailing_grid(1000, 1001), Contains("steps = 1001"));
    CHECK_THROWS_WITH(diffusion::linspace_grid(1000, 1001), Contains("steps = 1001"));
  }
  SECTION("num_train_timesteps = 0 throws") {
    CHECK_THROWS_WITH(diffusion::leading_grid(0, 1), Contains("num_train_timesteps"));
  }
  SECTION("continuous_grid: more steps than doubles between eps and t_end throws, naming steps") {
    const double eps = std::nextafter(1.0, 0.0);
    CHECK(diffusion::continuous_grid(2, eps).values() == std::vector<double>{1.0, eps});
    CHECK_THROWS_WITH(diffusion::continuous_grid(3, eps),
                      Contains("continuous_grid: steps = 3") && Contains("eps = 0.99999999999999989"));
    CHECK_THROWS_WITH(diffusion::continuous_grid(3, 0.0), Contains("continuous_grid: eps = 0"));
  }
}

TEST_CASE("user grids", "[core][time_grid]") {
  SECTION("a strictly decreasing finite list is kept as given") {
    const time_grid g(std::vector<double>{1.0, 0.5, 1e-3});
    CHECK(g.values() == std::vector<double>{1.0, 0.5, 1e-3});
  }
  SECTION("an empty list throws") { CHECK_THROWS_AS(time_grid(std::vector<double>{}), std::invalid_argument); }
  SECTION("an increasing entry throws, naming it") {
    CHECK_THROWS_WITH(time_grid(std::vector<double>{3, 2, 2.5}), Contains("t[2]") && Contains("strictly below"));
  }
  SECTION("a repeated entry throws") {
    CHECK_THROWS_WITH(time_grid(std::vector<double>{3, 2, 2}), Contains("t[2]"));
  }
  SECTION("a non-finite entry throws") {
    const double bad = GENERATE(std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity());
    CHECK_THROWS_WITH(time_grid(std::vector<double>{bad, 1.0}), Contains("t[0]") && Contains("finite"));
  }
}
