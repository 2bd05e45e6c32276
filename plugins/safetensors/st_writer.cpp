#include "st_writer.hpp"

#include "st_layout.hpp"

#include <ckpt/sdk_quote.hpp>

#include <algorithm>
#include <array>
#include <cstring>

#include <sodium.h>
#include <xxhash.h>

#include <set>

namespace ckpt_safetensors {

using ckpt::sdk::fail;

namespace {

// Equal tensors are found by a hash of their first and last 4 KiB (and their size), then their
// bytes compared: hashing every byte of every tensor cost more than the write it saves.
uint64_t sampled_hash(std::span<const std::byte> data) {
  constexpr size_t kEdge = 4096;
  if (data.size() <= 2 * kEdge) return XXH3_64bits(data.data(), data.size());
  return XXH3_64bits_withSeed(data.data(), kEdge, XXH3_64bits(data.data() + data.size() - kEdge, kEdge) ^ data.size());
}

std::string shape_text(std::span<const int64_t> shape) { return ckpt::sdk::shape_text(shape, ","); }

// JSON text is UTF-8: `s` is checked where the host hears what it is (`where`), with the
// message the header's own writing would give. ASCII, nearly every name, needs no JSON value.
void check_text(std::string_view s, const std::string& where) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return void(json_string(s, where));
}

uint64_t round_up(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

// The furthest the data may start: N, the header size, is at most kMaxHeaderBytes, padding
// included.
constexpr uint64_t kMaxDataStart = (8 + kMaxHeaderBytes) / kDataAlignment * kDataAlignment;

std::array<std::byte, 8> le64(uint64_t v) {
  std::array<std::byte, 8> b{};
  for (auto& x : b) {
    x = static_cast<std::byte>(v & 0xff);
    v >>= 8;
  }
  return b;
}

}  // namespace

SafetensorsWriter::SafetensorsWriter(const std::string& path, uint64_t staging_bytes, bool aliases)
    : out_(path), staging_limit_(staging_bytes), aliases_enabled_(aliases) {}

std::string SafetensorsWriter::key_of(std::string_view name) const {
  const std::string& path = recorder_.path();
  return path.empty() ? std::string(name) : path + "/" + std::string(name);
}

void SafetensorsWriter::begin_group(std::string_view name, uint64_t n_attributes, uint64_t n_children) {
  if (finished_) fail(CKPT_ERR_INVALID_ARGUMENT, "begin_group after finish");
  const size_t depth = recorder_.depth();  // of the parent
  if (depth == 0) return recorder_.begin_group(name, n_attributes, n_children);
  const bool first = !root_has_child_;
  const bool in_meta = depth == 2 && recorder_.path() == "meta";
  recorder_.begin_group(name, n_attributes, n_children);
  if (depth == 1) root_has_child_ = true;
  // A plain file's __metadata__ reads back as the group meta (st_document.cpp), first among
  // the root's members: such a group, of string attributes only, keeps the file plain. So
  // does meta holding only the hashes convert records (meta/integrity, kIntegrityKey), which
  // convert writes after the tensors: their order is ckpt's own, not the document's.
  const bool plain_meta = depth == 1 && name == "meta" && ((first && n_attributes > 0 && n_children == 0) || n_children == 1);
  const bool plain_integrity = in_meta && name == "integrity" && n_children == 0;
  if (plain_integrity) {
    integrity_.emplace();
    in_integrity_ = true;
  } else if (!plain_meta) {
    plain_ = false;
  }
  if (depth > kMaxDepth) {
    const std::string& path = recorder_.path();
    const std::string parent = path.substr(0, path.size() - name.size() - 1);
    fail(CKPT_ERR_UNSUPPORTED, "group '" + std::string(name) + "' in " +
                                   (depth == 1 ? std::string("the root group") : "group '" + parent + "'") +
                                   " is nested deeper than " + std::to_string(kMaxDepth) + " groups");
  }
  check_text(name, "group name " + quote_name(name, true));
}

void SafetensorsWriter::end_group() {
  recorder_.end_group();
  in_integrity_ = false;
}

void SafetensorsWriter::attribute(std::string_view name, const ckpt_value& value) {
  if (recorder_.depth() > 0 && !ckpt::sdk::value_type_name(value.type))
    fail(CKPT_ERR_INVALID_ARGUMENT, "attribute '" + std::string(name) + "' of " + recorder_.where() +
                                        " has unknown value type " + std::to_string(value.type));
  recorder_.attribute(name, value);
  const std::string what = "attribute '" + std::string(name) + "' of " + recorder_.where();
  check_text(name, what + "'s name");
  if (value.type == CKPT_VALUE_STRING) check_text(std::string_view(value.u.s.data ? value.u.s.data : "", value.u.s.size), what);
  if (value.type == CKPT_VALUE_STRING_ARRAY)
    for (uint64_t i = 0; i < value.count; ++i)
      check_text(std::string_view(value.u.strings[i].data ? value.u.strings[i].data : "", value.u.strings[i].size), what);
  const size_t depth = recorder_.depth();
  if (in_integrity_) {
    if (!plain_) return;  // the document entry holds it (the copy only serves a plain file)
    auto text_of = [](const ckpt_str& s) { return std::string(s.data ? s.data : "", s.size); };
    auto strings = [&](std::vector<std::string>& out) {
      if (value.type != CKPT_VALUE_STRING_ARRAY) return void(integrity_->bad = true);
      for (uint64_t i = 0; i < value.count; ++i) out.push_back(text_of(value.u.strings[i]));
    };
    auto string = [&](std::string& out) {
      if (value.type != CKPT_VALUE_STRING) return void(integrity_->bad = true);
      out = text_of(value.u.s);
    };
    if (name == "algorithm") string(integrity_->algorithm);
    else if (name == "manifest") string(integrity_->manifest);
    else if (name == "manifest_encoding") string(integrity_->encoding);
    else if (name == "paths") strings(integrity_->paths);
    else if (name == "digests") strings(integrity_->digests);
    else integrity_->bad = true;
    return;
  }
  // A root string that starts as ckpt's document entry does would make a plain file that
  // readers take for a damaged one of ckpt's: such a document is written with its entry.
  const std::string_view text = value.type == CKPT_VALUE_STRING && value.u.s.data
                                    ? std::string_view(value.u.s.data, value.u.s.size)
                                    : std::string_view();
  const bool looks_like_ours = text.find(kDocumentFormat) != std::string_view::npos;
  // Root strings are copied for plain readers, but a plain file's entries read back into meta,
  // so they need the document entry; meta's strings (another tool's __metadata__, read) are
  // copied too, and are all a plain file's __metadata__ holds.
  const bool in_meta = depth == 2 && recorder_.path() == "meta";
  if (depth == 1 && value.type == CKPT_VALUE_STRING && name != kDocumentKey && name != kAliasesKey) {
    root_strings_.emplace_back(name, std::string(text));
    plain_ = false;
  } else if (in_meta && name == kTensorAliasesAttribute && value.type == CKPT_VALUE_STRING_ARRAY) {
    for (uint64_t i = 0; i < value.count; ++i)
      tied_.emplace_back(value.u.strings[i].data ? value.u.strings[i].data : "", value.u.strings[i].size);
    plain_ = false;
  } else if (in_meta && value.type == CKPT_VALUE_STRING) {
    meta_strings_.emplace_back(name, std::string(text));
    if (looks_like_ours || name == kDocumentKey || name == kIntegrityKey || name == kAliasesKey) plain_ = false;
  } else {
    plain_ = false;
  }
}

void SafetensorsWriter::tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) {
  const std::string what =
      "tensor '" + std::string(info.name) + "' in " + (recorder_.depth() == 0 ? std::string("no group") : recorder_.where());
  const char* dtype = st_dtype_name(info.dtype);
  if (!dtype) fail(CKPT_ERR_INVALID_ARGUMENT, what + " has unknown dtype " + std::to_string(info.dtype));
  const uint64_t nbytes = ckpt::sdk::checked_nbytes(info.shape, ckpt::sdk::dtype_size(info.dtype), what);
  if (nbytes != info.nbytes || data.size() != nbytes)
    fail(CKPT_ERR_INVALID_ARGUMENT, what + ": shape " + shape_text(info.shape) + " " + dtype + " needs " +
                                        std::to_string(nbytes) + " bytes, got " + std::to_string(data.size()));
  ckpt::sdk::TensorInfo named = info;
  named.shape = {};  // the header holds it; the document entry names the tensor only
  recorder_.tensor(named, tensors_);
  if (recorder_.depth() == 1) root_has_child_ = true;
  const std::string key = key_of(info.name);
  keys_.push_back(key);
  if (recorder_.depth() > 1) plain_ = false;  // a plain file's tensors are the root's (meta holds strings)
  if (key == kMetadataKey)
    fail(CKPT_ERR_UNSUPPORTED, what + ": safetensors reserves the name " + std::string(kMetadataKey));
  check_text(info.name, what + "'s name");
  ++tensors_;
  std::string entry = ":{\"dtype\":\"";
  entry += dtype;
  entry += "\",\"shape\":";
  entry += shape_text(info.shape);

  // A tie of tensors this small saves less than finding it costs (a million scalars); written
  // twice, it still comes back tied in a .pt, whose writer ties equal bytes the layout ties.
  constexpr uint64_t kSmallestAlias = 128;
  if (nbytes >= kSmallestAlias) {
    const uint64_t h = XXH3_64bits_withSeed(info.shape.data(), info.shape.size() * sizeof(int64_t),
                                            sampled_hash(data) ^ info.dtype);
    std::vector<size_t>& same = by_content_[h];
    std::vector<std::byte> back;
    for (size_t w : same) {
      const Written& o = written_[w];
      if (o.dtype != info.dtype || o.rank != info.shape.size() ||
          !std::equal(info.shape.begin(), info.shape.end(), shapes_.begin() + static_cast<ptrdiff_t>(o.shape_at)))
        continue;
      back.resize(nbytes);
      read_data(o.begin, back);
      if (std::memcmp(back.data(), data.data(), nbytes) != 0) continue;
      copies_.push_back({keys_.size() - 1, w, std::move(entry), entries_.size()});
      return;
    }
    same.push_back(written_.size());
    written_.push_back({info.dtype, static_cast<uint32_t>(info.shape.size()), shapes_.size(), data_size_, nbytes, keys_.size() - 1});
    shapes_.insert(shapes_.end(), info.shape.begin(), info.shape.end());
  }
  entries_ += ',';
  entries_ += json_string(key, what + "'s name");
  entries_ += entry;
  entries_ += ",\"data_offsets\":[" + std::to_string(data_size_) + "," + std::to_string(data_size_ + nbytes) + "]}";
  append_data(data);
}

void SafetensorsWriter::append_data(std::span<const std::byte> data) {
  data_size_ += data.size();
  if (!spilled_ && stage_.size() + data.size() <= staging_limit_) {
    stage_.insert(stage_.end(), data.begin(), data.end());
    return;
  }
  if (!spilled_) spill();
  out_.append(data);
}

void SafetensorsWriter::read_data(uint64_t begin, std::span<std::byte> dst) {
  if (spilled_) out_.read_at(data_start_ + begin, dst);
  else std::memcpy(dst.data(), stage_.data() + begin, dst.size());
}

// The header's entries with the copies put back: aliases where meta ties a copy to a tensor of
// its bytes, else written now, at the end of the data (readers sort entries by offset).
std::string SafetensorsWriter::resolve_copies() {
  if (copies_.empty()) return std::move(entries_);
  // A shard of a sharded checkpoint writes every tensor: Hugging Face's index would list an
  // alias under a shard whose header lacks it.
  if (!aliases_enabled_) tied_.clear();
  std::unordered_map<std::string_view, std::string_view> tie;
  for (size_t i = 0; i + 1 < tied_.size(); i += 2) tie.emplace(tied_[i], tied_[i + 1]);
  std::unordered_map<std::string_view, size_t> copy_source;  // a copy's key -> written_ index
  for (const Copy& c : copies_) copy_source.emplace(keys_[c.key], c.of);
  std::string entries;
  size_t from = 0;
  std::vector<std::byte> bytes;
  for (const Copy& c : copies_) {
    entries.append(entries_, from, c.insert_at - from);
    from = c.insert_at;
    const Written& source = written_[c.of];
    const std::string& key = keys_[c.key];
    // Tied to the tensor whose bytes it equals, or to another copy of them.
    if (auto t = tie.find(key); t != tie.end()) {
      auto other = copy_source.find(t->second);
      if (t->second == keys_[source.key] || (other != copy_source.end() && other->second == c.of)) {
        aliases_ += (aliases_.empty() ? "" : ",") + json_string(key, "alias '" + key + "'") + ":" +
                    json_string(keys_[source.key], "alias target");
        continue;
      }
    }
    bytes.resize(source.nbytes);
    read_data(source.begin, bytes);
    entries += ',';
    entries += json_string(key, "tensor '" + key + "'");
    entries += c.entry;
    entries += ",\"data_offsets\":[" + std::to_string(data_size_) + "," + std::to_string(data_size_ + source.nbytes) + "]}";
    append_data(bytes);
  }
  entries.append(entries_, from);
  copies_.clear();
  if (!aliases_.empty()) plain_ = false;
  return entries;
}

// Fixes where the data starts, before the header is known: the header so far, plus each
// tensor still announced by the open groups at the average cost of those seen, times four for
// what groups not yet announced may add, plus 64 KiB. Wasting a few hundred KiB of spaces in a
// file of more than `staging_bytes` is cheap; running short costs inserting blocks at finish.
void SafetensorsWriter::spill() {
  const uint64_t announced = recorder_.children_left();
  const uint64_t per_tensor = 2 * entries_.size() / (tensors_ ? tensors_ : 1);
  const uint64_t projected = header_json(entries_).size() + per_tensor * announced;
  data_start_ = round_up(8 + 4 * projected + (64 << 10), kReserveGranule) + kDataPageOffset;
  data_start_ = std::min(data_start_, kMaxDataStart / kReserveGranule * kReserveGranule + kDataPageOffset);
  out_.seek(data_start_);
  out_.append(stage_);
  std::vector<std::byte>().swap(stage_);
  spilled_ = true;
}

std::optional<std::string> SafetensorsWriter::integrity_entry() const {
  if (!integrity_) return std::nullopt;
  const StreamedIntegrity& in = *integrity_;
  auto hex16 = [](const std::string& s) { return s.size() == 16 && s.find_first_not_of("0123456789abcdef") == std::string::npos; };
  if (in.bad || in.algorithm != "xxh3_64" || in.encoding != "ckpt-manifest-2" || !hex16(in.manifest) ||
      in.paths.size() != in.digests.size() || in.paths.size() != keys_.size())
    return std::nullopt;
  // The record lists the tensors in the order they were written (convert's does): one sort of
  // that order by key then gives the digests in key order. Any other order is not plain.
  if (in.paths != keys_) return std::nullopt;
  std::vector<uint32_t> order(keys_.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return keys_[a] < keys_[b]; });
  std::vector<unsigned char> raw;
  raw.reserve(8 * order.size());
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (uint32_t i : order) {
    const std::string& d = in.digests[i];
    if (!hex16(d)) return std::nullopt;
    for (size_t k = 0; k < 16; k += 2) raw.push_back(static_cast<unsigned char>(nibble(d[k]) << 4 | nibble(d[k + 1])));
  }
  std::string digests(sodium_base64_ENCODED_LEN(raw.size(), sodium_base64_VARIANT_ORIGINAL_NO_PADDING), '\0');
  sodium_bin2base64(digests.data(), digests.size(), raw.data(), raw.size(), sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
  digests.resize(std::strlen(digests.c_str()));
  // Keys sorted, no space: the one form the reader takes.
  return "{\"algorithm\":\"" + in.algorithm + "\",\"digests\":\"" + digests + "\",\"manifest\":\"" + in.manifest +
         "\",\"manifest_encoding\":\"" + in.encoding + "\"}";
}

std::string SafetensorsWriter::header_json(std::string_view entries) const {
  std::string metadata;
  auto entry = [&](std::string_view key, std::string_view value) {
    if (!metadata.empty()) metadata += ',';
    metadata += json_string(key, "__metadata__ key '" + std::string(key) + "'");
    metadata += ':';
    metadata += json_string(value, "__metadata__ value of '" + std::string(key) + "'");
  };
  bool has_format_tag = false;
  std::set<std::string_view> copied;
  for (const auto& [k, v] : root_strings_) {
    entry(k, v);
    copied.insert(k);
    has_format_tag = has_format_tag || k == kFormatTagKey;
  }
  for (const auto& [k, v] : meta_strings_) {
    if (k == kDocumentKey || k == kIntegrityKey || k == kAliasesKey || !copied.insert(k).second) continue;
    entry(k, v);
    has_format_tag = has_format_tag || k == kFormatTagKey;
  }
  const std::optional<std::string> integrity = plain_ ? integrity_entry() : std::nullopt;
  const bool plain = plain_ && (!integrity_ || integrity);
  if (integrity) entry(kIntegrityKey, *integrity);
  if (!aliases_.empty()) entry(kAliasesKey, "{" + aliases_ + "}");
  if (!plain) {
    if (!has_format_tag) entry(kFormatTagKey, kFormatTagValue);
    entry(kDocumentKey, document_text(recorder_.tree(), recorder_.depth()));
  }
  std::string h = "{";
  if (!metadata.empty()) h += "\"" + std::string(kMetadataKey) + "\":{" + metadata + "}";
  if (!entries.empty()) h += metadata.empty() ? entries.substr(1) : entries;
  return h += "}";
}

void SafetensorsWriter::finish() {
  recorder_.check_done();
  if (finished_) fail(CKPT_ERR_INVALID_ARGUMENT, "finish called twice");
  // Here, on the whole entry, whether or not it is written: spill() builds headers from a
  // document still open.
  check_document_values(recorder_.tree());
  const std::string entries = resolve_copies();
  const std::string header = header_json(entries);
  uint64_t data_start = round_up(8 + header.size(), kDataAlignment);
  if (data_start > kMaxDataStart)
    fail(CKPT_ERR_UNSUPPORTED, "the header would be " + std::to_string(header.size()) +
                                   " bytes; safetensors readers refuse more than " + std::to_string(kMaxHeaderBytes));
  if (spilled_) {
    out_.flush();
    if (data_start > data_start_) {
      // Whole blocks where the cap allows, inserted at the block boundary just before the data
      // (in the padding), so that the file system can insert them.
      const uint64_t grown =
          std::min(round_up(data_start - kDataPageOffset, kReserveGranule) + kDataPageOffset, kMaxDataStart);
      out_.open_gap(data_start_ - kDataPageOffset, grown - data_start_);
      data_start_ = grown;
    }
    data_start = data_start_;
  }
  std::string head(data_start, ' ');
  const auto size = le64(data_start - 8);
  std::memcpy(head.data(), size.data(), 8);
  std::memcpy(head.data() + 8, header.data(), header.size());
  const auto head_bytes = std::as_bytes(std::span(head));
  if (spilled_) {
    out_.write_at(0, head_bytes);
  } else {
    out_.append(head_bytes);
    out_.append(stage_);
  }
  out_.close();
  finished_ = true;
}

}  // namespace ckpt_safetensors
