// SPDX-License-Identifier: MIT
// The Eigen backend against the reference backend (the oracle, support/backend_checks.hpp, which
// says what agreement to expect), across devices and thread counts. Between Eigen devices and
// thread counts the results must be bit-identical in every build.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <random>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <diffusion/backend/eigen.hpp>
#include <diffusion/backend/reference.hpp>
#include <diffusion/core/noise.hpp>
#include <diffusion/random/philox_noise.hpp>

#include "support/backend_checks.hpp"

namespace dm = diffusion;
using dm::test::require_identical;
using dm::test::require_matches_reference;

using pool_device = Eigen::ThreadPoolDevice;
using Catch::Matchers::Contains;

// The concept, for both devices, both scalars, ranks 2 and 4 (and 1 and 3 for good measure).
static_assert(dm::tensor_backend<dm::eigen_backend<float, 2>>);
static_assert(dm::tensor_backend<dm::eigen_backend<double, 2>>);
static_assert(dm::tensor_backend<dm::eigen_backend<float, 4>>);
static_assert(dm::tensor_backend<dm::eigen_backend<double, 4>>);
static_assert(dm::tensor_backend<dm::eigen_backend<float, 2, pool_device>>);
static_assert(dm::tensor_backend<dm::eigen_backend<double, 2, pool_device>>);
static_assert(dm::tensor_backend<dm::eigen_backend<float, 4, pool_device>>);
static_assert(dm::tensor_backend<dm::eigen_backend<double, 4, pool_device>>);
static_assert(dm::tensor_backend<dm::eigen_backend<float, 1>>);
static_assert(dm::tensor_backend<dm::eigen_backend<double, 3, pool_device>>);

// Row-major tensors only: in a column-major tensor the batch index would move fastest.
static_assert(dm::tensor<Eigen::Tensor<float, 3, Eigen::RowMajor>>);
static_assert(!dm::tensor<Eigen::Tensor<float, 3>>);
static_assert(!dm::tensor<Eigen::Tensor<float, 0, Eigen::RowMajor>>);

// Construction: Default is default-constructible; a pool backend needs a device or a live pool.
static_assert(std::is_default_constructible_v<dm::eigen_backend<float, 2>>);
static_assert(!std::is_default_constructible_v<dm::eigen_backend<float, 2, pool_device>>);
static_assert(std::is_constructible_v<dm::eigen_backend<float, 2, pool_device>, const pool_device&>);
static_assert(std::is_constructible_v<dm::eigen_backend<float, 2, pool_device>, const pool_device&, std::size_t>);
static_assert(std::is_constructible_v<dm::eigen_backend<float, 2, pool_device>, dm::eigen_thread_pool&>);
static_assert(!std::is_constructible_v<dm::eigen_backend<float, 2, pool_device>, dm::eigen_thread_pool&&>);
static_assert(!std::is_constructible_v<dm::eigen_backend<float, 2>, const pool_device&>);
static_assert(!std::is_copy_constructible_v<dm::eigen_thread_pool>);
static_assert(!std::is_move_constructible_v<dm::eigen_thread_pool>);

// The generic noise path picks the backend's own fill_normal for Philox noise.
static_assert(requires(dm::eigen_backend<float, 2>& be, Eigen::Tensor<float, 2, Eigen::RowMajor>& z,
                       dm::philox_noise& n) { be.fill_normal(z, n); });

namespace {

template <class S, int R>
using eigen_tensor = Eigen::Tensor<S, R, Eigen::RowMajor>;

dm::eigen_thread_pool& pool1() {
  static dm::eigen_thread_pool pool{1};
  return pool;
}
dm::eigen_thread_pool& pool2() {
  static dm::eigen_thread_pool pool{2};
  return pool;
}
// For the tests that check which thread ran what, a pool whose worker spins as long as it lives,
// so that it runs its range of every pass (a sleeping worker's range may be run by the caller).
constexpr auto spin_throughout = std::chrono::microseconds(std::chrono::minutes(10));

/// Calls f(backend, name) for every device configuration under test: the default device, and
/// pools of 1 and 2 threads, forced to use the pool (threshold 0) or with the default threshold.
template <class S, int R, class F>
void for_each_backend(F&& f) {
  f(dm::eigen_backend<S, R>{}, "DefaultDevice");
  f(dm::eigen_backend<S, R, pool_device>{pool1(), 0}, "pool(1), threshold 0");
  f(dm::eigen_backend<S, R, pool_device>{pool2(), 0}, "pool(2), threshold 0");
  f(dm::eigen_backend<S, R, pool_device>{pool2()}, "pool(2), default threshold");
  f(dm::eigen_backend<S, R, pool_device>{pool2().device(), 1000}, "pool(2) device, threshold 1000");
}

/// Uniform values in [-4, 4) (dm::test::fill_uniform).
template <class S, int R>
eigen_tensor<S, R> random_tensor(const std::array<Eigen::Index, R>& dims, std::uint32_t seed) {
  eigen_tensor<S, R> t(dims);
  dm::test::fill_uniform(dm::elements(t), seed);
  return t;
}

template <class S, int R>
dm::reference_tensor<S> to_reference(const eigen_tensor<S, R>& t) {
  std::vector<std::size_t> shape;
  for (int i = 0; i < R; ++i) shape.push_back(static_cast<std::size_t>(t.dimension(i)));
  return dm::reference_tensor<S>(shape, std::vector<S>(t.data(), t.data() + t.size()));
}

template <class S, int R>
std::span<const S> view(const eigen_tensor<S, R>& t) {
  return dm::elements(t);
}
template <class S>
std::span<const S> view(const dm::reference_tensor<S>& t) {
  return t.data;
}

// Shapes whose element counts are not multiples of 4 (packet size), 16 or the thread count, plus
// some that are, small ones and ones above the default threshold (65536) so that the default
// threshold configuration uses the pool too.
std::vector<std::array<Eigen::Index, 2>> shapes2() {
  return {{1, 1}, {3, 7}, {5, 13}, {4, 16}, {2, 4096}, {7, 1001}, {3, 30011}, {9, 8192}};
}
std::vector<std::array<Eigen::Index, 4>> shapes4() {
  return {{1, 1, 1, 1}, {2, 3, 5, 7}, {3, 3, 33, 35}, {2, 3, 64, 64}, {3, 3, 101, 103}};
}

template <class S, int R>
void check_operations_match_reference(const std::array<Eigen::Index, R>& dims) {
  const auto x1 = random_tensor<S, R>(dims, 1);
  const auto x2 = random_tensor<S, R>(dims, 2);
  const auto x3 = random_tensor<S, R>(dims, 3);
  const auto x4 = random_tensor<S, R>(dims, 4);
  const dm::test::reference_oracle<S> o(to_reference(x1), to_reference(x2), to_reference(x3), to_reference(x4));

  // The default device's results, which every other configuration must reproduce bit for bit.
  eigen_tensor<S, R> base1, base2, base3, base4, base_ps, base_c;

  const std::string shape = dm::tensor_traits<eigen_tensor<S, R>>::shape_string(x1);
  for_each_backend<S, R>([&](const auto& be, const char* name) {
    INFO("backend " << name << ", shape " << shape);
    auto y = dm::make_like(x1);
    int op = 0;
    auto check = [&](const eigen_tensor<S, R>& got, const dm::reference_tensor<S>& want,
                     const dm::reference_tensor<S>& scale, eigen_tensor<S, R>& base) {
      INFO("operation " << ++op);
      require_matches_reference<S>(view(got), view(want), view(scale));
      if (base.size() == 0)
        base = got;
      else
        require_identical<S>(view(got), view(base));
    };
    be.lincomb(y, o.a1, x1);
    check(y, o.want1, o.scale1, base1);
    be.lincomb(y, o.a1, x1, o.a2, x2);
    check(y, o.want2, o.scale2, base2);
    be.lincomb(y, o.a1, x1, o.a2, x2, o.a3, x3);
    check(y, o.want3, o.scale3, base3);
    be.lincomb(y, o.a1, x1, o.a2, x2, o.a3, x3, o.a4, x4);
    check(y, o.want4, o.scale4, base4);
    be.lincomb_per_sample(y, o.pa, x1, o.pb, x2);
    check(y, o.want_ps, o.scale_ps, base_ps);
    be.clamp(y, x1, o.lo, o.hi);
    check(y, o.want_c, o.scale_c, base_c);

    // The output may be any input.
    auto z = x1;
    be.lincomb(z, o.a1, z, o.a2, x2, o.a3, x3, o.a4, x4);
    check(z, o.want4, o.scale4, base4);
    z = x2;
    be.lincomb(z, o.a1, x1, o.a2, z, o.a3, x3, o.a4, x4);
    check(z, o.want4, o.scale4, base4);
    z = x3;
    be.lincomb(z, o.a1, x1, o.a2, x2, o.a3, z);
    check(z, o.want3, o.scale3, base3);
    z = x4;
    be.lincomb(z, o.a1, x1, o.a2, x2, o.a3, x3, o.a4, z);
    check(z, o.want4, o.scale4, base4);
    z = x2;
    be.lincomb(z, o.a1, x1);
    check(z, o.want1, o.scale1, base1);
    z = x1;
    be.lincomb(z, o.a1, z);
    check(z, o.want1, o.scale1, base1);
    z = x1;
    be.lincomb_per_sample(z, o.pa, z, o.pb, x2);
    check(z, o.want_ps, o.scale_ps, base_ps);
    z = x2;
    be.lincomb_per_sample(z, o.pa, x1, o.pb, z);
    check(z, o.want_ps, o.scale_ps, base_ps);
    z = x1;
    be.clamp(z, z, o.lo, o.hi);
    check(z, o.want_c, o.scale_c, base_c);
  });
}

}  // namespace

TEST_CASE("eigen tensor_traits: row-major, dimension 0 is the batch", "[backend][eigen]") {
  using T = eigen_tensor<double, 3>;
  dm::test::check_batch_major_traits<T>([](Eigen::Index a, Eigen::Index b, Eigen::Index c) { return T(a, b, c); });
  const T y = dm::make_like(T(2, 3, 4));
  CHECK(y.dimension(0) == 2);
  CHECK(y.dimension(1) == 3);
  CHECK(y.dimension(2) == 4);
}

TEMPLATE_TEST_CASE("eigen_backend equals the reference backend, rank 2", "[backend][eigen]", float, double) {
  for (const auto& dims : shapes2()) check_operations_match_reference<TestType, 2>(dims);
}

TEMPLATE_TEST_CASE("eigen_backend equals the reference backend, rank 4", "[backend][eigen]", float, double) {
  for (const auto& dims : shapes4()) check_operations_match_reference<TestType, 4>(dims);
}

TEST_CASE("eigen_backend: lincomb sums left to right, as the reference does", "[backend][eigen]") {
  eigen_tensor<float, 2> ones(3, 5);
  ones.setConstant(1.0f);
  for_each_backend<float, 2>([&](const auto& be, const char* name) {
    INFO(name);
    dm::test::check_sums_left_to_right(be, ones);
  });
}

TEST_CASE("eigen_backend: coefficients given in double are converted to the scalar type", "[backend][eigen]") {
  const dm::eigen_backend<float, 2> be;
  eigen_tensor<float, 2> x(2, 3), y(2, 3);
  x.setConstant(2.0f);
  be.lincomb(y, 0.5, x, 0.25, x);
  CHECK(y(1, 2) == 1.5f);
}

TEST_CASE("eigen_backend: clamp keeps NaN and maps infinities to the bounds", "[backend][eigen]") {
  for_each_backend<float, 2>([&](const auto& be, const char* name) {
    INFO(name);
    eigen_tensor<float, 2> x(1, 19);
    x.setConstant(0.5f);
    dm::test::check_clamp_nan_and_infinities(be, x);
  });
}

TEST_CASE("eigen_backend: shape mismatches throw instead of writing out of bounds", "[backend][eigen]") {
  const dm::eigen_backend<float, 2> be;
  eigen_tensor<float, 2> y(2, 3), x(2, 3), bad(3, 2);
  y.setZero();
  x.setZero();
  bad.setZero();
  const std::vector<float> two{1, 2}, three{1, 2, 3};

  CHECK_THROWS_AS(be.lincomb(y, 1.0f, bad), std::invalid_argument);
  CHECK_THROWS_WITH(be.lincomb(y, 1.0f, x, 1.0f, x, 1.0f, bad),
                    Catch::Matchers::Contains("lincomb") && Catch::Matchers::Contains("x3") &&
                        Catch::Matchers::Contains("[3, 2]") && Catch::Matchers::Contains("[2, 3]"));
  CHECK_THROWS_WITH(be.lincomb(bad, 1.0f, x, 1.0f, x), Catch::Matchers::Contains("x1"));
  CHECK_THROWS_WITH(be.lincomb_per_sample(y, two, x, two, bad), Catch::Matchers::Contains("x2"));
  CHECK_THROWS_WITH(be.lincomb_per_sample(y, three, x, two, x),
                    Catch::Matchers::Contains("a.size() = 3") && Catch::Matchers::Contains("batch size, 2"));
  CHECK_THROWS_WITH(be.lincomb_per_sample(y, two, x, three, x), Catch::Matchers::Contains("b.size() = 3"));
  CHECK_THROWS_WITH(be.clamp(y, bad, 0.0f, 1.0f), Catch::Matchers::Contains("clamp"));
  CHECK_NOTHROW(be.lincomb_per_sample(y, two, x, two, x));

  const dm::eigen_backend<float, 2, pool_device> pb{pool2(), 0};
  CHECK_THROWS_AS(pb.lincomb(y, 1.0f, x, 1.0f, bad), std::invalid_argument);
}

TEST_CASE("eigen_backend: empty tensors", "[backend][eigen]") {
  for_each_backend<double, 2>([&](const auto& be, const char* name) {
    INFO(name);
    eigen_tensor<double, 2> y(0, 3), x(0, 3);
    be.lincomb(y, 1.0, x, 2.0, x);
    be.lincomb_per_sample(y, {}, x, {}, x);
    be.clamp(y, x, 0.0, 1.0);
    dm::philox_noise noise(7);
    be.fill_normal(y, noise);
    CHECK(noise.draw_index() == 1);
  });
}

TEMPLATE_TEST_CASE("eigen_backend::mean_sample_norm is core's mean_sample_norm bit for bit, on every device",
                   "[backend][eigen]", float, double) {
  using S = TestType;
  // Batches of 0 and 1 sample, an odd one, one over the 256 samples of a pass, and sizes below and
  // above the default threshold; samples not a multiple of 8 long.
  for (const auto& dims : std::vector<std::array<Eigen::Index, 2>>{
           {0, 5}, {1, 37}, {3, 1001}, {16, 12288}, {300, 13}, {300, 999}}) {
    eigen_tensor<S, 2> x(dims);
    dm::philox_noise(11, 2).fill_normal(std::span<S>(x.data(), static_cast<std::size_t>(x.size())), 1);
    const double want = dm::mean_sample_norm(x);
    for_each_backend<S, 2>([&](const auto& be, const char* name) {
      INFO(name << ", shape " << dims[0] << "x" << dims[1]);
      const double got = dm::mean_sample_norm(be, x);  // the backend's, through the core dispatch
      CHECK(std::bit_cast<std::uint64_t>(got) == std::bit_cast<std::uint64_t>(want));
      CHECK(be.mean_sample_norm(x) == got);
    });
  }
}

TEST_CASE("eigen_backend::mean_sample_norm on the pool sums every sample exactly once", "[backend][eigen]") {
  // A worker's samples change the result's bits if it sums them differently; here each sample is
  // a constant, so the mean is exact and shows every sample was summed exactly once.
  eigen_tensor<float, 2> x(16, 4096);
  for (Eigen::Index b = 0; b < 16; ++b)
    for (Eigen::Index j = 0; j < 4096; ++j) x(b, j) = static_cast<float>(b + 1) / 64.0f;  // |x_b| = b + 1
  const dm::eigen_backend<float, 2, pool_device> be{pool2(), 0};
  CHECK(be.mean_sample_norm(x) == 8.5);
  // With 64K elements it splits by default (the threshold counts elements), below it does not: both
  // give the same value.
  const dm::eigen_backend<float, 2, pool_device> by_default{pool2()};
  CHECK(by_default.mean_sample_norm(x) == 8.5);
}

TEST_CASE("eigen_thread_pool and the backend's accessors", "[backend][eigen]") {
  CHECK_THROWS_WITH(dm::eigen_thread_pool(0), Catch::Matchers::Contains("threads = 0"));
  CHECK(pool2().num_threads() == 2);
  const dm::eigen_backend<float, 4, pool_device> be{pool2()};
  CHECK(be.parallel_threshold() == dm::eigen_backend<float, 4, pool_device>::default_parallel_threshold);
  CHECK(be.device().numThreads() == 2);
  const dm::eigen_backend<float, 4, pool_device> forced{pool1().device(), 0};
  CHECK(forced.parallel_threshold() == 0);
  CHECK(forced.device().numThreads() == 1);
}

namespace {

/// A range source whose values are a simple function of the index, recording the ranges it was
/// asked for and the threads that asked: it shows how fill_normal splits the work.
struct recording_source {
  mutable std::mutex mutex;
  mutable std::vector<std::pair<std::size_t, std::size_t>> ranges;
  mutable std::vector<std::pair<std::size_t, std::thread::id>> range_threads;  // (begin, thread)
  mutable std::set<std::thread::id> threads;
  std::uint64_t draw = 0;
  std::size_t throw_from = std::numeric_limits<std::size_t>::max();

  std::uint64_t draw_index() const { return draw; }
  std::uint64_t next_draw() { return draw++; }
  template <class S>
  void fill_normal_range(std::span<S> out, std::size_t batch, std::uint64_t k, std::size_t begin,
                         std::size_t end) const {
    {
      const std::lock_guard lock(mutex);
      ranges.emplace_back(begin, end);
      range_threads.emplace_back(begin, std::this_thread::get_id());
      threads.insert(std::this_thread::get_id());
    }
    if (begin >= throw_from) throw std::runtime_error("range source failed");
    for (std::size_t j = begin; j < end; ++j) out[j] = static_cast<S>(j % 1000) + static_cast<S>(k + batch);
  }
  // lincomb_noise asks for its noise block by block; a block's thread is its range's.
  template <class S>
  void write_normal_range(std::size_t, std::size_t batch, std::uint64_t k, std::size_t first, std::span<S> out) const {
    {
      const std::lock_guard lock(mutex);
      threads.insert(std::this_thread::get_id());
    }
    for (std::size_t j = 0; j < out.size(); ++j) out[j] = static_cast<S>((first + j) % 1000) + static_cast<S>(k + batch);
  }
};

}  // namespace

TEST_CASE("eigen_backend: a long pass is cut into chunks that the threads take in turn", "[backend][eigen][threads]") {
  // fill_normal weighs 4 per element: from 65536 / 4 * 32 = 524288 elements a pass is long at the
  // default threshold, and is cut into up to 16 chunks (two threads) of at least 65536 / 4.
  const std::size_t n = GENERATE(as<std::size_t>{}, 524288, 524288 + 4099, 1u << 21);
  eigen_tensor<float, 2> z(1, static_cast<Eigen::Index>(n));

  // A pool whose worker spins, and one whose worker is asleep when the pass begins (it then joins
  // late, or not at all, and the caller takes the chunks it has not reached).
  const bool asleep = GENERATE(false, true);
  INFO("n = " << n << (asleep ? ", worker asleep" : ", worker spinning"));
  dm::eigen_thread_pool pool{2, asleep ? std::chrono::microseconds(0) : spin_throughout};
  const dm::eigen_backend<float, 2, pool_device> be{pool};
  for (int pass = 0; pass < 3; ++pass) {
    if (asleep) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    recording_source src;
    be.fill_normal(z, src);
    std::sort(src.ranges.begin(), src.ranges.end());
    REQUIRE(src.ranges.size() == 16);
    CHECK(src.ranges.front().first == 0);
    CHECK(src.ranges.back().second == n);
    for (std::size_t r = 0; r + 1 < src.ranges.size(); ++r) {
      CHECK(src.ranges[r].second % 16 == 0);
      CHECK(src.ranges[r + 1].first == src.ranges[r].second);
    }
    // The caller takes chunks from the front and the worker from the back, so the caller's are a
    // prefix and the worker's the rest (either may be empty: a woken worker that the kernel puts
    // on the caller's core can take them all before the caller runs again).
    CHECK(src.threads.size() <= 2);
    std::sort(src.range_threads.begin(), src.range_threads.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    const auto caller = std::this_thread::get_id();
    const auto first_worker = std::find_if(src.range_threads.begin(), src.range_threads.end(),
                                           [&](const auto& r) { return r.second != caller; });
    CHECK(std::none_of(first_worker, src.range_threads.end(), [&](const auto& r) { return r.second == caller; }));
    bool all = true;
    for (std::size_t j = 0; j < n; ++j) all = all && z.data()[j] == static_cast<float>(j % 1000) + 1.0f;
    CHECK(all);
  }
}

TEST_CASE("eigen_backend::fill_normal splits the elements into one range per pool thread", "[backend][eigen]") {
  const std::size_t n = GENERATE(as<std::size_t>{}, 17, 1001, 4099, 100003);
  eigen_tensor<float, 2> z(1, static_cast<Eigen::Index>(n));

  SECTION("default device: one range on the calling thread") {
    recording_source src;
    dm::eigen_backend<float, 2>{}.fill_normal(z, src);
    CHECK(src.draw == 1);
    REQUIRE(src.ranges.size() == 1);
    CHECK(src.ranges[0] == std::pair<std::size_t, std::size_t>{0, n});
    CHECK(src.threads == std::set<std::thread::id>{std::this_thread::get_id()});
  }
  SECTION("pool(2), threshold 0: ranges of whole 16-element granules that tile the tensor") {
    // Every pass is long at threshold 0; one with at least 3 x 65536 elements' worth of work
    // (4 per element for fill_normal) is cut into one chunk per 65536, up to 8 per thread.
    const std::size_t chunks = 4 * n >= 3 * 65536 ? std::min<std::size_t>(16, 4 * n / 65536) : 2;
    recording_source src;
    dm::eigen_thread_pool spinning{2, spin_throughout};
    dm::eigen_backend<float, 2, pool_device>{spinning, 0}.fill_normal(z, src);
    CHECK(src.draw == 1);
    std::sort(src.ranges.begin(), src.ranges.end());
    REQUIRE(src.ranges.size() == chunks);
    CHECK(src.ranges.front().first == 0);
    CHECK(src.ranges.back().second == n);
    for (std::size_t r = 0; r + 1 < chunks; ++r) {
      CHECK(src.ranges[r].second % 16 == 0);
      CHECK(src.ranges[r + 1].first == src.ranges[r].second);
    }
    // Two ranges: the caller runs the first and the spinning worker the second. Chunks: the
    // worker takes some from the back if it comes in time (the next test case).
    if (chunks == 2) {
      CHECK(src.threads.size() == 2);
      CHECK(src.threads.count(std::this_thread::get_id()) == 1);
    }
    CHECK(src.threads.size() <= 2);
    for (std::size_t j = 0; j < n; j += 97) CHECK(z.data()[j] == static_cast<float>(j % 1000) + 1.0f);
  }
  SECTION("pool(2), default threshold: fill_normal splits from 65536 / 4 = 16384 elements") {
    using backend = dm::eigen_backend<float, 2, pool_device>;
    STATIC_REQUIRE(backend::default_parallel_threshold / backend::fill_pass_weight == 16384);
    recording_source src;
    backend{pool2()}.fill_normal(z, src);
    CHECK(src.ranges.size() == (n >= 16384 ? 2u : 1u));
  }
  SECTION("pool(2), default threshold: lincomb_noise splits from 65536 / 16 = 4096 elements") {
    STATIC_REQUIRE(dm::eigen_backend<float, 2, pool_device>::default_parallel_threshold /
                       dm::eigen_backend<float, 2, pool_device>::noise_pass_weight ==
                   4096);
    recording_source src;
    eigen_tensor<float, 2> y(1, static_cast<Eigen::Index>(n));
    y.setZero();
    dm::eigen_thread_pool spinning{2, spin_throughout};
    dm::eigen_backend<float, 2, pool_device>{spinning}.lincomb_noise(y, 1.0f, y, 0.0f, y, 1.0f, src);
    CHECK(src.threads.size() == (n >= 4096 ? 2u : 1u));
    for (std::size_t j = 0; j < n; j += 97) CHECK(y.data()[j] == static_cast<float>(j % 1000) + 1.0f);
  }
  SECTION("pool(2), a threshold of its own: fill_normal splits from threshold / 4 elements") {
    recording_source src;
    dm::eigen_backend<float, 2, pool_device>{pool2(), 4 * 1001}.fill_normal(z, src);
    // From 32 x 1001 elements the pass is long, and cut into chunks if it has 3 x 65536 of work.
    const std::size_t long_chunks = std::min<std::size_t>(16, 4 * n / 65536);
    CHECK(src.ranges.size() == (n < 1001 ? 1u : n / 32 >= 1001 && long_chunks > 2 ? long_chunks : 2u));
  }
  SECTION("pool(1): one range") {
    recording_source src;
    dm::eigen_backend<float, 2, pool_device>{pool1(), 0}.fill_normal(z, src);
    CHECK(src.ranges.size() == 1);
  }
}

TEST_CASE("eigen_backend::fill_normal rethrows a failure of a worker's range", "[backend][eigen]") {
  eigen_tensor<float, 2> z(4, 1000);
  recording_source src;
  src.throw_from = 1;  // the calling thread's range starts at 0 and succeeds; the worker's throws
  const dm::eigen_backend<float, 2, pool_device> be{pool2(), 0};
  CHECK_THROWS_WITH(be.fill_normal(z, src), "range source failed");
  CHECK(src.ranges.size() == 2);
  src.throw_from = 0;  // both fail: one exception comes back, after both ranges are done
  CHECK_THROWS_WITH(be.fill_normal(z, src), "range source failed");
  CHECK(src.ranges.size() == 4);
  CHECK(src.draw == 0);  // a draw the source failed to serve is not consumed
  // The pool still works afterwards.
  src.throw_from = std::numeric_limits<std::size_t>::max();
  CHECK_NOTHROW(be.fill_normal(z, src));
  CHECK(src.draw == 1);

  // A long pass, in chunks: a chunk that throws ends its thread's share, the other thread takes
  // the rest, and the exception comes back once the pass is over.
  eigen_tensor<float, 2> big(1, 1 << 20);
  const dm::eigen_backend<float, 2, pool_device> long_be{pool2()};
  recording_source chunked;
  chunked.throw_from = (1 << 19) + 1;  // every chunk from the middle on
  CHECK_THROWS_WITH(long_be.fill_normal(big, chunked), "range source failed");
  CHECK(chunked.draw == 0);
  chunked.throw_from = std::numeric_limits<std::size_t>::max();
  CHECK_NOTHROW(long_be.fill_normal(big, chunked));
  CHECK(chunked.draw == 1);
}

TEST_CASE("eigen_backend: a draw the noise source refuses is not consumed, on every device", "[backend][eigen][rng]") {
  for_each_backend<float, 2>([&](const auto& be, const char* name) {
    INFO(name);
    // Per-sample streams from 2^32 - 1: a batch of 2 needs stream 2^32, which philox_noise refuses.
    dm::philox_noise noise(1, 0xffffffffu, true);
    eigen_tensor<float, 2> y(2, 5000), x(2, 5000);
    x.setZero();
    CHECK_THROWS_WITH(be.fill_normal(y, noise), Contains("stream + batch - 1 = 4294967296"));
    CHECK_THROWS_WITH(be.lincomb_noise(y, 1.0f, x, 1.0f, x, 1.0f, noise), Contains("stream + batch - 1"));
    CHECK(noise.draw_index() == 0);
    // An empty tensor draws nothing, so it is not refused, and the draw is taken as on the
    // reference path (diffusion::draw_normal with a source that fills by itself).
    eigen_tensor<float, 2> empty(4, 0);
    CHECK_NOTHROW(be.fill_normal(empty, noise));
    CHECK_NOTHROW(be.lincomb_noise(empty, 1.0f, empty, 1.0f, empty, 1.0f, noise));
    CHECK(noise.draw_index() == 2);
    dm::philox_noise generic(1, 0xffffffffu, true);
    CHECK_NOTHROW(generic.fill_normal(dm::elements(empty), 4));
    CHECK(generic.draw_index() == 1);
  });
}

namespace {

template <class S, int R>
void check_fill_normal_matches_philox(const std::array<Eigen::Index, R>& dims, bool per_sample_streams) {
  const std::uint64_t seed = 0x5EEDF00Dull;
  const std::uint32_t stream = 3;

  // The reference path: the source fills a plain buffer. Three draws, so the draw index matters.
  const eigen_tensor<S, R> shape_only(dims);
  const std::size_t n = static_cast<std::size_t>(shape_only.size());
  const std::size_t batch = static_cast<std::size_t>(dims[0]);
  std::vector<std::vector<S>> want(3, std::vector<S>(n));
  {
    dm::philox_noise noise(seed, stream, per_sample_streams);
    for (auto& w : want) noise.fill_normal(std::span<S>(w), batch);
  }

  const std::string shape = dm::tensor_traits<eigen_tensor<S, R>>::shape_string(shape_only);
  for_each_backend<S, R>([&](const auto& be, const char* name) {
    INFO("backend " << name << ", shape " << shape << ", per-sample streams " << per_sample_streams);
    dm::philox_noise noise(seed, stream, per_sample_streams);
    eigen_tensor<S, R> z(dims);
    for (std::size_t k = 0; k < 3; ++k) {
      if (k == 1)
        dm::draw_normal(be, noise, z);  // the generic path must pick the backend's fill_normal
      else
        be.fill_normal(z, noise);
      CHECK(noise.draw_index() == k + 1);  // exactly one draw per fill
      require_identical<S>(view(z), std::span<const S>(want[k]));
    }
  });
}

}  // namespace

TEMPLATE_TEST_CASE("eigen_backend::fill_normal is bit-identical to philox_noise::fill_normal", "[backend][eigen][rng]",
                   float, double) {
  using S = TestType;
  const bool per_sample = GENERATE(false, true);
  for (const auto& dims : shapes2()) check_fill_normal_matches_philox<S, 2>(dims, per_sample);
  for (const auto& dims : shapes4()) check_fill_normal_matches_philox<S, 4>(dims, per_sample);
}

TEST_CASE("eigen clamp rejects lo > hi", "[backend][clamp][errors]") {
  diffusion::eigen_backend<float, 2> be;
  Eigen::Tensor<float, 2, Eigen::RowMajor> x(2, 2);
  x.setZero();
  CHECK_THROWS_WITH(be.clamp(x, x, 1.f, -1.f), Catch::Matchers::Contains("lo = 1") && Catch::Matchers::Contains("hi = -1"));
  CHECK_THROWS_WITH(be.clamp(x, x, -1.f, std::nanf("")), Contains("hi = nan") && Contains("lo = -1"));
  CHECK_NOTHROW(be.clamp(x, x, 0.f, 0.f));
}
