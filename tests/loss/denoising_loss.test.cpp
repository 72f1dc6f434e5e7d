// SPDX-License-Identifier: MIT
// The general denoising loss: value against a direct computation, gradient against central
// differences, float and double, replayed draws, the score-target / lambda = sigma^2 identity and
// the rejection of bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <diffusion/backend/reference.hpp>
#include <diffusion/loss/ddpm_loss.hpp>
#include <diffusion/loss/denoising_loss.hpp>
#include <diffusion/loss/weighting.hpp>
#include <diffusion/process/vp_discrete.hpp>
#include <diffusion/random/philox_noise.hpp>

namespace {

namespace dm = diffusion;
using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;

// A continuous process with alpha = 1, sigma = t (a VE-like toy), to exercise continuous time and
// score targets before the SDE processes exist.
struct toy_ve {
  using time_kind = dm::continuous_time;
  double alpha(double) const { return 1.0; }
  double sigma(double t) const { return t; }
};

template <class S>
dm::reference_tensor<S> filled(std::vector<std::size_t> shape, std::uint64_t seed, std::uint32_t stream) {
  dm::reference_tensor<S> x(std::move(shape));
  dm::philox_noise n(seed, stream);
  n.fill_normal(std::span<S>(x.data), dm::batch_size(x));
  return x;
}

// The target of each parameterization, computed here from its definition.
double target_of(dm::parameterization k, double a, double s, double x0, double eps) {
  switch (k) {
    case dm::parameterization::eps: return eps;
    case dm::parameterization::x0: return x0;
    case dm::parameterization::v: return a * eps - s * x0;
    case dm::parameterization::score: return -eps / s;
  }
  return 0.0;
}

double factor_of(dm::loss_reduction r, std::size_t d) {
  return r == dm::loss_reduction::mean ? 1.0 / static_cast<double>(d) : r == dm::loss_reduction::sum ? 1.0 : 0.5;
}

// Checks draw, value and gradient of `loss` on a small batch: x_t, target and value against
// direct formulas, and the gradient against central differences of evaluate.
template <class Loss>
void check_value_and_gradient(const Loss& loss, dm::loss_reduction reduction) {
  using tensor = dm::reference_tensor<double>;
  dm::reference_backend<double> be;
  const std::size_t B = 3, D = 4;
  const tensor x0 = filled<double>({B, D}, 7, 0);
  tensor out = filled<double>({B, D}, 7, 1), grad({B, D});
  dm::loss_batch batch(x0);
  dm::philox_noise noise(8);
  loss.draw(be, x0, noise, batch);
  const double value = loss.evaluate(be, batch, out, grad);

  double direct = 0.0;
  for (std::size_t b = 0; b < B; ++b) {
    const double t = batch.t[b];
    const double a = loss.process().alpha(t), s = loss.process().sigma(t);
    CHECK(batch.alpha[b] == a);
    CHECK(batch.sigma[b] == s);
    double sq = 0.0;
    for (std::size_t j = 0; j < D; ++j) {
      const std::size_t i = b * D + j;
      CHECK_THAT(batch.x_t.data[i], WithinRel(a * x0.data[i] + s * batch.noise.data[i], 1e-15) || WithinAbs(0.0, 1e-15));
      const double y = target_of(Loss::target, a, s, x0.data[i], batch.noise.data[i]);
      CHECK_THAT(batch.target.data[i], WithinRel(y, 1e-15) || WithinAbs(0.0, 1e-15));
      sq += (out.data[i] - y) * (out.data[i] - y);
    }
    CHECK(batch.weight[b] == loss.weight(t));
    direct += batch.weight[b] * factor_of(reduction, D) * sq;
  }
  direct /= static_cast<double>(B);
  CHECK_THAT(value, WithinRel(direct, 1e-13));

  // The loss is quadratic in the output, so central differences are exact up to rounding.
  tensor probe = out;
  const double h = 1e-4;
  for (std::size_t i = 0; i < out.data.size(); ++i) {
    probe.data[i] = out.data[i] + h;
    const double up = loss.evaluate(be, batch, probe);
    probe.data[i] = out.data[i] - h;
    const double down = loss.evaluate(be, batch, probe);
    probe.data[i] = out.data[i];
    const double fd = (up - down) / (2.0 * h);
    INFO("element " << i << ", t = " << batch.t[i / D]);
    CHECK_THAT(grad.data[i], WithinRel(fd, 1e-7) || WithinAbs(fd, 1e-10 * std::abs(value) + 1e-14));
  }
}

}  // namespace

TEST_CASE("denoising_loss value and gradient: every target, weighting and reduction", "[loss][gradient]") {
  const auto process = dm::vp_discrete::linear();
  const auto reduction = GENERATE(dm::loss_reduction::mean, dm::loss_reduction::sum, dm::loss_reduction::half_sum);
  const dm::loss_options opt{.reduction = reduction};
  SECTION("eps") {
    check_value_and_gradient(dm::ddpm_eps_loss{process, dm::unit_weight{}, opt}, reduction);
    check_value_and_gradient(dm::ddpm_eps_loss{process, dm::min_snr_weight{2.0}, opt}, reduction);
  }
  SECTION("x0") {
    check_value_and_gradient(dm::ddpm_loss{process, dm::x0_param{}, dm::unit_weight{}, opt}, reduction);
    check_value_and_gradient(dm::ddpm_loss{process, dm::x0_param{}, dm::min_snr_weight{2.0}, opt}, reduction);
  }
  SECTION("v") {
    check_value_and_gradient(dm::ddpm_loss{process, dm::v_param{}, dm::unit_weight{}, opt}, reduction);
    check_value_and_gradient(dm::ddpm_loss{process, dm::v_param{}, dm::min_snr_weight{2.0}, opt}, reduction);
  }
  SECTION("score, lambda = sigma^2, discrete and continuous time") {
    check_value_and_gradient(dm::ddpm_loss{process, dm::score_param{}, dm::sigma_squared_weight{}, opt}, reduction);
    check_value_and_gradient(dm::denoising_loss{toy_ve{}, dm::uniform_continuous_time{0.01, 2.0}, dm::score_param{},
                                                dm::sigma_squared_weight{}, opt},
                             reduction);
  }
}

TEMPLATE_TEST_CASE("denoising_loss accumulates in double for float and double tensors", "[loss]", float, double) {
  using S = TestType;
  using tensor = dm::reference_tensor<S>;
  dm::reference_backend<S> be;
  const auto process = dm::vp_discrete::linear();
  const dm::ddpm_eps_loss loss{process, dm::min_snr_weight{5.0}};
  const std::size_t B = 64, D = 1000;
  const tensor x0 = filled<S>({B, D}, 3, 0);
  tensor out = filled<S>({B, D}, 3, 1), grad({B, D});
  dm::loss_batch batch(x0);
  dm::philox_noise noise(4);
  loss.draw(be, x0, noise, batch);
  const double value = loss.evaluate(be, batch, out, grad);

  // The same sums in long double from the stored (S-valued) tensors: only the summation order
  // differs, so double accumulation agrees to ~1e-15 even for float tensors.
  long double total = 0.0L;
  for (std::size_t b = 0; b < B; ++b) {
    long double sq = 0.0L;
    for (std::size_t j = 0; j < D; ++j) {
      const long double e = static_cast<long double>(out.data[b * D + j]) - static_cast<long double>(batch.target.data[b * D + j]);
      sq += e * e;
      const double g = 2.0 * batch.weight[b] / static_cast<double>(D * B) *
                       (static_cast<double>(out.data[b * D + j]) - static_cast<double>(batch.target.data[b * D + j]));
      REQUIRE_THAT(static_cast<double>(grad.data[b * D + j]),
                   WithinRel(static_cast<double>(static_cast<S>(g)), 1e-15) || WithinAbs(0.0, 1e-30));
    }
    total += static_cast<long double>(batch.weight[b]) * sq / static_cast<long double>(D);
  }
  CHECK_THAT(value, WithinRel(static_cast<double>(total / static_cast<long double>(B)), 1e-13));
  // The per-sample coefficients went to the backend in S: x_t = S(alpha) x0 + S(sigma) eps.
  for (std::size_t i = 0; i < D; ++i)
    CHECK(batch.x_t.data[i] == static_cast<S>(batch.alpha[0]) * x0.data[i] + static_cast<S>(batch.sigma[0]) * batch.noise.data[i]);
}

TEST_CASE("denoising_loss::perturb replays given times and noise", "[loss]") {
  using tensor = dm::reference_tensor<double>;
  dm::reference_backend<double> be;
  const auto process = dm::vp_discrete::linear();
  const dm::ddpm_loss loss{process, dm::v_param{}};
  const tensor x0 = filled<double>({3, 2}, 5, 0);
  dm::loss_batch batch(x0);
  batch.t = {0.0, 487.0, 999.0};
  batch.noise = filled<double>({3, 2}, 5, 1);
  loss.perturb(be, x0, batch);
  for (std::size_t b = 0; b < 3; ++b) {
    const double a = std::sqrt(process.alpha_bar(batch.t[b])), s = std::sqrt(1.0 - process.alpha_bar(batch.t[b]));
    for (std::size_t j = 0; j < 2; ++j) {
      const std::size_t i = b * 2 + j;
      CHECK_THAT(batch.x_t.data[i], WithinRel(a * x0.data[i] + s * batch.noise.data[i], 1e-14));
      CHECK_THAT(batch.target.data[i], WithinRel(a * batch.noise.data[i] - s * x0.data[i], 1e-14));
    }
    CHECK(batch.weight[b] == 1.0);
  }
}

TEST_CASE("a score target with lambda = sigma^2 is the eps loss of the implied eps", "[loss][ncsn]") {
  // sigma^2 |s - (-eps/sigma)|^2 = |(-sigma s) - eps|^2: NCSN's weighting makes the score loss the
  // eps loss of eps_hat = -sigma s (Song & Ermon 2019, Eq. 6 with lambda = sigma^2).
  using tensor = dm::reference_tensor<double>;
  dm::reference_backend<double> be;
  const dm::uniform_continuous_time times{0.05, 3.0};
  const dm::denoising_loss score_loss{toy_ve{}, times, dm::score_param{}, dm::sigma_squared_weight{}};
  const dm::denoising_loss eps_loss{toy_ve{}, times, dm::eps_param{}, dm::unit_weight{}};
  const std::size_t B = 50, D = 3;
  const tensor x0 = filled<double>({B, D}, 9, 0);
  const tensor score = filled<double>({B, D}, 9, 1);
  tensor eps_hat({B, D});
  dm::loss_batch bs(x0), be_(x0);
  dm::philox_noise n1(10), n2(10);
  score_loss.draw(be, x0, n1, bs);
  eps_loss.draw(be, x0, n2, be_);
  REQUIRE(bs.t == be_.t);
  for (std::size_t i = 0; i < eps_hat.data.size(); ++i) eps_hat.data[i] = -bs.sigma[i / D] * score.data[i];
  const double ls = score_loss.evaluate(be, bs, score);
  const double le = eps_loss.evaluate(be, be_, eps_hat);
  for (std::size_t b = 0; b < B; ++b) CHECK_THAT(bs.sample_loss[b], WithinRel(be_.sample_loss[b], 1e-12));
  CHECK_THAT(ls, WithinRel(le, 1e-12));
}

TEST_CASE("denoising_loss rejects bad input with a message naming the parameter", "[loss][errors]") {
  using tensor = dm::reference_tensor<double>;
  dm::reference_backend<double> be;
  const auto process = dm::vp_discrete::linear();
  const dm::ddpm_eps_loss loss{process};
  const tensor x0({4, 3});
  dm::loss_batch batch(x0);
  dm::philox_noise noise(1);

  SECTION("gamma must be finite and positive") {
    const double gamma = GENERATE(0.0, -1.0, std::numeric_limits<double>::infinity(),
                                  std::numeric_limits<double>::quiet_NaN());
    CHECK_THROWS_AS(dm::min_snr_weight{gamma}, std::invalid_argument);
    CHECK_THROWS_WITH(dm::min_snr_weight{gamma}, Contains("gamma") && Contains("(0, inf)"));
  }
  SECTION("output and grad must have the shape of x0") {
    loss.draw(be, x0, noise, batch);
    tensor good({4, 3}), wrong_d({4, 2}), wrong_b({5, 3});
    CHECK_THROWS_WITH(loss.evaluate(be, batch, wrong_d, good), Contains("output") && Contains("[4, 2]") && Contains("[4, 3]"));
    CHECK_THROWS_WITH(loss.evaluate(be, batch, wrong_b), Contains("output") && Contains("[5, 3]"));
    CHECK_THROWS_WITH(loss.evaluate(be, batch, good, wrong_d), Contains("grad"));
    CHECK_NOTHROW(loss.evaluate(be, batch, good, good));  // grad may alias output
  }
  SECTION("x0 must have the shape the batch was made for") {
    const tensor other({5, 3});
    CHECK_THROWS_WITH(loss.draw(be, other, noise, batch), Contains("x0") && Contains("[5, 3]"));
    CHECK_THROWS_WITH(loss.perturb(be, other, batch), Contains("x0"));
  }
  SECTION("times outside the process") {
    batch.t = {0.0, 1.0, 1000.0, 2.0};
    CHECK_THROWS_WITH(loss.perturb(be, x0, batch), Contains("t") && Contains("1000"));
    batch.t = {0.0, 1.0, 2.5, 2.0};
    CHECK_THROWS_AS(loss.perturb(be, x0, batch), std::invalid_argument);
    batch.t = {0.0};  // resized by the user
    CHECK_THROWS_WITH(loss.perturb(be, x0, batch), Contains("size"));
    CHECK_THROWS_WITH((dm::denoising_loss{process, dm::uniform_discrete_time{0, 1000}}), Contains("t") && Contains("1000"));
  }
  SECTION("time sampling ranges") {
    CHECK_THROWS_WITH(dm::uniform_discrete_time(5, 3), Contains("first"));
    CHECK_THROWS_WITH(dm::uniform_continuous_time(1.0, 0.5), Contains("t_min"));
    CHECK_THROWS_WITH(dm::uniform_continuous_time(-0.1, 1.0), Contains("t_min"));
    CHECK_THROWS_WITH(dm::uniform_continuous_time(0.0, std::numeric_limits<double>::infinity()), Contains("t_max"));
  }
  SECTION("a score target needs sigma(t) > 0") {
    const dm::denoising_loss score_loss{toy_ve{}, dm::uniform_continuous_time{0.1, 1.0}, dm::score_param{}};
    dm::loss_batch b2(x0);
    b2.t = {0.5, 0.0, 0.2, 0.1};
    CHECK_THROWS_WITH(score_loss.perturb(be, x0, b2), Contains("t[1]") && Contains("sigma"));
  }
  SECTION("a time range that reaches a time the loss cannot use fails at construction") {
    // t = 0 comes out of a float uniform once in 2^24 draws: without these checks a run would stop
    // in the middle of training.
    CHECK_THROWS_WITH((dm::denoising_loss{toy_ve{}, dm::uniform_continuous_time{0.0, 1.0}, dm::score_param{}}),
                      Contains("time sampling end t = 0") && Contains("sigma(t) > 0"));
    CHECK_THROWS_WITH((dm::denoising_loss{toy_ve{}, dm::uniform_continuous_time{0.0, 1.0}, dm::x0_param{},
                                          dm::sigma_squared_weight{}}),
                      Contains("weight at the time sampling end t = 0") && Contains("inf") && Contains("[0, inf)"));
    CHECK_NOTHROW(dm::denoising_loss{toy_ve{}, dm::uniform_continuous_time{0.0, 1.0}, dm::x0_param{}});
    CHECK_NOTHROW(dm::denoising_loss{toy_ve{}, dm::uniform_continuous_time{1e-3, 1.0}, dm::x0_param{},
                                     dm::sigma_squared_weight{}});
  }
  SECTION("replayed noise and a replaced target must have the shape of x0") {
    // perturb() replays a caller's noise; a backend need not check shapes, so the loss does.
    loss.draw(be, x0, noise, batch);
    for (const std::vector<std::size_t>& shape : {std::vector<std::size_t>{3, 4}, {4, 2}, {12}}) {
      dm::loss_batch b2(x0);
      b2.t = batch.t;
      b2.noise = tensor(shape);
      CHECK_THROWS_WITH(loss.perturb(be, x0, b2), Contains("batch.noise") && Contains("[4, 3]"));
      dm::loss_batch b3(x0);
      b3.t = batch.t;
      b3.target = tensor(shape);
      CHECK_THROWS_WITH(loss.perturb(be, x0, b3), Contains("batch.target") && Contains("[4, 3]"));
    }
  }
  SECTION("a per-sample vector of the wrong size is named") {
    batch.weight.resize(3);
    CHECK_THROWS_WITH(loss.draw(be, x0, noise, batch), Contains("batch.weight.size() = 3") && Contains("4"));
  }
}
