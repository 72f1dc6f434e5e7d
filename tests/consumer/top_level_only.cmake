# SPDX-License-Identifier: MIT
# Included by the consumers that build diffusion as part of their own tree: a library pulled in
# with add_subdirectory or FetchContent must not build its tests, examples or benchmarks.
function(consumer_require_library_only diffusion_source_dir)
  foreach(part IN ITEMS TESTS EXAMPLES BENCHMARKS)
    if(DIFFUSION_BUILD_${part})
      message(FATAL_ERROR "DIFFUSION_BUILD_${part} is ${DIFFUSION_BUILD_${part}} in a consumer project; "
                          "it must default to OFF when diffusion is not the top-level project")
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${diffusion_source_dir} PROPERTY SUBDIRECTORIES)
  if(subdirs)
    message(FATAL_ERROR "diffusion added subdirectories to a consumer project: ${subdirs}")
  endif()
  if(TARGET diffusion_catch_main)
    message(FATAL_ERROR "diffusion created its test targets in a consumer project")
  endif()
  get_target_property(aliased diffusion::diffusion ALIASED_TARGET)
  if(NOT aliased STREQUAL "diffusion")
    message(FATAL_ERROR "diffusion::diffusion is not an alias of the diffusion target (got '${aliased}')")
  endif()
endfunction()

# Read here, not inside the function, where it would name the caller's directory.
set(consumer_main ${CMAKE_CURRENT_LIST_DIR}/main.cpp)

# The consumer executable lands in <build>/bin under every generator; `$<0:>` stops
# multi-config generators from appending a per-configuration directory.
function(consumer_add_program)
  add_executable(consumer ${consumer_main})
  target_link_libraries(consumer PRIVATE diffusion::diffusion)
  target_compile_options(consumer PRIVATE -Wall -Wextra -Wpedantic)
  set_target_properties(consumer PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin$<0:>)
endfunction()
