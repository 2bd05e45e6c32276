# Compiler flags of the fuzzing build (CKPT_FUZZ=ON, clang only), included by the top-level
# CMakeLists.txt before any target exists: libckpt and every plugin get libFuzzer's coverage
# instrumentation and ASan+UBSan, so the fuzzers see into the plugins they load.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "CKPT_FUZZ needs clang (configure with CC=clang-14 CXX=clang++-14; scripts/fuzz.sh does)")
endif()
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                    -fno-sanitize-recover=undefined -gline-tables-only)
# One sanitizer runtime, shared by the fuzzer and the plugins it dlopens (clang's default static
# runtime would leave the plugins' ASan symbols undefined, which --no-undefined refuses).
execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libclang_rt.asan-x86_64.so
                OUTPUT_VARIABLE CKPT_ASAN_RUNTIME OUTPUT_STRIP_TRAILING_WHITESPACE)
get_filename_component(CKPT_ASAN_RUNTIME_DIR ${CKPT_ASAN_RUNTIME} DIRECTORY)
add_link_options(-fsanitize=address,undefined -shared-libsan -Wl,-rpath,${CKPT_ASAN_RUNTIME_DIR})
