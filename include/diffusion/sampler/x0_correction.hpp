// SPDX-License-Identifier: MIT
// Optional corrections of the predicted clean sample x0_hat used by the DDPM and DDIM samplers:
// clipping to a range, and dynamic thresholding (Saharia et al. 2022, "Photorealistic
// Text-to-Image Diffusion Models with Deep Language Understanding", Sec. 2.3).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "../core/errors.hpp"
#include "../core/tensor.hpp"

namespace diffusion {

/// What to do to x0_hat before it enters the update. `none` leaves it alone.
struct x0_correction {
  enum class kind { none, clip, dynamic_threshold };
  kind mode = kind::none;
  /// clip: x0_hat is clamped to [-clip_range, clip_range] (diffusers `clip_sample_range`).
  double clip_range = 1.0;
  /// dynamic_threshold: per sample s = quantile(|x0_hat|, ratio), s = clamp(s, 1, max_value),
  /// x0_hat = clamp(x0_hat, -s, s) / s (diffusers `dynamic_thresholding_ratio`, `sample_max_value`).
  double ratio = 0.995;
  double max_value = 1.0;

  static x0_correction clip(double range = 1.0) { return {kind::clip, range, 0.995, 1.0}; }
  static x0_correction dynamic_threshold(double ratio = 0.995, double max_value = 1.0) {
    return {kind::dynamic_threshold, 1.0, ratio, max_value};
  }

  void validate(const char* where) const {
    if (mode == kind::clip)
      require(std::isfinite(clip_range) && clip_range > 0.0, where, "clip_range", clip_range, "(0, inf)");
    if (mode == kind::dynamic_threshold) {
      require(ratio > 0.0 && ratio <= 1.0, where, "dynamic threshold ratio", ratio, "(0, 1]");
      require(std::isfinite(max_value) && max_value >= 1.0, where, "dynamic threshold max_value", max_value,
              "[1, inf)");
    }
  }
};

namespace detail {

/// The q-quantile of v (linear interpolation between order statistics, as torch.quantile).
/// Reorders v.
inline double quantile_linear(std::vector<double>& v, double q) {
  const double pos = q * static_cast<double>(v.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(std::floor(pos));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(lo), v.end());
  const double a = v[lo];
  if (lo + 1 >= v.size()) return a;
  const double b = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(lo) + 1, v.end());
  return a + (pos - static_cast<double>(lo)) * (b - a);
}

/// Applies `c` to x0 in place. `scratch` holds one sample's worth of doubles (made once per run).
template <class Backend, tensor T>
void correct_x0(Backend& be, const x0_correction& c, T& x0, std::vector<double>& scratch) {
  using S = scalar_of<T>;
  if (c.mode == x0_correction::kind::clip) {
    be.clamp(x0, x0, static_cast<S>(-c.clip_range), static_cast<S>(c.clip_range));
  } else if (c.mode == x0_correction::kind::dynamic_threshold) {
    auto e = elements(x0);
    const std::size_t d = sample_size(x0);
    scratch.resize(d);
    for (std::size_t b = 0; b < batch_size(x0); ++b) {
      for (std::size_t j = 0; j < d; ++j) scratch[j] = std::abs(static_cast<double>(e[b * d + j]));
      const double s = std::clamp(quantile_linear(scratch, c.ratio), 1.0, c.max_value);
      for (std::size_t j = 0; j < d; ++j)
        e[b * d + j] = static_cast<S>(std::clamp(static_cast<double>(e[b * d + j]), -s, s) / s);
    }
  }
}

}  // namespace detail

}  // namespace diffusion
