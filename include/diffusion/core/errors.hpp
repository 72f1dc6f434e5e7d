// SPDX-License-Identifier: MIT
// Runtime input checks: every rejection names the parameter, the value and the valid range.
#pragma once

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace diffusion {

namespace detail {

template <class T>
std::string format_value(const T& v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

}  // namespace detail

/// Throws std::invalid_argument with the message
/// "<where>: <parameter> = <value> is invalid; valid range: <valid_range>".
template <class T>
[[noreturn]] void throw_invalid(std::string_view where, std::string_view parameter, const T& value,
                                std::string_view valid_range) {
  std::string msg;
  msg.append(where).append(": ").append(parameter).append(" = ").append(detail::format_value(value));
  msg.append(" is invalid; valid range: ").append(valid_range);
  throw std::invalid_argument(msg);
}

/// Checks `ok`; on failure throws as throw_invalid does. Its arguments are evaluated eagerly: in
/// code that runs every sampling step, write `if (!ok) throw_invalid(...)` when the range is a
/// built string, so that the step loop never allocates (tests/sampler/no_allocation.test.cpp).
template <class T>
void require(bool ok, std::string_view where, std::string_view parameter, const T& value,
             std::string_view valid_range) {
  if (!ok) throw_invalid(where, parameter, value, valid_range);
}

/// Checks that `value` is finite.
inline void require_finite(double value, std::string_view where, std::string_view parameter) {
  require(std::isfinite(value), where, parameter, value, "a finite number");
}

}  // namespace diffusion
