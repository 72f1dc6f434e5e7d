# SPDX-License-Identifier: MIT
# Sanitizers for the project's own targets (tests, examples, benchmarks): DIFFUSION_SANITIZE holds
# the list given to -fsanitize= (e.g. address,undefined), empty for none. diffusion_warnings()
# calls diffusion_sanitizers() on every target it sets up, so no own target is left uninstrumented.
#
# Any sanitizer finding ends the program with a non-zero exit, so the test that hit it fails:
#   -fno-sanitize-recover=all  UBSan aborts at the first finding instead of printing and going on
#                              (ASan never recovers unless asked to).
#   -fno-omit-frame-pointer    complete stack traces from the fast frame-pointer unwinder.
# Run-time options (ASAN_OPTIONS, UBSAN_OPTIONS) come from the environment: scripts/test sets them
# for ctest; a binary run by hand gets the defaults, which also stop at the first finding.
include_guard(GLOBAL)

# Functions are global but variables are not: the flags are recomputed from the cache variable.
function(diffusion_sanitize_flags out)
  if(DIFFUSION_SANITIZE STREQUAL "")
    set(${out} "" PARENT_SCOPE)
  else()
    set(${out} -fsanitize=${DIFFUSION_SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer PARENT_SCOPE)
  endif()
endfunction()

# Checked once, at the first include, so a bad value fails the configure step with the reason
# rather than the first link: the compiler may not know a name, or the sanitizer's run-time
# library (libasan/libubsan for g++, compiler-rt for clang++) may not be installed.
if(NOT DIFFUSION_SANITIZE STREQUAL "")
  if(NOT DIFFUSION_SANITIZE MATCHES "^[a-z-]+(,[a-z-]+)*$")
    message(FATAL_ERROR "DIFFUSION_SANITIZE must be a comma-separated list of sanitizer names as for "
                        "-fsanitize= (e.g. address,undefined), got '${DIFFUSION_SANITIZE}'")
  endif()
  diffusion_sanitize_flags(diffusion_flags)
  include(CheckCXXSourceCompiles)
  list(JOIN diffusion_flags " " diffusion_shown)
  set(CMAKE_REQUIRED_FLAGS ${diffusion_shown})
  set(CMAKE_REQUIRED_LINK_OPTIONS ${diffusion_flags})
  set(CMAKE_REQUIRED_QUIET ON)
  string(MAKE_C_IDENTIFIER "DIFFUSION_SANITIZE_WORKS_${DIFFUSION_SANITIZE}" diffusion_result)
  check_cxx_source_compiles("int main() { return 0; }" ${diffusion_result})
  unset(CMAKE_REQUIRED_FLAGS)
  unset(CMAKE_REQUIRED_LINK_OPTIONS)
  unset(CMAKE_REQUIRED_QUIET)
  if(NOT ${diffusion_result})
    message(FATAL_ERROR "DIFFUSION_SANITIZE=${DIFFUSION_SANITIZE}: ${CMAKE_CXX_COMPILER} cannot compile and "
                        "link with ${diffusion_shown} (an unknown sanitizer name, or its run-time library is "
                        "not installed)")
  endif()
  message(STATUS "diffusion: own targets are built with ${diffusion_shown}")
endif()

# Compile and link flags, so the sanitizer run-time libraries come in with the instrumented code.
function(diffusion_sanitizers target)
  diffusion_sanitize_flags(flags)
  if(flags)
    target_compile_options(${target} PRIVATE ${flags})
    target_link_options(${target} PRIVATE ${flags})
  endif()
endfunction()
