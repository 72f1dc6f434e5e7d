#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes pc_samplers.json: runs of score_sde's predictor-corrector sampler, transcribed, with the
predictors and correctors the copied golden file scoresde_pc_vp_em.json (Euler-Maruyama, no
corrector) does not cover, for tests/sampler/pc_golden.

    /usr/bin/python3 tests/data/generate_pc_samplers.py > tests/data/pc_samplers.json

Needs numpy and torch (Debian: python3-numpy, python3-torch); only to regenerate the file. torch
serves only for torch.linspace (the time grid and the discrete tables, which score_sde builds with
it); everything else is numpy float64. score_sde is not packaged, so the functions below transcribe
yang-song/score_sde_pytorch @ cb1f359f4aadf0ff9a5e122fe8fffc9451fd6e44 (the commit of the other
score_sde files) line by line in float64, with the network replaced by the exact score of the 2-D
Gaussian mixture of the other golden files:

- sampling.py `get_pc_sampler`: x = sde.prior_sampling(shape); timesteps = linspace(T, eps, N);
  at each t the corrector's update, then the predictor's; the result is the last predictor's
  x_mean if denoise else its x;
- `EulerMaruyamaPredictor` (dt = -1/N; x_mean = x + rsde.sde drift dt; x = x_mean + g sqrt(-dt) z),
  `ReverseDiffusionPredictor` (rev_f, rev_G = rsde.discretize; x_mean = x - rev_f;
  x = x_mean + rev_G z; with probability_flow the score term is halved and rev_G = 0) and
  `AncestralSamplingPredictor` (vpsde_update_fn, vesde_update_fn);
- `LangevinCorrector` (step = (snr |z|_mean / |score|_mean)^2 2 alpha_i, the norms averaged over
  the batch, alpha_i = sde.alphas[i] for VP and sub-VP, 1 for VE; x += step score + sqrt(2 step) z),
  `AnnealedLangevinDynamics` (step = (snr std(t))^2 2 alpha_i) and `NoneCorrector`;
- sde_lib.py `VPSDE`, `subVPSDE`, `VESDE` (.sde, .marginal_prob, .discretize, .prior_sampling) and
  `SDE.discretize` (Euler-Maruyama, dt = 1/N, which subVPSDE inherits), `SDE.reverse` (RSDE.sde,
  RSDE.discretize).

One deliberate departure: score_sde's LangevinCorrector (and AnnealedLangevinDynamics) reads
`sde.alphas` for subVPSDE too, but subVPSDE has no `alphas` attribute, so there score_sde fails
with an AttributeError. The sub-VP case uses VP's table 1 - linspace(beta_min/N, beta_max/N, N),
which that branch evidently intends and which the library takes (vp_sde and subvp_sde share it).

The model: score_fn(x, t) is the mixture's exact score at sde.marginal_prob's mean coefficient and
std (get_score_fn divides a continuous VP model's output by the same std, so a model returning
-std * score gives this). VP and sub-VP use N = 25, not 20: their discrete betas are
linspace(beta_min/N, beta_max/N, N), and with beta_max = 20 and N = 20 the last one is 1, where
the DDPM discretization and the ancestral step divide by sqrt(1 - beta) = 0.

Inputs are N(0, 1) draws rounded to 6 decimals (numpy default_rng, seeds below), drawn in the
order the sampler consumes them (the prior draw first); outputs keep every digit (repr). Each case
also records x after every full step (corrector, then predictor), and the script checks that a 1%
larger snr moves the final sample of each case with a corrector by far more than the tests'
tolerance (the field snr_plus_1_percent_max_change), so that a wrong Langevin step size cannot pass.
"""

import json
import math
import sys

import numpy as np
import torch

WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]])
STD = 0.3
PEER = "yang-song/score_sde_pytorch @ cb1f359f4aadf0ff9a5e122fe8fffc9451fd6e44"


def linspace(start, end, n):
    """torch.linspace in float64, as score_sde calls it (its tables and time grid)."""
    return torch.linspace(start, end, n, dtype=torch.float64).numpy()


def mixture_score(x, mean_coeff, std):
    """The exact score of the mixture perturbed to x = mean_coeff x0 + std eps: its components are
    N(mean_coeff mu_k, (mean_coeff^2 s^2 + std^2) I)."""
    v = mean_coeff * mean_coeff * STD * STD + std * std
    diff = x[:, None, :] - mean_coeff * MEANS[None, :, :]
    log_w = np.log(WEIGHTS)[None, :] - 0.5 * (diff ** 2).sum(-1) / v
    r = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    r /= r.sum(axis=1, keepdims=True)
    return (r[:, :, None] * (-diff) / v).sum(axis=1)


# --- sde_lib.py ----------------------------------------------------------------------------------
# t is a scalar here (score_sde's vec_t holds the same t for every sample).

class VPSDE:
    name = "vp"

    def __init__(self, beta_min, beta_max, N):
        self.beta_0, self.beta_1, self.N, self.T = beta_min, beta_max, N, 1.0
        self.discrete_betas = linspace(beta_min / N, beta_max / N, N)
        self.alphas = 1. - self.discrete_betas

    def params(self):
        return {"type": self.name, "beta_min": self.beta_0, "beta_max": self.beta_1, "N": self.N}

    def sde(self, x, t):
        beta_t = self.beta_0 + t * (self.beta_1 - self.beta_0)
        return -0.5 * beta_t * x, math.sqrt(beta_t)

    def mean_coeff_std(self, t):
        log_mean_coeff = -0.25 * t ** 2 * (self.beta_1 - self.beta_0) - 0.5 * t * self.beta_0
        return math.exp(log_mean_coeff), math.sqrt(1. - math.exp(2. * log_mean_coeff))

    def prior_sampling(self, randn, shape):
        return randn(shape)

    def discretize(self, x, t):
        timestep = int(t * (self.N - 1) / self.T)
        beta = self.discrete_betas[timestep]
        alpha = self.alphas[timestep]
        f = math.sqrt(alpha) * x - x
        return f, math.sqrt(beta)


class SubVPSDE:
    name = "subvp"

    def __init__(self, beta_min, beta_max, N):
        self.beta_0, self.beta_1, self.N, self.T = beta_min, beta_max, N, 1.0
        # Not in score_sde's subVPSDE (see the module comment): VP's table, for the Langevin alpha.
        self.alphas = 1. - linspace(beta_min / N, beta_max / N, N)

    def params(self):
        return {"type": self.name, "beta_min": self.beta_0, "beta_max": self.beta_1, "N": self.N}

    def sde(self, x, t):
        beta_t = self.beta_0 + t * (self.beta_1 - self.beta_0)
        discount = 1. - math.exp(-2 * self.beta_0 * t - (self.beta_1 - self.beta_0) * t ** 2)
        return -0.5 * beta_t * x, math.sqrt(beta_t * discount)

    def mean_coeff_std(self, t):
        log_mean_coeff = -0.25 * t ** 2 * (self.beta_1 - self.beta_0) - 0.5 * t * self.beta_0
        return math.exp(log_mean_coeff), 1 - math.exp(2. * log_mean_coeff)

    def prior_sampling(self, randn, shape):
        return randn(shape)

    def discretize(self, x, t):
        """SDE.discretize, the base class's Euler-Maruyama step."""
        dt = 1 / self.N
        drift, diffusion = self.sde(x, t)
        return drift * dt, diffusion * math.sqrt(dt)


class VESDE:
    name = "ve"

    def __init__(self, sigma_min, sigma_max, N):
        self.sigma_min, self.sigma_max, self.N, self.T = sigma_min, sigma_max, N, 1.0
        self.discrete_sigmas = np.exp(linspace(np.log(sigma_min), np.log(sigma_max), N))

    def params(self):
        return {"type": self.name, "sigma_min": self.sigma_min, "sigma_max": self.sigma_max, "N": self.N}

    def sde(self, x, t):
        sigma = self.sigma_min * (self.sigma_max / self.sigma_min) ** t
        return np.zeros_like(x), sigma * math.sqrt(2 * (np.log(self.sigma_max) - np.log(self.sigma_min)))

    def mean_coeff_std(self, t):
        return 1.0, self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def prior_sampling(self, randn, shape):
        return randn(shape) * self.sigma_max

    def discretize(self, x, t):
        timestep = int(t * (self.N - 1) / self.T)
        sigma = self.discrete_sigmas[timestep]
        adjacent_sigma = 0.0 if timestep == 0 else self.discrete_sigmas[timestep - 1]
        return np.zeros_like(x), math.sqrt(sigma ** 2 - adjacent_sigma ** 2)


class RSDE:
    """SDE.reverse(score_fn, probability_flow)."""

    def __init__(self, sde, score_fn, probability_flow):
        self.base, self.score_fn, self.probability_flow, self.N = sde, score_fn, probability_flow, sde.N

    def sde(self, x, t):
        drift, diffusion = self.base.sde(x, t)
        score = self.score_fn(x, t)
        drift = drift - diffusion ** 2 * score * (0.5 if self.probability_flow else 1.)
        return drift, 0. if self.probability_flow else diffusion

    def discretize(self, x, t):
        f, G = self.base.discretize(x, t)
        rev_f = f - G ** 2 * self.score_fn(x, t) * (0.5 if self.probability_flow else 1.)
        return rev_f, 0. if self.probability_flow else G


# --- sampling.py ---------------------------------------------------------------------------------

def euler_maruyama(sde, score_fn, randn, x, t, probability_flow):
    rsde = RSDE(sde, score_fn, probability_flow)
    dt = -1. / rsde.N
    z = randn(x.shape)
    drift, diffusion = rsde.sde(x, t)
    x_mean = x + drift * dt
    return x_mean + diffusion * np.sqrt(-dt) * z, x_mean


def reverse_diffusion(sde, score_fn, randn, x, t, probability_flow):
    f, G = RSDE(sde, score_fn, probability_flow).discretize(x, t)
    z = randn(x.shape)
    x_mean = x - f
    return x_mean + G * z, x_mean


def ancestral_sampling(sde, score_fn, randn, x, t, probability_flow):
    assert not probability_flow
    timestep = int(t * (sde.N - 1) / sde.T)
    if isinstance(sde, VESDE):
        sigma = sde.discrete_sigmas[timestep]
        adjacent_sigma = 0.0 if timestep == 0 else sde.discrete_sigmas[timestep - 1]
        score = score_fn(x, t)
        x_mean = x + score * (sigma ** 2 - adjacent_sigma ** 2)
        std = math.sqrt((adjacent_sigma ** 2 * (sigma ** 2 - adjacent_sigma ** 2)) / (sigma ** 2))
        noise = randn(x.shape)
        return x_mean + std * noise, x_mean
    assert isinstance(sde, VPSDE), "AncestralSamplingPredictor supports VE and VP only"
    beta = sde.discrete_betas[timestep]
    score = score_fn(x, t)
    x_mean = (x + beta * score) / math.sqrt(1. - beta)
    noise = randn(x.shape)
    return x_mean + math.sqrt(beta) * noise, x_mean


def corrector_alpha(sde, t):
    if isinstance(sde, (VPSDE, SubVPSDE)):
        return sde.alphas[int(t * (sde.N - 1) / sde.T)]
    return 1.0


def langevin(sde, score_fn, randn, x, t, snr, n_steps):
    alpha = corrector_alpha(sde, t)
    x_mean = x
    for _ in range(n_steps):
        grad = score_fn(x, t)
        noise = randn(x.shape)
        grad_norm = np.linalg.norm(grad.reshape(grad.shape[0], -1), axis=-1).mean()
        noise_norm = np.linalg.norm(noise.reshape(noise.shape[0], -1), axis=-1).mean()
        step_size = (snr * noise_norm / grad_norm) ** 2 * 2 * alpha
        x_mean = x + step_size * grad
        x = x_mean + math.sqrt(step_size * 2) * noise
    return x, x_mean


def annealed_langevin(sde, score_fn, randn, x, t, snr, n_steps):
    alpha = corrector_alpha(sde, t)
    std = sde.mean_coeff_std(t)[1]
    x_mean = x
    for _ in range(n_steps):
        grad = score_fn(x, t)
        noise = randn(x.shape)
        step_size = (snr * std) ** 2 * 2 * alpha
        x_mean = x + step_size * grad
        x = x_mean + noise * math.sqrt(step_size * 2)
    return x, x_mean


def no_corrector(sde, score_fn, randn, x, t, snr, n_steps):
    return x, x


PREDICTORS = {"euler_maruyama": euler_maruyama, "reverse_diffusion": reverse_diffusion,
              "ancestral": ancestral_sampling}
CORRECTORS = {"langevin": langevin, "annealed_langevin": annealed_langevin, "none": no_corrector}


def pc_sampler(sde, predictor, corrector, randn, shape, snr, n_steps, probability_flow, denoise, eps):
    """get_pc_sampler's loop; also returns the grid, the discrete index at each t and x after each step."""
    def score_fn(x, t):
        return mixture_score(x, *sde.mean_coeff_std(t))

    x = sde.prior_sampling(randn, shape)
    x_T = x.copy()
    timesteps = linspace(sde.T, eps, sde.N)
    per_step = []
    for i in range(sde.N):
        t = float(timesteps[i])
        x, x_mean = CORRECTORS[corrector](sde, score_fn, randn, x, t, snr, n_steps)
        x, x_mean = PREDICTORS[predictor](sde, score_fn, randn, x, t, probability_flow)
        per_step.append(x_mean if denoise and i + 1 == sde.N else x)
    return x_T, timesteps, per_step


class Draws:
    """torch.randn / randn_like: new rounded N(0, 1) draws, recorded in consumption order, or a replay."""

    def __init__(self, rng=None, replay=None):
        self.rng, self.replay, self.used = rng, replay, []

    def __call__(self, shape):
        if self.replay is not None:
            z = self.replay[len(self.used)]
            assert z.shape == tuple(shape)
        else:
            z = np.round(self.rng.standard_normal(shape), 6)
        self.used.append(z)
        return z


def case(name, sde, predictor, corrector, seed, snr=0.16, n_steps=1, probability_flow=False, denoise=True,
         eps=1e-3, batch=8):
    run = dict(sde=sde, predictor=predictor, corrector=corrector, shape=(batch, 2), snr=snr, n_steps=n_steps,
               probability_flow=probability_flow, denoise=denoise, eps=eps)
    draws = Draws(rng=np.random.default_rng(seed))
    x_T, timesteps, per_step = pc_sampler(randn=draws, **run)
    expected = 1 + sde.N * ((n_steps if corrector != "none" else 0) + 1)
    assert len(draws.used) == expected, (len(draws.used), expected)
    out = {"name": name, "sde": sde.params(), "eps": eps, "predictor": predictor,
           "probability_flow": probability_flow, "corrector": corrector, "snr": snr, "n_steps": n_steps,
           "denoise": denoise, "timesteps": timesteps.tolist(),
           "discrete_index": [int(t * (sde.N - 1) / sde.T) for t in timesteps],
           "x_T": x_T.tolist(), "noise": [z.tolist() for z in draws.used],
           "per_step": [x.tolist() for x in per_step], "x": per_step[-1].tolist()}
    if corrector != "none":
        # The step size must matter: the same draws with snr 1% larger give a sample that differs by
        # far more than the tests' tolerance (rel 1e-10, abs 1e-12; and the eps-model runs' looser one).
        replay = Draws(replay=draws.used)
        _, _, other = pc_sampler(randn=replay, **dict(run, snr=snr * 1.01))
        change = float(np.abs(other[-1] - per_step[-1]).max())
        assert change > 1e-6, (name, change)
        out["snr_plus_1_percent_max_change"] = change
    return out


def main():
    vp = VPSDE(0.1, 20.0, 25)
    subvp = SubVPSDE(0.1, 20.0, 25)
    ve = VESDE(0.01, 50.0, 20)
    # score_sde samples VE with eps = 1e-5 and VP / sub-VP with 1e-3 (run_lib.py, sampling_eps).
    cases = [
        case("vp_reverse_diffusion_langevin", vp, "reverse_diffusion", "langevin", 41, denoise=True),
        case("ve_reverse_diffusion_langevin_2_steps", ve, "reverse_diffusion", "langevin", 42, n_steps=2,
             denoise=False, eps=1e-5),
        case("ve_ancestral_langevin", ve, "ancestral", "langevin", 43, denoise=True, eps=1e-5),
        case("vp_ancestral_none", vp, "ancestral", "none", 44, denoise=False),
        case("vp_euler_maruyama_annealed_langevin", vp, "euler_maruyama", "annealed_langevin", 45, denoise=True),
        case("subvp_euler_maruyama_langevin", subvp, "euler_maruyama", "langevin", 46, denoise=False),
        case("vp_reverse_diffusion_probability_flow_none", vp, "reverse_diffusion", "none", 47,
             probability_flow=True, denoise=True),
    ]
    out = {"format": "golden-v1",
           "generator": "tests/data/generate_pc_samplers.py (numpy " + np.__version__ + ", torch "
                        + torch.__version__ + ")",
           "peer": PEER + ", sampling.py get_pc_sampler with EulerMaruyamaPredictor, ReverseDiffusionPredictor, "
                   "AncestralSamplingPredictor, LangevinCorrector, AnnealedLangevinDynamics, NoneCorrector; sde_lib.py "
                   "VPSDE, subVPSDE, VESDE, SDE.discretize, SDE.reverse; transcribed (see the generator)",
           "model": "the mixture's exact score at sde.marginal_prob's mean coefficient and std",
           "data_distribution": {"weights": WEIGHTS.tolist(), "means": MEANS.tolist(), "std": STD},
           "noise_consumption": "noise[0] is the prior draw (x_T = noise[0], times sigma_max for VE); then at each "
                                "step the corrector's n_steps draws (none for the none corrector), then one "
                                "predictor draw, also on the last step and with probability_flow",
           "per_step_note": "x after each full step (corrector then predictor); the last entry is x_mean when denoise, "
                       "and equals x",
           "cases": cases}
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
