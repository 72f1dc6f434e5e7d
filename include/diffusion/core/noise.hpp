// SPDX-License-Identifier: MIT
// The noise-source concept. Noise is injected per call and never global (DESIGN.md, Noise).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

#include "tensor.hpp"

namespace diffusion {

/// A source of noise draws. Each call is one *draw*: it fills `out` (all elements of one tensor,
/// `batch` samples of out.size()/batch contiguous elements each) and advances to the next draw.
///
/// Semantic requirements: fill_normal writes standard normal N(0, 1) values, fill_uniform writes
/// values in [0, 1). A source that cannot serve a request (a replay source that ran out, or was
/// handed an array of the wrong size) throws instead of inventing values.
template <class N, class Scalar>
concept noise_source = requires(N& n, std::span<Scalar> out, std::size_t batch) {
  n.fill_normal(out, batch);
  n.fill_uniform(out, batch);
};

namespace detail {

/// A noise source whose draws can be generated in pieces: draw_index() is the index of the next
/// draw, fill_normal_range writes out[begin, end) of a draw as a pure function of the element
/// index, so any split across threads gives the same bits, and next_draw() advances to the next
/// draw (a backend calls it once the draw was served, so that a request the source refuses
/// consumes no draw). diffusion::philox_noise is one.
template <class N, class Scalar>
concept range_normal_source = requires(N& n, const N& cn, std::span<Scalar> out, std::size_t i, std::uint64_t k) {
  { cn.draw_index() } -> std::convertible_to<std::uint64_t>;
  { n.next_draw() } -> std::convertible_to<std::uint64_t>;
  cn.fill_normal_range(out, i, k, i, i);
};

/// A noise source that can also write any block of elements of a draw into a separate buffer, so
/// that a backend can generate noise inside an update loop (diffusion::philox_noise is one).
template <class N, class Scalar>
concept block_normal_source =
    range_normal_source<N, Scalar> && requires(const N& cn, std::span<Scalar> out, std::size_t i, std::uint64_t k) {
      cn.write_normal_range(i, i, k, i, out);
    };

}  // namespace detail

/// Fills tensor `z` with one draw of standard normal noise from `noise`. A backend that can
/// generate a source's noise on its own device (fused, threaded) provides
/// `be.fill_normal(z, noise)`, and it is used; otherwise the source writes the elements.
template <class Backend, class Noise, class T>
void draw_normal(Backend& be, Noise& noise, T& z) {
  if constexpr (requires { be.fill_normal(z, noise); }) {
    be.fill_normal(z, noise);
  } else {
    noise.fill_normal(elements(z), batch_size(z));
  }
}

/// y = a x + b e + c z with z one fresh draw of standard normal noise from `noise`: the update of a
/// stochastic sampler step. A backend that can generate the draw inside the update
/// (`be.lincomb_noise(y, a, x, b, e, c, noise)`, e.g. the Eigen backend with philox_noise) does it in
/// one pass and never stores z; otherwise z is drawn into `scratch` and combined. Both routes give
/// the same bits and consume exactly one draw. y may alias x or e (not scratch).
template <class Backend, class Noise, class T, class S>
void lincomb_with_noise(Backend& be, Noise& noise, T& scratch, T& y, S a, const T& x, S b, const T& e, S c) {
  if constexpr (requires { be.lincomb_noise(y, a, x, b, e, c, noise); }) {
    be.lincomb_noise(y, a, x, b, e, c, noise);
  } else {
    draw_normal(be, noise, scratch);
    be.lincomb(y, a, x, b, e, c, scratch);
  }
}

/// Fills tensor `u` with one draw of U[0, 1) values from `noise`.
template <class Noise, class T>
void draw_uniform(Noise& noise, T& u) {
  noise.fill_uniform(elements(u), batch_size(u));
}

}  // namespace diffusion
