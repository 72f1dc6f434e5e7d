// SPDX-License-Identifier: MIT
// A fork-join pool for the backends' elementwise passes: the caller and n - 1 workers each run one
// range of a pass and meet again at its end. Workers that have just finished a pass spin for a
// short while before they sleep, so a sampler loop that runs pass after pass never waits for the
// operating system to wake a thread (measured on the project's 2-core guest: ~35 us per fork-join
// through Eigen's ThreadPool, whose workers sleep, against a DDIM step of 5 us at 64K elements;
// OpenMP's spinning workers made the same split pay off from ~64K elements, PERF-BASELINE.md).
#pragma once

#include <atomic>
#include <bit>
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
/// wake-up. The price is CPU time burnt by idle workers for up to `spin` after every pass
/// (`spin` = 0: none).
///
/// A pass never waits for a worker that was asleep when it began: it is a "claiming" pass, in
/// which a worker claims its task (an atomic bit) and the caller runs the tasks still unclaimed
/// when task 0 ends. Waiting would cost more than the pass: a wake-up takes 45-50 us on the
/// project's 2-core guest, and a DDIM step over 64K elements 6 us on one thread, so in a sampler
/// loop whose model call outlasts `spin` every step would pay it (docs/PERFORMANCE.md, "After a
/// model call"). Sleeping workers are woken only
/// - by a long pass (run's `long_pass`), which they join late if they come in time, and
/// - by a loop of passes (8 in a row, each within twice `spin` of the one before, found a worker
///   asleep): that pass waits for them, and they spin from then on.
/// A woken worker leaves a short claiming pass to the caller (joining late, with the data in the
/// caller's cache, takes longer than the pass) and spins for the next. Claiming needs one bit per
/// worker task: a pass of more than 33 tasks waits for its workers.
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
  void run(std::size_t tasks, Task& task, bool long_pass = true) {
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
    // A pass that finds a worker asleep does not wait for it ("claiming"): this thread runs the
    // workers' tasks still unclaimed when task 0 ends. It wakes the sleepers only for a long pass
    // (they join it late) or a loop of passes (then it waits for them, as every other pass
    // does, and they spin from then on). Claiming needs a bit per worker task: 33 threads at most.
    // At most max_claiming_run claiming passes in a row: a sleeping worker skips them unseen, and
    // a pass that waits for every worker brings each up to date before its generation (29 bits
    // of count) could wrap round to the one it last saw, when it would sleep through a pass that
    // counts on it.
    const bool claiming = tasks <= 33 && m_claiming_run < max_claiming_run &&
                          m_sleepers.load(std::memory_order_seq_cst) > 0 && (long_pass || !passes_frequent());
    m_claiming_run = claiming ? m_claiming_run + 1 : 0;
    m_generation = ((m_generation + pass_step) & ~(long_bit | claiming_bit)) | (long_pass ? long_bit : 0) |
                   (claiming ? claiming_bit : 0);
    // High half: the claim bits of tasks 1 .. tasks - 1 when claiming, else the number of tasks.
    const std::uint64_t high = claiming ? (std::uint64_t{1} << (tasks - 1)) - 1 : tasks;
    // seq_cst with the workers' m_sleepers increment: either a worker about to sleep sees this
    // pass before it sleeps, or this thread sees it counted (and, unless claiming, wakes it).
    m_pass.state.store(high << 32 | m_generation, std::memory_order_seq_cst);
    if (claiming ? long_pass : m_sleepers.load(std::memory_order_seq_cst) > 0) wake_all();

    const fork_join_pool* const outer = t_inside;
    t_inside = this;
    call(0);
    // Unless claiming, every worker acknowledges the pass, even one without a task in it: then
    // no worker can still be reading its fields when the next pass writes them. When claiming,
    // only a worker that has claimed a task reads them, and acknowledges it.
    std::size_t acks = m_workers.size();
    if (claiming) {
      std::uint64_t open = m_pass.state.fetch_and(0xffff'ffffu, std::memory_order_acq_rel) >> 32;
      acks = tasks - 1 - static_cast<std::size_t>(std::popcount(open));
      for (; open != 0; open &= open - 1) call(1 + static_cast<std::size_t>(std::countr_zero(open)));
    }
    t_inside = outer;
    const std::size_t done = m_done_expected += acks;
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

  /// Whether the last `frequent_passes` passes that found a worker asleep each began within twice
  /// the spin of the one before: a loop of passes, not the few of one sampler step after its model
  /// call, which are over before a woken worker could help. Read only when a worker sleeps.
  bool passes_frequent() noexcept {
    constexpr unsigned frequent_passes = 8;
    const auto now = std::chrono::steady_clock::now();
    m_frequent_run = now - m_last_asleep <= 2 * m_spin ? m_frequent_run + 1 : 0;
    m_last_asleep = now;
    return m_frequent_run >= frequent_passes;
  }

  /// Worker k's claim on its task of the claiming pass of generation g.
  bool claim(std::size_t k, std::uint32_t g) noexcept {
    if (k > 32) return false;  // a claiming pass has at most 33 tasks
    const std::uint64_t bit = std::uint64_t{1} << (32 + k - 1);
    std::uint64_t s = m_pass.state.load(std::memory_order_relaxed);
    while (static_cast<std::uint32_t>(s) == g && (s & bit) != 0)
      if (m_pass.state.compare_exchange_weak(s, s & ~bit, std::memory_order_acq_rel, std::memory_order_relaxed))
        return true;
    return false;
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
      const auto [state, woken] = wait_for_pass(seen);
      seen = static_cast<std::uint32_t>(state);
      if (seen & stop_bit) return;
      if (seen & claiming_bit) {
        // A short pass it was asleep for it leaves to the caller, whose core holds the data:
        // joining late takes longer than the pass. It claims a long one, or one it saw awake.
        if ((woken && (seen & long_bit) == 0) || !claim(k, seen)) continue;
        call(k);
      } else if (k < (state >> 32)) {
        call(k);
      }
      m_done.fetch_add(1, std::memory_order_release);
    }
  }

  struct pass_seen {
    std::uint64_t state;
    bool woken;  // it slept, counted, before the pass began
  };

  /// The pass state once a pass after generation `seen` has begun.
  pass_seen wait_for_pass(std::uint32_t seen) {
    using clock = std::chrono::steady_clock;
    const auto until = clock::now() + m_spin;
    for (unsigned spins = 1;; ++spins) {
      if (const auto s = m_pass.state.load(std::memory_order_acquire); static_cast<std::uint32_t>(s) != seen)
        return {s, false};
      if (spins < detail::tight_spins) continue;  // passes often come back to back
      detail::spin_pause();
      if (spins % 64 == 0 && clock::now() >= until) break;
    }
    // Sleeping is the slow path, so the plain portable tool will do.
    std::unique_lock lock(m_sleep_mutex);
    m_sleepers.fetch_add(1, std::memory_order_seq_cst);
    const auto begun = [&] { return static_cast<std::uint32_t>(m_pass.state.load(std::memory_order_seq_cst)) != seen; };
    // Begun before it was counted: the caller may not have seen it asleep.
    const bool counted_first = !begun();
    if (counted_first) m_wake.wait(lock, begun);
    m_sleepers.fetch_sub(1, std::memory_order_relaxed);
    return {m_pass.state.load(std::memory_order_acquire), counted_first};
  }

  void wake_all() {
    // Taking the mutex waits for a worker between its m_sleepers increment and its wait.
    const std::lock_guard lock(m_sleep_mutex);
    m_wake.notify_all();
  }

  void stop() noexcept {
    m_pass.state.fetch_or(stop_bit, std::memory_order_seq_cst);
    wake_all();
    for (auto& w : m_workers)
      if (w.joinable()) w.join();
  }

  int m_threads;
  std::chrono::microseconds m_spin;
  std::vector<std::thread> m_workers;

  // The pass being run, in one cache line, so the line that tells a worker a pass has begun also
  // brings it the pass: written by run() before it stores the new state (seq_cst, so a release),
  // read by the workers after they load it (acquire) or claim in it (an acq_rel CAS). The
  // generation counts passes in steps of pass_step; the bits below are the pass's flags, and
  // stop_bit, once set, tells the workers to stop.
  static constexpr std::uint32_t stop_bit = 1, long_bit = 2, claiming_bit = 4, pass_step = 8;
  static constexpr std::uint32_t max_claiming_run = std::uint32_t{1} << 20;
  static constexpr std::size_t payload_alignment = 16;
  struct alignas(64) pass_line {
    // Low half: the generation, counting passes in steps of pass_step, with the pass's flags in
    // its low bits (stop_bit, once set, tells the workers to stop). High half: see run().
    std::atomic<std::uint64_t> state{0};
    void (*invoke)(void*, std::size_t) = nullptr;
    alignas(payload_alignment) unsigned char payload[48];  // the task, or a pointer to it (publish)
  } m_pass;
  static_assert(sizeof(pass_line) == 64, "the pass must fit one cache line");
  // Passes acknowledged by the workers, counted up (never reset, so the caller writes nothing the
  // workers must fetch back): a pass is over when it reaches m_done_expected.
  alignas(64) std::atomic<std::size_t> m_done{0};
  // The caller's own line (the workers read m_spin every pass: nothing run() writes may share its
  // line). Guarded by m_run: the expected count, the last generation published, passes_frequent's
  // state.
  alignas(64) std::size_t m_done_expected = 0;
  std::uint32_t m_generation = 0;
  unsigned m_frequent_run = 0;
  std::uint32_t m_claiming_run = 0;
  std::chrono::steady_clock::time_point m_last_asleep{};
  std::mutex m_run;
  std::exception_ptr m_error;
  std::mutex m_error_mutex;
  alignas(64) std::atomic<int> m_sleepers{0};
  std::mutex m_sleep_mutex;
  std::condition_variable m_wake;

  static inline thread_local const fork_join_pool* t_inside = nullptr;
};

}  // namespace diffusion
