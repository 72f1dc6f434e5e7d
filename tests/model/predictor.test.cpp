// SPDX-License-Identifier: MIT
// The predictor interface: make_predictor / function_predictor wrap both callable forms, the
// predictor concept, and predict_as, the one place where model outputs are shape-checked and
// converted between eps, x0, score and v.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <diffusion/backend/reference.hpp>
#include <diffusion/model/gaussian_mixture.hpp>
#include <diffusion/model/predictor.hpp>
#include <diffusion/process/vp_discrete.hpp>
#include <diffusion/random/philox_noise.hpp>

#include "support/mixture_fixture.hpp"
#include "support/normal_batch.hpp"

using namespace diffusion;
using Catch::Matchers::Contains;
using tensor_d = reference_tensor<double>;
using tensor_f = reference_tensor<float>;

namespace {

/// A VE-like process x_t = x0 + t eps (alpha = 1, sigma = t), so coefficients are easy to write by hand.
struct ve_identity {
  double alpha(double) const { return 1.0; }
  double sigma(double t) const { return t; }
};

/// A VP-like process with alpha = cos(t), sigma = sin(t).
struct vp_trig {
  double alpha(double t) const { return std::cos(t); }
  double sigma(double t) const { return std::sin(t); }
};

using test::normal_batch;

/// max_i |a_i - b_i| / max(1, max_i |b_i|).
double scaled_max_error(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double err = 0.0, scale = 1.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return err / scale;
}

// A model without a declared parameterization, one with a wrong one, one that cannot be called.
struct undeclared {
  void operator()(const tensor_d&, double, tensor_d&) {}
};
struct wrong_tag {
  using parameterization = int;
  void operator()(const tensor_d&, double, tensor_d&) {}
};
struct not_callable {
  using parameterization = eps_param;
};

}  // namespace

TEST_CASE("predictor concept", "[predictor]") {
  auto in_place = [](const tensor_d& x, double, tensor_d& out) { out = x; };
  auto returning = [](const tensor_d& x, double) { return x; };
  static_assert(predictor<function_predictor<eps_param, decltype(in_place)>, tensor_d>);
  static_assert(predictor<decltype(make_predictor<v_param>(in_place)), tensor_d>);
  static_assert(predictor<decltype(make_predictor<x0_param>(returning)), tensor_d>);
  static_assert(predictor<gaussian_mixture_model<vp_discrete, eps_param>, tensor_d>);
  static_assert(predictor<gaussian_mixture_model<vp_discrete, x0_param>, tensor_f>);
  static_assert(predictor<gaussian_mixture_model<ve_identity, score_param>, tensor_d>);
  static_assert(predictor<gaussian_mixture_model<vp_trig, v_param>&, tensor_d>);
  static_assert(!predictor<decltype(in_place), tensor_d>, "a bare callable declares no parameterization");
  static_assert(!predictor<undeclared, tensor_d>);
  static_assert(!predictor<wrong_tag, tensor_d>);
  static_assert(!predictor<not_callable, tensor_d>);
  static_assert(!predictor<function_predictor<eps_param, decltype(in_place)>, int>, "int is not a tensor");
  static_assert(std::same_as<decltype(make_predictor<score_param>(in_place))::parameterization, score_param>);
  SUCCEED();
}

TEST_CASE("make_predictor wraps f(x, t, out) and T f(x, t) alike", "[predictor]") {
  const tensor_d x = normal_batch(5, 3, 1);
  const double t = 0.25;
  // out = 2 t x + 1, a model that reads both arguments.
  auto in_place = [](const tensor_d& in, double time, tensor_d& out) {
    for (std::size_t i = 0; i < in.data.size(); ++i) out.data[i] = 2.0 * time * in.data[i] + 1.0;
  };
  auto returning = [&](const tensor_d& in, double time) {
    tensor_d out(in.shape);
    in_place(in, time, out);
    return out;
  };
  auto p_in_place = make_predictor<eps_param>(in_place);
  auto p_returning = make_predictor<eps_param>(returning);
  tensor_d a(x.shape), b(x.shape);
  p_in_place(x, t, a);
  p_returning(x, t, b);
  CHECK(a.shape == x.shape);
  CHECK(b.shape == x.shape);
  CHECK(a.data == b.data);
  CHECK(a.data[4] == 2.0 * t * x.data[4] + 1.0);

  SECTION("a stateful callable is called in place, not copied per call") {
    int calls = 0;
    auto counting = make_predictor<x0_param>([calls](const tensor_d& in, double, tensor_d& out) mutable {
      out = in;
      out.data[0] = ++calls;
    });
    tensor_d out(x.shape);
    counting(x, 0.0, out);
    counting(x, 0.0, out);
    CHECK(out.data[0] == 2.0);
    CHECK(calls == 0);  // the predictor holds its own copy
  }
}

TEST_CASE("function_predictor rejects a returned tensor of the wrong shape, naming both shapes", "[predictor]") {
  auto wrong = make_predictor<eps_param>([](const tensor_d&, double) { return tensor_d({3, 2}); });
  const tensor_d x({4, 2});
  tensor_d out({4, 2});
  try {
    wrong(x, 0.0, out);
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    CHECK_THAT(std::string(e.what()), Contains("function_predictor") && Contains("[3, 2]") && Contains("[4, 2]"));
  }
  CHECK(out.shape == std::vector<std::size_t>{4, 2});  // out is left alone
}

TEST_CASE("predict_as rejects a model that changes the shape of out, naming both shapes", "[predictor]") {
  const vp_discrete process = vp_discrete::linear();
  reference_backend<double> be;
  const tensor_d x({4, 2});
  tensor_d out({4, 2});
  auto resizing = make_predictor<eps_param>([](const tensor_d&, double, tensor_d& o) { o = tensor_d({4, 3}); });
  try {
    predict_as<eps_param>(be, resizing, process, x, 10.0, out);
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    CHECK_THAT(std::string(e.what()), Contains("model") && Contains("[4, 3]") && Contains("[4, 2]"));
  }
  // The returning form is checked before out is touched.
  auto returning = make_predictor<x0_param>([](const tensor_d&, double) { return tensor_d({2, 4}); });
  tensor_d out2({4, 2});
  CHECK_THROWS_WITH(predict_as<eps_param>(be, returning, process, x, 10.0, out2),
                    Contains("[2, 4]") && Contains("[4, 2]"));
}

TEST_CASE("predict_as converts with the process's alpha(t) and sigma(t)", "[predictor]") {
  reference_backend<double> be;
  const tensor_d x = normal_batch(8, 2, 3, 0, 2.0);
  tensor_d out(x.shape);
  const double c = 0.75;  // a model that always predicts x0 = c
  auto constant_x0 = make_predictor<x0_param>([c](const tensor_d& in, double, tensor_d& o) {
    std::fill(o.data.begin(), o.data.end(), c);
    (void)in;
  });
  SECTION("VE: eps = (x - c) / t, score = -(x - c) / t^2, v = eps - t c") {
    const ve_identity process;
    const double t = 2.5;
    predict_as<eps_param>(be, constant_x0, process, x, t, out);
    for (std::size_t i = 0; i < x.data.size(); ++i)
      CHECK_THAT(out.data[i], Catch::Matchers::WithinRel((x.data[i] - c) / t, 1e-14));
    predict_as<score_param>(be, constant_x0, process, x, t, out);
    for (std::size_t i = 0; i < x.data.size(); ++i)
      CHECK_THAT(out.data[i], Catch::Matchers::WithinRel(-(x.data[i] - c) / (t * t), 1e-14));
    predict_as<v_param>(be, constant_x0, process, x, t, out);
    for (std::size_t i = 0; i < x.data.size(); ++i)
      CHECK_THAT(out.data[i], Catch::Matchers::WithinRel((x.data[i] - c) / t - t * c, 1e-13));
  }
  SECTION("VP: eps = (x - cos(t) c) / sin(t)") {
    const vp_trig process;
    const double t = 0.6;
    predict_as<eps_param>(be, constant_x0, process, x, t, out);
    for (std::size_t i = 0; i < x.data.size(); ++i)
      CHECK_THAT(out.data[i], Catch::Matchers::WithinRel((x.data[i] - std::cos(t) * c) / std::sin(t), 1e-14));
  }
  SECTION("no conversion when the model already predicts what is asked") {
    const vp_trig process;
    predict_as<x0_param>(be, constant_x0, process, x, 0.6, out);
    for (double v : out.data) CHECK(v == c);
  }
  SECTION("an undefined conversion throws std::domain_error") {
    const ve_identity process;
    CHECK_THROWS_AS(predict_as<eps_param>(be, constant_x0, process, x, 0.0, out), std::domain_error);
  }
}

namespace {
using all_params = std::tuple<eps_param, x0_param, score_param, v_param>;
}

TEMPLATE_LIST_TEST_CASE("predict_as gives the same prediction from eps, x0, score and v models", "[predictor]",
                        all_params) {
  // Each exact mixture model computes its own parameterization directly; predict_as<Want> applied to
  // any of them must agree with the model that predicts Want directly.
  using want = TestType;
  const vp_discrete process = vp_discrete::linear();
  reference_backend<double> be;
  gaussian_mixture_model<vp_discrete, want> direct(test::golden_mixture(), process);
  gaussian_mixture_model<vp_discrete, eps_param> eps_model(test::golden_mixture(), process);
  gaussian_mixture_model<vp_discrete, x0_param> x0_model(test::golden_mixture(), process);
  gaussian_mixture_model<vp_discrete, score_param> score_model(test::golden_mixture(), process);
  gaussian_mixture_model<vp_discrete, v_param> v_model(test::golden_mixture(), process);

  for (const double t : {0.0, 10.0, 100.0, 250.0, 500.0, 750.0, 900.0, 999.0}) {
    // x drawn from the marginal at t (typical points), plus points far from the data (x = 3 z).
    tensor_d x0({64, 2});
    philox_noise data_noise(5);
    test::golden_mixture().sample(data_noise, x0);
    const tensor_d eps = normal_batch(64, 2, 6);
    tensor_d x(x0.shape);
    be.lincomb(x, process.alpha(t), x0, process.sigma(t), eps);
    const tensor_d far = normal_batch(8, 2, 7, 0, 3.0);
    x.shape[0] += 8;
    x.data.insert(x.data.end(), far.data.begin(), far.data.end());

    tensor_d want_out(x.shape), got(x.shape);
    direct(x, t, want_out);
    auto check = [&](auto& model, const char* from) {
      INFO("t = " << t << ", from " << from << " to " << name(want::kind));
      predict_as<want>(be, model, process, x, t, got);
      const double err = scaled_max_error(got.data, want_out.data);
      INFO("scaled error " << std::scientific << err);
      // ~1e-12: going from eps or x0 to score divides by sigma (0.01 at t = 0), and Tweedie's
      // x0 = (x + sigma^2 score)/alpha divides by alpha (0.0064 at t = 999); both amplify rounding
      // by ~150 at the ends of the schedule (measured: at most 9.3e-13 here).
      CHECK(err <= 2e-12);
    };
    check(eps_model, "eps");
    check(x0_model, "x0");
    check(score_model, "score");
    check(v_model, "v");
  }
}

TEST_CASE("predict_as works in float", "[predictor]") {
  const vp_discrete process = vp_discrete::linear();
  reference_backend<float> bef;
  reference_backend<double> bed;
  gaussian_mixture_model<vp_discrete, v_param> v_model(test::golden_mixture(), process);
  gaussian_mixture_model<vp_discrete, eps_param> eps_model(test::golden_mixture(), process);
  const tensor_d xd = normal_batch(32, 2, 9);
  tensor_f xf({32, 2});
  for (std::size_t i = 0; i < xd.data.size(); ++i) xf.data[i] = static_cast<float>(xd.data[i]);
  tensor_f got(xf.shape);
  tensor_d want(xd.shape);
  predict_as<eps_param>(bef, v_model, process, xf, 500.0, got);
  predict_as<eps_param>(bed, eps_model, process, xd, 500.0, want);
  for (std::size_t i = 0; i < want.data.size(); ++i)
    CHECK_THAT(static_cast<double>(got.data[i]), Catch::Matchers::WithinAbs(want.data[i], 1e-5));
}
