// SPDX-License-Identifier: MIT
// The backends' fork-join pool: every task of every pass runs exactly once, on the thread it is
// meant for (or on the caller, when its worker was asleep); passes never overlap; exceptions reach
// the caller; sleeping and spinning workers both take part in passes without being waited for
// when asleep; nesting and concurrent callers neither deadlock nor mix passes. (The Eigen
// backend built on it is checked bit for bit against DefaultDevice in eigen.test.cpp and
// eigen_lincomb_noise.test.cpp, which build it from an eigen_thread_pool.)
#include <diffusion/backend/eigen.hpp>
#include <diffusion/backend/fork_join_pool.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <algorithm>
#include <array>
#include <cstdint>
#include <mutex>
#include <random>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

namespace dm = diffusion;
using namespace std::chrono_literals;

namespace {

// Runs `passes` passes of `tasks` tasks; each task adds its pass number to its own slot, so a lost,
// repeated or stale task shows in the sums.
void check_passes(dm::fork_join_pool& pool, std::size_t tasks, int passes) {
  std::vector<long long> sums(tasks, 0);
  std::atomic<int> running{0};
  std::atomic<int> overlap{0};
  for (int p = 1; p <= passes; ++p) {
    auto task = [&](std::size_t k) {
      running.fetch_add(1);
      sums[k] += p;
      if (running.load() > static_cast<int>(tasks)) overlap.fetch_add(1);
      running.fetch_sub(1);
    };
    pool.run(tasks, task);
    REQUIRE(running.load() == 0);  // run() returned only after every task ended
  }
  const long long expected = static_cast<long long>(passes) * (passes + 1) / 2;
  for (std::size_t k = 0; k < tasks; ++k) CHECK(sums[k] == expected);
  CHECK(overlap.load() == 0);
}

}  // namespace

// Long enough that no worker stops spinning during a test: a spinning worker runs its own task.
constexpr auto spin_throughout = std::chrono::microseconds(std::chrono::minutes(10));

TEST_CASE("fork_join_pool runs task 0 on the caller and every other task on its own spinning worker",
          "[backend][threads]") {
  const int threads = GENERATE(1, 2, 3);
  dm::fork_join_pool pool{threads, spin_throughout};
  CHECK(pool.num_threads() == threads);
  std::vector<std::thread::id> ids(static_cast<std::size_t>(threads));
  auto task = [&](std::size_t k) { ids[k] = std::this_thread::get_id(); };
  for (int pass = 0; pass < 3; ++pass) {
    pool.run(static_cast<std::size_t>(threads), task);
    CHECK(ids[0] == std::this_thread::get_id());
    CHECK(std::set<std::thread::id>(ids.begin(), ids.end()).size() == static_cast<std::size_t>(threads));
  }
}

TEST_CASE("fork_join_pool: every task of every pass runs exactly once", "[backend][threads]") {
  SECTION("spinning workers, back-to-back passes") {
    dm::fork_join_pool pool{2};
    check_passes(pool, 2, 20000);
  }
  SECTION("workers that sleep at once (spin 0): every pass wakes them, or runs their tasks") {
    dm::fork_join_pool pool{2, 0us};
    check_passes(pool, 2, 2000);
  }
  SECTION("more than 33 threads: passes wait for every worker, as they cannot be claimed") {
    dm::fork_join_pool pool{40, 0us};
    check_passes(pool, 40, 50);
    check_passes(pool, 34, 50);
    check_passes(pool, 33, 50);
  }
  SECTION("passes with fewer tasks than threads, and with none") {
    dm::fork_join_pool pool{3};
    check_passes(pool, 2, 2000);
    check_passes(pool, 1, 100);
    check_passes(pool, 3, 2000);
    int calls = 0;
    auto none = [&](std::size_t) { ++calls; };
    pool.run(0, none);
    CHECK(calls == 0);
  }
  SECTION("passes after the workers went to sleep") {
    dm::fork_join_pool pool{2, 10us};
    for (int round = 0; round < 5; ++round) {
      check_passes(pool, 2, 10);
      std::this_thread::sleep_for(2ms);
    }
  }
}

TEST_CASE("fork_join_pool: passes at irregular intervals around the spin", "[backend][threads]") {
  // Gaps below, at and above the spin (20 us here), with 1 or 2 workers' tasks, short and long
  // passes: workers spin, go to sleep, are left asleep, woken for a long pass or a loop of
  // passes, claim, skip, and pick up passes in every state in between. Every task must run
  // exactly once, and no pass may wait for a worker that will not come (a hang here is one: a
  // prototype whose woken worker skipped a pass the caller counted on hung in 3 of 6 runs).
  dm::fork_join_pool pool{3, 20us};
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> gap_us(0, 50);
  std::vector<long long> sums(3, 0);
  long long want = 0;
  for (int p = 1; p <= 20000; ++p) {
    const auto gap = std::chrono::microseconds(p % 7 == 0 ? 0 : gap_us(rng));
    for (const auto until = std::chrono::steady_clock::now() + gap; std::chrono::steady_clock::now() < until;) {
    }
    const std::size_t tasks = 2 + static_cast<std::size_t>(p % 2);
    auto task = [&sums, p](std::size_t k) { sums[k] += p; };
    pool.run(tasks, task, p % 5 == 0);
    want += p;
    if (tasks == 2) sums[2] += p;
  }
  CHECK(sums == std::vector<long long>{want, want, want});
}

TEST_CASE("fork_join_pool: after a pause the caller runs the tasks of workers that have not started",
          "[backend][threads]") {
  // A pass after the workers' spin would otherwise wait for a sleeping worker to run again (tens
  // of microseconds, longer than a short pass). Passes 1 ms apart are no loop: a short one leaves
  // the worker asleep and the caller runs task 1 (in all 50 passes on an idle machine; under load
  // a worker that has not yet run since its last pass is not asleep, and runs its task: 49 of 50
  // with two busy loops beside the test). A long one wakes it, and it joins if it comes in time
  // (task 0 is trivial here, so it rarely does). For both, every task runs exactly once.
  const bool long_pass = GENERATE(false, true);
  dm::fork_join_pool pool{2, 10us};
  const auto caller = std::this_thread::get_id();
  std::vector<std::thread::id> ran(2);
  std::vector<int> calls(2, 0);
  int task1_on_caller = 0;
  for (int pass = 0; pass < 50; ++pass) {
    std::this_thread::sleep_for(1ms);
    auto task = [&](std::size_t k) {
      ran[k] = std::this_thread::get_id();
      ++calls[k];
    };
    pool.run(2, task, long_pass);
    CHECK(ran[0] == caller);
    if (ran[1] == caller) ++task1_on_caller;
  }
  CHECK(calls == std::vector<int>{50, 50});
  INFO("passes whose task 1 ran on the caller: " << task1_on_caller);
  if (!long_pass) CHECK(task1_on_caller >= 1);
}

TEST_CASE("fork_join_pool: a sleeping worker takes part in a long pass", "[backend][threads]") {
  // Task 0 lasts until task 1 has started (or 10 s): the worker, woken by the long pass, must come
  // and claim task 1 rather than leave it to the caller.
  dm::fork_join_pool pool{2, 0us};
  for (int pass = 0; pass < 5; ++pass) {
    std::this_thread::sleep_for(2ms);
    std::atomic<bool> started{false};
    std::thread::id ran1;
    auto task = [&](std::size_t k) {
      if (k == 1) {
        ran1 = std::this_thread::get_id();
        started.store(true);
        return;
      }
      const auto until = std::chrono::steady_clock::now() + 10s;
      while (!started.load() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    };
    pool.run(2, task);
    CHECK(ran1 != std::this_thread::get_id());
  }
}

TEST_CASE("fork_join_pool: a loop of short passes wakes a sleeping worker, which then takes part",
          "[backend][threads]") {
  // Passes ~20 us apart (a sampler loop with a cheap model) after the worker went to sleep: the
  // first short passes leave it asleep and run on the caller; once they keep coming, one wakes it
  // and waits for it, and it spins from then on (200 ms here, so that a slow machine cannot put
  // it back to sleep): the last 1000 of 3000 passes must run task 1 on it.
  dm::fork_join_pool pool{2, std::chrono::microseconds(200ms)};
  std::this_thread::sleep_for(300ms);  // longer than the spin: the worker sleeps
  const auto caller = std::this_thread::get_id();
  std::thread::id ran1;
  auto task = [&](std::size_t k) {
    if (k == 1) ran1 = std::this_thread::get_id();
  };
  int on_worker = 0, first_on_caller = 0;
  for (int pass = 0; pass < 3000; ++pass) {
    for (const auto until = std::chrono::steady_clock::now() + 20us; std::chrono::steady_clock::now() < until;) {
    }
    pool.run(2, task, false);
    if (pass == 0 && ran1 == caller) ++first_on_caller;
    if (pass >= 2000 && ran1 != caller) ++on_worker;
  }
  CHECK(first_on_caller == 1);
  CHECK(on_worker == 1000);
}

TEST_CASE("fork_join_pool: tasks copied into the pass line and tasks referred to see the same values",
          "[backend][threads]") {
  // A small by-value task travels in the pass line (a copy); a larger one, a mutable one and one
  // that is not trivially copyable are called where they are. Each pass captures new values, so a
  // stale copy would show; the mutable one's own state must be the caller's afterwards.
  dm::fork_join_pool pool{2, GENERATE(0us, 100us)};
  std::vector<long long> out(2, 0);
  long long* const o = out.data();
  for (long long p = 1; p <= 200; ++p) {
    auto small = [o, p](std::size_t k) { o[k] += p; };  // 16 bytes
    pool.run(2, small);
    const std::array<long long, 8> big{p, p, p, p, p, p, p, p};  // 72 bytes with the pointer
    auto large = [o, big](std::size_t k) { o[k] += big[k]; };
    pool.run(2, large);
    const std::string text(static_cast<std::size_t>(p % 7), 'x');
    auto owning = [o, text](std::size_t k) { o[k] += static_cast<long long>(text.size()); };
    pool.run(2, owning);
  }
  long long want = 0;
  for (long long p = 1; p <= 200; ++p) want += 2 * p + p % 7;
  CHECK(out[0] == want);
  CHECK(out[1] == want);

  // Where each task is called: a small const-callable one through a copy (not at its own address),
  // a large one where it is.
  struct small_probe {
    const void** seen;
    void operator()(std::size_t k) const { seen[k] = this; }
  };
  struct large_probe {
    const void** seen;
    std::array<char, 64> padding{};
    void operator()(std::size_t k) const { seen[k] = this; }
  };
  const void* seen[2] = {nullptr, nullptr};
  small_probe small{seen};
  pool.run(2, small);
  CHECK(seen[0] != static_cast<const void*>(&small));
  CHECK(seen[0] == seen[1]);  // one copy, which both threads call
  large_probe large{seen};
  pool.run(2, large);
  CHECK(seen[0] == static_cast<const void*>(&large));
  CHECK(seen[1] == static_cast<const void*>(&large));

  // Trivially copyable and small, but not callable as const: called in place, so its state is
  // the caller's afterwards.
  struct counting {
    std::array<int, 2> seen{};
    void operator()(std::size_t k) { ++seen[k]; }
  } c;
  for (int pass = 0; pass < 3; ++pass) pool.run(2, c);
  CHECK(c.seen == std::array<int, 2>{3, 3});
}

TEST_CASE("fork_join_pool rethrows a task's exception on the caller and stays usable", "[backend][threads]") {
  dm::fork_join_pool pool{2};
  const std::size_t thrower = GENERATE(std::size_t{0}, std::size_t{1});
  std::atomic<int> ran{0};
  auto task = [&](std::size_t k) {
    ran.fetch_add(1);
    if (k == thrower) throw std::runtime_error("task " + std::to_string(k) + " failed");
  };
  CHECK_THROWS_WITH(pool.run(2, task), "task " + std::to_string(thrower) + " failed");
  CHECK(ran.load() == 2);  // the other task still ran to its end
  check_passes(pool, 2, 100);
}

TEST_CASE("fork_join_pool: a pass started inside a task runs on that thread", "[backend][threads]") {
  dm::fork_join_pool pool{2};
  std::vector<std::thread::id> inner(4);
  std::vector<std::thread::id> outer(2);
  auto task = [&](std::size_t k) {
    outer[k] = std::this_thread::get_id();
    auto nested = [&](std::size_t j) { inner[2 * k + j] = std::this_thread::get_id(); };
    pool.run(2, nested);
  };
  pool.run(2, task);
  for (std::size_t k = 0; k < 2; ++k) {
    CHECK(inner[2 * k] == outer[k]);
    CHECK(inner[2 * k + 1] == outer[k]);
  }
}

TEST_CASE("fork_join_pool serialises passes of concurrent callers", "[backend][threads]") {
  dm::fork_join_pool pool{2};
  std::atomic<int> in_pass{0};
  std::atomic<int> overlap{0};
  std::atomic<long long> total{0};
  auto caller = [&] {
    for (int p = 0; p < 2000; ++p) {
      auto task = [&](std::size_t) {
        if (in_pass.fetch_add(1) >= 2) overlap.fetch_add(1);
        total.fetch_add(1);
        in_pass.fetch_sub(1);
      };
      pool.run(2, task);
    }
  };
  std::thread other(caller);
  caller();
  other.join();
  CHECK(total.load() == 2 * 2 * 2000);
  CHECK(overlap.load() == 0);
}

TEST_CASE("fork_join_pool rejects bad arguments with the parameter, the value and the range", "[backend][threads]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_AS(dm::fork_join_pool(0), std::invalid_argument);
  CHECK_THROWS_WITH(dm::fork_join_pool(0), Contains("threads = 0") && Contains("at least 1"));
  CHECK_THROWS_WITH(dm::fork_join_pool(2, -1us), Contains("spin (microseconds) = -1") && Contains("at least 0"));
  dm::fork_join_pool pool{2};
  auto task = [](std::size_t) {};
  CHECK_THROWS_WITH(pool.run(3, task), Contains("tasks = 3") && Contains("num_threads() = 2"));
  CHECK_THROWS_WITH(dm::eigen_thread_pool(0), Contains("threads = 0"));
}

namespace {

// A noise source that records which thread fills which range (the backend's split is otherwise
// invisible: every split gives the same bits).
struct recording_source {
  struct call {
    std::size_t begin, end;
    std::thread::id thread;
  };
  mutable std::mutex mutex;
  mutable std::vector<call> calls;
  std::uint64_t draw_index() const noexcept { return 0; }
  std::uint64_t next_draw() noexcept { return 0; }
  void fill_normal_range(std::span<float> out, std::size_t, std::uint64_t, std::size_t begin, std::size_t end) const {
    for (std::size_t i = begin; i < end; ++i) out[i] = static_cast<float>(i);
    const std::lock_guard lock(mutex);
    calls.push_back({begin, end, std::this_thread::get_id()});
  }
};

}  // namespace

TEST_CASE("eigen_thread_pool: the backend splits its passes on its fork_join_pool", "[backend][threads]") {
  dm::eigen_thread_pool pool{2, spin_throughout};
  CHECK(pool.fork_join().num_threads() == 2);
  CHECK(pool.fork_join().spin() == spin_throughout);
  Eigen::Tensor<float, 2, Eigen::RowMajor> z(2, 50);

  SECTION("threshold 0: one range per thread, cut at a multiple of 16 elements") {
    const dm::eigen_backend<float, 2, Eigen::ThreadPoolDevice> be{pool, 0};
    recording_source source;
    be.fill_normal(z, source);
    REQUIRE(source.calls.size() == 2);
    std::sort(source.calls.begin(), source.calls.end(), [](auto& l, auto& r) { return l.begin < r.begin; });
    CHECK(source.calls[0].begin == 0);
    CHECK(source.calls[0].end == 64);
    CHECK(source.calls[0].thread == std::this_thread::get_id());
    CHECK(source.calls[1].begin == 64);
    CHECK(source.calls[1].end == 100);
    CHECK(source.calls[1].thread != std::this_thread::get_id());
    for (Eigen::Index i = 0; i < z.size(); ++i) REQUIRE(z.data()[i] == static_cast<float>(i));
  }
  SECTION("below the threshold: one range on the calling thread") {
    // fill_normal counts fill_pass_weight times its elements against the threshold.
    using backend = dm::eigen_backend<float, 2, Eigen::ThreadPoolDevice>;
    const backend be{pool, 101 * backend::fill_pass_weight};
    recording_source source;
    be.fill_normal(z, source);
    REQUIRE(source.calls.size() == 1);
    CHECK(source.calls[0].begin == 0);
    CHECK(source.calls[0].end == 100);
    CHECK(source.calls[0].thread == std::this_thread::get_id());
  }
}
