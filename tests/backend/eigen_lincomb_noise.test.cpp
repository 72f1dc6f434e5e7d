// SPDX-License-Identifier: MIT
// eigen_backend::lincomb_noise: the stochastic update y = a x + b e + c z with z drawn inside the
// loop. It must equal fill_normal followed by lincomb (the same noise, the same expression), consume
// exactly one draw, and give the same bits on every device and thread count.
#include <catch2/catch.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <diffusion/backend/eigen.hpp>
#include <diffusion/random/philox_noise.hpp>

namespace dm = diffusion;

using Catch::Matchers::Contains;

namespace {

template <class S, int R>
using eigen_tensor = Eigen::Tensor<S, R, Eigen::RowMajor>;

dm::eigen_thread_pool& pool2() {
  static dm::eigen_thread_pool pool{2};
  return pool;
}

template <class S, int R>
eigen_tensor<S, R> filled(const std::array<Eigen::Index, R>& dims, std::uint64_t seed) {
  eigen_tensor<S, R> t(dims);
  dm::philox_noise(seed, 99).fill_normal(std::span<S>(t.data(), static_cast<std::size_t>(t.size())), 1);
  return t;
}

template <class S, int R>
bool identical(const eigen_tensor<S, R>& a, const eigen_tensor<S, R>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(S)) == 0;
}

/// Calls f(backend, name) for the default device and for a pool of two threads that always splits
/// (threshold 0) or splits from the default threshold.
template <class S, int R, class F>
void for_each_backend(F&& f) {
  f(dm::eigen_backend<S, R>{}, "DefaultDevice");
  f(dm::eigen_backend<S, R, Eigen::ThreadPoolDevice>{pool2(), 0}, "pool(2), threshold 0");
  f(dm::eigen_backend<S, R, Eigen::ThreadPoolDevice>{pool2()}, "pool(2), default threshold");
}

// Two draws in a row with the same coefficients: the fused update against fill_normal + lincomb,
// with y a separate tensor, y aliasing x, and y aliasing e.
template <class S, int R>
void check_matches_fill_then_lincomb(const std::array<Eigen::Index, R>& dims, bool per_sample_streams) {
  const S a = S(0.9991), b = S(-0.0123), c = S(0.0477);
  const eigen_tensor<S, R> x = filled<S, R>(dims, 1), e = filled<S, R>(dims, 2);

  // The unfused path on the default device.
  std::vector<eigen_tensor<S, R>> want;
  {
    const dm::eigen_backend<S, R> be;
    dm::philox_noise noise(42, 5, per_sample_streams);
    eigen_tensor<S, R> z(dims), y(dims);
    for (int k = 0; k < 2; ++k) {
      be.fill_normal(z, noise);
      be.lincomb(y, a, x, b, e, c, z);
      want.push_back(y);
    }
  }

  for_each_backend<S, R>([&](const auto& be, const char* name) {
    INFO(name << ", " << x.size() << " elements, per-sample streams " << per_sample_streams);
    for (int alias = 0; alias < 3; ++alias) {
      INFO("y is " << (alias == 0 ? "separate" : alias == 1 ? "x" : "e"));
      dm::philox_noise noise(42, 5, per_sample_streams);
      for (std::size_t k = 0; k < 2; ++k) {
        eigen_tensor<S, R> xk = x, ek = e, y(dims);
        eigen_tensor<S, R>& out = alias == 0 ? y : alias == 1 ? xk : ek;
        be.lincomb_noise(out, a, xk, b, ek, c, noise);
        CHECK(noise.draw_index() == k + 1);  // exactly one draw per update
        REQUIRE(identical(out, want[k]));
      }
    }
  });
}

}  // namespace

// Sizes below, at and above one noise block (256) and the threshold of the pool, some not a
// multiple of 4 (a Philox counter) or 16 (a thread range).
TEMPLATE_TEST_CASE("eigen_backend::lincomb_noise equals fill_normal followed by lincomb, on every device",
                   "[backend][eigen][rng]", float, double) {
  using S = TestType;
  const bool per_sample = GENERATE(false, true);
  for (const auto& dims : std::vector<std::array<Eigen::Index, 2>>{{1, 1}, {1, 7}, {3, 37}, {2, 256}, {5, 300}, {4, 4099}})
    check_matches_fill_then_lincomb<S, 2>(dims, per_sample);
  for (const auto& dims : std::vector<std::array<Eigen::Index, 4>>{{2, 3, 5, 7}, {16, 3, 64, 64}})
    check_matches_fill_then_lincomb<S, 4>(dims, per_sample);
}

TEST_CASE("eigen_backend::lincomb_noise and fill_normal share the draw counter", "[backend][eigen][rng]") {
  // A fill after an update takes the next draw, as after a fill.
  const std::array<Eigen::Index, 2> dims{3, 50};
  const dm::eigen_backend<float, 2> be;
  eigen_tensor<float, 2> x = filled<float, 2>(dims, 1), z1(dims), z2(dims);
  dm::philox_noise fused(8), plain(8);
  be.lincomb_noise(x, 1.0f, x, 0.0f, x, 1.0f, fused);
  be.fill_normal(z1, fused);
  be.fill_normal(z2, plain);
  be.fill_normal(z2, plain);
  CHECK(identical(z1, z2));
}

TEST_CASE("eigen_backend::lincomb_noise rejects shapes other than y's and consumes no draw then",
          "[backend][eigen][rng]") {
  const dm::eigen_backend<float, 2> be;
  eigen_tensor<float, 2> y(4, 8), x(4, 8), bad(8, 4);
  x.setZero();
  dm::philox_noise noise(1);
  CHECK_THROWS_AS(be.lincomb_noise(y, 1.0f, bad, 1.0f, x, 1.0f, noise), std::invalid_argument);
  CHECK_THROWS_WITH(be.lincomb_noise(y, 1.0f, x, 1.0f, bad, 1.0f, noise),
                    Contains("eigen_backend::lincomb_noise") && Contains("e") && Contains("[8, 4]") &&
                        Contains("[4, 8]"));
  CHECK(noise.draw_index() == 0);
}
