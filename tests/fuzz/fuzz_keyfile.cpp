// libFuzzer target for the signing key files (`ckpt sign --key`, `ckpt verify --pubkey`).
#include <ckpt/errors.hpp>
#include <ckpt/signature.hpp>

#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    ckpt::parse_public_key(text, "fuzz.pub");
  } catch (const ckpt::Error&) {
  }
  try {
    ckpt::parse_secret_key(text, "fuzz");
  } catch (const ckpt::Error&) {
  }
  return 0;
}
