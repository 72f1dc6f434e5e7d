// SPDX-License-Identifier: MIT
// The default noise source: counter-based Philox4x32-10, where every element is a pure function of
// (seed, stream, draw, index), so noise does not depend on thread count, split or backend.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>

#include "../core/errors.hpp"
#include "normal.hpp"
#include "philox.hpp"

namespace diffusion {

/// Counter-based noise (DESIGN.md, Noise). Element j of draw k of stream s is a pure function of
/// (seed, s, k, j):
///
///     key     = (seed mod 2^32, seed / 2^32)
///     counter = (floor(j/4) mod 2^32, floor(j/4) / 2^32, k, s)
///     words   = philox4x32_10(counter, key)
///     normal  element j: Box-Muller of words (0, 1) for j%4 in {0, 1}, of words (2, 3) for
///             j%4 in {2, 3}; cos for even j, sin for odd j (see box_muller)
///     uniform element j: uniform_from_word(words[j % 4])
///
/// Without per-sample streams, j is the flat index into the tensor and s = stream. With per-sample
/// streams, sample b of the batch uses stream (stream + b) and j is the index within the sample, so
/// a sample's noise is the same whatever the batch size (batch-size invariance); give two sources
/// stream bases further apart than the largest batch so that their streams do not overlap.
///
/// Each fill_normal / fill_uniform call is one draw and advances the draw index by one; normals and
/// uniforms share that index. A threaded backend takes the index with next_draw() and calls the
/// const fill_normal_range on disjoint ranges: the result is bit-identical whatever the split.
///
/// \see Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3" (counter-based
///      generation: a keyed bijection applied to a counter).
class philox_noise {
 public:
  /// \param seed                 the 64-bit key of the Philox bijection.
  /// \param stream               the stream index (counter word 3); independent sources with the
  ///                             same seed use different streams.
  /// \param per_sample_streams   give sample b of the batch the stream (stream + b).
  explicit philox_noise(std::uint64_t seed, std::uint32_t stream = 0, bool per_sample_streams = false) noexcept
      : m_seed(seed),
        m_key{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)},
        m_stream(stream),
        m_per_sample_streams(per_sample_streams) {}

  /// One draw of standard normals into `out` (`batch` samples of out.size()/batch elements).
  /// Throws std::invalid_argument (and does not advance) if batch does not divide out.size().
  template <std::floating_point S>
  void fill_normal(std::span<S> out, std::size_t batch) {
    fill_normal_range(out, batch, m_draw, 0, out.size());
    ++m_draw;
  }

  /// One draw of uniforms in [0, 1) into `out`; shares the draw index with fill_normal.
  template <std::floating_point S>
  void fill_uniform(std::span<S> out, std::size_t batch) {
    fill_uniform_range(out, batch, m_draw, 0, out.size());
    ++m_draw;
  }

  /// Writes out[begin, end) exactly as a whole fill_normal of draw `draw` would, and nothing else.
  /// A pure function of (seed, stream, per-sample flag, draw, out.size(), batch, index): threads
  /// may call it concurrently on disjoint ranges of the same tensor.
  template <std::floating_point S>
  void fill_normal_range(std::span<S> out, std::size_t batch, std::uint64_t draw, std::size_t begin,
                         std::size_t end) const {
    validate(out.size(), batch, draw, begin, end, range_names);
    fill_range<normal_kind>(out.size(), batch, draw, begin, end, out.data() + begin);
  }

  /// Writes elements [begin, begin + dst.size()) of draw `draw` of a tensor of `size` elements in
  /// `batch` samples to dst, the values fill_normal_range would write there: a backend that fuses
  /// noise into an update generates it block by block into a small buffer with this.
  template <std::floating_point S>
  void write_normal_range(std::size_t size, std::size_t batch, std::uint64_t draw, std::size_t begin,
                          std::span<S> dst) const {
    validate(size, batch, draw, begin, begin + dst.size(), block_names);
    fill_range<normal_kind>(size, batch, draw, begin, begin + dst.size(), dst.data());
  }

  /// Writes out[begin, end) exactly as a whole fill_uniform of draw `draw` would.
  template <std::floating_point S>
  void fill_uniform_range(std::span<S> out, std::size_t batch, std::uint64_t draw, std::size_t begin,
                          std::size_t end) const {
    validate(out.size(), batch, draw, begin, end, range_names);
    fill_range<uniform_kind>(out.size(), batch, draw, begin, end, out.data() + begin);
  }

  /// Returns the current draw index and advances it: a backend that fills on its own (threaded,
  /// fused) takes its draw here and then calls fill_normal_range.
  std::uint64_t next_draw() noexcept { return m_draw++; }
  /// The index of the next draw.
  std::uint64_t draw_index() const noexcept { return m_draw; }
  std::uint64_t seed() const noexcept { return m_seed; }
  std::uint32_t stream() const noexcept { return m_stream; }
  bool per_sample_streams() const noexcept { return m_per_sample_streams; }

 private:
  enum class value_kind { normal, uniform };
  static constexpr value_kind normal_kind = value_kind::normal;
  static constexpr value_kind uniform_kind = value_kind::uniform;

  // Counters per chunk: the words and values of one chunk live on the stack (3 KiB for double).
  // 256 elements is in the flat part of the block-size curve (PERF-BASELINE.md: 256-1024 equal).
  static constexpr std::size_t chunk_counters = 64;
  // Up to this many counters in a chunk are transformed pair by pair: a whole chunk's vector
  // transform (128 pairs) costs about what 8 pairs cost one at a time.
  static constexpr std::size_t few_counters = 4;

  // Elements [begin, end) of a tensor of `size` elements in `batch` samples to dst[0, end - begin)
  // (arguments validated by the caller).
  template <value_kind Kind, class S>
  void fill_range(std::size_t size, std::size_t batch, std::uint64_t draw, std::size_t begin, std::size_t end,
                  S* dst) const {
    const detail::philox_round_keys keys(m_key);
    if (!m_per_sample_streams) {
      generate<Kind>(keys, draw, m_stream, begin, end, dst);
      return;
    }
    if (begin == end) return;
    const std::size_t d = size / batch;  // validate() made batch > 0 since the tensor is not empty
    for (std::size_t b = begin / d; b * d < end; ++b) {
      const std::size_t lo = std::max(begin, b * d);
      const std::size_t hi = std::min(end, (b + 1) * d);
      generate<Kind>(keys, draw, static_cast<std::uint32_t>(m_stream + b), lo - b * d, hi - b * d, dst + (lo - begin));
    }
  }

  // Elements [lo, hi) of (draw, stream) into dst[0, hi - lo). A chunk is generated whole (Philox
  // words for its counters, then the transform of all of them: loops of fixed length, which
  // vectorise) and the elements outside [lo, hi) are discarded, so a split inside a chunk changes
  // nothing. Normals: the words are laid out [w0 | w2 | w1 | w3] so that the radius words (0, 2)
  // and the angle words (1, 3) of all counters are two arrays, and element 4c + q is cos or sin of
  // pair q / 2 (see the class comment).
  template <value_kind Kind, class S>
  static void generate(const detail::philox_round_keys& keys, std::uint64_t draw, std::uint32_t stream,
                       std::uint64_t lo, std::uint64_t hi, S* dst) {
    constexpr std::size_t C = chunk_counters;
    alignas(64) std::array<std::uint32_t, 4 * C> words;  // the vector transform's unused tail is zeroed below
    alignas(64) std::array<S, 4 * C> values;
    std::uint64_t c = lo / 4;
    const std::uint64_t c_end = (hi + 3) / 4;
    while (c < c_end) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(C, c_end - c));
      std::uint32_t* w = words.data();
      detail::philox4x32_10_blocks(c, static_cast<std::uint32_t>(draw), stream, keys, n, w, w + 2 * C, w + C,
                                   w + 3 * C);
      const std::uint64_t e0 = std::max(lo, 4 * c);
      const std::uint64_t e1 = std::min(hi, 4 * (c + n));
      // A chunk that lies wholly inside [lo, hi) goes straight to dst.
      S* out = e0 == 4 * c && e1 == 4 * (c + C) ? dst + (e0 - lo) : values.data();
      if constexpr (Kind == value_kind::normal) {
        if (n <= few_counters) {
          // A few counters (the samples of a [B, 1] tensor with per-sample streams, a short range):
          // the transform of their pairs alone, the same function, so the same bits.
          for (std::size_t i = 0; i < n; ++i) {
            const normal_pair<S> z0 = box_muller<S>(w[i], w[2 * C + i]);
            const normal_pair<S> z1 = box_muller<S>(w[C + i], w[3 * C + i]);
            out[4 * i] = z0.first;
            out[4 * i + 1] = z0.second;
            out[4 * i + 2] = z1.first;
            out[4 * i + 3] = z1.second;
          }
        } else {
          zero_unused_words(w, n);
          std::array<S, 2 * C> cos_part, sin_part;
          detail::box_muller_arrays<S, 2 * C>(w, w + 2 * C, cos_part.data(), sin_part.data());
          for (std::size_t i = 0; i < C; ++i) {
            out[4 * i] = cos_part[i];
            out[4 * i + 1] = sin_part[i];
            out[4 * i + 2] = cos_part[C + i];
            out[4 * i + 3] = sin_part[C + i];
          }
        }
      } else {
        zero_unused_words(w, n);
        for (std::size_t i = 0; i < C; ++i) {
          out[4 * i] = uniform_from_word<S>(w[i]);
          out[4 * i + 1] = uniform_from_word<S>(w[2 * C + i]);
          out[4 * i + 2] = uniform_from_word<S>(w[C + i]);
          out[4 * i + 3] = uniform_from_word<S>(w[3 * C + i]);
        }
      }
      if (out == values.data()) std::copy(values.data() + (e0 - 4 * c), values.data() + (e1 - 4 * c), dst + (e0 - lo));
      c += n;
    }
  }

  // What validate() calls the size and the ends of the range in its messages: the parameters of
  // the function that was called.
  struct argument_names {
    std::string_view size, begin, end;
  };
  static constexpr argument_names range_names{"out.size()", "begin", "end"};
  static constexpr argument_names block_names{"size", "begin", "begin + dst.size()"};

  // The loops over a whole chunk (fixed length, so that they vectorise in any build) read all
  // chunk_counters counters' words; in a short last chunk those past n are set to zero, and their
  // values are dropped.
  static void zero_unused_words(std::uint32_t* w, std::size_t n) {
    constexpr std::size_t C = chunk_counters;
    if (n < C)
      for (std::uint32_t* part : {w, w + C, w + 2 * C, w + 3 * C}) std::fill(part + n, part + C, 0u);
  }

  // Messages are built only on failure: a fill allocates nothing. An empty tensor draws nothing,
  // so only the range is checked for it (whatever the stream: a [4, 0] tensor is fine at any).
  void validate(std::size_t size, std::size_t batch, std::uint64_t draw, std::size_t begin, std::size_t end,
                const argument_names& names) const {
    constexpr std::uint64_t max_word = std::numeric_limits<std::uint32_t>::max();
    if (batch == 0 && size != 0)
      throw_invalid("philox_noise", "batch", batch, "at least 1 (0 only for an empty tensor)");
    if (batch != 0 && size % batch != 0)
      detail::throw_invalid_parts("philox_noise", {"batch"}, batch, {"a divisor of ", names.size, " = ", size});
    if (draw > max_word) throw_invalid("philox_noise", "draw index", draw, "[0, 2^32)");
    if (begin > size)
      detail::throw_invalid_parts("philox_noise", {names.begin}, begin, {"[0, ", names.size, "] = [0, ", size, "]"});
    if (end < begin || end > size)
      detail::throw_invalid_parts("philox_noise", {names.end}, end,
                                  {"[", names.begin, ", ", names.size, "] = [", begin, ", ", size, "]"});
    if (size != 0 && m_per_sample_streams && m_stream + std::uint64_t{batch} - 1 > max_word)
      throw_invalid("philox_noise", "stream + batch - 1", m_stream + std::uint64_t{batch} - 1,
                    "[0, 2^32) (per-sample streams are 32-bit)");
  }

  std::uint64_t m_seed;
  philox_key m_key;
  std::uint32_t m_stream;
  bool m_per_sample_streams;
  std::uint64_t m_draw = 0;
};

}  // namespace diffusion
