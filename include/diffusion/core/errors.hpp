// SPDX-License-Identifier: MIT
// Runtime input checks: every rejection names the parameter, the value and the valid range.
//
// The failure paths are out of line and cold ([[gnu::cold, gnu::noinline]] non-template functions):
// a check costs its comparison and a call, a passing check builds no string, and the compiler
// builds each kind of message once per translation unit instead of inlining std::string code at
// every call site (issue #5: compile cost).
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace diffusion {

namespace detail {

/// `os << v` with precision 17, so that doubles round-trip. The conversions are the stream's own,
/// compiled in the standard library: no formatting code is inlined into the library's headers.
template <class V>
[[gnu::cold, gnu::noinline]] std::string stream_format(const V& v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

/// Integers written as numbers; bool and the character types are written as a stream writes them.
template <class T>
concept plain_integer = std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char> &&
                        !std::same_as<T, signed char> && !std::same_as<T, unsigned char> &&
                        !std::same_as<T, wchar_t> && !std::same_as<T, char8_t> && !std::same_as<T, char16_t> &&
                        !std::same_as<T, char32_t>;

/// A value as an error message writes it: `os << v` with precision 17 (doubles round-trip). Floats,
/// doubles and integers share three instantiations (double, long long, unsigned long long): a
/// stream writes a float as the double it converts to, and an integer the same at any width.
template <class T>
std::string format_value(const T& v) {
  if constexpr (std::same_as<T, double> || std::same_as<T, float>)
    return stream_format<double>(v);
  else if constexpr (plain_integer<T> && std::is_signed_v<T>)
    return stream_format<long long>(v);
  else if constexpr (plain_integer<T>)
    return stream_format<unsigned long long>(v);
  else
    return stream_format(v);
}

/// A piece of an error message: text, or a number written as format_value writes it. A message is
/// assembled from its parts only when a check fails.
class message_part {
 public:
  message_part(std::string_view text) noexcept : m_kind(kind::text), m_text(text) {}
  message_part(const char* text) noexcept : m_kind(kind::text), m_text(text) {}
  message_part(const std::string& text) noexcept : m_kind(kind::text), m_text(text) {}
  template <class F>
    requires(std::same_as<F, double> || std::same_as<F, float>)
  message_part(F v) noexcept : m_kind(kind::real), m_real(v) {}
  template <plain_integer I>
  message_part(I v) noexcept {
    if constexpr (std::is_signed_v<I>) {
      m_kind = kind::signed_integer;
      m_signed = v;
    } else {
      m_kind = kind::unsigned_integer;
      m_unsigned = v;
    }
  }

  [[gnu::cold, gnu::noinline]] void append_to(std::string& s) const {
    switch (m_kind) {
      case kind::text: s.append(m_text); break;
      case kind::real: s.append(stream_format(m_real)); break;
      case kind::signed_integer: s.append(stream_format(m_signed)); break;
      case kind::unsigned_integer: s.append(stream_format(m_unsigned)); break;
    }
  }

 private:
  enum class kind : unsigned char { text, real, signed_integer, unsigned_integer };
  kind m_kind;
  union {
    std::string_view m_text;
    double m_real;
    long long m_signed;
    unsigned long long m_unsigned;
  };
};

/// The parts of one message, concatenated: {"t[", i, "]"}.
using message = std::initializer_list<message_part>;

[[gnu::cold, gnu::noinline]] inline std::string concat(message parts) {
  std::string s;
  for (const message_part& p : parts) p.append_to(s);
  return s;
}

/// throw_invalid with a parameter name and a valid range assembled from parts, e.g.
///   throw_invalid_parts("time_grid", {"t[", i, "]"}, t[i], {"strictly below t[", i - 1, "]"});
[[noreturn, gnu::cold, gnu::noinline]] inline void throw_invalid_parts(std::string_view where, message parameter,
                                                                       message_part value, message valid_range) {
  std::string msg(where);
  msg.append(": ");
  for (const message_part& p : parameter) p.append_to(msg);
  msg.append(" = ");
  value.append_to(msg);
  msg.append(" is invalid; valid range: ");
  for (const message_part& p : valid_range) p.append_to(msg);
  throw std::invalid_argument(msg);
}

/// The bounds of a clamp: lo <= hi, neither NaN; the message blames the bound that is NaN, or lo.
template <class S>
void check_clamp_bounds(std::string_view where, S lo, S hi) {
  if (lo <= hi) [[likely]]
    return;
  if (std::isnan(hi) && !std::isnan(lo)) throw_invalid_parts(where, {"hi"}, hi, {"[lo, inf] with lo = ", lo});
  throw_invalid_parts(where, {"lo"}, lo, {"[-inf, hi] with hi = ", hi});
}

/// lincomb_per_sample's coefficient vectors: one coefficient per batch sample.
inline void check_coefficient_count(std::string_view where, std::string_view parameter, std::size_t count,
                                    std::size_t batch) {
  if (count != batch) [[unlikely]]
    throw_invalid_parts(where, {parameter}, count, {"the batch size, ", batch});
}

}  // namespace detail

/// Throws std::invalid_argument with the message
/// "<where>: <parameter> = <value> is invalid; valid range: <valid_range>".
template <class T>
[[noreturn]] void throw_invalid(std::string_view where, std::string_view parameter, const T& value,
                                std::string_view valid_range) {
  if constexpr (std::is_constructible_v<detail::message_part, const T&>)
    detail::throw_invalid_parts(where, {parameter}, value, {valid_range});
  else
    detail::throw_invalid_parts(where, {parameter}, detail::format_value(value), {valid_range});
}

/// Checks `ok`; on failure throws as throw_invalid does. Its arguments are evaluated eagerly: where
/// the range (or the parameter) is a built string, write `if (!ok) detail::throw_invalid_parts(...)`
/// instead, so that a passing check builds no string (and the step loop never allocates,
/// tests/sampler/no_allocation.test.cpp).
template <class T>
void require(bool ok, std::string_view where, std::string_view parameter, const T& value,
             std::string_view valid_range) {
  if (!ok) [[unlikely]]
    throw_invalid(where, parameter, value, valid_range);
}

/// Checks that `value` is finite.
inline void require_finite(double value, std::string_view where, std::string_view parameter) {
  require(std::isfinite(value), where, parameter, value, "a finite number");
}

}  // namespace diffusion
