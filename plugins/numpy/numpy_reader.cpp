#include "numpy_reader.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <unordered_map>

namespace ckpt_numpy {

using ckpt::sdk::fail;

NumpyReader::NumpyReader(const std::string& path, const ckpt::sdk::ReadLimits& limits) : file_(path) {
  nodes_.push_back(Node{});
  const auto bytes = file_.bytes();
  if (bytes.size() >= 6 && std::memcmp(bytes.data(), "\x93NUMPY", 6) == 0)
    read_npy();
  else if (bytes.size() >= 4 && bytes[0] == std::byte{'P'} && bytes[1] == std::byte{'K'})
    read_npz(limits);
  else
    fail(CKPT_ERR_FORMAT, "neither a .npy array (no \\x93NUMPY magic) nor a .npz zip archive (no PK signature)");
}

void NumpyReader::read_npy() {
  Array a;
  a.where = "the array";
  a.header = parse_npy_header(file_.bytes(), a.where);
  a.data_at = a.header.data_offset;
  const uint64_t have = file_.size() - a.header.data_offset;
  if (have < a.header.nbytes)
    fail(CKPT_ERR_FORMAT, "the array is truncated: shape and dtype '" + a.header.descr + "' need " +
                              std::to_string(a.header.nbytes) + " bytes of data after the " +
                              std::to_string(a.header.data_offset) + "-byte header, the file holds " + std::to_string(have));
  if (have > a.header.nbytes)
    fail(CKPT_ERR_FORMAT, std::to_string(have - a.header.nbytes) + " bytes after the array's data (at byte " +
                              std::to_string(a.header.data_offset + a.header.nbytes) + ") belong to nothing");
  arrays_.push_back(std::move(a));
  Node n;
  n.name = kNpyTensorName;
  n.group = false;
  n.array = 0;
  nodes_.push_back(std::move(n));
  nodes_[0].children.push_back(1);
}

namespace {

// Children by (parent node, segment): each member costs its own name's bytes, never the full
// path of each of its folders again.
struct ChildKey {
  size_t parent;
  std::string name;
  bool operator==(const ChildKey& o) const { return parent == o.parent && name == o.name; }
};
struct ChildKeyHash {
  size_t operator()(const ChildKey& k) const { return std::hash<std::string>{}(k.name) ^ (k.parent * 0x9e3779b97f4a7c15ull); }
};

bool ends_with_npy(std::string_view s) { return s.size() >= 4 && s.compare(s.size() - 4, 4, ".npy") == 0; }

}  // namespace

void NumpyReader::read_npz(const ckpt::sdk::ReadLimits& limits) {
  // np.savez's names are exact (Python's zipfile compares them so) and lie in no common folder;
  // they are read as Python's zipfile decodes them (UTF-8 when flagged, else code page 437).
  zip_.emplace(file_.bytes(), file_.path(),
               ckpt_zip::ZipRules{.one_folder = false, .fold_case = false, .allow_empty = true, .python_names = true});
  // What the document costs as it is built (sdk_limits.hpp): each node, its name, its index
  // entry, and what the host holds for it.
  const uint64_t budget = limits.document_bytes_for(file_.size());
  uint64_t spent = 0;
  auto spend = [&](uint64_t bytes, const std::string& member) {
    spent += bytes;
    if (spent > budget)
      fail(CKPT_ERR_LIMIT, "member '" + member + "' takes the document past " + std::to_string(budget) +
                               " bytes (option max_document_bytes)");
  };
  std::unordered_map<ChildKey, size_t, ChildKeyHash> children;
  // The child `name` of `parent`, made when new; `path` (the key up to it) is for messages.
  auto find_child = [&](size_t parent, const std::string& name, bool group, const std::string& member,
                        const std::string& path) {
    auto it = children.find(ChildKey{parent, name});
    if (it != children.end()) {
      if (group && nodes_[it->second].group) return it->second;
      fail(CKPT_ERR_UNSUPPORTED, "member '" + member + "': '" + path + "' is " +
                                     (nodes_[it->second].group ? "a group (members below it)" : "an array") +
                                     " already, so it cannot also be " + (group ? "a group" : "an array") +
                                     " (a document name is one or the other)");
    }
    spend(sizeof(Node) + 2 * name.size() + 192, member);
    Node n;
    n.name = name;
    n.group = group;
    nodes_.push_back(std::move(n));
    const size_t id = nodes_.size() - 1;
    nodes_[parent].children.push_back(id);
    children.emplace(ChildKey{parent, name}, id);
    return id;
  };
  uint64_t listed = 0;
  for (const ckpt_zip::ZipEntry& e : zip_->entries()) {
    const std::string& name = e.name;
    const bool directory = !name.empty() && name.back() == '/';
    std::string key;
    if (directory) {
      if (e.size != 0) fail(CKPT_ERR_FORMAT, "directory member '" + name + "' holds " + std::to_string(e.size) + " bytes");
      key = name.substr(0, name.size() - 1);
    } else if (ends_with_npy(name)) {
      key = name.substr(0, name.size() - 4);
      if (key.empty())
        fail(CKPT_ERR_UNSUPPORTED, "member '.npy' is the array of the empty key (np.savez(**{'': a}); np.load gives it as "
                                   "z['']), and a document name is never empty, so ckpt cannot name it");
      // numpy.load's NpzFile looks a key up as a member name first: with a member 'x.npy'
      // (key 'x') beside 'x.npy.npy', z['x.npy'] is the array 'x', not this one.
      if (ends_with_npy(key) && zip_->find(key))
        fail(CKPT_ERR_UNSUPPORTED, "members '" + name + "' and '" + key + "': numpy.load gives key '" + key +
                                       "' to member '" + key + "' (it looks keys up as member names first), so member '" +
                                       name + "' has no key of its own; rename one of them");
    } else {
      fail(CKPT_ERR_UNSUPPORTED, "member '" + name + "' is not a .npy array (np.savez names every array '<key>.npy'; "
                                                     "np.load would hand this one out as raw bytes)");
    }
    // Folders deeper than any honest archive are refused before any node is made.
    const size_t depth = static_cast<size_t>(std::count(key.begin(), key.end(), '/')) + 1;
    if (depth > kMaxDepth)
      fail(CKPT_ERR_LIMIT, "member '" + name.substr(0, 200) + (name.size() > 200 ? "...'" : "'") + " lies " +
                               std::to_string(depth) + " levels deep; ckpt reads at most " + std::to_string(kMaxDepth));
    // Split the key at '/': every segment is a document name, so none may be empty.
    size_t parent = 0;
    for (size_t start = 0;;) {
      const size_t slash = key.find('/', start);
      const bool last = slash == std::string::npos;
      const size_t end = last ? key.size() : slash;
      if (end == start)
        fail(CKPT_ERR_UNSUPPORTED, "member '" + name + "': an empty name in its path ('/' at its start or end, or '//'); "
                                                       "a document name is never empty");
      const std::string segment = key.substr(start, end - start);
      if (!last) {
        parent = find_child(parent, segment, true, name, key.substr(0, end));
        start = slash + 1;
        continue;
      }
      if (directory) {
        find_child(parent, segment, true, name, key);
        break;
      }
      if (children.count(ChildKey{parent, segment}))
        fail(CKPT_ERR_UNSUPPORTED, "member '" + name + "': '" + key + "' is a group already (members below it), so it "
                                                                           "cannot also be an array");
      parse_member(e);
      listed += arrays_.back().header.nbytes;
      spend(sizeof(Array) + arrays_.back().where.size() + 16 * arrays_.back().header.shape.size(), name);
      const size_t node = find_child(parent, segment, false, name, key);
      nodes_[node].array = arrays_.size() - 1;
      break;
    }
  }
  // Deflate may claim up to 1032 times its input (checked per member when the archive opened);
  // what all members claim together is bounded like every reader's expansion.
  limits.check_expansion(listed, file_.size(), "", "its " + std::to_string(arrays_.size()) + " arrays");
}

void NumpyReader::parse_member(const ckpt_zip::ZipEntry& e) {
  Array a;
  a.where = "member '" + e.name + "'";
  a.entry = &e;
  if (e.method == 0) {
    a.header = parse_npy_header(file_.bytes().subspan(e.data_offset, e.size), a.where);
    a.data_at = e.data_offset + a.header.data_offset;
  } else {
    std::byte prefix[kPrefix2];
    const size_t n = static_cast<size_t>(std::min<uint64_t>(e.size, kPrefix2));
    zip_->inflate_head(e, {prefix, n});
    const uint64_t size = npy_header_size({prefix, n}, a.where);
    if (size > e.size)
      fail(CKPT_ERR_FORMAT, a.where + ": the .npy header (" + std::to_string(size) + " bytes) is longer than the member (" +
                                std::to_string(e.size) + " bytes)");
    std::vector<std::byte> head(size);
    // A member that is all header (an empty array) is inflated whole, so its CRC is checked.
    if (size == e.size)
      zip_->inflate_range(e, 0, head);
    else
      zip_->inflate_head(e, head);
    a.header = parse_npy_header(head, a.where);
    if (size == e.size) a.crc_checked = true;
  }
  const uint64_t have = e.size - a.header.data_offset;
  if (have != a.header.nbytes)
    fail(CKPT_ERR_FORMAT, a.where + (have < a.header.nbytes ? " is truncated" : " is longer than its array") +
                              ": its header (dtype '" + a.header.descr + "') needs " + std::to_string(a.header.nbytes) +
                              " bytes of data, the member holds " + std::to_string(have));
  arrays_.push_back(std::move(a));
  // A stored member of no data is checked now (its header is all there is, and no read of the
  // tensor would reach it); one with data when its data is first read or mapped.
  if (e.method == 0 && arrays_.back().header.nbytes == 0) check_crc(arrays_.back());
}

void NumpyReader::check_crc(Array& a) {
  if (a.crc_checked || !a.entry) return;
  if (a.entry->method == 0) zip_->check_stored_crc(*a.entry);  // deflated: inflate_range checks it
  a.crc_checked = true;
}

void NumpyReader::list_node(size_t n, const ckpt::sdk::Visitor& visitor) const {
  const Node& node = nodes_[n];
  if (!node.group) {
    const Array& a = arrays_[node.array];
    visitor.tensor(node.name, a.header.dtype, a.header.shape, a.header.nbytes, node.array);
    return;
  }
  visitor.begin_group(node.name);
  for (size_t c : node.children) list_node(c, visitor);
  visitor.end_group();
}

void NumpyReader::list(const ckpt::sdk::Visitor& visitor) { list_node(0, visitor); }

NumpyReader::Array& NumpyReader::array(uint64_t id) {
  if (id >= arrays_.size()) fail(CKPT_ERR_NOT_FOUND, "no tensor with id " + std::to_string(id));
  return arrays_[id];
}

void NumpyReader::read_tensor(uint64_t id, std::span<std::byte> dst) {
  Array& a = array(id);
  const NpyHeader& h = a.header;
  if (dst.size() != h.nbytes)
    fail(CKPT_ERR_INVALID_ARGUMENT, a.where + ": a buffer of " + std::to_string(dst.size()) + " bytes for " +
                                        std::to_string(h.nbytes));
  if (h.nbytes == 0) return;
  if (!a.entry || a.entry->method == 0) {
    check_crc(a);
    if (h.plain())
      file_.read_at(a.data_at, dst);
    else
      to_tensor_layout(h, file_.bytes().subspan(a.data_at, h.nbytes), dst);
    return;
  }
  if (h.plain()) {
    zip_->inflate_range(*a.entry, h.data_offset, dst);
    return;
  }
  std::vector<std::byte> stored(h.nbytes);
  zip_->inflate_range(*a.entry, h.data_offset, stored);
  to_tensor_layout(h, stored, dst);
}

const void* NumpyReader::map_tensor(uint64_t id) {
  Array& a = array(id);
  if (mappable(a)) {
    // A stored member's CRC is checked when its mapping is first handed out: the one pass over
    // its bytes that reading them needs anyway, and never at open (listing stays lazy).
    check_crc(a);
    return file_.data() + a.data_at;
  }
  if (a.materialized.empty() && a.header.nbytes > 0) {
    std::vector<std::byte> copy(a.header.nbytes);
    read_tensor(id, copy);
    a.materialized = std::move(copy);
  }
  return a.materialized.data();
}

}  // namespace ckpt_numpy
