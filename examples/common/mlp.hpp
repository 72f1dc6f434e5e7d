// SPDX-License-Identifier: MIT
// A small multilayer perceptron for the examples and their tests (not library API): the input is a
// D-dimensional point and a scalar time, presented to the network through a sinusoidal embedding;
// forward and backward passes are written with Eigen matrices, the parameters live in one flat
// array (so that the optimiser, the weights file and parameter averaging see a single span).
//
//     examples::mlp<float> net({.data_dim = 2, .hidden = 128, .hidden_layers = 3}, /*seed=*/1);
//     net.forward(x, tau, out);      // x: [B, D] row-major, tau: one normalised time per sample
//     net.backward(grad_out);        // grad_out = d loss / d out, e.g. from a diffusion loss
//     adam.step(net.parameters(), net.gradients());
//
// The network itself knows nothing about diffusion: what `tau` means and how x is scaled is the
// business of examples/common/denoiser.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include <diffusion/core/errors.hpp>
#include <diffusion/random/philox_noise.hpp>

namespace examples {

/// The shape of an mlp. Stored in the weights file; two networks with equal configs have
/// parameter arrays of the same layout.
struct mlp_config {
  std::size_t data_dim = 2;       ///< D, the size of the input point and of the output
  std::size_t embed_dim = 16;     ///< sinusoidal features of the time input (even, at least 2)
  std::size_t hidden = 128;       ///< width of every hidden layer
  std::size_t hidden_layers = 3;  ///< number of hidden layers, at least 1
  double max_frequency = 64.0;    ///< the highest angular frequency of the embedding, per unit of tau

  friend bool operator==(const mlp_config&, const mlp_config&) = default;

  /// \throws std::invalid_argument naming the first field out of range.
  void validate() const {
    constexpr const char* where = "mlp_config";
    diffusion::require(data_dim >= 1 && data_dim <= max_extent, where, "data_dim", data_dim, "[1, 65536]");
    diffusion::require(embed_dim >= 2 && embed_dim % 2 == 0 && embed_dim <= max_extent, where, "embed_dim",
                       embed_dim, "an even number in [2, 65536]");
    diffusion::require(hidden >= 1 && hidden <= max_extent, where, "hidden", hidden, "[1, 65536]");
    diffusion::require(hidden_layers >= 1 && hidden_layers <= 64, where, "hidden_layers", hidden_layers, "[1, 64]");
    diffusion::require(std::isfinite(max_frequency) && max_frequency >= 1.0 && max_frequency <= 1e6, where,
                       "max_frequency", max_frequency, "[1, 1e6]");
  }

  /// Number of linear layers: the hidden ones and the output layer.
  std::size_t linear_layers() const { return hidden_layers + 1; }
  /// Input width of linear layer l: the point and its time embedding for l = 0, `hidden` after.
  std::size_t in_features(std::size_t l) const { return l == 0 ? data_dim + embed_dim : hidden; }
  /// Output width of linear layer l: `hidden`, and D for the last.
  std::size_t out_features(std::size_t l) const { return l + 1 == linear_layers() ? data_dim : hidden; }

  /// Total number of parameters: sum over layers of out * (in + 1).
  std::size_t parameter_count() const {
    std::size_t n = 0;
    for (std::size_t l = 0; l < linear_layers(); ++l) n += out_features(l) * (in_features(l) + 1);
    return n;
  }

  /// Keeps every shape far below where the products above could overflow.
  static constexpr std::size_t max_extent = 65536;
};

/// A multilayer perceptron  out = W_L silu(... silu(W_0 [x, e(tau)] + b_0) ...) + b_L  with the
/// sinusoidal embedding e(tau) = (sin(w_k tau), cos(w_k tau))_k of the time input (Vaswani et al.
/// 2017, Sec. 3.5, as Ho et al. 2020 use it for the timestep; Tancik et al. 2020 on why Fourier
/// features let a small MLP follow fast variation in a low-dimensional input), and the SiLU
/// activation silu(z) = z sigmoid(z) (Elfwing et al. 2018; Hendrycks & Gimpel 2016).
///
/// Rows are samples: x and out are [B, D] row-major, which is the layout of the library's
/// Eigen::Tensor<S, 2, RowMajor> tensors, so those map without copies.
///
/// \tparam S float or double.
template <class S>
class mlp {
  static_assert(std::is_floating_point_v<S>, "examples::mlp: S must be float or double");

 public:
  using scalar = S;
  using matrix = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using matrix_map = Eigen::Map<matrix>;
  using const_matrix_map = Eigen::Map<const matrix>;
  using vector = Eigen::Matrix<S, Eigen::Dynamic, 1>;
  /// What the passes take: any row-major matrix, map or block (no copy).
  using input_ref = Eigen::Ref<const matrix>;
  using output_ref = Eigen::Ref<matrix>;

  /// A network of shape `config` with PyTorch's default initialisation of nn.Linear (weights and
  /// biases ~ U(-1/sqrt(in), 1/sqrt(in))), drawn from Philox stream `seed`.
  /// \throws std::invalid_argument if the config is out of range.
  mlp(const mlp_config& config, std::uint64_t seed) : mlp(config) {
    diffusion::philox_noise noise(seed);
    std::vector<double> u(m_params.size());
    noise.fill_uniform(std::span<double>(u), 1);
    for (std::size_t l = 0; l < m_config.linear_layers(); ++l) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(m_config.in_features(l)));
      const std::size_t begin = m_offsets[l], end = begin + m_config.out_features(l) * (m_config.in_features(l) + 1);
      for (std::size_t i = begin; i < end; ++i) m_params[i] = static_cast<S>(bound * (2.0 * u[i] - 1.0));
    }
  }

  /// A network of shape `config` with the given parameters (the layout of parameters()).
  /// \throws std::invalid_argument if the config is out of range or the size differs.
  mlp(const mlp_config& config, std::span<const S> parameters) : mlp(config) {
    diffusion::require(parameters.size() == m_params.size(), "mlp", "parameters.size()", parameters.size(),
                       "config.parameter_count() = " + std::to_string(m_params.size()));
    std::copy(parameters.begin(), parameters.end(), m_params.begin());
  }

  const mlp_config& config() const noexcept { return m_config; }

  /// All parameters, layer by layer: W_l (out x in, row-major), then b_l (out).
  std::span<S> parameters() noexcept { return m_params; }
  std::span<const S> parameters() const noexcept { return m_params; }
  /// d loss / d parameters from the last backward(), in the layout of parameters().
  std::span<S> gradients() noexcept { return m_grads; }
  std::span<const S> gradients() const noexcept { return m_grads; }

  /// The angular frequencies w_k = max_frequency^(k / (K - 1)), k = 0..K-1, K = embed_dim / 2: a
  /// geometric ladder from 1 to max_frequency, as the Transformer's wavelengths.
  double frequency(std::size_t k) const {
    const std::size_t pairs = m_config.embed_dim / 2;
    if (pairs == 1) return 1.0;
    return std::pow(m_config.max_frequency, static_cast<double>(k) / static_cast<double>(pairs - 1));
  }

  /// Forward pass for training: sample b at its own time tau[b]. Keeps the activations for
  /// backward(). x is [B, D] row-major, out must have room for [B, D].
  /// \throws std::invalid_argument on a size mismatch.
  void forward(input_ref x, std::span<const double> tau, output_ref out) {
    check_io(x, out, "mlp::forward");
    diffusion::require(tau.size() == static_cast<std::size_t>(x.rows()), "mlp::forward", "tau.size()", tau.size(),
                       "the batch size, " + std::to_string(x.rows()));
    run(x, [&](Eigen::Index b) { return tau[static_cast<std::size_t>(b)]; }, out);
  }

  /// Forward pass at one time for the whole batch (what a sampler asks for). Also keeps the
  /// activations, so backward() may follow.
  void forward(input_ref x, double tau, output_ref out) {
    check_io(x, out, "mlp::forward");
    run(x, [tau](Eigen::Index) { return tau; }, out);
  }

  /// Sets gradients() to d loss / d parameters for the last forward pass, given grad_out =
  /// d loss / d out ([B, D], the batch of that pass), by reverse-mode differentiation
  /// (Rumelhart, Hinton & Williams 1986). Overwrites, does not accumulate.
  /// \throws std::logic_error without a preceding forward pass; std::invalid_argument on a shape mismatch.
  void backward(input_ref grad_out) {
    if (m_batch < 0) throw std::logic_error("mlp::backward: no forward pass to differentiate");
    if (grad_out.rows() != m_batch || grad_out.cols() != static_cast<Eigen::Index>(m_config.data_dim))
      diffusion::throw_invalid("mlp::backward", "grad_out shape",
                               std::to_string(grad_out.rows()) + " x " + std::to_string(grad_out.cols()),
                               "the shape of the last forward output, " + std::to_string(m_batch) + " x " +
                                   std::to_string(m_config.data_dim));
    const std::size_t last = m_config.linear_layers() - 1;
    m_delta = grad_out;
    for (std::size_t l = last + 1; l-- > 0;) {
      const matrix& input = l == 0 ? m_input : m_act[l - 1];
      // Z_l = A_{l-1} W_l^T + 1 b_l^T, so dW_l = dZ_l^T A_{l-1} and db_l = 1^T dZ_l.
      weight_grad(l).noalias() = m_delta.transpose() * input;
      bias_grad(l) = m_delta.colwise().sum().transpose();
      if (l == 0) break;
      // dA_{l-1} = dZ_l W_l, then through silu: silu'(z) = s (1 + z (1 - s)), s = sigmoid(z).
      m_delta_prev.noalias() = m_delta * weight(l);
      const auto z = m_pre[l - 1].array();
      const auto s = m_sig[l - 1].array();
      m_delta = (m_delta_prev.array() * s * (S(1) + z * (S(1) - s))).matrix();
    }
  }

 private:
  explicit mlp(const mlp_config& config) : m_config(checked(config)) {
    const std::size_t n = m_config.linear_layers();
    m_offsets.resize(n);
    std::size_t off = 0;
    for (std::size_t l = 0; l < n; ++l) {
      m_offsets[l] = off;
      off += m_config.out_features(l) * (m_config.in_features(l) + 1);
    }
    m_params.assign(off, S(0));
    m_grads.assign(off, S(0));
    m_pre.resize(m_config.hidden_layers);
    m_sig.resize(m_config.hidden_layers);
    m_act.resize(m_config.hidden_layers);
  }

  static const mlp_config& checked(const mlp_config& c) {
    c.validate();
    return c;
  }

  void check_io(const input_ref& x, const output_ref& out, const char* where) const {
    const auto d = static_cast<Eigen::Index>(m_config.data_dim);
    if (x.cols() != d)
      diffusion::throw_invalid(where, "x.cols()", x.cols(), "the network's data_dim, " + std::to_string(d));
    if (out.rows() != x.rows() || out.cols() != d)
      diffusion::throw_invalid(where, "out shape", std::to_string(out.rows()) + " x " + std::to_string(out.cols()),
                               std::to_string(x.rows()) + " x " + std::to_string(d) + " (the shape of x)");
  }

  using weight_map = Eigen::Map<matrix>;
  using const_weight_map = Eigen::Map<const matrix>;
  using bias_map = Eigen::Map<vector>;
  using const_bias_map = Eigen::Map<const vector>;

  const_weight_map weight(std::size_t l) const {
    return const_weight_map(m_params.data() + m_offsets[l], static_cast<Eigen::Index>(m_config.out_features(l)),
                            static_cast<Eigen::Index>(m_config.in_features(l)));
  }
  const_bias_map bias(std::size_t l) const {
    return const_bias_map(m_params.data() + m_offsets[l] + m_config.out_features(l) * m_config.in_features(l),
                          static_cast<Eigen::Index>(m_config.out_features(l)));
  }
  weight_map weight_grad(std::size_t l) {
    return weight_map(m_grads.data() + m_offsets[l], static_cast<Eigen::Index>(m_config.out_features(l)),
                      static_cast<Eigen::Index>(m_config.in_features(l)));
  }
  bias_map bias_grad(std::size_t l) {
    return bias_map(m_grads.data() + m_offsets[l] + m_config.out_features(l) * m_config.in_features(l),
                    static_cast<Eigen::Index>(m_config.out_features(l)));
  }

  /// The input rows [x_b, e(tau_b)].
  template <class Tau>
  void embed(const input_ref& x, Tau tau_of) {
    const Eigen::Index batch = x.rows(), d = x.cols();
    const std::size_t pairs = m_config.embed_dim / 2;
    m_input.resize(batch, d + static_cast<Eigen::Index>(m_config.embed_dim));
    m_input.leftCols(d) = x;
    std::vector<double>& w = m_frequencies;
    if (w.size() != pairs) {
      w.resize(pairs);
      for (std::size_t k = 0; k < pairs; ++k) w[k] = frequency(k);
    }
    for (Eigen::Index b = 0; b < batch; ++b) {
      const double tau = tau_of(b);
      for (std::size_t k = 0; k < pairs; ++k) {
        const double angle = w[k] * tau;
        m_input(b, d + static_cast<Eigen::Index>(2 * k)) = static_cast<S>(std::sin(angle));
        m_input(b, d + static_cast<Eigen::Index>(2 * k + 1)) = static_cast<S>(std::cos(angle));
      }
    }
  }

  template <class Tau>
  void run(const input_ref& x, Tau tau_of, output_ref& out) {
    embed(x, tau_of);
    const std::size_t last = m_config.linear_layers() - 1;
    for (std::size_t l = 0; l < last; ++l) {
      const matrix& input = l == 0 ? m_input : m_act[l - 1];
      m_pre[l].noalias() = input * weight(l).transpose();
      m_pre[l].rowwise() += bias(l).transpose();
      // sigmoid(z) = 1 / (1 + exp(-z)); exp overflows to inf for z << 0, which gives the right 0.
      m_sig[l] = ((-m_pre[l].array()).exp() + S(1)).inverse().matrix();
      m_act[l] = (m_pre[l].array() * m_sig[l].array()).matrix();
    }
    out.noalias() = m_act[last - 1] * weight(last).transpose();
    out.rowwise() += bias(last).transpose();
    m_batch = x.rows();
  }

  mlp_config m_config;
  std::vector<std::size_t> m_offsets;  // start of layer l in the flat arrays
  std::vector<S> m_params, m_grads;
  std::vector<double> m_frequencies;
  // Activations of the last forward pass (resized only when the batch size changes).
  Eigen::Index m_batch = -1;
  matrix m_input;                       // [B, D + E]
  std::vector<matrix> m_pre, m_sig, m_act;  // per hidden layer: z, sigmoid(z), silu(z)
  matrix m_delta, m_delta_prev;         // backward scratch
};

}  // namespace examples
