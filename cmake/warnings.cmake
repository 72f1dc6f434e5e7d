# SPDX-License-Identifier: MIT
# Warnings for the project's own targets (tests, examples, benchmarks). Eigen comes in through its
# imported target, so its headers are system headers and only our code is checked.
# With DIFFUSION_WERROR every warning fails the build (the CI builds use it, with g++ and clang++).
# Every own target passes through here, so this is also where the sanitizers are attached.
include(${CMAKE_CURRENT_LIST_DIR}/sanitizers.cmake)

function(diffusion_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(DIFFUSION_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)
  diffusion_sanitizers(${target})
endfunction()
