// SPDX-License-Identifier: MIT
// The reference backend is the oracle for every other backend, so its own results are checked here
// against values worked out by hand (all inputs are small dyadic numbers, so every expected value is
// exact in float and double).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <diffusion/backend/reference.hpp>

namespace dm = diffusion;

static_assert(dm::tensor<dm::reference_tensor<float>>);
static_assert(dm::tensor<dm::reference_tensor<double>>);
static_assert(dm::tensor_backend<dm::reference_backend<float>>);
static_assert(dm::tensor_backend<dm::reference_backend<double>>);

namespace {

template <class S>
dm::reference_tensor<S> make(std::vector<std::size_t> shape, std::vector<S> data) {
  return dm::reference_tensor<S>(std::move(shape), std::move(data));
}

}  // namespace

TEST_CASE("reference_tensor: tensor_traits", "[backend][reference]") {
  using T = dm::reference_tensor<double>;
  const T x = make<double>({2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(dm::size(x) == 6);
  CHECK(dm::batch_size(x) == 2);
  CHECK(dm::sample_size(x) == 3);
  CHECK(dm::tensor_traits<T>::shape_string(x) == "[2, 3]");

  const T y = dm::make_like(x);
  CHECK(y.shape == x.shape);
  CHECK(y.data.size() == 6);
  CHECK(dm::same_shape(x, y));
  CHECK_FALSE(dm::same_shape(x, T({3, 2})));
  CHECK_FALSE(dm::same_shape(x, T({6})));

  // Row-major: sample b is elements [b * 3, (b + 1) * 3).
  const auto e = dm::elements(x);
  CHECK(e.data() == x.data.data());
  CHECK(e.size() == 6);
  CHECK(e[3] == 4.0);

  T m({4, 1, 2});
  auto me = dm::elements(m);
  me[7] = 9.0;
  CHECK(m.data[7] == 9.0);
  CHECK(dm::tensor_traits<T>::shape_string(m) == "[4, 1, 2]");

  // A shapeless tensor is one scalar sample.
  const T scalar({}, {5.0});
  CHECK(dm::batch_size(scalar) == 1);
  CHECK(dm::size(scalar) == 1);
  CHECK(dm::tensor_traits<T>::shape_string(scalar) == "[]");
}

TEST_CASE("reference_tensor: data whose size does not match the shape is rejected", "[backend][reference]") {
  CHECK_NOTHROW(make<float>({2, 3}, std::vector<float>(6)));
  CHECK_THROWS_AS(make<float>({2, 3}, std::vector<float>(5)), std::invalid_argument);
  CHECK_THROWS_AS(make<float>({2, 3}, std::vector<float>(7)), std::invalid_argument);
  CHECK_THROWS_AS(make<double>({0, 3}, std::vector<double>(1)), std::invalid_argument);
  CHECK_THROWS_WITH(make<double>({2, 3}, std::vector<double>(5)),
                    Catch::Matchers::Contains("reference_tensor") && Catch::Matchers::Contains("data.size() = 5") &&
                        Catch::Matchers::Contains("6"));
}

TEST_CASE("reference_tensor: require_same_shape names the parameter and both shapes", "[backend][reference]") {
  using T = dm::reference_tensor<float>;
  const T x({2, 3});
  CHECK_NOTHROW(dm::require_same_shape(T({2, 3}), x, "test", "eps"));
  CHECK_THROWS_WITH(dm::require_same_shape(T({3, 2}), x, "test", "eps"),
                    Catch::Matchers::Contains("eps") && Catch::Matchers::Contains("[3, 2]") &&
                        Catch::Matchers::Contains("[2, 3]"));
}

TEMPLATE_TEST_CASE("reference_backend: lincomb with 1 to 4 terms", "[backend][reference]", float, double) {
  using S = TestType;
  const dm::reference_backend<S> be;
  const auto x1 = make<S>({2, 2}, {1, 2, 3, 4});
  const auto x2 = make<S>({2, 2}, {0.5, -1, 8, 0});
  const auto x3 = make<S>({2, 2}, {-2, 0.25, 1, 16});
  const auto x4 = make<S>({2, 2}, {4, 4, -0.5, 2});
  auto y = dm::make_like(x1);

  be.lincomb(y, S(2), x1);
  CHECK(y.data == std::vector<S>{2, 4, 6, 8});
  be.lincomb(y, S(2), x1, S(-0.5), x2);
  CHECK(y.data == std::vector<S>{1.75, 4.5, 2, 8});
  be.lincomb(y, S(2), x1, S(-0.5), x2, S(4), x3);
  CHECK(y.data == std::vector<S>{-6.25, 5.5, 6, 72});
  be.lincomb(y, S(2), x1, S(-0.5), x2, S(4), x3, S(0.25), x4);
  CHECK(y.data == std::vector<S>{-5.25, 6.5, 5.875, 72.5});
  // The inputs are untouched.
  CHECK(x1.data == std::vector<S>{1, 2, 3, 4});
}

TEMPLATE_TEST_CASE("reference_backend: lincomb sums left to right", "[backend][reference]", float, double) {
  using S = TestType;
  const dm::reference_backend<S> be;
  // (big + (-big)) + 1 = 1, whereas big + (-big + 1) rounds to 0: the order is observable.
  const S big = S(1) / std::numeric_limits<S>::epsilon() * 4;
  const auto ones = make<S>({1, 1}, {1});
  auto y = dm::make_like(ones);
  be.lincomb(y, big, ones, -big, ones, S(1), ones);
  CHECK(y.data[0] == S(1));
  be.lincomb(y, big, ones, S(1), ones, -big, ones);
  CHECK(y.data[0] == S(0));
}

TEMPLATE_TEST_CASE("reference_backend: lincomb output may alias any input", "[backend][reference]", float, double) {
  using S = TestType;
  const dm::reference_backend<S> be;
  const auto x1 = make<S>({3}, {1, 2, 3});
  const auto x2 = make<S>({3}, {4, 5, 6});
  const auto x3 = make<S>({3}, {-1, 0.5, 2});

  SECTION("y is x1") {
    auto y = x1;
    be.lincomb(y, S(2), y, S(1), x2, S(-1), x3);
    CHECK(y.data == std::vector<S>{7, 8.5, 10});
  }
  SECTION("y is x2") {
    auto y = x2;
    be.lincomb(y, S(2), x1, S(1), y, S(-1), x3);
    CHECK(y.data == std::vector<S>{7, 8.5, 10});
  }
  SECTION("y is x3") {
    auto y = x3;
    be.lincomb(y, S(2), x1, S(1), x2, S(-1), y);
    CHECK(y.data == std::vector<S>{7, 8.5, 10});
  }
  SECTION("y is every input") {
    auto y = x1;
    be.lincomb(y, S(1), y, S(2), y, S(0.5), y, S(-1), y);
    CHECK(y.data == std::vector<S>{2.5, 5, 7.5});
  }
}

TEMPLATE_TEST_CASE("reference_backend: lincomb_per_sample", "[backend][reference]", float, double) {
  using S = TestType;
  const dm::reference_backend<S> be;
  const auto x1 = make<S>({3, 2}, {1, 2, 3, 4, 5, 6});
  const auto x2 = make<S>({3, 2}, {1, 1, -1, -1, 0.5, 2});
  const std::vector<S> a{2, 0, -1};
  const std::vector<S> b{1, 4, 0.5};

  SECTION("fresh output") {
    auto y = dm::make_like(x1);
    be.lincomb_per_sample(y, a, x1, b, x2);
    CHECK(y.data == std::vector<S>{3, 5, -4, -4, -4.75, -5});
  }
  SECTION("y is x1") {
    auto y = x1;
    be.lincomb_per_sample(y, a, y, b, x2);
    CHECK(y.data == std::vector<S>{3, 5, -4, -4, -4.75, -5});
  }
  SECTION("y is x2") {
    auto y = x2;
    be.lincomb_per_sample(y, a, x1, b, y);
    CHECK(y.data == std::vector<S>{3, 5, -4, -4, -4.75, -5});
  }
  SECTION("rank 3: a sample is every element after dimension 0") {
    const auto z1 = make<S>({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
    const auto z2 = make<S>({2, 2, 2}, {1, 1, 1, 1, 1, 1, 1, 1});
    const std::vector<S> c{1, 2};
    const std::vector<S> d{10, 100};
    auto y = dm::make_like(z1);
    be.lincomb_per_sample(y, c, z1, d, z2);
    CHECK(y.data == std::vector<S>{11, 12, 13, 14, 110, 112, 114, 116});
  }
}

TEMPLATE_TEST_CASE("reference_backend: clamp", "[backend][reference]", float, double) {
  using S = TestType;
  const dm::reference_backend<S> be;
  const S inf = std::numeric_limits<S>::infinity();
  const auto x = make<S>({2, 3}, {-2, -1, 0, 0.5, 1, inf});

  SECTION("fresh output") {
    auto y = dm::make_like(x);
    be.clamp(y, x, S(-1), S(1));
    CHECK(y.data == std::vector<S>{-1, -1, 0, 0.5, 1, 1});
  }
  SECTION("in place") {
    auto y = x;
    be.clamp(y, y, S(-0.5), S(0.75));
    CHECK(y.data == std::vector<S>{-0.5, -0.5, 0, 0.5, 0.75, 0.75});
  }
  SECTION("NaN is not clamped away") {
    auto z = make<S>({1, 2}, {std::numeric_limits<S>::quiet_NaN(), S(3)});
    auto y = dm::make_like(z);
    be.clamp(y, z, S(-1), S(1));
    CHECK(std::isnan(y.data[0]));
    CHECK(y.data[1] == S(1));
  }
}

TEST_CASE("reference_backend: tensors of another shape are rejected, not read past their end", "[backend][reference][errors]") {
  using Catch::Matchers::Contains;
  const dm::reference_backend<double> be;
  dm::reference_tensor<double> y({2, 3}), x({2, 3}), wrong({3, 2}), short_one({2, 2});
  const std::vector<double> two{1, 2}, three{1, 2, 3};
  CHECK_THROWS_WITH(be.lincomb(y, 1.0, wrong), Contains("lincomb") && Contains("x1") && Contains("[3, 2]") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(be.lincomb(y, 1.0, x, 2.0, x, 3.0, short_one), Contains("x3") && Contains("[2, 2]"));
  CHECK_THROWS_WITH(be.lincomb(short_one, 1.0, x), Contains("x1") && Contains("[2, 2]"));
  CHECK_THROWS_WITH(be.lincomb_per_sample(y, two, wrong, two, x), Contains("x1") && Contains("[3, 2]"));
  CHECK_THROWS_WITH(be.lincomb_per_sample(y, two, x, two, short_one), Contains("x2") && Contains("[2, 2]"));
  CHECK_THROWS_WITH(be.lincomb_per_sample(y, three, x, two, x), Contains("a.size() = 3") && Contains("2"));
  CHECK_THROWS_WITH(be.lincomb_per_sample(y, two, x, three, x), Contains("b.size() = 3"));
  CHECK_THROWS_WITH(be.clamp(y, short_one, -1.0, 1.0), Contains("clamp") && Contains("[2, 2]"));
  CHECK_NOTHROW(be.lincomb(y, 1.0, x, 2.0, y));
  CHECK_NOTHROW(be.lincomb_per_sample(y, two, x, two, y));
}

TEST_CASE("clamp rejects lo > hi on the library's backends", "[backend][clamp][errors]") {
  diffusion::reference_backend<double> ref;
  diffusion::reference_tensor<double> x({2, 2});
  CHECK_THROWS_WITH(ref.clamp(x, x, 1.0, -1.0), Catch::Matchers::Contains("lo = 1") && Catch::Matchers::Contains("hi = -1"));
  CHECK_THROWS_AS(ref.clamp(x, x, std::nan(""), 1.0), std::invalid_argument);
  CHECK_NOTHROW(ref.clamp(x, x, 1.0, 1.0));
  // A NaN upper bound is blamed on hi.
  CHECK_THROWS_WITH(ref.clamp(x, x, -1.0, std::nan("")),
                    Catch::Matchers::Contains("hi = nan") && Catch::Matchers::Contains("lo = -1"));
  CHECK_THROWS_WITH(ref.clamp(x, x, std::nan(""), std::nan("")), Catch::Matchers::Contains("lo = nan"));
}
