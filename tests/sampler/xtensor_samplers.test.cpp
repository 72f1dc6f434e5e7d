// SPDX-License-Identifier: MIT
// Same seed, same result on xtensor: the DDPM, DDIM and predictor-corrector samplers, unchanged, on
// xt::xtensor, xt::xarray and a user's buffer sampled in place (xtensor_buffer), against the
// reference backend. The model is evaluated in double either way and every backend operation forms
// its sums in the reference's order, so in a build without FMA contraction the results are
// bit-identical; with it they agree within a few ULP.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <limits>
#include <new>
#include <span>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include <diffusion/xtensor.hpp>

#include "support/mixture_fixture.hpp"
#include "support/allocation_counter.hpp"
#include "support/backend_checks.hpp"

#if defined(EIGEN_WORLD_VERSION)
#error "diffusion/xtensor.hpp includes Eigen"
#endif

using namespace diffusion;

namespace {

using test::may_contract_fma;

/// x_T: n samples of the 2-D mixture's dimension, from a fixed Philox draw.
template <class T>
T start_state(std::size_t n) {
  T x = [&] {
    if constexpr (std::is_same_v<T, xt::xarray<scalar_of<T>>>)
      return T::from_shape(std::vector<std::size_t>{n, 2});
    else
      return T({n, 2});
  }();
  philox_noise(123).fill_normal(elements(x), n);
  return x;
}

template <class Sampler>
auto model_for(const Sampler& sampler) {
  using process_type = std::remove_cvref_t<decltype(sampler.process())>;
  return gaussian_mixture_model<process_type>(test::golden_mixture(), sampler.process());
}

template <class T>
std::vector<double> to_doubles(const T& x) {
  std::vector<double> out;
  for (auto v : elements(x)) out.push_back(static_cast<double>(v));
  return out;
}

/// Runs `sampler` from x with the per-sample-stream Philox noise every run uses.
template <class Sampler, class Backend, class Observer = null_observer>
std::vector<double> run(const Sampler& sampler, Backend& be, typename Backend::tensor_type x, Observer&& obs = {}) {
  auto model = model_for(sampler);
  const auto result = sample(sampler, model, be, std::move(x), philox_noise(7, 0, true), obs);
  return to_doubles(result);
}

/// Largest |a - b| / (|b| eps_S), with |b| floored at the smallest normal of S.
template <class S>
double max_ulps(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double scale = std::max(std::abs(want[i]), static_cast<double>(std::numeric_limits<S>::min()));
    worst = std::max(worst, std::abs(got[i] - want[i]) / (scale * static_cast<double>(std::numeric_limits<S>::epsilon())));
  }
  return worst;
}

template <class S>
void require_same_result(const std::vector<double>& got, const std::vector<double>& want) {
  const double ulps = max_ulps<S>(got, want);
  INFO("max distance " << ulps << " ULP");
  CHECK(ulps <= 4);
  if constexpr (!may_contract_fma) CHECK(got == want);  // bit-identical
}

/// Counts steps and checks that every step's x is the user's buffer itself.
template <class S>
struct same_buffer_observer {
  const S* user;
  std::size_t steps = 0;
  bool always_user_buffer = true;
  void operator()(const step_info<xtensor_buffer<S, 2>>& info) {
    ++steps;
    always_user_buffer = always_user_buffer && info.x.data() == user;
  }
};

/// An observer of any tensor type that only counts, so that a reference run observes exactly as
/// the in-place run does (an observed sampler also forms x0_hat).
struct counting_observer {
  std::size_t* steps;
  template <class T>
  void operator()(const step_info<T>&) {
    ++*steps;
  }
};

template <class S, class Sampler>
void check_xtensor_backends(const Sampler& sampler) {
  const std::size_t n = GENERATE(as<std::size_t>{}, 3, 1000, 10001);
  INFO("batch " << n);
  reference_backend<S> ref;
  const auto expected = run(sampler, ref, start_state<reference_tensor<S>>(n));

  {
    INFO("xt::xtensor");
    xtensor_backend<S, 2> be;
    require_same_result<S>(run(sampler, be, start_state<xt::xtensor<S, 2>>(n)), expected);
  }
  {
    INFO("xt::xarray");
    xarray_backend<S> be;
    require_same_result<S>(run(sampler, be, start_state<xt::xarray<S>>(n)), expected);
  }
  {
    INFO("a user's buffer, sampled in place");
    std::vector<S> user(2 * n);
    philox_noise(123).fill_normal(std::span<S>(user), n);
    const xt::xtensor<S, 2> x_T = start_state<xt::xtensor<S, 2>>(n);
    REQUIRE(std::equal(user.begin(), user.end(), x_T.begin()));

    // An observer makes the sampler form x0_hat, so the reference run is observed too.
    std::size_t ref_steps = 0;
    const auto expected_observed = run(sampler, ref, start_state<reference_tensor<S>>(n), counting_observer{&ref_steps});

    auto adaptor = xt::adapt(user.data(), user.size(), xt::no_ownership(), std::array<std::size_t, 2>{n, 2});
    xtensor_buffer_backend<S, 2> be;
    same_buffer_observer<S> obs{user.data()};
    auto model = model_for(sampler);
    const xtensor_buffer<S, 2> result = sample(sampler, model, be, borrow_xtensor(adaptor), philox_noise(7, 0, true), obs);

    CHECK(obs.steps == sampler.num_steps());
    // No copy of x was made: every step updated the user's buffer, which holds the result.
    CHECK(obs.always_user_buffer);
    CHECK(result.data() == user.data());
    require_same_result<S>(std::vector<double>(user.begin(), user.end()), expected_observed);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("samplers give the reference backend's result on xtensor", "[sampler][backend][xtensor]", float,
                   double) {
  using S = TestType;
  const auto process = vp_discrete::linear();
  SECTION("ddpm ancestral") { check_xtensor_backends<S>(ddpm_ancestral(process, leading_grid(1000, 10))); }
  SECTION("ddpm ancestral, dynamic thresholding") {
    check_xtensor_backends<S>(
        ddpm_ancestral(process, leading_grid(1000, 10), {.correction = x0_correction::dynamic_threshold(0.9, 2.0)}));
  }
  SECTION("ddim eta = 0") { check_xtensor_backends<S>(ddim(process, linspace_grid(1000, 10), {.eta = 0.0})); }
  SECTION("ddim eta = 0 with clipping") {
    check_xtensor_backends<S>(ddim(process, linspace_grid(1000, 10), {.correction = x0_correction::clip(2.0)}));
  }
  SECTION("ddim eta = 1") { check_xtensor_backends<S>(ddim(process, trailing_grid(1000, 10), {.eta = 1.0})); }
  SECTION("Euler-Maruyama on the VP SDE") { check_xtensor_backends<S>(euler_maruyama(vp_sde(0.1, 20.0, 25))); }
  SECTION("reverse diffusion + Langevin corrector on the VP SDE") {
    check_xtensor_backends<S>(
        predictor_corrector(vp_sde(0.1, 20.0, 25), reverse_diffusion_predictor{}, langevin_corrector{}));
  }
}

namespace {

/// Records the allocation counter after every step.
struct allocation_recorder {
  std::vector<std::size_t>* counts;
  template <class T>
  void operator()(const step_info<T>&) {
    counts->push_back(diffusion::test::allocations.load());
  }
};

template <class Sampler, class Backend>
void check_no_allocation_in_loop(const Sampler& sampler, Backend& be, typename Backend::tensor_type x) {
  auto model = model_for(sampler);
  std::vector<std::size_t> counts;
  counts.reserve(sampler.num_steps() + 1);
  sample(sampler, model, be, std::move(x), philox_noise(1), allocation_recorder{&counts});
  REQUIRE(counts.size() == sampler.num_steps());
  INFO(typeid(Sampler).name() << " on " << typeid(Backend).name());
  CHECK(counts.back() == counts.front());
}

template <class Backend>
void check_loops_allocate_nothing(Backend& be, const typename Backend::tensor_type& x) {
  const auto process = vp_discrete::linear();
  const auto grid = leading_grid(1000, 20);
  // The tensor is copied per run: for xtensor_buffer the copy is a handle to the same buffer.
  check_no_allocation_in_loop(ddpm_ancestral(process, grid, {.correction = x0_correction::clip(1.0)}), be, x);
  check_no_allocation_in_loop(ddim(process, grid, {.eta = 0.5}), be, x);
  check_no_allocation_in_loop(
      predictor_corrector(vp_sde(0.1, 20.0, 25), reverse_diffusion_predictor{}, langevin_corrector{}), be, x);
}

}  // namespace

TEST_CASE("the step loops allocate nothing on xtensor", "[sampler][allocation][xtensor]") {
  SECTION("xt::xtensor") {
    xtensor_backend<float, 2> be;
    check_loops_allocate_nothing(be, start_state<xt::xtensor<float, 2>>(64));
  }
  SECTION("xt::xarray") {
    xarray_backend<double> be;
    check_loops_allocate_nothing(be, start_state<xt::xarray<double>>(64));
  }
  SECTION("xtensor_buffer") {
    std::vector<float> user(128, 0.5f);
    xtensor_buffer_backend<float, 2> be;
    check_loops_allocate_nothing(be, borrow_xtensor(user.data(), std::array<std::size_t, 2>{64, 2}));
  }
}
