// SPDX-License-Identifier: MIT
// Shared by the benchmark binaries: the tensor shapes of issue #5, a model and a noise source that
// cost nothing (so a sampler step is timed without the network and, where asked, without the
// noise), the five samplers set up at a step where the state neither grows nor shrinks much under
// repetition, and the hand-fused loops the library is compared with.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include <diffusion/diffusion.hpp>
#include <diffusion/sampler/probability_flow.hpp>

namespace bench {

namespace dm = diffusion;

/// A tensor shape, batch first.
struct shape {
  std::string name;
  std::vector<Eigen::Index> dims;
  std::size_t size() const {
    std::size_t n = 1;
    for (auto d : dims) n *= static_cast<std::size_t>(d);
    return n;
  }
  std::size_t batch() const { return static_cast<std::size_t>(dims[0]); }
};

/// The three shapes of issue #5.
inline std::vector<shape> issue_shapes() {
  return {{"2x4096", {2, 4096}}, {"16x3x64x64", {16, 3, 64, 64}}, {"64x3x32x32", {64, 3, 32, 32}}};
}

/// Extra sizes for the thread table, around the backend's 64K-element threshold.
inline std::vector<shape> threshold_shapes() {
  return {{"2x1024", {2, 1024}}, {"2x2048", {2, 2048}}, {"4x8192", {4, 8192}}, {"8x8192", {8, 8192}}, {"16x8192", {16, 8192}}};
}

/// The shapes of the after_model rows: below, at and above the backend's threshold.
inline std::vector<shape> after_model_shapes() {
  return {{"2x4096", {2, 4096}}, {"8x8192", {8, 8192}}, {"16x3x64x64", {16, 3, 64, 64}}};
}

template <int Rank>
using tensor = Eigen::Tensor<float, Rank, Eigen::RowMajor>;

template <int Rank>
tensor<Rank> make_tensor(const shape& s) {
  std::array<Eigen::Index, Rank> d{};
  for (std::size_t i = 0; i < Rank; ++i) d[i] = s.dims[i];
  return tensor<Rank>(d);
}

/// Fills x with N(0, 1) values (set-up only, never timed).
template <class T>
void randomize(T& x, std::uint64_t seed) {
  dm::philox_noise(seed, 1000).fill_normal(dm::elements(x), 1);
}

/// A model that costs nothing: it leaves `out` as it is (random values written at set-up), so what
/// is timed is the step's own work.
template <class Param>
struct null_model {
  using parameterization = Param;
  template <class T>
  void operator()(const T&, double, T&) const noexcept {}
};

/// A noise source that costs nothing: the noise tensor keeps the values written at set-up. Times a
/// stochastic step's update without its noise generation.
struct null_noise {
  template <class S>
  void fill_normal(std::span<S>, std::size_t) noexcept {}
  template <class S>
  void fill_uniform(std::span<S>, std::size_t) noexcept {}
};

/// philox_noise without write_normal_range: the samplers then draw the noise into a tensor with
/// the backend's fill_normal and combine it with lincomb (two passes) instead of generating it
/// inside the update (lincomb_noise). The same values either way.
struct unfused_philox {
  dm::philox_noise noise;
  template <class S>
  void fill_normal(std::span<S> out, std::size_t batch) {
    noise.fill_normal(out, batch);
  }
  template <class S>
  void fill_uniform(std::span<S> out, std::size_t batch) {
    noise.fill_uniform(out, batch);
  }
  std::uint64_t draw_index() const noexcept { return noise.draw_index(); }
  std::uint64_t next_draw() noexcept { return noise.next_draw(); }
  template <class S>
  void fill_normal_range(std::span<S> out, std::size_t batch, std::uint64_t draw, std::size_t begin,
                         std::size_t end) const {
    noise.fill_normal_range(out, batch, draw, begin, end);
  }
};

/// The thread pool of the two-thread rows, made once.
inline dm::eigen_thread_pool& pool2() {
  static dm::eigen_thread_pool pool(2);
  return pool;
}

template <int Rank>
using backend1 = dm::eigen_backend<float, Rank>;
template <int Rank>
using backend2 = dm::eigen_backend<float, Rank, Eigen::ThreadPoolDevice>;

// ---------------------------------------------------------------------------------------------
// The samplers. Every benchmark repeats one step at an index near the end of a 1000-step grid:
// there the state's coefficient is 1 + O(1e-4), so a million repetitions keep x finite and far from
// subnormals, and the step is an ordinary one (t > 0: the stochastic samplers draw noise).

inline constexpr std::size_t step_index = 998;
inline constexpr double langevin_snr = 0.16;

inline dm::vp_discrete ddpm_process() { return dm::vp_discrete::linear(1e-4, 0.02, 1000); }
inline dm::vp_sde sde_process() { return dm::vp_sde(0.1, 20.0, 1000); }

/// What the cases built on a whole sampler share: the sampler, a model that costs nothing, the
/// sampler's own workspace with the model output and the noise filled in, and one step at
/// step_index.
template <class Sampler, class Param>
struct sampler_case {
  Sampler sampler;
  null_model<Param> model;

  explicit sampler_case(Sampler s) : sampler(std::move(s)) {}

  template <class Be, class T>
  auto workspace(Be& be, const T& x) const {
    auto ws = sampler.make_workspace(be, x);
    ws.need_prediction = false;  // as the driver sets it without an observer
    randomize(pred(ws), 2);
    randomize(ws.noise, 3);
    return ws;
  }
  template <class Be, class N, class W, class T>
  void step(Be& be, N& noise, W& ws, T& x) {
    sampler.step(be, model, noise, ws, x, step_index);
  }
  /// The model output in the workspace: what the case's model predicts (eps for the DDPM family,
  /// the score or eps for the SDE samplers).
  template <class W>
  static auto& pred(W& ws) {
    if constexpr (requires { ws.model_out; })
      return ws.model_out;
    else
      return ws.score;
  }
  template <class W>
  static auto& noise(W& ws) { return ws.noise; }
};

/// DDPM ancestral (Ho et al. 2020, Alg. 2): x = a x + b eps + c z, one lincomb.
struct ddpm_case : sampler_case<dm::ddpm_ancestral<dm::vp_discrete>, dm::eps_param> {
  static constexpr const char* name = "ddpm";
  static constexpr bool stochastic = true;
  ddpm_case() : sampler_case(dm::ddpm_ancestral<dm::vp_discrete>(ddpm_process(), dm::leading_grid(1000, 1000))) {}
};

/// DDIM with eta = 0 (Song, Meng & Ermon 2021, Eq. 12): x = a x + b eps, one lincomb.
struct ddim_case : sampler_case<dm::ddim<dm::vp_discrete>, dm::eps_param> {
  static constexpr const char* name = "ddim";
  static constexpr bool stochastic = false;
  ddim_case() : sampler_case(dm::ddim<dm::vp_discrete>(ddpm_process(), dm::leading_grid(1000, 1000), {.eta = 0.0})) {}
};

/// Euler-Maruyama on the reverse VP SDE (Song et al. 2021, Eq. 6) with a score model.
struct em_case : sampler_case<dm::predictor_corrector<dm::vp_sde>, dm::score_param> {
  static constexpr const char* name = "euler_maruyama";
  static constexpr bool stochastic = true;
  em_case() : sampler_case(dm::euler_maruyama(sde_process())) {}
};

/// One Langevin corrector step with the snr rule (Song et al. 2021, Alg. 5), score model.
struct langevin_case {
  static constexpr const char* name = "langevin";
  static constexpr bool stochastic = true;
  dm::vp_sde process = sde_process();
  dm::langevin_corrector corrector{.snr = langevin_snr, .steps = 1};
  double t = dm::euler_maruyama(sde_process()).time(step_index);
  null_model<dm::score_param> model;

  template <class Be, class T>
  auto workspace(Be&, const T& x) const {
    dm::sde_workspace<T> ws(x);
    ws.need_prediction = false;
    randomize(ws.score, 2);
    randomize(ws.noise, 3);
    return ws;
  }
  template <class Be, class N, class W, class T>
  void step(Be& be, N& noise, W& ws, T& x) {
    corrector.correct(be, model, process, noise, ws, x, t);
  }
  template <class W>
  static auto& pred(W& ws) { return ws.score; }
  template <class W>
  static auto& noise(W& ws) { return ws.noise; }
};

/// The same Euler-Maruyama step with an eps model (score_sde's VP models predict eps): the
/// predictor folds the conversion to the score into its coefficients.
struct em_eps_case : sampler_case<dm::predictor_corrector<dm::vp_sde>, dm::eps_param> {
  static constexpr const char* name = "euler_maruyama_eps_model";
  static constexpr bool stochastic = true;
  em_eps_case() : sampler_case(dm::euler_maruyama(sde_process())) {}
};

/// The same Langevin corrector step with an eps model: the score's norm is the output's over sigma.
struct langevin_eps_case : langevin_case {
  static constexpr const char* name = "langevin_eps_model";
  null_model<dm::eps_param> eps_model;
  template <class Be, class N, class W, class T>
  void step(Be& be, N& noise, W& ws, T& x) {
    corrector.correct(be, eps_model, process, noise, ws, x, t);
  }
};

/// Heun's method on the probability-flow ODE (Song et al. 2021, Eq. 13), score model.
struct heun_case {
  static constexpr const char* name = "pf_heun";
  static constexpr bool stochastic = false;
  dm::probability_flow<dm::vp_sde, dm::heun_method> sampler{sde_process(), {.steps = 1000}};
  null_model<dm::score_param> model;

  template <class Be, class T>
  auto workspace(Be& be, const T& x) const {
    auto ws = sampler.make_workspace(be, x);
    ws.need_prediction = false;
    randomize(ws.scratch[0], 2);  // s1, the score at (x, t)
    randomize(ws.scratch[1], 4);  // x', the Euler point
    randomize(ws.scratch[2], 3);  // s2, the score at (x', t_next)
    return ws;
  }
  template <class Be, class N, class W, class T>
  void step(Be& be, N& noise, W& ws, T& x) {
    sampler.step(be, model, noise, ws, x, step_index);
  }
};

/// The same Heun step with an eps model, whose output the sampler converts to the score.
struct heun_eps_case : heun_case {
  static constexpr const char* name = "pf_heun_eps_model";
  null_model<dm::eps_param> eps_model;
  template <class Be, class N, class W, class T>
  void step(Be& be, N& noise, W& ws, T& x) {
    sampler.step(be, eps_model, noise, ws, x, step_index);
  }
};

// ---------------------------------------------------------------------------------------------
// Hand-fused loops: the same arithmetic as one plain loop per pass over float arrays, with the
// coefficients computed once by the caller. Kept out of line: inlined into its caller, g++ 12
// left the Euler-Maruyama instance of fused3 scalar (4.4 us instead of 0.86 at 2x4096 with -O3
// -march=native) while it vectorised the DDPM instance of the same loop.

/// x = a x + b e (DDIM, eta = 0).
[[gnu::noinline]] inline void fused2(float* __restrict x, const float* __restrict e, float a, float b, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) x[i] = a * x[i] + b * e[i];
}

/// x = a x + b e + c z (DDPM ancestral, Euler-Maruyama; z given).
[[gnu::noinline]] inline void fused3(float* __restrict x, const float* __restrict e, const float* __restrict z, float a, float b,
                   float c, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) x[i] = a * x[i] + b * e[i] + c * z[i];
}

/// Heun's two passes (a model call sits between them): x' = a1 x + b1 s1, then
/// x = c1 x + c2 x' + c3 s1 + c4 s2.
[[gnu::noinline]] inline void fused_heun(float* __restrict x, float* __restrict xe, const float* __restrict s1,
                       const float* __restrict s2, const std::array<float, 6>& c, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) xe[i] = c[0] * x[i] + c[1] * s1[i];
  benchmark::ClobberMemory();  // the model call: x' must be in memory
  for (std::size_t i = 0; i < n; ++i) x[i] = c[2] * x[i] + c[3] * xe[i] + c[4] * s1[i] + c[5] * s2[i];
}

/// sum v^2 over n floats in double, with 8 partial sums so that the loop vectorises.
inline double fused_sum_squares(const float* v, std::size_t n) {
  double acc[8] = {};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (std::size_t k = 0; k < 8; ++k) acc[k] += static_cast<double>(v[i + k]) * static_cast<double>(v[i + k]);
  double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += static_cast<double>(v[i]) * static_cast<double>(v[i]);
  return s;
}

/// The Langevin corrector by hand: the per-sample norms of z and of the score, then
/// x = x + step score + sqrt(2 step) z.
[[gnu::noinline]] inline void fused_langevin(float* __restrict x, const float* __restrict score, const float* __restrict z,
                           double alpha, double snr, std::size_t batch, std::size_t n) {
  const std::size_t d = n / batch;
  double z_norm = 0, s_norm = 0;
  for (std::size_t b = 0; b < batch; ++b) {
    z_norm += std::sqrt(fused_sum_squares(z + b * d, d));
    s_norm += std::sqrt(fused_sum_squares(score + b * d, d));
  }
  const double ratio = snr * z_norm / s_norm;
  const double step = 2.0 * alpha * ratio * ratio;
  const auto a = static_cast<float>(step), c = static_cast<float>(std::sqrt(2.0 * step));
  for (std::size_t i = 0; i < n; ++i) x[i] = x[i] + a * score[i] + c * z[i];
}

/// The DDPM update with mt19937_64 + std::normal_distribution drawn inside the loop: what one writes
/// without a counter-based generator (the reference of the 7x target).
inline void fused3_mt19937(float* __restrict x, const float* __restrict e, float a, float b, float c, std::size_t n,
                           std::mt19937_64& engine, std::normal_distribution<float>& normal) {
  for (std::size_t i = 0; i < n; ++i) x[i] = a * x[i] + b * e[i] + c * normal(engine);
}

/// Keeps the compiler from dropping the benchmarked work.
template <class T>
void keep(T& x) {
  benchmark::DoNotOptimize(x.data());
  benchmark::ClobberMemory();
}

/// The coefficients (a, b, c) of a linear step x = a x + b pred + c z, read off the library's own
/// step on one-element tensors (unit vectors in, coefficient out), so the fused loop uses exactly
/// the library's float coefficients.
template <class Case>
std::array<float, 3> probe_linear_step(Case& c) {
  const shape one{"1", {1, 1}};
  backend1<2> be;
  null_noise nn;
  std::array<float, 3> coef{};
  for (std::size_t k = 0; k < 3; ++k) {
    auto x = make_tensor<2>(one);
    auto ws = c.workspace(be, x);
    x(0, 0) = k == 0 ? 1.0f : 0.0f;
    Case::pred(ws)(0, 0) = k == 1 ? 1.0f : 0.0f;
    Case::noise(ws)(0, 0) = k == 2 ? 1.0f : 0.0f;
    c.step(be, nn, ws, x);
    coef[k] = x(0, 0);
  }
  return coef;
}

/// Heun's six coefficients from the process, as heun_method forms them.
inline std::array<float, 6> heun_coefficients(const heun_case& c) {
  const dm::vp_sde& p = c.sampler.process();
  const double t = c.sampler.time(step_index), t_next = c.sampler.time_next(step_index), h = t_next - t;
  const dm::reverse_coefficients c1 = dm::probability_flow_coefficients(p, t);
  const dm::reverse_coefficients c2 = dm::probability_flow_coefficients(p, t_next);
  return {static_cast<float>(1.0 + h * c1.x_coef),       static_cast<float>(h * c1.score_coef),
          static_cast<float>(1.0 + 0.5 * h * c1.x_coef), static_cast<float>(0.5 * h * c2.x_coef),
          static_cast<float>(0.5 * h * c1.score_coef),   static_cast<float>(0.5 * h * c2.score_coef)};
}

/// Largest |a - b| relative to the largest |a|.
template <class T>
double relative_difference(const T& a, const T& b) {
  double diff = 0, scale = 0;
  for (Eigen::Index i = 0; i < a.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::abs(a.data()[i] - b.data()[i])));
    scale = std::max(scale, static_cast<double>(std::abs(a.data()[i])));
  }
  return diff / std::max(scale, 1e-30);
}

template <class T>
bool all_finite(const T& x) {
  for (const float v : dm::elements(x))
    if (!std::isfinite(v)) return false;
  return true;
}

}  // namespace bench
