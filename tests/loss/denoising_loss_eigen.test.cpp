// SPDX-License-Identifier: MIT
// The denoising loss on the Eigen backend against the reference backend: the same seed gives the
// same times, noise, inputs, targets, value and gradient on every device and thread count.
// (Agreement is bit-exact without FMA contraction; a few ULP where the compiler contracts
// a*b + c, see tests/backend/eigen.test.cpp.)
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include <diffusion/backend/eigen.hpp>
#include <diffusion/backend/reference.hpp>
#include <diffusion/loss/ddpm_loss.hpp>
#include <diffusion/process/vp_discrete.hpp>
#include <diffusion/random/philox_noise.hpp>

namespace {

namespace dm = diffusion;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using Catch::Matchers::WithinULP;

template <class S>
using eigen4 = Eigen::Tensor<S, 4, Eigen::RowMajor>;

struct result {
  std::vector<double> t, x_t, target, grad;
  double value;
};

// One draw + evaluate of a v-target min-SNR loss on a [B, C, H, W] batch; the output is a fixed
// function of the index, so every backend sees the same output.
template <class Backend, class T>
result run(Backend& be, T x0, T out, T grad) {
  const auto process = dm::vp_discrete::linear();
  const dm::ddpm_loss loss{process, dm::v_param{}, dm::min_snr_weight{5.0}};
  dm::loss_batch batch(x0);
  dm::philox_noise data(5, 0), noise(5, 1, true);
  data.fill_normal(dm::elements(x0), dm::batch_size(x0));
  auto oe = dm::elements(out);
  for (std::size_t i = 0; i < oe.size(); ++i) oe[i] = static_cast<dm::scalar_of<T>>(0.001 * static_cast<double>(i % 97) - 0.05);
  loss.draw(be, x0, noise, batch);
  result r;
  r.value = loss.evaluate(be, batch, out, grad);
  r.t = batch.t;
  for (auto v : dm::elements(batch.x_t)) r.x_t.push_back(static_cast<double>(v));
  for (auto v : dm::elements(batch.target)) r.target.push_back(static_cast<double>(v));
  for (auto v : dm::elements(grad)) r.grad.push_back(static_cast<double>(v));
  return r;
}

template <class S>
void check_same(const result& a, const result& b) {
  REQUIRE(a.t == b.t);
  double grad_scale = 0.0;
  for (double g : a.grad) grad_scale = std::max(grad_scale, std::abs(g));
  for (std::size_t i = 0; i < a.x_t.size(); ++i) {
    REQUIRE_THAT(static_cast<S>(b.x_t[i]), WithinULP(static_cast<S>(a.x_t[i]), 4));
    REQUIRE_THAT(static_cast<S>(b.target[i]), WithinULP(static_cast<S>(a.target[i]), 4));
    REQUIRE_THAT(b.grad[i], WithinAbs(a.grad[i], 1e-5 * grad_scale));
  }
  CHECK_THAT(b.value, WithinRel(a.value, 1e-5));
}

}  // namespace

TEMPLATE_TEST_CASE("denoising_loss: Eigen backend equals the reference backend", "[loss][eigen]", float, double) {
  using S = TestType;
  const std::size_t B = 6, C = 2, H = 8, W = 8;
  dm::reference_backend<S> ref_be;
  using rt = dm::reference_tensor<S>;
  const result ref = run(ref_be, rt({B, C, H, W}), rt({B, C, H, W}), rt({B, C, H, W}));

  SECTION("DefaultDevice") {
    dm::eigen_backend<S, 4> be;
    const result r = run(be, eigen4<S>(B, C, H, W), eigen4<S>(B, C, H, W), eigen4<S>(B, C, H, W));
    check_same<S>(ref, r);
  }
  SECTION("ThreadPoolDevice, 2 threads, always threaded") {
    dm::eigen_thread_pool pool{2};
    dm::eigen_backend<S, 4, Eigen::ThreadPoolDevice> be{pool, 0};
    const result r = run(be, eigen4<S>(B, C, H, W), eigen4<S>(B, C, H, W), eigen4<S>(B, C, H, W));
    check_same<S>(ref, r);
    dm::eigen_backend<S, 4> serial;
    const result s = run(serial, eigen4<S>(B, C, H, W), eigen4<S>(B, C, H, W), eigen4<S>(B, C, H, W));
    // Between Eigen devices: bit-identical.
    CHECK(r.x_t == s.x_t);
    CHECK(r.target == s.target);
    CHECK(r.grad == s.grad);
    CHECK(r.value == s.value);
  }
}
