// SPDX-License-Identifier: MIT
// The tests' JSON reader (tests/support/json.hpp): the golden-file tests are only as good as it.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/json.hpp"

using test_support::json;
using test_support::parse_json;

namespace {

// Bit equality: the reader must give back exactly the double whose shortest text was written.
bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

TEST_CASE("json: values, nesting and accessors", "[support][json]") {
  const json j = parse_json(R"( {"a": [1, 2.5, -3e-2], "b": {"c": true, "d": null, "e": false},
                                 "s": "x\"y\\z\/\n\u00e9\ud83d\ude00", "m": [[1, 2], [3, 4], [5, 6]], "empty": []} )");
  REQUIRE(j.is_object());
  CHECK(j.size() == 5);
  CHECK(j.contains("a"));
  CHECK_FALSE(j.contains("z"));
  CHECK(j["a"].as_vector() == std::vector<double>{1.0, 2.5, -0.03});
  CHECK(j["a"][1].as_double() == 2.5);
  CHECK(j["b"]["c"].as_bool());
  CHECK(j["b"]["d"].is_null());
  CHECK_FALSE(j["b"]["e"].as_bool());
  CHECK(j["s"].as_string() == "x\"y\\z/\n\xC3\xA9\xF0\x9F\x98\x80");
  CHECK(j["m"].shape() == std::vector<std::size_t>{3, 2});
  CHECK(j["m"].as_matrix() == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(j["empty"].size() == 0);
  CHECK(j["a"][0].as_int() == 1);
  CHECK(j.keys() == std::vector<std::string>{"a", "b", "s", "m", "empty"});
}

TEST_CASE("json: decimal text round-trips to the exact double", "[support][json]") {
  // Shortest round-trip representations (what Python's repr writes), including subnormals.
  const double values[] = {0.1, 1.0 / 3.0, 9.999999747378752e-05, 0.00011991991991991993, 1e-20,
                           std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::max(),
                           -2.2250738585072014e-308, 0.9999586939811707};
  const char* texts[] = {"0.1", "0.3333333333333333", "9.999999747378752e-05", "0.00011991991991991993", "1e-20",
                         "5e-324", "1.7976931348623157e+308", "-2.2250738585072014E-308", "0.9999586939811707"};
  for (std::size_t i = 0; i < std::size(values); ++i) {
    INFO(texts[i]);
    CHECK(same_bits(parse_json(texts[i]).as_double(), values[i]));
  }
  CHECK(same_bits(parse_json("-0").as_double(), -0.0));
}

TEST_CASE("json: malformed input throws", "[support][json]") {
  const char* bad = GENERATE(as<const char*>{}, "", "{", "[1, 2", "[1,]", "{\"a\" 1}", "{\"a\": 1,}", "01", "1.",
                             ".5", "1e", "+1", "-", "NaN", "Infinity", "1e999", "tru", "nul", "\"abc", "\"\\x\"",
                             "\"\\u12\"", "\"\\ud800\"", "\"a\nb\"", "[1] 2", "{\"a\": 1, \"a\": 2}", "{1: 2}");
  INFO(bad);
  CHECK_THROWS_AS(parse_json(bad), std::runtime_error);
}

TEST_CASE("json: wrong accesses throw with a message", "[support][json]") {
  const json j = parse_json(R"({"a": [1, [2, 3]], "n": 1.5})");
  SECTION("missing key") { CHECK_THROWS_WITH(j["b"], Catch::Matchers::Contains("\"b\"")); }
  SECTION("index out of range") { CHECK_THROWS_WITH(j["a"][2], Catch::Matchers::Contains("index 2")); }
  SECTION("negative index") { CHECK_THROWS_AS(j["a"][-1], std::out_of_range); }
  SECTION("wrong type") { CHECK_THROWS_WITH(j["n"].as_string(), Catch::Matchers::Contains("string")); }
  SECTION("non-integer as_int") { CHECK_THROWS_AS(j["n"].as_int(), std::runtime_error); }
  SECTION("ragged array") { CHECK_THROWS_WITH(j["a"].as_flat(), Catch::Matchers::Contains("ragged")); }
  SECTION("as_matrix needs 2-D") { CHECK_THROWS_AS(parse_json("[1, 2]").as_matrix(), std::runtime_error); }
  SECTION("missing file") { CHECK_THROWS_AS(test_support::load_json("/nonexistent/x.json"), std::runtime_error); }
}

TEST_CASE("json: a golden file loads", "[support][json]") {
  const json j = test_support::load_test_data("diffusers_ddpm_linear_50steps_leading.json");
  CHECK(j["format"].as_string().rfind("golden-v1", 0) == 0);
  CHECK(j["timesteps"].size() == 50);
  CHECK(j["inputs"]["x_T"].shape() == std::vector<std::size_t>{64, 2});
  CHECK(j["inputs"]["noise"].shape() == std::vector<std::size_t>{49, 64, 2});
  CHECK(j["inputs"]["x_T"].as_matrix()[0] == 2.484181);
  CHECK(j["runs"]["float64_tables"]["per_step"][3]["prev_sample"].as_matrix().size() == 128);
  CHECK(j["scheduler_config"]["trained_betas"].is_null());
}
