// The golden layout check (sdk/abi) has teeth: it is compiled, with the real compiler, against
// copies of plugin_abi.h altered the ways a careless edit would alter it. Breaking changes
// must fail to compile with a message naming what broke; appending to a growable struct must
// not.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <filesystem>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

const fs::path kSource = CKPT_SOURCE_DIR;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Compile {
  int code;
  std::string output;
};

class AbiLayout : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ckpt-abi-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_ / "ckpt");
    header_ = slurp(kSource / "sdk/include/ckpt/plugin_abi.h");
    ASSERT_FALSE(header_.empty());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The header with `from` replaced by `to` (which must occur exactly once).
  std::string altered(const std::string& from, const std::string& to) const {
    size_t at = header_.find(from);
    EXPECT_NE(at, std::string::npos) << "the test's anchor '" << from << "' is not in plugin_abi.h";
    EXPECT_EQ(header_.find(from, at + 1), std::string::npos) << "'" << from << "' occurs twice";
    std::string h = header_;
    if (at != std::string::npos) h.replace(at, from.size(), to);
    return h;
  }

  // Compiles `check` (a file in sdk/abi) with `header` as <ckpt/plugin_abi.h>; the golden
  // layout and the frozen header are found as "abi_v1/..." under tests/sdk.
  Compile compile(const std::string& header, const std::string& check = "check_current.cpp") const {
    std::ofstream(dir_ / "ckpt/plugin_abi.h") << header;
    std::string cmd = std::string(CKPT_CXX_COMPILER) + " -std=c++20 -fsyntax-only -I" + dir_.string() + " -I" +
                      (kSource / "tests/sdk").string() + " " + (kSource / "sdk/abi" / check).string() + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    std::array<char, 4096> buf{};
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    int status = ::pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
  }

  fs::path dir_;
  std::string header_;
};

TEST_F(AbiLayout, CurrentHeaderMatchesTheGolden) {
  Compile c = compile(header_);
  EXPECT_EQ(c.code, 0) << c.output;
}

TEST_F(AbiLayout, FrozenV1HeaderMatchesTheGolden) {
  Compile c = compile(header_, "check_frozen.cpp");
  EXPECT_EQ(c.code, 0) << c.output;
}

TEST_F(AbiLayout, AFieldInsertedInTheMiddleFails) {
  Compile c = compile(altered("  const char* long_name;  /* \"ckpt JSON document\" */",
                              "  const char* display_name;\n  const char* long_name;"));
  EXPECT_NE(c.code, 0);
  EXPECT_NE(c.output.find("ckpt_format.long_name must stay at offset 16"), std::string::npos) << c.output;
}

TEST_F(AbiLayout, AWidenedFieldFails) {
  Compile c = compile(altered("  uint32_t n_magic;", "  uint64_t n_magic;"));
  EXPECT_NE(c.code, 0);
  EXPECT_NE(c.output.find("ckpt_format.n_magic must keep its type"), std::string::npos) << c.output;
  EXPECT_NE(c.output.find("ckpt_format.identify must stay at offset 56"), std::string::npos) << c.output;
}

TEST_F(AbiLayout, AChangedCallbackSignatureFails) {
  Compile c = compile(altered("int (*identify)(const uint8_t* head, size_t len, uint64_t file_size);",
                              "int (*identify)(const uint8_t* head, size_t len);"));
  EXPECT_NE(c.code, 0);
  EXPECT_NE(c.output.find("ckpt_format.identify must keep its type"), std::string::npos) << c.output;
}

TEST_F(AbiLayout, GrowingAStructWithoutStructSizeFails) {
  Compile c = compile(altered("  uint32_t size;\n} ckpt_magic;", "  uint32_t size;\n  uint32_t flags;\n  uint64_t more;\n} ckpt_magic;"));
  EXPECT_NE(c.code, 0);
  EXPECT_NE(c.output.find("ckpt_magic has no struct_size, so its size must stay 24"), std::string::npos) << c.output;
}

TEST_F(AbiLayout, RenumberedConstantsFail) {
  Compile c = compile(altered("CKPT_ERR_IO = 2,", "CKPT_ERR_IO = 12,"));
  EXPECT_NE(c.code, 0);
  EXPECT_NE(c.output.find("CKPT_ERR_IO must stay 2"), std::string::npos) << c.output;
  Compile cap = compile(altered("CKPT_CAP_MAP = 1u << 2,", "CKPT_CAP_MAP = 1u << 9,"));
  EXPECT_NE(cap.code, 0);
  EXPECT_NE(cap.output.find("CKPT_CAP_MAP must stay"), std::string::npos) << cap.output;
}

TEST_F(AbiLayout, AppendingToAStructWithStructSizePasses) {
  Compile c = compile(altered("                              ckpt_reader** out, const ckpt_reader_api** api);\n} ckpt_format;",
                              "                              ckpt_reader** out, const ckpt_reader_api** api);\n"
                              "  uint32_t flags;\n} ckpt_format;"));
  EXPECT_EQ(c.code, 0) << c.output;
}

}  // namespace
