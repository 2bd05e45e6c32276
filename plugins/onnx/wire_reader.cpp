#include "wire_reader.hpp"

#include "onnx_layout.hpp"

#include <ckpt/sdk.hpp>

#include <google/protobuf/wire_format_lite.h>

namespace ckpt_onnx {

using ckpt::sdk::fail;
using google::protobuf::internal::WireFormatLite;

WireReader::WireReader(std::span<const std::byte> bytes, std::string source)
    : in_(reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<int>(bytes.size())),
      source_(std::move(source)) {
  in_.SetTotalBytesLimit(static_cast<int>(bytes.size()));
  // The outermost limit is the file's end, so end() works at the top level too.
  limits_.push_back(in_.PushLimit(static_cast<int>(bytes.size())));
}

void WireReader::error(uint64_t at, const std::string& what) const {
  fail(CKPT_ERR_FORMAT, "'" + source_ + "': at byte " + std::to_string(at) +
                            (context_.empty() ? std::string() : " (" + context_ + ")") + ": " + what);
}

bool WireReader::next(uint32_t& field, uint32_t& wire_type) {
  if (in_.BytesUntilLimit() == 0) return false;
  const uint64_t at = pos();
  const uint32_t tag = in_.ReadTagNoLastTag();
  if (tag == 0) error(at, "invalid field tag (zero, or a varint that does not end in its message)");
  field = static_cast<uint32_t>(WireFormatLite::GetTagFieldNumber(tag));
  wire_type = static_cast<uint32_t>(WireFormatLite::GetTagWireType(tag));
  if (field == 0) error(at, "field number 0");
  return true;
}

uint64_t WireReader::varint(const std::string& what) {
  const uint64_t at = pos();
  uint64_t v;
  if (!in_.ReadVarint64(&v))
    error(at, what + ": truncated or malformed varint (the message ends at byte " + std::to_string(end()) + ")");
  return v;
}

uint64_t WireReader::length(const std::string& what) {
  const uint64_t at = pos();
  const uint64_t n = varint(what + " length");
  const uint64_t left = end() - pos();
  if (n > left)
    error(at, what + " declares " + std::to_string(n) + " bytes but only " + std::to_string(left) +
                  " remain in its message (file truncated or corrupt)");
  return n;
}

std::string WireReader::string(const std::string& what) {
  const uint64_t n = length(what);
  std::string s;
  in_.ReadString(&s, static_cast<int>(n));  // cannot fail: n fits before the limit
  return s;
}

uint32_t WireReader::fixed32(const std::string& what) {
  const uint64_t at = pos();
  uint32_t v;
  if (!in_.ReadLittleEndian32(&v)) error(at, what + ": truncated 4-byte value");
  return v;
}

uint64_t WireReader::fixed64(const std::string& what) {
  const uint64_t at = pos();
  uint64_t v;
  if (!in_.ReadLittleEndian64(&v)) error(at, what + ": truncated 8-byte value");
  return v;
}

void WireReader::skip(uint64_t n) {
  const uint64_t at = pos();
  if (n > end() - pos() || !in_.Skip(static_cast<int>(n)))
    error(at, "skipping " + std::to_string(n) + " bytes runs past the end of the message");
}

void WireReader::skip_field(uint32_t field, uint32_t wire_type) {
  const uint64_t at = pos();
  if (wire_type == wire::kLength) {
    skip(length("field " + std::to_string(field)));
    return;
  }
  if (!WireFormatLite::SkipField(&in_, wire::tag(field, wire_type)))
    error(at, "cannot skip field " + std::to_string(field) + " of wire type " + std::to_string(wire_type) +
                  " (truncated or malformed)");
}

uint64_t WireReader::enter(const std::string& what) {
  const uint64_t n = length(what);
  limits_.push_back(in_.PushLimit(static_cast<int>(n)));
  return n;
}

void WireReader::leave() {
  const uint64_t at = pos();
  if (in_.BytesUntilLimit() != 0) error(at, "a message ends before its declared length");
  in_.PopLimit(limits_.back());
  limits_.pop_back();
}

void WireReader::expect(uint32_t wire_type, uint32_t want, const std::string& what) {
  if (wire_type != want)
    error(pos(), what + " has wire type " + std::to_string(wire_type) + ", expected " + std::to_string(want));
}

}  // namespace ckpt_onnx
