#include "st_header_fast.hpp"

#include "st_layout.hpp"

#include <ckpt/sdk_names.hpp>

#include <simdjson.h>

#include <charconv>
#include <limits>

namespace ckpt_safetensors {

namespace {

namespace sj = simdjson;
namespace od = simdjson::ondemand;

// Where the exact parser says a key ends: the byte after its closing quote, as a file offset.
uint64_t past_key(const char* raw, const char* base) {
  const char* p = raw;
  while (*p != '"') p += *p == '\\' ? 2 : 1;
  return 8 + static_cast<uint64_t>(p + 1 - base);
}

// A JSON integer of plain digits that fits `max`; anything else (a sign, a fraction, an
// exponent) is left to the exact parser.
bool whole_number(od::value v, uint64_t max, uint64_t& out) {
  std::string_view t = v.raw_json_token();
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\n' || t.back() == '\r')) t.remove_suffix(1);
  if (t.empty() || t[0] < '0' || t[0] > '9') return false;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  return ec == std::errc() && p == t.data() + t.size() && out <= max;
}

bool tensor(od::object o, TensorEntry& t) {
  unsigned seen = 0;
  for (auto f : o) {
    od::field field;
    if (std::move(f).get(field)) return false;
    std::string_view k;
    if (field.unescaped_key().get(k)) return false;
    od::value v = field.value();
    if (k == "dtype") {
      if (seen & 1) return false;
      seen |= 1;
      std::string_view name;
      if (v.get_string().get(name)) return false;
      t.dtype = st_dtype_from_name(std::string(name));
      if (!t.dtype) return false;
    } else if (k == "shape") {
      if (seen & 2) return false;
      seen |= 2;
      od::array a;
      if (v.get_array().get(a)) return false;
      for (auto e : a) {
        od::value d;
        uint64_t n = 0;
        if (std::move(e).get(d) || !whole_number(d, static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), n)) return false;
        t.shape.push_back(static_cast<int64_t>(n));
      }
    } else if (k == "data_offsets") {
      if (seen & 4) return false;
      seen |= 4;
      od::array a;
      if (v.get_array().get(a)) return false;
      int count = 0;
      for (auto e : a) {
        od::value d;
        uint64_t n = 0;
        if (count == 2 || std::move(e).get(d) || !whole_number(d, std::numeric_limits<uint64_t>::max(), n)) return false;
        (count++ == 0 ? t.begin : t.end) = n;
      }
      if (count != 2) return false;
    } else {
      return false;
    }
  }
  return seen == 7;
}

bool metadata(od::object o, const char* base, Header& h) {
  ckpt::sdk::NameIndex keys;
  auto key_of = [&](size_t i) -> std::string_view { return h.metadata[i].key; };
  for (auto f : o) {
    od::field field;
    if (std::move(f).get(field)) return false;
    MetadataEntry m;
    m.at = past_key(field.key().raw(), base);
    std::string_view k, v;
    if (field.unescaped_key().get(k) || field.value().get_string().get(v)) return false;
    m.key = k;
    m.value = v;
    h.metadata.push_back(std::move(m));
    if (!keys.insert(h.metadata.size() - 1, key_of)) return false;
  }
  return true;
}

}  // namespace

bool parse_header_fast(const char* text, uint64_t readable, Header& h) {
  try {
    sj::padded_string copy;
    sj::padded_string_view view;
    // In place when the padding simdjson reads past the header lies in the header's last page:
    // a page of tensor data touched here would bring megabytes of it in by readahead.
    const uint64_t end = 8 + h.size;
    if (readable >= sj::SIMDJSON_PADDING && end % 4096 != 0 && end % 4096 + sj::SIMDJSON_PADDING <= 4096) {
      view = sj::padded_string_view(text, h.size, h.size + sj::SIMDJSON_PADDING);
    } else {
      copy = sj::padded_string(text, h.size);
      view = copy;
    }
    const char* base = view.data();
    od::parser parser;
    od::document doc;
    if (parser.iterate(view).get(doc)) return false;
    od::object root;
    if (doc.get_object().get(root)) return false;
    ckpt::sdk::NameIndex keys;
    auto key_of = [&](size_t i) -> std::string_view { return h.tensors[i].key; };
    for (auto f : root) {
      od::field field;
      if (std::move(f).get(field)) return false;
      const uint64_t at = past_key(field.key().raw(), base);
      std::string_view k;
      if (field.unescaped_key().get(k)) return false;
      od::object value;
      if (field.value().get_object().get(value)) return false;
      if (k == kMetadataKey) {
        if (h.has_metadata) return false;
        h.has_metadata = true;
        if (!metadata(value, base, h)) return false;
        continue;
      }
      TensorEntry& t = h.tensors.emplace_back();
      t.key = k;
      t.at = at;
      if (!keys.insert(h.tensors.size() - 1, key_of) || !tensor(value, t)) return false;
    }
    // Nothing but whitespace after the root object.
    const char* rest = nullptr;
    return doc.current_location().get(rest) == sj::OUT_OF_BOUNDS;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace ckpt_safetensors
