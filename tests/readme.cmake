# SPDX-License-Identifier: MIT
# The README's quick start must compile and run: the ```cpp block right after the line
# `<!-- quickstart -->` in README.md is copied into the build tree at configure time and built as
# the executable readme_quickstart, which the test of the same name runs.

set(diffusion_readme ${PROJECT_SOURCE_DIR}/README.md)
set(diffusion_quickstart ${CMAKE_CURRENT_BINARY_DIR}/readme/quickstart.cpp)
# Editing the README re-runs the configure step, so the copy never goes stale.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${diffusion_readme})

set(diffusion_quickstart_error "")
if(NOT EXISTS ${diffusion_readme})
  set(diffusion_quickstart_error "README.md does not exist")
else()
  file(READ ${diffusion_readme} diffusion_readme_text)
  # The marker, optional blank lines, then the fence; the code ends at the first closing fence.
  string(REGEX MATCH "<!-- quickstart -->[ \t\r\n]*```cpp[^\n]*\n" diffusion_opening "${diffusion_readme_text}")
  if(diffusion_opening STREQUAL "")
    set(diffusion_quickstart_error "README.md has no ```cpp block right after a <!-- quickstart --> line")
  else()
    string(FIND "${diffusion_readme_text}" "${diffusion_opening}" diffusion_start)
    string(LENGTH "${diffusion_opening}" diffusion_opening_length)
    math(EXPR diffusion_start "${diffusion_start} + ${diffusion_opening_length}")
    string(SUBSTRING "${diffusion_readme_text}" ${diffusion_start} -1 diffusion_code)
    string(FIND "${diffusion_code}" "\n```" diffusion_end)
    if(diffusion_end EQUAL -1)
      set(diffusion_quickstart_error "the quick-start block in README.md has no closing ```")
    else()
      math(EXPR diffusion_end "${diffusion_end} + 1")
      string(SUBSTRING "${diffusion_code}" 0 ${diffusion_end} diffusion_code)
      # An unchanged snippet keeps its timestamp, so re-configuring does not rebuild it.
      set(diffusion_previous "")
      if(EXISTS ${diffusion_quickstart})
        file(READ ${diffusion_quickstart} diffusion_previous)
      endif()
      if(NOT diffusion_previous STREQUAL diffusion_code)
        file(WRITE ${diffusion_quickstart} "${diffusion_code}")
      endif()
    endif()
  endif()
endif()

if(diffusion_quickstart_error STREQUAL "")
  add_executable(readme_quickstart ${diffusion_quickstart})
  target_link_libraries(readme_quickstart PRIVATE diffusion::diffusion)
  diffusion_warnings(readme_quickstart)
  add_test(NAME readme_quickstart COMMAND readme_quickstart)
else()
  # Fail the test, not the whole configure step, so every other test still runs.
  message(WARNING "readme_quickstart: ${diffusion_quickstart_error}")
  add_test(NAME readme_quickstart
           COMMAND ${CMAKE_COMMAND} -E echo "readme_quickstart: ${diffusion_quickstart_error}")
  set_tests_properties(readme_quickstart PROPERTIES WILL_FAIL ON)
endif()
set_tests_properties(readme_quickstart PROPERTIES LABELS readme)
