// SPDX-License-Identifier: MIT
// Observers and the driver loop: what step_info reports, early stop, every(), observers(), and the
// null observer that lets a sampler skip forming x0_hat.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include <diffusion/backend/reference.hpp>
#include <diffusion/core/observer.hpp>
#include <diffusion/core/time_grid.hpp>
#include <diffusion/model/gaussian_mixture.hpp>
#include <diffusion/process/vp_discrete.hpp>
#include <diffusion/random/philox_noise.hpp>
#include <diffusion/sampler/ddim.hpp>
#include <diffusion/sampler/driver.hpp>

#include "support/closeness.hpp"
#include "support/mixture_fixture.hpp"
#include "support/normal_batch.hpp"

using namespace diffusion;
using tensor_d = reference_tensor<double>;
using info_d = step_info<tensor_d>;

namespace {

using test::normal_batch;

/// The common set-up: DDIM over 10 leading steps of the linear schedule (900, 800, ..., 0),
/// driven by the exact mixture model.
struct ddim_setup {
  vp_discrete process = vp_discrete::linear();
  time_grid grid = leading_grid(1000, 10);
  gaussian_mixture_model<vp_discrete> model{test::golden_mixture(), process};
  reference_backend<double> be;
  tensor_d x_T = normal_batch(16, 2, 3);

  ddim<vp_discrete> sampler(double eta = 0.0) const { return ddim<vp_discrete>(process, grid, {.eta = eta}); }

  /// The first `steps` steps by hand, through the sampler's own step(), with x0_hat formed: the
  /// states after each step and the x0_hat of each step.
  struct trace {
    std::vector<tensor_d> before, after, prediction;
  };
  trace by_hand(const ddim<vp_discrete>& s, std::size_t steps, std::uint64_t seed = 1) {
    trace tr;
    tensor_d x = x_T;
    philox_noise noise(seed);
    auto ws = s.make_workspace(be, x);
    ws.need_prediction = true;
    for (std::size_t i = 0; i < steps; ++i) {
      tr.before.push_back(x);
      s.step(be, model, noise, ws, x, i);
      tr.after.push_back(x);
      tr.prediction.push_back(ws.prediction);
    }
    return tr;
  }
};

/// Records every step_info it sees (copies of the tensors).
struct recorder {
  std::vector<std::size_t> index, count;
  std::vector<double> t, t_next;
  std::vector<tensor_d> x, prediction;
  void operator()(const info_d& s) {
    index.push_back(s.index);
    count.push_back(s.count);
    t.push_back(s.t);
    t_next.push_back(s.t_next);
    x.push_back(s.x);
    prediction.push_back(s.prediction);
  }
};

/// Stops at step `at`; counts its calls.
struct stop_at {
  std::size_t at;
  std::vector<std::size_t> seen{};
  observer_action operator()(const info_d& s) {
    seen.push_back(s.index);
    return s.index == at ? observer_action::stop : observer_action::proceed;
  }
};

using test::max_abs_difference;

}  // namespace

TEST_CASE("observer concept", "[observer]") {
  auto void_obs = [](const info_d&) {};
  auto action_obs = [](const info_d&) { return observer_action::proceed; };
  auto wrong_arg = [](int) {};
  static_assert(observer<null_observer, tensor_d>);
  static_assert(observer<const null_observer&, tensor_d>);
  static_assert(observer<decltype(void_obs), tensor_d>);
  static_assert(observer<decltype(action_obs)&, tensor_d>);
  static_assert(observer<recorder, tensor_d>);
  static_assert(observer<every<recorder>, tensor_d>);
  static_assert(observer<observers<recorder, stop_at>, tensor_d>);
  static_assert(observer<every<std::reference_wrapper<recorder>>, tensor_d>);
  static_assert(!observer<int, tensor_d>);
  static_assert(!observer<decltype(wrong_arg), tensor_d>);
  SUCCEED();
}

TEST_CASE("every() and observers() hold lvalue observers by reference and rvalues by value", "[observer][driver]") {
  // STYLE.md B4 / B10: `observers(progress, every(10, recorder))` with no copies and no std::ref, so
  // the recorder's state is there after the run.
  ddim_setup s;
  const auto sampler = s.sampler();
  recorder a, b, c;
  sample(sampler, s.model, s.be, s.x_T, philox_noise(1), every(3, a));
  CHECK(a.index == std::vector<std::size_t>{0, 3, 6, 9});
  sample(sampler, s.model, s.be, s.x_T, philox_noise(1), observers(b, every(4, c)));
  CHECK(b.index.size() == 10);
  CHECK(c.index == std::vector<std::size_t>{0, 4, 8, 9});
  // Types (checked at run time so that this file compiles either way and the failure is readable).
  auto f = [](const info_d&) {};
  CHECK(std::is_same_v<decltype(every(3, f)), every<decltype(f)&>>);
  CHECK(!std::is_reference_v<decltype(every(3, std::move(f)).inner)>);
  CHECK(std::is_same_v<decltype(observers(a, recorder{})), observers<recorder&, recorder>>);
}

TEST_CASE("step_info reports index, count, t, t_next, the state after the step and x0_hat", "[observer][driver]") {
  ddim_setup s;
  const auto sampler = s.sampler();
  recorder rec;
  const tensor_d x = sample(sampler, s.model, s.be, s.x_T, philox_noise(1), rec);  // an lvalue: not copied
  const auto tr = s.by_hand(sampler, 10);
  REQUIRE(rec.index.size() == 10);
  for (std::size_t i = 0; i < 10; ++i) {
    INFO("step " << i);
    CHECK(rec.index[i] == i);
    CHECK(rec.count[i] == 10);
    CHECK(rec.t[i] == s.grid[i]);
    CHECK(rec.t[i] == 900.0 - 100.0 * static_cast<double>(i));
    CHECK(rec.t_next[i] == (i + 1 < 10 ? s.grid[i + 1] : -1.0));
    // The same operations in the same order: bit-identical.
    CHECK(rec.x[i].data == tr.after[i].data);
    CHECK(rec.prediction[i].data == tr.prediction[i].data);
    // x0_hat of step i is E[x0 | x] at the state before the step, from the exact x0 model (up to
    // the rounding that 1/sqrt(abar) amplifies: 1/0.017 at t = 900).
    gaussian_mixture_model<vp_discrete, x0_param> x0_model(test::golden_mixture(), s.process);
    tensor_d want(s.x_T.shape);
    x0_model(tr.before[i], s.grid[i], want);
    CHECK(max_abs_difference(rec.prediction[i], want) <= 1e-11);
  }
  CHECK(rec.t_next.back() == -1.0);
  // The state the observer saw last is what sample returns; the first step starts from x_T.
  CHECK(x.data == rec.x.back().data);
  CHECK(tr.before[0].data == s.x_T.data);
}

TEST_CASE("an observer returning observer_action::stop ends the run after that step", "[observer][driver]") {
  ddim_setup s;
  const double eta = GENERATE(0.0, 0.7);  // deterministic, and stochastic (noise draws must line up)
  INFO("eta = " << eta);
  const auto sampler = s.sampler(eta);
  stop_at obs{3};
  const tensor_d x = sample(sampler, s.model, s.be, s.x_T, philox_noise(42), obs);
  CHECK(obs.seen == std::vector<std::size_t>{0, 1, 2, 3});
  const auto tr = s.by_hand(sampler, 4, 42);
  CHECK(x.data == tr.after[3].data);  // the state after 4 steps, not more
  const tensor_d full = sample(sampler, s.model, s.be, s.x_T, philox_noise(42), stop_at{99});
  CHECK(max_abs_difference(full, x) > 0.1);  // the remaining 6 steps would have moved it

  SECTION("stop at the last step and proceed everywhere run all steps") {
    stop_at last{9}, never{99};
    const tensor_d a = sample(sampler, s.model, s.be, s.x_T, philox_noise(42), last);
    const tensor_d b = sample(sampler, s.model, s.be, s.x_T, philox_noise(42), never);
    CHECK(last.seen.size() == 10);
    CHECK(never.seen.size() == 10);
    CHECK(a.data == b.data);
  }
  SECTION("stop at the first step") {
    stop_at first{0};
    const tensor_d a = sample(sampler, s.model, s.be, s.x_T, philox_noise(42), first);
    CHECK(first.seen == std::vector<std::size_t>{0});
    CHECK(a.data == s.by_hand(sampler, 1, 42).after[0].data);
  }
}

TEST_CASE("every(n, f) calls f at multiples of n and at the last step", "[observer][driver]") {
  ddim_setup s;
  const auto sampler = s.sampler();
  auto indices_for = [&](std::size_t n) {
    std::vector<std::size_t> seen;
    sample(sampler, s.model, s.be, s.x_T, philox_noise(1), every(n, [&](const info_d& i) { seen.push_back(i.index); }));
    return seen;
  };
  CHECK(indices_for(3) == std::vector<std::size_t>{0, 3, 6, 9});
  CHECK(indices_for(4) == std::vector<std::size_t>{0, 4, 8, 9});
  CHECK(indices_for(1) == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(indices_for(10) == std::vector<std::size_t>{0, 9});
  CHECK(indices_for(25) == std::vector<std::size_t>{0, 9});

  SECTION("the inner observer sees the same step_info as a direct one") {
    recorder direct, inner;
    sample(sampler, s.model, s.be, s.x_T, philox_noise(1), direct);
    sample(sampler, s.model, s.be, s.x_T, philox_noise(1), every(3, std::ref(inner)));
    REQUIRE(inner.index.size() == 4);
    for (std::size_t k = 0; k < 4; ++k) {
      const std::size_t i = inner.index[k];
      CHECK(inner.t[k] == direct.t[i]);
      CHECK(inner.t_next[k] == direct.t_next[i]);
      CHECK(inner.count[k] == 10);
      CHECK(inner.x[k].data == direct.x[i].data);
      CHECK(inner.prediction[k].data == direct.prediction[i].data);
    }
  }
  SECTION("a stop from the inner observer ends the run") {
    stop_at inner{6};
    const tensor_d x = sample(sampler, s.model, s.be, s.x_T, philox_noise(1), every(3, std::ref(inner)));
    CHECK(inner.seen == std::vector<std::size_t>{0, 3, 6});
    CHECK(x.data == s.by_hand(sampler, 7).after[6].data);
    // A stop request on a step every() skips is never made: inner is not called there.
    stop_at skipped{4};
    sample(sampler, s.model, s.be, s.x_T, philox_noise(1), every(3, std::ref(skipped)));
    CHECK(skipped.seen == std::vector<std::size_t>{0, 3, 6, 9});
  }
}

TEST_CASE("observers(a, b) calls both at every step and stops when either asks", "[observer][driver]") {
  ddim_setup s;
  const auto sampler = s.sampler();
  SECTION("both are called, in order, at every step") {
    std::vector<int> calls;
    sample(sampler, s.model, s.be, s.x_T, philox_noise(1),
           observers([&](const info_d&) { calls.push_back(1); }, [&](const info_d&) { calls.push_back(2); }));
    REQUIRE(calls.size() == 20);
    for (std::size_t k = 0; k < 20; ++k) CHECK(calls[k] == (k % 2 == 0 ? 1 : 2));
  }
  SECTION("the first asks to stop: the second still sees that step") {
    stop_at a{2};
    recorder b;
    const tensor_d x =
        sample(sampler, s.model, s.be, s.x_T, philox_noise(1), observers(std::ref(a), std::ref(b)));
    CHECK(a.seen == std::vector<std::size_t>{0, 1, 2});
    CHECK(b.index == std::vector<std::size_t>{0, 1, 2});
    CHECK(x.data == s.by_hand(sampler, 3).after[2].data);
  }
  SECTION("the second asks to stop") {
    recorder a;
    stop_at b{5};
    sample(sampler, s.model, s.be, s.x_T, philox_noise(1), observers(std::ref(a), std::ref(b)));
    CHECK(a.index == std::vector<std::size_t>{0, 1, 2, 3, 4, 5});
    CHECK(b.seen == std::vector<std::size_t>{0, 1, 2, 3, 4, 5});
  }
  SECTION("composed with every()") {
    stop_at a{99};
    std::vector<std::size_t> sparse;
    sample(sampler, s.model, s.be, s.x_T, philox_noise(1),
           observers(std::ref(a), every(4, [&](const info_d& i) { sparse.push_back(i.index); })));
    CHECK(a.seen.size() == 10);
    CHECK(sparse == std::vector<std::size_t>{0, 4, 8, 9});
  }
}

TEST_CASE("observers are taken by forwarding reference", "[observer][driver]") {
  ddim_setup s;
  const auto sampler = s.sampler();
  SECTION("an lvalue observer keeps its state after the run") {
    recorder rec;
    sample(sampler, s.model, s.be, s.x_T, philox_noise(1), rec);
    CHECK(rec.index.size() == 10);
  }
  SECTION("a move-only observer can be passed as an rvalue") {
    struct move_only {
      std::unique_ptr<int> token;
      int* calls;
      void operator()(const info_d&) { ++*calls; }
    };
    int calls = 0;
    sample(sampler, s.model, s.be, s.x_T, philox_noise(1), move_only{std::make_unique<int>(0), &calls});
    CHECK(calls == 10);
  }
}

namespace {

// A sampler that records whether the driver asked for x0_hat, to observe the null-observer contract
// without relying on any particular sampler's arithmetic.
struct flag_workspace {
  tensor_d prediction;
  bool need_prediction = true;
};
struct flag_sampler {
  std::vector<bool>* seen;
  std::size_t num_steps() const { return 3; }
  double time(std::size_t i) const { return 3.0 - static_cast<double>(i); }
  double time_next(std::size_t i) const { return 2.0 - static_cast<double>(i); }
  flag_workspace make_workspace(reference_backend<double>&, const tensor_d& x) const { return {x, true}; }
  template <class Model, class Noise>
  void step(reference_backend<double>&, Model&, Noise&, flag_workspace& ws, tensor_d& x, std::size_t) const {
    seen->push_back(ws.need_prediction);
    x.data[0] += 1.0;
  }
};
// A workspace without need_prediction is fine too.
struct plain_workspace {
  tensor_d prediction;
};
struct plain_sampler {
  std::size_t num_steps() const { return 2; }
  double time(std::size_t i) const { return 2.0 - static_cast<double>(i); }
  double time_next(std::size_t i) const { return 1.0 - static_cast<double>(i); }
  plain_workspace make_workspace(reference_backend<double>&, const tensor_d& x) const { return {x}; }
  template <class Model, class Noise>
  void step(reference_backend<double>&, Model&, Noise&, plain_workspace&, tensor_d& x, std::size_t) const {
    x.data[0] *= 2.0;
  }
};
struct no_model {};

}  // namespace

TEST_CASE("without an observer the driver tells the sampler not to form x0_hat", "[observer][driver]") {
  reference_backend<double> be;
  const tensor_d x({1, 1}, {0.0});
  std::vector<bool> seen;
  const flag_sampler fs{&seen};
  static_assert(sampler_for<flag_sampler, reference_backend<double>>);

  CHECK(sample(fs, no_model{}, be, x, philox_noise(1)).data[0] == 3.0);
  CHECK(seen == std::vector<bool>{false, false, false});
  seen.clear();
  sample(fs, no_model{}, be, x, philox_noise(1), null_observer{});
  CHECK(seen == std::vector<bool>{false, false, false});
  seen.clear();
  sample(fs, no_model{}, be, x, philox_noise(1), [](const info_d&) {});
  CHECK(seen == std::vector<bool>{true, true, true});
  seen.clear();
  sample(fs, no_model{}, be, x, philox_noise(1), every(100, [](const info_d&) {}));
  CHECK(seen == std::vector<bool>{true, true, true});

  const plain_sampler ps;
  CHECK(sample(ps, no_model{}, be, tensor_d({1, 1}, {3.0}), philox_noise(1)).data[0] == 12.0);
  std::size_t calls = 0;
  sample(ps, no_model{}, be, tensor_d({1, 1}, {3.0}), philox_noise(1), [&](const info_d&) { ++calls; });
  CHECK(calls == 2);
}

TEST_CASE("the fused step (no observer) agrees with the observed step", "[observer][driver]") {
  // With null_observer DDIM skips x0_hat and folds it into one lincomb; the results must agree.
  ddim_setup s;
  const double eta = GENERATE(0.0, 1.0);
  INFO("eta = " << eta);
  const auto sampler = s.sampler(eta);
  const tensor_d fused = sample(sampler, s.model, s.be, s.x_T, philox_noise(8));
  const tensor_d explicit_null = sample(sampler, s.model, s.be, s.x_T, philox_noise(8), null_observer{});
  const tensor_d observed = sample(sampler, s.model, s.be, s.x_T, philox_noise(8), [](const info_d&) {});
  CHECK(fused.data == explicit_null.data);
  double scale = 1.0;
  for (double v : observed.data) scale = std::max(scale, std::abs(v));
  CHECK(max_abs_difference(fused, observed) <= 1e-12 * scale);
}
