# SPDX-License-Identifier: MIT
# Driver for the consumer tests, run by ctest in script mode (cmake -P).
#
# -DACTION=install   -DBUILD_DIR=<our build tree> -DPREFIX=<dir> [-DCONFIG=<cfg>]
#     Installs the build tree into a fresh PREFIX.
# -DACTION=consumer  -DSOURCE=<consumer project> -DBINARY=<dir> -DGENERATOR=<g> -DCXX=<compiler>
#                    [-DMAKE_PROGRAM=<p>] [-DCONFIG=<cfg>] [-DPREFIX=<dir>] [-DDIFFUSION_SOURCE_DIR=<dir>]
#     Configures, builds and runs the consumer in a fresh BINARY and checks that it prints OK.
cmake_minimum_required(VERSION 3.20)

function(run what)
  string(JOIN " " shown ${ARGN})
  message(STATUS "${what}: ${shown}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

if(NOT CONFIG)
  set(CONFIG Release)
endif()

if(ACTION STREQUAL "install")
  file(REMOVE_RECURSE "${PREFIX}")
  run("install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${PREFIX}" --config "${CONFIG}")
  foreach(f IN ITEMS include/diffusion/diffusion.hpp include/diffusion/core.hpp)
    if(NOT EXISTS "${PREFIX}/${f}")
      message(FATAL_ERROR "the install is missing ${PREFIX}/${f}")
    endif()
  endforeach()
  message(STATUS "installed into ${PREFIX}")

elseif(ACTION STREQUAL "consumer")
  file(REMOVE_RECURSE "${BINARY}")
  set(options -G "${GENERATOR}" -DCMAKE_BUILD_TYPE=${CONFIG} -DCMAKE_CXX_COMPILER=${CXX})
  if(MAKE_PROGRAM)
    list(APPEND options -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
  endif()
  if(PREFIX)
    list(APPEND options -DCMAKE_PREFIX_PATH=${PREFIX} -DDIFFUSION_PREFIX=${PREFIX})
  endif()
  if(DIFFUSION_SOURCE_DIR)
    list(APPEND options -DDIFFUSION_SOURCE_DIR=${DIFFUSION_SOURCE_DIR})
  endif()
  run("configure" ${CMAKE_COMMAND} -S "${SOURCE}" -B "${BINARY}" ${options})
  run("build" ${CMAKE_COMMAND} --build "${BINARY}" --config "${CONFIG}")
  run("run" "${BINARY}/bin/consumer")
  message(STATUS "consumer printed: ${run_output}")
  if(NOT run_output MATCHES "^OK")
    message(FATAL_ERROR "the consumer ran but did not print OK")
  endif()

else()
  message(FATAL_ERROR "ACTION must be install or consumer, got '${ACTION}'")
endif()
