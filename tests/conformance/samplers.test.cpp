// SPDX-License-Identifier: MIT
// The conformance suite: every valid process x sampler pairing of the library, on every backend
// {reference, Eigen DefaultDevice, Eigen ThreadPoolDevice (1 and 2 threads), xtensor} x {float,
// double}: the same seed gives the same result as the reference backend within a few ulp, and the
// thread pool gives the same bits with 1 and 2 threads. Statistical checks in float beside the
// double ones of each sampler's own test.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <memory>
#include <tuple>
#include <type_traits>
#include <vector>

#include <diffusion/diffusion.hpp>
#include <diffusion/backend/xtensor.hpp>

#include "support/mixture_fixture.hpp"
#include "support/statistics.hpp"

namespace dm = diffusion;

namespace {

// --- Backends: how to make one and a [n, 2] tensor for it. -----------------------------------
template <class S>
struct reference_setup {
  using scalar = S;
  using backend = dm::reference_backend<S>;
  static constexpr const char* name = "reference";
  backend be;
  typename backend::tensor_type tensor(std::size_t n) { return typename backend::tensor_type({n, 2}); }
};
template <class S>
struct eigen_default_setup {
  using scalar = S;
  using backend = dm::eigen_backend<S, 2>;
  static constexpr const char* name = "eigen DefaultDevice";
  backend be;
  typename backend::tensor_type tensor(std::size_t n) { return typename backend::tensor_type(static_cast<Eigen::Index>(n), 2); }
};
template <class S, int Threads>
struct eigen_pool_setup {
  using scalar = S;
  using backend = dm::eigen_backend<S, 2, Eigen::ThreadPoolDevice>;
  static constexpr const char* name = Threads == 1 ? "eigen ThreadPoolDevice(1)" : "eigen ThreadPoolDevice(2)";
  std::unique_ptr<dm::eigen_thread_pool> pool = std::make_unique<dm::eigen_thread_pool>(Threads);
  backend be{*pool, 0};  // threshold 0: the pool runs every operation, however small
  typename backend::tensor_type tensor(std::size_t n) { return typename backend::tensor_type(static_cast<Eigen::Index>(n), 2); }
};
template <class S>
struct xtensor_setup {
  using scalar = S;
  using backend = dm::xtensor_backend<S, 2>;
  static constexpr const char* name = "xtensor";
  backend be;
  typename backend::tensor_type tensor(std::size_t n) { return typename backend::tensor_type({n, 2}); }
};

using all_setups =
    std::tuple<reference_setup<float>, reference_setup<double>, eigen_default_setup<float>, eigen_default_setup<double>,
               eigen_pool_setup<float, 1>, eigen_pool_setup<double, 1>, eigen_pool_setup<float, 2>,
               eigen_pool_setup<double, 2>, xtensor_setup<float>, xtensor_setup<double>>;

// --- Pairings: every valid process x sampler composition, run from x_T with one seed. ---------
// Each returns the final state as doubles.
template <class Setup>
std::vector<std::vector<double>> run_all_pairings(Setup& setup, std::size_t n) {
  using T = typename Setup::backend::tensor_type;
  using S = typename Setup::scalar;
  auto& be = setup.be;
  const auto mixture = dm::test::golden_mixture();
  T x_T = setup.tensor(n);
  dm::philox_noise(100).fill_normal(dm::elements(x_T), n);
  std::vector<std::vector<double>> results;
  auto keep = [&](const T& x) {
    std::vector<double> out;
    for (S v : dm::elements(x)) out.push_back(static_cast<double>(v));
    results.push_back(std::move(out));
  };

  const auto vp = dm::vp_discrete::linear();
  dm::gaussian_mixture_model<dm::vp_discrete> vp_model(mixture, vp);
  keep(dm::sample(dm::ddpm_ancestral(vp, dm::leading_grid(1000, 20)), vp_model, be, x_T, dm::philox_noise(1, 0, true)));
  keep(dm::sample(dm::ddpm_ancestral(vp, dm::trailing_grid(1000, 20), {.variance = dm::ddpm_variance::fixed_large,
                                                                    .correction = dm::x0_correction::dynamic_threshold(0.9, 2.0)}),
                  vp_model, be, x_T, dm::philox_noise(1)));
  keep(dm::sample(dm::ddim(vp, dm::leading_grid(1000, 20), {.eta = 0.5}), vp_model, be, x_T, dm::philox_noise(2)));
  keep(dm::sample(dm::ddim(vp, dm::linspace_grid(1000, 20), {.correction = dm::x0_correction::clip(2.0)}), vp_model, be,
                  x_T, dm::philox_noise(2)));

  const auto levels = dm::ve_discrete::geometric(10.0, 0.01, 10);
  dm::gaussian_mixture_model<dm::ve_discrete, dm::score_param> ncsn_model(mixture, levels);
  T x_ve = setup.tensor(n);
  be.lincomb(x_ve, S(10), x_T);
  keep(dm::sample(dm::annealed_langevin(levels, {.step_lr = 1e-5, .n_steps_each = 3}), ncsn_model, be, x_ve,
                  dm::philox_noise(3)));
  const double gamma = levels.sigma(1) / levels.sigma(0), sigma_L = levels.sigma(9);
  keep(dm::sample(dm::consistent_annealed_sampling(levels, {.step_lr = sigma_L * sigma_L * (1 - gamma * gamma)}),
                  ncsn_model, be, x_ve, dm::philox_noise(4)));

  const dm::vp_sde vp_sde(0.1, 20.0, 25);
  dm::gaussian_mixture_model<dm::vp_sde> vp_sde_model(mixture, vp_sde);
  keep(dm::sample(dm::euler_maruyama(vp_sde), vp_sde_model, be, x_T, dm::philox_noise(5)));
  keep(dm::sample(dm::predictor_corrector(vp_sde, dm::reverse_diffusion_predictor{}, dm::langevin_corrector{}),
                  vp_sde_model, be, x_T, dm::philox_noise(6)));
  keep(dm::sample(dm::predictor_corrector(vp_sde, dm::ancestral_predictor{}, dm::annealed_langevin_corrector{}),
                  vp_sde_model, be, x_T, dm::philox_noise(7)));
  keep(dm::sample(dm::predictor_corrector(vp_sde, dm::reverse_diffusion_predictor{.probability_flow = true}),
                  vp_sde_model, be, x_T, dm::philox_noise(8)));
  keep(dm::sample(dm::probability_flow<dm::vp_sde, dm::euler_method>(vp_sde, {.steps = 10}), vp_sde_model, be, x_T,
                  dm::philox_noise(0)));
  keep(dm::sample(dm::probability_flow<dm::vp_sde, dm::heun_method>(vp_sde, {.steps = 10}), vp_sde_model, be, x_T,
                  dm::philox_noise(0)));
  keep(dm::sample(dm::probability_flow<dm::vp_sde, dm::rk4_method>(vp_sde, {.steps = 10}), vp_sde_model, be, x_T,
                  dm::philox_noise(0)));
  keep(dm::sample_adaptive(vp_sde, vp_sde_model, be, x_T, {.rtol = 1e-4, .atol = 1e-4}).x);
  keep(dm::sample_adaptive_sde(vp_sde, vp_sde_model, be, x_T, dm::philox_noise(9)).x);

  const dm::subvp_sde subvp(0.1, 20.0, 25);
  dm::gaussian_mixture_model<dm::subvp_sde> subvp_model(mixture, subvp);
  keep(dm::sample(dm::predictor_corrector(subvp, dm::euler_maruyama_predictor{}, dm::langevin_corrector{}), subvp_model,
                  be, x_T, dm::philox_noise(10)));

  const dm::ve_sde ve(0.01, 10.0, 25);
  dm::gaussian_mixture_model<dm::ve_sde> ve_model(mixture, ve);
  keep(dm::sample(dm::predictor_corrector(ve, dm::reverse_diffusion_predictor{}, dm::langevin_corrector{}), ve_model, be,
                  x_ve, dm::philox_noise(11)));
  keep(dm::sample(dm::predictor_corrector(ve, dm::ancestral_predictor{}, dm::annealed_langevin_corrector{}), ve_model,
                  be, x_ve, dm::philox_noise(12)));
  return results;
}

// Largest distance in units in the last place of S, relative to max(|a|, 1) (the data are O(1)).
template <class S>
double max_ulps(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(a[i] - b[i]) /
                                (std::max(std::abs(a[i]), 1.0) * static_cast<double>(std::numeric_limits<S>::epsilon())));
  return worst;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("every sampler pairing gives the reference backend's result on every backend",
                        "[conformance]", all_setups) {
  using S = typename TestType::scalar;
  const std::size_t n = GENERATE(as<std::size_t>{}, 5, 601);
  TestType setup;
  reference_setup<S> reference;
  const auto got = run_all_pairings(setup, n);
  const auto want = run_all_pairings(reference, n);
  REQUIRE(got.size() == want.size());
  for (std::size_t k = 0; k < got.size(); ++k) {
    INFO(TestType::name << ", batch " << n << ", pairing " << k);
    for (double v : got[k]) REQUIRE(std::isfinite(v));
    CHECK(max_ulps<S>(got[k], want[k]) <= 4);
  }
}

TEMPLATE_TEST_CASE("the thread pool gives the same bits with 1 and 2 threads", "[conformance]", float, double) {
  const std::size_t n = 4099;
  eigen_pool_setup<TestType, 1> one;
  eigen_pool_setup<TestType, 2> two;
  CHECK(run_all_pairings(one, n) == run_all_pairings(two, n));
}

TEST_CASE("samplers reproduce the mixture in float too", "[conformance][statistics]") {
  const auto mixture = dm::test::golden_mixture();
  dm::eigen_backend<float, 2> be;
  const Eigen::Index n = 8192;
  Eigen::Tensor<float, 2, Eigen::RowMajor> x_T(n, 2);
  dm::philox_noise(21).fill_normal(dm::elements(x_T), n);
  auto check = [&](const Eigen::Tensor<float, 2, Eigen::RowMajor>& x) {
    std::vector<double> xd;
    for (float v : dm::elements(x)) xd.push_back(v);
    dm::test::check_mean_and_covariance(xd, 2, mixture.mean(), mixture.covariance());
  };
  const auto vp = dm::vp_discrete::linear();
  dm::gaussian_mixture_model<dm::vp_discrete> vp_model(mixture, vp);
  SECTION("ddpm ancestral, 1000 steps") { check(dm::sample(dm::ddpm_ancestral(vp, dm::leading_grid(1000, 1000)), vp_model, be, x_T, dm::philox_noise(22))); }
  SECTION("ddim, 50 steps, eta 1") { check(dm::sample(dm::ddim(vp, dm::leading_grid(1000, 50), {.eta = 1.0}), vp_model, be, x_T, dm::philox_noise(23))); }
  const dm::vp_sde sde(0.1, 20.0, 500);
  dm::gaussian_mixture_model<dm::vp_sde> sde_model(mixture, sde);
  SECTION("PC reverse diffusion + Langevin") {
    check(dm::sample(dm::predictor_corrector(sde, dm::reverse_diffusion_predictor{}, dm::langevin_corrector{}), sde_model, be, x_T, dm::philox_noise(24)));
  }
  SECTION("probability flow, Heun 50") {
    check(dm::sample(dm::probability_flow<dm::vp_sde, dm::heun_method>(sde, {.steps = 50}), sde_model, be, x_T, dm::philox_noise(0)));
  }
  const auto levels = dm::ve_discrete::geometric(10.0, 0.01, 50);
  dm::gaussian_mixture_model<dm::ve_discrete, dm::score_param> ncsn_model(mixture, levels);
  SECTION("annealed Langevin") {
    Eigen::Tensor<float, 2, Eigen::RowMajor> x_ve(n, 2);
    be.lincomb(x_ve, 10.f, x_T);
    check(dm::sample(dm::annealed_langevin(levels, {.step_lr = 1e-5, .n_steps_each = 30}), ncsn_model, be, x_ve, dm::philox_noise(25)));
  }
}
