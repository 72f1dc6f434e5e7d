// SPDX-License-Identifier: MIT
// The xtensor backend against the reference backend (the oracle), over xt::xtensor, xt::xarray and
// xtensor_buffer (a borrowed or owned buffer). The agreement to expect is support/backend_checks.hpp's,
// with xsimd (XTENSOR_USE_XSIMD) or without.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <new>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <diffusion/xtensor.hpp>
#include <xtensor/xview.hpp>
#include "support/allocation_counter.hpp"
#include "support/backend_checks.hpp"

// The public entry of the xtensor backend must not pull in Eigen (DESIGN.md, Layers).
#if defined(EIGEN_WORLD_VERSION)
#error "diffusion/xtensor.hpp includes Eigen"
#endif

namespace dm = diffusion;
using dm::test::require_identical;
using dm::test::require_matches_reference;

// ---------------------------------------------------------------------------------------------
// The concept, for every tensor kind, both scalars and several ranks.
static_assert(dm::tensor_backend<dm::xtensor_backend<float, 1>>);
static_assert(dm::tensor_backend<dm::xtensor_backend<float, 2>>);
static_assert(dm::tensor_backend<dm::xtensor_backend<double, 2>>);
static_assert(dm::tensor_backend<dm::xtensor_backend<float, 4>>);
static_assert(dm::tensor_backend<dm::xtensor_backend<double, 4>>);
static_assert(dm::tensor_backend<dm::xarray_backend<float>>);
static_assert(dm::tensor_backend<dm::xarray_backend<double>>);
static_assert(dm::tensor_backend<dm::xtensor_buffer_backend<float, 2>>);
static_assert(dm::tensor_backend<dm::xtensor_buffer_backend<double, 3>>);
static_assert(std::is_same_v<dm::xtensor_backend<float, 2>::tensor_type, xt::xtensor<float, 2>>);
static_assert(std::is_same_v<dm::xarray_backend<double>::tensor_type, xt::xarray<double>>);
static_assert(std::is_same_v<dm::xtensor_buffer_backend<float, 2>::scalar_type, float>);

// Row-major only: in a column-major tensor the batch index would move fastest.
static_assert(dm::tensor<xt::xtensor<float, 3>>);
static_assert(!dm::tensor<xt::xtensor<float, 3, xt::layout_type::column_major>>);
static_assert(!dm::tensor<xt::xtensor<float, 0>>);
static_assert(!dm::tensor<xt::xarray<float, xt::layout_type::column_major>>);
// A no-ownership adaptor cannot make a tensor like itself (it owns nothing): it is borrowed into
// an xtensor_buffer instead (borrow_xtensor), which can.
static_assert(!dm::tensor<decltype(xt::adapt(std::declval<float*>(), std::size_t{}, xt::no_ownership(),
                                             std::declval<std::array<std::size_t, 2>>()))>);
static_assert(std::is_same_v<decltype(dm::borrow_xtensor(std::declval<float*>(), std::array<std::size_t, 2>{})),
                             dm::xtensor_buffer<float, 2>>);
// xtensor_buffer is what xt::adapt_smart_ptr builds over a pointer and a shared_ptr<void> owner.
static_assert(std::is_same_v<decltype(xt::adapt_smart_ptr(std::declval<float*>(), {3, 2}, std::shared_ptr<void>{})),
                             dm::xtensor_buffer<float, 2>>);

// The generic noise path picks the backend's own fill_normal for Philox noise; a source without the
// range interface is left to draw_normal's generic path.
template <class B, class T, class N>
concept fills_normal = requires(B& be, T& z, N& n) { be.fill_normal(z, n); };
static_assert(fills_normal<dm::xtensor_backend<float, 2>, xt::xtensor<float, 2>, dm::philox_noise>);
static_assert(fills_normal<dm::xarray_backend<float>, xt::xarray<float>, dm::philox_noise>);
static_assert(fills_normal<dm::xtensor_buffer_backend<double, 2>, dm::xtensor_buffer<double, 2>, dm::philox_noise>);
static_assert(!fills_normal<dm::xtensor_backend<float, 2>, xt::xtensor<float, 2>, dm::replay_noise>);

namespace {

using shape_t = std::vector<std::size_t>;

template <std::size_t N>
std::array<std::size_t, N> to_array(const shape_t& shape) {
  REQUIRE(shape.size() == N);
  std::array<std::size_t, N> a{};
  std::copy(shape.begin(), shape.end(), a.begin());
  return a;
}

/// One kind of tensor under test: its backend and how to make a tensor of a given shape.
template <class S, std::size_t R>
struct xtensor_kind {
  using backend = dm::xtensor_backend<S, R>;
  using tensor = xt::xtensor<S, R>;
  static constexpr const char* name = "xt::xtensor";
  static tensor make(const shape_t& shape) { return tensor(to_array<R>(shape)); }
};

template <class S>
struct xarray_kind {
  using backend = dm::xarray_backend<S>;
  using tensor = xt::xarray<S>;
  static constexpr const char* name = "xt::xarray";
  static tensor make(const shape_t& shape) { return tensor::from_shape(shape); }
};

template <class S, std::size_t R>
struct buffer_kind {
  using backend = dm::xtensor_buffer_backend<S, R>;
  using tensor = dm::xtensor_buffer<S, R>;
  static constexpr const char* name = "xtensor_buffer";
  // make_like reads only the shape of the (empty) borrowed buffer, and allocates an owned one.
  static tensor make(const shape_t& shape) {
    return dm::make_like(dm::borrow_xtensor(static_cast<S*>(nullptr), to_array<R>(shape)));
  }
};

template <class Kind>
std::vector<shape_t> shapes() {
  // Element counts that are not multiples of the SIMD width, and ones that are.
  const std::vector<shape_t> rank2{{1, 1}, {3, 7}, {5, 13}, {4, 16}, {2, 4096}, {7, 1001}, {3, 30011}};
  const std::vector<shape_t> rank4{{1, 1, 1, 1}, {2, 3, 5, 7}, {3, 3, 33, 35}, {2, 3, 64, 64}};
  if constexpr (std::is_same_v<Kind, xarray_kind<typename Kind::tensor::value_type>>) {
    // Every rank, 0 included; above 4, xtensor's own shape vectors would go to the heap.
    std::vector<shape_t> all{{}, {1}, {17}, {2, 3, 5}, {2, 3, 4, 5, 6}, {2, 1, 3, 2, 2, 5}};
    all.insert(all.end(), rank2.begin(), rank2.end());
    all.insert(all.end(), rank4.begin(), rank4.end());
    return all;
  } else if constexpr (std::tuple_size_v<typename Kind::tensor::shape_type> == 2) {
    return rank2;
  } else {
    return rank4;
  }
}

/// Uniform values in [-4, 4) (dm::test::fill_uniform).
template <class Kind>
typename Kind::tensor random_tensor(const shape_t& shape, std::uint32_t seed) {
  auto t = Kind::make(shape);
  dm::test::fill_uniform(dm::elements(t), seed);
  return t;
}

template <class T>
auto to_reference(const T& t, const shape_t& shape) {
  using S = typename T::value_type;
  const auto e = dm::elements(t);
  return dm::reference_tensor<S>(shape, std::vector<S>(e.begin(), e.end()));
}

template <class T>
auto values_of(const T& t) {
  return dm::elements(t);
}
template <class S>
std::span<const S> values_of(const dm::reference_tensor<S>& t) {
  return t.data;
}

template <class Kind>
void check_operations_match_reference(const shape_t& shape) {
  using S = typename Kind::tensor::value_type;
  using T = typename Kind::tensor;
  const T x1 = random_tensor<Kind>(shape, 1), x2 = random_tensor<Kind>(shape, 2);
  const T x3 = random_tensor<Kind>(shape, 3), x4 = random_tensor<Kind>(shape, 4);
  const dm::test::reference_oracle<S> o(to_reference(x1, shape), to_reference(x2, shape), to_reference(x3, shape),
                                        to_reference(x4, shape));

  INFO(Kind::name << " of shape " << dm::tensor_traits<T>::shape_string(x1));
  const typename Kind::backend be;
  T y = dm::make_like(x1);
  int op = 0;
  std::size_t allocations = 0;
  // Runs one operation, counting what it allocates, and compares its output with the reference.
  auto check = [&](auto&& operation, const T& got, const dm::reference_tensor<S>& want,
                   const dm::reference_tensor<S>& scale) {
    INFO("operation " << ++op);
    const std::size_t before = diffusion::test::allocations.load();
    operation();
    allocations += diffusion::test::allocations.load() - before;
    require_matches_reference<S>(values_of(got), values_of(want), values_of(scale));
  };
  check([&] { be.lincomb(y, o.a1, x1); }, y, o.want1, o.scale1);
  check([&] { be.lincomb(y, o.a1, x1, o.a2, x2); }, y, o.want2, o.scale2);
  check([&] { be.lincomb(y, o.a1, x1, o.a2, x2, o.a3, x3); }, y, o.want3, o.scale3);
  check([&] { be.lincomb(y, o.a1, x1, o.a2, x2, o.a3, x3, o.a4, x4); }, y, o.want4, o.scale4);
  check([&] { be.lincomb_per_sample(y, o.pa, x1, o.pb, x2); }, y, o.want_ps, o.scale_ps);
  check([&] { be.clamp(y, x1, o.lo, o.hi); }, y, o.want_c, o.scale_c);

  // The output may be any input. (xtensor_buffer copies share elements, so the copies use lincomb.)
  T z = dm::make_like(x1);
  auto reset = [&](const T& from) { be.lincomb(z, S(1), from); };
  reset(x1);
  check([&] { be.lincomb(z, o.a1, z, o.a2, x2, o.a3, x3, o.a4, x4); }, z, o.want4, o.scale4);
  reset(x2);
  check([&] { be.lincomb(z, o.a1, x1, o.a2, z, o.a3, x3, o.a4, x4); }, z, o.want4, o.scale4);
  reset(x3);
  check([&] { be.lincomb(z, o.a1, x1, o.a2, x2, o.a3, z); }, z, o.want3, o.scale3);
  reset(x4);
  check([&] { be.lincomb(z, o.a1, x1, o.a2, x2, o.a3, x3, o.a4, z); }, z, o.want4, o.scale4);
  reset(x2);
  check([&] { be.lincomb(z, o.a1, x1, o.a2, z); }, z, o.want2, o.scale2);
  reset(x1);
  check([&] { be.lincomb(z, o.a1, z); }, z, o.want1, o.scale1);
  reset(x1);
  check([&] { be.lincomb_per_sample(z, o.pa, z, o.pb, x2); }, z, o.want_ps, o.scale_ps);
  reset(x2);
  check([&] { be.lincomb_per_sample(z, o.pa, x1, o.pb, z); }, z, o.want_ps, o.scale_ps);
  reset(x1);
  check([&] { be.clamp(z, z, o.lo, o.hi); }, z, o.want_c, o.scale_c);

  CHECK(allocations == 0);
}

template <class Kind>
void check_all_shapes() {
  for (const auto& shape : shapes<Kind>()) check_operations_match_reference<Kind>(shape);
}

}  // namespace

using all_kinds = std::tuple<xtensor_kind<float, 2>, xtensor_kind<double, 2>, xtensor_kind<float, 4>,
                             xtensor_kind<double, 4>, xarray_kind<float>, xarray_kind<double>, buffer_kind<float, 2>,
                             buffer_kind<double, 2>, buffer_kind<float, 4>, buffer_kind<double, 4>>;

TEMPLATE_LIST_TEST_CASE("xtensor backend equals the reference backend and allocates nothing", "[backend][xtensor]",
                        all_kinds) {
  check_all_shapes<TestType>();
}

TEST_CASE("xtensor tensor_traits: row-major, dimension 0 is the batch", "[backend][xtensor]") {
  using T = xt::xtensor<double, 3>;
  dm::test::check_batch_major_traits<T>([](std::size_t a, std::size_t b, std::size_t c) { return T({a, b, c}); });
  const T x({2, 3, 4});
  const T y = dm::make_like(x);
  CHECK(y.shape() == x.shape());
  CHECK(y.data() != x.data());
}

TEST_CASE("xarray tensor_traits: any rank, rank 0 is one sample", "[backend][xtensor]") {
  using T = xt::xarray<float>;
  const T x = T::from_shape(std::vector<std::size_t>{4, 5});
  CHECK(dm::batch_size(x) == 4);
  CHECK(dm::sample_size(x) == 5);
  CHECK(dm::tensor_traits<T>::shape_string(x) == "[4, 5]");
  const T y = dm::make_like(x);
  CHECK(dm::same_shape(x, y));
  CHECK_FALSE(dm::same_shape(x, T::from_shape(std::vector<std::size_t>{4, 5, 1})));
  CHECK_FALSE(dm::same_shape(x, T::from_shape(std::vector<std::size_t>{20})));

  const T scalar = T::from_shape(std::vector<std::size_t>{});
  CHECK(dm::size(scalar) == 1);
  CHECK(dm::batch_size(scalar) == 1);
  CHECK(dm::tensor_traits<T>::shape_string(scalar) == "[]");
}

TEST_CASE("xtensor_buffer: borrowing copies nothing, make_like owns new memory", "[backend][xtensor]") {
  std::vector<float> user(6);
  for (std::size_t i = 0; i < user.size(); ++i) user[i] = static_cast<float>(i);
  using B = dm::xtensor_buffer<float, 2>;

  SECTION("from a pointer and a shape") {
    const std::size_t before = diffusion::test::allocations.load();
    B b = dm::borrow_xtensor(user.data(), std::array<std::size_t, 2>{3, 2});
    B copy = b;  // another handle to the same elements
    CHECK(diffusion::test::allocations.load() == before);
    CHECK(b.data() == user.data());
    CHECK(copy.data() == user.data());
    CHECK(dm::batch_size(b) == 3);
    CHECK(b(2, 1) == 5.0f);
    b(1, 0) = -1.0f;
    CHECK(user[2] == -1.0f);
    CHECK(copy(1, 0) == -1.0f);
  }
  SECTION("from the no-ownership adaptor xt::adapt returns") {
    auto adaptor = xt::adapt(user.data(), user.size(), xt::no_ownership(), std::array<std::size_t, 2>{2, 3});
    const B b = dm::borrow_xtensor(adaptor);
    CHECK(b.data() == user.data());
    CHECK(b.shape() == adaptor.shape());
  }
  SECTION("from an xt::xtensor (it must outlive the buffer)") {
    xt::xtensor<float, 2> owner({2, 3});
    const B b = dm::borrow_xtensor(owner);
    CHECK(b.data() == owner.data());
    CHECK(dm::tensor_traits<B>::shape_string(b) == "[2, 3]");
  }
  SECTION("from a view of whole rows: the view's own elements, not its container's first ones") {
    xt::xtensor<float, 2> owner({4, 3});
    for (std::size_t i = 0; i < owner.size(); ++i) owner.data()[i] = static_cast<float>(i);
    auto rows = xt::view(owner, xt::range(2, 4), xt::all());
    B b = dm::borrow_xtensor(rows);
    CHECK(b.data() == owner.data() + 6);
    CHECK(b(0, 0) == 6.0f);
    CHECK(dm::tensor_traits<B>::shape_string(b) == "[2, 3]");
    dm::xtensor_buffer_backend<float, 2>{}.lincomb(b, 0.0f, b);
    CHECK(owner(1, 2) == 5.0f);  // rows 0-1 untouched
    CHECK(owner(2, 0) == 0.0f);
    CHECK(owner(3, 2) == 0.0f);
  }
  SECTION("make_like allocates a buffer that it owns, whatever x's owner") {
    const B b = dm::borrow_xtensor(user.data(), std::array<std::size_t, 2>{3, 2});
    B made = dm::make_like(b);
    CHECK(made.data() != user.data());
    CHECK(dm::same_shape(made, b));
    // Memory from make_like lives as long as any handle to it: here `kept` becomes the last one.
    B kept = dm::make_like(made);
    {
      B temporary = dm::make_like(b);
      temporary(2, 1) = 42.0f;
      kept = temporary;  // rebinds the handle; kept's former buffer is released
    }
    CHECK(kept(2, 1) == 42.0f);
    dm::xtensor_buffer_backend<float, 2>{}.lincomb(kept, 2.0f, b);
    CHECK(kept(2, 1) == 10.0f);
    CHECK(user[5] == 5.0f);
  }
}

TEST_CASE("xtensor backend: lincomb sums left to right, as the reference does", "[backend][xtensor]") {
  const xt::xtensor<float, 2> ones = xt::ones<float>({3, 5});
  dm::test::check_sums_left_to_right(dm::xtensor_backend<float, 2>{}, ones);
}

TEST_CASE("xtensor backend: coefficients given in double are converted to the scalar type", "[backend][xtensor]") {
  const dm::xtensor_backend<float, 2> be;
  const xt::xtensor<float, 2> x({2, 3}, 2.0f);
  xt::xtensor<float, 2> y({2, 3});
  be.lincomb(y, 0.5, x, 0.25, x);
  CHECK(y(1, 2) == 1.5f);
}

TEST_CASE("xtensor backend: clamp keeps NaN, maps infinities to the bounds, rejects lo > hi", "[backend][xtensor]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const dm::xtensor_backend<float, 2> be;
  xt::xtensor<float, 2> x({1, 19}, 0.5f);
  dm::test::check_clamp_nan_and_infinities(be, x);
  auto y = dm::make_like(x);
  be.clamp(y, x, 0.25f, 0.25f);
  CHECK(y(0, 0) == 0.25f);

  CHECK_THROWS_WITH(be.clamp(y, x, 1.0f, -1.0f), Catch::Matchers::Contains("clamp") &&
                                                    Catch::Matchers::Contains("lo = 1") &&
                                                    Catch::Matchers::Contains("hi = -1"));
  CHECK_THROWS_AS(be.clamp(y, x, nan, 1.0f), std::invalid_argument);
  CHECK_THROWS_WITH(be.clamp(y, x, -1.0f, nan), Catch::Matchers::Contains("hi = nan") && Catch::Matchers::Contains("lo = -1"));
}

TEST_CASE("xtensor backend: shape mismatches throw with both shapes", "[backend][xtensor]") {
  const dm::xtensor_backend<float, 2> be;
  xt::xtensor<float, 2> y = xt::zeros<float>({2, 3}), x = xt::zeros<float>({2, 3});
  // xtensor would broadcast a [1, 3] operand over [2, 3]: the backend must refuse it.
  xt::xtensor<float, 2> bad = xt::zeros<float>({3, 2}), row = xt::zeros<float>({1, 3});
  const std::vector<float> two{1, 2}, three{1, 2, 3};

  CHECK_THROWS_AS(be.lincomb(y, 1.0f, bad), std::invalid_argument);
  CHECK_THROWS_WITH(be.lincomb(y, 1.0f, x, 1.0f, row),
                    Catch::Matchers::Contains("x2") && Catch::Matchers::Contains("[1, 3]") &&
                        Catch::Matchers::Contains("[2, 3]"));
  CHECK_THROWS_WITH(be.lincomb(y, 1.0f, x, 1.0f, x, 1.0f, bad),
                    Catch::Matchers::Contains("xtensor_backend::lincomb") && Catch::Matchers::Contains("x3") &&
                        Catch::Matchers::Contains("[3, 2]") && Catch::Matchers::Contains("[2, 3]"));
  CHECK_THROWS_WITH(be.lincomb(y, 1.0f, x, 1.0f, x, 1.0f, x, 1.0f, bad), Catch::Matchers::Contains("x4"));
  CHECK_THROWS_WITH(be.lincomb(bad, 1.0f, x, 1.0f, x), Catch::Matchers::Contains("x1"));
  CHECK_THROWS_WITH(be.lincomb_per_sample(y, two, x, two, bad),
                    Catch::Matchers::Contains("lincomb_per_sample") && Catch::Matchers::Contains("x2"));
  CHECK_THROWS_WITH(be.lincomb_per_sample(y, two, bad, two, x), Catch::Matchers::Contains("x1"));
  CHECK_THROWS_WITH(be.lincomb_per_sample(y, three, x, two, x),
                    Catch::Matchers::Contains("a.size() = 3") && Catch::Matchers::Contains("batch size, 2"));
  CHECK_THROWS_WITH(be.lincomb_per_sample(y, two, x, three, x), Catch::Matchers::Contains("b.size() = 3"));
  CHECK_THROWS_WITH(be.clamp(y, bad, 0.0f, 1.0f),
                    Catch::Matchers::Contains("clamp") && Catch::Matchers::Contains("[3, 2]"));
  // Nothing was written by a rejected call.
  CHECK(y(1, 2) == 0.0f);
  CHECK_NOTHROW(be.lincomb_per_sample(y, two, x, two, x));

  const dm::xarray_backend<double> ab;
  xt::xarray<double> ay = xt::zeros<double>({2, 3}), ax = xt::zeros<double>({2, 3, 1});
  CHECK_THROWS_WITH(ab.lincomb(ay, 1.0, ax), Catch::Matchers::Contains("[2, 3, 1]") && Catch::Matchers::Contains("[2, 3]"));
}

TEST_CASE("xtensor backend: empty tensors", "[backend][xtensor]") {
  const dm::xtensor_backend<double, 2> be;
  xt::xtensor<double, 2> y({0, 3}), x({0, 3});
  be.lincomb(y, 1.0, x, 2.0, x);
  be.lincomb_per_sample(y, {}, x, {}, x);
  be.clamp(y, x, 0.0, 1.0);
  dm::philox_noise noise(7);
  be.fill_normal(y, noise);
  CHECK(noise.draw_index() == 1);  // a draw is consumed even when there is nothing to fill
}

namespace {

/// A range source that records what fill_normal asks of it.
struct recording_source {
  mutable std::vector<std::pair<std::size_t, std::size_t>> ranges;
  mutable std::vector<std::size_t> batches;
  std::uint64_t draw = 0;

  std::uint64_t draw_index() const { return draw; }
  std::uint64_t next_draw() { return draw++; }
  template <class S>
  void fill_normal_range(std::span<S> out, std::size_t batch, std::uint64_t k, std::size_t begin,
                         std::size_t end) const {
    ranges.emplace_back(begin, end);
    batches.push_back(batch);
    for (std::size_t j = begin; j < end; ++j) out[j] = static_cast<S>(j % 1000) + static_cast<S>(k);
  }
};

template <class Kind>
void check_fill_normal_matches_philox(const shape_t& shape, bool per_sample_streams) {
  using S = typename Kind::tensor::value_type;
  const std::uint64_t seed = 0x5EEDF00Dull;
  const std::uint32_t stream = 3;
  auto z = Kind::make(shape);
  const std::size_t n = dm::size(z), batch = dm::batch_size(z);

  // The reference path: the source fills a plain buffer. Three draws, so the draw index matters.
  std::vector<std::vector<S>> want(3, std::vector<S>(n));
  {
    dm::philox_noise noise(seed, stream, per_sample_streams);
    for (auto& w : want) noise.fill_normal(std::span<S>(w), batch);
  }

  INFO(Kind::name << " of shape " << dm::tensor_traits<typename Kind::tensor>::shape_string(z)
                  << ", per-sample streams " << per_sample_streams);
  typename Kind::backend be;
  dm::philox_noise noise(seed, stream, per_sample_streams);
  for (std::size_t k = 0; k < 3; ++k) {
    const std::size_t before = diffusion::test::allocations.load();
    if (k == 1)
      dm::draw_normal(be, noise, z);  // the generic path must pick the backend's fill_normal
    else
      be.fill_normal(z, noise);
    CHECK(diffusion::test::allocations.load() == before);
    CHECK(noise.draw_index() == k + 1);  // exactly one draw per fill
    require_identical<S>(values_of(z), std::span<const S>(want[k]));
  }
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("xtensor backend fill_normal is bit-identical to philox_noise::fill_normal",
                        "[backend][xtensor][rng]", all_kinds) {
  const bool per_sample = GENERATE(false, true);
  for (const auto& shape : shapes<TestType>()) check_fill_normal_matches_philox<TestType>(shape, per_sample);
}

TEST_CASE("xtensor backend fill_normal takes one draw and fills the whole tensor in one range", "[backend][xtensor]") {
  xt::xtensor<float, 2> z({5, 201});
  recording_source src;
  src.draw = 4;
  dm::xtensor_backend<float, 2>{}.fill_normal(z, src);
  CHECK(src.draw == 5);
  REQUIRE(src.ranges.size() == 1);
  CHECK(src.ranges[0] == std::pair<std::size_t, std::size_t>{0, 1005});
  CHECK(src.batches == std::vector<std::size_t>{5});
  CHECK(z(0, 7) == 7.0f + 4.0f);
  CHECK(z(4, 200) == 4.0f + 4.0f);  // element 1004
}
