// The safetensors header: the 8-byte size, the JSON object and the checks the specification
// asks for (dtype, shape and offsets agree; the data is covered without holes or overlaps and
// ends with the file). Parsed once at open with nlohmann_json's SAX parser (no DOM).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt_safetensors {

struct TensorEntry {
  std::string key;  // the header key: a '/'-joined document path
  uint32_t dtype = 0;
  std::vector<int64_t> shape{};
  uint64_t begin = 0;  // data_offsets, relative to the data section
  uint64_t end = 0;
  uint64_t at = 0;     // file offset just past the entry's key, for messages
};

struct MetadataEntry {
  std::string key;
  std::string value;
  uint64_t at = 0;
};

struct Header {
  uint64_t size = 0;        // N, the JSON's length with its padding
  uint64_t data_start = 0;  // 8 + N
  bool has_metadata = false;
  std::vector<MetadataEntry> metadata;  // in file order
  std::vector<TensorEntry> tensors;     // in file order
};

// Parses and checks the header of a file of `file.size()` bytes, touching no tensor data.
// Throws ckpt::sdk::Error naming the byte offset and the key: CKPT_ERR_FORMAT for what the
// specification forbids, CKPT_ERR_LIMIT for sizes beyond the file or the 100 MB cap, and
// CKPT_ERR_UNSUPPORTED for valid dtypes ckpt has no equivalent of.
Header parse_header(std::span<const std::byte> file);

// A name from the file quoted for a message, control bytes shown as \xNN so that a message
// stays on one line; with `ascii`, bytes from 0x80 up too (for text that may not be UTF-8).
std::string quote_name(std::string_view s, bool ascii = false);

}  // namespace ckpt_safetensors
