// SPDX-License-Identifier: MIT
// Sample statistics with their standard errors, for statistical tests whose tolerances come from
// the sample size (k standard errors at a fixed seed).
#pragma once

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

}  // namespace diffusion::test
