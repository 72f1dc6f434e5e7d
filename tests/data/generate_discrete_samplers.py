#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes discrete_samplers.json: runs of diffusers' DDPM and DDIM steps, transcribed, in the
configurations the golden files of diffusers do not cover, for tests/sampler/discrete_golden.

    /usr/bin/python3 tests/data/generate_discrete_samplers.py > tests/data/discrete_samplers.json

Needs numpy and torch (Debian: python3-numpy, python3-torch; torch.quantile is diffusers' dynamic
thresholding); only to regenerate the file. diffusers itself is not packaged for Debian, so the
step functions below transcribe DDPMScheduler.step and DDIMScheduler.step of huggingface/diffusers
@ 58eb52c0803ea9af3abec60841c2a093bdf1f951 (src/diffusers/schedulers/scheduling_ddpm.py and
scheduling_ddim.py, the commit of the other golden files) line by line in float64, with the model
replaced by the exact eps of the 2-D Gaussian mixture of the other golden files:

- DDPM with variance_type "fixed_large" (the step's beta instead of the posterior variance), on
  the trailing grid;
- DDPM with dynamic thresholding (torch.quantile of |x0| per sample, clamped to [1, max], divided);
- DDIM with eta = 0.5 on the leading grid, and eta = 1 on the trailing grid with
  set_alpha_to_one = False (sigma_t of Eq. 16 and one noise draw per step);
- DDIM with x0 clipped, use_clipped_model_output False (diffusers' default) and True.

Inputs are N(0, 1) draws rounded to 6 decimals (numpy default_rng, seeds below); outputs carry 17
significant digits.
"""

import json
import math
import sys

import numpy as np
import torch

WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]])
VAR = 0.3 * 0.3
BETAS = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)  # DDPMScheduler(beta_schedule="linear")
ALPHA_BAR = np.cumprod(1.0 - BETAS)


def eps_model(x, t):
    """The mixture's exact eps at timestep t: (x - sqrt(abar) E[x0 | x]) / sqrt(1 - abar)."""
    a, s = math.sqrt(ALPHA_BAR[t]), math.sqrt(1.0 - ALPHA_BAR[t])
    v = a * a * VAR + s * s
    diff = x[:, None, :] - a * MEANS[None, :, :]
    log_w = np.log(WEIGHTS)[None, :] - 0.5 * (diff ** 2).sum(-1) / v
    r = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    r /= r.sum(axis=1, keepdims=True)
    x0 = (r[:, :, None] * (MEANS[None, :, :] + (a * VAR / v) * diff)).sum(axis=1)
    return (x - a * x0) / s


def dynamic_threshold(x0, ratio, max_value):
    """DDPMScheduler._threshold_sample / DDIMScheduler._threshold_sample."""
    t = torch.from_numpy(x0.copy())
    s = torch.quantile(t.abs().reshape(t.shape[0], -1), ratio, dim=1)
    s = torch.clamp(s, min=1, max=max_value).unsqueeze(1)
    return (torch.clamp(t, -s, s) / s).numpy()


def ddpm(x, grid, draws, variance_type="fixed_small", threshold=None):
    """DDPMScheduler.step, epsilon prediction, prev_t from the grid (set_timesteps)."""
    used = 0
    for i, t in enumerate(grid):
        prev = grid[i + 1] if i + 1 < len(grid) else -1
        eps = eps_model(x, t)
        a_t = ALPHA_BAR[t]
        a_prev = ALPHA_BAR[prev] if prev >= 0 else 1.0
        b_t, b_prev = 1.0 - a_t, 1.0 - a_prev
        cur_a = a_t / a_prev
        cur_b = 1.0 - cur_a
        x0 = (x - b_t ** 0.5 * eps) / a_t ** 0.5
        if threshold is not None:
            x0 = dynamic_threshold(x0, *threshold)
        mean = (a_prev ** 0.5 * cur_b / b_t) * x0 + (cur_a ** 0.5 * b_prev / b_t) * x
        if t > 0:
            z = draws[used]
            used += 1
            var = max(b_prev / b_t * cur_b, 1e-20)
            if variance_type == "fixed_large":
                var = cur_b
            mean = mean + var ** 0.5 * z
        x = mean
    return x, used


def ddim(x, grid, draws, eta=0.0, set_alpha_to_one=True, clip=None, use_clipped_model_output=False):
    """DDIMScheduler.step, epsilon prediction, prev_t from the grid."""
    used = 0
    final = 1.0 if set_alpha_to_one else ALPHA_BAR[0]
    for i, t in enumerate(grid):
        prev = grid[i + 1] if i + 1 < len(grid) else -1
        a_t = ALPHA_BAR[t]
        a_prev = ALPHA_BAR[prev] if prev >= 0 else final
        b_t = 1.0 - a_t
        eps = eps_model(x, t)
        x0 = (x - b_t ** 0.5 * eps) / a_t ** 0.5
        if clip is not None:
            x0 = np.clip(x0, -clip, clip)
        std = eta * ((1.0 - a_prev) / b_t * (1.0 - a_t / a_prev)) ** 0.5
        if use_clipped_model_output:
            eps = (x - a_t ** 0.5 * x0) / b_t ** 0.5
        x = a_prev ** 0.5 * x0 + (1.0 - a_prev - std ** 2) ** 0.5 * eps
        if eta > 0:
            x = x + std * draws[used]
            used += 1
    return x, used


def leading(n, offset=0):
    return [k * (1000 // n) + offset for k in range(n)][::-1]


def trailing(n):
    return [int(v) for v in np.round(np.arange(1000, 0, -1000 / n)) - 1]


def case(name, sampler, grid, seed, n, run, options):
    rng = np.random.default_rng(seed)
    x_T = np.round(rng.standard_normal((n, 2)), 6)
    draws = np.round(rng.standard_normal((len(grid), n, 2)), 6)
    x, used = run(x_T, grid, draws)
    return {"name": name, "sampler": sampler, "grid": grid, "options": options, "x_T": x_T.tolist(),
            "noise": draws[:used].tolist(), "x": x.tolist()}


def main():
    n = 16
    cases = [
        case("ddpm_fixed_large_trailing_20", "ddpm", trailing(20), 31, n,
             lambda x, g, d: ddpm(x, g, d, "fixed_large"), {"variance": "fixed_large"}),
        case("ddpm_dynamic_threshold_0.7_1.5_leading_20", "ddpm", leading(20), 32, n,
             lambda x, g, d: ddpm(x, g, d, threshold=(0.7, 1.5)),
             {"dynamic_threshold": [0.7, 1.5]}),
        case("ddim_eta_0.5_leading_20", "ddim", leading(20), 33, n,
             lambda x, g, d: ddim(x, g, d, eta=0.5), {"eta": 0.5}),
        case("ddim_eta_1_trailing_20_alpha_bar_0", "ddim", trailing(20), 34, n,
             lambda x, g, d: ddim(x, g, d, eta=1.0, set_alpha_to_one=False),
             {"eta": 1.0, "set_alpha_to_one": False}),
        case("ddim_clip_1_leading_50_default", "ddim", leading(50), 35, n,
             lambda x, g, d: ddim(x, g, d, clip=1.0), {"clip": 1.0}),
        case("ddim_clip_1_leading_50_use_clipped_model_output", "ddim", leading(50), 35, n,
             lambda x, g, d: ddim(x, g, d, clip=1.0, use_clipped_model_output=True),
             {"clip": 1.0, "use_clipped_model_output": True}),
    ]
    out = {"format": "golden-v1",
           "generator": "tests/data/generate_discrete_samplers.py (numpy " + np.__version__ + ", torch "
                        + torch.__version__ + ")",
           "peer": "huggingface/diffusers @ 58eb52c0803ea9af3abec60841c2a093bdf1f951, DDPMScheduler.step and "
                   "DDIMScheduler.step transcribed (see the generator)",
           "schedule": "linear betas 1e-4 .. 0.02, 1000 training steps",
           "data_distribution": {"weights": WEIGHTS.tolist(), "means": MEANS.tolist(), "std": 0.3},
           "noise_consumption": "one draw of shape x per step that adds noise, in order (DDPM: none at t = 0; "
                                "DDIM: every step when eta > 0)",
           "cases": cases}
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
