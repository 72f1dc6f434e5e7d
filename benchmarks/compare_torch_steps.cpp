// SPDX-License-Identifier: MIT
// The C++ half of benchmarks/compare_torch.py: a small server that times the library's sampler steps
// (noise included, model excluded) on request, so that the script can interleave them with the same
// steps in PyTorch and both numbers come from one run. One request per line on stdin:
//
//     <step> <threads> <shape> <calls>      e.g.  ddpm 1 16x3x64x64 200
//
// answered with one line: the wall-clock and the process CPU seconds of `calls` consecutive steps. Steps: ddpm, ddim
// (eta = 0), ddim_eta1, euler_maruyama, langevin, pf_heun, and ddpm_lincomb_noise (the DDPM update
// through the backend's fused lincomb_noise). The set-up of a (step, threads, shape) is made once
// and kept. "quit" or end of input ends it.
#include <benchmark/benchmark.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>

#include "bench_common.hpp"

namespace {

using namespace bench;

/// DDIM with eta = 1: the stochastic DDIM step (a noise draw per step).
struct ddim_eta1_case : ddim_case {
  ddim_eta1_case() { sampler = dm::ddim<dm::vp_discrete>(ddpm_process(), dm::leading_grid(1000, 1000), {.eta = 1.0}); }
};

/// One set-up: runs `calls` steps.
struct runner {
  virtual ~runner() = default;
  virtual void run(long calls) = 0;
};

template <class Case, int R, class Be>
struct step_runner final : runner {
  Be be;
  Case c;
  tensor<R> x;
  decltype(std::declval<Case&>().workspace(std::declval<Be&>(), std::declval<const tensor<R>&>())) ws;
  dm::philox_noise noise{7};

  template <class... A>
  step_runner(const shape& s, A&&... backend_args)
      : be(std::forward<A>(backend_args)...), x(make_tensor<R>(s)), ws(init(s)) {}

  auto init(const shape&) {
    randomize(x, 1);
    return c.workspace(be, x);
  }

  void run(long calls) override {
    for (long i = 0; i < calls; ++i) {
      c.step(be, noise, ws, x);
      keep(x);
    }
  }
};

template <int R, class Be>
struct lincomb_noise_runner final : runner {
  Be be;
  tensor<R> x, e;
  std::array<float, 3> k;
  dm::philox_noise noise{7};

  template <class... A>
  lincomb_noise_runner(const shape& s, A&&... backend_args)
      : be(std::forward<A>(backend_args)...), x(make_tensor<R>(s)), e(make_tensor<R>(s)) {
    randomize(x, 1);
    randomize(e, 2);
    ddpm_case c;
    k = probe_linear_step(c);
  }

  void run(long calls) override {
    for (long i = 0; i < calls; ++i) {
      be.lincomb_noise(x, k[0], x, k[1], e, k[2], noise);
      keep(x);
    }
  }
};

template <int R>
std::unique_ptr<runner> make_runner_rank(const std::string& step, int threads, const shape& s) {
  auto step_of = [&]<class Case>() -> std::unique_ptr<runner> {
    if (threads == 1) return std::make_unique<step_runner<Case, R, backend1<R>>>(s);
    return std::make_unique<step_runner<Case, R, backend2<R>>>(s, pool2());
  };
  if (step == "ddpm") return step_of.template operator()<ddpm_case>();
  if (step == "ddim") return step_of.template operator()<ddim_case>();
  if (step == "ddim_eta1") return step_of.template operator()<ddim_eta1_case>();
  if (step == "euler_maruyama") return step_of.template operator()<em_case>();
  if (step == "langevin") return step_of.template operator()<langevin_case>();
  if (step == "pf_heun") return step_of.template operator()<heun_case>();
  if (step == "ddpm_lincomb_noise") {
    if (threads == 1) return std::make_unique<lincomb_noise_runner<R, backend1<R>>>(s);
    return std::make_unique<lincomb_noise_runner<R, backend2<R>>>(s, pool2());
  }
  return nullptr;
}

/// CPU time of the whole process (all threads), as Python's time.process_time().
double process_cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

shape parse_shape(const std::string& text) {
  shape s{text, {}};
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, 'x')) s.dims.push_back(std::stol(part));
  return s;
}

}  // namespace

int main() {
  std::map<std::tuple<std::string, int, std::string>, std::unique_ptr<runner>> runners;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::stringstream in(line);
    std::string step, shape_text;
    int threads = 0;
    long calls = 0;
    if (!(in >> step) || step == "quit") break;
    if (!(in >> threads >> shape_text >> calls) || (threads != 1 && threads != 2) || calls <= 0) {
      std::cout << "error: expected <step> <1|2> <shape> <calls>" << std::endl;
      continue;
    }
    auto& r = runners[{step, threads, shape_text}];
    if (!r) {
      const shape s = parse_shape(shape_text);
      if (s.dims.size() == 2)
        r = make_runner_rank<2>(step, threads, s);
      else if (s.dims.size() == 4)
        r = make_runner_rank<4>(step, threads, s);
      if (!r) {
        std::cout << "error: unknown step or shape (rank 2 or 4)" << std::endl;
        continue;
      }
      r->run(3);  // warm-up: first touch of the buffers, thread start-up
    }
    const double c0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    r->run(calls);
    const auto t1 = std::chrono::steady_clock::now();
    const double c1 = process_cpu_seconds();
    std::cout << std::chrono::duration<double>(t1 - t0).count() << ' ' << c1 - c0 << std::endl;
  }
  return 0;
}
