# Warnings for the project's own targets (tests, examples, benchmarks). Eigen comes in through its
# imported target, so its headers are system headers and only our code is checked.
function(diffusion_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)
endfunction()
