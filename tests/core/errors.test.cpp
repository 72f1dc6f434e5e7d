// SPDX-License-Identifier: MIT
// The message format every runtime rejection shares:
//   "<where>: <parameter> = <value> is invalid; valid range: <range>"
// with doubles written to 17 significant digits, so that the value in the message round-trips.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <diffusion/core/errors.hpp>
#include <diffusion/random/philox_noise.hpp>

using namespace diffusion;

namespace {

// The message of the std::invalid_argument that f throws; fails the test if f throws anything else
// or nothing.
template <class F>
std::string invalid_argument_message(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (...) {
    FAIL("threw something other than std::invalid_argument");
  }
  FAIL("did not throw");
  return {};
}

std::string expected(const std::string& where, const std::string& parameter, const std::string& value,
                     const std::string& range) {
  return where + ": " + parameter + " = " + value + " is invalid; valid range: " + range;
}

}  // namespace

TEST_CASE("throw_invalid is [[noreturn]] and throws std::invalid_argument", "[errors]") {
  static_assert(std::is_same_v<decltype(throw_invalid("w", "p", 1.0, "r")), void>);
  CHECK_THROWS_AS(throw_invalid("w", "p", 1.0, "r"), std::invalid_argument);
  // std::invalid_argument is a std::logic_error, so generic handlers still catch it.
  CHECK_THROWS_AS(throw_invalid("w", "p", 1.0, "r"), std::logic_error);
}

TEST_CASE("throw_invalid message format", "[errors]") {
  SECTION("double with an exact short form") {
    CHECK(invalid_argument_message([] { throw_invalid("ddim", "eta", -0.5, "[0, inf)"); }) ==
          expected("ddim", "eta", "-0.5", "[0, inf)"));
  }
  SECTION("doubles are written with 17 significant digits") {
    CHECK(invalid_argument_message([] { throw_invalid("w", "beta", 0.1, "(0, 1)"); }) ==
          expected("w", "beta", "0.10000000000000001", "(0, 1)"));
    CHECK(invalid_argument_message([] { throw_invalid("w", "x", 1.0 / 3.0, "r"); }) ==
          expected("w", "x", "0.33333333333333331", "r"));
    CHECK(invalid_argument_message([] { throw_invalid("w", "x", 1e-20, "r"); }) ==
          expected("w", "x", "9.9999999999999995e-21", "r"));
    CHECK(invalid_argument_message([] { throw_invalid("w", "x", 2.0 / 3.0, "r"); }) ==
          expected("w", "x", "0.66666666666666663", "r"));
    // %.17g: trailing zeros of the 17 digits (6.6666666666666670e+299) are dropped.
    CHECK(invalid_argument_message([] { throw_invalid("w", "x", 2.0 / 3.0 * 1e300, "r"); }) ==
          expected("w", "x", "6.666666666666667e+299", "r"));
  }
  SECTION("integers are written as integers") {
    CHECK(invalid_argument_message([] { throw_invalid("time_grid", "steps", std::size_t{0}, "at least 1"); }) ==
          expected("time_grid", "steps", "0", "at least 1"));
    CHECK(invalid_argument_message([] { throw_invalid("w", "n", -42, "r"); }) == expected("w", "n", "-42", "r"));
    CHECK(invalid_argument_message([] {
            throw_invalid("w", "n", std::numeric_limits<std::uint64_t>::max(), "r");
          }) == expected("w", "n", "18446744073709551615", "r"));
  }
  SECTION("non-finite doubles") {
    CHECK(invalid_argument_message([] { throw_invalid("w", "x", std::numeric_limits<double>::infinity(), "r"); }) ==
          expected("w", "x", "inf", "r"));
    CHECK(invalid_argument_message([] { throw_invalid("w", "x", -std::numeric_limits<double>::infinity(), "r"); }) ==
          expected("w", "x", "-inf", "r"));
    const std::string nan = invalid_argument_message([] { throw_invalid("w", "x", std::nan(""), "r"); });
    CHECK((nan == expected("w", "x", "nan", "r") || nan == expected("w", "x", "-nan", "r")));
  }
  SECTION("string values and computed ranges are copied verbatim") {
    const std::string where = "gaussian_mixture";
    const std::string parameter = "means[2].size()";
    CHECK(invalid_argument_message([&] {
            throw_invalid(where, parameter, std::string("a tensor of shape [3, 2]"), "shape [4, 2] (the shape of x)");
          }) == expected(where, parameter, "a tensor of shape [3, 2]", "shape [4, 2] (the shape of x)"));
  }
}

TEST_CASE("the value in the message round-trips to the same double", "[errors]") {
  // 17 significant digits identify every double (IEEE 754 binary64); fewer would not, e.g. for
  // 0.1 + 0.2, which 15 or 16 digits print as 0.3 / 0.3000000000000000.
  philox_noise noise(20240521);
  double draws[64];
  noise.fill_uniform(std::span<double>(draws), 1);
  const std::string prefix = "w: x = ";
  const std::string suffix = " is invalid; valid range: r";
  auto round_trip = [&](double v) {
    const std::string msg = invalid_argument_message([&] { throw_invalid("w", "x", v, "r"); });
    REQUIRE(msg.size() > prefix.size() + suffix.size());
    REQUIRE(msg.compare(0, prefix.size(), prefix) == 0);
    REQUIRE(msg.compare(msg.size() - suffix.size(), suffix.size(), suffix) == 0);
    const std::string text = msg.substr(prefix.size(), msg.size() - prefix.size() - suffix.size());
    INFO("value " << text);
    CHECK(std::strtod(text.c_str(), nullptr) == v);
  };
  round_trip(0.1 + 0.2);
  round_trip(std::nextafter(1.0, 2.0));
  round_trip(std::numeric_limits<double>::denorm_min());
  round_trip(std::numeric_limits<double>::max());
  for (double u : draws) round_trip(std::ldexp(u - 0.5, static_cast<int>(std::floor(u * 200.0)) - 100));
}

TEST_CASE("require throws only when the condition is false", "[errors]") {
  CHECK_NOTHROW(require(true, "w", "p", 1.0, "r"));
  CHECK(invalid_argument_message([] { require(false, "vp_discrete", "betas[3]", 1.5, "(0, 1)"); }) ==
        expected("vp_discrete", "betas[3]", "1.5", "(0, 1)"));
  // The message is the one throw_invalid would build.
  CHECK(invalid_argument_message([] { require(false, "w", "p", 0.7, "r"); }) ==
        invalid_argument_message([] { throw_invalid("w", "p", 0.7, "r"); }));
}

TEST_CASE("require_finite names the parameter and says what is valid", "[errors]") {
  CHECK_NOTHROW(require_finite(0.0, "w", "p"));
  CHECK_NOTHROW(require_finite(-std::numeric_limits<double>::max(), "w", "p"));
  CHECK_NOTHROW(require_finite(std::numeric_limits<double>::denorm_min(), "w", "p"));
  CHECK(invalid_argument_message([] { require_finite(std::numeric_limits<double>::infinity(), "time_grid", "t[2]"); }) ==
        expected("time_grid", "t[2]", "inf", "a finite number"));
  const std::string nan = invalid_argument_message([] { require_finite(std::nan(""), "w", "sigma"); });
  CHECK_THAT(nan, Catch::Matchers::StartsWith("w: sigma = ") && Catch::Matchers::Contains("nan") &&
                      Catch::Matchers::EndsWith(" is invalid; valid range: a finite number"));
}
