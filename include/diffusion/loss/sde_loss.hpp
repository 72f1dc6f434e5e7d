// SPDX-License-Identifier: MIT
// The continuous-time denoising score matching loss of score SDEs (Song et al. 2021, "Score-Based
// Generative Modeling through Stochastic Differential Equations", Eq. 7), a preset of the
// denoising loss: t ~ U(eps_t, T), the score of the perturbation kernel as target, weight
// sigma(t)^2 or the likelihood weighting g(t)^2.
#pragma once

#include <cmath>
#include <utility>

#include "../core/errors.hpp"
#include "../model/parameterization.hpp"
#include "../process/sde_concepts.hpp"
#include "denoising_loss.hpp"
#include "likelihood_weight.hpp"
#include "time_sampling.hpp"
#include "weighting.hpp"

namespace diffusion {

/// Runtime options of sde_dsm_loss. The defaults are score_sde's (losses.py `get_sde_loss_fn`:
/// eps = 1e-5, reduce_mean = False).
struct sde_dsm_options {
  /// The smallest training time: t ~ U(eps_t, T), away from t = 0 where sigma(t) -> 0 and the
  /// score target -eps/sigma(t) diverges (VP, sub-VP). Must lie in (0, T).
  double eps_t = 1e-5;
  /// half_sum: score_sde's reduce_mean = False, (1/2) sum over a sample's elements; mean: its
  /// reduce_mean = True; sum: the plain sum.
  loss_reduction reduction = loss_reduction::half_sum;
};

/// Continuous-time denoising score matching (Song et al. 2021, Eq. 7; score_sde `get_sde_loss_fn`):
///
///     L = E_{t ~ U(eps_t, T)} E_{x0, eps} [ lambda(t) r sum_j (s(x_t, t)_j + eps_j / sigma(t))^2 ],
///     x_t = alpha(t) x0 + sigma(t) eps,
///
/// i.e. denoising_loss<Process, uniform_continuous_time{eps_t, T}, Target, Weighting>, with
/// lambda = sigma(t)^2 (sigma_squared_weight: score_sde's default, |sigma s + eps|^2) or g(t)^2
/// (likelihood_weight: Song et al. 2021b), r from options.reduction, averaged over the batch.
/// t is drawn as eps_t + u (T - eps_t) (score_sde's `torch.rand(B) * (sde.T - eps) + eps`).
///
///     auto loss = diffusion::sde_dsm_loss{diffusion::vp_sde{}};                                // sigma^2
///     auto ml   = diffusion::sde_dsm_loss{diffusion::ve_sde{}, diffusion::likelihood_weight{},
///                                         {.eps_t = 1e-5, .reduction = diffusion::loss_reduction::mean}};
///
/// \tparam Process   an SDE process (vp_sde, subvp_sde, ve_sde).
/// \tparam Weighting sigma_squared_weight (default) or likelihood_weight (or any loss_weighting).
/// \tparam Target    what the network predicts: score_param by default; eps_param etc. train the
///                   same objective with the weight converted (weighting.hpp).
template <class Process, class Weighting = sigma_squared_weight, class Target = score_param>
class sde_dsm_loss : public denoising_loss<Process, uniform_continuous_time, Target, Weighting> {
  static_assert(sde_process<Process>,
                "diffusion::sde_dsm_loss needs a continuous-time SDE process (diffusion::vp_sde, subvp_sde, ve_sde); "
                "for NCSN noise levels use diffusion::ncsn_loss, for DDPM processes diffusion::ddpm_loss");
  using base = denoising_loss<Process, uniform_continuous_time, Target, Weighting>;

 public:
  /// \throws std::invalid_argument unless options.eps_t is finite and in (0, T).
  explicit sde_dsm_loss(Process process, Weighting weighting = {}, sde_dsm_options options = {}, Target target_ = {})
      : base(std::move(process), training_times(options.eps_t), target_, std::move(weighting),
             loss_options{.reduction = options.reduction}),
        m_eps_t(options.eps_t) {}

  /// The smallest training time.
  double eps_t() const noexcept { return m_eps_t; }

 private:
  /// U(eps_t, T), checked here so that the message names eps_t rather than the sampler's t_min.
  static uniform_continuous_time training_times(double eps_t) {
    const double end = Process::end_time();
    if (!(std::isfinite(eps_t) && eps_t > 0.0 && eps_t < end)) [[unlikely]]
      detail::throw_invalid_parts("sde_dsm_loss", {"eps_t"}, eps_t, {"(0, T) = (0, ", end, ")"});
    return uniform_continuous_time(eps_t, end);
  }

  double m_eps_t;
};

}  // namespace diffusion
