// SPDX-License-Identifier: MIT
// A noise source over any standard uniform random bit generator (std::mt19937, pcg, ...).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/errors.hpp"
#include "normal.hpp"

namespace diffusion {

/// Adapts a uniform random bit generator to the noise_source concept, in the spirit of
/// Boost.Odeint's stochastic example where the engine lives in user code.
///
/// Ownership: engine_noise<E> owns a copy of the engine; engine_noise<E&> (what
/// `engine_noise{std::ref(e)}` deduces) holds a reference, and the engine must outlive the adapter.
///
/// Values: every 32-bit word is taken from the engine in order (for an engine of at least 32 bits,
/// the low 32 bits of one output; for a narrower engine, ceil(32 / bits) outputs concatenated), and
/// normals come from the library's Box-Muller transform on consecutive word pairs (box_muller), never
/// from std::normal_distribution, whose algorithm is implementation-defined. A uniform takes one
/// word. A draw of n normals consumes 2 * ceil(n / 2) words (for odd n the last sine is dropped).
///
/// Reproducibility: the same engine type, seed and sequence of calls give the same values on every
/// standard library (the standard fixes the engines' outputs). Unlike philox_noise, the values
/// depend on the order of generation, so a draw cannot be split across threads, and the noise of a
/// sample depends on the batch size.
///
/// \tparam Engine a std::uniform_random_bit_generator whose range max() - min() + 1 is a power of
///                two, or an lvalue reference to one.
template <class Engine>
class engine_noise {
 public:
  using engine_type = std::remove_reference_t<Engine>;
  static_assert(std::uniform_random_bit_generator<engine_type>,
                "diffusion::engine_noise<E>: E must be a uniform random bit generator such as std::mt19937");

 private:
  using result_type = typename engine_type::result_type;
  static constexpr result_type range_minus_one = engine_type::max() - engine_type::min();
  static constexpr int engine_bits = std::bit_width(range_minus_one);

 public:
  static_assert(range_minus_one != 0 && (range_minus_one & (range_minus_one + 1)) == 0,
                "diffusion::engine_noise<E>: the range max() - min() + 1 of E must be a power of two (as for "
                "std::mt19937, std::mt19937_64, std::ranlux24); wrap other engines (std::minstd_rand, "
                "std::knuth_b) in std::independent_bits_engine<E, 32, std::uint32_t>");

  /// Takes the engine (by value, or by reference for engine_noise<E&>).
  explicit engine_noise(Engine engine) : m_engine(static_cast<Engine&&>(engine)) {}

  /// One draw of standard normals into `out` (`batch` samples of out.size()/batch elements; batch
  /// only has to divide out.size(), the values do not depend on it).
  template <std::floating_point S>
  void fill_normal(std::span<S> out, std::size_t batch) {
    check_batch(out.size(), batch);
    fill(out, 2, [](std::span<const std::uint32_t> w, std::span<S> v) { box_muller_block<S>(w, v); });
  }

  /// One draw of uniforms in [0, 1) into `out`, one word per element.
  template <std::floating_point S>
  void fill_uniform(std::span<S> out, std::size_t batch) {
    check_batch(out.size(), batch);
    fill(out, 1, [](std::span<const std::uint32_t> w, std::span<S> v) { uniform_block<S>(w, v); });
  }

  /// The next 32-bit word from the engine (what every value is made of).
  std::uint32_t next_word() {
    if constexpr (engine_bits >= 32) {
      return static_cast<std::uint32_t>(m_engine() - engine_type::min());
    } else {
      std::uint32_t w = 0;
      for (int got = 0; got < 32; got += engine_bits)
        w = (w << engine_bits) | static_cast<std::uint32_t>(m_engine() - engine_type::min());
      return w;
    }
  }

  engine_type& engine() noexcept { return m_engine; }
  const engine_type& engine() const noexcept { return m_engine; }

 private:
  static constexpr std::size_t chunk = 256;  // words per chunk (even)

  // Words are taken in chunks and transformed with the same block kernels as philox_noise. The kernel
  // maps groups of `group` words to `group` values; a trailing partial group (an odd normal) still
  // consumes a whole group.
  template <class S, class Kernel>
  void fill(std::span<S> out, std::size_t group, Kernel kernel) {
    std::array<std::uint32_t, chunk> words;
    std::array<S, chunk> values;
    for (std::size_t pos = 0; pos < out.size(); pos += chunk) {
      const std::size_t n = std::min(chunk, out.size() - pos);
      const std::size_t n_words = (n + group - 1) / group * group;
      for (std::size_t i = 0; i < n_words; ++i) words[i] = next_word();
      kernel(std::span<const std::uint32_t>(words.data(), n_words), std::span<S>(values.data(), n_words));
      std::copy(values.data(), values.data() + n, out.data() + pos);
    }
  }

  // Messages are built only on failure: a fill allocates nothing.
  static void check_batch(std::size_t size, std::size_t batch) {
    if (batch == 0 && size != 0)
      throw_invalid("engine_noise", "batch", batch, "at least 1 (0 only for an empty tensor)");
    if (batch != 0 && size % batch != 0)
      detail::throw_invalid_parts("engine_noise", {"batch"}, batch, {"a divisor of out.size() = ", size});
  }

  Engine m_engine;
};

/// `engine_noise{std::ref(e)}` holds a reference to e.
template <class E>
engine_noise(std::reference_wrapper<E>) -> engine_noise<E&>;

}  // namespace diffusion
