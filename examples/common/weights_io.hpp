// SPDX-License-Identifier: MIT
// Saving and loading the example network's weights (example code, not library API).
//
// File format "DFMLPWT" version 1, all integers and floats little-endian:
//
//     offset  bytes        field
//     0       8            magic: 'D' 'F' 'M' 'L' 'P' 'W' 'T' 0x1A
//     8       4            format version (1)
//     12      4            scalar size in bytes: 4 (float) or 8 (double)
//     16      4 x 4        mlp_config: data_dim, embed_dim, hidden, hidden_layers
//     32      8            mlp_config: max_frequency (IEEE-754 binary64)
//     40      4            number of tensors, 2 per linear layer (weight, bias)
//     44      8 per tensor rows, cols of each tensor (a bias is out x 1), in parameter order
//     ...     size each    the parameters, in mlp::parameters() order
//     end-4   4            CRC-32 of every byte before it
//
// Loading parses and checks everything (magic, version, scalar size, a valid config, tensor shapes
// that match it, the exact file length, the checksum, finite values) into a new network before the
// destination is touched; saving writes a temporary file next to the target and renames it over
// the target, so a crash mid-write never leaves a half-written weights file behind.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "mlp.hpp"

namespace examples {

/// A weights file that cannot be read or is not a valid weights file for the network type.
class weights_file_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

inline constexpr std::array<std::uint8_t, 8> weights_magic{'D', 'F', 'M', 'L', 'P', 'W', 'T', 0x1A};
inline constexpr std::uint32_t weights_version = 1;
inline constexpr std::size_t weights_fixed_header = 44;  // up to and including the tensor count
inline constexpr std::uintmax_t weights_max_file_size = std::uintmax_t{1} << 31;

/// CRC-32 as zlib and PNG compute it (ISO-HDLC: reflected polynomial 0xEDB88320, initial value and
/// final xor 0xFFFFFFFF; ITU-T V.42). crc32("123456789") = 0xCBF43926.
inline std::uint32_t crc32(std::span<const std::uint8_t> bytes) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (const std::uint8_t b : bytes) c = table[(c ^ b) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

class byte_writer {
 public:
  void bytes(std::span<const std::uint8_t> b) { m_out.insert(m_out.end(), b.begin(), b.end()); }
  void u32(std::uint32_t v) {
    for (int k = 0; k < 4; ++k) m_out.push_back(static_cast<std::uint8_t>(v >> (8 * k)));
  }
  void u64(std::uint64_t v) {
    for (int k = 0; k < 8; ++k) m_out.push_back(static_cast<std::uint8_t>(v >> (8 * k)));
  }
  void f64(double v) { u64(std::bit_cast<std::uint64_t>(v)); }
  template <class S>
  void scalar(S v) {
    if constexpr (sizeof(S) == 4)
      u32(std::bit_cast<std::uint32_t>(v));
    else
      u64(std::bit_cast<std::uint64_t>(v));
  }
  std::vector<std::uint8_t>& data() { return m_out; }

 private:
  std::vector<std::uint8_t> m_out;
};

/// Reads fields in order; the caller has checked that the bytes it reads exist.
class byte_reader {
 public:
  explicit byte_reader(std::span<const std::uint8_t> b) : m_in(b) {}
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) v |= static_cast<std::uint32_t>(m_in[m_pos++]) << (8 * k);
    return v;
  }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int k = 0; k < 8; ++k) v |= static_cast<std::uint64_t>(m_in[m_pos++]) << (8 * k);
    return v;
  }
  double f64() { return std::bit_cast<double>(u64()); }
  void skip(std::size_t n) { m_pos += n; }
  template <class S>
  S scalar() {
    if constexpr (sizeof(S) == 4)
      return std::bit_cast<S>(u32());
    else
      return std::bit_cast<S>(u64());
  }
  std::size_t position() const { return m_pos; }

 private:
  std::span<const std::uint8_t> m_in;
  std::size_t m_pos = 0;
};

[[noreturn]] inline void weights_fail(const std::string& name, const std::string& what) {
  throw weights_file_error("load_weights: " + name + ": " + what);
}

}  // namespace detail

/// The bytes of `net`'s weights file.
template <class S>
std::vector<std::uint8_t> encode_weights(const mlp<S>& net) {
  static_assert(sizeof(S) == 4 || sizeof(S) == 8, "weights files hold float or double parameters");
  const mlp_config& c = net.config();
  detail::byte_writer w;
  w.bytes(detail::weights_magic);
  w.u32(detail::weights_version);
  w.u32(sizeof(S));
  w.u32(static_cast<std::uint32_t>(c.data_dim));
  w.u32(static_cast<std::uint32_t>(c.embed_dim));
  w.u32(static_cast<std::uint32_t>(c.hidden));
  w.u32(static_cast<std::uint32_t>(c.hidden_layers));
  w.f64(c.max_frequency);
  w.u32(static_cast<std::uint32_t>(2 * c.linear_layers()));
  for (std::size_t l = 0; l < c.linear_layers(); ++l) {
    w.u32(static_cast<std::uint32_t>(c.out_features(l)));
    w.u32(static_cast<std::uint32_t>(c.in_features(l)));
    w.u32(static_cast<std::uint32_t>(c.out_features(l)));
    w.u32(1);
  }
  for (const S v : net.parameters()) w.scalar(v);
  w.u32(detail::crc32(w.data()));
  return std::move(w.data());
}

/// A network parsed from the bytes of a weights file; `name` appears in error messages.
/// \throws weights_file_error saying what is wrong (wrong magic, version, scalar type, shapes,
///         truncation or trailing bytes, checksum, non-finite values).
template <class S>
mlp<S> decode_weights(std::span<const std::uint8_t> bytes, const std::string& name = "weights") {
  static_assert(sizeof(S) == 4 || sizeof(S) == 8, "weights files hold float or double parameters");
  using detail::weights_fail;
  const std::size_t size = bytes.size();
  if (size < detail::weights_magic.size() ||
      !std::equal(detail::weights_magic.begin(), detail::weights_magic.end(), bytes.begin()))
    weights_fail(name, "not a weights file (the first 8 bytes are not the magic \"DFMLPWT\\x1a\")");
  if (size < detail::weights_fixed_header)
    weights_fail(name, "truncated: " + std::to_string(size) + " bytes, shorter than the " +
                           std::to_string(detail::weights_fixed_header) + "-byte header");
  detail::byte_reader r(bytes);
  r.skip(detail::weights_magic.size());
  const std::uint32_t version = r.u32();
  if (version != detail::weights_version)
    weights_fail(name, "format version " + std::to_string(version) + " is not supported (this reader knows version " +
                           std::to_string(detail::weights_version) + ")");
  const std::uint32_t scalar_size = r.u32();
  if (scalar_size != sizeof(S))
    weights_fail(name, "holds " + std::to_string(scalar_size) + "-byte parameters, but the network has " +
                           std::to_string(sizeof(S)) + "-byte (" + (sizeof(S) == 4 ? "float" : "double") +
                           ") parameters");
  mlp_config c;
  c.data_dim = r.u32();
  c.embed_dim = r.u32();
  c.hidden = r.u32();
  c.hidden_layers = r.u32();
  c.max_frequency = r.f64();
  try {
    c.validate();
  } catch (const std::invalid_argument& e) {
    weights_fail(name, std::string("invalid network shape: ") + e.what());
  }
  const std::uint32_t tensors = r.u32();
  if (tensors != 2 * c.linear_layers())
    weights_fail(name, "holds " + std::to_string(tensors) + " tensors; a network with " +
                           std::to_string(c.hidden_layers) + " hidden layers has " +
                           std::to_string(2 * c.linear_layers()));
  const std::size_t shapes_end = detail::weights_fixed_header + 8 * std::size_t{tensors};
  const std::size_t expected = shapes_end + c.parameter_count() * sizeof(S) + 4;
  if (size < shapes_end)
    weights_fail(name, "truncated: " + std::to_string(size) + " bytes, expected " + std::to_string(expected));
  for (std::size_t l = 0; l < c.linear_layers(); ++l) {
    const std::uint32_t rows = r.u32(), cols = r.u32(), brows = r.u32(), bcols = r.u32();
    if (rows != c.out_features(l) || cols != c.in_features(l) || brows != c.out_features(l) || bcols != 1)
      weights_fail(name, "layer " + std::to_string(l) + " has weight " + std::to_string(rows) + " x " +
                             std::to_string(cols) + " and bias " + std::to_string(brows) + " x " +
                             std::to_string(bcols) + "; the config says " + std::to_string(c.out_features(l)) +
                             " x " + std::to_string(c.in_features(l)) + " and " +
                             std::to_string(c.out_features(l)) + " x 1");
  }
  if (size < expected)
    weights_fail(name, "truncated: " + std::to_string(size) + " bytes, expected " + std::to_string(expected));
  if (size > expected)
    weights_fail(name, std::to_string(size - expected) + " unexpected bytes after the checksum (file is " +
                           std::to_string(size) + " bytes, expected " + std::to_string(expected) + ")");
  const std::uint32_t stored = [&] {
    detail::byte_reader tail(bytes.subspan(size - 4));
    return tail.u32();
  }();
  const std::uint32_t actual = detail::crc32(bytes.first(size - 4));
  if (stored != actual) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "checksum mismatch (stored CRC-32 %08x, computed %08x): the file is corrupt",
                  stored, actual);
    weights_fail(name, buf);
  }
  std::vector<S> params(c.parameter_count());
  for (std::size_t i = 0; i < params.size(); ++i) {
    params[i] = r.template scalar<S>();
    if (!std::isfinite(params[i]))
      weights_fail(name, "parameter " + std::to_string(i) + " is not finite (" + std::to_string(params[i]) + ")");
  }
  return mlp<S>(c, std::span<const S>(params));
}

/// Writes `net`'s weights to `path`: first to a temporary file in the same directory, then renamed
/// over `path`, so `path` holds either its old contents or the complete new file.
/// \throws weights_file_error if the file cannot be written (the temporary is removed).
template <class S>
void save_weights(const mlp<S>& net, const std::filesystem::path& path) {
  const std::vector<std::uint8_t> bytes = encode_weights(net);
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw weights_file_error("save_weights: cannot create " + tmp.string());
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    f.close();
    if (!f) {
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      throw weights_file_error("save_weights: writing " + tmp.string() + " failed");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw weights_file_error("save_weights: cannot rename " + tmp.string() + " to " + path.string() + ": " +
                             ec.message());
  }
}

/// Reads the network stored in `path`.
/// \throws weights_file_error if the file cannot be read or is not a valid weights file.
template <class S>
mlp<S> load_weights(const std::filesystem::path& path) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) throw weights_file_error("load_weights: " + path.string() + ": cannot read: " + ec.message());
  if (size > detail::weights_max_file_size)
    detail::weights_fail(path.string(), "is " + std::to_string(size) + " bytes, more than any weights file");
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  std::ifstream f(path, std::ios::binary);
  if (!f.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size())))
    throw weights_file_error("load_weights: " + path.string() + ": cannot read");
  return decode_weights<S>(bytes, path.string());
}

/// Replaces `net` by the network stored in `path`, which must have the same config. The file is
/// parsed and checked completely first: on any error `net` is unchanged.
/// \throws weights_file_error as load_weights, or if the file's config differs from net's.
template <class S>
void load_weights_into(mlp<S>& net, const std::filesystem::path& path) {
  mlp<S> loaded = load_weights<S>(path);
  if (!(loaded.config() == net.config()))
    detail::weights_fail(path.string(), "holds a network of another shape than the destination's");
  net = std::move(loaded);
}

}  // namespace examples
