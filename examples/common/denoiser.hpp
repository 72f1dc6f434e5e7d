// SPDX-License-Identifier: MIT
// The example network as a diffusion model (example code, not library API): an mlp that predicts
// eps, with the process's time and noise level turned into the network's inputs.
//
// Training feeds it per-sample times (loss_batch::t); samplers call it as a predictor,
// model(x, t, out), with one t for the whole batch. Both paths present (x, t) identically:
//     network input   c_in(t) x,  c_in(t) = 1 / sqrt(alpha(t)^2 sigma_data^2 + sigma(t)^2)
//     time input      tau = network_time(process, t) in [0, 1], increasing with the noise level
// so the network sees inputs of unit scale at every noise level (Karras et al. 2022, Sec. 5,
// "c_in"; for VP processes this is close to 1 throughout).
#pragma once

#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <diffusion/backend/eigen.hpp>
#include <diffusion/core/errors.hpp>
#include <diffusion/loss/loss_batch.hpp>
#include <diffusion/model/parameterization.hpp>
#include <diffusion/process/sde.hpp>
#include <diffusion/process/ve_discrete.hpp>
#include <diffusion/process/vp_discrete.hpp>

#include "mlp.hpp"

namespace examples {

/// DDPM timestep t in {0..T-1} -> t / (T - 1).
inline double network_time(const diffusion::vp_discrete& p, double t) {
  const double last = static_cast<double>(p.num_timesteps() - 1);
  return last > 0.0 ? t / last : 0.0;
}

/// NCSN level index i (0 = largest sigma) -> log(sigma_i / sigma_min) / log(sigma_max / sigma_min):
/// the log noise level, as NCSN++ and EDM condition on it, mapped onto [0, 1] (1 at sigma_max).
inline double network_time(const diffusion::ve_discrete& p, double i) {
  const double span = std::log(p.sigma_max() / p.sigma_min());
  return span > 0.0 ? std::log(p.sigma(i) / p.sigma_min()) / span : 0.0;
}

/// SDE time t in [0, T] -> t / T.
template <class Process>
  requires diffusion::sde_process<Process>
double network_time(const Process&, double t) {
  return t / Process::end_time();
}

/// An mlp predicting eps for `Process`, with the input scaling and time input above.
///
/// \tparam Process the process the model is trained on (and sampled with: samplers of the same
///                 family call it at their own times, converting eps to what they need).
/// \tparam S       the network's scalar; tensors are Eigen::Tensor<S, 2, RowMajor> of shape [B, D].
template <class Process, class S = float>
class denoiser {
 public:
  using parameterization = diffusion::eps_param;
  using process_type = Process;
  using tensor = Eigen::Tensor<S, 2, Eigen::RowMajor>;
  using network = mlp<S>;

  /// \param sigma_data the data's RMS spread (rms_spread), used by the input scaling.
  /// \throws std::invalid_argument unless sigma_data is finite and positive.
  denoiser(network net, Process process, double sigma_data)
      : m_net(std::move(net)), m_process(std::move(process)), m_sigma_data(sigma_data) {
    diffusion::require(std::isfinite(sigma_data) && sigma_data > 0.0, "denoiser", "sigma_data", sigma_data,
                       "(0, inf)");
  }

  network& net() noexcept { return m_net; }
  const network& net() const noexcept { return m_net; }
  const Process& process() const noexcept { return m_process; }
  double sigma_data() const noexcept { return m_sigma_data; }

  /// c_in = 1 / sqrt(alpha^2 sigma_data^2 + sigma^2): the reciprocal std of x_t = alpha x0 + sigma eps
  /// for data of spread sigma_data (Karras et al. 2022, Eq. 7 generalised to alpha != 1).
  double input_scale(double alpha, double sigma) const {
    return 1.0 / std::sqrt(alpha * alpha * m_sigma_data * m_sigma_data + sigma * sigma);
  }

  /// The sampler's call: eps_hat(x, t) for every sample at the same t.
  void operator()(const tensor& x, double t, tensor& out) {
    const auto [batch, dim] = check(x, out);
    const double c = input_scale(m_process.alpha(t), m_process.sigma(t));
    m_input = const_map(x.data(), batch, dim) * static_cast<S>(c);
    auto y = map(out.data(), batch, dim);
    m_net.forward(m_input, network_time(m_process, t), y);
  }

  /// The training forward pass: eps_hat for the batch's x_t, each sample at its own t (the loss
  /// has already put alpha(t_b) and sigma(t_b) into the batch).
  void forward(const diffusion::loss_batch<tensor>& batch, tensor& out) {
    const auto [rows, dim] = check(batch.x_t, out);
    m_input = const_map(batch.x_t.data(), rows, dim);
    m_tau.resize(batch.size());
    for (std::size_t b = 0; b < batch.size(); ++b) {
      m_input.row(static_cast<Eigen::Index>(b)) *= static_cast<S>(input_scale(batch.alpha[b], batch.sigma[b]));
      m_tau[b] = network_time(m_process, batch.t[b]);
    }
    auto y = map(out.data(), rows, dim);
    m_net.forward(m_input, std::span<const double>(m_tau), y);
  }

  /// Back-propagates d loss / d eps_hat (the loss's gradient, shaped like the last output) into
  /// net().gradients().
  void backward(const tensor& grad) {
    m_net.backward(const_map(grad.data(), grad.dimension(0), grad.dimension(1)));
  }

 private:
  using matrix = typename network::matrix;
  static typename network::const_matrix_map const_map(const S* p, Eigen::Index rows, Eigen::Index cols) {
    return typename network::const_matrix_map(p, rows, cols);
  }
  static typename network::matrix_map map(S* p, Eigen::Index rows, Eigen::Index cols) {
    return typename network::matrix_map(p, rows, cols);
  }

  std::pair<Eigen::Index, Eigen::Index> check(const tensor& x, const tensor& out) const {
    if (x.dimension(1) != static_cast<Eigen::Index>(m_net.config().data_dim))
      diffusion::throw_invalid("denoiser", "x.dimension(1)", x.dimension(1),
                               "the network's data_dim, " + std::to_string(m_net.config().data_dim));
    if (out.dimension(0) != x.dimension(0) || out.dimension(1) != x.dimension(1))
      diffusion::throw_invalid("denoiser", "out shape",
                               std::to_string(out.dimension(0)) + " x " + std::to_string(out.dimension(1)),
                               "the shape of x, " + std::to_string(x.dimension(0)) + " x " +
                                   std::to_string(x.dimension(1)));
    return {x.dimension(0), x.dimension(1)};
  }

  network m_net;
  Process m_process;
  double m_sigma_data;
  matrix m_input;             // c_in x, made once per batch size
  std::vector<double> m_tau;  // per-sample time inputs
};

}  // namespace examples
