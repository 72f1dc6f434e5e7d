// SPDX-License-Identifier: MIT
// The example network (examples/common/mlp.hpp) and its optimiser (adam.hpp): back-propagation
// against central finite differences, the broadcast and per-sample time paths, configuration
// checks, and Adam's first step and convergence on a quadratic.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/adam.hpp"
#include "common/mlp.hpp"

#include <diffusion/random/philox_noise.hpp>

namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using net_d = examples::mlp<double>;
using matrix = net_d::matrix;

const examples::mlp_config small{.data_dim = 2, .embed_dim = 4, .hidden = 6, .hidden_layers = 2, .max_frequency = 8.0};

matrix normal_matrix(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed) {
  matrix m(rows, cols);
  diffusion::philox_noise(seed).fill_normal(std::span<double>(m.data(), static_cast<std::size_t>(m.size())), 1);
  return m;
}

// L = sum_ij out_ij r_ij, so dL/dout = r.
double weighted_output(net_d& net, const matrix& x, std::span<const double> tau, const matrix& r) {
  matrix out(x.rows(), x.cols());
  net.forward(x, tau, out);
  return (out.array() * r.array()).sum();
}

}  // namespace

TEST_CASE("mlp backward equals central finite differences of the forward pass", "[examples][mlp]") {
  net_d net(small, 3);
  const matrix x = normal_matrix(5, 2, 11);
  const std::vector<double> tau{0.0, 0.13, 0.5, 0.77, 1.0};
  const matrix r = normal_matrix(5, 2, 12);

  matrix out(5, 2);
  net.forward(x, tau, out);
  net.backward(r);
  const std::vector<double> grad(net.gradients().begin(), net.gradients().end());

  // Central differences have error O(h^2); h = 1e-5 leaves ~1e-10 truncation and ~1e-11 rounding.
  const double h = 1e-5;
  auto p = net.parameters();
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double keep = p[i];
    p[i] = keep + h;
    const double up = weighted_output(net, x, tau, r);
    p[i] = keep - h;
    const double down = weighted_output(net, x, tau, r);
    p[i] = keep;
    const double fd = (up - down) / (2 * h);
    INFO("parameter " << i);
    REQUIRE_THAT(grad[i], WithinAbs(fd, 1e-7) || WithinRel(fd, 1e-6));
  }
}

TEST_CASE("mlp backward overwrites the gradient of the previous pass", "[examples][mlp]") {
  net_d net(small, 3);
  const matrix x = normal_matrix(4, 2, 1);
  const std::vector<double> tau(4, 0.25);
  matrix out(4, 2);
  net.forward(x, tau, out);
  net.backward(normal_matrix(4, 2, 2));
  net.forward(x, tau, out);
  const matrix g = normal_matrix(4, 2, 3);
  net.backward(g);
  const std::vector<double> twice(net.gradients().begin(), net.gradients().end());
  net_d fresh(small, 3);
  fresh.forward(x, tau, out);
  fresh.backward(g);
  for (std::size_t i = 0; i < twice.size(); ++i) REQUIRE(twice[i] == fresh.gradients()[i]);
}

TEST_CASE("mlp: one time for the batch gives what per-sample times give", "[examples][mlp]") {
  net_d net(small, 7);
  const matrix x = normal_matrix(6, 2, 4);
  matrix a(6, 2), b(6, 2);
  const double tau = 0.3;
  net.forward(x, tau, a);
  const std::vector<double> taus(6, tau);
  net.forward(x, taus, b);
  for (Eigen::Index i = 0; i < a.size(); ++i) REQUIRE(a.data()[i] == b.data()[i]);

  // ... and the time does reach the output.
  std::vector<double> other = taus;
  other[2] = 0.9;
  net.forward(x, other, b);
  REQUIRE(a.row(2) != b.row(2));
  REQUIRE(a.row(1) == b.row(1));
}

TEST_CASE("mlp initialisation is a function of the seed; parameters have the documented count", "[examples][mlp]") {
  const net_d a(small, 5), b(small, 5), c(small, 6);
  // 6 x (2 + 4 + 1) + 6 x (6 + 1) + 2 x (6 + 1)
  REQUIRE(small.parameter_count() == 42 + 42 + 14);
  REQUIRE(a.parameters().size() == small.parameter_count());
  REQUIRE(std::equal(a.parameters().begin(), a.parameters().end(), b.parameters().begin()));
  REQUIRE_FALSE(std::equal(a.parameters().begin(), a.parameters().end(), c.parameters().begin()));
  // nn.Linear's default: |w| <= 1/sqrt(fan_in); the first layer's fan-in is 6.
  for (std::size_t i = 0; i < 42; ++i) REQUIRE(std::abs(a.parameters()[i]) <= 1.0 / std::sqrt(6.0));
}

TEST_CASE("mlp rejects bad configurations and shapes with messages naming them", "[examples][mlp]") {
  auto bad = small;
  bad.embed_dim = 5;
  REQUIRE_THROWS_WITH(net_d(bad, 1), Contains("embed_dim") && Contains("5") && Contains("even"));
  bad = small;
  bad.hidden_layers = 0;
  REQUIRE_THROWS_WITH(net_d(bad, 1), Contains("hidden_layers"));
  bad = small;
  bad.max_frequency = std::nan("");
  REQUIRE_THROWS_WITH(net_d(bad, 1), Contains("max_frequency"));

  const std::vector<double> params(small.parameter_count() - 1, 0.0);
  REQUIRE_THROWS_WITH(net_d(small, std::span<const double>(params)), Contains("parameters.size()"));

  net_d net(small, 1);
  REQUIRE_THROWS_AS(net.backward(matrix::Zero(3, 2)), std::logic_error);
  matrix out(3, 2), wrong(3, 3);
  const matrix x = normal_matrix(3, 2, 1);
  REQUIRE_THROWS_WITH(net.forward(x, std::vector<double>(2, 0.0), out), Contains("tau.size()"));
  REQUIRE_THROWS_WITH(net.forward(normal_matrix(3, 3, 1), 0.5, wrong), Contains("x.cols()"));
  net.forward(x, 0.5, out);
  REQUIRE_THROWS_WITH(net.backward(matrix::Zero(4, 2)), Contains("grad_out shape"));
}

TEST_CASE("adam's first step moves every parameter by the learning rate against its gradient's sign",
          "[examples][adam]") {
  // With m_hat = g and v_hat = g^2 after one step (bias-corrected), the update is
  // -lr g / (|g| + eps) (Kingma & Ba 2015, Alg. 1).
  std::vector<double> p{1.0, -2.0, 0.5, 3.0};
  const std::vector<double> g{0.3, -4.0, 1e-3, 0.0};
  examples::adam<double> opt(4, {.learning_rate = 0.01});
  opt.step(p, g);
  for (std::size_t i = 0; i < 4; ++i) {
    const double expected = std::vector<double>{1.0, -2.0, 0.5, 3.0}[i] - 0.01 * g[i] / (std::abs(g[i]) + 1e-8);
    REQUIRE_THAT(p[i], WithinAbs(expected, 1e-15));
  }
  REQUIRE(opt.steps() == 1);
}

TEST_CASE("adam minimises a quadratic", "[examples][adam]") {
  // f(p) = sum_i c_i (p_i - a_i)^2 with very different curvatures.
  const std::vector<double> a{1.0, -3.0, 0.25}, c{100.0, 1.0, 0.01};
  std::vector<double> p(3, 0.0), g(3);
  examples::adam<double> opt(3, {.learning_rate = 0.05});
  for (int k = 0; k < 3000; ++k) {
    for (std::size_t i = 0; i < 3; ++i) g[i] = 2 * c[i] * (p[i] - a[i]);
    opt.step(p, g);
  }
  for (std::size_t i = 0; i < 3; ++i) REQUIRE_THAT(p[i], WithinAbs(a[i], 1e-3));
}

TEST_CASE("adam rejects bad options and sizes", "[examples][adam]") {
  REQUIRE_THROWS_WITH(examples::adam<float>(3, {.learning_rate = -1.0}), Contains("learning_rate"));
  REQUIRE_THROWS_WITH(examples::adam<float>(3, {.beta1 = 1.0}), Contains("beta1"));
  examples::adam<float> opt(3);
  std::vector<float> p(3), g(2);
  REQUIRE_THROWS_WITH(opt.step(p, g), Contains("grads.size()"));
}
