// SPDX-License-Identifier: MIT
// Sampling the forward process q(x_t | x_0) of any process with marginal coefficients.
#pragma once

#include <type_traits>

#include "../core/errors.hpp"
#include "../core/tensor.hpp"
#include "concepts.hpp"

namespace diffusion {

/// x_t = alpha(t) x_0 + sigma(t) eps, the forward marginal of every process in scope (DDPM:
/// Ho et al. 2020, Eq. 4; SDEs: Song et al. 2021, Eq. 29 and its VE/sub-VP analogues), as one
/// fused be.lincomb. alpha and sigma are computed in double and handed to the backend as scalars.
///
/// \param be   a backend; `Backend` may be deduced const, so a const backend works when its
///             lincomb is const.
/// \param t    the process's own time (an integer timestep for a discrete process).
/// \param x_t  the output, already shaped like x0 (make it once with make_like); it may alias
///             x0 or eps.
/// \throws std::invalid_argument if eps or x_t is not shaped like x0, or if t is invalid for the
///         process.
template <class Backend, has_marginal_coefficients Process, tensor T>
void forward_sample(Backend& be, const Process& p, double t, const T& x0, const T& eps, T& x_t) {
  static_assert(tensor_backend<std::remove_cv_t<Backend>>,
                "diffusion::forward_sample: the first argument must be a backend satisfying "
                "diffusion::tensor_backend (e.g. diffusion::reference_backend<double>)");
  static_assert(std::is_same_v<typename std::remove_cv_t<Backend>::tensor_type, T>,
                "diffusion::forward_sample: x0, eps and x_t must be the backend's tensor_type");
  auto check_shape = [&x0](const T& y, const char* name) {
    if (!same_shape(y, x0)) [[unlikely]]
      detail::throw_shape_mismatch(y, x0, "forward_sample", name, "the shape of x0");
  };
  check_shape(eps, "eps");
  check_shape(x_t, "x_t");
  using S = scalar_of<T>;
  be.lincomb(x_t, static_cast<S>(p.alpha(t)), x0, static_cast<S>(p.sigma(t)), eps);
}

}  // namespace diffusion
