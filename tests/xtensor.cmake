# SPDX-License-Identifier: MIT
# The xtensor backend's tests (tests/backend/xtensor.test.cpp, tests/sampler/xtensor_samplers.test.cpp)
# need xtensor; they are built only where it is found (STYLE.md B8), and skipped otherwise.
#
# With xsimd (DIFFUSION_XTENSOR_USE_XSIMD, on by default where xsimd is found) xtensor evaluates
# assignments with SIMD batches. The backend test is also built without it, as
# test_backend_xtensor_scalar, so both evaluation paths are checked against the reference backend,
# and so is the samplers' test, whose allocation checks run there too (see below).

set(diffusion_xtensor_tests test_backend_xtensor test_sampler_xtensor_samplers test_conformance_samplers)
set(diffusion_xtensor_ctest_names backend_xtensor sampler_xtensor_samplers conformance_samplers)

find_package(xtensor 0.24 CONFIG QUIET)
if(NOT xtensor_FOUND)
  message(STATUS "diffusion: xtensor not found; the xtensor backend tests are skipped")
  foreach(target IN LISTS diffusion_xtensor_tests)
    if(TARGET ${target})
      set_target_properties(${target} PROPERTIES EXCLUDE_FROM_ALL TRUE)
    endif()
  endforeach()
  foreach(name IN LISTS diffusion_xtensor_ctest_names)
    if(TEST ${name})
      set_tests_properties(${name} PROPERTIES DISABLED TRUE)
    endif()
  endforeach()
  return()
endif()

find_package(xsimd CONFIG QUIET)
option(DIFFUSION_XTENSOR_USE_XSIMD "Build the xtensor tests with XTENSOR_USE_XSIMD (needs xsimd)" ${xsimd_FOUND})
if(DIFFUSION_XTENSOR_USE_XSIMD AND NOT xsimd_FOUND)
  message(WARNING "diffusion: DIFFUSION_XTENSOR_USE_XSIMD is on but xsimd was not found; building without it")
  set(DIFFUSION_XTENSOR_USE_XSIMD OFF)
endif()

foreach(target IN LISTS diffusion_xtensor_tests)
  if(TARGET ${target})
    target_link_libraries(${target} PRIVATE xtensor)
    if(DIFFUSION_XTENSOR_USE_XSIMD)
      target_link_libraries(${target} PRIVATE xsimd)
      target_compile_definitions(${target} PRIVATE XTENSOR_USE_XSIMD)
    endif()
  endif()
endforeach()

# The same backend test without SIMD evaluation (only worth a second binary when the first uses it).
if(DIFFUSION_XTENSOR_USE_XSIMD AND TARGET test_backend_xtensor)
  add_executable(test_backend_xtensor_scalar ${CMAKE_CURRENT_SOURCE_DIR}/backend/xtensor.test.cpp)
  target_link_libraries(test_backend_xtensor_scalar PRIVATE diffusion_catch_main xtensor)
  diffusion_warnings(test_backend_xtensor_scalar)
  target_compile_options(test_backend_xtensor_scalar PRIVATE -ffp-contract=off)
  add_test(NAME backend_xtensor_scalar COMMAND test_backend_xtensor_scalar)
endif()

# The samplers' allocation checks on xtensor without xsimd as well: with it, xtensor's storage
# comes from xsimd::aligned_allocator (posix_memalign), which the tests' operator new counter never
# sees, so those checks could not fail there.
if(DIFFUSION_XTENSOR_USE_XSIMD AND TARGET test_sampler_xtensor_samplers)
  add_executable(test_sampler_xtensor_samplers_scalar ${CMAKE_CURRENT_SOURCE_DIR}/sampler/xtensor_samplers.test.cpp)
  target_link_libraries(test_sampler_xtensor_samplers_scalar PRIVATE diffusion_catch_main xtensor)
  diffusion_warnings(test_sampler_xtensor_samplers_scalar)
  target_compile_options(test_sampler_xtensor_samplers_scalar PRIVATE -ffp-contract=off)
  add_test(NAME sampler_xtensor_samplers_allocations_scalar
           COMMAND test_sampler_xtensor_samplers_scalar "[allocation]")
endif()
