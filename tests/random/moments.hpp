// SPDX-License-Identifier: MIT
// Sample statistics for the noise tests, accumulated in double whatever the sample's scalar type.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

namespace diffusion_test {

struct moments {
  double mean = 0;
  double variance = 0;  // biased (1/n); the difference is far below the tolerances at n = 1e6
  double skewness = 0;
  double excess_kurtosis = 0;
};

/// Two-pass central moments.
template <class S>
moments sample_moments(std::span<const S> x) {
  const auto n = static_cast<double>(x.size());
  double sum = 0;
  for (S v : x) sum += static_cast<double>(v);
  moments m;
  m.mean = sum / n;
  double m2 = 0, m3 = 0, m4 = 0;
  for (S v : x) {
    const double d = static_cast<double>(v) - m.mean;
    const double d2 = d * d;
    m2 += d2;
    m3 += d2 * d;
    m4 += d2 * d2;
  }
  m2 /= n;
  m3 /= n;
  m4 /= n;
  m.variance = m2;
  m.skewness = m3 / std::pow(m2, 1.5);
  m.excess_kurtosis = m4 / (m2 * m2) - 3.0;
  return m;
}

/// Pearson correlation of x[i] and y[i].
template <class S>
double correlation(std::span<const S> x, std::span<const S> y) {
  const std::size_t n = std::min(x.size(), y.size());
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < n; ++i) {
    mx += static_cast<double>(x[i]);
    my += static_cast<double>(y[i]);
  }
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double dx = static_cast<double>(x[i]) - mx, dy = static_cast<double>(y[i]) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxy / std::sqrt(sxx * syy);
}

/// The standard normal CDF.
inline double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

/// Kolmogorov-Smirnov distance sup |F_n(z) - cdf(z)| of the sample to a continuous cdf.
template <class S, class Cdf>
double ks_distance(std::span<const S> x, Cdf cdf) {
  std::vector<double> s(x.begin(), x.end());
  std::sort(s.begin(), s.end());
  const auto n = static_cast<double>(s.size());
  double d = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const double f = cdf(s[i]);
    d = std::max({d, f - static_cast<double>(i) / n, static_cast<double>(i + 1) / n - f});
  }
  return d;
}

/// Five standard errors of the Kolmogorov distance at sample size n: P(sqrt(n) D > x) ~ 2 exp(-2x^2)
/// equals the two-sided 5-sigma probability 5.7e-7 at x = 2.74.
inline double ks_tolerance(std::size_t n) { return 2.74 / std::sqrt(static_cast<double>(n)); }

}  // namespace diffusion_test
