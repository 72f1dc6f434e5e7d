// SPDX-License-Identifier: MIT
// The VP, sub-VP and VE SDEs (Song et al. 2021): every quantity of the golden score_sde tables
// (sde, marginal_prob, discretize, reverse and probability-flow coefficients, prior_logp, the
// discrete tables), the relations f = d log alpha/dt and g^2 = d sigma^2/dt - 2 f sigma^2, the
// discretizations, the prior, the concepts and input validation.
//
// Tolerances. Where this library and score_sde evaluate the same operations in the same order the
// tolerance is 1e-15 relative (libm exp/pow/log may differ by an ULP from torch's). Where score_sde
// computes 1 - exp(u) with u near 0 (VP/sub-VP std, sub-VP diffusion) this library uses the exact
// -expm1(u): score_sde's value then carries an absolute error of half an ULP of exp(u) (~5.6e-17),
// i.e. a relative error of ~5.6e-17 / (1 - exp(u)), and the tolerance says exactly that. Likewise
// the VP discretization's sqrt(1 - beta) x - x: the tolerance is ~2.2e-16 / |f_coef| relative.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <diffusion/backend/reference.hpp>
#include <diffusion/model/gaussian_mixture.hpp>
#include <diffusion/process/forward.hpp>
#include <diffusion/process/sde.hpp>
#include <diffusion/process/ve_discrete.hpp>
#include <diffusion/process/vp_discrete.hpp>
#include <diffusion/random/replay_noise.hpp>

#include "support/json.hpp"
#include "support/mixture_fixture.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using Catch::Matchers::WithinULP;
using diffusion::subvp_sde;
using diffusion::ve_sde;
using diffusion::vp_sde;

static_assert(diffusion::sde_process<vp_sde>);
static_assert(diffusion::sde_process<subvp_sde>);
static_assert(diffusion::sde_process<ve_sde>);
static_assert(diffusion::continuous_process<vp_sde> && diffusion::noise_process<vp_sde>);
static_assert(diffusion::continuous_process<subvp_sde> && diffusion::noise_process<subvp_sde>);
static_assert(diffusion::continuous_process<ve_sde> && diffusion::noise_process<ve_sde>);
static_assert(!diffusion::discrete_process<vp_sde> && !diffusion::discrete_process<ve_sde>);
static_assert(!diffusion::sde_process<diffusion::vp_discrete>);
static_assert(!diffusion::sde_process<diffusion::ve_discrete>);
static_assert(vp_sde::end_time() == 1.0 && subvp_sde::end_time() == 1.0 && ve_sde::end_time() == 1.0);

namespace {

constexpr double not_a_number = std::numeric_limits<double>::quiet_NaN();
constexpr double infinity = std::numeric_limits<double>::infinity();

const test_support::json& golden() {
  static const test_support::json j = test_support::load_test_data("scoresde_sde_lib_tables.json");
  return j;
}

/// Relative tolerances for one t of one SDE (see the file comment).
struct tolerances {
  double sigma;      ///< marginal std
  double diffusion;  ///< g(t)
  double f;          ///< discretize f, relative to |f|
  double g;          ///< discretize G
  double score;      ///< exact mixture score vs score_sde's (its std against the model's std)
};

/// score_sde's 1 - exp(u) carries an absolute error of half an ULP of exp(u) < 1.
double one_minus_exp_tol(double one_minus_exp) { return 1e-15 + 1.2e-16 / one_minus_exp; }

tolerances vp_tolerances(const vp_sde& p, double t) {
  const double var = p.sigma(t) * p.sigma(t);
  const double f = std::abs(p.discretize(t).f_coef);
  return {one_minus_exp_tol(var), 1e-15, 1e-15 + 4.4e-16 / f, 1e-15, 1e-13 + 2.0 * one_minus_exp_tol(var)};
}
tolerances subvp_tolerances(const subvp_sde& p, double t) {
  const double std = p.sigma(t);
  const double discount = -std::expm1(4.0 * p.log_alpha(t));  // 1 - exp(-2 int beta) = 1 - alpha^4
  return {one_minus_exp_tol(std), one_minus_exp_tol(discount), 1e-15, one_minus_exp_tol(discount),
          1e-13 + 2.0 * one_minus_exp_tol(std)};
}
tolerances ve_tolerances(const ve_sde&, double) {
  // G = sqrt(sigma_i^2 - sigma_{i-1}^2) amplifies an ULP of the discrete sigmas by ~1/(1 - r^-2),
  // r = (sigma_max/sigma_min)^(1/(N-1)): ~73 here.
  return {1e-15, 1e-15, 0.0, 1e-13, 1e-13};
}

/// |got - want| <= rel * scale: a sum of terms is as accurate as its largest term, not its result.
void check_sum(double got, double want, double rel, double scale) {
  INFO("got " << got << ", want " << want << ", scale " << scale << ", rel " << rel);
  CHECK(std::abs(got - want) <= rel * scale);
}

/// Every per-t quantity of one SDE's golden table.
template <class P, class Tol>
void check_golden_by_t(const P& p, const std::string& key, Tol tol_of) {
  const auto& g = golden();
  const auto& by_t = g["tables"][key]["by_t"];
  const std::vector<double> x = g["x"].as_matrix();
  const std::size_t batch = x.size() / 2;
  const auto mixture = diffusion::test::golden_mixture();
  std::vector<double> r(mixture.components()), score(2);

  for (double t : g["t_values"].as_vector()) {
    std::string t_key = std::to_string(t);
    for (const auto& k : by_t.keys())
      if (std::stod(k) == t) t_key = k;
    const auto& tab = by_t[t_key];
    const tolerances tol = tol_of(p, t);
    INFO(key << " at t = " << t);

    const double alpha = p.alpha(t), sigma = p.sigma(t), f = p.drift_scale(t), gt = p.diffusion(t);
    const diffusion::sde_discretization d = p.discretize(t);
    const diffusion::reverse_coefficients rev = diffusion::reverse_sde_coefficients(p, t);
    const diffusion::reverse_coefficients pf = diffusion::probability_flow_coefficients(p, t);
    const diffusion::reverse_coefficients rev_d = diffusion::reverse_discretized_coefficients(p, t);
    const diffusion::reverse_coefficients pf_d = diffusion::probability_flow_discretized_coefficients(p, t);

    CHECK(p.discrete_index(t) == static_cast<std::size_t>(tab["discretize_timestep_index"].as_int()));
    CHECK(rev.noise_coef == gt);
    CHECK(pf.noise_coef == 0.0);
    CHECK(pf_d.noise_coef == 0.0);

    for (std::size_t b = 0; b < batch; ++b) {
      INFO("sample " << b);
      CHECK_THAT(sigma, WithinRel(tab["marginal_std"][b].as_double(), tol.sigma));
      CHECK_THAT(gt, WithinRel(tab["sde_diffusion"][b].as_double(), tol.diffusion));
      CHECK_THAT(gt, WithinRel(tab["reverse_sde_diffusion"][b].as_double(), tol.diffusion));
      CHECK_THAT(d.g_coef, WithinRel(tab["discretize_G"][b].as_double(), tol.g));
      CHECK_THAT(rev_d.noise_coef, WithinRel(tab["reverse_discretize_G"][b].as_double(), tol.g));
      CHECK(tab["probability_flow_discretize_G"][b].as_double() == 0.0);

      // The exact score of the golden mixture at this (alpha, sigma) is score_sde's score.
      const std::span<const double> xb(x.data() + 2 * b, 2);
      mixture.score(xb, alpha, sigma, r, score);

      for (std::size_t j = 0; j < 2; ++j) {
        INFO("coordinate " << j);
        const double xv = xb[j];
        const double s = tab["score"][b][j].as_double();  // score_sde's, used for the reverse terms
        CHECK_THAT(score[j], WithinRel(s, tol.score));
        CHECK_THAT(alpha * xv, WithinRel(tab["marginal_mean"][b][j].as_double(), 1e-15));
        CHECK_THAT(f * xv, WithinRel(tab["sde_drift"][b][j].as_double(), 1e-15));
        CHECK_THAT(d.f_coef * xv, WithinRel(tab["discretize_f"][b][j].as_double(), tol.f) || WithinAbs(0.0, 0.0));

        // Reverse SDE (Eq. 6) and probability flow (Eq. 13): f x - g^2 s (x 1/2).
        const double scale = std::abs(f * xv) + gt * gt * std::abs(s);
        const double rel = 4e-16 + 2.0 * tol.diffusion;
        check_sum(rev.x_coef * xv + rev.score_coef * s, tab["reverse_sde_drift"][b][j].as_double(), rel, scale);
        check_sum(pf.x_coef * xv + pf.score_coef * s, tab["probability_flow_drift"][b][j].as_double(), rel, scale);

        // Discretized: f_i(x) - G^2 s (x 1/2).
        const double scale_d = std::abs(d.f_coef * xv) + d.g_coef * d.g_coef * std::abs(s);
        const double rel_d = 4e-16 + tol.f + 2.0 * tol.g;
        check_sum(rev_d.x_coef * xv + rev_d.score_coef * s, tab["reverse_discretize_f"][b][j].as_double(), rel_d,
                  scale_d);
        check_sum(pf_d.x_coef * xv + pf_d.score_coef * s, tab["probability_flow_discretize_f"][b][j].as_double(),
                  rel_d, scale_d);
      }
    }
  }
}

template <class P>
void check_prior_logp(const P& p, const std::string& key) {
  const auto& tab = golden()["tables"][key];
  const std::vector<double> z = tab["z"].as_matrix();
  const std::vector<double> want = tab["prior_logp_of_z"].as_vector();
  REQUIRE(z.size() == 2 * want.size());
  for (std::size_t b = 0; b < want.size(); ++b) {
    INFO(key << " sample " << b);
    CHECK_THAT(p.prior_log_density(std::span<const double>(z.data() + 2 * b, 2)), WithinRel(want[b], 1e-15));
  }
  // The batch overload gives the same numbers.
  const diffusion::reference_tensor<double> zt({want.size(), 2}, z);
  std::vector<double> out(want.size());
  p.prior_log_density(zt, std::span<double>(out));
  for (std::size_t b = 0; b < want.size(); ++b)
    CHECK(out[b] == p.prior_log_density(std::span<const double>(z.data() + 2 * b, 2)));
}

vp_sde golden_vp() {
  const auto& q = golden()["params"]["vp"];
  return vp_sde(q["beta_min"].as_double(), q["beta_max"].as_double(), static_cast<std::size_t>(q["N"].as_int()));
}
subvp_sde golden_subvp() {
  const auto& q = golden()["params"]["subvp"];
  return subvp_sde(q["beta_min"].as_double(), q["beta_max"].as_double(), static_cast<std::size_t>(q["N"].as_int()));
}
ve_sde golden_ve() {
  const auto& q = golden()["params"]["ve"];
  return ve_sde(q["sigma_min"].as_double(), q["sigma_max"].as_double(), static_cast<std::size_t>(q["N"].as_int()));
}

}  // namespace

TEST_CASE("VP SDE: the golden score_sde tables", "[process][sde][vp][golden]") {
  const vp_sde p = golden_vp();
  REQUIRE(p.num_steps() == 1000);
  SECTION("sde, marginal_prob, discretize, reverse, probability flow") { check_golden_by_t(p, "vp", vp_tolerances); }
  SECTION("prior_logp") { check_prior_logp(p, "vp"); }
  SECTION("discrete_betas = linspace(b0/N, b1/N, N) and their cumulative product") {
    const auto betas = golden()["tables"]["vp"]["discrete_betas"].as_vector();
    const auto abar = golden()["tables"]["vp"]["alphas_cumprod"].as_vector();
    REQUIRE(p.discrete_betas().size() == betas.size());
    // torch's float64 linspace kernel (AVX2: blocks of 4 from a fused base, then base + k step)
    // rounds a few entries differently from the per-element form used here: at most 1 ULP.
    for (std::size_t i = 0; i < betas.size(); ++i) {
      REQUIRE_THAT(p.discrete_betas()[i], WithinULP(betas[i], 1));
      REQUIRE(p.discrete_alphas()[i] == 1.0 - p.discrete_betas()[i]);
    }
    // The VP discretization is the DDPM chain (Eq. 10): vp_discrete over the same betas.
    const diffusion::vp_discrete chain(p.discrete_betas());
    for (std::size_t i = 0; i < abar.size(); ++i) REQUIRE_THAT(chain.alpha_bars()[i], WithinULP(abar[i], 4));
  }
}

TEST_CASE("sub-VP SDE: the golden score_sde tables", "[process][sde][subvp][golden]") {
  const subvp_sde p = golden_subvp();
  SECTION("sde, marginal_prob, discretize, reverse, probability flow") {
    check_golden_by_t(p, "subvp", subvp_tolerances);
  }
  SECTION("prior_logp") { check_prior_logp(p, "subvp"); }
}

TEST_CASE("VE SDE: the golden score_sde tables", "[process][sde][ve][golden]") {
  const ve_sde p = golden_ve();
  REQUIRE(p.sigma_max() == 10.0);
  SECTION("sde, marginal_prob, discretize, reverse, probability flow") { check_golden_by_t(p, "ve", ve_tolerances); }
  SECTION("prior_logp") { check_prior_logp(p, "ve"); }
  SECTION("discrete_sigmas = exp(linspace(ln sigma_min, ln sigma_max, N))") {
    const auto sigmas = golden()["tables"]["ve"]["discrete_sigmas"].as_vector();
    REQUIRE(p.discrete_sigmas().size() == sigmas.size());
    // score_sde takes np.log(sigma_max); numpy's log(10) is 2.3025850929940455, one ULP below the
    // correctly rounded std::log(10) = 2.302585092994046, and torch's exp is within an ULP of
    // glibc's, so the entries agree to a few ULP (4.4e-16 absolute in the exponent).
    for (std::size_t i = 0; i < sigmas.size(); ++i) REQUIRE_THAT(p.discrete_sigmas()[i], WithinRel(sigmas[i], 1.2e-15));
  }
}

namespace {

/// f = d log alpha / dt and g^2 = d sigma^2/dt - 2 f sigma^2 (DESIGN.md), by central differences.
/// With h = 1e-6 the truncation error is ~h^2 |d^3/dt^3| / 6 <= 1e-9 relative for these
/// schedules and the rounding error ~1e-16 / h = 1e-10, so 1e-7 leaves a wide margin while a wrong
/// formula (a variance for a std, a missing factor 2) misses by O(1).
template <class P>
void check_relations(const P& p) {
  const double h = 1e-6;
  for (double t : {0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.999}) {
    INFO("t = " << t);
    const double log_alpha_dt = (std::log(p.alpha(t + h)) - std::log(p.alpha(t - h))) / (2.0 * h);
    const auto var = [&](double s) { return p.sigma(s) * p.sigma(s); };
    const double var_dt = (var(t + h) - var(t - h)) / (2.0 * h);
    const double f = p.drift_scale(t);
    const double g2 = p.diffusion(t) * p.diffusion(t);
    CHECK_THAT(f, WithinRel(log_alpha_dt, 1e-7) || WithinAbs(log_alpha_dt, 1e-9));
    CHECK_THAT(g2, WithinRel(var_dt - 2.0 * f * var(t), 1e-7));
  }
}

}  // namespace

TEST_CASE("SDE coefficients follow from alpha and sigma", "[process][sde]") {
  SECTION("VP") { check_relations(vp_sde(0.1, 20.0)); }
  SECTION("VP, other betas") { check_relations(vp_sde(0.5, 5.0)); }
  SECTION("sub-VP") { check_relations(subvp_sde(0.1, 20.0)); }
  SECTION("VE") { check_relations(ve_sde(0.01, 50.0)); }
  SECTION("VE, golden parameters") { check_relations(ve_sde(0.01, 10.0)); }
}

TEST_CASE("SDE marginals: closed forms and endpoints", "[process][sde]") {
  SECTION("VP: alpha^2 + sigma^2 = 1, alpha = exp(-1/2 int beta), endpoints") {
    const vp_sde p(0.1, 20.0);
    CHECK(p.alpha(0.0) == 1.0);
    CHECK(p.sigma(0.0) == 0.0);
    for (double t : {1e-7, 0.001, 0.3, 0.77, 1.0}) {
      INFO("t = " << t);
      const double integral = 0.1 * t + (20.0 - 0.1) * t * t / 2.0;
      CHECK_THAT(p.alpha(t), WithinRel(std::exp(-0.5 * integral), 1e-15));
      CHECK_THAT(p.log_alpha(t), WithinRel(-0.5 * integral, 1e-15));
      CHECK_THAT(p.alpha(t) * p.alpha(t) + p.sigma(t) * p.sigma(t), WithinAbs(1.0, 4e-16));
      CHECK_THAT(p.beta(t), WithinRel(0.1 + t * 19.9, 1e-15));
      CHECK(p.drift_scale(t) == -0.5 * p.beta(t));
      CHECK(p.diffusion(t) == std::sqrt(p.beta(t)));
    }
    // Near t = 0 sigma stays accurate: sigma^2 = 1 - exp(-int beta) ~ int beta.
    CHECK_THAT(p.sigma(1e-12), WithinRel(std::sqrt(0.1e-12), 1e-9));
  }
  SECTION("sub-VP: sigma = 1 - alpha^2 (a std), below VP's sigma; same alpha and drift as VP") {
    const subvp_sde p(0.1, 20.0);
    const vp_sde vp(0.1, 20.0);
    CHECK(p.sigma(0.0) == 0.0);
    CHECK(p.diffusion(0.0) == 0.0);
    for (double t : {1e-7, 0.001, 0.3, 0.77, 1.0}) {
      INFO("t = " << t);
      CHECK(p.alpha(t) == vp.alpha(t));
      CHECK(p.drift_scale(t) == vp.drift_scale(t));
      CHECK_THAT(p.sigma(t), WithinRel(1.0 - p.alpha(t) * p.alpha(t), t < 0.01 ? 1e-8 : 1e-15));
      CHECK(p.sigma(t) < vp.sigma(t));
      const double integral = 0.1 * t + 19.9 * t * t / 2.0;
      CHECK_THAT(p.diffusion(t), WithinRel(std::sqrt(p.beta(t) * -std::expm1(-2.0 * integral)), 1e-15));
    }
  }
  SECTION("VE: alpha = 1, sigma(0) = sigma_min, sigma(1) = sigma_max, geometric in t") {
    const ve_sde p(0.01, 50.0);
    CHECK(p.sigma(0.0) == 0.01);
    CHECK_THAT(p.sigma(1.0), WithinRel(50.0, 1e-15));
    CHECK(p.prior_std() == 50.0);
    for (double t : {0.0, 0.25, 0.5, 1.0}) {
      CHECK(p.alpha(t) == 1.0);
      CHECK(p.log_alpha(t) == 0.0);
      CHECK(p.drift_scale(t) == 0.0);
      CHECK_THAT(p.diffusion(t), WithinRel(p.sigma(t) * std::sqrt(2.0 * std::log(5000.0)), 1e-15));
    }
    CHECK_THAT(p.sigma(0.5), WithinRel(std::sqrt(0.01 * 50.0), 1e-15));
  }
  SECTION("forward_sample uses the SDE marginal") {
    diffusion::reference_backend<double> be;
    using T = diffusion::reference_tensor<double>;
    const T x0({1, 2}, {1.5, -0.5});
    const T eps({1, 2}, {0.25, 2.0});
    T x({1, 2});
    const vp_sde p;
    diffusion::forward_sample(be, p, 0.4, x0, eps, x);
    for (std::size_t j = 0; j < 2; ++j) CHECK(x.data[j] == p.alpha(0.4) * x0.data[j] + p.sigma(0.4) * eps.data[j]);
  }
}

TEST_CASE("SDE discretizations", "[process][sde]") {
  SECTION("discrete_index = floor(t (N - 1))") {
    const vp_sde p(0.1, 20.0, 100);
    CHECK(p.discrete_index(0.0) == 0);
    CHECK(p.discrete_index(1.0) == 99);
    CHECK(p.discrete_index(0.5) == 49);  // 49.5
    CHECK(p.discrete_index(0.999) == 98);
    CHECK(ve_sde(0.01, 50.0, 1).discrete_index(1.0) == 0);
    CHECK(subvp_sde(0.1, 20.0, 1000).discrete_index(0.1) == 99);  // 0.1 * 999 = 99.9
  }
  SECTION("VP: x_{i+1} = sqrt(1 - beta_i) x_i + sqrt(beta_i) z preserves unit variance (Eq. 10)") {
    const vp_sde p(0.1, 20.0, 100);
    for (double t : {0.0, 0.3, 1.0}) {
      INFO("t = " << t);
      const std::size_t i = p.discrete_index(t);
      const double beta = p.discrete_betas()[i];
      const auto d = p.discretize(t);
      CHECK_THAT(d.f_coef, WithinRel(std::sqrt(1.0 - beta) - 1.0, 1e-12));
      CHECK(d.g_coef == std::sqrt(beta));
      CHECK_THAT((1.0 + d.f_coef) * (1.0 + d.f_coef) + d.g_coef * d.g_coef, WithinAbs(1.0, 4e-16));
      CHECK(p.langevin_alpha(t) == 1.0 - beta);
    }
    CHECK(p.discrete_betas().front() == 0.1 / 100.0);
    CHECK_THAT(p.discrete_betas().back(), WithinULP(20.0 / 100.0, 0));
  }
  SECTION("VE: the increments' variances add up to sigma_i^2 (Eq. 8, sigma_{-1} = 0)") {
    const ve_sde p(0.01, 50.0, 200);
    double total = 0.0;
    for (std::size_t i = 0; i < 200; ++i) {
      // A time inside index i's cell: i/199 itself can land just below the integer i.
      const double t = i == 199 ? 1.0 : (static_cast<double>(i) + 0.5) / 199.0;
      REQUIRE(p.discrete_index(t) == i);
      const auto d = p.discretize(t);
      CHECK(d.f_coef == 0.0);
      total += d.g_coef * d.g_coef;
      CHECK_THAT(total, WithinRel(p.discrete_sigmas()[i] * p.discrete_sigmas()[i], 1e-13));
      CHECK(p.langevin_alpha(t) == 1.0);
    }
    CHECK(p.discrete_sigmas().front() == std::exp(std::log(0.01)));
    CHECK_THAT(p.discrete_sigmas().back(), WithinRel(50.0, 1e-15));
  }
  SECTION("sub-VP: Euler-Maruyama with dt = 1/N; Langevin alpha from VP's discrete betas") {
    const subvp_sde p(0.1, 20.0, 50);
    const vp_sde vp(0.1, 20.0, 50);
    for (double t : {0.0, 0.2, 0.61, 1.0}) {
      INFO("t = " << t);
      const auto d = p.discretize(t);
      CHECK(d.f_coef == p.drift_scale(t) * (1.0 / 50.0));
      CHECK(d.g_coef == p.diffusion(t) * std::sqrt(1.0 / 50.0));
      CHECK(p.langevin_alpha(t) == vp.langevin_alpha(t));
    }
    CHECK(p.discrete_betas() == vp.discrete_betas());
  }
  SECTION("reverse coefficients: SDE and probability flow share f, and the flow halves g^2") {
    const vp_sde p;
    const auto rev = diffusion::reverse_sde_coefficients(p, 0.3);
    const auto pf = diffusion::probability_flow_coefficients(p, 0.3);
    CHECK(rev.x_coef == p.drift_scale(0.3));
    CHECK(pf.x_coef == rev.x_coef);
    CHECK(rev.score_coef == -p.beta(0.3));
    CHECK(pf.score_coef == 0.5 * rev.score_coef);
    const auto rd = diffusion::reverse_discretized_coefficients(p, 0.3);
    const auto pd = diffusion::probability_flow_discretized_coefficients(p, 0.3);
    CHECK(rd.x_coef == p.discretize(0.3).f_coef);
    CHECK(rd.score_coef == -(p.discretize(0.3).g_coef * p.discretize(0.3).g_coef));
    CHECK(pd.score_coef == 0.5 * rd.score_coef);
    CHECK(pd.x_coef == rd.x_coef);
  }
}

TEST_CASE("SDE prior: one normal draw, scaled by the prior std", "[process][sde]") {
  diffusion::reference_backend<double> be;
  using T = diffusion::reference_tensor<double>;
  const std::vector<double> z{0.5, -1.25, 2.0, 0.125, -0.75, 1.5};
  SECTION("VP and sub-VP: x_T = z") {
    diffusion::replay_noise noise({z, z});
    T x({3, 2});
    vp_sde().sample_prior(be, noise, x);
    CHECK(x.data == z);
    CHECK(noise.draw_index() == 1);
    subvp_sde().sample_prior(be, noise, x);
    CHECK(x.data == z);
    CHECK(noise.draw_index() == 2);
  }
  SECTION("VE: x_T = sigma_max z") {
    diffusion::replay_noise noise({z});
    T x({3, 2});
    const ve_sde p(0.01, 50.0);
    p.sample_prior(be, noise, x);
    CHECK(noise.draw_index() == 1);
    for (std::size_t j = 0; j < z.size(); ++j) CHECK(x.data[j] == 50.0 * z[j]);
  }
  SECTION("a float tensor") {
    diffusion::reference_backend<float> bf;
    diffusion::replay_noise noise({z});
    diffusion::reference_tensor<float> x({3, 2});
    ve_sde(0.01, 10.0).sample_prior(bf, noise, x);
    for (std::size_t j = 0; j < z.size(); ++j) CHECK(x.data[j] == 10.0f * static_cast<float>(z[j]));
  }
  SECTION("prior log-density: N(0, std^2 I) per sample") {
    const std::vector<double> x{0.3, -1.2, 2.5};
    const double sq = 0.09 + 1.44 + 6.25;
    CHECK_THAT(vp_sde().prior_log_density(x), WithinRel(-1.5 * std::log(2.0 * std::numbers::pi) - sq / 2.0, 1e-15));
    CHECK_THAT(ve_sde(0.01, 4.0).prior_log_density(x),
               WithinRel(-1.5 * std::log(2.0 * std::numbers::pi * 16.0) - sq / 32.0, 1e-15));
  }
}

TEST_CASE("SDE defaults are score_sde's sde_lib.py defaults", "[process][sde]") {
  // VPSDE(beta_min=0.1, beta_max=20, N=1000), subVPSDE likewise, VESDE(sigma_min=0.01, sigma_max=50, N=1000).
  const vp_sde vp;
  const subvp_sde sub;
  const ve_sde ve;
  CHECK(vp.beta_min() == 0.1);
  CHECK(vp.beta_max() == 20.0);
  CHECK(vp.num_steps() == 1000);
  CHECK(sub.beta_min() == 0.1);
  CHECK(sub.beta_max() == 20.0);
  CHECK(sub.num_steps() == 1000);
  CHECK(ve.sigma_min() == 0.01);
  CHECK(ve.sigma_max() == 50.0);
  CHECK(ve.num_steps() == 1000);
}

TEST_CASE("SDE bad input throws std::invalid_argument naming the parameter", "[process][sde][errors]") {
  SECTION("VP / sub-VP: beta_min > beta_max") {
    CHECK_THROWS_AS(vp_sde(1.0, 0.5), std::invalid_argument);
    CHECK_THROWS_WITH(vp_sde(1.0, 0.5), Contains("vp_sde") && Contains("beta_max = 0.5") && Contains("[1, inf)"));
    CHECK_THROWS_WITH(subvp_sde(1.0, 0.5), Contains("subvp_sde") && Contains("beta_max = 0.5"));
    CHECK_NOTHROW(vp_sde(1.0, 1.0));  // a constant beta is allowed
  }
  SECTION("VP / sub-VP: non-positive beta_min") {
    CHECK_THROWS_WITH(vp_sde(0.0, 20.0), Contains("beta_min = 0") && Contains("(0, inf)"));
    CHECK_THROWS_WITH(subvp_sde(-0.1, 20.0), Contains("beta_min = -0.1"));
  }
  SECTION("VP / sub-VP: non-finite parameters") {
    CHECK_THROWS_WITH(vp_sde(not_a_number, 20.0), Contains("beta_min = nan"));
    CHECK_THROWS_WITH(vp_sde(0.1, infinity), Contains("beta_max = inf"));
    CHECK_THROWS_WITH(subvp_sde(0.1, not_a_number), Contains("beta_max = nan"));
  }
  SECTION("VP / sub-VP: N = 0") {
    CHECK_THROWS_WITH(vp_sde(0.1, 20.0, 0), Contains("vp_sde: num_steps = 0") && Contains("at least 1"));
    CHECK_THROWS_WITH(subvp_sde(0.1, 20.0, 0), Contains("num_steps = 0"));
  }
  SECTION("VP / sub-VP: discrete betas reaching 1 (N <= beta_max)") {
    const vp_sde p(0.1, 20.0, 10);  // discrete betas 0.01 .. 2
    CHECK_NOTHROW(p.diffusion(1.0));  // the continuous SDE is fine
    CHECK_NOTHROW(p.discretize(0.0));
    CHECK_THROWS_WITH(p.discretize(1.0), Contains("vp_sde::discretize") && Contains("num_steps = 10") &&
                                             Contains("above beta_max = 20"));
    CHECK_THROWS_WITH(p.langevin_alpha(1.0), Contains("vp_sde::langevin_alpha") && Contains("num_steps = 10"));
    CHECK_THROWS_WITH(subvp_sde(0.1, 20.0, 10).langevin_alpha(1.0), Contains("num_steps = 10"));
    CHECK_NOTHROW(subvp_sde(0.1, 20.0, 10).discretize(1.0));  // Euler-Maruyama needs no table
  }
  SECTION("VE: sigma_min >= sigma_max") {
    CHECK_THROWS_AS(ve_sde(1.0, 1.0), std::invalid_argument);
    CHECK_THROWS_WITH(ve_sde(1.0, 1.0), Contains("ve_sde: sigma_max = 1") && Contains("(sigma_min, inf) = (1, inf)"));
    CHECK_THROWS_WITH(ve_sde(50.0, 0.01), Contains("sigma_max = 0.01"));
  }
  SECTION("VE: non-positive sigma_min") {
    CHECK_THROWS_WITH(ve_sde(0.0, 50.0), Contains("sigma_min = 0") && Contains("(0, inf)"));
    CHECK_THROWS_WITH(ve_sde(-1.0, 50.0), Contains("sigma_min = -1"));
  }
  SECTION("VE: non-finite parameters") {
    CHECK_THROWS_WITH(ve_sde(not_a_number, 50.0), Contains("sigma_min = nan"));
    CHECK_THROWS_WITH(ve_sde(0.01, infinity), Contains("sigma_max = inf"));
    CHECK_THROWS_WITH(ve_sde(0.01, not_a_number), Contains("sigma_max = nan"));
  }
  SECTION("VE: N = 0") { CHECK_THROWS_WITH(ve_sde(0.01, 50.0, 0), Contains("ve_sde: num_steps = 0")); }
  SECTION("VE: sigma_max / sigma_min overflows") {
    // sigma(t) = sigma_min (sigma_max / sigma_min)^t would be infinite for every t > 0.
    CHECK_THROWS_WITH(ve_sde(1e-200, 1e200), Contains("ve_sde: sigma_max = 9.9999999999999997e+199") && Contains("must be finite"));
    CHECK_THROWS_WITH(ve_sde(1e-310, 1.0), Contains("sigma_max = 1"));
    CHECK_THAT(ve_sde(1e-150, 1e150).sigma(0.5), Catch::Matchers::WithinRel(1.0, 1e-12));
  }
  SECTION("t outside [0, 1]") {
    const vp_sde vp;
    const subvp_sde sub;
    const ve_sde ve;
    for (double t : {-1e-12, 1.0000001, 2.0, not_a_number, infinity, -infinity}) {
      INFO("t = " << t);
      // Catch2's combined matchers hold their parts by reference, so both parts are named here.
      const auto has_t = Contains("t = ");
      const auto has_range = Contains("[0, 1]");
      const auto msg = has_t && has_range;
      CHECK_THROWS_AS(vp.alpha(t), std::invalid_argument);
      CHECK_THROWS_WITH(vp.alpha(t), Contains("vp_sde::alpha") && msg);
      CHECK_THROWS_WITH(vp.sigma(t), Contains("vp_sde::sigma") && msg);
      CHECK_THROWS_WITH(vp.beta(t), Contains("vp_sde::beta") && msg);
      CHECK_THROWS_WITH(vp.log_alpha(t), Contains("vp_sde::log_alpha") && msg);
      CHECK_THROWS_WITH(vp.drift_scale(t), Contains("vp_sde::drift_scale") && msg);
      CHECK_THROWS_WITH(vp.diffusion(t), Contains("vp_sde::diffusion") && msg);
      CHECK_THROWS_WITH(vp.discrete_index(t), Contains("vp_sde::discrete_index") && msg);
      CHECK_THROWS_WITH(vp.discretize(t), msg);
      CHECK_THROWS_WITH(vp.langevin_alpha(t), msg);
      CHECK_THROWS_WITH(sub.alpha(t), Contains("subvp_sde::alpha") && msg);
      CHECK_THROWS_WITH(sub.sigma(t), Contains("subvp_sde::sigma") && msg);
      CHECK_THROWS_WITH(sub.diffusion(t), Contains("subvp_sde::diffusion") && msg);
      CHECK_THROWS_WITH(sub.drift_scale(t), msg);
      CHECK_THROWS_WITH(sub.discretize(t), msg);
      CHECK_THROWS_WITH(sub.langevin_alpha(t), msg);
      CHECK_THROWS_WITH(ve.alpha(t), Contains("ve_sde::alpha") && msg);
      CHECK_THROWS_WITH(ve.sigma(t), Contains("ve_sde::sigma") && msg);
      CHECK_THROWS_WITH(ve.diffusion(t), Contains("ve_sde::diffusion") && msg);
      CHECK_THROWS_WITH(ve.drift_scale(t), msg);
      CHECK_THROWS_WITH(ve.discretize(t), msg);
      CHECK_THROWS_WITH(ve.langevin_alpha(t), msg);
      CHECK_THROWS_WITH(diffusion::reverse_sde_coefficients(ve, t), msg);
    }
    CHECK_NOTHROW(vp.alpha(0.0));
    CHECK_NOTHROW(vp.alpha(1.0));
  }
  SECTION("prior log-density of an empty sample, or a batch output of the wrong size") {
    CHECK_THROWS_WITH(vp_sde().prior_log_density(std::span<const double>()), Contains("x.size() = 0"));
    const diffusion::reference_tensor<double> x({3, 2});
    std::vector<double> out(2);
    CHECK_THROWS_WITH(ve_sde().prior_log_density(x, std::span<double>(out)),
                      Contains("out.size() = 2") && Contains("batch size of x, 3"));
  }
}
