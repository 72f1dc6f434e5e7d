# SPDX-License-Identifier: MIT
# Consumer tests: three small projects under tests/consumer use diffusion the three ways a user
# would, and each builds and runs tests/consumer/main.cpp.
#   consumer_find_package     find_package(diffusion CONFIG) against `cmake --install` of this tree
#   consumer_add_subdirectory add_subdirectory(<source dir>)
#   consumer_fetchcontent     FetchContent with SOURCE_DIR (no network)
# The last two also check that tests, examples and benchmarks stay off below the top level.

set(diffusion_consumer_dir ${CMAKE_CURRENT_BINARY_DIR}/consumer)
set(diffusion_consumer_prefix ${diffusion_consumer_dir}/prefix)
set(diffusion_consumer_common
    -DGENERATOR=${CMAKE_GENERATOR} -DCXX=${CMAKE_CXX_COMPILER} -DMAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}
    -DCONFIG=$<CONFIG>)

add_test(NAME consumer_install
         COMMAND ${CMAKE_COMMAND} -DACTION=install -DBUILD_DIR=${PROJECT_BINARY_DIR}
                 -DPREFIX=${diffusion_consumer_prefix} -DCONFIG=$<CONFIG>
                 -P ${CMAKE_CURRENT_SOURCE_DIR}/consumer/run.cmake)
set_tests_properties(consumer_install PROPERTIES FIXTURES_SETUP diffusion_installed)

add_test(NAME consumer_find_package
         COMMAND ${CMAKE_COMMAND} -DACTION=consumer ${diffusion_consumer_common}
                 -DSOURCE=${CMAKE_CURRENT_SOURCE_DIR}/consumer/find_package
                 -DBINARY=${diffusion_consumer_dir}/find_package -DPREFIX=${diffusion_consumer_prefix}
                 -P ${CMAKE_CURRENT_SOURCE_DIR}/consumer/run.cmake)
set_tests_properties(consumer_find_package PROPERTIES FIXTURES_REQUIRED diffusion_installed)

foreach(kind IN ITEMS add_subdirectory fetchcontent)
  add_test(NAME consumer_${kind}
           COMMAND ${CMAKE_COMMAND} -DACTION=consumer ${diffusion_consumer_common}
                   -DSOURCE=${CMAKE_CURRENT_SOURCE_DIR}/consumer/${kind}
                   -DBINARY=${diffusion_consumer_dir}/${kind} -DDIFFUSION_SOURCE_DIR=${PROJECT_SOURCE_DIR}
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/consumer/run.cmake)
endforeach()

set_tests_properties(consumer_install consumer_find_package consumer_add_subdirectory consumer_fetchcontent
                     PROPERTIES LABELS consumer TIMEOUT 600)
