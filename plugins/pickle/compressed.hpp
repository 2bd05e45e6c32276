// joblib's compressed files: joblib.dump(obj, f, compress=...) writes the pickle (NumPy arrays
// inline, as in an uncompressed file) through one compressor, with no header of joblib's own
// (joblib 0.10 and later; joblib/compressor.py). Each is known by its compressor's magic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ckpt_pickle {

enum class Container { none, zlib, gzip, bz2, xz, lzma };

// What a compressed file may decompress to by default: this many times its size, plus
// kDecompressedBase (docs/formats/pickle.md); the option max_decompressed replaces it.
inline constexpr uint64_t kMaxCompressionRatio = 16;
inline constexpr uint64_t kDecompressedBase = uint64_t{32} << 20;

const char* container_name(Container c);

// The compressor whose stream `head` starts with, or none.
Container container_of(std::span<const uint8_t> head);

// Whether the first bytes `head` decompress to start a pickle (PROTO 2 to 5): identify's check
// that a file with a compressor's magic is a compressed pickle, not some other compressed file.
bool starts_a_pickle(Container c, std::span<const uint8_t> head);

// The whole stream of `in`, decompressed; it must end where the file ends. More than `max_out`
// bytes fail with CKPT_ERR_LIMIT naming the option that sets the bound; a damaged stream fails
// with CKPT_ERR_FORMAT and the compressor's reason (the host names the file).
std::vector<std::byte> decompress(Container c, std::span<const std::byte> in, uint64_t max_out);

}  // namespace ckpt_pickle
