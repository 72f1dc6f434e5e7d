// SPDX-License-Identifier: MIT
// A noise source that replays user-supplied arrays, to reproduce the noise of another implementation
// (a Python reference run) draw for draw.
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../core/errors.hpp"

namespace diffusion {

/// Hands out the supplied arrays in order: the k-th fill_normal or fill_uniform call (together, one
/// sequence) copies array k, converted to the tensor's scalar type, into `out`. Array k must have
/// exactly out.size() elements, laid out as the tensor is (sample-major, batch first).
///
/// Checks (std::invalid_argument, naming the parameter, value and valid range; nothing is consumed
/// when a check fails): an array is left, its size matches, normals are finite, uniforms lie in
/// [0, 1) after conversion to the scalar type (a double just below 1 can round to 1.0f).
/// Checks happen after conversion: a normal of 1e300 is rejected for a float tensor.
class replay_noise {
 public:
  /// \param arrays one array per draw, in the order the sampler consumes draws (see the
  ///               `noise_consumption` notes of the golden files in REFERENCE.md).
  explicit replay_noise(std::vector<std::vector<double>> arrays) : m_arrays(std::move(arrays)) {}

  /// Copies the next array into `out` as standard normal noise.
  template <std::floating_point S>
  void fill_normal(std::span<S> out, std::size_t /*batch*/) {
    const std::vector<double>& a = next_array(out.size());
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!std::isfinite(static_cast<S>(a[i])))
        throw_invalid("replay_noise", element_name(i), a[i], "a number finite in the tensor's scalar type");
    copy_out(a, out);
  }

  /// Copies the next array into `out` as U[0, 1) noise.
  template <std::floating_point S>
  void fill_uniform(std::span<S> out, std::size_t /*batch*/) {
    const std::vector<double>& a = next_array(out.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      const S u = static_cast<S>(a[i]);
      if (!(u >= S(0) && u < S(1)))
        throw_invalid("replay_noise", element_name(i), a[i], "[0, 1) after conversion to the tensor's scalar type");
    }
    copy_out(a, out);
  }

  /// Arrays not yet handed out.
  std::size_t remaining() const noexcept { return m_arrays.size() - m_next; }
  /// The index of the next array (draw) to be handed out.
  std::size_t draw_index() const noexcept { return m_next; }
  /// The number of arrays supplied.
  std::size_t size() const noexcept { return m_arrays.size(); }

 private:
  // Checks without consuming; the fill functions consume only after every check passed.
  const std::vector<double>& next_array(std::size_t n) const {
    if (m_next >= m_arrays.size())
      detail::throw_invalid_parts("replay_noise", {"draw index"}, m_next, {"[0, ", m_arrays.size(), ") (arrays supplied)"});
    const std::vector<double>& a = m_arrays[m_next];
    if (a.size() != n)
      detail::throw_invalid_parts("replay_noise", {"arrays[", m_next, "].size()"}, a.size(),
                                  {n, " (the number of elements of the tensor being filled)"});
    return a;
  }

  std::string element_name(std::size_t i) const {
    return detail::concat({"arrays[", m_next, "][", i, "]"});
  }

  template <class S>
  void copy_out(const std::vector<double>& a, std::span<S> out) {
    for (std::size_t i = 0; i < a.size(); ++i) out[i] = static_cast<S>(a[i]);
    ++m_next;
  }

  std::vector<std::vector<double>> m_arrays;
  std::size_t m_next = 0;
};

}  // namespace diffusion
