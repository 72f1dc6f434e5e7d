// SPDX-License-Identifier: MIT
// The denoising loss, written once: the DDPM eps-loss, NCSN's denoising score matching and the
// continuous-time SDE objective differ only in how t is drawn, what the network is asked to output
// and how each t is weighted (DESIGN.md, "All three losses are the same denoising objective").
//
// Training is split in two phases so that any network code can back-propagate:
//
//     diffusion::loss_batch batch(x0);                       // storage, made once
//     loss.draw(be, x0, noise, batch);                       // t, eps, x_t, target, weights
//     net_forward(batch.x_t, batch.t, output);               // the user's network
//     double value = loss.evaluate(be, batch, output, grad); // value and d value / d output
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "../core/errors.hpp"
#include "../core/noise.hpp"
#include "../core/tensor.hpp"
#include "../model/parameterization.hpp"
#include "../process/concepts.hpp"
#include "loss_batch.hpp"
#include "time_sampling.hpp"
#include "weighting.hpp"

namespace diffusion {

/// How one sample's squared errors are reduced over its D elements before weighting. The batch is
/// always averaged.
enum class loss_reduction {
  mean,      ///< (1/D) sum_j: Ho et al.'s reference code (`nn.meanflat`) and diffusers
  sum,       ///< sum_j
  half_sum,  ///< (1/2) sum_j: score_sde's losses.py with reduce_mean = False, NCSN's Eq. 5 factor 1/2
};

/// Runtime options of a denoising loss.
struct loss_options {
  loss_reduction reduction = loss_reduction::mean;
};

namespace detail {

/// The factor applied to the sum over a sample's `d` elements.
inline double reduction_factor(loss_reduction r, std::size_t d) {
  switch (r) {
    case loss_reduction::mean: return d == 0 ? 0.0 : 1.0 / static_cast<double>(d);
    case loss_reduction::sum: return 1.0;
    case loss_reduction::half_sum: return 0.5;
  }
  return 0.0;
}

/// target = x0_coef x0 + eps_coef eps for a draw x_t = alpha x0 + sigma eps.
struct target_coefficients {
  double x0_coef;
  double eps_coef;
};

/// The regression target of each parameterization, from the clean sample and the noise:
///   eps:   eps                          (Ho et al. 2020, Eq. 14)
///   x0:    x0
///   v:     alpha eps - sigma x0         (Salimans & Ho 2022, Sec. 4)
///   score: -eps / sigma = grad log q(x_t | x0) = -(x_t - alpha x0) / sigma^2
///                                       (Vincent 2011; Song & Ermon 2019, Eq. 5)
/// These define the targets; converting a *prediction* between parameterizations happens only in
/// model/parameterization.hpp.
inline target_coefficients regression_target(parameterization target, double alpha, double sigma) {
  switch (target) {
    case parameterization::eps: return {0.0, 1.0};
    case parameterization::x0: return {1.0, 0.0};
    case parameterization::v: return {-sigma, alpha};
    case parameterization::score: return {0.0, -1.0 / sigma};
  }
  return {0.0, 0.0};
}

}  // namespace detail

/// The denoising objective
///
///     L = E_t E_{x0, eps} [ lambda(t) reduce_j (f(x_t, t)_j - y_j)^2 ],  x_t = alpha(t) x0 + sigma(t) eps,
///
/// with t from `TimeSampling`, the regression target y of `Target` (eps, x0, v or score of the
/// draw) and lambda(t) from `Weighting`. The Monte Carlo estimate on a batch of B samples is
///
///     value = (1/B) sum_b lambda(t_b) r sum_j (out_bj - y_bj)^2,
///
/// r = 1/D, 1 or 1/2 by loss_options::reduction, accumulated in double; its gradient is
/// d value / d out_bj = (2/B) lambda(t_b) r (out_bj - y_bj).
///
/// \tparam Process      a noise process (alpha(t), sigma(t), time_kind).
/// \tparam TimeSampling uniform_discrete_time or uniform_continuous_time (or any time_sampling of
///                      the process's time kind).
/// \tparam Target       what the network predicts: eps_param, x0_param, v_param or score_param.
/// \tparam Weighting    unit_weight, min_snr_weight, sigma_squared_weight or any loss_weighting.
///
/// The presets are ddpm_loss / ddpm_eps_loss (ddpm_loss.hpp).
template <class Process, class TimeSampling, class Target = eps_param, class Weighting = unit_weight>
class denoising_loss {
  static_assert(noise_process<Process>,
                "diffusion::denoising_loss: Process must be a noise process with alpha(t), sigma(t) and "
                "`using time_kind = diffusion::discrete_time;` (or continuous_time), e.g. diffusion::vp_discrete");
  static_assert(time_sampling<TimeSampling>,
                "diffusion::denoising_loss: TimeSampling must map u in [0, 1) to a time and declare time_kind, "
                "e.g. diffusion::uniform_discrete_time or diffusion::uniform_continuous_time");
  static_assert(std::same_as<typename Process::time_kind, typename TimeSampling::time_kind>,
                "diffusion::denoising_loss: the time sampling does not match the process: use "
                "diffusion::uniform_discrete_time with a discrete process (vp_discrete, NCSN levels) and "
                "diffusion::uniform_continuous_time with a continuous one (the SDEs)");
  static_assert(parameterization_tag<Target>,
                "diffusion::denoising_loss: Target must be what the network predicts: diffusion::eps_param, "
                "x0_param, v_param or score_param");
  static_assert(loss_weighting<Weighting, Process>,
                "diffusion::denoising_loss: Weighting must be callable as w(process, t, parameterization) -> "
                "double, e.g. diffusion::unit_weight, diffusion::min_snr_weight{5.0}");

 public:
  using process_type = Process;
  using time_sampling_type = TimeSampling;
  using target_type = Target;
  using weighting_type = Weighting;
  /// What the network is asked to output.
  static constexpr parameterization target = Target::kind;

  /// \throws std::invalid_argument if the time sampling reaches times the process rejects (the
  ///         process's own check names the time), a time with sigma(t) = 0 for a score target, or
  ///         a time whose weight is negative or not finite.
  denoising_loss(Process process, TimeSampling time, Target = {}, Weighting weighting = {},
                 loss_options options = {})
      : m_process(std::move(process)), m_time(std::move(time)), m_weighting(std::move(weighting)),
        m_options(options) {
    // Both ends of the time range get the checks perturb() makes, so that a range that reaches a
    // time the loss cannot use fails here and not in the middle of training (a float uniform is
    // exactly 0 once in 2^24 draws).
    constexpr std::string_view where = "denoising_loss";
    for (const double u : {0.0, std::nextafter(1.0, 0.0)}) {
      const double t = m_time(u);
      (void)m_process.alpha(t);
      const double sigma = m_process.sigma(t);
      if constexpr (target == parameterization::score)
        if (!(sigma > 0.0)) [[unlikely]]
          detail::throw_invalid_parts(where, {"time sampling end t"}, t,
                                      {"times with sigma(t) > 0 (the score target is -eps/sigma); start the "
                                       "time range above 0"});
      const double w = m_weighting(m_process, t, target);
      if (!(std::isfinite(w) && w >= 0.0)) [[unlikely]]
        detail::throw_invalid_parts(where, {"weight at the time sampling end t = ", t}, w,
                                    {"[0, inf) (start the time range where the weight is finite)"});
    }
  }

  const Process& process() const noexcept { return m_process; }
  const TimeSampling& time_sampling() const noexcept { return m_time; }
  const Weighting& weighting() const noexcept { return m_weighting; }
  const loss_options& options() const noexcept { return m_options; }

  /// lambda(t), the weight on the target's squared error at time t.
  double weight(double t) const { return m_weighting(m_process, t, target); }

  /// Draws one training batch: t_b for every sample from one uniform draw of `noise`, eps from one
  /// normal draw (t first, then eps, as Ho et al.'s and score_sde's training code), then perturb().
  ///
  /// \param x0    clean data, shaped as the batch was made for.
  /// \param noise a noise source (philox_noise, ...); with per-sample streams every sample's t and
  ///              eps are independent of the batch size.
  /// \throws std::invalid_argument if x0 is not shaped like the batch, or the source returns a
  ///         uniform outside [0, 1).
  template <class Backend, class Noise, tensor T>
  void draw(Backend& be, const T& x0, Noise&& noise, loss_batch<T>& batch) const {
    using S = scalar_of<T>;
    static_assert(noise_source<std::remove_cvref_t<Noise>, S>,
                  "diffusion::denoising_loss::draw: the noise must be a noise source with fill_normal(span, batch) "
                  "and fill_uniform(span, batch), e.g. diffusion::philox_noise{seed}");
    constexpr std::string_view where = "denoising_loss::draw";
    check_batch<Backend>(x0, batch, where);
    const std::size_t b_size = batch.size();
    noise.fill_uniform(std::span<S>(batch.uniform), b_size);
    for (std::size_t b = 0; b < b_size; ++b) {
      const double u = static_cast<double>(batch.uniform[b]);
      require(u >= 0.0 && u < 1.0, where, "uniform draw", u, "[0, 1)");
      batch.t[b] = m_time(u);
    }
    draw_normal(be, noise, batch.noise);
    perturb(be, x0, batch);
  }

  /// Forms x_t, the target and the weights from the times batch.t and the noise batch.noise as
  /// they are (draw() calls it; call it directly to replay the t and eps of another
  /// implementation). Allocation-free.
  ///
  ///     x_t = alpha(t_b) x0 + sigma(t_b) eps    (Ho et al. 2020, Eq. 4; Song et al. 2021, Eq. 29)
  ///
  /// \throws std::invalid_argument if x0 is not shaped like the batch, a time is invalid for the
  ///         process (or has sigma = 0 with a score target), or a weight is negative or not finite.
  template <class Backend, tensor T>
  void perturb(Backend& be, const T& x0, loss_batch<T>& batch) const {
    using S = scalar_of<T>;
    constexpr std::string_view where = "denoising_loss::perturb";
    check_batch<Backend>(x0, batch, where);
    for (std::size_t b = 0; b < batch.size(); ++b) {
      const double t = batch.t[b];
      if (!std::isfinite(t)) [[unlikely]]
        detail::throw_invalid_parts(where, {"t[", b, "]"}, t, {"a finite number"});
      batch.alpha[b] = m_process.alpha(t);
      batch.sigma[b] = m_process.sigma(t);
      if constexpr (target == parameterization::score)
        if (!(batch.sigma[b] > 0.0)) [[unlikely]]
          detail::throw_invalid_parts(where, {"t[", b, "]"}, t,
                                      {"times with sigma(t) > 0 (the score target is -eps/sigma)"});
      const double w = m_weighting(m_process, t, target);
      if (!(std::isfinite(w) && w >= 0.0)) [[unlikely]]
        detail::throw_invalid_parts(where, {"weight at t = ", t}, w, {"[0, inf)"});
      batch.weight[b] = w;
      batch.coef_a[b] = static_cast<S>(batch.alpha[b]);
      batch.coef_b[b] = static_cast<S>(batch.sigma[b]);
    }
    be.lincomb_per_sample(batch.x_t, std::span<const S>(batch.coef_a), x0, std::span<const S>(batch.coef_b),
                          batch.noise);
    form_target(be, x0, batch);
  }

  /// The loss value of the network's `output` for the drawn batch, and its gradient
  /// grad = d value / d output (shape of output; grad may alias output). Also sets
  /// batch.sample_loss[b] = lambda(t_b) r sum_j (out_bj - y_bj)^2, whose mean is the value.
  /// Allocation-free. `be` is the backend owning the tensors (the reduction runs over elements()).
  ///
  /// \throws std::invalid_argument if output or grad is not shaped like the batch.
  template <class Backend, tensor T>
  double evaluate(Backend& be, loss_batch<T>& batch, const T& output, T& grad) const {
    constexpr std::string_view where = "denoising_loss::evaluate";
    check_output<Backend>(batch, output, where, "output");
    check_output<Backend>(batch, grad, where, "grad");
    (void)be;
    return reduce<true>(batch, output, elements(grad));
  }

  /// The loss value only (no gradient); sets batch.sample_loss as above.
  template <class Backend, tensor T>
  double evaluate(Backend& be, loss_batch<T>& batch, const T& output) const {
    check_output<Backend>(batch, output, "denoising_loss::evaluate", "output");
    (void)be;
    return reduce<false>(batch, output, std::span<scalar_of<T>>{});
  }

 private:
  template <class Backend, tensor T>
  static void check_backend() {
    static_assert(tensor_backend<std::remove_cv_t<Backend>>,
                  "diffusion::denoising_loss: the first argument must be a backend satisfying "
                  "diffusion::tensor_backend (e.g. diffusion::reference_backend<double>)");
    static_assert(std::is_same_v<typename std::remove_cv_t<Backend>::tensor_type, T>,
                  "diffusion::denoising_loss: the tensors must be the backend's tensor_type");
  }

  template <class Backend, tensor T>
  static void check_batch(const T& x0, const loss_batch<T>& batch, std::string_view where) {
    check_backend<Backend, T>();
    if (!same_shape(x0, batch.x_t)) [[unlikely]]
      detail::throw_shape_mismatch(x0, batch.x_t, where, "x0", "the shape the loss_batch was made for");
    // The tensors a caller may replace (perturb() replays another implementation's noise) are
    // checked too: a backend need not check shapes itself, and would read or write past the end.
    if (!same_shape(batch.noise, x0)) [[unlikely]]
      detail::throw_shape_mismatch(batch.noise, x0, where, "batch.noise", "the shape of x0");
    if (!same_shape(batch.target, x0)) [[unlikely]]
      detail::throw_shape_mismatch(batch.target, x0, where, "batch.target", "the shape of x0");
    const std::size_t b_size = batch_size(x0);
    require(b_size >= 1, where, "batch size", b_size, "at least 1");
    const std::pair<std::string_view, std::size_t> vectors[] = {
        {"batch.t", batch.t.size()},         {"batch.alpha", batch.alpha.size()},
        {"batch.sigma", batch.sigma.size()}, {"batch.weight", batch.weight.size()},
        {"batch.sample_loss", batch.sample_loss.size()}, {"batch.uniform", batch.uniform.size()},
        {"batch.coef_a", batch.coef_a.size()}, {"batch.coef_b", batch.coef_b.size()}};
    for (const auto& [name, n] : vectors)
      if (n != b_size) [[unlikely]]
        detail::throw_invalid_parts(where, {name, ".size()"}, n, {"the batch size of x0, ", b_size});
  }

  template <class Backend, tensor T>
  static void check_output(const loss_batch<T>& batch, const T& y, std::string_view where,
                           std::string_view parameter) {
    check_backend<Backend, T>();
    if (!same_shape(y, batch.target)) [[unlikely]]
      detail::throw_shape_mismatch(y, batch.target, where, parameter, "the shape of x0 and batch.x_t");
    const std::size_t b_size = batch_size(y);
    require(b_size >= 1, where, "batch size", b_size, "at least 1");
    for (const std::size_t n : {batch.weight.size(), batch.sample_loss.size()})
      if (n != b_size) [[unlikely]]
        detail::throw_invalid_parts(where, {"loss_batch per-sample vector size"}, n,
                                    {"the batch size of ", parameter, ", ", b_size});
  }

  // target = x0_coef x0 + eps_coef eps; eps and x0 targets are exact copies.
  template <class Backend, tensor T>
  void form_target(Backend& be, const T& x0, loss_batch<T>& batch) const {
    using S = scalar_of<T>;
    if constexpr (target == parameterization::eps) {
      be.lincomb(batch.target, S(1), batch.noise);
    } else if constexpr (target == parameterization::x0) {
      be.lincomb(batch.target, S(1), x0);
    } else {
      for (std::size_t b = 0; b < batch.size(); ++b) {
        const detail::target_coefficients c = detail::regression_target(target, batch.alpha[b], batch.sigma[b]);
        batch.coef_a[b] = static_cast<S>(c.x0_coef);
        batch.coef_b[b] = static_cast<S>(c.eps_coef);
      }
      be.lincomb_per_sample(batch.target, std::span<const S>(batch.coef_a), x0, std::span<const S>(batch.coef_b),
                            batch.noise);
    }
  }

  // One pass: per-sample sums of squared errors in double, and the gradient when asked for.
  template <bool WithGrad, tensor T>
  double reduce(loss_batch<T>& batch, const T& output, std::span<scalar_of<T>> grad) const {
    using S = scalar_of<T>;
    const auto out = elements(output);
    const auto y = elements(batch.target);
    const std::size_t b_size = batch.size();
    const std::size_t d = sample_size(output);
    const double r = detail::reduction_factor(m_options.reduction, d);
    const double inv_b = 1.0 / static_cast<double>(b_size);
    double total = 0.0;
    for (std::size_t b = 0; b < b_size; ++b) {
      const double wr = batch.weight[b] * r;
      [[maybe_unused]] const double g_coef = 2.0 * wr * inv_b;
      double sq = 0.0;
      for (std::size_t i = b * d; i < (b + 1) * d; ++i) {
        const double e = static_cast<double>(out[i]) - static_cast<double>(y[i]);
        sq += e * e;
        if constexpr (WithGrad) grad[i] = static_cast<S>(g_coef * e);
      }
      batch.sample_loss[b] = wr * sq;
      total += batch.sample_loss[b];
    }
    return total * inv_b;
  }

  Process m_process;
  TimeSampling m_time;
  [[no_unique_address]] Weighting m_weighting;
  loss_options m_options;
};

}  // namespace diffusion
