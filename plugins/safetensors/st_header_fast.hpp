// The header of a safetensors file by simdjson, for the common case of a valid header: it runs
// at several hundred MB/s where nlohmann's SAX parser ran at about 150, which is most of
// opening a file of a million tensors. It accepts only what the exact parser (st_header.cpp)
// accepts, and gives up (false) on anything else, duplicates, numbers it would have to read
// differently and unknown dtypes included: the exact parser then runs and says what is wrong,
// with the same messages as before. Both fill the same Header.
#pragma once

#include "st_header.hpp"

#include <cstdint>

namespace ckpt_safetensors {

// `text` is the header's `h.size` bytes (already checked to start with '{' and hold no NUL),
// followed by `readable` more bytes that may be read (the file's data section): with enough of
// them, simdjson reads the header in place rather than from a padded copy. Fills h.tensors,
// h.metadata and h.has_metadata, or returns false leaving them to the caller to clear.
bool parse_header_fast(const char* text, uint64_t readable, Header& h);

}  // namespace ckpt_safetensors
