// SPDX-License-Identifier: MIT
// The exact oracle: for data from a Gaussian mixture, p_t is again a Gaussian mixture, so the exact
// eps, x0, score and v are known in closed form at every t of every process. Tests, examples and
// benchmarks drive samplers and losses with it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../core/errors.hpp"
#include "../core/noise.hpp"
#include "../core/tensor.hpp"
#include "../process/concepts.hpp"
#include "parameterization.hpp"

namespace diffusion {

/// A mixture of K Gaussians in D dimensions with diagonal covariances:
/// p(x0) = sum_k w_k N(x0; mu_k, diag(s_k^2)).
class gaussian_mixture {
 public:
  /// Isotropic components: component k has covariance stds[k]^2 I.
  gaussian_mixture(std::vector<double> weights, std::vector<std::vector<double>> means, std::vector<double> stds)
      : gaussian_mixture(std::move(weights), means, expand(stds, means)) {}

  /// Diagonal components: component k has covariance diag(stds[k][d]^2).
  gaussian_mixture(std::vector<double> weights, const std::vector<std::vector<double>>& means,
                   const std::vector<std::vector<double>>& stds)
      : m_weights(std::move(weights)) {
    const char* where = "gaussian_mixture";
    require(!m_weights.empty(), where, "number of components", 0, "at least 1");
    if (means.size() != m_weights.size()) [[unlikely]]
      detail::throw_invalid_parts(where, {"means.size()"}, means.size(), {"the number of weights, ", m_weights.size()});
    if (stds.size() != m_weights.size()) [[unlikely]]
      detail::throw_invalid_parts(where, {"stds.size()"}, stds.size(), {"the number of weights, ", m_weights.size()});
    m_dim = means[0].size();
    require(m_dim >= 1, where, "dimension", m_dim, "at least 1");
    double total = 0.0;
    for (std::size_t k = 0; k < m_weights.size(); ++k) {
      if (!(std::isfinite(m_weights[k]) && m_weights[k] > 0.0)) [[unlikely]]
        detail::throw_invalid_parts(where, {"weights[", k, "]"}, m_weights[k], {"(0, inf)"});
      total += m_weights[k];
      if (means[k].size() != m_dim) [[unlikely]]
        detail::throw_invalid_parts(where, {"means[", k, "].size()"}, means[k].size(),
                                    {"the dimension of means[0], ", m_dim});
      if (stds[k].size() != m_dim) [[unlikely]]
        detail::throw_invalid_parts(where, {"stds[", k, "].size()"}, stds[k].size(),
                                    {"the dimension of means[0], ", m_dim});
      for (std::size_t d = 0; d < m_dim; ++d) {
        require_finite(means[k][d], where, "means");
        require(std::isfinite(stds[k][d]) && stds[k][d] > 0.0, where, "stds", stds[k][d], "(0, inf)");
        m_means.push_back(means[k][d]);
        m_stds.push_back(stds[k][d]);
      }
    }
    for (double& w : m_weights) w /= total;  // weights need not be normalised on input
  }

  std::size_t components() const { return m_weights.size(); }
  std::size_t dim() const { return m_dim; }
  double weight(std::size_t k) const { return m_weights[k]; }
  double mean(std::size_t k, std::size_t d) const { return m_means[k * m_dim + d]; }
  double std_dev(std::size_t k, std::size_t d) const { return m_stds[k * m_dim + d]; }

  /// E[x0], length D.
  std::vector<double> mean() const {
    std::vector<double> m(m_dim, 0.0);
    for (std::size_t k = 0; k < components(); ++k)
      for (std::size_t d = 0; d < m_dim; ++d) m[d] += m_weights[k] * mean(k, d);
    return m;
  }

  /// Cov[x0], D x D row-major: sum_k w_k (S_k + mu_k mu_k^T) - m m^T.
  std::vector<double> covariance() const {
    const std::vector<double> m = mean();
    std::vector<double> c(m_dim * m_dim, 0.0);
    for (std::size_t k = 0; k < components(); ++k)
      for (std::size_t i = 0; i < m_dim; ++i)
        for (std::size_t j = 0; j < m_dim; ++j)
          c[i * m_dim + j] += m_weights[k] * (mean(k, i) * mean(k, j) + (i == j ? std_dev(k, i) * std_dev(k, i) : 0.0));
    for (std::size_t i = 0; i < m_dim; ++i)
      for (std::size_t j = 0; j < m_dim; ++j) c[i * m_dim + j] -= m[i] * m[j];
    return c;
  }

  /// log p_t(x) of the perturbed data x = alpha x0 + sigma eps (alpha = 1, sigma = 0: the data).
  double log_density(std::span<const double> x, double alpha = 1.0, double sigma = 0.0) const {
    std::vector<double> logits(components());
    for (std::size_t k = 0; k < components(); ++k) logits[k] = std::log(m_weights[k]) + log_normal(k, x, alpha, sigma);
    return log_sum_exp(logits);
  }

  /// Responsibilities r_k = p(k | x_t) at marginal coefficients (alpha, sigma), into r (size K).
  void responsibilities(std::span<const double> x, double alpha, double sigma, std::span<double> r) const {
    for (std::size_t k = 0; k < components(); ++k) r[k] = std::log(m_weights[k]) + log_normal(k, x, alpha, sigma);
    const double lse = log_sum_exp(r);
    for (double& v : r) v = std::exp(v - lse);
  }

  /// E[x0 | x_t = x] in the per-component form sum_k r_k [mu_k + (alpha s_k^2 / v_k)(x - alpha mu_k)],
  /// v_k = alpha^2 s_k^2 + sigma^2, which stays accurate where alpha is tiny (REFERENCE.md, golden/).
  void posterior_mean(std::span<const double> x, double alpha, double sigma, std::span<double> r,
                      std::span<double> x0) const {
    responsibilities(x, alpha, sigma, r);
    std::fill(x0.begin(), x0.end(), 0.0);
    for (std::size_t k = 0; k < components(); ++k)
      for (std::size_t d = 0; d < m_dim; ++d) {
        const double s2 = std_dev(k, d) * std_dev(k, d);
        const double v = alpha * alpha * s2 + sigma * sigma;
        x0[d] += r[k] * (mean(k, d) + (alpha * s2 / v) * (x[d] - alpha * mean(k, d)));
      }
  }

  /// grad_x log p_t(x) = sum_k r_k (alpha mu_k - x) / v_k.
  void score(std::span<const double> x, double alpha, double sigma, std::span<double> r,
             std::span<double> out) const {
    responsibilities(x, alpha, sigma, r);
    std::fill(out.begin(), out.end(), 0.0);
    for (std::size_t k = 0; k < components(); ++k)
      for (std::size_t d = 0; d < m_dim; ++d) {
        const double v = alpha * alpha * std_dev(k, d) * std_dev(k, d) + sigma * sigma;
        out[d] += r[k] * (alpha * mean(k, d) - x[d]) / v;
      }
  }

  /// The divergence of the score, tr(Hessian of log p_t)(x) =
  ///   sum_k r_k (|g_k|^2 - sum_d 1/v_kd) - |score|^2,  g_k = (alpha mu_k - x)/v_k,
  /// (differentiate score = sum_k r_k g_k with grad r_k = r_k (g_k - score)); it enters the
  /// probability-flow likelihood (Song et al. 2021, Eq. 39). r (size K) is scratch.
  double score_divergence(std::span<const double> x, double alpha, double sigma, std::span<double> r) const {
    responsibilities(x, alpha, sigma, r);
    double sum_rk = 0.0, score_sq = 0.0;
    for (std::size_t d = 0; d < m_dim; ++d) {
      double s = 0.0;
      for (std::size_t k = 0; k < components(); ++k) {
        const double v = alpha * alpha * std_dev(k, d) * std_dev(k, d) + sigma * sigma;
        const double g = (alpha * mean(k, d) - x[d]) / v;
        s += r[k] * g;
        sum_rk += r[k] * (g * g - 1.0 / v);
      }
      score_sq += s * s;
    }
    return sum_rk - score_sq;
  }

  /// Exact samples of the data into tensor `out` (shape [B, D]); one uniform draw picks the
  /// components, one normal draw the offsets.
  template <class Noise, tensor T>
  void sample(Noise& noise, T& out) const {
    auto e = elements(out);
    const std::size_t batch = batch_size(out);
    if (sample_size(out) != m_dim) [[unlikely]]
      detail::throw_invalid_parts("gaussian_mixture::sample", {"elements per sample"}, sample_size(out),
                                  {"the mixture dimension, ", m_dim});
    using S = scalar_of<T>;
    std::vector<S> u(batch);
    noise.fill_uniform(std::span<S>(u), batch);
    draw_normal_into(noise, e, batch);
    for (std::size_t b = 0; b < batch; ++b) {
      std::size_t k = 0;
      double c = m_weights[0];
      while (k + 1 < components() && static_cast<double>(u[b]) >= c) c += m_weights[++k];
      for (std::size_t d = 0; d < m_dim; ++d)
        e[b * m_dim + d] = static_cast<S>(mean(k, d) + std_dev(k, d) * static_cast<double>(e[b * m_dim + d]));
    }
  }

 private:
  static std::vector<std::vector<double>> expand(const std::vector<double>& stds,
                                                 const std::vector<std::vector<double>>& means) {
    std::vector<std::vector<double>> out;
    for (std::size_t k = 0; k < stds.size(); ++k)
      out.emplace_back(k < means.size() ? means[k].size() : 0, stds[k]);
    return out;
  }
  template <class Noise, class S>
  static void draw_normal_into(Noise& noise, std::span<S> e, std::size_t batch) {
    noise.fill_normal(e, batch);
  }
  double log_normal(std::size_t k, std::span<const double> x, double alpha, double sigma) const {
    double lp = 0.0;
    for (std::size_t d = 0; d < m_dim; ++d) {
      const double v = alpha * alpha * std_dev(k, d) * std_dev(k, d) + sigma * sigma;
      const double r = x[d] - alpha * mean(k, d);
      lp += -0.5 * (r * r / v + std::log(2.0 * std::numbers::pi * v));
    }
    return lp;
  }
  static double log_sum_exp(std::span<const double> v) {
    const double m = *std::max_element(v.begin(), v.end());
    double s = 0.0;
    for (double a : v) s += std::exp(a - m);
    return m + std::log(s);
  }

  std::vector<double> m_weights;
  std::vector<double> m_means;  // K x D
  std::vector<double> m_stds;   // K x D
  std::size_t m_dim = 0;
};

/// The exact predictor for data from `mixture` perturbed by `process`: eps, x0, score or v
/// (template parameter Param) at any t, computed per sample in double.
template <has_marginal_coefficients Process, parameterization_tag Param = eps_param>
class gaussian_mixture_model {
 public:
  using parameterization = Param;

  gaussian_mixture_model(gaussian_mixture mixture, Process process)
      : m_mixture(std::move(mixture)), m_process(std::move(process)),
        m_x(m_mixture.dim()), m_r(m_mixture.components()), m_out(m_mixture.dim()) {}

  const gaussian_mixture& mixture() const { return m_mixture; }
  const Process& process() const { return m_process; }

  template <tensor T>
  void operator()(const T& x, double t, T& out) {
    if (sample_size(x) != m_mixture.dim())  // not require(): its message would be built on every call
      detail::throw_invalid_parts("gaussian_mixture_model", {"elements per sample"}, sample_size(x),
                                  {"the mixture dimension, ", m_mixture.dim()});
    require_same_shape(out, x, "gaussian_mixture_model", "out");
    const double alpha = m_process.alpha(t);
    const double sigma = m_process.sigma(t);
    const auto xe = elements(x);
    auto oe = elements(out);
    const std::size_t D = m_mixture.dim();
    for (std::size_t b = 0; b < batch_size(x); ++b) {
      for (std::size_t d = 0; d < D; ++d) m_x[d] = static_cast<double>(xe[b * D + d]);
      evaluate(alpha, sigma);
      for (std::size_t d = 0; d < D; ++d) oe[b * D + d] = static_cast<scalar_of<T>>(m_out[d]);
    }
  }

  /// The exact divergence of the score, tr(Hessian of log p_t)(x), of every batch sample of x into
  /// out (one entry per sample), whatever Param the model predicts: the probability-flow
  /// log-likelihood (likelihood/log_likelihood.hpp) uses it instead of a Hutchinson estimate.
  template <tensor T>
  void score_divergence(const T& x, double t, std::span<double> out) {
    if (sample_size(x) != m_mixture.dim())
      detail::throw_invalid_parts("gaussian_mixture_model::score_divergence", {"elements per sample"}, sample_size(x),
                                  {"the mixture dimension, ", m_mixture.dim()});
    if (out.size() != batch_size(x))
      detail::throw_invalid_parts("gaussian_mixture_model::score_divergence", {"out.size()"}, out.size(),
                                  {"the batch size of x, ", batch_size(x)});
    const double alpha = m_process.alpha(t);
    const double sigma = m_process.sigma(t);
    const auto xe = elements(x);
    const std::size_t D = m_mixture.dim();
    for (std::size_t b = 0; b < batch_size(x); ++b) {
      for (std::size_t d = 0; d < D; ++d) m_x[d] = static_cast<double>(xe[b * D + d]);
      out[b] = m_mixture.score_divergence(m_x, alpha, sigma, m_r);
    }
  }

 private:
  // One sample: m_x -> m_out.
  void evaluate(double alpha, double sigma) {
    if constexpr (Param::kind == diffusion::parameterization::score) {
      m_mixture.score(m_x, alpha, sigma, m_r, m_out);
    } else {
      m_mixture.posterior_mean(m_x, alpha, sigma, m_r, m_out);  // m_out = E[x0|x]
      if constexpr (Param::kind != diffusion::parameterization::x0) {
        if (!(sigma > 0.0))
          throw std::domain_error("gaussian_mixture_model: eps and v are undefined at sigma = 0; valid range: sigma > 0");
        for (std::size_t d = 0; d < m_x.size(); ++d) {
          const double eps = (m_x[d] - alpha * m_out[d]) / sigma;
          // v = alpha eps - sigma x0 (Salimans & Ho 2022)
          m_out[d] = Param::kind == diffusion::parameterization::eps ? eps : alpha * eps - sigma * m_out[d];
        }
      }
    }
  }

  gaussian_mixture m_mixture;
  Process m_process;
  std::vector<double> m_x, m_r, m_out;  // per-sample scratch, made once
};

}  // namespace diffusion
