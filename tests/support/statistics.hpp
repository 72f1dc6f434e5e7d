// SPDX-License-Identifier: MIT
// Sample statistics with their standard errors, and the checks built on them: statistical tests
// whose tolerances come from the sample size (5 standard errors at a fixed seed).
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include <diffusion/model/gaussian_mixture.hpp>

namespace diffusion::test {

/// Sample mean, covariance and their standard errors of N points in D dimensions (row-major).
struct sample_moments {
  std::size_t n = 0, dim = 0;
  std::vector<double> mean, mean_se;  // D
  std::vector<double> cov, cov_se;    // D x D

  sample_moments(std::span<const double> x, std::size_t d) : n(x.size() / d), dim(d), mean(d), mean_se(d), cov(d * d), cov_se(d * d) {
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t a = 0; a < d; ++a) mean[a] += x[i * d + a];
    for (double& m : mean) m /= static_cast<double>(n);
    // cov_ab = mean of products p_i = (x_a - m_a)(x_b - m_b); its standard error is std(p)/sqrt(n).
    std::vector<double> p2(d * d, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t a = 0; a < d; ++a)
        for (std::size_t b = 0; b < d; ++b) {
          const double p = (x[i * d + a] - mean[a]) * (x[i * d + b] - mean[b]);
          cov[a * d + b] += p;
          p2[a * d + b] += p * p;
        }
    const double nn = static_cast<double>(n);
    for (std::size_t k = 0; k < d * d; ++k) {
      cov[k] /= nn;
      cov_se[k] = std::sqrt(std::max(p2[k] / nn - cov[k] * cov[k], 0.0) / nn);
    }
    for (std::size_t a = 0; a < d; ++a) mean_se[a] = std::sqrt(cov[a * d + a] / nn);
  }
};

/// Fraction of points whose most likely component (under the data mixture) is k, for each k.
inline std::vector<double> component_fractions(const gaussian_mixture& m, std::span<const double> x) {
  const std::size_t d = m.dim(), n = x.size() / d;
  std::vector<double> frac(m.components(), 0.0), r(m.components());
  for (std::size_t i = 0; i < n; ++i) {
    m.responsibilities(x.subspan(i * d, d), 1.0, 0.0, r);
    std::size_t best = 0;
    for (std::size_t k = 1; k < r.size(); ++k)
      if (r[k] > r[best]) best = k;
    frac[best] += 1.0;
  }
  for (double& f : frac) f /= static_cast<double>(n);
  return frac;
}

/// The mean of a sample of scalars and its standard error sqrt(s^2 / n), s^2 the unbiased variance.
struct sample_mean {
  double mean = 0.0, se = 0.0;
  explicit sample_mean(std::span<const double> v) {
    const double n = static_cast<double>(v.size());
    for (double x : v) mean += x;
    mean /= n;
    double ss = 0.0;
    for (double x : v) ss += (x - mean) * (x - mean);
    se = std::sqrt(ss / (n - 1.0) / n);
  }
};

/// How many standard errors a statistic may stray from its true value. At a fixed seed a check at
/// 5 standard errors raises a false alarm with probability ~6e-7 (two-sided normal tail).
inline constexpr double tolerance_in_standard_errors = 5.0;

/// CHECKs the sample mean of each coordinate and each sample covariance entry of the N points x
/// (N x dim, row-major) against want_mean (dim) and want_cov (dim x dim, row-major), each within 5
/// of its own standard errors (sample_moments).
inline void check_mean_and_covariance(std::span<const double> x, std::size_t dim, std::span<const double> want_mean,
                                      std::span<const double> want_cov) {
  REQUIRE(want_mean.size() == dim);
  REQUIRE(want_cov.size() == dim * dim);
  const sample_moments m(x, dim);
  for (std::size_t a = 0; a < dim; ++a) {
    INFO("mean of coordinate " << a << " over " << m.n << " samples");
    CHECK_THAT(m.mean[a], Catch::Matchers::WithinAbs(want_mean[a], tolerance_in_standard_errors * m.mean_se[a]));
  }
  for (std::size_t k = 0; k < dim * dim; ++k) {
    INFO("covariance entry (" << k / dim << ", " << k % dim << ") over " << m.n << " samples");
    CHECK_THAT(m.cov[k], Catch::Matchers::WithinAbs(want_cov[k], tolerance_in_standard_errors * m.cov_se[k]));
  }
}

/// CHECKs, for each component k of the mixture, the fraction of the points x whose most likely
/// component is k (component_fractions) against its weight w_k, within 5 binomial standard errors
/// sqrt(w_k (1 - w_k) / N).
inline void check_component_fractions(const gaussian_mixture& mixture, std::span<const double> x) {
  const double n = static_cast<double>(x.size() / mixture.dim());
  const std::vector<double> frac = component_fractions(mixture, x);
  for (std::size_t k = 0; k < mixture.components(); ++k) {
    const double w = mixture.weight(k);
    INFO("fraction of samples nearest component " << k << " of weight " << w << ", over " << n << " samples");
    CHECK_THAT(frac[k], Catch::Matchers::WithinAbs(w, tolerance_in_standard_errors * std::sqrt(w * (1 - w) / n)));
  }
}

/// CHECKs that the points x (N x mixture.dim(), row-major) are a sample of the mixture: the
/// mixture's mean, covariance and component weights, each within 5 standard errors.
inline void check_reproduces_mixture(const gaussian_mixture& mixture, std::span<const double> x) {
  check_mean_and_covariance(x, mixture.dim(), mixture.mean(), mixture.covariance());
  check_component_fractions(mixture, x);
}

}  // namespace diffusion::test
