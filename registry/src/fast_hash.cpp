#include "fast_hash.hpp"

#include <xxhash.h>

#include <cstdio>

namespace ckpt::model_registry::detail {

// fast_hash_avx2.cpp, compiled with -mavx2 on x86-64.
XXH128_hash_t xxh3_128_avx2(const void* data, size_t size, const void* secret, size_t secret_size);

namespace {

XXH128_hash_t hash(const void* data, size_t size, const void* secret, size_t secret_size) {
#if defined(__x86_64__) && defined(CKPT_REGISTRY_HAVE_AVX2_TU)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return xxh3_128_avx2(data, size, secret, secret_size);
#endif
  return XXH3_128bits_withSecret(data, size, secret, secret_size);
}

}  // namespace

std::string fast_key(std::span<const std::byte> bytes, const std::string& secret) {
  const XXH128_hash_t h = hash(bytes.data(), bytes.size(), secret.data(), secret.size());
  char buf[64];
  std::snprintf(buf, sizeof buf, "%016llx%016llx:%zu", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64), bytes.size());
  return buf;
}

}  // namespace ckpt::model_registry::detail
