// The message of the exception a callable throws, for tests that check what an error says.
#pragma once

#include <ckpt/errors.hpp>

#include <gtest/gtest.h>

#include <exception>
#include <string>

namespace ckpt_test {

// What `f` throws as an E; a test failure (and "") if it throws anything else or nothing.
template <class E = ckpt::Error, class F>
std::string thrown(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw something else: " << e.what();
    return {};
  }
  ADD_FAILURE() << "threw nothing";
  return {};
}

}  // namespace ckpt_test
