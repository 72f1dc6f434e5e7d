// SPDX-License-Identifier: MIT
// The DDPM training loss (Ho et al. 2020), a preset of the denoising loss: t ~ U{0..T-1}, the
// network's own target, weight 1 or min-SNR-gamma.
#pragma once

#include <utility>

#include "../model/parameterization.hpp"
#include "../process/concepts.hpp"
#include "denoising_loss.hpp"
#include "time_sampling.hpp"
#include "weighting.hpp"

namespace diffusion {

/// The DDPM loss for a network predicting `Target` (eps by default; x0, or v of Salimans & Ho 2022):
/// t ~ U{0, ..., T-1} over all training timesteps of the discrete VP process, weighted by
/// `Weighting` (unit_weight: L_simple and its x0 / v analogues; min_snr_weight{gamma}: Hang et al.
/// 2023).
///
///     auto loss = diffusion::ddpm_loss{process, diffusion::v_param{}, diffusion::min_snr_weight{5.0}};
template <class Process, class Target = eps_param, class Weighting = unit_weight>
class ddpm_loss : public denoising_loss<Process, uniform_discrete_time, Target, Weighting> {
  static_assert(discrete_vp_process<Process>,
                "diffusion::ddpm_loss needs a discrete variance-preserving process with alpha_bar(t) and "
                "num_timesteps() (e.g. diffusion::vp_discrete::linear()); for other processes use "
                "diffusion::denoising_loss with the matching time sampling");
  using base = denoising_loss<Process, uniform_discrete_time, Target, Weighting>;

 public:
  explicit ddpm_loss(Process process, Target target_ = {}, Weighting weighting = {}, loss_options options = {})
      // uniform_discrete_time::over reads a copy of the process: argument evaluation order is
      // unspecified, so `process` must not be moved from in the same call.
      : base(process, uniform_discrete_time::over(process), target_, std::move(weighting), options) {}
};

/// L_simple, Ho et al. 2020, Eq. 14: E_{t, x0, eps} |eps - eps_theta(sqrt(abar_t) x0 +
/// sqrt(1 - abar_t) eps, t)|^2 with t ~ U{0..T-1}, optionally min-SNR-gamma weighted:
///
///     auto loss = diffusion::ddpm_eps_loss{process};                                  // weight 1
///     auto loss = diffusion::ddpm_eps_loss{process, diffusion::min_snr_weight{5.0}};  // Hang et al. 2023
template <class Process, class Weighting = unit_weight>
class ddpm_eps_loss : public ddpm_loss<Process, eps_param, Weighting> {
 public:
  explicit ddpm_eps_loss(Process process, Weighting weighting = {}, loss_options options = {})
      : ddpm_loss<Process, eps_param, Weighting>(std::move(process), eps_param{}, std::move(weighting), options) {}
};

}  // namespace diffusion
