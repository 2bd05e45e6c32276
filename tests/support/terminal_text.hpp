// Checks on text ckpt prints that came from a file: error messages and listings must not carry
// what drives a terminal (C0 controls, C1 controls as UTF-8) nor a character cut in half.
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace ckpt_test {

inline void expect_terminal_safe(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    EXPECT_GE(c, 0x20u) << text;
    EXPECT_FALSE(c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xa0) << text;
    // A cut never leaves the lead byte of a character without its continuation.
    if (c >= 0xc0) {
      EXPECT_TRUE(i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xc0) == 0x80) << text;
    }
  }
}

}  // namespace ckpt_test
