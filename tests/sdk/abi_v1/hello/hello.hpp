// hello: a made-up checkpoint format, small enough to read in one sitting, complete enough to
// pass the ckpt conformance kit (the walk-through is docs/plugin-guide.md). Text, one record a line:
//
//   hello-ckpt 1
//   G 0:                                  a group (the first is the root, named "")
//   A 5:epoch i 3                         an attribute: name, type letter, value
//   A 2:lr f 3fb999999999999a             floats as the 16 hex digits of their bits
//   A 4:tags S 2 3:cnn 5:small            arrays: upper-case letter, count, elements
//   T 6:weight f32 2 2 3 0000803f...      a tensor: name, dtype, rank, dims, hex bytes
//   E                                     the end of the innermost group
//
// Names and strings are netstrings (<length>:<bytes>), so they need no escaping.
#pragma once

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_io.hpp>
#include <ckpt/sdk_tree.hpp>

#include <string>
#include <vector>

namespace hello {

inline constexpr std::string_view kMagic = "hello-ckpt ", kHeader = "hello-ckpt 1\n";
inline constexpr std::string_view kTypeLetters = "bifs";  // ckpt_value_type 1..4; upper case: 5..8

// Streams: each event the host sends becomes one line.
class Writer : public ckpt::sdk::Writer {
 public:
  explicit Writer(const std::string& path) : out_(path) { out_.write(kHeader); }
  void begin_group(std::string_view name, uint64_t, uint64_t) override;
  void end_group() override { out_.write("E\n"); }
  void attribute(std::string_view name, const ckpt_value& value) override;
  void tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) override;
  void finish() override { out_.close(); }

 private:
  ckpt::sdk::OutputFile out_;
};

// Parses the file once at open into the SDK's tree, skipping over tensor bytes, and replays
// the tree to every list(); read_tensor() decodes one tensor's hex from the mapped file.
class Reader : public ckpt::sdk::Reader {
 public:
  explicit Reader(const std::string& path);
  void list(const ckpt::sdk::Visitor& visitor) override { tree_.list(visitor); }
  void read_tensor(uint64_t id, std::span<std::byte> dst) override;

 private:
  ckpt::sdk::MappedFile file_;
  ckpt::sdk::Tree tree_;
  std::vector<size_t> hex_at_;  // by tensor id: where its 2 * nbytes hex digits start
};

}  // namespace hello
