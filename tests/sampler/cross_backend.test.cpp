// SPDX-License-Identifier: MIT
// Same seed, same result: the DDPM-family samplers on the reference backend, Eigen's DefaultDevice
// and Eigen's ThreadPoolDevice with 1 and 2 threads (Eigen's tensor_executor test idea).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include <diffusion/diffusion.hpp>

#include "support/mixture_fixture.hpp"

using namespace diffusion;

namespace {

template <class S>
using eigen_tensor = Eigen::Tensor<S, 2, Eigen::RowMajor>;

template <class Tensor>
Tensor start_state(std::size_t n) {
  Tensor x = [&] {
    if constexpr (std::is_same_v<Tensor, reference_tensor<scalar_of<Tensor>>>)
      return Tensor({n, 2});
    else
      return Tensor(static_cast<Eigen::Index>(n), 2);
  }();
  philox_noise(123).fill_normal(elements(x), n);
  return x;
}

template <class Process, class Sampler, class Backend>
std::vector<double> run(const Process& process, const Sampler& sampler, Backend& be, std::size_t n) {
  using T = typename Backend::tensor_type;
  using S = typename Backend::scalar_type;
  gaussian_mixture_model<Process> model(test::golden_mixture(), process);
  const T x = sample(sampler, model, be, start_state<T>(n), philox_noise(7, 0, true));
  std::vector<double> out;
  for (S v : elements(x)) out.push_back(static_cast<double>(v));
  return out;
}

// Largest distance in units in the last place of S.
template <class S>
double max_ulps(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double scale = std::max(std::abs(a[i]), static_cast<double>(std::numeric_limits<S>::min()));
    worst = std::max(worst, std::abs(a[i] - b[i]) / (scale * static_cast<double>(std::numeric_limits<S>::epsilon())));
  }
  return worst;
}

// `largest`: the largest batch; 40001 samples of 2 elements are above the default parallel
// threshold and not a multiple of 4. The threshold-0 backends split every pass at any size.
template <class S, class Sampler, class Process = vp_discrete>
void check_all_backends(const Sampler& sampler, const Process& process = vp_discrete::linear(),
                        std::size_t largest = 40001) {
  const std::size_t n = GENERATE_COPY(values<std::size_t>({3, 1000, largest}));
  INFO("batch " << n);
  reference_backend<S> ref;
  const auto expected = run(process, sampler, ref, n);

  eigen_backend<S, 2> dflt;
  const auto on_default = run(process, sampler, dflt, n);
  // The model is evaluated in double either way; backends differ at most by rounding order.
  CHECK(max_ulps<S>(on_default, expected) <= 4);

  for (int threads : {1, 2}) {
    eigen_thread_pool pool(threads);
    for (std::size_t threshold : {std::size_t{0}, eigen_backend<S, 2, Eigen::ThreadPoolDevice>::default_parallel_threshold}) {
      eigen_backend<S, 2, Eigen::ThreadPoolDevice> be(pool, threshold);
      INFO(threads << " threads, threshold " << threshold);
      CHECK(run(process, sampler, be, n) == on_default);  // bit-identical whatever the thread count
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("samplers give the same result on every backend and thread count", "[sampler][backend]", float,
                   double) {
  const auto process = vp_discrete::linear();
  SECTION("ddpm ancestral") { check_all_backends<TestType>(ddpm_ancestral(process, leading_grid(1000, 10))); }
  SECTION("ddim eta = 1") { check_all_backends<TestType>(ddim(process, trailing_grid(1000, 10), {.eta = 1.0})); }
  SECTION("ddim eta = 0 with clipping") {
    check_all_backends<TestType>(ddim(process, linspace_grid(1000, 10), {.correction = x0_correction::clip(2.0)}));
  }
  SECTION("predictor-corrector with the Langevin corrector (its snr rule reduces over the batch)") {
    // N = 21 steps (above beta_max), for the loop and the corrector's alpha_i. 2000 samples: the
    // threshold-0 backends split the batch's norms; the default threshold's split of the other
    // passes is what the samplers above check at 40001.
    const vp_sde sde(0.1, 20.0, 21);
    check_all_backends<TestType>(predictor_corrector(sde, euler_maruyama_predictor{}, langevin_corrector{.snr = 0.16}),
                                 sde, 2000);
  }
}
