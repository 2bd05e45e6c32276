// Whether this build runs under AddressSanitizer, whichever the compiler: gcc defines
// __SANITIZE_ADDRESS__, clang answers __has_feature. Tests that limit address space or measure
// resident memory cannot run beside ASan's shadow memory.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define CKPT_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CKPT_TEST_ASAN 1
#endif
#endif
