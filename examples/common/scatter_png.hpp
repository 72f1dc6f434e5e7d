// SPDX-License-Identifier: MIT
// A minimal scatter plot written as PNG with stb_image_write (Debian's libstb). Example code, not
// library API.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <stb/stb_image_write.h>

namespace examples {

struct rgb {
  std::uint8_t r, g, b;
};

/// A square canvas over the data window [x_min, x_max] x [y_min, y_max].
class scatter_canvas {
 public:
  scatter_canvas(int size, double x_min, double x_max, double y_min, double y_max)
      : m_size(size), m_x_min(x_min), m_x_max(x_max), m_y_min(y_min), m_y_max(y_max),
        m_pixels(static_cast<std::size_t>(size * size * 3), 255) {
    draw_axes();
  }

  /// Points given as interleaved (x, y) pairs, drawn as small translucent dots.
  template <class Span>
  void points(const Span& xy, rgb color, double opacity = 0.35, int radius = 1) {
    for (std::size_t i = 0; i + 1 < static_cast<std::size_t>(xy.size()); i += 2)
      dot(static_cast<double>(xy[i]), static_cast<double>(xy[i + 1]), color, opacity, radius);
  }

  void save(const std::string& path) const {
    if (!stbi_write_png(path.c_str(), m_size, m_size, 3, m_pixels.data(), m_size * 3))
      throw std::runtime_error("could not write " + path);
  }

 private:
  void blend(int px, int py, rgb c, double a) {
    if (px < 0 || py < 0 || px >= m_size || py >= m_size) return;
    std::uint8_t* p = &m_pixels[static_cast<std::size_t>((py * m_size + px) * 3)];
    const std::array<std::uint8_t, 3> src{c.r, c.g, c.b};
    for (int k = 0; k < 3; ++k) p[k] = static_cast<std::uint8_t>(std::lround((1 - a) * p[k] + a * src[k]));
  }
  void dot(double x, double y, rgb c, double a, int radius) {
    const int px = static_cast<int>((x - m_x_min) / (m_x_max - m_x_min) * (m_size - 1));
    const int py = static_cast<int>((m_y_max - y) / (m_y_max - m_y_min) * (m_size - 1));
    for (int dy = -radius; dy <= radius; ++dy)
      for (int dx = -radius; dx <= radius; ++dx)
        if (dx * dx + dy * dy <= radius * radius) blend(px + dx, py + dy, c, a);
  }
  void draw_axes() {
    const rgb grey{200, 200, 200};
    for (int i = 0; i < m_size; ++i) {
      const int px0 = static_cast<int>((0 - m_x_min) / (m_x_max - m_x_min) * (m_size - 1));
      const int py0 = static_cast<int>((m_y_max - 0) / (m_y_max - m_y_min) * (m_size - 1));
      blend(px0, i, grey, 1.0);
      blend(i, py0, grey, 1.0);
    }
  }

  int m_size;
  double m_x_min, m_x_max, m_y_min, m_y_max;
  std::vector<std::uint8_t> m_pixels;
};

}  // namespace examples
