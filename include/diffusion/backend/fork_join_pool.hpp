// SPDX-License-Identifier: MIT
// A fork-join pool for the backends' elementwise passes: the caller and n - 1 workers each run one
// range of a pass and meet again at its end. Workers that have just finished a pass spin for a
// short while before they sleep, so a sampler loop that runs pass after pass never waits for the
// operating system to wake a thread (measured on the project's 2-core guest: ~35 us per fork-join
// through Eigen's ThreadPool, whose workers sleep, against a DDIM step of 5 us at 64K elements;
// OpenMP's spinning workers made the same split pay off from ~64K elements, PERF-BASELINE.md).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/errors.hpp"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <emmintrin.h>
#endif

namespace diffusion {

namespace detail {

/// Tells the core a spin-wait is in progress (x86 `pause`: saves power and, on a hyper-threaded
/// core, gives the sibling thread the pipeline).
inline void spin_pause() noexcept {
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
  _mm_pause();
#endif
}

/// Polls of a spin-wait made without a pause: about a microsecond.
inline constexpr unsigned tight_spins = 512;

}  // namespace detail

/// Runs task k of a pass, for k in [0, tasks), on threads 0 .. tasks - 1: the calling thread runs
/// task 0, worker k runs task k, and run() returns when all are done.
///
///     diffusion::fork_join_pool pool{2};
///     pool.run(2, [&](std::size_t k) { /* half k of the work */ });
///
/// After a pass a worker spins (busy-waits) for `spin` before it sleeps on a condition variable,
/// so the next pass within that time starts at the cost of a cache-line exchange instead of a
/// wake-up. The price is CPU time burnt by idle workers for up to `spin` after every pass;
/// `spin` = 0 makes them sleep at once (each pass then pays the wake-up). A pass that finds a
/// worker asleep waits for it to wake (45-50 us on the project's 2-core guest), longer than a
/// pass over 64K elements takes on one thread: in a sampler loop whose model call outlasts
/// `spin`, the first pass of every step pays it (docs/PERFORMANCE.md, "After a model call").
///
/// Neither copyable nor movable (the workers point at it). run() may be called from several
/// threads (passes are serialised) and from inside a task of the same pool (the inner pass then
/// runs all its tasks on the calling thread, so nesting never deadlocks).
///
/// A task that is trivially copyable, callable as const and at most 48 bytes (a lambda capturing
/// a few values or references) is called through a copy made for the pass, on every thread: a
/// `mutable` data member it changes changes in the copy, not in the caller's object, and a pointer
/// to its own members is valid only during its pass. Any other task is called where it is.
class fork_join_pool {
 public:
  static constexpr std::chrono::microseconds default_spin{100};

  /// \param threads  threads that run a pass, the caller included: at least 1 (1 starts no worker).
  /// \param spin     how long a worker busy-waits for the next pass before it sleeps, at least 0.
  explicit fork_join_pool(int threads, std::chrono::microseconds spin = default_spin)
      : m_threads(checked_threads(threads)), m_spin(checked_spin(spin)) {
    m_workers.reserve(static_cast<std::size_t>(m_threads - 1));
    try {
      for (int k = 1; k < m_threads; ++k) m_workers.emplace_back([this, k] { work(static_cast<std::size_t>(k)); });
    } catch (...) {
      stop();
      throw;
    }
  }
  fork_join_pool(const fork_join_pool&) = delete;
  fork_join_pool& operator=(const fork_join_pool&) = delete;
  fork_join_pool(fork_join_pool&&) = delete;
  fork_join_pool& operator=(fork_join_pool&&) = delete;
  ~fork_join_pool() { stop(); }

  /// Threads of a pass, the caller included.
  int num_threads() const noexcept { return m_threads; }
  std::chrono::microseconds spin() const noexcept { return m_spin; }

  /// Calls task(k) once for every k in [0, tasks) and returns when all calls have returned; task 0
  /// runs on the calling thread. If calls throw, the first exception (in time) is rethrown here
  /// after all calls have ended. A small trivially copyable task is called through a copy (see the
  /// class comment).
  template <class Task>
  void run(std::size_t tasks, Task& task) {
    if (tasks > static_cast<std::size_t>(m_threads)) [[unlikely]]
      detail::throw_invalid_parts("fork_join_pool::run", {"tasks"}, tasks,
                                  {"[0, num_threads()] with num_threads() = ", m_threads});
    if (tasks == 0) return;
    if (tasks == 1 || t_inside == this) {
      for (std::size_t k = 0; k < tasks; ++k) task(k);
      return;
    }
    const std::lock_guard serial(m_run);
    publish(task);
    m_pass.tasks = static_cast<std::uint32_t>(tasks);
    // Every worker acknowledges every pass, even one without a task for it: then no worker can
    // still be reading this pass's fields when the next pass writes them.
    const std::size_t done = m_done_expected += m_workers.size();
    // seq_cst with the workers' m_sleepers increment: either a worker about to sleep sees the new
    // generation in its wait, or this thread sees it counted and wakes it.
    m_pass.generation.fetch_add(pass_step, std::memory_order_seq_cst);
    if (m_sleepers.load(std::memory_order_seq_cst) > 0) wake_all();

    const fork_join_pool* const outer = t_inside;
    t_inside = this;
    call(0);
    t_inside = outer;
    for (unsigned spins = 0; m_done.load(std::memory_order_acquire) != done; ++spins) {
      // Polled without a pause at first (the other ranges end about when ours does; a pause costs
      // ~50 ns of latency on recent cores), then with one; and a worker that has lost its core
      // (oversubscription) needs this core more than we need the spin.
      if (spins >= detail::tight_spins + 1024)
        std::this_thread::yield();
      else if (spins >= detail::tight_spins)
        detail::spin_pause();
    }
    if (m_error) [[unlikely]]
      std::rethrow_exception(std::exchange(m_error, nullptr));
  }

 private:
  static int checked_threads(int threads) {
    require(threads >= 1, "fork_join_pool", "threads", threads, "at least 1");
    return threads;
  }
  static std::chrono::microseconds checked_spin(std::chrono::microseconds spin) {
    require(spin.count() >= 0, "fork_join_pool", "spin (microseconds)", spin.count(), "at least 0");
    return spin;
  }

  /// Puts the task into the pass line: a copy of it when it is small and trivially copyable (a
  /// lambda that captures a few values), so that a worker finds everything the pass needs in the
  /// one line that told it to start; otherwise a pointer to it (the worker then fetches the task
  /// from the caller's frame). Chasing references into the caller's frame cost a dependent
  /// transfer between the cores each, ~0.1 us apiece (docs/PERFORMANCE.md, Two threads).
  template <class Task>
  void publish(Task& task) noexcept {
    if constexpr (std::is_trivially_copyable_v<Task> && std::is_invocable_v<const Task&, std::size_t> &&
                  sizeof(Task) <= sizeof(m_pass.payload) && alignof(Task) <= payload_alignment) {
      // memcpy creates the copy: a trivially copyable closure is an implicit-lifetime type.
      std::memcpy(m_pass.payload, static_cast<const void*>(&task), sizeof(Task));
      m_pass.invoke = [](void* payload, std::size_t k) { (*std::launder(static_cast<const Task*>(payload)))(k); };
    } else {
      Task* const address = &task;
      std::memcpy(m_pass.payload, &address, sizeof address);
      m_pass.invoke = [](void* payload, std::size_t k) {
        Task* f;
        std::memcpy(&f, payload, sizeof f);
        (*f)(k);
      };
    }
  }

  void call(std::size_t k) noexcept {
    try {
      m_pass.invoke(m_pass.payload, k);
    } catch (...) {
      const std::lock_guard lock(m_error_mutex);
      if (!m_error) m_error = std::current_exception();
    }
  }

  void work(std::size_t k) {
    t_inside = this;
    // The generation the pool was made with, not a fresh load: a pass may already have started
    // before this thread runs, and it must not be mistaken for the last one seen.
    std::uint32_t seen = 0;
    for (;;) {
      wait_for_pass(seen);
      seen = m_pass.generation.load(std::memory_order_acquire);
      if (seen & stop_bit) return;
      if (k < m_pass.tasks) call(k);
      m_done.fetch_add(1, std::memory_order_acq_rel);
    }
  }

  void wait_for_pass(std::uint32_t seen) {
    using clock = std::chrono::steady_clock;
    const auto until = clock::now() + m_spin;
    for (unsigned spins = 1;; ++spins) {
      if (m_pass.generation.load(std::memory_order_acquire) != seen) return;
      if (spins < detail::tight_spins) continue;  // passes often come back to back
      detail::spin_pause();
      if (spins % 64 == 0 && clock::now() >= until) break;
    }
    // Sleeping is the slow path (a pass waits for a wake-up), so the plain portable tool will do.
    std::unique_lock lock(m_sleep_mutex);
    m_sleepers.fetch_add(1, std::memory_order_seq_cst);
    m_wake.wait(lock, [&] { return m_pass.generation.load(std::memory_order_seq_cst) != seen; });
    m_sleepers.fetch_sub(1, std::memory_order_relaxed);
  }

  void wake_all() {
    // Taking the mutex waits for a worker between its m_sleepers increment and its wait.
    const std::lock_guard lock(m_sleep_mutex);
    m_wake.notify_all();
  }

  void stop() noexcept {
    m_pass.generation.fetch_or(stop_bit, std::memory_order_seq_cst);
    wake_all();
    for (auto& w : m_workers)
      if (w.joinable()) w.join();
  }

  int m_threads;
  std::chrono::microseconds m_spin;
  std::vector<std::thread> m_workers;

  // The pass being run, in one cache line, so the line that tells a worker a pass has begun also
  // brings it the pass: written by run() before the generation is bumped, read by the workers after
  // they see the new generation (the fetch_add / acquire load pair orders them). The generation
  // counts passes in steps of 2; its lowest bit, once set, tells the workers to stop.
  static constexpr std::uint32_t pass_step = 2, stop_bit = 1;
  static constexpr std::size_t payload_alignment = 16;
  struct alignas(64) pass_line {
    std::atomic<std::uint32_t> generation{0};
    std::uint32_t tasks = 0;
    void (*invoke)(void*, std::size_t) = nullptr;
    alignas(payload_alignment) unsigned char payload[48];  // the task, or a pointer to it (publish)
  } m_pass;
  static_assert(sizeof(pass_line) == 64, "the pass must fit one cache line");
  // Passes acknowledged by the workers, counted up (never reset, so the caller writes nothing the
  // workers must fetch back): a pass is over when it reaches m_done_expected.
  alignas(64) std::atomic<std::size_t> m_done{0};
  alignas(64) std::size_t m_done_expected = 0;
  std::mutex m_run;
  std::exception_ptr m_error;
  std::mutex m_error_mutex;
  alignas(64) std::atomic<int> m_sleepers{0};
  std::mutex m_sleep_mutex;
  std::condition_variable m_wake;

  static inline thread_local const fork_join_pool* t_inside = nullptr;
};

}  // namespace diffusion
