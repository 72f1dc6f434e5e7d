// SPDX-License-Identifier: MIT
// The Adam optimiser over a flat parameter array (example code, not library API).
#pragma once

#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include <Eigen/Core>

#include <diffusion/core/errors.hpp>

namespace examples {

struct adam_options {
  double learning_rate = 1e-3;  ///< alpha
  double beta1 = 0.9;           ///< decay of the first-moment estimate
  double beta2 = 0.999;         ///< decay of the second-moment estimate
  double epsilon = 1e-8;        ///< added to sqrt(v_hat)

  /// \throws std::invalid_argument naming the first field out of range.
  void validate() const {
    constexpr const char* where = "adam_options";
    diffusion::require(std::isfinite(learning_rate) && learning_rate > 0.0, where, "learning_rate", learning_rate,
                       "(0, inf)");
    diffusion::require(beta1 >= 0.0 && beta1 < 1.0, where, "beta1", beta1, "[0, 1)");
    diffusion::require(beta2 >= 0.0 && beta2 < 1.0, where, "beta2", beta2, "[0, 1)");
    diffusion::require(std::isfinite(epsilon) && epsilon > 0.0, where, "epsilon", epsilon, "(0, inf)");
  }
};

/// Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", Alg. 1):
///     m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g^2,
///     theta -= alpha_k m / (sqrt(v) + eps_hat),   alpha_k = alpha sqrt(1 - beta2^k) / (1 - beta1^k),
/// the bias correction folded into the step size as in Sec. 2 of the paper (its "efficiency"
/// remark), with eps_hat = eps sqrt(1 - beta2^k) so that the update equals Alg. 1's
/// m_hat / (sqrt(v_hat) + eps) exactly.
template <class S>
class adam {
 public:
  /// \param size the number of parameters.
  explicit adam(std::size_t size, adam_options options = {})
      : m_options(checked(options)), m_m(size, S(0)), m_v(size, S(0)) {}

  const adam_options& options() const noexcept { return m_options; }
  /// The number of steps taken so far (k of the paper).
  std::size_t steps() const noexcept { return m_step; }

  /// Changes alpha for the following steps (learning-rate schedules).
  void set_learning_rate(double lr) {
    diffusion::require(std::isfinite(lr) && lr >= 0.0, "adam::set_learning_rate", "lr", lr, "[0, inf)");
    m_options.learning_rate = lr;
  }

  /// One update of `params` with gradient `grads` (both of the size given at construction).
  /// \throws std::invalid_argument on a size mismatch.
  void step(std::span<S> params, std::span<const S> grads) {
    diffusion::require(params.size() == m_m.size(), "adam::step", "params.size()", params.size(),
                       "the optimiser's size, " + std::to_string(m_m.size()));
    diffusion::require(grads.size() == m_m.size(), "adam::step", "grads.size()", grads.size(),
                       "the optimiser's size, " + std::to_string(m_m.size()));
    ++m_step;
    const double k = static_cast<double>(m_step);
    const double c2 = std::sqrt(1.0 - std::pow(m_options.beta2, k));
    const double step = m_options.learning_rate * c2 / (1.0 - std::pow(m_options.beta1, k));
    const double eps_hat = m_options.epsilon * c2;

    using array = Eigen::Array<S, Eigen::Dynamic, 1>;
    const auto n = static_cast<Eigen::Index>(params.size());
    Eigen::Map<array> p(params.data(), n), m(m_m.data(), n), v(m_v.data(), n);
    const Eigen::Map<const array> g(grads.data(), n);
    const S b1 = S(m_options.beta1), b2 = S(m_options.beta2);
    m = b1 * m + (S(1) - b1) * g;
    v = b2 * v + (S(1) - b2) * g.square();
    p -= S(step) * m / (v.sqrt() + S(eps_hat));
  }

 private:
  static adam_options checked(adam_options o) {
    o.validate();
    return o;
  }

  adam_options m_options;
  std::vector<S> m_m, m_v;
  std::size_t m_step = 0;
};

}  // namespace examples
