// SPDX-License-Identifier: MIT
// Short training runs of the example network on the 3-component mixture, one per loss (DDPM
// eps-loss, NCSN DSM, VP-SDE DSM with likelihood weighting): the loss goes down, and samples of the
// trained network come within a sliced Wasserstein bound of held-out data that the untrained
// network misses by far. Seconds, not minutes: a 2 x 32 network and 1200 steps of batch 128.
#include <catch2/catch.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "common/datasets.hpp"
#include "common/denoiser.hpp"
#include "common/mlp.hpp"
#include "common/sliced_wasserstein.hpp"
#include "common/train.hpp"

#include <diffusion/diffusion.hpp>
#include <diffusion/loss/ncsn_loss.hpp>
#include <diffusion/loss/sde_loss.hpp>
#include <diffusion/sampler/annealed_langevin.hpp>
#include <diffusion/sampler/probability_flow.hpp>

namespace {

namespace dm = diffusion;
namespace ex = examples;
using tensor = Eigen::Tensor<float, 2, Eigen::RowMajor>;

const ex::mlp_config net_config{.data_dim = 2, .embed_dim = 8, .hidden = 32, .hidden_layers = 2, .max_frequency = 32.0};
const ex::train_options short_run{.steps = 1200, .batch_size = 128, .learning_rate = 1e-2, .warmup = 50, .seed = 3};
constexpr std::size_t eval_n = 1000;

// SW_1 with 1000 points: independent draws of the mixture are 0.04-0.1 apart (the noise floor);
// the trained networks' samples measured 0.09-0.19, the untrained ones' 8-114 (their output is
// not even of unit scale, so the samplers throw the points far out). The bound leaves a margin
// of 1.5x above the trained values: a thousand steps of a tiny network are not a converged model.
constexpr double trained_bound = 0.3;

struct fixture {
  std::vector<double> data = ex::make_dataset(ex::dataset::mixture, 5000, 1);
  std::vector<double> held_out = ex::make_dataset(ex::dataset::mixture, eval_n, 2);
  double sigma_data = ex::rms_spread(data);
};

double sw_to(const tensor& x, const std::vector<double>& held_out) {
  return ex::sliced_wasserstein(std::span<const float>(x.data(), static_cast<std::size_t>(x.size())),
                                std::span<const double>(held_out), 2);
}

tensor prior(double scale) {
  tensor x(static_cast<Eigen::Index>(eval_n), 2);
  dm::philox_noise(11).fill_normal(dm::elements(x), eval_n);
  return x * static_cast<float>(scale);
}

double mean(const std::vector<double>& v, std::size_t from, std::size_t to) {
  double s = 0.0;
  for (std::size_t i = from; i < to; ++i) s += v[i];
  return s / static_cast<double>(to - from);
}

/// Trains a fresh network with `loss`, checks that the loss went down, and returns the SW_1 of the
/// untrained and the trained network's samples (drawn by `draw(model)`).
template <class Process, class Loss, class Draw>
std::pair<double, double> train_and_measure(const fixture& f, const Process& process, const Loss& loss, Draw draw,
                                            double loss_drop) {
  ex::denoiser<Process> model(ex::mlp<float>(net_config, 5), process, f.sigma_data);
  const double before = sw_to(draw(model), f.held_out);
  const ex::train_report r = ex::train(loss, model, f.data, short_run);
  REQUIRE(r.steps == short_run.steps);
  const double first = mean(r.loss, 0, 50), last = mean(r.loss, r.loss.size() - 100, r.loss.size());
  INFO("loss: first 50 steps " << first << ", last 100 steps " << last);
  CHECK(last < loss_drop * first);
  const double after = sw_to(draw(model), f.held_out);
  return {before, after};
}

}  // namespace

TEST_CASE("training with the DDPM eps-loss lowers the loss and the distance to the data", "[examples][train]") {
  const fixture f;
  const auto process = dm::vp_discrete::linear(1e-4, 0.02, 1000);
  dm::eigen_backend<float, 2> be;
  auto draw = [&](auto& model) {
    return dm::sample(dm::ddim(process, dm::leading_grid(1000, 20)), model, be, prior(1.0), dm::philox_noise(12));
  };
  const auto [before, after] = train_and_measure(f, process, dm::ddpm_eps_loss{process}, draw, 0.6);
  INFO("SW_1 untrained " << before << ", trained " << after);
  CHECK(before > 2 * trained_bound);
  CHECK(after < trained_bound);
}

TEST_CASE("training with NCSN's DSM loss lowers the loss and the distance to the data", "[examples][train]") {
  const fixture f;
  const auto process = dm::ve_discrete::geometric(10.0, 0.01, 50);
  dm::eigen_backend<float, 2> be;
  auto draw = [&](auto& model) {
    return dm::sample(dm::consistent_annealed_sampling(process, {.step_lr = 2e-5}), model, be, prior(10.0),
                      dm::philox_noise(12));
  };
  const auto [before, after] =
      train_and_measure(f, process, dm::ncsn_loss<dm::ve_discrete, dm::eps_param>{process}, draw, 0.8);
  INFO("SW_1 untrained " << before << ", trained " << after);
  CHECK(before > 2 * trained_bound);
  CHECK(after < trained_bound);
}

TEST_CASE("training with the VP-SDE DSM loss (likelihood weighting) lowers the distance to the data",
          "[examples][train]") {
  const fixture f;
  const dm::vp_sde process(0.1, 20.0, 1000);
  dm::eigen_backend<float, 2> be;
  auto draw = [&](auto& model) {
    return dm::sample(dm::probability_flow<dm::vp_sde, dm::heun_method>(process, {.steps = 20}), model, be,
                      prior(1.0), dm::philox_noise(12));
  };
  // The g^2-weighted loss is dominated by its small-t samples (weight ~ 1/t on the eps error), so
  // its minibatch values scatter widely; the mean over many steps still falls.
  const auto loss = dm::sde_dsm_loss<dm::vp_sde, dm::likelihood_weight, dm::eps_param>{process};
  const auto [before, after] = train_and_measure(f, process, loss, draw, 0.9);
  INFO("SW_1 untrained " << before << ", trained " << after);
  CHECK(before > 2 * trained_bound);
  CHECK(after < trained_bound);
}

TEST_CASE("training is reproducible and an observer can stop it", "[examples][train]") {
  const fixture f;
  const auto process = dm::vp_discrete::linear(1e-4, 0.02, 1000);
  const dm::ddpm_eps_loss loss{process};
  ex::train_options opt = short_run;
  opt.steps = 30;
  ex::denoiser<dm::vp_discrete> a(ex::mlp<float>(net_config, 5), process, f.sigma_data);
  ex::denoiser<dm::vp_discrete> b(ex::mlp<float>(net_config, 5), process, f.sigma_data);
  const ex::train_report ra = ex::train(loss, a, f.data, opt);
  std::size_t seen = 0;
  const ex::train_report rb = ex::train(loss, b, f.data, opt, [&](const ex::train_step_info& s) {
    ++seen;
    REQUIRE(s.count == 30);
    return s.index == 9 ? dm::observer_action::stop : dm::observer_action::proceed;
  });
  REQUIRE(seen == 10);
  REQUIRE(rb.steps == 10);
  REQUIRE(rb.loss.size() == 10);
  // The same seeds give the same first steps, bit for bit.
  for (std::size_t i = 0; i < 10; ++i) REQUIRE(ra.loss[i] == rb.loss[i]);
}

TEST_CASE("train rejects bad options and data", "[examples][train]") {
  const auto process = dm::vp_discrete::linear(1e-4, 0.02, 1000);
  ex::denoiser<dm::vp_discrete> model(ex::mlp<float>(net_config, 5), process, 1.0);
  const std::vector<double> odd(7, 0.0);
  REQUIRE_THROWS_WITH(ex::train(dm::ddpm_eps_loss{process}, model, odd, short_run),
                      Catch::Matchers::Contains("data.size()"));
  ex::train_options bad = short_run;
  bad.steps = 0;
  const std::vector<double> data(8, 0.0);
  REQUIRE_THROWS_WITH(ex::train(dm::ddpm_eps_loss{process}, model, data, bad), Catch::Matchers::Contains("steps"));
  REQUIRE_THROWS_WITH(ex::denoiser<dm::vp_discrete>(ex::mlp<float>(net_config, 5), process, 0.0),
                      Catch::Matchers::Contains("sigma_data"));
}
