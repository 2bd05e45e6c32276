// Reads hello text. Opening parses every line once (skipping over tensor bytes) into a list of
// records; list() replays them and read_tensor() decodes one tensor's hex from the mapped file.
#pragma once

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_io.hpp>

#include <string>
#include <vector>

namespace hello {

class Cursor;

class Reader : public ckpt::sdk::Reader {
 public:
  explicit Reader(const std::string& path);

  void list(const ckpt::sdk::Visitor& visitor) override;
  void read_tensor(uint64_t id, std::span<std::byte> dst) override;

 private:
  struct Attribute {
    char type = 0;  // the letter on the line: b i f s, or B I F S for arrays
    std::vector<int64_t> ints;  // bools and int64s
    std::vector<double> floats;
    std::vector<std::string> strings;
  };
  struct Tensor {
    uint32_t dtype = 0;
    std::vector<int64_t> shape;
    uint64_t nbytes = 0;
    size_t hex_offset = 0;  // where its 2 * nbytes hex digits start in the file
  };
  struct Record {
    char kind = 0;  // G (group), E (end), A (attribute), T (tensor)
    std::string name;
    size_t index = 0;  // into attributes_ or tensors_
  };

  void parse();
  Attribute parse_attribute(Cursor& in);
  Tensor parse_tensor(Cursor& in, const std::string& name);
  static void emit(const ckpt::sdk::Visitor& v, const std::string& name, const Attribute& a);

  ckpt::sdk::MappedFile file_;
  std::vector<Record> records_;
  std::vector<Attribute> attributes_;
  std::vector<Tensor> tensors_;
};

}  // namespace hello
