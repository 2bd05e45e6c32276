#include "gguf_integrity.hpp"

#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace ckpt_gguf {

namespace {

std::string hex64(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// The records of docs/schema.md: `G <n>:<path>`, `A <n>:<path> <type> <value>`,
// `T <n>:<path> <dtype> [d0, d1] <digest>`, collected from the reader's listing.
struct Collector {
  const std::vector<std::string>* digests = nullptr;
  std::vector<std::string> stack;  // the open groups' paths; the root's is ""
  int skipping = 0;                // inside meta/integrity, which the manifest leaves out
  std::vector<std::string> lines;

  static std::string path_text(const std::string& p) { return std::to_string(p.size()) + ":" + p; }
  std::string join(const char* name) const {
    const std::string& prefix = stack.empty() ? std::string() : stack.back();
    return prefix.empty() ? std::string(name) : prefix + "/" + name;
  }

  static void str(std::string& out, const ckpt_str& s) {
    out += std::to_string(s.size) + ":";
    out.append(s.data, s.size);
  }
  static void dbl(std::string& out, double d) {
    uint64_t bits = 0;
    std::memcpy(&bits, &d, sizeof bits);
    out += hex64(bits);
  }
  static std::string value_text(const ckpt_value& v) {
    // The core's value_type_name, by CKPT_VALUE_* (1 to 8).
    static const char* names[] = {"?", "bool", "int64", "float64", "string", "bool[]", "int64[]", "float64[]", "string[]"};
    std::string out = v.type <= CKPT_VALUE_STRING_ARRAY ? names[v.type] : "?";
    out += ' ';
    switch (v.type) {
      case CKPT_VALUE_BOOL: out += v.u.b ? "1" : "0"; break;
      case CKPT_VALUE_INT64: out += std::to_string(v.u.i); break;
      case CKPT_VALUE_FLOAT64: dbl(out, v.u.f); break;
      case CKPT_VALUE_STRING: str(out, v.u.s); break;
      default: {
        out += std::to_string(v.count) + "[";
        for (uint64_t i = 0; i < v.count; ++i) {
          switch (v.type) {
            case CKPT_VALUE_BOOL_ARRAY: out += v.u.bools[i] ? "1" : "0"; break;
            case CKPT_VALUE_INT64_ARRAY: out += std::to_string(v.u.ints[i]); break;
            case CKPT_VALUE_FLOAT64_ARRAY: dbl(out, v.u.floats[i]); break;
            default: str(out, v.u.strings[i]); break;
          }
          out += ',';
        }
        out += ']';
      }
    }
    return out;
  }

  static ckpt_status* begin_group(void* ctx, const char* name) {
    auto& c = *static_cast<Collector*>(ctx);
    if (c.stack.empty()) {
      c.stack.emplace_back();
      return nullptr;
    }
    const std::string p = c.join(name);
    if (c.skipping || p == "meta/integrity") ++c.skipping;
    else c.lines.push_back("G " + path_text(p));
    c.stack.push_back(p);
    return nullptr;
  }
  static ckpt_status* end_group(void* ctx) {
    auto& c = *static_cast<Collector*>(ctx);
    if (c.skipping) --c.skipping;
    c.stack.pop_back();
    return nullptr;
  }
  static ckpt_status* attribute(void* ctx, const char* name, const ckpt_value* v) {
    auto& c = *static_cast<Collector*>(ctx);
    if (!c.skipping) c.lines.push_back("A " + path_text(c.join(name)) + " " + value_text(*v));
    return nullptr;
  }
  static ckpt_status* tensor(void* ctx, const ckpt_tensor_desc* d) {
    auto& c = *static_cast<Collector*>(ctx);
    if (c.skipping) return nullptr;
    std::string shape = "[";
    for (uint32_t i = 0; i < d->rank; ++i) shape += (i ? ", " : "") + std::to_string(d->shape[i]);
    shape += "]";
    const char* dtype = ckpt::sdk::dtype_name(d->dtype);
    const std::string& digest = d->id < c.digests->size() ? (*c.digests)[d->id] : std::string("-");
    c.lines.push_back("T " + path_text(c.join(d->name)) + " " + (dtype ? dtype : "?") + " " + shape + " " + digest);
    return nullptr;
  }
};

}  // namespace

std::string digest_hex(std::span<const std::byte> bytes) { return hex64(XXH3_64bits(bytes.data(), bytes.size())); }

std::string manifest_digest(const Parsed& parsed, const std::vector<std::string>& digests) {
  Parsed listed = parsed;
  if (!listed.integrity) listed.integrity = IntegrityRecord{};  // its group meta is in the manifest
  Collector c;
  c.digests = &digests;
  ckpt_visitor v{};
  v.struct_size = sizeof v;
  v.ctx = &c;
  v.begin_group = &Collector::begin_group;
  v.end_group = &Collector::end_group;
  v.attribute = &Collector::attribute;
  v.tensor = &Collector::tensor;
  list_document(listed, ckpt::sdk::Visitor(&v));
  std::sort(c.lines.begin(), c.lines.end());
  std::string text;
  for (const auto& l : c.lines) text += l + "\n";
  return hex64(XXH3_64bits(text.data(), text.size()));
}

}  // namespace ckpt_gguf
