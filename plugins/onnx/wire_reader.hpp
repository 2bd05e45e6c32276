// Walks protobuf wire format over bytes in memory (protobuf's own CodedInputStream), so the
// scanner can find where each initializer's data lies without copying it. Every length is
// checked against the end of the message that holds it before anything is read or allocated;
// errors name the file, the byte offset and what was being read.
#pragma once

#include <google/protobuf/io/coded_stream.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ckpt_onnx {

class WireReader {
 public:
  // `bytes` must be shorter than 2 GiB (protobuf's limit; the caller checks and says so).
  WireReader(std::span<const std::byte> bytes, std::string source);

  uint64_t pos() const { return static_cast<uint64_t>(in_.CurrentPosition()); }
  // The end of the innermost message being read.
  uint64_t end() const { return pos() + static_cast<uint64_t>(in_.BytesUntilLimit()); }

  // The next field of the current message; false at its end.
  bool next(uint32_t& field, uint32_t& wire_type);
  uint64_t varint(const std::string& what);
  // A length prefix, checked to fit inside the current message.
  uint64_t length(const std::string& what);
  std::string string(const std::string& what);
  uint32_t fixed32(const std::string& what);
  uint64_t fixed64(const std::string& what);
  void skip(uint64_t n);
  // Skips a field this reader does not use, whatever its wire type.
  void skip_field(uint32_t field, uint32_t wire_type);

  // Enters a length-delimited field (reads its length); leave() returns to the outer message.
  // Returns the message's length.
  uint64_t enter(const std::string& what);
  void leave();

  void expect(uint32_t wire_type, uint32_t want, const std::string& what);

  // Context for messages: "graph/initializer[3] \"fc1.weight\"".
  void set_context(std::string context) { context_ = std::move(context); }
  [[noreturn]] void error(uint64_t at, const std::string& what) const;
  const std::string& source() const { return source_; }

 private:
  google::protobuf::io::CodedInputStream in_;
  std::string source_;
  std::string context_;
  std::vector<google::protobuf::io::CodedInputStream::Limit> limits_;
};

}  // namespace ckpt_onnx
