// What every conformance case shares: the fixture that gives a case its format and a scratch
// folder, writing and reading through the same host paths users take, and the skip macros.
#pragma once

#include "compare.hpp"
#include "documents.hpp"

#include <ckpt/conformance.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/format_io.hpp>
#include <ckpt/io.hpp>
#include <ckpt/plugin_abi.h>

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <tuple>
#include <typeinfo>

namespace ckpt::conformance {

// gtest prints parameters; without this it would dump the struct's bytes.
void PrintTo(const Subject& s, std::ostream* os);
std::string capability_name(uint32_t cap);

class FormatTestBase : public ::testing::Test {
 protected:
  virtual const Subject& subject() const = 0;
  // Suites whose every case starts by writing a file; a read-only format skips them whole.
  virtual bool writes_files() const { return false; }
  void SetUp() override;
  void TearDown() override;

  const Format& format() const { return *format_; }
  const FormatInfo& info() const { return subject().info(); }
  bool can(uint32_t cap) const { return info().can(cap); }
  // A fresh generator per case, so a case's data does not depend on which cases ran before.
  Rng rng(std::string_view salt = {}) const;

  const fs::path& dir() const { return dir_; }
  // tmp/<stem><the format's first extension>
  fs::path file(const std::string& stem) const;

  void write(const Document& doc, const fs::path& path, const Options& options = {}) const;
  // Opens, lists and reads every tensor (copied, not mapped).
  Document read(const fs::path& path) const;
  // Writes `doc`, reads it back (and through map() where the format maps) and expects the
  // result equal to `doc`.
  void expect_round_trip(const Document& doc, const std::string& stem) const;

 private:
  std::optional<Format> format_;
  fs::path dir_;
};

class FormatTest : public FormatTestBase, public ::testing::WithParamInterface<Subject> {
 protected:
  const Subject& subject() const override { return GetParam(); }
};

class DtypeTest : public FormatTestBase, public ::testing::WithParamInterface<std::tuple<Subject, DType>> {
 protected:
  const Subject& subject() const override { return std::get<0>(GetParam()); }
  DType dtype() const { return std::get<1>(GetParam()); }
};

std::string subject_param_name(const ::testing::TestParamInfo<Subject>& info);
std::string dtype_param_name(const ::testing::TestParamInfo<std::tuple<Subject, DType>>& info);
std::vector<DType> all_dtypes();

std::string type_name(const std::type_info& t);

// The message of the E that `f` throws; a failure when it throws nothing or anything else (a
// plugin's own exception leaking through, std::bad_alloc from trusting a size in a file).
template <class E = Error, class F>
std::optional<std::string> error_from(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return std::string(e.what());
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected " << type_name(typeid(E)) << ", got " << type_name(typeid(e)) << ": " << e.what();
    return std::nullopt;
  } catch (...) {
    ADD_FAILURE() << "expected " << type_name(typeid(E)) << ", got an exception not derived from std::exception";
    return std::nullopt;
  }
  ADD_FAILURE() << "expected " << type_name(typeid(E)) << ", nothing was thrown";
  return std::nullopt;
}

}  // namespace ckpt::conformance

// Skips the case when the format does not declare `cap`; the reason is the declaration.
#define CKPT_REQUIRE_CAPABILITY(cap)                                                                \
  do {                                                                                              \
    if (!this->can(cap))                                                                            \
      GTEST_SKIP() << "format '" << this->info().name << "' does not declare capability '"         \
                   << ::ckpt::conformance::capability_name(cap) << "'";                           \
  } while (0)

#define CKPT_SKIP_IN_QUICK_MODE()                                                                   \
  do {                                                                                              \
    if (::ckpt::conformance::settings().quick) GTEST_SKIP() << "skipped by --quick";               \
  } while (0)

// Every test file names itself here so configure() can pull it out of the static library.
#define CKPT_CONFORMANCE_CASES(id) \
  namespace ckpt::conformance::anchors { void id() {} }
