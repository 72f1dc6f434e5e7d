// SPDX-License-Identifier: MIT
// A small JSON reader for the tests: enough to load the golden reference files in tests/data.
//
// Numbers go through std::from_chars, which is exact (correctly rounded) and locale-independent,
// so the 17-significant-digit decimal text in the golden files gives back exactly the double that
// was written. Malformed input throws std::runtime_error naming the byte offset; a wrong access
// (missing key, index out of range, wrong type) throws std::out_of_range / std::runtime_error
// naming the key, index or type, so a test fails with a readable message.
#pragma once

#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace test_support {

class json {
 public:
  enum class kind { null, boolean, number, string, array, object };

  json() = default;
  static json make_null() { return json(); }
  static json make_bool(bool b) {
    json j;
    j.m_kind = kind::boolean;
    j.m_bool = b;
    return j;
  }
  static json make_number(double v) {
    json j;
    j.m_kind = kind::number;
    j.m_number = v;
    return j;
  }
  static json make_string(std::string s) {
    json j;
    j.m_kind = kind::string;
    j.m_string = std::move(s);
    return j;
  }
  static json make_array(std::vector<json> items) {
    json j;
    j.m_kind = kind::array;
    j.m_items = std::move(items);
    return j;
  }
  /// Keys keep the order of the file. Duplicate keys are rejected by the parser.
  static json make_object(std::vector<std::string> keys, std::vector<json> values) {
    json j;
    j.m_kind = kind::object;
    j.m_keys = std::move(keys);
    j.m_items = std::move(values);
    return j;
  }

  kind type() const { return m_kind; }
  bool is_null() const { return m_kind == kind::null; }
  bool is_bool() const { return m_kind == kind::boolean; }
  bool is_number() const { return m_kind == kind::number; }
  bool is_string() const { return m_kind == kind::string; }
  bool is_array() const { return m_kind == kind::array; }
  bool is_object() const { return m_kind == kind::object; }

  /// Number of elements of an array or members of an object.
  std::size_t size() const {
    expect_container("size()");
    return m_items.size();
  }

  bool contains(std::string_view key) const {
    expect(kind::object, "contains()");
    for (const auto& k : m_keys)
      if (k == key) return true;
    return false;
  }

  const std::vector<std::string>& keys() const {
    expect(kind::object, "keys()");
    return m_keys;
  }

  const json& operator[](std::string_view key) const {
    expect(kind::object, "operator[](key)");
    for (std::size_t i = 0; i < m_keys.size(); ++i)
      if (m_keys[i] == key) return m_items[i];
    throw std::out_of_range("json: no key \"" + std::string(key) + "\" in object");
  }

  // A template, so that j[0] picks the index and not string_view's const char* constructor.
  template <std::integral I>
  const json& operator[](I index) const {
    expect(kind::array, "operator[](index)");
    bool negative = false;
    if constexpr (std::is_signed_v<I>) negative = index < 0;
    if (negative || static_cast<std::size_t>(index) >= m_items.size())
      throw std::out_of_range("json: index " + std::to_string(index) + " out of range for an array of size " +
                              std::to_string(m_items.size()));
    return m_items[static_cast<std::size_t>(index)];
  }

  bool as_bool() const {
    expect(kind::boolean, "as_bool()");
    return m_bool;
  }
  double as_double() const {
    expect(kind::number, "as_double()");
    return m_number;
  }
  /// The number as an integer; throws unless it is integer-valued.
  std::int64_t as_int() const {
    const double v = as_double();
    const auto i = static_cast<std::int64_t>(v);
    if (static_cast<double>(i) != v) throw std::runtime_error("json: " + std::to_string(v) + " is not an integer");
    return i;
  }
  const std::string& as_string() const {
    expect(kind::string, "as_string()");
    return m_string;
  }

  /// A 1-D array of numbers.
  std::vector<double> as_vector() const {
    expect(kind::array, "as_vector()");
    std::vector<double> out;
    out.reserve(m_items.size());
    for (const auto& item : m_items) out.push_back(item.as_double());
    return out;
  }

  /// The extents of a rectangular nested array of numbers, outermost first (a number has shape {}).
  std::vector<std::size_t> shape() const {
    std::vector<std::size_t> s;
    const json* j = this;
    while (j->is_array()) {
      s.push_back(j->m_items.size());
      if (j->m_items.empty()) break;
      j = &j->m_items.front();
    }
    return s;
  }

  /// A rectangular nested array of numbers, flattened row-major; throws if it is ragged.
  std::vector<double> as_flat() const {
    const std::vector<std::size_t> s = shape();
    std::vector<double> out;
    flatten_into(out, s, 0);
    return out;
  }

  /// A [rows][cols] array of numbers flattened row-major (a batch [B][2] of the golden files).
  std::vector<double> as_matrix() const {
    const std::vector<std::size_t> s = shape();
    if (s.size() != 2) throw std::runtime_error("json: as_matrix() needs a 2-D array, got " + std::to_string(s.size()) + " dimensions");
    return as_flat();
  }

 private:
  static const char* kind_name(kind k) {
    switch (k) {
      case kind::null: return "null";
      case kind::boolean: return "boolean";
      case kind::number: return "number";
      case kind::string: return "string";
      case kind::array: return "array";
      case kind::object: return "object";
    }
    return "?";
  }
  void expect(kind k, const char* what) const {
    if (m_kind != k)
      throw std::runtime_error(std::string("json: ") + what + " needs a " + kind_name(k) + ", got a " +
                               kind_name(m_kind));
  }
  void expect_container(const char* what) const {
    if (m_kind != kind::array && m_kind != kind::object)
      throw std::runtime_error(std::string("json: ") + what + " needs an array or object, got a " + kind_name(m_kind));
  }
  void flatten_into(std::vector<double>& out, const std::vector<std::size_t>& s, std::size_t depth) const {
    if (depth == s.size()) {
      if (!is_number()) throw std::runtime_error("json: ragged array at depth " + std::to_string(depth));
      out.push_back(m_number);
      return;
    }
    if (!is_array() || m_items.size() != s[depth])
      throw std::runtime_error("json: ragged array at depth " + std::to_string(depth));
    for (const auto& item : m_items) item.flatten_into(out, s, depth + 1);
  }

  kind m_kind = kind::null;
  bool m_bool = false;
  double m_number = 0.0;
  std::string m_string;
  std::vector<std::string> m_keys;  // objects only, parallel to m_items
  std::vector<json> m_items;        // array elements or object values
};

namespace detail {

class json_parser {
 public:
  explicit json_parser(std::string_view text) : m_s(text) {}

  json parse_document() {
    skip_ws();
    json j = parse_value(0);
    skip_ws();
    if (m_p != m_s.size()) fail("unexpected characters after the value");
    return j;
  }

 private:
  static constexpr int max_depth = 512;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("json parse error at offset " + std::to_string(m_p) + ": " + what);
  }
  bool at_end() const { return m_p >= m_s.size(); }
  char peek() const {
    if (at_end()) fail("unexpected end of input");
    return m_s[m_p];
  }
  void skip_ws() {
    while (!at_end() && (m_s[m_p] == ' ' || m_s[m_p] == '\t' || m_s[m_p] == '\n' || m_s[m_p] == '\r')) ++m_p;
  }
  void expect_char(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++m_p;
  }
  void expect_literal(std::string_view lit) {
    if (m_s.substr(m_p, lit.size()) != lit) fail("invalid literal");
    m_p += lit.size();
  }

  json parse_value(int depth) {
    if (depth > max_depth) fail("nesting too deep");
    switch (peek()) {
      case '{': return parse_object(depth);
      case '[': return parse_array(depth);
      case '"': return json::make_string(parse_string());
      case 't': expect_literal("true"); return json::make_bool(true);
      case 'f': expect_literal("false"); return json::make_bool(false);
      case 'n': expect_literal("null"); return json::make_null();
      default: return json::make_number(parse_number());
    }
  }

  json parse_object(int depth) {
    expect_char('{');
    std::vector<std::string> keys;
    std::vector<json> values;
    skip_ws();
    if (peek() == '}') {
      ++m_p;
      return json::make_object(std::move(keys), std::move(values));
    }
    for (;;) {
      skip_ws();
      if (peek() != '"') fail("expected a string key");
      std::string key = parse_string();
      for (const auto& k : keys)
        if (k == key) fail("duplicate key \"" + key + "\"");
      skip_ws();
      expect_char(':');
      skip_ws();
      values.push_back(parse_value(depth + 1));
      keys.push_back(std::move(key));
      skip_ws();
      if (peek() == ',') {
        ++m_p;
        continue;
      }
      expect_char('}');
      return json::make_object(std::move(keys), std::move(values));
    }
  }

  json parse_array(int depth) {
    expect_char('[');
    std::vector<json> items;
    skip_ws();
    if (peek() == ']') {
      ++m_p;
      return json::make_array(std::move(items));
    }
    for (;;) {
      skip_ws();
      items.push_back(parse_value(depth + 1));
      skip_ws();
      if (peek() == ',') {
        ++m_p;
        continue;
      }
      expect_char(']');
      return json::make_array(std::move(items));
    }
  }

  // The JSON number grammar is checked here; the conversion itself is std::from_chars, which
  // accepts a superset (leading zeros, "inf", "nan") that JSON forbids.
  double parse_number() {
    const std::size_t start = m_p;
    auto digit = [&] { return !at_end() && m_s[m_p] >= '0' && m_s[m_p] <= '9'; };
    if (!at_end() && m_s[m_p] == '-') ++m_p;
    if (!digit()) fail("invalid value");
    if (m_s[m_p] == '0') {
      ++m_p;
      if (digit()) fail("leading zero in a number");
    } else {
      while (digit()) ++m_p;
    }
    if (!at_end() && m_s[m_p] == '.') {
      ++m_p;
      if (!digit()) fail("expected a digit after '.'");
      while (digit()) ++m_p;
    }
    if (!at_end() && (m_s[m_p] == 'e' || m_s[m_p] == 'E')) {
      ++m_p;
      if (!at_end() && (m_s[m_p] == '+' || m_s[m_p] == '-')) ++m_p;
      if (!digit()) fail("expected a digit in the exponent");
      while (digit()) ++m_p;
    }
    double v = 0.0;
    const char* first = m_s.data() + start;
    const char* last = m_s.data() + m_p;
    const auto [ptr, ec] = std::from_chars(first, last, v);
    // Out-of-range magnitudes (1e999) are malformed for our purposes: the files hold finite doubles.
    if (ec != std::errc{} || ptr != last) fail("number out of range: " + std::string(first, last));
    return v;
  }

  unsigned parse_hex4() {
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = peek();
      ++m_p;
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
      else fail("invalid \\u escape");
    }
    return v;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string parse_string() {
    expect_char('"');
    std::string out;
    for (;;) {
      const char c = peek();
      ++m_p;
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("unescaped control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      const char e = peek();
      ++m_p;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = parse_hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // a high surrogate must be followed by a low one
            if (m_s.substr(m_p, 2) != "\\u") fail("unpaired surrogate in \\u escape");
            m_p += 2;
            const unsigned lo = parse_hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("invalid low surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("unpaired surrogate in \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default: fail(std::string("invalid escape \\") + e);
      }
    }
  }

  std::string_view m_s;
  std::size_t m_p = 0;
};

}  // namespace detail

/// Parses a JSON document; throws std::runtime_error on malformed input.
inline json parse_json(std::string_view text) { return detail::json_parser(text).parse_document(); }

/// Reads and parses a file; throws std::runtime_error if it cannot be read or is malformed.
inline json load_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("load_json: cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_json(ss.str());
}

/// Loads tests/data/<name> through the compile-time DIFFUSION_TEST_DATA_DIR.
inline json load_test_data(const std::string& name) {
#ifdef DIFFUSION_TEST_DATA_DIR
  return load_json(std::string(DIFFUSION_TEST_DATA_DIR) + "/" + name);
#else
  throw std::runtime_error("load_test_data: DIFFUSION_TEST_DATA_DIR is not defined (" + name + ")");
#endif
}

}  // namespace test_support
