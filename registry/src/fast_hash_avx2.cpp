// XXH3 compiled into this file alone with -mavx2 (CMakeLists.txt); called only when the CPU
// reports AVX2 (fast_hash.cpp).
#define XXH_INLINE_ALL
#define XXH_VECTOR XXH_AVX2
#include <xxhash.h>

namespace ckpt::model_registry::detail {

XXH128_hash_t xxh3_128_avx2(const void* data, size_t size, const void* secret, size_t secret_size) {
  return XXH3_128bits_withSecret(data, size, secret, secret_size);
}

}  // namespace ckpt::model_registry::detail
