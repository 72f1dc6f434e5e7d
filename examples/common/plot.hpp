// SPDX-License-Identifier: MIT
// Just enough plotting for the examples (example code, not library API): an RGB image with
// translucent dots, lines and a 5x7 bitmap font, scatter panels, a gallery grid and a line chart,
// written as PNG with stb_image_write (Debian's libstb).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <stb/stb_image_write.h>

namespace examples {

struct color {
  std::uint8_t r, g, b;
};

namespace palette {
inline constexpr color black{0, 0, 0};
inline constexpr color white{255, 255, 255};
inline constexpr color grey{200, 200, 200};
inline constexpr color dark_grey{90, 90, 90};
inline constexpr color data{40, 90, 200};     // held-out data
inline constexpr color sample{215, 50, 40};   // generated samples
inline constexpr std::array<color, 6> series{{{31, 119, 180}, {255, 127, 14}, {44, 160, 44},
                                              {214, 39, 40}, {148, 103, 189}, {140, 86, 75}}};
}  // namespace palette

namespace detail {

/// 5x7 glyphs, one byte per row, bit 4 the leftmost column (after the HD44780 character ROM).
/// Lower-case letters are drawn as upper case.
inline const std::array<std::uint8_t, 7>* glyph(char c) {
  struct entry {
    char c;
    std::array<std::uint8_t, 7> rows;
  };
  static constexpr entry font[] = {
      {' ', {0, 0, 0, 0, 0, 0, 0}},
      {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
      {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
      {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
      {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
      {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
      {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
      {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
      {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
      {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
      {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
      {'A', {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11}},
      {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
      {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
      {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
      {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},
      {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
      {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},
      {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
      {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
      {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
      {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
      {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
      {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
      {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
      {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
      {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
      {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}},
      {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
      {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}},
      {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
      {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
      {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
      {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}},
      {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
      {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}},
      {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
      {'.', {0, 0, 0, 0, 0, 0x0C, 0x0C}},
      {',', {0, 0, 0, 0, 0x0C, 0x04, 0x08}},
      {':', {0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0}},
      {'-', {0, 0, 0, 0x1F, 0, 0, 0}},
      {'_', {0, 0, 0, 0, 0, 0, 0x1F}},
      {'=', {0, 0, 0x1F, 0, 0x1F, 0, 0}},
      {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
      {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
      {'/', {0, 0x01, 0x02, 0x04, 0x08, 0x10, 0}},
      {'+', {0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0}},
      {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
      {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}},
      {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},
      {'*', {0, 0x04, 0x15, 0x0E, 0x15, 0x04, 0}},
      {'^', {0x04, 0x0A, 0x11, 0, 0, 0, 0}},
  };
  const char u = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  for (const entry& e : font)
    if (e.c == u) return &e.rows;
  return nullptr;
}

}  // namespace detail

/// An RGB image, white to start with.
class image {
 public:
  image(int width, int height)
      : m_width(width), m_height(height), m_pixels(static_cast<std::size_t>(width) * height * 3, 255) {
    if (width <= 0 || height <= 0) throw std::invalid_argument("image: width and height must be positive");
  }

  int width() const noexcept { return m_width; }
  int height() const noexcept { return m_height; }

  /// Mixes `c` into pixel (px, py) with opacity a in [0, 1]; pixels outside are ignored.
  void blend(int px, int py, color c, double a) {
    if (px < 0 || py < 0 || px >= m_width || py >= m_height) return;
    std::uint8_t* p = &m_pixels[(static_cast<std::size_t>(py) * m_width + px) * 3];
    const std::uint8_t src[3] = {c.r, c.g, c.b};
    for (int k = 0; k < 3; ++k) p[k] = static_cast<std::uint8_t>(std::lround((1.0 - a) * p[k] + a * src[k]));
  }

  void fill_rect(int x0, int y0, int w, int h, color c) {
    for (int y = y0; y < y0 + h; ++y)
      for (int x = x0; x < x0 + w; ++x) blend(x, y, c, 1.0);
  }

  void rect_outline(int x0, int y0, int w, int h, color c) {
    line(x0, y0, x0 + w - 1, y0, c);
    line(x0, y0 + h - 1, x0 + w - 1, y0 + h - 1, c);
    line(x0, y0, x0, y0 + h - 1, c);
    line(x0 + w - 1, y0, x0 + w - 1, y0 + h - 1, c);
  }

  /// A disc of radius r around (x, y) in pixel coordinates.
  void dot(double x, double y, color c, double a, int r) {
    const int px = static_cast<int>(std::lround(x)), py = static_cast<int>(std::lround(y));
    for (int dy = -r; dy <= r; ++dy)
      for (int dx = -r; dx <= r; ++dx)
        if (dx * dx + dy * dy <= r * r) blend(px + dx, py + dy, c, a);
  }

  /// A one-pixel line (Bresenham 1965).
  void line(int x0, int y0, int x1, int y1, color c, double a = 1.0) {
    const int dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    const int dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
      blend(x0, y0, c, a);
      if (x0 == x1 && y0 == y1) break;
      const int e2 = 2 * err;
      if (e2 >= dy) err += dy, x0 += sx;
      if (e2 <= dx) err += dx, y0 += sy;
    }
  }

  /// Text with its top-left corner at (x, y), each font pixel drawn as a scale x scale block.
  /// Returns the width drawn. Characters the font lacks are drawn as '?'-less blanks.
  int text(int x, int y, std::string_view s, color c, int scale = 1) {
    int cx = x;
    for (const char ch : s) {
      if (const auto* rows = detail::glyph(ch)) {
        for (int r = 0; r < 7; ++r)
          for (int col = 0; col < 5; ++col)
            if ((*rows)[static_cast<std::size_t>(r)] & (0x10 >> col))
              fill_rect(cx + col * scale, y + r * scale, scale, scale, c);
      }
      cx += 6 * scale;
    }
    return cx - x;
  }
  static int text_width(std::string_view s, int scale = 1) { return static_cast<int>(s.size()) * 6 * scale; }

  /// Copies `src` with its top-left corner at (x, y).
  void blit(const image& src, int x, int y) {
    for (int sy = 0; sy < src.m_height; ++sy)
      for (int sx = 0; sx < src.m_width; ++sx) {
        const std::uint8_t* p = &src.m_pixels[(static_cast<std::size_t>(sy) * src.m_width + sx) * 3];
        blend(x + sx, y + sy, {p[0], p[1], p[2]}, 1.0);
      }
  }

  /// Writes the image as PNG. \throws std::runtime_error if the file cannot be written.
  void save_png(const std::filesystem::path& path) const {
    if (!stbi_write_png(path.string().c_str(), m_width, m_height, 3, m_pixels.data(), m_width * 3))
      throw std::runtime_error("could not write " + path.string());
  }

 private:
  int m_width, m_height;
  std::vector<std::uint8_t> m_pixels;
};

/// A square scatter panel over the data window [-extent, extent]^2, with axes through the origin,
/// a frame and up to two lines of title.
class scatter_panel {
 public:
  scatter_panel(int size, double extent, std::string_view title, std::string_view subtitle = {})
      : m_img(size, size + header), m_size(size), m_extent(extent) {
    const int cx = to_px(0.0), cy = header + to_py(0.0);
    m_img.line(cx, header, cx, header + size - 1, palette::grey);
    m_img.line(0, cy, size - 1, cy, palette::grey);
    m_img.rect_outline(0, header, size, size, palette::dark_grey);
    m_img.text(4, 3, title, palette::black);
    if (!subtitle.empty()) m_img.text(4, 13, subtitle, palette::dark_grey);
  }

  /// Interleaved (x, y) points as translucent dots.
  template <class T>
  void points(std::span<const T> xy, color c, double opacity = 0.3, int radius = 1) {
    for (std::size_t i = 0; i + 1 < xy.size(); i += 2)
      m_img.dot(to_px(static_cast<double>(xy[i])), header + to_py(static_cast<double>(xy[i + 1])), c, opacity, radius);
  }

  const image& img() const noexcept { return m_img; }
  static constexpr int header = 24;  ///< pixels above the plot for the title lines

 private:
  int to_px(double x) const { return static_cast<int>(std::lround((x + m_extent) / (2 * m_extent) * (m_size - 1))); }
  int to_py(double y) const { return static_cast<int>(std::lround((m_extent - y) / (2 * m_extent) * (m_size - 1))); }

  image m_img;
  int m_size;
  double m_extent;
};

/// Panels laid out in a grid (row-major), with an optional caption line above.
inline image grid(const std::vector<std::vector<image>>& rows, std::string_view caption, int gap = 6) {
  int cols = 0, cell_w = 0, cell_h = 0;
  for (const auto& r : rows) {
    cols = std::max(cols, static_cast<int>(r.size()));
    for (const image& p : r) cell_w = std::max(cell_w, p.width()), cell_h = std::max(cell_h, p.height());
  }
  const int top = caption.empty() ? gap : 24;
  image out(std::max(1, gap + cols * (cell_w + gap)),
            std::max(1, top + static_cast<int>(rows.size()) * (cell_h + gap)));
  if (!caption.empty()) out.text(gap, 6, caption, palette::black, 2);
  for (std::size_t r = 0; r < rows.size(); ++r)
    for (std::size_t c = 0; c < rows[r].size(); ++c)
      out.blit(rows[r][c], gap + static_cast<int>(c) * (cell_w + gap), top + static_cast<int>(r) * (cell_h + gap));
  return out;
}

/// One curve of a line chart.
struct series {
  std::string label;
  std::vector<double> y;  ///< y at x = 1, 2, ... (e.g. the loss at each training step)
  color c;
};

/// A line chart of several series against their index, with a logarithmic y axis (decades
/// labelled) spanning the values' 1st to 99.5th percentile, and a legend.
inline image line_chart(int width, int height, std::string_view title, std::string_view x_label,
                        const std::vector<series>& curves) {
  image img(width, height);
  const int left = 56, right = 10, top = 26, bottom = 30;
  const int pw = width - left - right, ph = height - top - bottom;
  img.text(left, 6, title, palette::black);
  std::vector<double> all;
  std::size_t n = 1;
  for (const series& s : curves) {
    n = std::max(n, s.y.size());
    for (double v : s.y)
      if (std::isfinite(v) && v > 0) all.push_back(v);
  }
  double lo = 1e-3, hi = 1.0;
  if (!all.empty()) {
    std::sort(all.begin(), all.end());
    lo = all[static_cast<std::size_t>(0.01 * static_cast<double>(all.size() - 1))];
    hi = all[static_cast<std::size_t>(0.995 * static_cast<double>(all.size() - 1))];
    if (!(hi > lo)) hi = lo * 10;
  }
  const double llo = std::floor(std::log10(lo) * 4) / 4, lhi = std::ceil(std::log10(hi) * 4) / 4;
  auto py = [&](double v) {
    const double f = (std::log10(std::max(v, 1e-300)) - llo) / (lhi - llo);
    return top + static_cast<int>(std::lround((1.0 - std::clamp(f, 0.0, 1.0)) * (ph - 1)));
  };
  auto px = [&](double i) { return left + static_cast<int>(std::lround(i / static_cast<double>(n) * (pw - 1))); };
  // Grid lines at 1, 2 and 5 times each decade; labels at the ones that fit.
  for (int dec = static_cast<int>(std::floor(llo)); dec <= static_cast<int>(std::ceil(lhi)); ++dec)
    for (double m : {1.0, 2.0, 5.0}) {
      const double v = m * std::pow(10.0, dec), lv = std::log10(v);
      if (lv < llo - 1e-9 || lv > lhi + 1e-9) continue;
      const int y = py(v);
      img.line(left, y, left + pw - 1, y, m == 1.0 ? palette::grey : color{232, 232, 232});
      char buf[32];
      std::snprintf(buf, sizeof buf, "%g", v);
      img.text(left - image::text_width(buf) - 4, y - 3, buf, palette::dark_grey);
    }
  img.rect_outline(left, top, pw, ph, palette::dark_grey);
  for (int k = 0; k <= 4; ++k) {
    const double i = static_cast<double>(n) * k / 4.0;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", i);
    const int x = px(i);
    img.line(x, top + ph - 1, x, top + ph + 2, palette::dark_grey);
    img.text(x - image::text_width(buf) / 2, top + ph + 5, buf, palette::dark_grey);
  }
  img.text(left + pw / 2 - image::text_width(x_label) / 2, top + ph + 16, x_label, palette::black);
  for (const series& s : curves) {
    int x_prev = -1, y_prev = -1;
    for (std::size_t i = 0; i < s.y.size(); ++i) {
      if (!(std::isfinite(s.y[i]) && s.y[i] > 0)) continue;
      const int x = px(static_cast<double>(i + 1)), y = py(s.y[i]);
      if (x_prev >= 0) img.line(x_prev, y_prev, x, y, s.c);
      x_prev = x, y_prev = y;
    }
  }
  int ly = top + 6;
  for (const series& s : curves) {
    const int x = left + pw - 8 - image::text_width(s.label) - 16;
    img.fill_rect(x, ly + 2, 12, 3, s.c);
    img.text(x + 16, ly, s.label, palette::black);
    ly += 11;
  }
  return img;
}

/// A moving average over a window of `w` values (shorter at the start), for noisy loss curves.
inline std::vector<double> moving_average(std::span<const double> v, std::size_t w) {
  std::vector<double> out(v.size());
  double sum = 0.0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    sum += v[i];
    if (i >= w) sum -= v[i - w];
    out[i] = sum / static_cast<double>(std::min(i + 1, w));
  }
  return out;
}

}  // namespace examples
