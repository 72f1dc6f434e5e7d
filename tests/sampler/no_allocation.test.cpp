// SPDX-License-Identifier: MIT
// The step loop allocates nothing: every scratch tensor is made once, before the first step.
// This binary replaces the global operator new to count allocations between observer calls.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <new>
#include <typeinfo>
#include <vector>

#include <diffusion/diffusion.hpp>

#include "support/mixture_fixture.hpp"
#include "support/allocation_counter.hpp"

using namespace diffusion;

namespace {

// Records the allocation counter at every step; the vector is reserved up front so recording
// itself does not allocate.
struct allocation_recorder {
  std::vector<std::size_t>* counts;
  template <class T>
  void operator()(const step_info<T>&) {
    counts->push_back(diffusion::test::allocations.load());
  }
};

template <class Sampler, class Backend, class Noise>
void check_no_allocation_in_loop(const Sampler& sampler, Backend& be, typename Backend::tensor_type x, Noise noise) {
  gaussian_mixture_model<vp_discrete> model(test::golden_mixture(), vp_discrete::linear());
  std::vector<std::size_t> counts;
  counts.reserve(sampler.num_steps() + 1);
  sample(sampler, model, be, std::move(x), noise, allocation_recorder{&counts});
  REQUIRE(counts.size() == sampler.num_steps());
  // Between the observer call after step 0 and the one after the last step nothing was allocated.
  INFO(typeid(Sampler).name());
  CHECK(counts.back() == counts.front());
}

}  // namespace

TEST_CASE("the DDPM and DDIM step loops allocate nothing", "[sampler][allocation]") {
  const auto process = vp_discrete::linear();
  const auto grid = leading_grid(1000, 20);
  SECTION("reference backend") {
    reference_backend<float> be;
    reference_tensor<float> x({64, 2});
    check_no_allocation_in_loop(ddpm_ancestral(process, grid), be, x, philox_noise(1));
    check_no_allocation_in_loop(ddim(process, grid, {.eta = 1.0}), be, x, philox_noise(1));
    check_no_allocation_in_loop(ddim(process, grid, {.correction = x0_correction::dynamic_threshold(0.9, 2.0)}), be, x,
                                philox_noise(1));
  }
  SECTION("Eigen DefaultDevice") {
    eigen_backend<float, 2> be;
    Eigen::Tensor<float, 2, Eigen::RowMajor> x(64, 2);
    x.setZero();
    check_no_allocation_in_loop(ddpm_ancestral(process, grid, {.correction = x0_correction::clip(1.0)}), be, x,
                                philox_noise(1));
    check_no_allocation_in_loop(ddim(process, grid, {.eta = 0.5}), be, x, philox_noise(1));
  }
  SECTION("Eigen ThreadPoolDevice on an eigen_thread_pool, every pass split over two threads") {
    // The fork-join pool hands a pass to its workers through a pointer to the caller's task (no
    // per-pass state on the heap), so a threaded step allocates nothing either.
    eigen_thread_pool pool{2};
    eigen_backend<float, 2, Eigen::ThreadPoolDevice> be{pool, 0};
    Eigen::Tensor<float, 2, Eigen::RowMajor> x(64, 2);
    x.setZero();
    check_no_allocation_in_loop(ddpm_ancestral(process, grid, {.correction = x0_correction::clip(1.0)}), be, x,
                                philox_noise(1));
    check_no_allocation_in_loop(ddim(process, grid, {.eta = 0.5}), be, x, philox_noise(1));
  }
}
