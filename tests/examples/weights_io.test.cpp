// SPDX-License-Identifier: MIT
// Weights files of the example network (examples/common/weights_io.hpp): exact round trips, and
// every malformed or truncated file rejected with a clear error before anything is overwritten.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <bit>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "common/mlp.hpp"
#include "common/weights_io.hpp"

#include <diffusion/random/philox_noise.hpp>

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using bytes = std::vector<std::uint8_t>;

const examples::mlp_config tiny{.data_dim = 2, .embed_dim = 4, .hidden = 5, .hidden_layers = 2, .max_frequency = 16.0};

/// A fresh directory under the system's temporary directory, removed at the end of the test.
struct scratch_dir {
  fs::path path;
  explicit scratch_dir(const std::string& name) {
    // The process id keeps concurrent runs of this binary (two build trees) apart.
    path = fs::temp_directory_path() / ("diffusion_weights_test_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~scratch_dir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

bytes read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return bytes(std::istreambuf_iterator<char>(f), {});
}

void write_file(const fs::path& p, const bytes& b) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

template <class S>
bool same_parameters(const examples::mlp<S>& a, const examples::mlp<S>& b) {
  return a.config() == b.config() &&
         std::equal(a.parameters().begin(), a.parameters().end(), b.parameters().begin(), b.parameters().end());
}

/// Sets the CRC-32 at the end of a modified file so that only the modification is wrong.
void reseal(bytes& b) {
  const std::uint32_t c = examples::detail::crc32(std::span<const std::uint8_t>(b).first(b.size() - 4));
  for (int k = 0; k < 4; ++k) b[b.size() - 4 + static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(c >> (8 * k));
}

}  // namespace

TEST_CASE("crc32 gives the standard check value", "[examples][weights]") {
  const std::string s = "123456789";
  const bytes b(s.begin(), s.end());
  REQUIRE(examples::detail::crc32(b) == 0xCBF43926u);
  REQUIRE(examples::detail::crc32({}) == 0u);
}

TEMPLATE_TEST_CASE("saving and loading weights round-trips exactly", "[examples][weights]", float, double) {
  scratch_dir dir("roundtrip");
  examples::mlp<TestType> net(tiny, 42);
  const fs::path file = dir.path / "net.bin";
  examples::save_weights(net, file);
  REQUIRE_FALSE(fs::exists(dir.path / "net.bin.tmp"));
  REQUIRE(fs::file_size(file) == 44 + 8 * 6 + tiny.parameter_count() * sizeof(TestType) + 4);

  const examples::mlp<TestType> loaded = examples::load_weights<TestType>(file);
  REQUIRE(same_parameters(net, loaded));
  // Bit-for-bit: the bytes of a re-save are the bytes of the first save.
  REQUIRE(examples::encode_weights(loaded) == read_file(file));

  // The same outputs.
  using matrix = typename examples::mlp<TestType>::matrix;
  matrix x(3, 2), a(3, 2), b(3, 2);
  x << 0.1, -0.2, 1.5, 0.3, -2.0, 0.7;
  examples::mlp<TestType> copy = loaded;
  net.forward(x, 0.4, a);
  copy.forward(x, 0.4, b);
  REQUIRE(a == b);

  // load_weights_into replaces a network of the same shape.
  examples::mlp<TestType> other(tiny, 7);
  examples::load_weights_into(other, file);
  REQUIRE(same_parameters(other, net));
}

TEST_CASE("saving replaces an existing file whole", "[examples][weights]") {
  scratch_dir dir("replace");
  const fs::path file = dir.path / "net.bin";
  examples::save_weights(examples::mlp<float>(tiny, 1), file);
  const examples::mlp<float> second(tiny, 2);
  examples::save_weights(second, file);
  REQUIRE(same_parameters(examples::load_weights<float>(file), second));
  REQUIRE(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator{}) == 1);
}

TEST_CASE("saving into a missing directory fails cleanly", "[examples][weights]") {
  scratch_dir dir("missing");
  const fs::path file = dir.path / "no" / "such" / "dir" / "net.bin";
  REQUIRE_THROWS_AS(examples::save_weights(examples::mlp<float>(tiny, 1), file), examples::weights_file_error);
  REQUIRE(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator{}) == 0);
}

TEST_CASE("every truncation of a weights file is rejected as truncated", "[examples][weights]") {
  const bytes good = examples::encode_weights(examples::mlp<float>(tiny, 3));
  for (std::size_t n = 0; n < good.size(); ++n) {
    INFO("first " << n << " of " << good.size() << " bytes");
    const bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    // Fewer than 8 bytes cannot even hold the magic.
    if (n < 8)
      REQUIRE_THROWS_WITH(examples::decode_weights<float>(cut, "f"), Contains("not a weights file"));
    else
      REQUIRE_THROWS_WITH(examples::decode_weights<float>(cut, "f"), Contains("truncated"));
  }
}

TEST_CASE("a change to any byte of a weights file is detected", "[examples][weights]") {
  const bytes good = examples::encode_weights(examples::mlp<float>(tiny, 3));
  REQUIRE_NOTHROW(examples::decode_weights<float>(good, "f"));
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (const std::uint8_t flip : {std::uint8_t{0x01}, std::uint8_t{0x80}}) {
      bytes bad = good;
      bad[i] ^= flip;
      INFO("byte " << i << " xor " << int(flip));
      REQUIRE_THROWS_AS(examples::decode_weights<float>(bad, "f"), examples::weights_file_error);
    }
  }
}

TEST_CASE("malformed weights files are rejected with messages that say what is wrong", "[examples][weights]") {
  const bytes good = examples::encode_weights(examples::mlp<float>(tiny, 3));
  auto fails_with = [](bytes b, const std::string& what) {
    REQUIRE_THROWS_WITH(examples::decode_weights<float>(b, "model.bin"), Contains("model.bin") && Contains(what));
  };
  SECTION("magic") {
    bytes b = good;
    b[0] = 'X';
    fails_with(b, "not a weights file");
  }
  SECTION("version") {
    bytes b = good;
    b[8] = 2;
    reseal(b);
    fails_with(b, "format version 2 is not supported");
  }
  SECTION("scalar type") {
    REQUIRE_THROWS_WITH(examples::decode_weights<double>(good, "model.bin"),
                        Contains("4-byte parameters") && Contains("double"));
  }
  SECTION("network shape") {
    bytes b = good;
    b[20] = 3;  // embed_dim = 3: odd
    reseal(b);
    fails_with(b, "invalid network shape");
  }
  SECTION("tensor count") {
    bytes b = good;
    b[40] = 5;
    reseal(b);
    fails_with(b, "holds 5 tensors");
  }
  SECTION("tensor shape") {
    bytes b = good;
    b[44] = 4;  // first weight has 4 rows instead of 5
    reseal(b);
    fails_with(b, "layer 0 has weight 4 x 6");
  }
  SECTION("trailing bytes") {
    bytes b = good;
    b.push_back(0);
    fails_with(b, "1 unexpected bytes");
  }
  SECTION("checksum") {
    bytes b = good;
    b[100] ^= 0x10;
    fails_with(b, "checksum mismatch");
  }
  SECTION("non-finite parameter") {
    bytes b = good;
    const std::uint32_t nan = std::bit_cast<std::uint32_t>(std::numeric_limits<float>::quiet_NaN());
    for (int k = 0; k < 4; ++k) b[92 + static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(nan >> (8 * k));
    reseal(b);
    fails_with(b, "parameter 0 is not finite");
  }
}

TEST_CASE("a failed load leaves the destination network untouched", "[examples][weights]") {
  scratch_dir dir("untouched");
  const examples::mlp<float> original(tiny, 9);
  examples::mlp<float> dest = original;

  const fs::path good = dir.path / "good.bin";
  examples::save_weights(examples::mlp<float>(tiny, 10), good);
  bytes b = read_file(good);

  SECTION("truncated file") {
    b.resize(b.size() - 3);
    write_file(dir.path / "cut.bin", b);
    REQUIRE_THROWS_WITH(examples::load_weights_into(dest, dir.path / "cut.bin"), Contains("truncated"));
  }
  SECTION("corrupt file") {
    b[60] ^= 0x04;
    write_file(dir.path / "bad.bin", b);
    REQUIRE_THROWS_AS(examples::load_weights_into(dest, dir.path / "bad.bin"), examples::weights_file_error);
  }
  SECTION("network of another shape") {
    auto wide = tiny;
    wide.hidden = 7;
    examples::save_weights(examples::mlp<float>(wide, 1), dir.path / "wide.bin");
    REQUIRE_THROWS_WITH(examples::load_weights_into(dest, dir.path / "wide.bin"), Contains("another shape"));
  }
  SECTION("missing file") {
    REQUIRE_THROWS_WITH(examples::load_weights_into(dest, dir.path / "none.bin"), Contains("cannot read"));
  }
  REQUIRE(same_parameters(dest, original));
}
