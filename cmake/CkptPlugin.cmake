# ckpt_add_format_plugin(NAME SOURCES src... [LIBRARIES libs...] [OUTPUT_DIR dir] [NO_MANIFEST])
#
# Builds the MODULE library ckpt_<NAME>.so with hidden visibility and, after each build, writes
# its manifest ckpt_<NAME>.ckpt-plugin.json beside it from the library's own descriptor (so the
# two can never disagree).
function(ckpt_add_format_plugin NAME)
  cmake_parse_arguments(P "NO_MANIFEST;NO_INSTALL" "OUTPUT_DIR" "SOURCES;LIBRARIES" ${ARGN})
  set(target ckpt_${NAME})
  if(NOT P_OUTPUT_DIR)
    set(P_OUTPUT_DIR ${CKPT_BUILD_PLUGIN_DIR})
  endif()
  add_library(${target} MODULE ${P_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${target}
    LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIR}
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_link_libraries(${target} PRIVATE ckpt_sdk ${P_LIBRARIES})
  # Unloading must really unload: without this, GNU unique symbols from inline statics pin
  # the library in memory forever.
  target_compile_options(${target} PRIVATE -fno-gnu-unique)
  target_link_options(${target} PRIVATE -Wl,--no-undefined)
  if(NOT P_NO_MANIFEST)
    add_custom_command(TARGET ${target} POST_BUILD
      COMMAND ckpt_manifest_tool $<TARGET_FILE:${target}>
              ${P_OUTPUT_DIR}/${target}.ckpt-plugin.json
      COMMENT "Writing the manifest of ${target}"
      VERBATIM)
    add_dependencies(${target} ckpt_manifest_tool)
  endif()
  if(NOT P_NO_INSTALL)
    # Installed (in-tree) plugins are the ones the test suite runs the conformance kit on.
    set_property(GLOBAL APPEND PROPERTY CKPT_IN_TREE_PLUGINS ${target})
    install(TARGETS ${target} LIBRARY DESTINATION ${CKPT_INSTALL_PLUGIN_DIR})
    if(NOT P_NO_MANIFEST)
      install(FILES ${P_OUTPUT_DIR}/${target}.ckpt-plugin.json DESTINATION ${CKPT_INSTALL_PLUGIN_DIR})
    endif()
  endif()
endfunction()
