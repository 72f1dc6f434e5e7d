// SPDX-License-Identifier: MIT
// The sliced Wasserstein distance between two point clouds (example code, not library API): how the
// examples measure sample quality against held-out data.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <diffusion/core/errors.hpp>
#include <diffusion/random/philox_noise.hpp>

namespace examples {

struct sliced_wasserstein_options {
  std::size_t projections = 256;  ///< number of random directions
  std::uint64_t seed = 20240601;  ///< Philox seed of the directions (fixed: every call uses the same)
  int order = 1;                  ///< p: 1 (SW_1, in data units) or 2 (SW_2)
};

/// The sliced p-Wasserstein distance (Rabin, Peyre, Delon & Bernot 2011, Sec. 2.3; Bonneel et al.
/// 2015, Eq. 3) between the empirical measures of two equally sized point clouds in R^D:
///
///     SW_p(a, b) = ( (1/K) sum_k W_p^p(<theta_k, a>, <theta_k, b>) )^(1/p),
///
/// theta_k uniform on the unit sphere (normalised Gaussian vectors from a fixed Philox seed), and
/// the 1-D distance between n-point empirical measures W_p^p = (1/n) sum_i |u_(i) - v_(i)|^p over
/// the sorted projections (the monotone coupling is optimal in 1-D).
///
/// \param a, b  n points each, interleaved (x_1, ..., x_D) per point; any floating-point type.
/// \throws std::invalid_argument if dim = 0, the sizes are not equal multiples of dim, there are
///         no points, or the options are out of range.
template <class A, class B>
double sliced_wasserstein(std::span<const A> a, std::span<const B> b, std::size_t dim,
                          const sliced_wasserstein_options& options = {}) {
  constexpr const char* where = "sliced_wasserstein";
  diffusion::require(dim >= 1, where, "dim", dim, "at least 1");
  diffusion::require(a.size() % dim == 0 && !a.empty(), where, "a.size()", a.size(),
                     "a positive multiple of dim = " + std::to_string(dim));
  diffusion::require(b.size() == a.size(), where, "b.size()", b.size(),
                     "a.size() = " + std::to_string(a.size()) + " (equal numbers of points)");
  diffusion::require(options.projections >= 1, where, "projections", options.projections, "at least 1");
  diffusion::require(options.order == 1 || options.order == 2, where, "order", options.order, "1 or 2");

  const std::size_t n = a.size() / dim;
  std::vector<double> theta(options.projections * dim);
  diffusion::philox_noise(options.seed).fill_normal(std::span<double>(theta), options.projections);
  std::vector<double> pa(n), pb(n);
  double total = 0.0;
  for (std::size_t k = 0; k < options.projections; ++k) {
    double* t = &theta[k * dim];
    double norm = 0.0;
    for (std::size_t j = 0; j < dim; ++j) norm += t[j] * t[j];
    norm = std::sqrt(norm);
    for (std::size_t j = 0; j < dim; ++j) t[j] /= norm;
    for (std::size_t i = 0; i < n; ++i) {
      double sa = 0.0, sb = 0.0;
      for (std::size_t j = 0; j < dim; ++j) {
        sa += t[j] * static_cast<double>(a[i * dim + j]);
        sb += t[j] * static_cast<double>(b[i * dim + j]);
      }
      pa[i] = sa;
      pb[i] = sb;
    }
    std::sort(pa.begin(), pa.end());
    std::sort(pb.begin(), pb.end());
    double w = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      const double e = std::abs(pa[i] - pb[i]);
      w += options.order == 1 ? e : e * e;
    }
    total += w / static_cast<double>(n);
  }
  const double mean = total / static_cast<double>(options.projections);
  return options.order == 1 ? mean : std::sqrt(mean);
}

/// The same for two std::vectors (or anything convertible to spans).
template <class A, class B>
double sliced_wasserstein(const std::vector<A>& a, const std::vector<B>& b, std::size_t dim,
                          const sliced_wasserstein_options& options = {}) {
  return sliced_wasserstein(std::span<const A>(a), std::span<const B>(b), dim, options);
}

}  // namespace examples
