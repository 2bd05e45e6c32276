# What `cmake --install` puts in a prefix, and the CMake package that find_package(ckpt) reads:
#
#   bin/ckpt, bin/ckpt-conformance, bin/ckpt-manifest
#   include/ckpt/...                      the C ABI, sdk.hpp, the library's and the kit's headers
#   lib/libckpt.so*, lib/libckpt_conformance.a
#   lib/libckpt_sdk_static.a              the SDK's compiled helpers (read_file_at, the skeleton
#                                         codec), linked into every plugin through ckpt::sdk
#   lib/libckpt_train.so*                 the trainer, when built (CKPT_BUILD_TRAINER)
#   lib/ckpt/plugins/ckpt_<name>.so       the in-tree plugins and their manifests
#   lib/cmake/ckpt/                       ckptConfig.cmake, the exported targets, CkptPlugin.cmake
#                                         and CkptConformance.cmake
#
# Exported targets (namespace ckpt::): sdk and the sdk_static it links (exported from sdk/), ckpt,
# train, manifest_tool, cli, ckpt-conformance, and, in a file of its own because it needs
# GoogleTest, conformance. Included from the
# top-level CMakeLists.txt once every target exists.
include(CMakePackageConfigHelpers)

set(CKPT_INSTALL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ckpt)

set_target_properties(ckpt_sdk PROPERTIES EXPORT_NAME sdk)
set_target_properties(ckpt_manifest_tool PROPERTIES EXPORT_NAME manifest_tool)
set_target_properties(ckpt_cli PROPERTIES EXPORT_NAME cli)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/sdk/include/ckpt ${PROJECT_SOURCE_DIR}/core/include/ckpt
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS ckpt_sdk EXPORT ckptTargets)
install(TARGETS ckpt EXPORT ckptTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
if(TARGET ckpt_train)
  set_target_properties(ckpt_train PROPERTIES EXPORT_NAME train)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/train/include/ckpt DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(TARGETS ckpt_train EXPORT ckptTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
install(TARGETS ckpt_manifest_tool ckpt_cli EXPORT ckptTargets
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

set(CKPT_HAS_CONFORMANCE OFF)
if(TARGET ckpt_conformance)
  set(CKPT_HAS_CONFORMANCE ON)
  set_target_properties(ckpt_conformance PROPERTIES EXPORT_NAME conformance)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/sdk/conformance/include/ckpt
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  # The program needs nothing at find_package time; the library needs GoogleTest.
  install(TARGETS ckpt-conformance EXPORT ckptTargets
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(TARGETS ckpt_conformance EXPORT ckptConformanceTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT ckptConformanceTargets NAMESPACE ckpt:: DESTINATION ${CKPT_INSTALL_CMAKE_DIR})
endif()

install(EXPORT ckptTargets NAMESPACE ckpt:: DESTINATION ${CKPT_INSTALL_CMAKE_DIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/ckptConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ckptConfig.cmake
  INSTALL_DESTINATION ${CKPT_INSTALL_CMAKE_DIR})
# 0.x: a minor release may change the C++ API (the C ABI has its own version).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ckptConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/ckptConfig.cmake
  ${PROJECT_BINARY_DIR}/ckptConfigVersion.cmake
  ${CMAKE_CURRENT_LIST_DIR}/CkptPlugin.cmake
  ${CMAKE_CURRENT_LIST_DIR}/CkptConformance.cmake
  DESTINATION ${CKPT_INSTALL_CMAKE_DIR})
