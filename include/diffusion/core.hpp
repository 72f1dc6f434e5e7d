// SPDX-License-Identifier: MIT
// Everything in the library that names no tensor library, including the reference backend.
#pragma once

#include "core/errors.hpp"
#include "core/tensor.hpp"
#include "core/noise.hpp"
#include "core/observer.hpp"
#include "core/linspace.hpp"
#include "core/reduce.hpp"
#include "core/time_grid.hpp"

#include "random/random.hpp"

#include "backend/reference.hpp"

#include "process/concepts.hpp"
#include "process/beta_schedules.hpp"
#include "process/vp_discrete.hpp"
#include "process/forward.hpp"
#include "process/ve_discrete.hpp"
#include "process/sde_concepts.hpp"
#include "process/sde.hpp"

#include "model/parameterization.hpp"
#include "model/predictor.hpp"
#include "model/gaussian_mixture.hpp"

#include "loss/time_sampling.hpp"
#include "loss/weighting.hpp"
#include "loss/loss_batch.hpp"
#include "loss/denoising_loss.hpp"
#include "loss/ddpm_loss.hpp"
#include "loss/ncsn_loss.hpp"
#include "loss/likelihood_weight.hpp"
#include "loss/sde_loss.hpp"

#include "sampler/driver.hpp"
#include "sampler/ddpm.hpp"
#include "sampler/ddim.hpp"
#include "sampler/predictor_corrector.hpp"
#include "sampler/annealed_langevin.hpp"
#include "sampler/adaptive_sde.hpp"
#include "sampler/probability_flow.hpp"
#include "sampler/adaptive_ode.hpp"

#include "likelihood/divergence.hpp"
#include "likelihood/log_likelihood.hpp"
