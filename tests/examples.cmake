# SPDX-License-Identifier: MIT
# The tests of the examples' network, optimiser, data sets, distance and weights files
# (tests/examples/*.test.cpp) include the example headers as "common/...": they get examples/ on
# their include path.
file(GLOB diffusion_example_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/examples/*.test.cpp)
foreach(src IN LISTS diffusion_example_tests)
  get_filename_component(name ${src} NAME)
  string(REPLACE ".test.cpp" "" name ${name})
  if(TARGET test_examples_${name})
    target_include_directories(test_examples_${name} PRIVATE ${PROJECT_SOURCE_DIR}/examples)
  endif()
endforeach()
