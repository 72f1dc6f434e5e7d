#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""One sampler step, the library against PyTorch eager, measured side by side in one run.

    /usr/bin/python3 benchmarks/compare_torch.py [--server BUILD/benchmarks/compare_torch_steps]
                                                 [--rounds 11] [--threads 1 2] [--steps ddpm ...]

The PyTorch side is written the way the popular Python scheduler library (Hugging Face diffusers)
writes its schedulers' `step`: the per-step scalar arithmetic done on 0-d tensors indexed with a
0-d timestep tensor, a new tensor for every intermediate, and the noise from torch.randn (its
`randn_tensor`). The model is excluded on both sides: its output is a fixed random tensor. The C++
side is the library's step (benchmarks/compare_torch_steps.cpp, a small server this script starts),
with Philox noise drawn by the library. Each round times a batch of PyTorch calls and then a batch
of library calls; the medians over the rounds give the speed-up. Both wall-clock and process CPU
times are recorded (the CPU times guard the one-thread rows against a busy machine).

Needs Debian's python3-torch (PyTorch 1.13) and python3-numpy; run with /usr/bin/python3.
"""

import argparse
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

SHAPES = [(2, 4096), (16, 3, 64, 64), (64, 3, 32, 32)]
STEPS = ["ddpm", "ddim", "ddim_eta1", "euler_maruyama", "langevin", "pf_heun"]
LABELS = {"ddpm": "DDPM ancestral (stochastic)", "ddim": "DDIM, eta = 0", "ddim_eta1": "DDIM, eta = 1 (stochastic)",
          "euler_maruyama": "Euler-Maruyama (stochastic)", "langevin": "Langevin corrector (stochastic)",
          "pf_heun": "probability-flow Heun (2 evaluations)"}
STEP_INDEX = 998  # the same step of a 1000-step grid as the C++ side (bench_common.hpp)


def randn_tensor(shape, generator=None, device=None, dtype=None, layout=None):
    """diffusers.utils.torch_utils.randn_tensor for a single CPU generator."""
    layout = layout or torch.strided
    device = device or torch.device("cpu")
    return torch.randn(shape, generator=generator, device=device, dtype=dtype, layout=layout).to(device)


class DDPMScheduler:
    """diffusers' DDPMScheduler.step (epsilon prediction, fixed_small variance, no clipping)."""

    def __init__(self, num_train_timesteps=1000):
        self.num_train_timesteps = num_train_timesteps
        self.betas = torch.linspace(1e-4, 0.02, num_train_timesteps, dtype=torch.float32)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self.one = torch.tensor(1.0)
        self.num_inference_steps = num_train_timesteps
        self.timesteps = torch.from_numpy(np.arange(0, num_train_timesteps)[::-1].copy())

    def previous_timestep(self, timestep):
        return timestep - self.num_train_timesteps // self.num_inference_steps

    def _get_variance(self, t):
        prev_t = self.previous_timestep(t)
        alpha_prod_t = self.alphas_cumprod[t]
        alpha_prod_t_prev = self.alphas_cumprod[prev_t] if prev_t >= 0 else self.one
        current_beta_t = 1 - alpha_prod_t / alpha_prod_t_prev
        variance = (1 - alpha_prod_t_prev) / (1 - alpha_prod_t) * current_beta_t
        variance = torch.clamp(variance, min=1e-20)
        return variance

    def step(self, model_output, timestep, sample, generator=None):
        t = timestep
        prev_t = self.previous_timestep(t)
        alpha_prod_t = self.alphas_cumprod[t]
        alpha_prod_t_prev = self.alphas_cumprod[prev_t] if prev_t >= 0 else self.one
        beta_prod_t = 1 - alpha_prod_t
        beta_prod_t_prev = 1 - alpha_prod_t_prev
        current_alpha_t = alpha_prod_t / alpha_prod_t_prev
        current_beta_t = 1 - current_alpha_t
        pred_original_sample = (sample - beta_prod_t ** (0.5) * model_output) / alpha_prod_t ** (0.5)
        pred_original_sample_coeff = (alpha_prod_t_prev ** (0.5) * current_beta_t) / beta_prod_t
        current_sample_coeff = current_alpha_t ** (0.5) * beta_prod_t_prev / beta_prod_t
        pred_prev_sample = pred_original_sample_coeff * pred_original_sample + current_sample_coeff * sample
        variance = 0
        if t > 0:
            variance_noise = randn_tensor(model_output.shape, generator=generator, device=model_output.device,
                                          dtype=model_output.dtype)
            variance = (self._get_variance(t) ** 0.5) * variance_noise
        pred_prev_sample = pred_prev_sample + variance
        return pred_prev_sample, pred_original_sample


class DDIMScheduler(DDPMScheduler):
    """diffusers' DDIMScheduler.step (epsilon prediction, no clipping, set_alpha_to_one)."""

    def __init__(self, num_train_timesteps=1000):
        super().__init__(num_train_timesteps)
        self.final_alpha_cumprod = torch.tensor(1.0)

    def _get_variance_ddim(self, timestep, prev_timestep):
        alpha_prod_t = self.alphas_cumprod[timestep]
        alpha_prod_t_prev = self.alphas_cumprod[prev_timestep] if prev_timestep >= 0 else self.final_alpha_cumprod
        beta_prod_t = 1 - alpha_prod_t
        beta_prod_t_prev = 1 - alpha_prod_t_prev
        return (beta_prod_t_prev / beta_prod_t) * (1 - alpha_prod_t / alpha_prod_t_prev)

    def step(self, model_output, timestep, sample, eta=0.0, generator=None):
        prev_timestep = timestep - self.num_train_timesteps // self.num_inference_steps
        alpha_prod_t = self.alphas_cumprod[timestep]
        alpha_prod_t_prev = self.alphas_cumprod[prev_timestep] if prev_timestep >= 0 else self.final_alpha_cumprod
        beta_prod_t = 1 - alpha_prod_t
        pred_original_sample = (sample - beta_prod_t ** (0.5) * model_output) / alpha_prod_t ** (0.5)
        pred_epsilon = model_output
        variance = self._get_variance_ddim(timestep, prev_timestep)
        std_dev_t = eta * variance ** (0.5)
        pred_sample_direction = (1 - alpha_prod_t_prev - std_dev_t**2) ** (0.5) * pred_epsilon
        prev_sample = alpha_prod_t_prev ** (0.5) * pred_original_sample + pred_sample_direction
        if eta > 0:
            variance_noise = randn_tensor(model_output.shape, generator=generator, device=model_output.device,
                                          dtype=model_output.dtype)
            variance = std_dev_t * variance_noise
            prev_sample = prev_sample + variance
        return prev_sample, pred_original_sample


class ScoreSdeVpScheduler:
    """diffusers' ScoreSdeVpScheduler.step_pred (Euler-Maruyama on the reverse VP SDE)."""

    def __init__(self, num_train_timesteps=1000, beta_min=0.1, beta_max=20, sampling_eps=1e-3):
        self.beta_min, self.beta_max = beta_min, beta_max
        self.timesteps = torch.linspace(1, sampling_eps, num_train_timesteps)

    def step_pred(self, score, x, t, generator=None):
        log_mean_coeff = -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min
        std = torch.sqrt(1.0 - torch.exp(2.0 * log_mean_coeff))
        std = std.flatten()
        while len(std.shape) < len(score.shape):
            std = std.unsqueeze(-1)
        score = -score / std
        dt = -1.0 / len(self.timesteps)
        beta_t = self.beta_min + t * (self.beta_max - self.beta_min)
        beta_t = beta_t.flatten()
        while len(beta_t.shape) < len(x.shape):
            beta_t = beta_t.unsqueeze(-1)
        drift = -0.5 * beta_t * x
        diffusion = torch.sqrt(beta_t)
        drift = drift - diffusion**2 * score
        x_mean = x + drift * dt
        noise = randn_tensor(x.shape, layout=x.layout, generator=generator, device=x.device, dtype=x.dtype)
        x = x_mean + diffusion * math.sqrt(-dt) * noise
        return x, x_mean


class ScoreSdeVeScheduler:
    """diffusers' ScoreSdeVeScheduler.step_correct (Langevin corrector with the snr rule)."""

    def __init__(self, snr=0.16):
        self.snr = snr

    def step_correct(self, model_output, sample, generator=None):
        noise = randn_tensor(sample.shape, layout=sample.layout, generator=generator).to(sample.device)
        grad_norm = torch.norm(model_output.reshape(model_output.shape[0], -1), dim=-1).mean()
        noise_norm = torch.norm(noise.reshape(noise.shape[0], -1), dim=-1).mean()
        step_size = (self.snr * noise_norm / grad_norm) ** 2 * 2
        step_size = step_size * torch.ones(sample.shape[0]).to(sample.device)
        step_size = step_size.flatten()
        while len(step_size.shape) < len(sample.shape):
            step_size = step_size.unsqueeze(-1)
        prev_sample_mean = sample + step_size * model_output
        prev_sample = prev_sample_mean + ((step_size * 2) ** 0.5) * noise
        return prev_sample, prev_sample_mean


class HeunDiscreteScheduler:
    """diffusers' HeunDiscreteScheduler.step (Karras et al. 2022, Alg. 1 without churn): two calls
    per step, the first storing the Euler derivative, the second averaging; epsilon prediction."""

    def __init__(self, num_steps=1000):
        self.sigmas = torch.cat([torch.linspace(80.0, 0.002, num_steps), torch.zeros(1)])
        self.prev_derivative = self.dt = self.sample = None
        self._step_index = STEP_INDEX

    @property
    def state_in_first_order(self):
        return self.dt is None

    def step(self, model_output, sample):
        if self.state_in_first_order:
            sigma = self.sigmas[self._step_index]
            sigma_next = self.sigmas[self._step_index + 1]
        else:
            sigma = self.sigmas[self._step_index - 1]
            sigma_next = self.sigmas[self._step_index]
        gamma = 0
        sigma_hat = sigma * (gamma + 1)
        sigma_input = sigma_hat if self.state_in_first_order else sigma_next
        pred_original_sample = sample - sigma_input * model_output
        if self.state_in_first_order:
            derivative = (sample - pred_original_sample) / sigma_hat
            dt = sigma_next - sigma_hat
            self.prev_derivative, self.dt, self.sample = derivative, dt, sample
        else:
            derivative = (sample - pred_original_sample) / sigma_next
            derivative = (self.prev_derivative + derivative) / 2
            dt, sample = self.dt, self.sample
            self.prev_derivative = self.dt = self.sample = None
        prev_sample = sample + derivative * dt
        self._step_index += 1
        return prev_sample


def torch_step(step, shape):
    """A closure running one step in PyTorch eager with fixed inputs (the model is excluded)."""
    gen = torch.Generator().manual_seed(0)
    sample = torch.randn(shape, generator=gen)
    model_output = torch.randn(shape, generator=gen)
    if step in ("ddpm", "ddim", "ddim_eta1"):
        sched = DDPMScheduler() if step == "ddpm" else DDIMScheduler()
        t = sched.timesteps[STEP_INDEX]  # a 0-d tensor, as a pipeline iterating over timesteps gets
        if step == "ddpm":
            return lambda: sched.step(model_output, t, sample)
        eta = 0.0 if step == "ddim" else 1.0
        return lambda: sched.step(model_output, t, sample, eta=eta)
    if step == "euler_maruyama":
        sched = ScoreSdeVpScheduler()
        t = sched.timesteps[STEP_INDEX] * torch.ones(shape[0])  # the pipeline's vec_t
        return lambda: sched.step_pred(model_output, sample, t)
    if step == "langevin":
        sched = ScoreSdeVeScheduler()
        return lambda: sched.step_correct(model_output, sample)
    if step == "pf_heun":
        sched = HeunDiscreteScheduler()
        second_output = torch.randn(shape, generator=gen)

        def heun():
            sched._step_index = STEP_INDEX  # every call times the same step
            x_euler = sched.step(model_output, sample)  # the model would be called on x_euler here
            return sched.step(second_output, x_euler)
        return heun
    raise ValueError(step)


class Server:
    """The C++ side: compare_torch_steps over a pipe."""

    def __init__(self, path):
        self.proc = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def time(self, step, threads, shape, calls):
        self.proc.stdin.write(f"{step} {threads} {'x'.join(map(str, shape))} {calls}\n")
        reply = self.proc.stdout.readline().split()
        if len(reply) != 2:
            raise RuntimeError(f"compare_torch_steps: {' '.join(reply)}")
        return float(reply[0]), float(reply[1])

    def close(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait()


def time_torch(f, calls):
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(calls):
        f()
    return time.perf_counter() - t0, time.process_time() - c0


def calls_for(seconds_per_call, budget=0.02):
    return max(3, int(budget / max(seconds_per_call, 1e-7)))


def measure(server, torch_name, lib_name, threads, shape, rounds):
    """Median seconds per call (wall, CPU) of PyTorch and of the library, interleaved round by round."""
    torch.set_num_threads(threads)
    f = torch_step(torch_name, shape)
    for _ in range(10):  # warm-up: allocator, kernels, the first pages
        f()
    wall, _ = time_torch(f, 5)
    n_torch = calls_for(wall / 5)
    w, _ = server.time(lib_name, threads, shape, 10)
    n_lib = calls_for(w / 10)
    tw, tc, lw, lc = [], [], [], []
    for _ in range(rounds):
        a, b = time_torch(f, n_torch)
        tw.append(a / n_torch)
        tc.append(b / n_torch)
        a, b = server.time(lib_name, threads, shape, n_lib)
        lw.append(a / n_lib)
        lc.append(b / n_lib)
    med = statistics.median
    return med(tw), med(tc), med(lw), med(lc)


def fmt(seconds):
    us = seconds * 1e6
    return f"{us:.2f}" if us < 10 else f"{us:.1f}" if us < 100 else f"{us:.0f}"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_server = os.path.join(here, "..", "build", "bench-native", "benchmarks", "compare_torch_steps")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default=default_server, help="the compare_torch_steps binary")
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--steps", nargs="+", default=STEPS, choices=STEPS + ["ddpm_lincomb_noise"])
    args = p.parse_args()

    server = Server(args.server)
    print(f"PyTorch {torch.__version__} (CPU capability {torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, 'cpu') else '?'}), "
          f"{os.cpu_count()} CPUs, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"medians of {args.rounds} interleaved rounds; µs per step, model excluded, noise included\n")
    results = []
    for threads in args.threads:
        print(f"### {threads} thread{'s' if threads > 1 else ''}\n")
        shapes = ["x".join(map(str, s)) for s in SHAPES]
        print("| step | " + " | ".join(f"{s}: PyTorch / library = speed-up (CPU-time speed-up)" for s in shapes) + " |")
        print("|---|" + "---:|" * len(shapes))
        for step in args.steps:
            torch_name = "ddpm" if step == "ddpm_lincomb_noise" else step
            cells = []
            for shape in SHAPES:
                tw, tc, lw, lc = measure(server, torch_name, step, threads, shape, args.rounds)
                results.append((threads, step, shape, tw / lw))
                cells.append(f"{fmt(tw)} / {fmt(lw)} = **{tw / lw:.1f}x** ({tc / lc:.1f}x)")
            label = "DDPM update via lincomb_noise" if step == "ddpm_lincomb_noise" else LABELS[step]
            print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
        print()
    server.close()

    # The targets: the stochastic step (DDPM ancestral) at least 3x faster than PyTorch eager at
    # 16x3x64x64 and at least 30x at 2x4096, one thread.
    print("Targets (DDPM ancestral step with noise, 1 thread):")
    for shape, target in (((16, 3, 64, 64), 3.0), ((2, 4096), 30.0)):
        got = [r for (t, s, sh, r) in results if t == 1 and s == "ddpm" and sh == shape]
        if got:
            print(f"- >= {target:.0f}x faster than PyTorch eager at {'x'.join(map(str, shape))}: "
                  f"{'MET' if got[0] >= target else 'MISSED'} ({got[0]:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
