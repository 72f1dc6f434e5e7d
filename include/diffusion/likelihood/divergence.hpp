// SPDX-License-Identifier: MIT
// The divergence of the score, tr(grad_x score(x, t)) = tr(Hessian of log p_t(x)), that the
// probability-flow likelihood integrates (Song et al. 2021, Sec. 4.3 and App. D.2): exact when the
// model provides it, otherwise the Skilling-Hutchinson estimator E_v[v^T J v] with the
// Jacobian-vector product J v taken by central finite differences of the model, which is a black box
// here (score_sde differentiates its network with autograd instead).
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <limits>
#include <span>

#include "../core/errors.hpp"
#include "../core/noise.hpp"
#include "../core/tensor.hpp"

namespace diffusion {

/// A model that knows the exact divergence of its score: m.score_divergence(x, t, out) writes
/// tr(Hessian of log p_t) at every batch sample of x into out (one entry per sample), whatever the
/// model's parameterization. gaussian_mixture_model provides it.
template <class M, class T>
concept has_score_divergence = tensor<T> && requires(M& m, const T& x, double t, std::span<double> out) {
  m.score_divergence(x, t, out);
};

/// Rademacher probes: every element is -1 or +1 with probability 1/2 (Hutchinson 1989), from one
/// uniform draw of the noise source (u < 1/2 gives -1). score_sde's default; for these the
/// estimator's variance is the smallest among i.i.d. unit-variance probes (Hutchinson 1989, Prop. 1).
struct rademacher_probe {
  template <class Backend, class Noise, tensor T>
  static void draw(Backend&, Noise& noise, T& v) {
    using S = scalar_of<T>;
    draw_uniform(noise, v);
    for (S& e : elements(v)) e = e < S(0.5) ? S(-1) : S(1);
  }
};

/// Gaussian probes v ~ N(0, I) from one normal draw of the noise source (Skilling 1989).
struct gaussian_probe {
  template <class Backend, class Noise, tensor T>
  static void draw(Backend& be, Noise& noise, T& v) {
    draw_normal(be, noise, v);
  }
};

/// The Skilling-Hutchinson trace estimator tr(J) = E_v[v^T J v] for probes with E[v v^T] = I
/// (Skilling 1989; Hutchinson 1989; Grathwohl et al. 2019, Eq. 7), used as Song et al. 2021,
/// App. D.2 does: one probe per sample, drawn once per solve and kept fixed over the ODE.
///
/// J v of the score is taken by central differences, (score(x + h v) - score(x - h v)) / (2h), at
/// three model calls per evaluation of the ODE (the score itself and the two shifted points).
///
/// The step: h = relative_step * sigma^(2/3) * max(sigma, |x|_rms)^(1/3), with sigma = sigma(t) and
/// |x|_rms the root mean square of the state's elements. p_t is the data smoothed by
/// N(0, sigma^2 I), so sigma is the smallest length on which the score can vary: the relative
/// truncation error is O((h/sigma)^2). The relative rounding error is O(eps m / h) with
/// m = max(sigma, |x|): x + h v is rounded to eps |x|, and the score itself to eps |score|
/// ~ eps sigma |J v|. The sum is smallest at h ~ eps^(1/3) sigma^(2/3) m^(1/3), hence the default
/// relative_step = eps^(1/3) (~6e-6 in double, ~5e-3 in float) and the error
/// O((eps m / sigma)^(2/3)); a plain h ~ sigma would leave eps |x| / h, e.g. 3% in float for
/// |x| = 2 at VP's sigma(1e-5) = 1e-3.
template <class Probe = rademacher_probe>
struct hutchinson_estimator {
  using probe_type = Probe;
  /// h / (sigma^(2/3) max(sigma, |x|_rms)^(1/3)); 0 means the cube root of the machine epsilon of
  /// the tensor's scalar type.
  double relative_step = 0.0;

  void validate(const char* where) const {
    require(std::isfinite(relative_step) && relative_step >= 0.0, where, "relative_step", relative_step,
            "[0, inf), finite (0: the cube root of the machine epsilon)");
  }

  /// The relative step in use for scalar type S.
  template <std::floating_point S>
  double step_for() const {
    return relative_step > 0.0 ? relative_step : std::cbrt(static_cast<double>(std::numeric_limits<S>::epsilon()));
  }
};

}  // namespace diffusion
