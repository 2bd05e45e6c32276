// A plugin's own test program: the conformance kit's cases (linked from ckpt::conformance) on
// the plugin library named on the command line, quick run, and a case of the plugin's own on
// what only this format promises, its header line. gtest's flags work as usual.
//
//   hello_tests PATH/ckpt_hello.so [--gtest_filter=...]
#include <ckpt/conformance.hpp>
#include <ckpt/format_io.hpp>
#include <ckpt/io.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <unistd.h>

namespace fs = std::filesystem;

TEST(HelloOwn, AFileStartsWithItsHeaderAndReadsBack) {
  const ckpt::conformance::Subject& hello = ckpt::conformance::subjects().at(0);
  ASSERT_EQ(hello.name, "hello");
  const fs::path path = fs::temp_directory_path() / ("hello-own-" + std::to_string(::getpid()) + ".hello");
  ckpt::Document doc;
  doc.group("model").group("state").add_tensor("w", ckpt::Tensor::from<float>(ckpt::DType::f32, {2}, {1.5f, -2.0f}));
  ckpt::write_document(doc, path, hello.format(), {});
  std::ifstream in(path, std::ios::binary);
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(first, "hello-ckpt 2");
  const ckpt::Document back = hello.format().open_reader(path, {})->load(false);
  const ckpt::Tensor* w = back.find_tensor_path("model/state/w");
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->bit_equal(*doc.find_tensor_path("model/state/w")));
  fs::remove(path);
}

int main(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') {
    std::cerr << "usage: hello_tests PATH/ckpt_hello.so [gtest flags]\n";
    return 2;
  }
  ckpt::conformance::Settings settings;
  settings.library = argv[1];
  settings.quick = true;
  try {
    // Before InitGoogleTest: that is when gtest asks the kit's cases for their formats.
    ckpt::conformance::configure(settings);
  } catch (const std::exception& e) {
    std::cerr << "hello_tests: " << e.what() << "\n";
    return 2;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
