// SPDX-License-Identifier: MIT
// A text progress bar as an observer (example code, not library API): for the training loop
// (train_step_info: step, loss, rate) and for the library's samplers (diffusion::step_info).
//
// On a terminal it redraws one line in place about ten times a second; into a file or a CI log it
// prints a line at every tenth of the run instead, so logs stay short.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include <diffusion/core/observer.hpp>

#include "train.hpp"

namespace examples {

class progress_bar {
 public:
  /// \param label  printed before the bar.
  /// \param out    the stream (stderr by default, so that stdout keeps only results).
  explicit progress_bar(std::string label, std::FILE* out = stderr, int width = 24)
      : m_label(std::move(label)), m_out(out), m_width(width), m_tty(is_terminal(out)),
        m_start(std::chrono::steady_clock::now()) {}

  /// Training: step, smoothed loss, learning rate, steps per second and the time left.
  void operator()(const train_step_info& s) {
    if (!due(s.index, s.count)) return;
    const double rate = s.seconds > 0 ? static_cast<double>(s.index + 1) / s.seconds : 0.0;
    const double left = rate > 0 ? static_cast<double>(s.count - s.index - 1) / rate : 0.0;
    char tail[160];
    std::snprintf(tail, sizeof tail, " step %zu/%zu  loss %.4f  lr %.1e  %.0f it/s  %s %.1fs", s.index + 1, s.count,
                  s.smoothed_loss, s.learning_rate, rate, s.index + 1 == s.count ? "took" : "eta",
                  s.index + 1 == s.count ? s.seconds : left);
    draw(s.index, s.count, tail);
  }

  /// Sampling: step and rate (the observer of diffusion::sample).
  template <class Tensor>
  void operator()(const diffusion::step_info<Tensor>& s) {
    // Adaptive solvers report count = 0 until their last step.
    const std::size_t count = s.count > 0 ? s.count : s.index + 2;
    if (!due(s.index, count)) return;
    const double secs = elapsed();
    char tail[128];
    std::snprintf(tail, sizeof tail, " step %zu/%zu  t %.4g  %.0f steps/s", s.index + 1, count, s.t,
                  secs > 0 ? static_cast<double>(s.index + 1) / secs : 0.0);
    draw(s.index, count, tail);
  }

 private:
  static bool is_terminal(std::FILE* f) {
#if defined(__unix__) || defined(__APPLE__)
    return isatty(fileno(f)) != 0;
#else
    (void)f;
    return false;
#endif
  }

  double elapsed() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
  }

  // Whether step i of n is shown: the last step always; on a terminal at most every 0.1 s;
  // otherwise at each tenth of the run.
  bool due(std::size_t i, std::size_t n) {
    const double t = elapsed();
    if (i + 1 == n) return true;
    if (m_tty) {
      if (t - m_last_draw < 0.1) return false;
      m_last_draw = t;
      return true;
    }
    const std::size_t tenth = std::max<std::size_t>(n / 10, 1);
    return (i + 1) % tenth == 0;
  }

  void draw(std::size_t i, std::size_t n, const char* tail) {
    const int filled = n > 0 ? static_cast<int>(static_cast<double>(i + 1) / static_cast<double>(n) * m_width) : 0;
    std::string bar(static_cast<std::size_t>(m_width), '.');
    std::fill_n(bar.begin(), std::clamp(filled, 0, m_width), '#');
    const bool last = i + 1 == n;
    std::fprintf(m_out, "%s%-24s [%s]%s%s", m_tty ? "\r" : "", m_label.c_str(), bar.c_str(), tail,
                 m_tty ? (last ? "\x1b[K\n" : "\x1b[K") : "\n");
    std::fflush(m_out);
  }

  std::string m_label;
  std::FILE* m_out;
  int m_width;
  bool m_tty;
  std::chrono::steady_clock::time_point m_start;
  double m_last_draw = -1.0;
};

}  // namespace examples
