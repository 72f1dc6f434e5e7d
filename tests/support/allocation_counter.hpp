// SPDX-License-Identifier: MIT
// Counts heap allocations, for tests that prove a step loop allocates nothing. Including this
// header REPLACES the global operator new/delete of the test binary (every test file is its own
// executable), so include it from exactly one translation unit. Read the counter only between the
// calls under test (e.g. in an observer).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

// Under AddressSanitizer the runtime owns operator new: replacing it mixes its allocations with
// our free (alloc-dealloc mismatch). There the counter stays at 0 and the no-allocation checks hold
// vacuously; the Release configuration of scripts/test makes the real check.
#if defined(__SANITIZE_ADDRESS__)
#define DIFFUSION_TEST_COUNT_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DIFFUSION_TEST_COUNT_ALLOCATIONS 0
#endif
#endif
#ifndef DIFFUSION_TEST_COUNT_ALLOCATIONS
#define DIFFUSION_TEST_COUNT_ALLOCATIONS 1
#endif

namespace diffusion::test {

inline std::atomic<std::size_t> allocations{0};

namespace detail {
inline void* counted_allocate(std::size_t n) noexcept {
  ++allocations;
  return std::malloc(n == 0 ? 1 : n);
}
// noinline: g++ warns (-Wmismatched-new-delete) when it sees malloc and delete meet inline.
[[gnu::noinline]] inline void release(void* p) noexcept { std::free(p); }
}  // namespace detail

}  // namespace diffusion::test

#if DIFFUSION_TEST_COUNT_ALLOCATIONS
// Every form, the nothrow ones included (Catch2 uses them): with only some replaced, a sanitizer's
// own operator new would pair with this operator delete (alloc-dealloc mismatch).
void* operator new(std::size_t n) {
  if (void* p = diffusion::test::detail::counted_allocate(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return diffusion::test::detail::counted_allocate(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return diffusion::test::detail::counted_allocate(n);
}
void operator delete(void* p) noexcept { diffusion::test::detail::release(p); }
void operator delete[](void* p) noexcept { diffusion::test::detail::release(p); }
void operator delete(void* p, std::size_t) noexcept { diffusion::test::detail::release(p); }
void operator delete[](void* p, std::size_t) noexcept { diffusion::test::detail::release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { diffusion::test::detail::release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { diffusion::test::detail::release(p); }
#endif  // DIFFUSION_TEST_COUNT_ALLOCATIONS
