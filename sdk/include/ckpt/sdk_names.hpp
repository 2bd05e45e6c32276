// An index of names that live elsewhere (in a vector of members, a header's entries): a hash
// table with open addressing that keeps positions, not copies of the names. A group of a
// million members costs 16 bytes a member and one allocation per doubling, where a map of
// strings cost a node and a string each (and, freeing them, as much time as building them).
// Lookups ask the owner for member i's name through `name_of`, so the owner may move its
// storage freely: the index holds no pointer into it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt::sdk {

// A key of another format (a dict key, an ONNX name) as a document name, which holds no '/' or
// NUL and is never empty: '/' -> %2F, NUL -> %00, '%' -> %25, and the empty key "%". Every
// key has its own name, so a literal "a%2Fb" and an escaped "a/b" stay apart.
inline std::string escape_name(std::string_view key) {
  if (key.empty()) return "%";
  std::string out;
  out.reserve(key.size());
  for (char c : key) {
    if (c == '/') out += "%2F";
    else if (c == '%') out += "%25";
    else if (c == '\0') out += "%00";
    else out += c;
  }
  return out;
}

// The inverse of escape_name; nullopt for a name it does not produce.
inline std::optional<std::string> unescape_name(std::string_view name) {
  if (name == "%") return std::string();
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] != '%') {
      out += name[i];
      continue;
    }
    const std::string_view code = name.substr(i + 1, 2);
    if (code == "2F") out += '/';
    else if (code == "25") out += '%';
    else if (code == "00") out += '\0';
    else return std::nullopt;
    i += 2;
  }
  return out;
}

class NameIndex {
 public:
  // The position of `name`, if a member holds it. `name_of(i)` gives member i's name.
  template <class NameOf>
  std::optional<size_t> find(std::string_view name, const NameOf& name_of) const {
    if (slots_.empty()) return std::nullopt;
    const uint32_t h = hash(name);
    for (size_t s = h & mask(); slots_[s]; s = (s + 1) & mask()) {
      const uint64_t v = slots_[s];
      if (static_cast<uint32_t>(v >> 32) == h && name_of(static_cast<size_t>(v & 0xffffffffu) - 1) == name)
        return static_cast<size_t>(v & 0xffffffffu) - 1;
    }
    return std::nullopt;
  }

  // Records member `i` under its name; false (nothing recorded) when another member holds it.
  template <class NameOf>
  bool insert(size_t i, const NameOf& name_of) {
    if (i >= 0xfffffffeu) throw std::length_error("more than 2^32 - 2 members in one index");
    if ((count_ + 1) * 2 > slots_.size()) grow(name_of);
    const std::string_view name = name_of(i);
    const uint32_t h = hash(name);
    size_t s = h & mask();
    for (; slots_[s]; s = (s + 1) & mask()) {
      const uint64_t v = slots_[s];
      if (static_cast<uint32_t>(v >> 32) == h && name_of(static_cast<size_t>(v & 0xffffffffu) - 1) == name) return false;
    }
    slots_[s] = (uint64_t{h} << 32) | (i + 1);
    ++count_;
    return true;
  }

  // Forgets everything; then members 0..n-1 are indexed again (after an erase shifted them).
  template <class NameOf>
  void rebuild(size_t n, const NameOf& name_of) {
    slots_.clear();
    count_ = 0;
    for (size_t i = 0; i < n; ++i) insert(i, name_of);
  }

  size_t size() const { return count_; }

 private:
  static uint32_t hash(std::string_view s) {
    const size_t h = std::hash<std::string_view>{}(s);
    // 0 marks an empty slot's hash half only together with position 0, which never occurs
    // (positions are stored plus one).
    return static_cast<uint32_t>(h ^ (h >> 32));
  }
  size_t mask() const { return slots_.size() - 1; }
  template <class NameOf>
  void grow(const NameOf&) {
    std::vector<uint64_t> old;
    old.swap(slots_);
    slots_.assign(old.empty() ? 16 : old.size() * 2, 0);
    for (uint64_t v : old)
      if (v) {
        size_t s = static_cast<uint32_t>(v >> 32) & mask();
        while (slots_[s]) s = (s + 1) & mask();
        slots_[s] = v;
      }
  }

  std::vector<uint64_t> slots_;  // (hash << 32) | (position + 1); 0: empty
  size_t count_ = 0;
};

}  // namespace ckpt::sdk
