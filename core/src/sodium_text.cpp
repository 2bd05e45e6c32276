// libsodium's set-up and the text encodings key and signature files use (base64, hex).
#include <ckpt/errors.hpp>
#include <ckpt/keys.hpp>

#include <sodium.h>

#include <cstring>

namespace ckpt {

namespace detail {

void ensure_sodium() {
  static const int rc = sodium_init();
  if (rc < 0) throw Error("libsodium could not be initialised");
}

std::string to_base64(const unsigned char* bin, size_t n) {
  std::string out(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), bin, n, sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

bool from_base64(std::string_view text, unsigned char* out, size_t want) {
  size_t n = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out, want, text.data(), text.size(), nullptr, &n, &end, sodium_base64_VARIANT_ORIGINAL) != 0)
    return false;
  return n == want && end == text.data() + text.size();
}

std::string to_hex(const unsigned char* p, size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), p, n);
  out.pop_back();
  return out;
}

}  // namespace detail

}  // namespace ckpt
