# Snippets that must not compile: each tests/compile_fail/<name>.cpp carries a line
# `// expect: <words>`; ctest checks that compiling it fails and that the compiler's message
# contains those words (tests/compile_fail/check.cmake).
file(GLOB diffusion_compile_fail_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/compile_fail/*.cpp)
get_target_property(diffusion_eigen_includes Eigen3::Eigen INTERFACE_INCLUDE_DIRECTORIES)
foreach(src IN LISTS diffusion_compile_fail_sources)
  get_filename_component(name ${src} NAME_WE)
  add_test(NAME compile_fail_${name}
           COMMAND ${CMAKE_COMMAND} -DCOMPILER=${CMAKE_CXX_COMPILER} -DSOURCE=${src}
                   -DINCLUDE_DIR=${PROJECT_SOURCE_DIR}/include "-DSYSTEM_INCLUDE_DIRS=${diffusion_eigen_includes}"
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/compile_fail/check.cmake)
  set_tests_properties(compile_fail_${name} PROPERTIES LABELS compile_fail)
endforeach()
