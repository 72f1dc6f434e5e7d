// SPDX-License-Identifier: MIT
// The demo: sample the 3-component 2-D Gaussian mixture with one sampler of each family, driven by
// the exact model of the mixture, on the Eigen backend: DDPM ancestral (1000 steps) and DDIM (50)
// on the discrete VP process; annealed Langevin on NCSN noise levels; predictor-corrector
// (reverse diffusion + Langevin) and the probability-flow ODE (Heun, and adaptive Dormand-Prince)
// on the VP SDE. Prints each sample's mean and covariance beside the truth, the model calls and
// the time, and writes one PNG scatter plot per sampler.
//
//   demo_2d [output directory]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <diffusion/diffusion.hpp>

#include "common/scatter_png.hpp"

namespace dm = diffusion;
using tensor = Eigen::Tensor<double, 2, Eigen::RowMajor>;

namespace {

void print_moments(const char* name, std::span<const double> xy, std::size_t model_calls, double seconds) {
  const std::size_t n = xy.size() / 2;
  double m[2] = {0, 0}, c[3] = {0, 0, 0};
  for (std::size_t i = 0; i < n; ++i) m[0] += xy[2 * i], m[1] += xy[2 * i + 1];
  m[0] /= n, m[1] /= n;
  for (std::size_t i = 0; i < n; ++i) {
    const double a = xy[2 * i] - m[0], b = xy[2 * i + 1] - m[1];
    c[0] += a * a, c[1] += a * b, c[2] += b * b;
  }
  std::printf("%-30s mean (%+.3f, %+.3f)   cov [[%.3f, %+.3f], [%+.3f, %.3f]]", name, m[0], m[1], c[0] / n,
              c[1] / n, c[1] / n, c[2] / n);
  if (model_calls > 0) std::printf("   %5zu model calls  %6.2f s", model_calls, seconds);
  std::printf("\n");
}

/// Counts the model calls a sampler makes, whatever the model.
template <class Model>
struct counted {
  using parameterization = typename Model::parameterization;
  Model& model;
  std::size_t calls = 0;
  template <class T>
  void operator()(const T& x, double t, T& out) {
    ++calls;
    model(x, t, out);
  }
  // The likelihood and divergence code ask the model for more; the demo does not need it.
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void plot(const std::string& path, std::span<const double> data, std::span<const double> samples) {
  examples::scatter_canvas canvas(600, -4.0, 4.0, -4.5, 3.5);
  canvas.points(data, {40, 90, 200}, 0.25);
  canvas.points(samples, {220, 50, 40}, 0.35);
  canvas.save(path);
  std::printf("  wrote %s (blue: data, red: samples)\n", path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path out_dir = argc > 1 ? argv[1] : "demo_output";
  std::filesystem::create_directories(out_dir);

  const dm::gaussian_mixture mixture({0.5, 0.3, 0.2}, {{-2.0, 0.0}, {2.0, 1.0}, {0.0, -2.5}}, {0.3, 0.3, 0.3});
  const auto process = dm::vp_discrete::linear(1e-4, 0.02, 1000);
  dm::gaussian_mixture_model<dm::vp_discrete> model(mixture, process);  // the exact eps of the mixture
  dm::eigen_backend<double, 2> be;

  const Eigen::Index n = 4000;
  tensor x_T(n, 2);
  dm::philox_noise(1).fill_normal(dm::elements(x_T), n);
  tensor data(n, 2);
  dm::philox_noise rng(3);
  mixture.sample(rng, data);

  const auto mean = mixture.mean();
  const auto cov = mixture.covariance();
  std::printf("%-30s mean (%+.3f, %+.3f)   cov [[%.3f, %+.3f], [%+.3f, %.3f]]\n", "truth", mean[0], mean[1],
              cov[0], cov[1], cov[2], cov[3]);
  print_moments("exact data samples", dm::elements(std::as_const(data)), 0, 0.0);

  // Runs one sampler from x_start, prints its statistics and writes its plot.
  auto run = [&](const char* name, const char* file, auto& model, auto&& sampler_call) {
    counted<std::remove_reference_t<decltype(model)>> counting{model};
    const auto start = std::chrono::steady_clock::now();
    const tensor x = sampler_call(counting);
    print_moments(name, dm::elements(x), counting.calls, seconds_since(start));
    plot((out_dir / file).string(), dm::elements(std::as_const(data)), dm::elements(x));
  };

  // DDPM family: discrete VP process, eps model.
  run("DDPM ancestral (1000 steps)", "ddpm_ancestral.png", model, [&](auto& m) {
    return dm::sample(dm::ddpm_ancestral(process, dm::leading_grid(1000, 1000)), m, be, x_T, dm::philox_noise(2));
  });
  run("DDIM eta=0 (50 steps)", "ddim.png", model, [&](auto& m) {
    return dm::sample(dm::ddim(process, dm::leading_grid(1000, 50), {.eta = 0.0}), m, be, x_T, dm::philox_noise(2));
  });

  // NCSN: geometric noise levels from 10 to 0.01, annealed Langevin (ncsnv2 conventions).
  const auto levels = dm::ve_discrete::geometric(10.0, 0.01, 50);
  dm::gaussian_mixture_model<dm::ve_discrete, dm::score_param> ncsn_model(mixture, levels);
  tensor x_ve(n, 2);
  be.lincomb(x_ve, 10.0, x_T);  // the VE prior: sigma_1 z
  run("annealed Langevin (50 x 30)", "annealed_langevin.png", ncsn_model, [&](auto& m) {
    return dm::sample(dm::annealed_langevin(levels, {.step_lr = 1e-5, .n_steps_each = 30, .denoise = true}), m, be,
                      x_ve, dm::philox_noise(4));
  });

  // Score SDE: VP SDE, score model through the eps parameterization.
  const dm::vp_sde sde(0.1, 20.0, 500);
  dm::gaussian_mixture_model<dm::vp_sde> sde_model(mixture, sde);
  run("PC: reverse diffusion+Langevin", "predictor_corrector.png", sde_model, [&](auto& m) {
    const dm::predictor_corrector pc(sde, dm::reverse_diffusion_predictor{}, dm::langevin_corrector{.snr = 0.16});
    return dm::sample(pc, m, be, x_T, dm::philox_noise(5));
  });
  run("probability-flow ODE, Heun (50)", "probability_flow_heun.png", sde_model, [&](auto& m) {
    return dm::sample(dm::probability_flow<dm::vp_sde, dm::heun_method>(sde, {.steps = 50}), m, be, x_T,
                      dm::philox_noise(6));
  });
  run("probability-flow ODE, DOPRI5", "probability_flow_dopri5.png", sde_model, [&](auto& m) {
    return dm::sample_adaptive(sde, m, be, x_T, {.rtol = 1e-5, .atol = 1e-5}).x;
  });
  return 0;
}
