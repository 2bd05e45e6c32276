# The web page (docs/web-page.md): its JSON API through the Router over real checkpoints (ckpt's
# and torch.save's, statistics against numpy), and the page in Debian's chromium, headless,
# against `ckpt view` on an ephemeral loopback port. Label: serve. Screenshots of the page go to
# ${CMAKE_CURRENT_BINARY_DIR}/screenshots.
add_executable(test_ui test_ui_api.cpp test_ui_stats.cpp test_ui_browser.cpp test_ui_folder.cpp test_ui_files.cpp test_ui_served.cpp)
target_link_libraries(test_ui PRIVATE ckpt_serve ckpt_train ckpt_registry ckpt ckpt_test_support nlohmann_json::nlohmann_json GTest::gtest_main)
# test_ui_files and test_ui_folder open checkpoints through the page's own code (serve/src);
# test_ui_served runs a real ModelServer (a model rebuilt by libckpt_train, the registry).
target_include_directories(test_ui PRIVATE ${PROJECT_SOURCE_DIR}/serve/src)
target_compile_definitions(test_ui PRIVATE
  CKPT_CLI="$<TARGET_FILE:ckpt_cli>"
  CKPT_UI_TEST_DIR="${CMAKE_CURRENT_SOURCE_DIR}"
  CKPT_UI_SCREENSHOTS="${CMAKE_CURRENT_BINARY_DIR}/screenshots")
# One translation unit, as test_serve: the files share their heavy headers (Beast, the page's code).
set_target_properties(test_ui PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 0)
add_dependencies(test_ui ckpt_cli ckpt_msgpack ckpt_json ckpt_pytorch ckpt_safetensors)
gtest_discover_tests(test_ui DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 900 LABELS serve)
