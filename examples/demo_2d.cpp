// SPDX-License-Identifier: MIT
// The demo: sample the 3-component 2-D Gaussian mixture with DDPM ancestral sampling (1000 steps)
// and DDIM (50 steps), driven by the exact model of the mixture, on the Eigen backend. Prints the
// sample mean and covariance beside the truth and writes one PNG scatter plot per sampler.
//
//   demo_2d [output directory]
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

void print_moments(const char* name, std::span<const double> xy) {
  const std::size_t n = xy.size() / 2;
  double m[2] = {0, 0}, c[3] = {0, 0, 0};
  for (std::size_t i = 0; i < n; ++i) m[0] += xy[2 * i], m[1] += xy[2 * i + 1];
  m[0] /= n, m[1] /= n;
  for (std::size_t i = 0; i < n; ++i) {
    const double a = xy[2 * i] - m[0], b = xy[2 * i + 1] - m[1];
    c[0] += a * a, c[1] += a * b, c[2] += b * b;
  }
  std::printf("%-22s mean (%+.3f, %+.3f)   cov [[%.3f, %+.3f], [%+.3f, %.3f]]\n", name, m[0], m[1], c[0] / n,
              c[1] / n, c[1] / n, c[2] / n);
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
  std::printf("%-22s mean (%+.3f, %+.3f)   cov [[%.3f, %+.3f], [%+.3f, %.3f]]\n", "truth", mean[0], mean[1],
              cov[0], cov[1], cov[2], cov[3]);
  print_moments("exact data samples", dm::elements(std::as_const(data)));

  const dm::ddpm_ancestral ancestral(process, dm::leading_grid(1000, 1000));
  const tensor x_ddpm = dm::sample(ancestral, model, be, x_T, dm::philox_noise(2));
  print_moments("DDPM ancestral (1000)", dm::elements(x_ddpm));
  plot((out_dir / "ddpm_ancestral.png").string(), dm::elements(std::as_const(data)), dm::elements(x_ddpm));

  const dm::ddim ddim(process, dm::leading_grid(1000, 50), {.eta = 0.0});
  const tensor x_ddim = dm::sample(ddim, model, be, x_T, dm::philox_noise(2));
  print_moments("DDIM eta=0 (50)", dm::elements(x_ddim));
  plot((out_dir / "ddim.png").string(), dm::elements(std::as_const(data)), dm::elements(x_ddim));
  return 0;
}
