// The raw structure of a zip archive, checked strictly. minizip lists an archive as its central
// directory says and reads each entry's local header only as far as it needs; a zip crafted to
// read one way in ckpt and another in torch (whose reader, miniz, resolves duplicate names,
// prefixed data and overlapping entries its own way) passes through it. So before ckpt trusts
// minizip's listing, this checks that the archive has exactly one reading:
//  - every byte of the file belongs to one structure, in order: local header, data and data
//    descriptor of each entry, then the central directory, the zip64 records and the end
//    record; no bytes before the first entry, between entries or after the end record;
//  - each local header agrees with its central directory entry (name, method, flags, CRC and
//    sizes, or the data descriptor's when the header defers them);
//  - no two entries share a name (ignoring case where the rules say so), and, where the rules
//    say so, every name lies inside the archive's one folder.
#pragma once

#include <ckpt_zip/zip_archive.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ckpt_zip {

// Fails with CKPT_ERR_FORMAT naming the byte offset and what is wrong (not `path`: the host
// names the file before every message a reader gives). `listed` is
// minizip's listing, which must be the same entries in the same order; each entry's
// data_offset is set from its local header.
void check_zip_layout(std::span<const std::byte> file, std::vector<ZipEntry>& listed, const std::string& path,
                      ZipRules rules = ZipRules{});

}  // namespace ckpt_zip
