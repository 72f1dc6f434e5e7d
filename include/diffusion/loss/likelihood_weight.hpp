// SPDX-License-Identifier: MIT
// The likelihood weighting lambda(t) = g(t)^2 of continuous-time score matching (Song, Durkan,
// Murray & Ermon 2021, "Maximum Likelihood Training of Score-Based Diffusion Models").
#pragma once

#include "../model/parameterization.hpp"
#include "../process/concepts.hpp"
#include "../process/sde_concepts.hpp"
#include "weighting.hpp"

namespace diffusion {

/// lambda(t) = g(t)^2 on the score error: with this weight the continuous score-matching objective
/// bounds the negative log-likelihood of the probability-flow / reverse-SDE model from above
/// (Song et al. 2021b, Thm. 1: KL(p_0 || p_theta) <= (1/2) int_0^T g(t)^2 E|s - grad log p_t|^2 dt
/// + KL(p_T || pi)); score_sde's `likelihood_weighting = True` (losses.py: g2 times the reduced
/// squared error of score + z/std).
///
/// On another target K the weight is converted as every weighting is (weighting.hpp): on eps it is
/// g^2 / sigma^2, since |s_hat - s|^2 = |eps_hat - eps|^2 / sigma^2 at fixed x_t.
///
/// Needs an SDE process (diffusion(t) = g(t)): vp_sde, subvp_sde, ve_sde.
struct likelihood_weight {
  template <class Process>
    requires has_marginal_coefficients<Process> && has_sde_coefficients<Process>
  double operator()(const Process& p, double t, parameterization target) const {
    const double g = p.diffusion(t);
    const double g2 = g * g;
    if (target == parameterization::score) return g2;
    const double sigma = p.sigma(t);
    return detail::weight_from_eps(g2 / (sigma * sigma), target, p.alpha(t), sigma);
  }
};

}  // namespace diffusion
