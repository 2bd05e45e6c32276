# ckpt_add_format_plugin(NAME SOURCES src... [LIBRARIES libs...] [OUTPUT_DIR dir] [TARGET target]
#                        [NO_MANIFEST] [NO_INSTALL])
#
# Builds the MODULE library ckpt_<NAME>.so with hidden visibility and, after each build, writes
# its manifest ckpt_<NAME>.ckpt-plugin.json beside it from the library's own descriptor (so the
# two can never disagree). The target is ckpt_<NAME> unless TARGET names another (for building
# one plugin twice, e.g. against an older ABI header). OUTPUT_DIR defaults to
# CKPT_BUILD_PLUGIN_DIR, else <build>/plugins: point CKPT_PLUGIN_PATH there to use the plugin
# without installing it. Installed into CKPT_INSTALL_PLUGIN_DIR unless NO_INSTALL.
#
# Works in ckpt's own tree and, after find_package(ckpt), in any other project.
# Builds TARGET as code that ends up inside a plugin module: position independent, hidden
# symbols (a plugin exports its entry point only) and, with g++, no GNU unique symbols, which
# would pin the module in memory so that unloading it would not unload. For the format plugins
# and for the static libraries linked into them (the SDK's helpers, plugins/common).
function(ckpt_build_as_plugin_code TARGET)
  set_target_properties(${TARGET} PROPERTIES
    POSITION_INDEPENDENT_CODE ON
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${TARGET} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fno-gnu-unique>)
  endif()
endfunction()

function(ckpt_add_format_plugin NAME)
  cmake_parse_arguments(P "NO_MANIFEST;NO_INSTALL" "OUTPUT_DIR;TARGET" "SOURCES;LIBRARIES" ${ARGN})
  set(file_name ckpt_${NAME})
  set(target ${file_name})
  if(P_TARGET)
    set(target ${P_TARGET})
  endif()
  if(NOT P_OUTPUT_DIR)
    if(CKPT_BUILD_PLUGIN_DIR)
      set(P_OUTPUT_DIR ${CKPT_BUILD_PLUGIN_DIR})
    else()
      set(P_OUTPUT_DIR ${CMAKE_BINARY_DIR}/plugins)
    endif()
  endif()
  set(install_dir ${CKPT_INSTALL_PLUGIN_DIR})
  if(NOT install_dir)
    set(install_dir lib/ckpt/plugins)
  endif()
  # In ckpt's tree the manifest tool is built here; elsewhere it comes with the installed package.
  if(TARGET ckpt_manifest_tool)
    set(manifest_tool ckpt_manifest_tool)
  elseif(TARGET ckpt::manifest_tool)
    set(manifest_tool ckpt::manifest_tool)
  elseif(NOT P_NO_MANIFEST)
    message(FATAL_ERROR "ckpt_add_format_plugin(${NAME}): no manifest tool; find_package(ckpt) first")
  endif()

  add_library(${target} MODULE ${P_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    SUFFIX ".so"
    OUTPUT_NAME ${file_name}
    LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIR})
  ckpt_build_as_plugin_code(${target})
  # ckpt::sdk brings the SDK's headers and its static helpers (ckpt::sdk_static), built as this
  # module is: hidden, position independent, no GNU unique symbols.
  target_link_libraries(${target} PRIVATE ckpt::sdk ${P_LIBRARIES})
  target_link_options(${target} PRIVATE -Wl,--no-undefined)
  if(NOT P_NO_MANIFEST)
    add_custom_command(TARGET ${target} POST_BUILD
      COMMAND ${manifest_tool} $<TARGET_FILE:${target}>
              ${P_OUTPUT_DIR}/${file_name}.ckpt-plugin.json
      COMMENT "Writing the manifest of ${file_name}"
      VERBATIM)
    if(TARGET ckpt_manifest_tool)
      add_dependencies(${target} ckpt_manifest_tool)
    endif()
  endif()
  if(NOT P_NO_INSTALL)
    # Installed (in-tree) plugins are the ones the test suite runs the conformance kit on.
    set_property(GLOBAL APPEND PROPERTY CKPT_IN_TREE_PLUGINS ${target})
    install(TARGETS ${target} LIBRARY DESTINATION ${install_dir})
    if(NOT P_NO_MANIFEST)
      install(FILES ${P_OUTPUT_DIR}/${file_name}.ckpt-plugin.json DESTINATION ${install_dir})
    endif()
  endif()
endfunction()
