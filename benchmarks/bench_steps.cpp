// SPDX-License-Identifier: MIT
// Issue #5's Google Benchmark suite. Every name is group/case/implementation/threads/shape:
//
//   step/<sampler>/{library,fused}/{1t,2t}/<shape>   one step, model cost excluded; a stochastic
//                                                   sampler's noise excluded too (null_noise)
//   stochastic/<sampler>/<noise>/{1t,2t}/<shape>     one step including its noise
//   noise/normal/<generator>/{1t,2t}/<shape>         one draw of N(0, 1) into a float tensor
//   after_model/<sampler>/library/{1t,2t}/<shape>   one step (noise included) right after a model
//                                                   call longer than the pool's spin
//   step/<sampler>/xtensor/1t/<shape>                the step on xtensor_backend (xt::xtensor<float, R>)
//   stochastic/<sampler>/xtensor_philox/1t/<shape>   the same with its Philox noise
//
// benchmarks/ratios.py turns the JSON output (medians of interleaved repetitions) into the ratio
// tables of docs/PERFORMANCE.md; scripts/bench runs both.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "bench_common.hpp"

// The xtensor backend's rows, where CMake found xtensor (benchmarks/CMakeLists.txt).
#if defined(DIFFUSION_BENCH_XTENSOR)
#include <diffusion/xtensor.hpp>
#endif

namespace {

using namespace bench;

void add(const std::string& name, std::function<void(benchmark::State&)> f) {
  benchmark::RegisterBenchmark(name.c_str(), [f = std::move(f)](benchmark::State& st) { f(st); })
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

void count(benchmark::State& st, const shape& s) {
  st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(s.size()));
  st.counters["elements"] = static_cast<double>(s.size());
}

// ---------------------------------------------------------------------------------------------
// The library's step.

/// Steps back to back; or, with a `model_time`, each step right after a "model call" that long on
/// the calling thread (a busy wait, not timed: the benchmark must use manual time). A model call
/// longer than the pool's spin (fork_join_pool::default_spin) finds the worker of a two-thread
/// backend asleep when the step begins, as in a sampler loop with a real network; steps back to
/// back never do.
template <class Case, class T, class Be, class Noise>
void library_step_on(benchmark::State& st, const shape& s, Be& be, Noise& noise, T x,
                     std::chrono::microseconds model_time = {}) {
  using clock = std::chrono::steady_clock;
  Case c;
  randomize(x, 1);
  auto ws = c.workspace(be, x);
  if (model_time.count() == 0) {
    for (auto _ : st) {
      c.step(be, noise, ws, x);
      keep(x);
    }
  } else {
    for (auto _ : st) {
      for (const auto until = clock::now() + model_time; clock::now() < until;) {
      }
      const auto start = clock::now();
      c.step(be, noise, ws, x);
      keep(x);
      st.SetIterationTime(std::chrono::duration<double>(clock::now() - start).count());
    }
  }
  if (!all_finite(x)) st.SkipWithError("x left the finite range");
  count(st, s);
}

/// The library's step on an Eigen tensor of shape s.
template <class Case, int R, class Be, class Noise>
void library_step(benchmark::State& st, const shape& s, Be& be, Noise& noise,
                  std::chrono::microseconds model_time = {}) {
  library_step_on<Case>(st, s, be, noise, make_tensor<R>(s), model_time);
}

/// Calls f(be) with a backend on one thread (DefaultDevice) or on the shared two-thread pool.
template <int R, class F>
void on_threads(bool two_threads, F&& f) {
  if (two_threads) {
    backend2<R> be(pool2());
    f(be);
  } else {
    backend1<R> be;
    f(be);
  }
}

// ---------------------------------------------------------------------------------------------
// The same arithmetic by hand.

template <class Case, int R>
struct fused_runner {
  Case c;
  std::array<float, 3> linear{};
  std::array<float, 6> heun{};
  double langevin_alpha = 0;

  fused_runner() {
    if constexpr (std::is_base_of_v<heun_case, Case>)
      heun = heun_coefficients(c);
    else if constexpr (std::is_same_v<Case, langevin_case>)
      langevin_alpha = c.process.langevin_alpha(c.t);
    else
      linear = probe_linear_step(c);
  }

  template <class W>
  void run(W& ws, tensor<R>& x) {
    const std::size_t n = static_cast<std::size_t>(x.size());
    if constexpr (std::is_base_of_v<heun_case, Case>) {
      fused_heun(x.data(), ws.scratch[1].data(), ws.scratch[0].data(), ws.scratch[2].data(), heun, n);
    } else if constexpr (std::is_same_v<Case, langevin_case>) {
      fused_langevin(x.data(), ws.score.data(), ws.noise.data(), langevin_alpha, langevin_snr,
                     static_cast<std::size_t>(x.dimension(0)), n);
    } else if constexpr (Case::stochastic) {
      fused3(x.data(), Case::pred(ws).data(), Case::noise(ws).data(), linear[0], linear[1], linear[2], n);
    } else {
      fused2(x.data(), Case::pred(ws).data(), linear[0], linear[1], n);
    }
  }
};

template <class Case, int R>
void fused_step(benchmark::State& st, const shape& s) {
  fused_runner<Case, R> f;
  backend1<R> be;
  auto x = make_tensor<R>(s);
  randomize(x, 1);
  auto ws = f.c.workspace(be, x);
  {
    // The hand loop must compute what the library computes: one step each from the same inputs.
    auto x_lib = x, x_hand = x;
    auto ws_lib = ws, ws_hand = ws;
    null_noise nn;
    f.c.step(be, nn, ws_lib, x_lib);
    f.run(ws_hand, x_hand);
    if (relative_difference(x_lib, x_hand) > 1e-5) {
      st.SkipWithError("the hand-fused loop does not compute the library's step");
      return;
    }
  }
  for (auto _ : st) {
    f.run(ws, x);
    keep(x);
  }
  if (!all_finite(x)) st.SkipWithError("x left the finite range");
  count(st, s);
}

/// The hand-fused loop on two threads, split by the backend's own executor (one range per thread on
/// the eigen_thread_pool's fork_join_pool, from any size, threshold 0): the hand-written twin of
/// the library's threaded step, which splits its passes the same way.
template <class Case, int R>
void fused_step_two_threads(benchmark::State& st, const shape& s) {
  fused_runner<Case, R> f;
  backend1<R> be;
  auto x = make_tensor<R>(s);
  randomize(x, 1);
  auto ws = f.c.workspace(be, x);
  const dm::detail::eigen_executor<Eigen::ThreadPoolDevice> exec(pool2().device(), pool2().fork_join(), 0);
  const auto k = f.linear;
  auto range = [&](std::size_t begin, std::size_t end) {
    if constexpr (Case::stochastic)
      fused3(x.data() + begin, Case::pred(ws).data() + begin, Case::noise(ws).data() + begin, k[0], k[1], k[2],
             end - begin);
    else
      fused2(x.data() + begin, Case::pred(ws).data() + begin, k[0], k[1], end - begin);
  };
  for (auto _ : st) {
    exec.for_ranges(s.size(), range);
    keep(x);
  }
  if (!all_finite(x)) st.SkipWithError("x left the finite range");
  count(st, s);
}

/// The DDPM step with its noise from mt19937_64 + std::normal_distribution inside the loop.
template <int R>
void fused_ddpm_mt19937(benchmark::State& st, const shape& s) {
  ddpm_case c;
  const std::array<float, 3> k = probe_linear_step(c);
  backend1<R> be;
  auto x = make_tensor<R>(s);
  randomize(x, 1);
  auto ws = c.workspace(be, x);
  std::mt19937_64 engine(42);
  std::normal_distribution<float> normal;
  for (auto _ : st) {
    fused3_mt19937(x.data(), ws.model_out.data(), k[0], k[1], k[2], s.size(), engine, normal);
    keep(x);
  }
  if (!all_finite(x)) st.SkipWithError("x left the finite range");
  count(st, s);
}

/// The DDPM update x = a x + b eps + c z with fresh Philox noise through the backend's fused
/// lincomb_noise, called directly (the step without its scalar work, ~20 ns).
template <int R, class Be>
void backend_lincomb_noise(benchmark::State& st, const shape& s, Be& be) {
  ddpm_case c;
  const std::array<float, 3> k = probe_linear_step(c);
  backend1<R> be1;
  auto x = make_tensor<R>(s);
  randomize(x, 1);
  auto ws = c.workspace(be1, x);
  dm::philox_noise noise(7);
  for (auto _ : st) {
    be.lincomb_noise(x, k[0], x, k[1], ws.model_out, k[2], noise);
    keep(x);
  }
  if (!all_finite(x)) st.SkipWithError("x left the finite range");
  count(st, s);
}

// ---------------------------------------------------------------------------------------------
// Noise generation alone.

template <int R, class Fill>
void noise_fill(benchmark::State& st, const shape& s, Fill fill) {
  auto z = make_tensor<R>(s);
  for (auto _ : st) {
    fill(z);
    keep(z);
  }
  count(st, s);
}

// ---------------------------------------------------------------------------------------------

template <class Case, int R>
void register_step(const shape& s, bool with_fused) {
  const std::string base = std::string("step/") + Case::name;
  add(base + "/library/1t/" + s.name, [s](benchmark::State& st) {
    backend1<R> be;
    null_noise nn;
    library_step<Case, R>(st, s, be, nn);
  });
  add(base + "/library/2t/" + s.name, [s](benchmark::State& st) {
    backend2<R> be(pool2());
    null_noise nn;
    library_step<Case, R>(st, s, be, nn);
  });
  if (with_fused) add(base + "/fused/1t/" + s.name, [s](benchmark::State& st) { fused_step<Case, R>(st, s); });
  if constexpr (std::is_same_v<Case, ddim_case> || std::is_same_v<Case, ddpm_case>)
    add(base + "/fused/2t/" + s.name, [s](benchmark::State& st) { fused_step_two_threads<Case, R>(st, s); });

  if constexpr (Case::stochastic) {
    const std::string sto = std::string("stochastic/") + Case::name;
    add(sto + "/philox/1t/" + s.name, [s](benchmark::State& st) {
      backend1<R> be;
      dm::philox_noise noise(7);
      library_step<Case, R>(st, s, be, noise);
    });
    add(sto + "/philox/2t/" + s.name, [s](benchmark::State& st) {
      backend2<R> be(pool2());
      dm::philox_noise noise(7);
      library_step<Case, R>(st, s, be, noise);
    });
    if constexpr (std::is_same_v<Case, ddpm_case>) {
      add(sto + "/philox_unfused/1t/" + s.name, [s](benchmark::State& st) {
        backend1<R> be;
        unfused_philox noise{dm::philox_noise(7)};
        library_step<Case, R>(st, s, be, noise);
      });
      add(sto + "/philox_unfused/2t/" + s.name, [s](benchmark::State& st) {
        backend2<R> be(pool2());
        unfused_philox noise{dm::philox_noise(7)};
        library_step<Case, R>(st, s, be, noise);
      });
    }
  }
}

#if defined(DIFFUSION_BENCH_XTENSOR)
/// The same cases on the xtensor backend (single-threaded: it has no thread support), an
/// xt::xtensor<float, R> of the same shape.
template <class Case, int R>
void register_xtensor_step(const shape& s) {
  auto make = [s] {
    std::array<std::size_t, R> d{};
    for (std::size_t i = 0; i < R; ++i) d[i] = static_cast<std::size_t>(s.dims[i]);
    return xt::xtensor<float, R>(d);
  };
  add(std::string("step/") + Case::name + "/xtensor/1t/" + s.name, [s, make](benchmark::State& st) {
    dm::xtensor_backend<float, R> be;
    null_noise nn;
    library_step_on<Case>(st, s, be, nn, make());
  });
  if constexpr (Case::stochastic)
    add(std::string("stochastic/") + Case::name + "/xtensor_philox/1t/" + s.name, [s, make](benchmark::State& st) {
      dm::xtensor_backend<float, R> be;
      dm::philox_noise noise(7);
      library_step_on<Case>(st, s, be, noise, make());
    });
}
#endif

template <int R>
void register_shape(const shape& s) {
  register_step<ddpm_case, R>(s, true);
  register_step<ddim_case, R>(s, true);
  register_step<em_case, R>(s, true);
  register_step<langevin_case, R>(s, true);
  register_step<heun_case, R>(s, true);
  register_step<heun_eps_case, R>(s, false);
  register_step<em_eps_case, R>(s, false);
  register_step<langevin_eps_case, R>(s, false);
#if defined(DIFFUSION_BENCH_XTENSOR)
  register_xtensor_step<ddpm_case, R>(s);
  register_xtensor_step<ddim_case, R>(s);
  register_xtensor_step<em_case, R>(s);
  register_xtensor_step<langevin_case, R>(s);
  register_xtensor_step<heun_case, R>(s);
#endif
  add("stochastic/ddpm/engine_mt19937_64/1t/" + s.name, [s](benchmark::State& st) {
    backend1<R> be;
    dm::engine_noise<std::mt19937_64> noise{std::mt19937_64(42)};
    library_step<ddpm_case, R>(st, s, be, noise);
  });
  add("stochastic/ddpm/lincomb_noise/1t/" + s.name, [s](benchmark::State& st) {
    backend1<R> be;
    backend_lincomb_noise<R>(st, s, be);
  });
  add("stochastic/ddpm/lincomb_noise/2t/" + s.name, [s](benchmark::State& st) {
    backend2<R> be(pool2());
    backend_lincomb_noise<R>(st, s, be);
  });
  add("stochastic/ddpm/fused_mt19937_64/1t/" + s.name,
      [s](benchmark::State& st) { fused_ddpm_mt19937<R>(st, s); });

  const std::size_t batch = s.batch();
  add("noise/normal/philox/1t/" + s.name, [s, batch](benchmark::State& st) {
    dm::philox_noise noise(7);
    noise_fill<R>(st, s, [&](tensor<R>& z) { noise.fill_normal(dm::elements(z), batch); });
  });
  add("noise/normal/backend_philox/1t/" + s.name, [s](benchmark::State& st) {
    backend1<R> be;
    dm::philox_noise noise(7);
    noise_fill<R>(st, s, [&](tensor<R>& z) { be.fill_normal(z, noise); });
  });
  add("noise/normal/backend_philox/2t/" + s.name, [s](benchmark::State& st) {
    backend2<R> be(pool2());
    dm::philox_noise noise(7);
    noise_fill<R>(st, s, [&](tensor<R>& z) { be.fill_normal(z, noise); });
  });
  // The two kernels of a Philox normal on their own, one 32-bit word per normal (Box-Muller turns
  // a pair of words into a pair of normals): what no amount of fusing can take off the step.
  add("noise/kernel/philox_words/1t/" + s.name, [s](benchmark::State& st) {
    const std::size_t counters = (s.size() + 3) / 4;
    std::vector<std::uint32_t> w(4 * counters);
    const dm::detail::philox_round_keys keys(dm::philox_key{7, 0});
    for (auto _ : st) {
      dm::detail::philox4x32_10_blocks(0, 1, 0, keys, counters, w.data(), w.data() + counters,
                                       w.data() + 2 * counters, w.data() + 3 * counters);
      benchmark::DoNotOptimize(w.data());
      benchmark::ClobberMemory();
    }
    count(st, s);
  });
  add("noise/kernel/box_muller/1t/" + s.name, [s](benchmark::State& st) {
    // Radius words in the first half, angle words in the second, as philox_noise lays them out.
    constexpr std::size_t pass = 64;
    const std::size_t pairs = (s.size() / 2 + pass - 1) / pass * pass;
    std::vector<std::uint32_t> words(2 * pairs);
    std::uint32_t w = 12345;
    for (auto& v : words) v = w = w * 1664525u + 1013904223u;
    std::vector<float> out(2 * pairs);
    for (auto _ : st) {
      for (std::size_t p = 0; p < pairs; p += pass)
        dm::detail::box_muller_arrays<float, pass>(words.data() + p, words.data() + pairs + p, out.data() + p,
                                                   out.data() + pairs + p);
      benchmark::DoNotOptimize(out.data());
      benchmark::ClobberMemory();
    }
    count(st, s);
  });
  add("noise/normal/mt19937_64_normal_distribution/1t/" + s.name, [s](benchmark::State& st) {
    std::mt19937_64 engine(42);
    std::normal_distribution<float> normal;
    noise_fill<R>(st, s, [&](tensor<R>& z) {
      for (Eigen::Index i = 0; i < z.size(); ++i) z.data()[i] = normal(engine);
    });
  });
  add("noise/normal/engine_mt19937_64/1t/" + s.name, [s, batch](benchmark::State& st) {
    dm::engine_noise<std::mt19937_64> noise{std::mt19937_64(42)};
    noise_fill<R>(st, s, [&](tensor<R>& z) { noise.fill_normal(dm::elements(z), batch); });
  });
}

/// Around the thread threshold: the deterministic and the stochastic step on 1 and 2 threads.
template <int R>
void register_threshold_shape(const shape& s) {
  add("step/ddim/fused/1t/" + s.name, [s](benchmark::State& st) { fused_step<ddim_case, R>(st, s); });
  add("step/ddim/fused/2t/" + s.name, [s](benchmark::State& st) { fused_step_two_threads<ddim_case, R>(st, s); });
  // The same step on a bare ThreadPoolDevice, whose passes go through Eigen's own pool (threshold
  // 0, so it is used at every size): what the default threshold of that path is set against.
  add("step/ddim/eigen_pool/2t/" + s.name, [s](benchmark::State& st) {
    null_noise nn;
    backend2<R> be(pool2().device(), 0);
    library_step<ddim_case, R>(st, s, be, nn);
  });
  add("step/ddim/eigen_pool/1t/" + s.name, [s](benchmark::State& st) {
    null_noise nn;
    backend1<R> be;
    library_step<ddim_case, R>(st, s, be, nn);
  });
  for (const char* t : {"1t", "2t"}) {
    const bool two = std::string(t) == "2t";
    add(std::string("step/ddim/library/") + t + "/" + s.name, [s, two](benchmark::State& st) {
      null_noise nn;
      on_threads<R>(two, [&](auto& be) { library_step<ddim_case, R>(st, s, be, nn); });
    });
    add(std::string("stochastic/ddpm/lincomb_noise/") + t + "/" + s.name, [s, two](benchmark::State& st) {
      on_threads<R>(two, [&](auto& be) { backend_lincomb_noise<R>(st, s, be); });
    });
    add(std::string("stochastic/ddpm/philox/") + t + "/" + s.name, [s, two](benchmark::State& st) {
      dm::philox_noise noise(7);
      on_threads<R>(two, [&](auto& be) { library_step<ddpm_case, R>(st, s, be, noise); });
    });
  }
}

/// A step after a model call that outlasts the spin (library_step with a model_time), on one and
/// two threads: with a worker that has stopped spinning, two threads must not be slower than one.
constexpr std::chrono::microseconds after_model_time{500};
constexpr benchmark::IterationCount after_model_iterations = 200;  // 0.1 s of model calls

template <int R>
void register_after_model(const shape& s) {
  for (const char* t : {"1t", "2t"}) {
    const bool two = std::string(t) == "2t";
    auto reg = [](const std::string& name, std::function<void(benchmark::State&)> f) {
      benchmark::RegisterBenchmark(name.c_str(), [f = std::move(f)](benchmark::State& st) { f(st); })
          ->UseManualTime()
          ->Iterations(after_model_iterations)  // else it would run until the steps alone add up
          ->Unit(benchmark::kMicrosecond);
    };
    reg(std::string("after_model/ddim/library/") + t + "/" + s.name, [s, two](benchmark::State& st) {
      null_noise nn;
      on_threads<R>(two, [&](auto& be) { library_step<ddim_case, R>(st, s, be, nn, after_model_time); });
    });
    reg(std::string("after_model/ddpm/library/") + t + "/" + s.name, [s, two](benchmark::State& st) {
      dm::philox_noise noise(7);
      on_threads<R>(two, [&](auto& be) { library_step<ddpm_case, R>(st, s, be, noise, after_model_time); });
    });
  }
}

/// What a fork-join costs by itself: an empty pass on the backend's pool, and the floor under it,
/// one round trip of a cache line between two threads that poll it.
void register_fork_join_floor() {
  add("threads/fork_join/empty_pass/2t/none", [](benchmark::State& st) {
    auto nothing = [](std::size_t) {};
    for (auto _ : st) pool2().fork_join().run(2, nothing);
  });
  add("threads/ping_pong/round_trip/2t/none", [](benchmark::State& st) {
    alignas(64) std::atomic<std::uint64_t> ping{0};
    alignas(64) std::atomic<std::uint64_t> pong{0};
    std::atomic<bool> stop{false};
    std::thread other([&] {
      for (std::uint64_t seen = 0; !stop.load(std::memory_order_relaxed);) {
        const std::uint64_t v = ping.load(std::memory_order_acquire);
        if (v != seen) pong.store(seen = v, std::memory_order_release);
      }
    });
    std::uint64_t i = 0;
    for (auto _ : st) {
      ping.store(++i, std::memory_order_release);
      while (pong.load(std::memory_order_acquire) != i) {
      }
    }
    stop.store(true);
    other.join();
  });
}

}  // namespace

int main(int argc, char** argv) {
  for (const shape& s : issue_shapes()) {
    if (s.dims.size() == 2)
      register_shape<2>(s);
    else
      register_shape<4>(s);
  }
  for (const shape& s : threshold_shapes()) register_threshold_shape<2>(s);
  for (const shape& s : after_model_shapes()) {
    if (s.dims.size() == 2)
      register_after_model<2>(s);
    else
      register_after_model<4>(s);
  }
  register_fork_join_floor();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
