// SPDX-License-Identifier: MIT
// Annealed Langevin dynamics and consistent annealed sampling over ve_discrete: draw-for-draw
// agreement with transcriptions of the reference loops (ncsnv2, Jolicoeur-Martineau et al.'s code),
// the mixture reproduced by the exact model, the consistency of CAS's noise level, the final
// denoising step, eps models, observers and the rejection of bad input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include <diffusion/core.hpp>
#include <diffusion/process/sde.hpp>
#include <diffusion/process/ve_discrete.hpp>
#include <diffusion/sampler/annealed_langevin.hpp>

#include "support/counting_model.hpp"
#include "support/mixture_fixture.hpp"
#include "support/normal_batch.hpp"
#include "support/pass_counting_backend.hpp"
#include "support/statistics.hpp"

using namespace diffusion;
using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using tensor_d = reference_tensor<double>;
using score_model = gaussian_mixture_model<ve_discrete, score_param>;

// The pairing is checked at compile time: a sampler over a DDPM process or an SDE fails its
// static_assert, whose condition is this concept.
static_assert(discrete_ve_process<ve_discrete>);
static_assert(!discrete_ve_process<vp_discrete>);
static_assert(!discrete_ve_process<vp_sde>);
static_assert(!discrete_ve_process<ve_sde>);
static_assert(sampler_for<annealed_langevin<ve_discrete>, reference_backend<double>>);
static_assert(sampler_for<consistent_annealed_sampling<ve_discrete>, reference_backend<double>>);

namespace {

using test::counting_model;

using test::normal_batch;

std::vector<std::vector<double>> normal_draws(std::size_t count, std::size_t size, std::uint64_t seed) {
  philox_noise source(seed);
  std::vector<std::vector<double>> draws(count, std::vector<double>(size));
  for (auto& d : draws) source.fill_normal(std::span<double>(d), 1);
  return draws;
}

// The exact score of the golden mixture at level c, for the reference loops below.
std::vector<double> exact_score(score_model& model, const std::vector<double>& x, std::size_t c) {
  tensor_d in({x.size() / 2, 2}, x), out({x.size() / 2, 2});
  model(in, static_cast<double>(c), out);
  return out.data;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double rtol, double atol) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK_THAT(got[i], WithinRel(want[i], rtol) || WithinAbs(want[i], atol));
  }
}

// Mean, covariance and component weights of `x` against the golden mixture, within 5 standard
// errors of the sample at hand.
void check_reproduces_golden_mixture(const tensor_d& x) { test::check_reproduces_mixture(test::golden_mixture(), x.data); }

}  // namespace

TEST_CASE("annealed_langevin follows ncsnv2's anneal_Langevin_dynamics draw for draw", "[sampler][ncsn]") {
  const ve_discrete process = ve_discrete::geometric(5.0, 0.05, 4);
  const std::size_t B = 3, n_each = 3, L = 4;
  const double step_lr = 3e-4;
  const bool denoise = GENERATE(true, false);
  score_model model(test::golden_mixture(), process);
  reference_backend<double> be;
  const tensor_d x_T = normal_batch(B, 2, 1, 0, 5.0);
  const auto draws = normal_draws(L * n_each, B * 2, 2);

  // ncsnv2 models/__init__.py, anneal_Langevin_dynamics, transcribed (REFERENCE.md item 16).
  std::vector<double> x = x_T.data;
  const auto& sigmas = process.sigmas();
  std::size_t k = 0;
  for (std::size_t c = 0; c < L; ++c) {
    const double step_size = step_lr * std::pow(sigmas[c] / sigmas[L - 1], 2);
    for (std::size_t s = 0; s < n_each; ++s) {
      const auto grad = exact_score(model, x, c);
      const auto& noise = draws[k++];
      for (std::size_t j = 0; j < x.size(); ++j) x[j] = x[j] + step_size * grad[j] + noise[j] * std::sqrt(step_size * 2);
    }
  }
  if (denoise) {
    const auto grad = exact_score(model, x, L - 1);
    for (std::size_t j = 0; j < x.size(); ++j) x[j] = x[j] + sigmas[L - 1] * sigmas[L - 1] * grad[j];
  }

  const annealed_langevin sampler(process, {.step_lr = step_lr, .n_steps_each = n_each, .denoise = denoise});
  REQUIRE(sampler.num_steps() == L * n_each + (denoise ? 1 : 0));
  replay_noise noise(draws);
  counting_model<score_model> counted{model};
  const tensor_d out = sample(sampler, counted, be, x_T, noise);
  CHECK(noise.remaining() == 0);  // one draw per Langevin step, none for the denoising step
  CHECK(counted.calls == sampler.num_steps());
  check_close(out.data, x, 1e-13, 1e-14);
}

TEST_CASE("consistent_annealed_sampling follows the reference anneal_Langevin_dynamics_consistent",
          "[sampler][ncsn][cas]") {
  const ve_discrete process = ve_discrete::geometric(5.0, 0.05, 6);
  const std::size_t B = 3, L = 6;
  const double sigma_L = process.sigma_min();
  // Inside (sigma_L^2 (1 - gamma), sigma_L^2 (1 + gamma)), away from the ancestral value.
  const double step_lr = GENERATE_COPY(values<double>({0.8 * sigma_L * sigma_L, 1.3 * sigma_L * sigma_L}));
  const bool denoise = GENERATE(true, false);
  score_model model(test::golden_mixture(), process);
  reference_backend<double> be;
  const tensor_d x_T = normal_batch(B, 2, 3, 0, 5.0);
  const auto draws = normal_draws(L - 1, B * 2, 4);

  // AdversarialConsistentScoreMatching models/__init__.py, anneal_Langevin_dynamics_consistent,
  // transcribed; the network there returns sigma * score.
  std::vector<double> x = x_T.data, denoised;
  const auto& sigmas = process.sigmas();
  const double eta = step_lr / (sigmas[L - 1] * sigmas[L - 1]);
  for (std::size_t c = 0; c < L; ++c) {
    const double c_sigma = sigmas[c];
    auto score_net = exact_score(model, x, c);
    for (double& v : score_net) v *= c_sigma;
    denoised = x;
    for (std::size_t j = 0; j < x.size(); ++j) denoised[j] += c_sigma * score_net[j];
    for (std::size_t j = 0; j < x.size(); ++j) x[j] += eta * c_sigma * score_net[j];
    if (c + 1 == L) continue;
    const double next_sigma = sigmas[c + 1];
    const double beta = std::sqrt(1 - std::pow((1 - eta) / (next_sigma / c_sigma), 2));
    for (std::size_t j = 0; j < x.size(); ++j) x[j] += next_sigma * beta * draws[c][j];
  }

  const consistent_annealed_sampling sampler(process, {.step_lr = step_lr, .denoise = denoise});
  REQUIRE(sampler.num_steps() == L);
  replay_noise noise(draws);
  counting_model<score_model> counted{model};
  const tensor_d out = sample(sampler, counted, be, x_T, noise);
  CHECK(noise.remaining() == 0);  // L - 1 draws: none after the last level
  CHECK(counted.calls == L);
  check_close(out.data, denoise ? denoised : x, 1e-12, 1e-13);
}

TEST_CASE("annealed_langevin with the exact score reproduces the mixture", "[sampler][ncsn][statistics]") {
  // sigma_1 = 10 is about twice the largest distance between the mixture's means (Song & Ermon
  // 2020, Technique 1); 50 geometric levels down to 0.01; 30 steps per level with step_lr = 1e-5,
  // so each step moves a_i / sigma_i^2 = 0.1 of the level's variance. ALD is not exact at a finite
  // budget: at this one its component weights are off by about 0.005 (1 standard error here; 2-3
  // at n = 32768), and halving the steps doubles that.
  const ve_discrete process = ve_discrete::geometric(10.0, 0.01, 50);
  const annealed_langevin sampler(process, {.step_lr = 1e-5, .n_steps_each = 30, .denoise = true});
  score_model model(test::golden_mixture(), process);
  counting_model<score_model> counted{model};
  reference_backend<double> be;
  const std::size_t n = 8192;
  const tensor_d x = sample(sampler, counted, be, normal_batch(n, 2, 2024, 1, process.sigma_max()),
                            philox_noise(2024, 2));
  CHECK(counted.calls == 50 * 30 + 1);
  check_reproduces_golden_mixture(x);
}

TEST_CASE("consistent_annealed_sampling with the exact score reproduces the mixture",
          "[sampler][ncsn][cas][statistics]") {
  // 500 geometric levels from 10 to 0.01, one model call each. step_lr = sigma_L^2 (1 - gamma^2)
  // makes every step the ancestral step of the VE chain (step sigma_i^2 - sigma_{i+1}^2, noise
  // variance sigma_{i+1}^2 (1 - gamma^2)), which is exact as gamma -> 1; with 100 or 200 levels
  // the smallest component's weight is still ~0.007 low.
  const ve_discrete process = ve_discrete::geometric(10.0, 0.01, 500);
  const double gamma = process.sigma(1) / process.sigma(0);
  const double sigma_L = process.sigma_min();
  const consistent_annealed_sampling sampler(process, {.step_lr = sigma_L * sigma_L * (1 - gamma * gamma)});
  score_model model(test::golden_mixture(), process);
  counting_model<score_model> counted{model};
  reference_backend<double> be;
  const std::size_t n = 8192;
  const tensor_d x = sample(sampler, counted, be, normal_batch(n, 2, 2025, 1, process.sigma_max()),
                            philox_noise(2025, 2));
  CHECK(counted.calls == 500);
  check_reproduces_golden_mixture(x);
}

TEST_CASE("consistent annealed sampling keeps the noise level on the schedule", "[sampler][ncsn][cas]") {
  SECTION("beta makes the variance (1 - eta)^2 sigma_i^2 + beta^2 sigma_{i+1}^2 equal sigma_{i+1}^2") {
    for (const double gamma : {0.5, 0.9, 0.99})
      for (const double eta : {1 - 0.9 * gamma, 1 - gamma * gamma, 0.7, 1.0, 1 + 0.5 * gamma}) {
        const double sigma = 3.0, next = gamma * sigma;
        const double beta = detail::consistent_beta(eta, gamma);
        INFO("gamma = " << gamma << ", eta = " << eta);
        CHECK_THAT((1 - eta) * (1 - eta) * sigma * sigma + beta * beta * next * next, WithinRel(next * next, 1e-14));
      }
  }
  SECTION("for point-mass data every level's sample variance is sigma_{i+1}^2") {
    // Data N(mu, s^2) with s = 1e-6, so that the exact score is -(x - mu)/sigma^2 to ~1e-8. Starting
    // from mu + sigma_1 z, x - mu after level i has variance (1 - eta)^2 sigma_i^2 + beta^2
    // sigma_{i+1}^2 = sigma_{i+1}^2 for any eta in range; checked at every level within 5 standard
    // errors (se = v sqrt(2/N) for N values around the known mean).
    const double mu = 0.7;
    const gaussian_mixture point({1.0}, {{mu}}, std::vector<double>{1e-6});
    const ve_discrete process = ve_discrete::geometric(2.0, 0.01, 20);
    const double sigma_L = process.sigma_min();
    gaussian_mixture_model<ve_discrete, score_param> model(point, process);
    const consistent_annealed_sampling sampler(process, {.step_lr = 0.6 * sigma_L * sigma_L, .denoise = false});
    reference_backend<double> be;
    const std::size_t n = 20000;
    tensor_d x_T = normal_batch(n, 1, 77, 1, process.sigma_max());
    for (double& v : x_T.data) v += mu;
    std::size_t levels_seen = 0;
    sample(sampler, model, be, std::move(x_T), philox_noise(77, 2), [&](const step_info<tensor_d>& s) {
      if (s.index + 1 == s.count) return;  // after the last level the noise is (1 - eta) sigma_L
      double v = 0.0;
      for (double e : s.x.data) v += (e - mu) * (e - mu);
      v /= static_cast<double>(n);
      const double want = std::pow(process.sigma(static_cast<double>(s.index + 1)), 2);
      INFO("after level " << s.index);
      CHECK_THAT(v, WithinAbs(want, 5 * want * std::sqrt(2.0 / static_cast<double>(n))));
      ++levels_seen;
    });
    CHECK(levels_seen == 19);
  }
}

TEST_CASE("the final denoising step adds sigma_L^2 score(x, sigma_L)", "[sampler][ncsn]") {
  const ve_discrete process = ve_discrete::geometric(10.0, 0.01, 10);
  score_model model(test::golden_mixture(), process);
  reference_backend<double> be;
  const tensor_d x_T = normal_batch(64, 2, 5, 0, 10.0);
  const annealed_langevin plain(process, {.step_lr = 2e-5, .n_steps_each = 5, .denoise = false});
  const annealed_langevin denoised(process, {.step_lr = 2e-5, .n_steps_each = 5, .denoise = true});
  REQUIRE(denoised.num_steps() == plain.num_steps() + 1);
  const tensor_d a = sample(plain, model, be, x_T, philox_noise(6));
  const tensor_d b = sample(denoised, model, be, x_T, philox_noise(6));
  tensor_d score({64, 2});
  model(a, 9.0, score);
  const double s2 = process.sigma_min() * process.sigma_min();
  double moved = 0.0;
  for (std::size_t i = 0; i < a.data.size(); ++i) {
    CHECK_THAT(b.data[i], WithinAbs(a.data[i] + s2 * score.data[i], 1e-14));
    moved = std::max(moved, std::abs(b.data[i] - a.data[i]));
  }
  CHECK(moved > 1e-6);  // the step did something
}

namespace {

// The samplers fold an eps or x0 model's conversion to the score into their update: sampling costs
// the same passes over memory whatever the model predicts.
template <class Sampler, class S, class E, class X>
void check_same_passes(const Sampler& sampler, S& s_model, E& e_model, X& x_model, const tensor_d& x_T) {
  auto passes = [&](auto& model) {
    std::size_t n = 0;
    test::pass_counting_backend be{{}, &n};
    (void)sample(sampler, model, be, x_T, philox_noise(9));
    return n;
  };
  const std::size_t score_passes = passes(s_model);
  CHECK(score_passes >= sampler.num_steps());
  CHECK(passes(e_model) == score_passes);
  CHECK(passes(x_model) == score_passes);
}

}  // namespace

TEST_CASE("an eps or x0 model samples as its score, its conversion folded into the update",
          "[sampler][ncsn]") {
  const ve_discrete process = ve_discrete::geometric(10.0, 0.01, 8);
  score_model s_model(test::golden_mixture(), process);
  gaussian_mixture_model<ve_discrete, eps_param> e_model(test::golden_mixture(), process);
  gaussian_mixture_model<ve_discrete, x0_param> x_model(test::golden_mixture(), process);
  reference_backend<double> be;
  const tensor_d x_T = normal_batch(32, 2, 8, 0, 10.0);
  SECTION("annealed Langevin") {
    const annealed_langevin sampler(process, {.step_lr = 2e-5, .n_steps_each = 4});
    const tensor_d a = sample(sampler, s_model, be, x_T, philox_noise(9));
    check_close(sample(sampler, e_model, be, x_T, philox_noise(9)).data, a.data, 1e-9, 1e-10);
    check_close(sample(sampler, x_model, be, x_T, philox_noise(9)).data, a.data, 1e-9, 1e-10);
    check_same_passes(sampler, s_model, e_model, x_model, x_T);
  }
  SECTION("consistent annealed sampling") {
    const consistent_annealed_sampling sampler(process, {.step_lr = 1e-4});
    const tensor_d a = sample(sampler, s_model, be, x_T, philox_noise(9));
    check_close(sample(sampler, e_model, be, x_T, philox_noise(9)).data, a.data, 1e-9, 1e-10);
    check_close(sample(sampler, x_model, be, x_T, philox_noise(9)).data, a.data, 1e-9, 1e-10);
    check_same_passes(sampler, s_model, e_model, x_model, x_T);
  }
}

TEST_CASE("annealed samplers report levels, steps and x0_hat to observers", "[sampler][ncsn]") {
  const ve_discrete process = ve_discrete::geometric(1.0, 0.1, 3);
  score_model model(test::golden_mixture(), process);
  reference_backend<double> be;
  const tensor_d x_T = normal_batch(4, 2, 10, 0);
  SECTION("annealed Langevin: one observer call per model call") {
    const annealed_langevin sampler(process, {.step_lr = 1e-3, .n_steps_each = 2, .denoise = true});
    std::vector<double> t, t_next;
    std::vector<double> last_prediction;
    const tensor_d out = sample(sampler, model, be, x_T, philox_noise(11), [&](const step_info<tensor_d>& s) {
      CHECK(s.count == 7);
      t.push_back(s.t);
      t_next.push_back(s.t_next);
      last_prediction = s.prediction.data;
    });
    CHECK(t == std::vector<double>{0, 0, 1, 1, 2, 2, 2});
    CHECK(t_next == std::vector<double>{0, 1, 1, 2, 2, 2, 3});
    // The denoising step's x0_hat = x + sigma_L^2 score is the step's result.
    check_close(out.data, last_prediction, 1e-15, 1e-15);
    CHECK(sampler.step_size(0) == 1e-3 * std::pow(1.0 / process.sigma_min(), 2));
  }
  SECTION("consistent annealed sampling: one step per level") {
    const consistent_annealed_sampling sampler(process, {.step_lr = 0.01});
    std::vector<double> t, t_next;
    sample(sampler, model, be, x_T, philox_noise(11), [&](const step_info<tensor_d>& s) {
      CHECK(s.count == 3);
      t.push_back(s.t);
      t_next.push_back(s.t_next);
    });
    CHECK(t == std::vector<double>{0, 1, 2});
    CHECK(t_next == std::vector<double>{1, 2, 3});
    CHECK(sampler.noise_std(2) == 0.0);
  }
}

TEST_CASE("annealed samplers reject bad options with the parameter, value and range", "[sampler][ncsn][errors]") {
  const ve_discrete process = ve_discrete::geometric(10.0, 0.01, 50);
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  constexpr double inf = std::numeric_limits<double>::infinity();
  SECTION("annealed Langevin: step_lr > 0 and finite, at least one step per level") {
    const double bad = GENERATE_COPY(values<double>({0.0, -1e-5, nan, inf}));
    CHECK_THROWS_AS(annealed_langevin(process, {.step_lr = bad}), std::invalid_argument);
    CHECK_THROWS_WITH(annealed_langevin(process, {.step_lr = bad}), Contains("step_lr") && Contains("(0, inf)"));
    CHECK_THROWS_WITH(annealed_langevin(process, {.step_lr = 1e-5, .n_steps_each = 0}),
                      Contains("n_steps_each = 0") && Contains("at least 1"));
  }
  SECTION("consistent annealed sampling: step_lr within sigma_L^2 (1 -+ gamma)") {
    double gamma = 1.0;  // the smallest ratio of consecutive levels
    for (std::size_t i = 0; i + 1 < process.num_levels(); ++i)
      gamma = std::min(gamma, process.sigmas()[i + 1] / process.sigmas()[i]);
    const double s2 = process.sigma_min() * process.sigma_min();
    const double bad = GENERATE_COPY(values<double>({0.0, -1.0, nan, inf, 0.99 * s2 * (1 - gamma), 1.01 * s2 * (1 + gamma)}));
    CHECK_THROWS_AS(consistent_annealed_sampling(process, {.step_lr = bad}), std::invalid_argument);
    CHECK_THROWS_WITH(consistent_annealed_sampling(process, {.step_lr = bad}),
                      Contains("step_lr") && Contains("sigma_L^2 (1 - gamma)") &&
                          Contains(detail::format_value(s2 * (1 + gamma))));
    CHECK_NOTHROW(consistent_annealed_sampling(process, {.step_lr = 1.01 * s2 * (1 - gamma)}));
    CHECK_NOTHROW(consistent_annealed_sampling(process, {.step_lr = 0.99 * s2 * (1 + gamma)}));
  }
  SECTION("consistent annealed sampling with a single level needs only step_lr > 0") {
    const ve_discrete one({0.5});
    CHECK_NOTHROW(consistent_annealed_sampling(one, {.step_lr = 3.0}));
    CHECK_THROWS_WITH(consistent_annealed_sampling(one, {.step_lr = 0.0}), Contains("step_lr") && Contains("(0, inf)"));
  }
  SECTION("a model output of the wrong shape") {
    reference_backend<double> be;
    auto bad = make_predictor<score_param>([](const tensor_d& x, double) { return tensor_d({x.shape[0], 3}); });
    const annealed_langevin sampler(process, {.step_lr = 1e-5, .n_steps_each = 1});
    CHECK_THROWS_WITH(sample(sampler, bad, be, tensor_d({4, 2}), philox_noise(1)),
                      Contains("[4, 3]") && Contains("[4, 2]"));
  }
}

TEST_CASE("annealed samplers run on float tensors and agree with double", "[sampler][ncsn]") {
  const ve_discrete process = ve_discrete::geometric(5.0, 0.05, 6);
  const tensor_d x_d = normal_batch(16, 2, 12, 0, 5.0);
  reference_tensor<float> x_f({16, 2});
  for (std::size_t i = 0; i < x_d.data.size(); ++i) x_f.data[i] = static_cast<float>(x_d.data[i]);
  score_model model(test::golden_mixture(), process);
  reference_backend<double> be_d;
  reference_backend<float> be_f;
  const auto compare = [&](const auto& sampler) {
    const tensor_d out_d = sample(sampler, model, be_d, x_d, philox_noise(13));
    const reference_tensor<float> out_f = sample(sampler, model, be_f, x_f, philox_noise(13));
    for (std::size_t i = 0; i < out_d.data.size(); ++i)
      CHECK_THAT(static_cast<double>(out_f.data[i]), WithinAbs(out_d.data[i], 1e-4 * (1.0 + std::abs(out_d.data[i]))));
  };
  compare(annealed_langevin(process, {.step_lr = 1e-3, .n_steps_each = 3}));
  compare(consistent_annealed_sampling(process, {.step_lr = 2e-3}));
}
