// SPDX-License-Identifier: MIT
// Loss weightings: the published formulas, their limits at zero terminal SNR, and the conversion
// that makes one weighting mean the same objective for every target.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>

#include <diffusion/loss/weighting.hpp>
#include <diffusion/process/vp_discrete.hpp>

namespace {

namespace dm = diffusion;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using dm::parameterization;

// A continuous process with alpha = 1, sigma = t and no snr() member: the weights fall back to
// alpha^2 / sigma^2.
struct toy_ve {
  using time_kind = dm::continuous_time;
  double alpha(double) const { return 1.0; }
  double sigma(double t) const { return t; }
};

// |K error|^2 / |eps error|^2 at fixed x_t, written out per parameterization.
double error_scale(parameterization k, double a, double s) {
  switch (k) {
    case parameterization::eps: return 1.0;
    case parameterization::x0: return s * s / (a * a);
    case parameterization::v: return (a * a + s * s) * (a * a + s * s) / (a * a);
    case parameterization::score: return 1.0 / (s * s);
  }
  return 0.0;
}

}  // namespace

TEST_CASE("loss weightings satisfy the loss_weighting concept", "[loss][weighting]") {
  STATIC_REQUIRE(dm::loss_weighting<dm::unit_weight, dm::vp_discrete>);
  STATIC_REQUIRE(dm::loss_weighting<dm::min_snr_weight, dm::vp_discrete>);
  STATIC_REQUIRE(dm::loss_weighting<dm::sigma_squared_weight, dm::vp_discrete>);
  STATIC_REQUIRE(dm::loss_weighting<dm::min_snr_weight, toy_ve>);
}

TEST_CASE("unit_weight is 1 for every target", "[loss][weighting]") {
  const auto p = dm::vp_discrete::linear();
  for (auto k : {parameterization::eps, parameterization::x0, parameterization::v, parameterization::score})
    CHECK(dm::unit_weight{}(p, 500.0, k) == 1.0);
}

TEST_CASE("min_snr_weight: published forms and target independence", "[loss][weighting][min_snr]") {
  const double gamma = GENERATE(0.5, 5.0, 20.0);
  const dm::min_snr_weight w{gamma};
  CHECK(w.gamma() == gamma);

  SECTION("VP: Hang et al. 2023's eps, x0 and v weights") {
    const auto p = dm::vp_discrete::cosine();
    for (std::size_t t = 0; t < p.num_timesteps(); t += 7) {
      const double td = static_cast<double>(t);
      const double snr = p.alpha_bar(td) / (1.0 - p.alpha_bar(td));
      CHECK_THAT(w(p, td, parameterization::eps), WithinRel(std::min(snr, gamma) / snr, 1e-12));
      CHECK_THAT(w(p, td, parameterization::x0), WithinRel(std::min(snr, gamma), 1e-12));
      CHECK_THAT(w(p, td, parameterization::v), WithinRel(std::min(snr, gamma) / (snr + 1.0), 1e-12));
    }
  }
  SECTION("every target gives the same loss: w_K |K err|^2 = w_eps |eps err|^2") {
    const toy_ve p;
    for (double t : {0.01, 0.3, 1.0, 4.0, 80.0}) {
      const double w_eps = w(p, t, parameterization::eps);
      CHECK_THAT(w_eps, WithinRel(std::min(1.0 / (t * t), gamma) * t * t, 1e-12));
      for (auto k : {parameterization::x0, parameterization::v, parameterization::score})
        CHECK_THAT(w(p, t, k) * error_scale(k, 1.0, t), WithinRel(w_eps, 1e-12));
    }
  }
  SECTION("zero terminal SNR: the limits, not 0/0") {
    const auto p = dm::vp_discrete::linear().with_zero_terminal_snr();
    const double last = static_cast<double>(p.num_timesteps() - 1);
    REQUIRE(p.snr(last) == 0.0);
    CHECK(w(p, last, parameterization::eps) == 1.0);
    CHECK(w(p, last, parameterization::x0) == 0.0);
    CHECK(w(p, last, parameterization::v) == 0.0);
    CHECK(std::isfinite(w(p, last, parameterization::score)));
  }
}

TEST_CASE("sigma_squared_weight is NCSN's lambda = sigma^2 on the score", "[loss][weighting][ncsn]") {
  const dm::sigma_squared_weight w;
  const toy_ve ve;
  for (double t : {0.01, 0.5, 2.0, 50.0}) {
    CHECK_THAT(w(ve, t, parameterization::score), WithinRel(t * t, 1e-15));
    CHECK_THAT(w(ve, t, parameterization::eps), WithinRel(1.0, 1e-15));
    for (auto k : {parameterization::x0, parameterization::v})
      CHECK_THAT(w(ve, t, k) * error_scale(k, 1.0, t), WithinRel(1.0, 1e-12));
  }
  const auto vp = dm::vp_discrete::linear();
  for (double t : {0.0, 250.0, 999.0}) {
    const double s = vp.sigma(t);
    CHECK_THAT(w(vp, t, parameterization::score), WithinRel(s * s, 1e-15));
    CHECK_THAT(w(vp, t, parameterization::x0), WithinRel(vp.alpha_bar(t) / (1.0 - vp.alpha_bar(t)), 1e-12));
  }
}
