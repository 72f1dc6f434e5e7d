// SPDX-License-Identifier: MIT
// The Eigen backend: tensor_traits for row-major Eigen::Tensor and a backend whose every operation
// is one Eigen expression, evaluated over flat maps of a range of the elements: the whole tensor on
// DefaultDevice, one range per thread on ThreadPoolDevice (the same expression, so the same bits).
// This is one of the two places in the library that may include Eigen (DESIGN.md, Layers).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <algorithm>

// Eigen's thread-pool executor exists only if EIGEN_USE_THREADS is defined before the Tensor module
// is first included, and a translation unit that includes it twice with and without the macro gets
// the serial executor silently (TensorExecutor.h is include-guarded).
#if defined(EIGEN_CXX11_TENSOR_TENSOR_EXECUTOR_H) && !defined(EIGEN_USE_THREADS)
#error "diffusion/backend/eigen.hpp: <unsupported/Eigen/CXX11/Tensor> was included before without EIGEN_USE_THREADS. Define EIGEN_USE_THREADS for every translation unit (link the diffusion::diffusion CMake target, or pass -DEIGEN_USE_THREADS), or include diffusion first."
#endif
#ifndef EIGEN_USE_THREADS
#define EIGEN_USE_THREADS
#endif
// Eigen 3.4's thread-pool code captures `this` implicitly with [=], deprecated in C++20; users who
// include Eigen with -I rather than as a system header would otherwise see warnings that are not theirs.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated"
#endif
#include <unsupported/Eigen/CXX11/Tensor>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "../core/errors.hpp"
#include "../core/noise.hpp"
#include "../core/reduce.hpp"
#include "../core/tensor.hpp"
#include "fork_join_pool.hpp"

namespace diffusion {

/// Row-major Eigen tensors: dimension 0 is the batch and each sample's elements are contiguous, as
/// in PyTorch's default layout. (Column-major tensors are deliberately not supported: there the
/// batch index would be the fastest-moving one.)
template <class Scalar, int Rank, class Index>
  requires(Rank >= 1)
struct tensor_traits<Eigen::Tensor<Scalar, Rank, Eigen::RowMajor, Index>> {
  using T = Eigen::Tensor<Scalar, Rank, Eigen::RowMajor, Index>;
  using scalar_type = Scalar;
  static std::size_t size(const T& x) { return static_cast<std::size_t>(x.size()); }
  static std::size_t batch_size(const T& x) { return static_cast<std::size_t>(x.dimension(0)); }
  static bool same_shape(const T& a, const T& b) {
    for (std::size_t i = 0; i < static_cast<std::size_t>(Rank); ++i)
      if (a.dimension(i) != b.dimension(i)) return false;
    return true;
  }
  static T make_like(const T& x) { return T(x.dimensions()); }
  static std::span<Scalar> elements(T& x) { return {x.data(), size(x)}; }
  static std::span<const Scalar> elements(const T& x) { return {x.data(), size(x)}; }
  static std::string shape_string(const T& x) {
    std::string s = "[";
    for (std::size_t i = 0; i < static_cast<std::size_t>(Rank); ++i)
      s.append(i ? ", " : "").append(std::to_string(x.dimension(i)));
    return s + "]";
  }
};

/// Owns the threads of a threaded Eigen backend, so one takes two lines:
///
///     diffusion::eigen_thread_pool pool{2};
///     diffusion::eigen_backend<float, 4, Eigen::ThreadPoolDevice> be{pool};
///
/// Two sets of threads live here: a fork_join_pool, on which the backend splits its own passes
/// (its workers spin between passes, so back-to-back sampler steps never wait for a wake-up), and
/// an Eigen::ThreadPool with its ThreadPoolDevice, for the user's own Eigen code (e.g. the model);
/// each sleeps while the other works.
///
/// Neither copyable nor movable: backends and devices point at it, and it must outlive them.
class eigen_thread_pool {
 public:
  /// \param threads number of threads, at least 1.
  /// \param spin    how long the backend's workers busy-wait for the next pass before they sleep
  ///                (fork_join_pool).
  explicit eigen_thread_pool(int threads, std::chrono::microseconds spin = fork_join_pool::default_spin)
      : m_fork_join(threads, spin), m_pool(threads), m_device(&m_pool, threads) {}
  eigen_thread_pool(const eigen_thread_pool&) = delete;
  eigen_thread_pool& operator=(const eigen_thread_pool&) = delete;
  eigen_thread_pool(eigen_thread_pool&&) = delete;
  eigen_thread_pool& operator=(eigen_thread_pool&&) = delete;
  ~eigen_thread_pool() = default;

  const Eigen::ThreadPoolDevice& device() const noexcept { return m_device; }
  int num_threads() const noexcept { return m_device.numThreads(); }
  /// The pool the backend's passes run on.
  fork_join_pool& fork_join() const noexcept { return m_fork_join; }

 private:
  mutable fork_join_pool m_fork_join;  // first: it validates `threads`
  Eigen::ThreadPool m_pool;
  Eigen::ThreadPoolDevice m_device;
};

namespace detail {

/// Where the backend's passes run: for_ranges(n, f) calls f(begin, end) over a partition of
/// [0, n). Primary template left undefined: eigen_backend names the devices it supports in a
/// static_assert.
template <class Device>
class eigen_executor;

template <>
class eigen_executor<Eigen::DefaultDevice> {
 public:
  template <std::size_t Weight = 1, class F>
  void for_ranges(std::size_t n, F& f) const {
    f(std::size_t{0}, n);
  }
  template <class F>
  void for_items(std::size_t items, std::size_t /*elements_per_item*/, F& f) const {
    f(std::size_t{0}, items);
  }
};

template <>
class eigen_executor<Eigen::ThreadPoolDevice> {
 public:
  /// Passes split on `fork_join` (an eigen_thread_pool's).
  eigen_executor(const Eigen::ThreadPoolDevice& device, fork_join_pool& fork_join, std::size_t parallel_threshold)
      : m_device(device), m_fork_join(&fork_join), m_threshold(parallel_threshold) {}
  /// Passes split on the device's own Eigen::ThreadPool (a device the user made).
  eigen_executor(const Eigen::ThreadPoolDevice& device, std::size_t parallel_threshold)
      : m_device(device), m_threshold(parallel_threshold) {}

  const Eigen::ThreadPoolDevice& device() const noexcept { return m_device; }
  std::size_t parallel_threshold() const noexcept { return m_threshold; }

  /// Calls f(begin, end) over a partition of [0, n): one range per thread, each a multiple of 16
  /// elements long except the last (whole Philox counters of 4 words; whole 64-byte cache lines of
  /// float in a line-aligned buffer, so threads do not share a line). The caller runs the first
  /// range itself and waits for the others. Below the threshold, one range on the calling thread:
  /// there a fork-join costs more than the pass (PERF-BASELINE.md: 32-64K elements). `Weight` is
  /// what an element of the pass costs against one of a memory-bound pass (a lincomb): a pass
  /// `Weight` times dearer per element pays for the fork-join at `Weight` times fewer elements, so
  /// it splits from ceil(threshold / Weight) elements. A long pass (long_pass_factor times the
  /// threshold) is cut into chunks_per_thread ranges per thread instead, which the threads take in
  /// turn (see run_chunks).
  template <std::size_t Weight = 1, class F>
  void for_ranges(std::size_t n, F& f) const {
    static_assert(Weight >= 1, "diffusion::eigen_executor::for_ranges: Weight must be at least 1");
    const std::size_t split_from = m_threshold / Weight + (m_threshold % Weight != 0);
    if (n < split_from || n <= granule) [[likely]] {
      f(std::size_t{0}, n);
      return;
    }
    split(n, n / long_pass_factor >= split_from, n * Weight, f);
  }

  /// Calls f(first, last) over a partition of [0, items) into one range of whole items per thread
  /// (the samples of a reduction, each summed by one thread in a fixed order), when the items'
  /// elements reach the threshold; below it, one range on the calling thread.
  template <class F>
  void for_items(std::size_t items, std::size_t elements_per_item, F& f) const {
    if (items < 2 || items * elements_per_item < m_threshold) [[likely]] {
      f(std::size_t{0}, items);
      return;
    }
    split_items(items, items * elements_per_item / long_pass_factor >= m_threshold, items * elements_per_item, f);
  }

 private:
  static constexpr std::size_t granule = 16;
  /// A pass this many times the threshold (2M elements by default, weighted) is long for the
  /// pool (fork_join_pool::run's `long_pass`): a sleeping worker is woken for it and joins it
  /// late, since one thread's pass outlasts the wake-up (~50 us; the device path's threshold rests
  /// on the same measurement). A shorter one leaves it asleep and runs its range here.
  static constexpr std::size_t long_pass_factor = 32;
  /// Ranges per thread of a long pass. A worker that was asleep when the pass began joins it
  /// ~50 us late (the wake-up); with one range per thread the caller would then wait for the late
  /// range, with chunks it takes what the worker has not reached. 8: the caller waits for at most
  /// an eighth of a share.
  static constexpr std::size_t chunks_per_thread = 8;
  /// The least work (elements times Weight) in a chunk: what the default threshold says pays for a
  /// fork-join, ~5 us of a lincomb, so that taking a chunk (an atomic add on a shared line,
  /// ~0.1 us) costs nothing measurable. A long pass at the default threshold has 32 of these.
  static constexpr std::size_t min_chunk_work = 65536;

  /// How many chunks a pass of `work` (elements times Weight) is cut into: one per thread, or for a
  /// long pass up to chunks_per_thread per thread.
  static std::size_t chunk_count(std::size_t threads, bool long_pass, std::size_t work) noexcept {
    const std::size_t most = long_pass ? std::min(threads * chunks_per_thread, work / min_chunk_work) : 0;
    return std::max(threads, most);
  }

  template <class F>
  [[gnu::noinline]] void split_items(std::size_t items, bool long_pass, std::size_t work, F& f) const {
    const std::size_t threads = thread_count();
    const std::size_t chunks = std::min(items, chunk_count(threads, long_pass, work));
    const std::size_t length = (items + chunks - 1) / chunks;
    if (chunks > threads)
      run_chunks(items, length, threads, f);
    else
      run_partition(items, length, long_pass, f);
  }

  std::size_t thread_count() const noexcept {
    return static_cast<std::size_t>(
        m_fork_join ? m_fork_join->num_threads() : (m_device.numThreads() > 1 ? m_device.numThreads() : 1));
  }

  // Out of line, so that the serial path above stays a compare in front of the pass.
  template <class F>
  [[gnu::noinline]] void split(std::size_t n, bool long_pass, std::size_t work, F& f) const {
    const std::size_t threads = thread_count();
    if (threads == 1) {
      f(std::size_t{0}, n);
      return;
    }
    const std::size_t chunks = chunk_count(threads, long_pass, work);
    const std::size_t length = ((n + chunks - 1) / chunks + granule - 1) / granule * granule;
    if (chunks > threads)
      run_chunks(n, length, threads, f);
    else
      run_partition(n, length, long_pass, f);
  }

  // f(c * length, min(n, (c + 1) * length)) for every chunk c of [0, n), in a pass of `threads`
  // tasks of a long pass that take the chunks not yet taken until none is left: the caller's task
  // from the front, the workers' from the back. When every thread comes in time they meet near
  // where the plain split would cut, so each thread works on about the same elements pass after
  // pass (a step's tensors of 196K floats fit in two cores' caches, not in one: taking chunks
  // in turn from one end cost 4-7% there); a worker that joins late takes only what the caller has
  // not reached, and a task that is never claimed is run by the caller after its own and finds
  // nothing left. Every pass here is elementwise or per item, so which thread runs a chunk does
  // not change the results.
  template <class F>
  void run_chunks(std::size_t n, std::size_t length, std::size_t threads, F& f) const {
    const auto chunks = static_cast<std::uint32_t>((n + length - 1) / length);  // at most threads * 8
    // The next chunk from the front in the low half, one past the next from the back in the high
    // half, on a line of its own (the tasks update it).
    alignas(64) std::atomic<std::uint64_t> ends{std::uint64_t{chunks} << 32};
    auto take = [&f, &ends, length, n](std::size_t task) {
      for (std::uint64_t e = ends.load(std::memory_order_relaxed);;) {
        const auto front = static_cast<std::uint32_t>(e), back = static_cast<std::uint32_t>(e >> 32);
        if (front >= back) return;
        const std::uint32_t c = task == 0 ? front : back - 1;
        const std::uint64_t next = task == 0 ? e + 1 : e - (std::uint64_t{1} << 32);
        if (ends.compare_exchange_weak(e, next, std::memory_order_relaxed)) {
          f(c * length, std::min(n, (c + 1) * length));
          e = ends.load(std::memory_order_relaxed);
        }
      }
    };
    run_ranges(threads, true, take);
  }

  // f(r * length, min(n, (r + 1) * length)) for every range r of [0, n), range 0 on this thread.
  // A trivially copyable pass (a lambda capturing values or references) is copied into the range
  // task, so that the pool can hand the whole task to a worker in its pass line when it is small
  // enough (fork_join_pool::publish); any other pass is referred to.
  template <class F>
  void run_partition(std::size_t n, std::size_t length, bool long_pass, F& f) const {
    const std::size_t ranges = (n + length - 1) / length;
    if constexpr (std::is_trivially_copyable_v<F>) {
      auto range = [f, length, n](std::size_t r) { f(r * length, std::min(n, (r + 1) * length)); };
      run_ranges(ranges, long_pass, range);
    } else {
      auto range = [&f, length, n](std::size_t r) { f(r * length, std::min(n, (r + 1) * length)); };
      run_ranges(ranges, long_pass, range);
    }
  }

  template <class Range>
  void run_ranges(std::size_t ranges, bool long_pass, Range& range) const {
    if (m_fork_join)
      m_fork_join->run(ranges, range, long_pass);
    else
      run_on_eigen_pool(ranges, range);
  }

  // Must not be called from a task running on the same pool (it would wait for itself).
  template <class Range>
  void run_on_eigen_pool(std::size_t ranges, Range& range) const {
    // The workers share this frame; the barrier keeps it alive until the last one is done, even
    // when a range throws (the first exception is rethrown on the calling thread).
    struct shared_state {
      Range* range;
      Eigen::Barrier done;
      std::mutex mutex;
      std::exception_ptr error;
      void run(std::size_t r) noexcept {
        try {
          (*range)(r);
        } catch (...) {
          const std::lock_guard lock(mutex);
          if (!error) error = std::current_exception();
        }
      }
    } state{&range, Eigen::Barrier(static_cast<unsigned>(ranges - 1)), {}, {}};
    for (std::size_t r = 1; r < ranges; ++r) {
      shared_state* s = &state;
      m_device.enqueueNoNotification([s, r] {
        s->run(r);
        s->done.Notify();
      });
    }
    state.run(0);
    state.done.Wait();
    if (state.error) std::rethrow_exception(state.error);
  }

  Eigen::ThreadPoolDevice m_device;
  fork_join_pool* m_fork_join = nullptr;
  std::size_t m_threshold;
};

}  // namespace detail

/// The Eigen backend over `Eigen::Tensor<Scalar, Rank, Eigen::RowMajor>`.
///
/// Every operation is a single Eigen expression, so each is one fused pass over memory with no
/// temporaries, and y may alias any input (all operations are elementwise). Sums are formed left to
/// right, `x1*a1 + x2*a2 + ...`, exactly as the reference backend forms them, so the two agree.
///
/// \tparam Scalar  float or double.
/// \tparam Rank    tensor rank, at least 1 (dimension 0 is the batch).
/// \tparam Device  Eigen::DefaultDevice (default-constructible backend) or Eigen::ThreadPoolDevice
///                 (constructed from a device or an eigen_thread_pool, plus a size threshold below
///                 which it runs on one thread). Results are bit-identical whatever the device.
template <class Scalar, int Rank, class Device = Eigen::DefaultDevice>
class eigen_backend {
  static_assert(std::is_floating_point_v<Scalar>, "diffusion::eigen_backend: Scalar must be float or double");
  static_assert(Rank >= 1, "diffusion::eigen_backend: Rank must be at least 1 (dimension 0 is the batch)");
  static_assert(std::is_same_v<Device, Eigen::DefaultDevice> || std::is_same_v<Device, Eigen::ThreadPoolDevice>,
                "diffusion::eigen_backend: Device must be Eigen::DefaultDevice or Eigen::ThreadPoolDevice");

  static constexpr bool is_threaded = std::is_same_v<Device, Eigen::ThreadPoolDevice>;

 public:
  using scalar_type = Scalar;
  using tensor_type = Eigen::Tensor<Scalar, Rank, Eigen::RowMajor>;
  using device_type = Device;

  /// Elements below which a backend on an eigen_thread_pool stays on the calling thread. Its
  /// fork-join costs ~0.4 us on the project's 2-core machine (an empty pass; a cache line's round
  /// trip between the cores is ~0.3 us), so from 64K elements two threads take a deterministic step
  /// 1.6-2x faster and a stochastic one 1.8-1.9x (docs/PERFORMANCE.md, `bash scripts/bench`).
  static constexpr std::size_t default_parallel_threshold = 65536;
  /// The same for a backend on a bare ThreadPoolDevice, whose passes go through Eigen's own pool:
  /// its workers sleep between passes, and waking one cost ~35 us on the same machine, more than a
  /// deterministic step over 1M elements takes on one thread.
  static constexpr std::size_t default_device_parallel_threshold = std::size_t{1} << 20;
  /// What an element of lincomb_noise (a stochastic update with its noise) counts for against the
  /// threshold. A Philox normal costs ~1 ns per element at -O3 -march=native and ~2 ns at plain
  /// -O2, 12-25 times a lincomb's element (docs/PERFORMANCE.md), so the pass splits from
  /// threshold / 16 elements: 4096 with the default threshold, where two threads already take it
  /// ~1.5x faster.
  static constexpr std::size_t noise_pass_weight = 16;
  /// The same for fill_normal, whose tensor later passes read: below the threshold they run on the
  /// calling thread, which must then fetch the worker's half from the other core (the Langevin
  /// corrector's norms, at 8K elements: the split fill's gain, ~3 us, all lost). So it splits only
  /// from threshold / 4 elements (16K by default), where the gain outweighs the move.
  static constexpr std::size_t fill_pass_weight = 4;

  eigen_backend()
    requires(!is_threaded)
  = default;

  /// Runs on `device` (copied; it does not own its pool, which must outlive the backend) for
  /// tensors of at least `parallel_threshold` elements, and on the calling thread below that.
  /// A threshold of 0 always uses the pool. Prefer an eigen_thread_pool (below) unless the device
  /// is shared with other Eigen code: its fork-join is ~100 times cheaper.
  explicit eigen_backend(const Eigen::ThreadPoolDevice& device,
                         std::size_t parallel_threshold = default_device_parallel_threshold)
    requires is_threaded
      : m_exec(device, parallel_threshold) {}

  /// Runs on `pool`, which must outlive the backend, for passes over at least `parallel_threshold`
  /// elements (parallel_threshold / noise_pass_weight for lincomb_noise, parallel_threshold /
  /// fill_pass_weight for fill_normal).
  explicit eigen_backend(const eigen_thread_pool& pool, std::size_t parallel_threshold = default_parallel_threshold)
    requires is_threaded
      : m_exec(pool.device(), pool.fork_join(), parallel_threshold) {}
  /// A temporary pool would die before the backend uses it.
  eigen_backend(const eigen_thread_pool&&, std::size_t = default_parallel_threshold)
    requires is_threaded
  = delete;

  /// The thread-pool device (ThreadPoolDevice backends only).
  const Eigen::ThreadPoolDevice& device() const noexcept
    requires is_threaded
  {
    return m_exec.device();
  }
  /// Elements from which the pool is used (ThreadPoolDevice backends only).
  std::size_t parallel_threshold() const noexcept
    requires is_threaded
  {
    return m_exec.parallel_threshold();
  }

  /// y = a1*x1 + a2*x2 + ... (1 to 4 terms), elementwise, in one pass; y may alias any x_k.
  /// All tensors must have y's shape.
  template <class... Rest>
  void lincomb(tensor_type& y, Scalar a1, const tensor_type& x1, const Rest&... rest) const {
    static_assert(sizeof...(Rest) % 2 == 0 && sizeof...(Rest) <= 6,
                  "diffusion::eigen_backend::lincomb takes 1 to 4 (coefficient, tensor) pairs");
    check_terms(y, 1, a1, x1, rest...);
    constexpr std::size_t terms = 1 + sizeof...(Rest) / 2;
    std::array<Scalar, terms> a;
    std::array<const Scalar*, terms> x;
    collect_terms(a.data(), x.data(), a1, x1, rest...);
    Scalar* const yd = y.data();
    // Captured by value: a worker then finds them in the pass line (fork_join_pool::publish).
    auto pass = [a, x, yd](std::size_t begin, std::size_t end) {
      const auto m = static_cast<Eigen::Index>(end - begin);
      vector yv(yd + begin, m);
      // The maps live here: Eigen expressions may hold their leaves by reference.
      const auto xv = [&]<std::size_t... K>(std::index_sequence<K...>) {
        return std::array<const_vector, terms>{const_vector(x[K] + begin, m)...};
      }(std::make_index_sequence<terms>{});
      yv.device(serial_device()) = weighted_sum(xv, a, std::make_index_sequence<terms>{});
    };
    m_exec.for_ranges(static_cast<std::size_t>(y.size()), pass);
  }

  /// y[s, ...] = a[s]*x1[s, ...] + b[s]*x2[s, ...]: one coefficient pair per batch sample s, in one
  /// pass (each sample's elements are one segment with its pair). y may alias x1, x2.
  void lincomb_per_sample(tensor_type& y, std::span<const Scalar> a, const tensor_type& x1,
                          std::span<const Scalar> b, const tensor_type& x2) const {
    constexpr std::string_view where = "eigen_backend::lincomb_per_sample";
    check_shape(where, "x1", y, x1);
    check_shape(where, "x2", y, x2);
    const Eigen::Index batch = y.dimension(0);
    detail::check_coefficient_count(where, "a.size()", a.size(), static_cast<std::size_t>(batch));
    detail::check_coefficient_count(where, "b.size()", b.size(), static_cast<std::size_t>(batch));
    if (batch == 0) return;

    // Each range is cut at sample boundaries into segments with one coefficient pair each.
    const std::size_t d = static_cast<std::size_t>(y.size() / batch);
    Scalar* const yd = y.data();
    const Scalar* const x1d = x1.data();
    const Scalar* const x2d = x2.data();
    auto pass = [a, b, d, yd, x1d, x2d](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end;) {
        const std::size_t sample = i / d, stop = std::min(end, (sample + 1) * d);
        const auto m = static_cast<Eigen::Index>(stop - i);
        vector yv(yd + i, m);
        const const_vector x1v(x1d + i, m), x2v(x2d + i, m);
        yv.device(serial_device()) = x1v * a[sample] + x2v * b[sample];
        i = stop;
      }
    };
    m_exec.for_ranges(static_cast<std::size_t>(y.size()), pass);
  }

  /// y = min(max(x, lo), hi), elementwise; NaN stays NaN. y may alias x.
  void clamp(tensor_type& y, const tensor_type& x, Scalar lo, Scalar hi) const {
    check_shape("eigen_backend::clamp", "x", y, x);
    detail::check_clamp_bounds("eigen_backend::clamp", lo, hi);
    Scalar* const yd = y.data();
    const Scalar* const xd = x.data();
    auto pass = [yd, xd, lo, hi](std::size_t begin, std::size_t end) {
      const auto m = static_cast<Eigen::Index>(end - begin);
      vector yv(yd + begin, m);
      const const_vector xv(xd + begin, m);
      // Two selects rather than Eigen's clip: with AVX-512, clip's pmax/pmin make g++ 12 report a
      // false -Wmaybe-uninitialized inside its own intrinsics (GCC bug 105593), which fails users'
      // -Werror builds; x < lo and x > hi are false for NaN, so NaN stays NaN, as with clip.
      yv.device(serial_device()) = (xv < lo).select(xv.constant(lo), (xv > hi).select(xv.constant(hi), xv));
    };
    m_exec.for_ranges(static_cast<std::size_t>(y.size()), pass);
  }

  /// The mean over the batch of the per-sample Euclidean norms |x_b| (diffusion::mean_sample_norm,
  /// core/reduce.hpp, which the Langevin corrector's step rule uses), with the samples split over
  /// the threads above the threshold. Each sample is summed by one thread exactly as the generic
  /// function sums it, and the norms are added in sample order on the calling thread, so the
  /// result has the same bits whatever the device and thread count.
  double mean_sample_norm(const tensor_type& x) const {
    const std::size_t batch = static_cast<std::size_t>(x.dimension(0));
    if (batch == 0) return 0.0;
    const std::size_t d = static_cast<std::size_t>(x.size()) / batch;
    const Scalar* const xd = x.data();
    constexpr std::size_t chunk = 256;  // samples per pass: their norms wait on the stack
    std::array<double, chunk> norms;
    double total = 0.0;
    for (std::size_t first = 0; first < batch; first += chunk) {
      const std::size_t count = std::min(chunk, batch - first);
      double* const out = norms.data();
      auto pass = [out, xd, d, first](std::size_t b0, std::size_t b1) {
        for (std::size_t b = b0; b < b1; ++b)
          out[b] = std::sqrt(detail::sum_of_squares(std::span<const Scalar>(xd + (first + b) * d, d)));
      };
      m_exec.for_items(count, d, pass);
      for (std::size_t b = 0; b < count; ++b) total += norms[b];
    }
    return total / static_cast<double>(batch);
  }

  /// Fills z with one draw of standard normal noise from `noise`, consuming exactly one draw
  /// (noise.next_draw() once, after the draw was served: a request the source refuses consumes
  /// none). Each element is a pure function of its index, so the bits equal
  /// noise.fill_normal(elements(z), batch_size(z)) whatever the device and thread count; on a thread
  /// pool from threshold / fill_pass_weight elements they are split into one range per thread.
  template <class Noise>
    requires detail::range_normal_source<Noise, Scalar>
  void fill_normal(tensor_type& z, Noise& noise) const {
    const std::uint64_t draw = noise.draw_index();
    const std::span<Scalar> out{z.data(), static_cast<std::size_t>(z.size())};
    const std::size_t batch = static_cast<std::size_t>(z.dimension(0));
    const Noise& source = noise;
    auto fill = [&](std::size_t begin, std::size_t end) { source.fill_normal_range(out, batch, draw, begin, end); };
    if (out.empty())
      fill(0, 0);  // nothing to write, but the source's checks, as on every backend
    else
      m_exec.template for_ranges<fill_pass_weight>(out.size(), fill);
    noise.next_draw();
  }

  /// y = a*x + b*e + c*z, where z is one fresh draw of standard normal noise from `noise`
  /// (exactly one draw is consumed, as fill_normal does, once served): the update of a stochastic
  /// sampler step
  /// (DESIGN.md: x <- a x + b pred + c z) in one pass, with z generated in blocks of
  /// `noise_block` elements inside the loop and never stored in a tensor. y may alias x or e.
  ///
  /// The result is the same as fill_normal(z, noise) followed by lincomb(y, a, x, b, e, c, z): the
  /// same noise bits and the same expression, evaluated by Eigen block by block; the blocks follow
  /// the same split over threads as fill_normal, so the bits do not depend on the thread count.
  template <class Noise>
    requires detail::block_normal_source<Noise, Scalar>
  void lincomb_noise(tensor_type& y, Scalar a, const tensor_type& x, Scalar b, const tensor_type& e, Scalar c,
                     Noise& noise) const {
    check_shape("eigen_backend::lincomb_noise", "x", y, x);
    check_shape("eigen_backend::lincomb_noise", "e", y, e);
    const std::uint64_t draw = noise.draw_index();
    const std::size_t n = static_cast<std::size_t>(y.size());
    const std::size_t batch = static_cast<std::size_t>(y.dimension(0));
    const Noise& source = noise;
    if (n == 0) {
      source.write_normal_range(n, batch, draw, 0, std::span<Scalar>{});  // the source's checks only
      noise.next_draw();
      return;
    }
    Scalar* const yd = y.data();
    const Scalar* const xd = x.data();
    const Scalar* const ed = e.data();
    auto update = [&](std::size_t begin, std::size_t end) {
      alignas(64) std::array<Scalar, noise_block> z;
      for (std::size_t i = begin; i < end; i += noise_block) {
        const std::size_t len = end - i < noise_block ? end - i : noise_block;
        source.write_normal_range(n, batch, draw, i, std::span<Scalar>(z.data(), len));
        const auto m = static_cast<Eigen::Index>(len);
        vector yv(yd + i, m);
        const const_vector xv(xd + i, m), ev(ed + i, m), zv(z.data(), m);
        yv.device(serial_device()) = xv * a + ev * b + zv * c;
      }
    };
    m_exec.template for_ranges<noise_pass_weight>(n, update);
    noise.next_draw();
  }

  /// Elements of noise generated per block inside lincomb_noise: small enough for the first-level
  /// cache, large enough for whole SIMD loops (256-1024 measure the same, PERF-BASELINE.md).
  static constexpr std::size_t noise_block = 256;

 private:
  // Every pass evaluates Eigen expressions over flat maps of one range of the tensors' elements,
  // on the thread that runs the range.
  using vector = Eigen::TensorMap<Eigen::Tensor<Scalar, 1, Eigen::RowMajor>>;
  using const_vector = Eigen::TensorMap<const Eigen::Tensor<Scalar, 1, Eigen::RowMajor>>;
  static Eigen::DefaultDevice& serial_device() noexcept {
    static Eigen::DefaultDevice device;
    return device;
  }

  // Builds ((x1*a1 + x2*a2) + x3*a3) + x4*a4, the association the reference backend uses (a left
  // fold). The expression refers to the maps in xv; it is consumed within the calling statement.
  template <std::size_t N, std::size_t... K>
  static auto weighted_sum(const std::array<const_vector, N>& xv, const std::array<Scalar, N>& a,
                           std::index_sequence<K...>) {
    return [&]<std::size_t First, std::size_t... Next>(std::index_sequence<First, Next...>) {
      return ((xv[First] * a[First]) + ... + (xv[Next] * a[Next]));
    }(std::index_sequence<K...>{});
  }

  static void collect_terms(Scalar*, const Scalar**) {}
  template <class... Rest>
  static void collect_terms(Scalar* a, const Scalar** x, Scalar ak, const tensor_type& xk, const Rest&... rest) {
    *a = ak;
    *x = xk.data();
    collect_terms(a + 1, x + 1, rest...);
  }

  static void check_terms(const tensor_type&, int) {}
  template <class... Rest>
  static void check_terms(const tensor_type& y, int k, Scalar, const tensor_type& x, const Rest&... rest) {
    if (!tensor_traits<tensor_type>::same_shape(y, x)) [[unlikely]]
      detail::throw_shape_mismatch(x, y, "eigen_backend::lincomb", detail::concat({"x", k}), "the shape of y");
    check_terms(y, k + 1, rest...);
  }

  // Eigen checks shapes only with eigen_assert, i.e. not in release builds, where a mismatch would
  // read or write out of bounds; a few integer compares per call cost nothing next to the pass.
  static void check_shape(std::string_view where, std::string_view parameter, const tensor_type& y,
                          const tensor_type& x) {
    if (!tensor_traits<tensor_type>::same_shape(y, x)) [[unlikely]]
      detail::throw_shape_mismatch(x, y, where, parameter, "the shape of y");
  }

  [[no_unique_address]] detail::eigen_executor<Device> m_exec;
};

}  // namespace diffusion
