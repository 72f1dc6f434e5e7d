// SPDX-License-Identifier: MIT
// Per-step observers: progress bars, trajectory recording and previews live here, not in samplers.
#pragma once

#include <concepts>
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

namespace diffusion {

/// What an observer may return to steer the driver loop.
enum class observer_action { proceed, stop };

/// What an observer sees after step `index` of `count`: the state has moved from time `t` to
/// `t_next`; `x` is the state after the step and `prediction` the sampler's current estimate
/// of the clean sample x0_hat (diffusers' `pred_original_sample`).
template <class Tensor>
struct step_info {
  std::size_t index;
  std::size_t count;
  double t;
  double t_next;
  const Tensor& x;
  const Tensor& prediction;
};

/// The default observer. The driver skips it at compile time, so it costs nothing.
struct null_observer {};

/// An observer is called as obs(step_info) and returns void or observer_action.
template <class O, class Tensor>
concept observer = std::same_as<std::remove_cvref_t<O>, null_observer> ||
                   std::invocable<O&, const step_info<Tensor>&>;

namespace detail {

/// Calls `obs` and reports whether sampling should stop.
template <class Tensor, class O>
bool notify(O& obs, const step_info<Tensor>& info) {
  if constexpr (std::same_as<std::remove_cvref_t<O>, null_observer>) {
    return false;
  } else {
    using result = std::invoke_result_t<O&, const step_info<Tensor>&>;
    if constexpr (std::same_as<result, observer_action>) {
      return obs(info) == observer_action::stop;
    } else {
      static_assert(std::is_void_v<result>,
                    "an observer must return void or diffusion::observer_action");
      obs(info);
      return false;
    }
  }
}

}  // namespace detail

/// Calls `inner` on every `n`-th step (index % n == 0) and on the last step. An lvalue `inner` is
/// held by reference, so its state is visible after the run without std::ref; an rvalue is moved in.
template <class Inner>
struct every {
  std::size_t n;
  Inner inner;
  // A constructor, not aggregate deduction (which clang 14 lacks), with the guide below.
  every(std::size_t n_, Inner&& inner_) : n(n_), inner(std::forward<Inner>(inner_)) {}
  template <class Tensor>
  observer_action operator()(const step_info<Tensor>& info) {
    if (n != 0 && info.index % n != 0 && info.index + 1 != info.count) return observer_action::proceed;
    return detail::notify(inner, info) ? observer_action::stop : observer_action::proceed;
  }
};
template <class Inner>
every(std::size_t, Inner&&) -> every<Inner>;

/// Fans one step out to several observers, in order; stops when any of them asks to (all of them
/// still see that step). Lvalue observers are held by reference, rvalues are moved in.
template <class... Os>
struct observers {
  std::tuple<Os...> all;
  explicit observers(Os... os) : all(std::forward<Os>(os)...) {}
  template <class Tensor>
  observer_action operator()(const step_info<Tensor>& info) {
    // A comma fold runs left to right (the operands of a `|` fold are unsequenced), and every
    // observer sees the step even after an earlier one asked to stop.
    bool stop = false;
    std::apply([&](auto&... o) { ((stop = detail::notify(o, info) || stop), ...); }, all);
    return stop ? observer_action::stop : observer_action::proceed;
  }
};
template <class... Os>
observers(Os&&...) -> observers<Os...>;

}  // namespace diffusion
