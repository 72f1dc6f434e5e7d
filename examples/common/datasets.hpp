// SPDX-License-Identifier: MIT
// The 2-D toy data sets of the examples (example code, not library API): two moons, a swiss roll
// and the 3-component Gaussian mixture of the golden files (REFERENCE.md), all drawn from a
// counter-based Philox stream, so a (data set, n, seed) triple gives the same points everywhere.
// All three fit in the window [-4, 4] x [-4, 4].
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <span>
#include <string_view>
#include <vector>

#include <diffusion/backend/eigen.hpp>
#include <diffusion/model/gaussian_mixture.hpp>
#include <diffusion/random/philox_noise.hpp>

namespace examples {

enum class dataset { moons, swiss_roll, mixture };

inline constexpr std::array<dataset, 3> all_datasets{dataset::moons, dataset::swiss_roll, dataset::mixture};

constexpr std::string_view name(dataset d) {
  switch (d) {
    case dataset::moons: return "moons";
    case dataset::swiss_roll: return "swiss_roll";
    case dataset::mixture: return "mixture";
  }
  return "?";
}

/// The mixture of the golden files: weights (0.5, 0.3, 0.2), means (-2, 0), (2, 1), (0, -2.5),
/// isotropic component std 0.3 (REFERENCE.md, golden/).
inline diffusion::gaussian_mixture golden_mixture() {
  return diffusion::gaussian_mixture({0.5, 0.3, 0.2}, {{-2.0, 0.0}, {2.0, 1.0}, {0.0, -2.5}}, {0.3, 0.3, 0.3});
}

namespace detail {

/// Uniforms (n x k) and standard normals (n x 2) from one Philox stream: draw 0 and draw 1.
struct draws {
  std::vector<double> u, z;
  draws(std::size_t n, std::size_t k, std::uint64_t seed) : u(n * k), z(n * 2) {
    diffusion::philox_noise noise(seed);
    noise.fill_uniform(std::span<double>(u), 1);
    noise.fill_normal(std::span<double>(z), 1);
  }
};

/// Two interleaving half circles, as scikit-learn's make_moons (outer: (cos a, sin a); inner:
/// (1 - cos a, 1/2 - sin a), a in [0, pi]) but with a ~ U[0, pi] and the moon chosen with
/// probability 1/2, plus N(0, 0.05^2) noise; then centred and scaled by 2.
inline std::vector<double> moons(std::size_t n, std::uint64_t seed) {
  const draws d(n, 2, seed);
  std::vector<double> xy(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    const double a = std::numbers::pi * d.u[2 * i];
    const bool inner = d.u[2 * i + 1] < 0.5;
    double x = inner ? 1.0 - std::cos(a) : std::cos(a);
    double y = inner ? 0.5 - std::sin(a) : std::sin(a);
    x += 0.05 * d.z[2 * i];
    y += 0.05 * d.z[2 * i + 1];
    xy[2 * i] = 2.0 * (x - 0.5);
    xy[2 * i + 1] = 2.0 * (y - 0.25);
  }
  return xy;
}

/// The 2-D swiss roll of scikit-learn's make_swiss_roll (t = 1.5 pi (1 + 2u), point t (cos t,
/// sin t)), scaled by 1/4, plus N(0, 0.1^2) noise.
inline std::vector<double> swiss_roll(std::size_t n, std::uint64_t seed) {
  const draws d(n, 1, seed);
  std::vector<double> xy(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    const double t = 1.5 * std::numbers::pi * (1.0 + 2.0 * d.u[i]);
    xy[2 * i] = 0.25 * t * std::cos(t) + 0.1 * d.z[2 * i];
    xy[2 * i + 1] = 0.25 * t * std::sin(t) + 0.1 * d.z[2 * i + 1];
  }
  return xy;
}

/// Exact draws of golden_mixture(), through the library's sampler of the mixture.
inline std::vector<double> mixture(std::size_t n, std::uint64_t seed) {
  Eigen::Tensor<double, 2, Eigen::RowMajor> out(static_cast<Eigen::Index>(n), 2);
  diffusion::philox_noise noise(seed);
  golden_mixture().sample(noise, out);
  return std::vector<double>(out.data(), out.data() + out.size());
}

}  // namespace detail

/// n points of data set `d` as interleaved (x, y) pairs, a pure function of (d, n, seed).
inline std::vector<double> make_dataset(dataset d, std::size_t n, std::uint64_t seed) {
  switch (d) {
    case dataset::moons: return detail::moons(n, seed);
    case dataset::swiss_roll: return detail::swiss_roll(n, seed);
    case dataset::mixture: return detail::mixture(n, seed);
  }
  return {};
}

/// The root-mean-square distance of the points from their mean, sqrt(E|x - E x|^2 / D): the
/// "sigma_data" of the input scaling (Karras et al. 2022, Sec. 5, Table 1).
inline double rms_spread(std::span<const double> xy, std::size_t dim = 2) {
  const std::size_t n = xy.size() / dim;
  std::vector<double> mean(dim, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < dim; ++j) mean[j] += xy[i * dim + j];
  for (double& m : mean) m /= static_cast<double>(n);
  double ss = 0.0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < dim; ++j) ss += (xy[i * dim + j] - mean[j]) * (xy[i * dim + j] - mean[j]);
  return std::sqrt(ss / static_cast<double>(n * dim));
}

}  // namespace examples
