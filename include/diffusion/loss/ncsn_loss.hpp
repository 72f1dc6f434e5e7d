// SPDX-License-Identifier: MIT
// The NCSN training loss (Song & Ermon 2019), a preset of the denoising loss: a noise level drawn
// uniformly, the score of the perturbation kernel as target, lambda(sigma) = sigma^2.
#pragma once

#include <concepts>
#include <cstddef>
#include <utility>

#include "../core/errors.hpp"
#include "../model/parameterization.hpp"
#include "../process/concepts.hpp"
#include "denoising_loss.hpp"
#include "time_sampling.hpp"
#include "weighting.hpp"

namespace diffusion {

/// Denoising score matching over the levels of a discrete VE process (Song & Ermon 2019, Eqs. 5-6;
/// ncsnv2's `anneal_dsm_score_estimation` with anneal_power = 2):
///
///     L = E_{i ~ U{1..L}} E_{x0, eps} [ sigma_i^2 (1/2) sum_j (s(x0 + sigma_i eps, i)_j + eps_j / sigma_i)^2 ]
///
/// i.e. denoising_loss<Process, uniform_discrete_time over the levels, Target, sigma_squared_weight>
/// with the reduction (1/2) sum over a sample's elements (loss_reduction::half_sum, Eq. 5's factor
/// 1/2), averaged over the batch. The level index is drawn as floor(u L) (torch.randint(0, L)).
///
/// lambda = sigma^2 makes every level contribute alike: on the implied eps it is weight 1,
/// sigma^2 |s + eps/sigma|^2 = |(-sigma s) - eps|^2, so this loss equals (D/2) times the mean-reduced
/// eps loss of eps_hat = -sigma s on the same draws. A network predicting eps (or x0, v) trains on the
/// same objective with `Target = eps_param` (the weight is converted, weighting.hpp).
///
///     auto loss = diffusion::ncsn_loss{diffusion::ve_discrete::geometric(50.0, 0.01, 232)};
///
/// \tparam Process a discrete VE process with num_levels() (diffusion::ve_discrete).
/// \tparam Target  what the network predicts: score_param (NCSN's score network) by default.
template <class Process, class Target = score_param>
class ncsn_loss : public denoising_loss<Process, uniform_discrete_time, Target, sigma_squared_weight> {
  static_assert(discrete_ve_process<Process>, "diffusion::ncsn_loss needs a discrete variance-exploding process with noise levels (diffusion::ve_discrete); "
     "for DDPM processes use diffusion::ddpm_loss, for continuous SDEs diffusion::sde_dsm_loss");
  using base = denoising_loss<Process, uniform_discrete_time, Target, sigma_squared_weight>;

 public:
  /// \param options the reduction; (1/2) sum, the official one, by default.
  /// \throws std::invalid_argument if the process has no levels.
  explicit ncsn_loss(Process process, Target target_ = {},
                     loss_options options = {.reduction = loss_reduction::half_sum})
      // all_levels reads a copy of the process: argument evaluation order is unspecified, so
      // `process` must not be moved from in the same call.
      : base(process, all_levels(process), target_, sigma_squared_weight{}, options) {}

 private:
  static uniform_discrete_time all_levels(const Process& p) {
    const std::size_t levels = p.num_levels();
    require(levels >= 1, "ncsn_loss", "process.num_levels()", levels, "at least 1");
    return uniform_discrete_time(0, levels - 1);
  }
};

}  // namespace diffusion
