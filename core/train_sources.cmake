# The oneDNN compute of the trainer (layers, model, losses). Included by core/CMakeLists.txt:
#   find_package(dnnl 2.6 REQUIRED)
#   include(${CMAKE_CURRENT_SOURCE_DIR}/train_sources.cmake)
#   target_sources(ckpt PRIVATE ${CKPT_TRAIN_SOURCES})
#   target_link_libraries(ckpt PRIVATE DNNL::dnnl OpenMP::OpenMP_CXX)
# OpenMP is linked for omp_set_num_threads: oneDNN's CPU runtime here is OpenMP.
find_package(OpenMP REQUIRED COMPONENTS CXX)
set(CKPT_TRAIN_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/src/train/engine.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/train/engine_memory.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/train/init.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/train/layer_attrs.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/train/layer_base.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/train/layer_conv2d.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/train/layer_flatten.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/train/layer_linear.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/train/layer_maxpool2d.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/train/layer_relu.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/train/layer_softmax.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/train/layer_weighted.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/train/layers.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/train/loss.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/train/model.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/train/model_specs.cpp
)
