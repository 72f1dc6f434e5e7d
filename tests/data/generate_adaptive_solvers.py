#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes adaptive_solvers.json: reference runs of the two adaptive solvers on the 2-D Gaussian
mixture of the other golden files, for tests/sampler/adaptive_golden.test.cpp.

    /usr/bin/python3 tests/data/generate_adaptive_solvers.py > tests/data/adaptive_solvers.json

Needs numpy and scipy (Debian: python3-numpy, python3-scipy); only to regenerate the file, never
to run the tests.

- Dormand-Prince (sample_adaptive / invert_adaptive): scipy.integrate.solve_ivp(method="RK45")
  itself, on the probability-flow ODE dx/dt = f(t) x - g(t)^2 / 2 score(x, t) (Song et al. 2021,
  Eq. 13) of the whole batch as one state vector, as score_sde's ODE sampler and likelihood call it.
  Its counts (accepted steps = len(t) - 1, evaluations = nfev) are what the library's must equal.
- The adaptive SDE solver (sample_adaptive_sde): Algorithm 1 of Jolicoeur-Martineau et al. 2021,
  "Gotta Go Fast When Generating Data with Score-Based Models", written out below as their code
  (`AdaptivePredictor` of github.com/AlexiaJM/score_sde_fast_sampling) computes it: the Euler-
  Maruyama proposal x' and the improved-Euler x'' share one noise draw z per attempt; the error
  E = (x'' - x') ... scaled by delta = max(eps_abs, eps_rel max(|x'|, |x'_prev|)); the batch norm
  (the RMS over samples of each sample's RMS, or its maximum); accept if E <= 1; h <- min(t - eps,
  theta h E^-r); the last step lands on eps; then x + sigma(eps)^2 score(x, eps).
  One independent implementation against the library's, so that a change to the error control
  or the step rule (which the by-hand tests, with huge tolerances, cannot see) shows as different
  counts, times or samples.

Inputs are N(0, 1) draws rounded to 6 decimals (numpy's default_rng with the seeds below), so the
text holds exactly the doubles used; outputs carry 17 significant digits.
"""

import json
import math
import sys

import numpy as np
from scipy.integrate import solve_ivp

WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]])
STD = 0.3


class VP:
    """Song et al. 2021, Eqs. 11 and 29 (beta_min 0.1, beta_max 20)."""
    name = "vp_sde"

    def __init__(self, beta_min=0.1, beta_max=20.0):
        self.b0, self.b1 = beta_min, beta_max

    def log_alpha(self, t):
        return -0.25 * t * t * (self.b1 - self.b0) - 0.5 * t * self.b0

    def alpha(self, t):
        return math.exp(self.log_alpha(t))

    def sigma(self, t):
        return math.sqrt(-math.expm1(2.0 * self.log_alpha(t)))

    def f(self, t):
        return -0.5 * (self.b0 + t * (self.b1 - self.b0))

    def g2(self, t):
        return self.b0 + t * (self.b1 - self.b0)


class SubVP(VP):
    """Song et al. 2021, Eq. 12: the VP drift, g^2 = beta(t) (1 - exp(-2 int_0^t beta)), std 1 - alpha^2."""
    name = "subvp_sde"

    def sigma(self, t):
        return -math.expm1(2.0 * self.log_alpha(t))

    def g2(self, t):
        return (self.b0 + t * (self.b1 - self.b0)) * -math.expm1(-2.0 * self.b0 * t - (self.b1 - self.b0) * t * t)


class VE:
    """Song et al. 2021, Eq. 30: sigma(t) = sigma_min (sigma_max / sigma_min)^t, no drift."""
    name = "ve_sde"

    def __init__(self, sigma_min=0.01, sigma_max=50.0):
        self.s0, self.s1 = sigma_min, sigma_max

    def alpha(self, t):
        return 1.0

    def sigma(self, t):
        return self.s0 * (self.s1 / self.s0) ** t

    def f(self, t):
        return 0.0

    def g2(self, t):
        return self.sigma(t) ** 2 * 2.0 * (math.log(self.s1) - math.log(self.s0))


def score(p, x, t):
    """The mixture's exact score at time t: components N(alpha mu_k, (alpha^2 s^2 + sigma^2) I)."""
    a, s = p.alpha(t), p.sigma(t)
    v = a * a * STD * STD + s * s
    diff = x[:, None, :] - a * MEANS[None, :, :]
    log_w = np.log(WEIGHTS)[None, :] - 0.5 * (diff ** 2).sum(-1) / v
    r = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    r /= r.sum(axis=1, keepdims=True)
    return (r[:, :, None] * (-diff) / v).sum(axis=1)


def normals(rng, shape):
    return np.round(rng.standard_normal(shape), 6)


def adaptive_sde(p, x_T, draws, o):
    """Algorithm 1 of Jolicoeur-Martineau et al. 2021 as their AdaptivePredictor computes it."""
    x, x_prev = x_T.copy(), x_T.copy()
    t, h, eps = 1.0, o["h_init"], o["eps"]
    accepted = rejected = calls = used = 0
    steps = []
    while t > eps:
        t_next = eps if h >= t - eps else t - h
        h_step = t - t_next
        z = draws[used]
        used += 1
        k1 = h_step * (-p.f(t) * x + p.g2(t) * score(p, x, t)) + math.sqrt(h_step * p.g2(t)) * z
        x1 = x + k1
        k2 = h_step * (-p.f(t_next) * x1 + p.g2(t_next) * score(p, x1, t_next)) + math.sqrt(h_step * p.g2(t_next)) * z
        x2 = x + 0.5 * (k1 + k2)
        calls += 2
        delta = np.maximum(o["eps_abs"], o["eps_rel"] * np.maximum(np.abs(x1), np.abs(x_prev)))
        per_sample = np.sqrt(np.mean(((x2 - x1) / delta) ** 2, axis=1))
        error = per_sample.max() if o["per_sample_max"] else math.sqrt(np.mean(per_sample ** 2))
        if error <= 1.0:
            steps.append([t, t_next])
            x, x_prev, t = x2, x1, t_next
            accepted += 1
        else:
            rejected += 1
        h = min(t - eps, o["safety"] * h_step * error ** -o["exponent"]) if error > 0 else t - eps
    if o["denoise"]:
        s = p.sigma(eps)
        x = x + s * s * score(p, x, eps)
        calls += 1
    return x, used, steps, {"accepted": accepted, "rejected": rejected, "model_calls": calls}


def sde_case(name, p, n, seed, options):
    rng = np.random.default_rng(seed)
    x_T = normals(rng, (n, 2)) * (p.sigma(1.0) if isinstance(p, VE) else 1.0)
    draws = normals(rng, (4000, n, 2))
    x, used, steps, report = adaptive_sde(p, x_T, draws, options)
    return {"name": name, "process": p.name, "options": options, "x_T": x_T.tolist(), "noise": draws[:used].tolist(),
            "step_times": steps, "report": report, "x": x.tolist()}


def flow(p, n):
    def rhs(t, y):
        x = y.reshape(n, 2)
        return (p.f(t) * x - 0.5 * p.g2(t) * score(p, x, t)).ravel()
    return rhs


def ode_case(name, p, n, seed, rtol, atol, first_step, invert):
    rng = np.random.default_rng(seed)
    x0 = normals(rng, (n, 2))
    if not invert and isinstance(p, VE):
        x0 = np.round(x0 * p.sigma(1.0), 6)
    eps = 1e-3
    t0, t1 = (eps, 1.0) if invert else (1.0, eps)
    kwargs = {"rtol": rtol, "atol": atol, "method": "RK45"}
    if first_step > 0:
        kwargs["first_step"] = first_step
    sol = solve_ivp(flow(p, n), (t0, t1), x0.ravel(), **kwargs)
    assert sol.success, sol.message
    return {"name": name, "process": p.name, "direction": "invert" if invert else "sample", "eps": eps,
            "rtol": rtol, "atol": atol, "first_step": first_step, "x_start": x0.tolist(),
            "accepted_steps": len(sol.t) - 1, "function_evaluations": int(sol.nfev),
            "x": sol.y[:, -1].reshape(n, 2).tolist()}


def main():
    base = {"eps_rel": 0.01, "eps_abs": 0.0078, "h_init": 0.01, "eps": 1e-3, "safety": 0.9, "exponent": 0.9,
            "denoise": True, "per_sample_max": False}
    sde = [
        sde_case("vp_paper_defaults", VP(), 4, 11, dict(base)),
        sde_case("ve_loose", VE(), 4, 12, dict(base, eps_rel=0.05, eps_abs=0.02)),
        sde_case("subvp_tight_large_first_step", SubVP(), 2, 13, dict(base, eps_rel=3e-3, eps_abs=3e-3, h_init=0.5)),
        sde_case("vp_per_sample_max_loose", VP(), 8, 14,
                 dict(base, eps_rel=0.05, eps_abs=0.01, safety=0.8, exponent=0.5, per_sample_max=True,
                      denoise=False)),
    ]
    ode = [
        ode_case("vp_sample", VP(), 16, 21, 1e-5, 1e-5, 0.0, False),
        ode_case("subvp_sample_loose", SubVP(), 8, 22, 1e-3, 1e-4, 0.0, False),
        ode_case("ve_sample", VE(), 8, 23, 1e-5, 1e-5, 0.0, False),
        ode_case("vp_invert_first_step", VP(), 8, 24, 1e-4, 1e-4, 0.05, True),
    ]
    out = {"format": "golden-v1",
           "generator": "tests/data/generate_adaptive_solvers.py (numpy " + np.__version__ + ", scipy "
                        + __import__("scipy").__version__ + ")",
           "data_distribution": {"weights": WEIGHTS.tolist(), "means": MEANS.tolist(), "std": STD},
           "noise_consumption": "adaptive SDE: one draw of shape x per attempted step, accepted or rejected, "
                                "in order; the ODE draws none",
           "adaptive_sde": sde, "dormand_prince": ode}
    json.dump(out, sys.stdout, separators=(",", ":"), default=float)
    sys.stdout.write("\n")
    for c in sde:
        print(c["name"], c["report"], file=sys.stderr)
    for c in ode:
        print(c["name"], c["accepted_steps"], c["function_evaluations"], file=sys.stderr)


if __name__ == "__main__":
    main()
