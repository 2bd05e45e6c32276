#include "box_copy.hpp"
#include "loaded_plugin.hpp"
#include "status.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/errors_renamed.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/format_io.hpp>
#include <ckpt/layout.hpp>
#include <ckpt/sdk.hpp>
#include <ckpt/sdk_records.hpp>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <unordered_map>

namespace ckpt {

// ---- transposed reads ---------------------------------------------------------------------------

namespace {

struct Bytes16 {
  std::byte b[16];
};

// Copies a block of elements in stored order (`count` of them along each stored dimension) to
// their places in the listed layout: a step along stored dimension d moves dst_stride[d]
// elements there. The innermost dimension is a tight loop of typed copies.
template <class T>
void scatter(const std::byte* src, std::byte* dst, const std::vector<uint64_t>& count,
             const std::vector<uint64_t>& dst_stride, uint64_t dst_base) {
  const size_t r = count.size();
  std::vector<uint64_t> idx(r, 0);
  T* d = reinterpret_cast<T*>(dst);
  const uint64_t inner = count[r - 1], inner_stride = dst_stride[r - 1];
  uint64_t outer = dst_base;
  for (;;) {
    uint64_t o = outer;
    for (uint64_t j = 0; j < inner; ++j, o += inner_stride, src += sizeof(T)) std::memcpy(d + o, src, sizeof(T));
    // The odometer over all but the innermost dimension.
    size_t k = r - 1;
    for (;;) {
      if (k == 0) return;
      --k;
      outer += dst_stride[k];
      if (++idx[k] < count[k]) break;
      outer -= dst_stride[k] * idx[k];
      idx[k] = 0;
    }
  }
}

}  // namespace

// ---- values across the boundary ---------------------------------------------------------------

namespace {

// A C view of a Value; owns the temporary arrays the view points into.
struct CValue {
  ckpt_value v{};
  std::vector<uint8_t> bools;
  std::vector<ckpt_str> strings;

  explicit CValue(const Value& value) {
    v.type = static_cast<uint32_t>(value.index() + 1);
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, bool>) {
            v.u.b = x ? 1 : 0;
          } else if constexpr (std::is_same_v<T, int64_t>) {
            v.u.i = x;
          } else if constexpr (std::is_same_v<T, double>) {
            v.u.f = x;
          } else if constexpr (std::is_same_v<T, std::string>) {
            v.u.s = {x.data(), x.size()};
          } else if constexpr (std::is_same_v<T, std::vector<bool>>) {
            bools.assign(x.begin(), x.end());
            v.count = bools.size();
            v.u.bools = bools.data();
          } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
            v.count = x.size();
            v.u.ints = x.data();
          } else if constexpr (std::is_same_v<T, std::vector<double>>) {
            v.count = x.size();
            v.u.floats = x.data();
          } else {
            for (const auto& s : x) strings.push_back({s.data(), s.size()});
            v.count = strings.size();
            v.u.strings = strings.data();
          }
        },
        value);
  }
};

// Arrays from a plugin are bounded by what it could have read from its file; a count that
// overflows when multiplied is rejected before anything is copied.
Value from_c(const ckpt_value& v, const std::string& where) {
  auto need = [&](const void* p) {
    if (v.count > (uint64_t(1) << 40)) throw PluginError(where + ": attribute array of " + std::to_string(v.count) + " elements");
    if (v.count && !p) throw PluginError(where + ": attribute array without data");
  };
  switch (v.type) {
    case CKPT_VALUE_BOOL: return v.u.b != 0;
    case CKPT_VALUE_INT64: return v.u.i;
    case CKPT_VALUE_FLOAT64: return v.u.f;
    case CKPT_VALUE_STRING:
      if (v.u.s.size && !v.u.s.data) throw PluginError(where + ": string without data");
      return std::string(v.u.s.data ? v.u.s.data : "", v.u.s.size);
    case CKPT_VALUE_BOOL_ARRAY: {
      need(v.u.bools);
      std::vector<bool> out(v.count);
      for (uint64_t i = 0; i < v.count; ++i) out[i] = v.u.bools[i] != 0;
      return out;
    }
    case CKPT_VALUE_INT64_ARRAY:
      need(v.u.ints);
      return std::vector<int64_t>(v.u.ints, v.u.ints + v.count);
    case CKPT_VALUE_FLOAT64_ARRAY:
      need(v.u.floats);
      return std::vector<double>(v.u.floats, v.u.floats + v.count);
    case CKPT_VALUE_STRING_ARRAY: {
      need(v.u.strings);
      std::vector<std::string> out;
      out.reserve(v.count);
      for (uint64_t i = 0; i < v.count; ++i) {
        if (v.u.strings[i].size && !v.u.strings[i].data) throw PluginError(where + ": string without data");
        out.emplace_back(v.u.strings[i].data ? v.u.strings[i].data : "", v.u.strings[i].size);
      }
      return out;
    }
    default:
      throw PluginError(where + ": unknown attribute type " + std::to_string(v.type));
  }
}

}  // namespace

// ---- FormatWriter -------------------------------------------------------------------------------

FormatWriter::FormatWriter(std::shared_ptr<LoadedPlugin> lib, std::string format, fs::path path,
                           ckpt_writer* w, const ckpt_writer_api* api, uint32_t dtypes)
    : lib_(std::move(lib)), format_(std::move(format)), path_(std::move(path)), w_(w), api_(api), dtypes_(dtypes) {}

FormatWriter::~FormatWriter() {
  if (w_) api_->destroy(w_);
}

void FormatWriter::check(ckpt_status* s, const std::string& where) {
  if (s) detail::throw_status(s, "writing '" + path_.string() + "' as " + format_ + " at " + where);
}

void FormatWriter::begin_group(const std::string& name, uint64_t na, uint64_t nc) {
  check(api_->begin_group(w_, name.c_str(), na, nc), name.empty() ? "/" : name);
}
void FormatWriter::end_group() { check(api_->end_group(w_), "end of group"); }
void FormatWriter::attribute(const std::string& name, const Value& value) {
  CValue c(value);
  check(api_->attribute(w_, name.c_str(), &c.v), "attribute " + name);
}
void FormatWriter::tensor(const std::string& name, DType dtype, const Shape& shape,
                          std::span<const std::byte> data) {
  // A plugin built before a dtype existed cannot know it; one that does not declare it has
  // said it cannot keep it. convert casts (or refuses) before it gets here.
  if (!(dtypes_ & (1u << static_cast<unsigned>(dtype))))
    throw UnsupportedError("writing '" + path_.string() + "' as " + format_ + " at tensor " + name + ": " + format_ +
                           " does not hold dtype " + std::string(ckpt::name(dtype)));
  ckpt_tensor_desc d{};
  d.struct_size = sizeof d;
  d.dtype = static_cast<uint32_t>(dtype);
  d.name = name.c_str();
  d.rank = static_cast<uint32_t>(shape.size());
  d.shape = shape.data();
  d.nbytes = data.size();
  check(api_->tensor(w_, &d, data.data()), "tensor " + name);
}
void FormatWriter::finish() { check(api_->finish(w_), "finish"); }

void FormatWriter::committed(const fs::path& path) noexcept {
  // v1.0 and v1.1 plugins have no such entry.
  if (!CKPT_HAS_FIELD(api_, ckpt_writer_api, committed) || !api_->committed) return;
  if (ckpt_status* s = api_->committed(w_, path.c_str())) detail::release_status(s);
}

void FormatWriter::write(const Document& doc) {
  write(doc, [](const std::string&, const Tensor& t) { return t.bytes(); });
}

void FormatWriter::write(const Document& doc, const TensorSource& source) {
  // A layout that writes this format gets the document first (ckpt/layout.hpp): the plugin
  // writes the native structure it is given, the ONNX graph of model/spec included.
  for (const auto& layout : layout_adapters()) {
    const std::optional<Group> native = layout->to_native(doc, format_);
    if (!native) continue;
    if (!native->attributes().empty() || native->tensor_count())
      throw Error("layout " + std::string(layout->name()) + " gave the " + format_ + " writer attributes or tensors of its own");
    // The document itself, not a copy: convert fills meta/integrity while the walk runs.
    begin_group("", doc.attributes().size(), doc.children().size() + native->children().size());
    for (const auto& a : doc.attributes()) attribute(a.name, a.value);
    for (const Group* g : {&doc, &*native})
      for (const auto& c : g->children()) {
        if (c.is_tensor())
          tensor(c.name, c.tensor().dtype(), c.tensor().shape(), source(c.name, c.tensor()));
        else
          write_group(c.name, c.name, c.group(), source);
      }
    end_group();
    finish();
    return;
  }
  write_group("", "", doc, source);
  finish();
}

void FormatWriter::write_group(const std::string& name, const std::string& path, const Group& g,
                               const TensorSource& source) {
  begin_group(name, g.attributes().size(), g.children().size());
  for (const auto& a : g.attributes()) attribute(a.name, a.value);
  for (const auto& c : g.children()) {
    std::string p = join_path(path, c.name);
    if (c.is_tensor())
      tensor(c.name, c.tensor().dtype(), c.tensor().shape(), source(p, c.tensor()));
    else
      write_group(c.name, p, c.group(), source);
  }
  end_group();
}

// ---- FormatReader -------------------------------------------------------------------------------

FormatReader::FormatReader(std::shared_ptr<LoadedPlugin> lib, FormatInfo info, fs::path path,
                           ckpt_reader* r, const ckpt_reader_api* api, Options options)
    : lib_(std::move(lib)), info_(std::move(info)), path_(std::move(path)), r_(r), api_(api),
      options_(std::move(options)) {}

FormatReader::~FormatReader() {
  if (r_) api_->destroy(r_);
}

void FormatReader::check(ckpt_status* s, const std::string& where) {
  if (s) detail::throw_status(s, "'" + path_.string() + "' (" + info_.name + ")" + (where.empty() ? "" : " at " + where));
}

namespace {

// Builds the tree from list()'s events, checking what the plugin reports.
struct TreeBuilder {
  std::string file;
  Document root;
  std::vector<Group*> stack;
  std::string prefix;                  // the open group's path
  std::vector<size_t> prefix_lengths;  // prefix's length before each open group was added
  std::vector<uint64_t> ids;           // the plugin's id of each tensor, in listing order
  bool done = false;
  uint32_t dtypes = 0;  // the plugin's declared dtype mask: a reader lists no other
  // What the tree may cost, whatever the plugin lists: 64 MiB plus 16 bytes per byte of the
  // file (a reader that repeats shared content, or a file of 16 million empty strings, would
  // otherwise cost gigabytes from megabytes). Estimated per member from what the tree holds.
  uint64_t budget = 0;
  uint64_t budget_left = 0;
  void spend(uint64_t bytes) {
    if (bytes > budget_left)
      bad("the listing would take more than " + std::to_string(budget >> 20) + " MiB of memory for a file of this size (its "
          "groups, attributes and names; a document this large from so small a file is refused)");
    budget_left -= bytes;
  }

  const std::string& path() const { return prefix; }
  [[noreturn]] void bad(const std::string& what) const {
    throw FormatError("'" + file + "' at " + (path().empty() ? "/" : path()) + ": " + what);
  }
  void begin(const char* name) {
    if (done) bad("data after the root group");
    if (stack.empty()) {
      stack.push_back(&root);
      prefix_lengths.push_back(0);
      return;
    }
    if (stack.size() > 4096) bad("groups nested deeper than 4096");
    if (!name) name = "";
    try {
      stack.push_back(&stack.back()->add_group(name));
    } catch (const UsageError& e) {
      bad(e.what());
    }
    prefix_lengths.push_back(prefix.size());
    if (!prefix.empty()) prefix += '/';
    prefix += name;
    spend(256 + std::strlen(name));
  }
  void end() {
    if (stack.empty()) bad("end of a group that was not begun");
    stack.pop_back();
    prefix.resize(prefix_lengths.back());
    prefix_lengths.pop_back();
    if (stack.empty()) done = true;
  }
  void attribute(const char* name, const ckpt_value* v) {
    if (stack.empty()) bad("attribute outside any group");
    if (!v) bad("attribute without a value");
    std::string n = name ? name : "";
    try {
      check_name(n);
      if (stack.back()->attribute(n)) bad("duplicate attribute '" + n + "'");
      uint64_t cost = 96 + n.size();
      switch (v->type) {
        case CKPT_VALUE_STRING: cost += v->u.s.size; break;
        case CKPT_VALUE_BOOL_ARRAY: cost += v->count; break;
        case CKPT_VALUE_INT64_ARRAY:
        case CKPT_VALUE_FLOAT64_ARRAY: cost += 8 * v->count; break;
        case CKPT_VALUE_STRING_ARRAY:
          for (uint64_t i = 0; i < v->count && cost <= budget_left; ++i) cost += 32 + v->u.strings[i].size;
          break;
        default: break;
      }
      spend(cost);
      stack.back()->set(n, from_c(*v, join_path(path(), n)));
    } catch (const UsageError& e) {
      bad(e.what());
    }
  }
  void tensor(const ckpt_tensor_desc* d) {
    if (stack.empty()) bad("tensor outside any group");
    if (!d || d->struct_size < offsetof(ckpt_tensor_desc, id) + sizeof(d->id)) bad("tensor description too small");
    std::string n = d->name ? d->name : "";
    if (d->rank && !d->shape) bad("tensor '" + n + "' has a rank but no shape");
    if (d->dtype < static_cast<uint32_t>(kFirstDType) || d->dtype > static_cast<uint32_t>(kLastDType)) bad("tensor '" + n + "' has unknown dtype " + std::to_string(d->dtype));
    // What a plugin does not declare, the host was never told how the plugin lays out (a block
    // dtype from a reader that does not know blocks).
    if (!(dtypes & CKPT_DTYPE_BIT(d->dtype)))
      bad("tensor '" + n + "' has dtype " + std::string(name(static_cast<DType>(d->dtype))) + ", which the format does not declare");
    if (d->rank > 64) bad("tensor '" + n + "' has rank " + std::to_string(d->rank));
    Shape shape(d->shape, d->shape + d->rank);
    uint64_t bytes = 0;
    try {
      bytes = sdk::tensor_nbytes(shape, d->dtype, "tensor '" + n + "'");
    } catch (const sdk::Error& e) {
      bad(e.what());
    }
    if (bytes != d->nbytes)
      bad("tensor '" + n + "' " + shape_string(shape) + " reports " + std::to_string(d->nbytes) + " bytes");
    spend(160 + n.size() + 8 * shape.size());
    try {
      stack.back()->add_tensor(n, Tensor(static_cast<DType>(d->dtype), std::move(shape), nullptr));
    } catch (const UsageError& e) {
      bad(e.what());
    }
    ids.push_back(d->id);
  }
};

template <class F>
ckpt_status* host_guard(F&& f) {
  try {
    f();
    return nullptr;
  } catch (const std::exception& e) {
    return detail::host_api()->make_status(CKPT_ERR_FORMAT, e.what());
  }
}

}  // namespace

namespace {
// Tensors sit a Node's size apart in their group's vector: their addresses need mixing before
// they can index a table (Fibonacci hashing).
size_t slot_of(const Tensor* t, size_t slots) {
  const uint64_t h = (reinterpret_cast<uintptr_t>(t) >> 3) * 0x9E3779B97F4A7C15ull;
  return static_cast<size_t>(h >> 32) & (slots - 1);
}
}  // namespace

namespace {

void merge_into(Group& into, const Group& from, const std::string& prefix, const std::string& part,
                std::unordered_map<std::string, uint64_t>& part_of, uint64_t part_index) {
  for (const auto& a : from.attributes()) {
    const std::string p = join_path(prefix, a.name);
    if (const Value* had = into.attribute(a.name)) {
      if (!value_equal(*had, a.value))
        throw FormatError("'" + part + "' at " + p + ": " + value_to_string(a.value) + ", where another shard holds " +
                          value_to_string(*had) + " (the shards of one checkpoint must agree)");
    } else {
      into.set(a.name, a.value);
    }
  }
  for (const auto& c : from.children()) {
    const std::string p = join_path(prefix, c.name);
    if (c.is_group()) {
      Group* g = into.find_group(c.name);
      if (!g) {
        if (into.find(c.name)) throw FormatError("'" + part + "' at " + p + ": a group where another shard holds a tensor");
        g = &into.add_group(c.name);
      }
      merge_into(*g, c.group(), p, part, part_of, part_index);
      continue;
    }
    if (into.find(c.name)) throw FormatError("'" + part + "' at " + p + ": a tensor another shard holds too (which one is read?)");
    into.add_tensor(c.name, c.tensor());
    part_of.emplace(p, part_index);
  }
}

}  // namespace

std::shared_ptr<FormatReader> FormatReader::merged(fs::path path, std::vector<std::shared_ptr<FormatReader>> parts) {
  if (parts.empty()) throw UsageError("a merged reader of no parts");
  Document doc;
  std::unordered_map<std::string, uint64_t> part_of;
  for (size_t i = 0; i < parts.size(); ++i) merge_into(doc, parts[i]->tree(), "", parts[i]->path().string(), part_of, i);
  // Each tensor is one whole chunk of its part: the sharded reader's case of chunks that are
  // whole tensors (Hugging Face's shards).
  std::vector<std::vector<ChunkRef>> chunks;
  doc.for_each_tensor([&](const std::string& p, const Tensor& t) {
    chunks.push_back({ChunkRef{part_of.at(p), p, std::vector<int64_t>(t.rank(), 0), t.shape(), {}}});
  });
  FormatInfo info = parts.front()->format();
  const size_t n = parts.size();
  return chunked(std::move(path), std::move(info), std::move(doc), std::move(chunks), n,
                 [parts = std::move(parts)](size_t k) { return parts.at(k); }, {});
}

std::shared_ptr<FormatReader> FormatReader::chunked(
    fs::path path, FormatInfo info, Document tree, std::vector<std::vector<ChunkRef>> chunks, size_t parts,
    std::function<std::shared_ptr<FormatReader>(size_t part)> open_part,
    std::function<std::vector<std::string>(uint64_t& tensors, uint64_t& bytes)> self_check,
    std::vector<std::pair<std::string, std::string>> names) {
  auto r = std::shared_ptr<FormatReader>(new FormatReader(nullptr, std::move(info), std::move(path), nullptr, nullptr));
  r->tree_ = std::move(tree);
  r->chunked_ = true;
  r->part_names_ = std::move(names);
  r->chunks_ = std::move(chunks);
  r->parts_.resize(parts);
  r->open_part_ = std::move(open_part);
  r->self_check_ = std::move(self_check);
  size_t n = 0, slots = 16;
  r->tree_->for_each_tensor([&](const std::string&, const Tensor&) { ++n; });
  if (n != r->chunks_.size())
    throw UsageError("a chunked reader of " + std::to_string(n) + " tensors given chunks for " + std::to_string(r->chunks_.size()));
  while (slots < n * 2) slots *= 2;
  r->ids_.assign(slots, {nullptr, 0});
  uint64_t id = 0;
  r->tree_->for_each_tensor([&](const std::string&, const Tensor& t) {
    size_t s = slot_of(&t, slots);
    while (r->ids_[s].first) s = (s + 1) & (slots - 1);
    r->ids_[s] = {&t, id++};
  });
  return r;
}

std::shared_ptr<FormatReader> FormatReader::part(size_t k) {
  std::shared_ptr<FormatReader>& p = parts_.at(k);
  if (!p) p = open_part_(k);
  return p;
}

void FormatReader::rethrow_part_error() const {
  rethrow_renamed([this](std::string text) {
    for (const auto& [from, to] : part_names_) text = replace_path(std::move(text), from, to);
    return text;
  });
}

void FormatReader::check_chunk(const ChunkRef& c, std::span<const std::byte> bytes, const std::string& path) {
  if (c.xxh3.empty() || chunk_checked_[&c]) return;
  if (const std::string h = hash_hex(hash_bytes(bytes)); h != c.xxh3)
    throw IntegrityError("'" + path_.string() + "' at " + path + ": chunk '" + c.name + "' has hash " + h +
                         ", the index records " + c.xxh3 + " (the shard was changed after it was written)");
  chunk_checked_[&c] = true;
}

Tensor FormatReader::chunk_bytes(const ChunkRef& c, const std::string& path) {
  try {
    const auto reader = part(c.part);
    std::optional<Tensor> bytes = reader->map(c.name);
    if (!bytes) bytes = reader->read(c.name);
    check_chunk(c, bytes->bytes(), path);
    return *bytes;
  } catch (...) {
    rethrow_part_error();
  }
}

void FormatReader::read_chunked(uint64_t id, const Tensor& listed, const std::string& path, std::span<std::byte> dst) {
  const auto& chunks = chunks_.at(id);
  if (chunks.size() == 1 && chunks[0].sizes == listed.shape()) {
    // One whole chunk: read straight into dst (a part that does not map is not read into a
    // tensor of its own first), then checked there.
    const ChunkRef& c = chunks[0];
    try {
      const auto reader = part(c.part);
      if (const std::optional<Tensor> mapped = reader->map(c.name)) {
        check_chunk(c, mapped->bytes(), path);
        std::memcpy(dst.data(), mapped->bytes().data(), dst.size());
      } else {
        reader->read_into(c.name, dst);
        check_chunk(c, dst, path);
      }
    } catch (...) {
      rethrow_part_error();
    }
    return;
  }
  const size_t item = itemsize(listed.dtype());
  for (const ChunkRef& c : chunks) {
    const Tensor bytes = chunk_bytes(c, path);
    const std::vector<int64_t> origin(c.sizes.size(), 0);
    detail::copy_between(bytes.bytes(), Shape(c.sizes.begin(), c.sizes.end()), origin, dst, listed.shape(), c.offsets,
                         c.sizes, item);
  }
}

const Document& FormatReader::tree() {
  if (tree_) return *tree_;
  TreeBuilder b;
  b.file = path_.string();
  b.dtypes = info_.dtypes;
  std::error_code ec;
  const uint64_t size = fs::file_size(path_, ec);
  b.budget = b.budget_left = (uint64_t{64} << 20) + 16 * (ec ? 0 : size);
  ids_.clear();
  ckpt_visitor v{};
  v.struct_size = sizeof v;
  v.ctx = &b;
  v.begin_group = [](void* c, const char* n) { return host_guard([&] { static_cast<TreeBuilder*>(c)->begin(n); }); };
  v.end_group = [](void* c) { return host_guard([&] { static_cast<TreeBuilder*>(c)->end(); }); };
  v.attribute = [](void* c, const char* n, const ckpt_value* val) {
    return host_guard([&] { static_cast<TreeBuilder*>(c)->attribute(n, val); });
  };
  v.tensor = [](void* c, const ckpt_tensor_desc* d) {
    return host_guard([&] { static_cast<TreeBuilder*>(c)->tensor(d); });
  };
  if (ckpt_status* s = api_->list(r_, &v)) {
    // Our own FormatError travelled through the plugin as a status: its message already names
    // the file and place.
    if (s->code == CKPT_ERR_FORMAT && s->message.rfind("'" + path_.string() + "'", 0) == 0) {
      std::string m = s->message;
      delete s;
      throw FormatError(m);
    }
    check(s, "");
  }
  if (!b.done) throw FormatError("'" + path_.string() + "' (" + info_.name + "): the reader's listing ended inside a group");
  tree_ = std::move(b.root);
  // Tensors by address, now that the tree no longer moves: a lookup by path walks the tree's
  // indexes, with no string kept per tensor. An open-addressing table of (address, id): a
  // node per tensor cost as much to free as to make.
  auto index_ids = [&](const std::vector<uint64_t>& ids) {
    size_t slots = 16;
    while (slots < ids.size() * 2) slots *= 2;
    ids_.assign(slots, {nullptr, 0});
    size_t next = 0;
    std::function<void(const Group&)> index = [&](const Group& g) {
      for (const auto& c : g.children()) {
        if (!c.is_tensor()) {
          index(c.group());
          continue;
        }
        const Tensor* t = &c.tensor();
        size_t s = slot_of(t, slots);
        while (ids_[s].first) s = (s + 1) & (slots - 1);
        ids_[s] = {t, ids.at(next++)};
      }
    };
    index(*tree_);
  };
  index_ids(b.ids);

  // The plugin listed its file as stored; the first layout that recognises the listing maps it
  // onto the schema (ckpt/layout.hpp). Tensors may move, so their ids are found again by path.
  LayoutSource source{info_.name, path_.string(), options_, {}};
  for (const auto& layout : layout_adapters()) {
    if (!layout->recognises(*tree_, source)) continue;
    struct Listed {
      uint64_t id;
      DType dtype;
      size_t nbytes;
      Shape shape;
      bool taken = false;
    };
    std::unordered_map<std::string, Listed> listed;
    tree_->for_each_tensor([&](const std::string& p, const Tensor& t) {
      listed.emplace(p, Listed{id_of(t, p), t.dtype(), t.nbytes(), t.shape()});
    });
    source.read = [&](const std::string& p, std::span<std::byte> dst) {
      auto it = listed.find(p);
      if (it == listed.end()) throw UsageError("'" + path_.string() + "' lists no tensor '" + p + "'");
      if (dst.size() != it->second.nbytes)
        throw UsageError("reading '" + p + "': buffer of " + std::to_string(dst.size()) + " bytes, tensor needs " +
                         std::to_string(it->second.nbytes));
      check(api_->read_tensor(r_, it->second.id, dst.data(), dst.size()), p);
      check_bools(it->second.dtype, dst, p);
    };
    // What the file makes its consumers read from other files is the reader's finding about
    // the file, whatever the layout makes of the rest: it stays, so sign and verify see it.
    std::optional<Value> references;
    if (const Group* meta = tree_->find_group("meta"))
      if (const Value* v = meta->attribute(sdk::kExternalReferencesRecord)) references = *v;
    try {
      SchemaDocument schema = layout->to_schema(std::move(*tree_), source);
      if (references) {
        if (const Node* meta = schema.doc.find("meta"); meta && !meta->is_group())
          throw Error("layout " + std::string(layout->name()) + " made a tensor at meta of '" + path_.string() +
                      "', where its reader records the file's external references");
        Group& g = schema.doc.group("meta");
        if (!g.attribute(sdk::kExternalReferencesRecord)) g.set(sdk::kExternalReferencesRecord, std::move(*references));
      }
      std::unordered_map<std::string, std::string> moved(schema.moved.begin(), schema.moved.end());
      std::vector<uint64_t> ids;
      schema.doc.for_each_tensor([&](const std::string& p, const Tensor&) {
        auto m = moved.find(p);
        auto it = listed.find(m == moved.end() ? p : m->second);
        if (it == listed.end() || it->second.taken)
          throw Error("layout " + std::string(layout->name()) + " made tensor '" + p + "' of '" + path_.string() +
                      "', which the file's listing does not hold once");
        it->second.taken = true;
        ids.push_back(it->second.id);
      });
      tree_ = std::move(schema.doc);
      index_ids(ids);
      for (const Transposition& t : schema.transposed) {
        const Tensor* schema_t = tree_->find_tensor_path(t.path);
        auto m = moved.find(t.path);
        auto it = listed.find(m == moved.end() ? t.path : m->second);
        const auto bad = [&](const std::string& why) {
          throw Error("layout " + std::string(layout->name()) + " transposes tensor '" + t.path + "' of '" +
                      path_.string() + "': " + why);
        };
        if (!schema_t || it == listed.end()) bad("no such tensor");
        const Shape& stored = it->second.shape;
        if (t.perm.size() != stored.size() || stored.size() < 2 || is_block(it->second.dtype))
          bad("the permutation does not fit the stored tensor");
        std::vector<bool> seen(stored.size());
        Shape shape(stored.size());
        for (size_t i = 0; i < t.perm.size(); ++i) {
          const auto d = static_cast<size_t>(t.perm[i]);
          if (t.perm[i] < 0 || d >= stored.size() || seen[d]) bad("not a permutation");
          seen[d] = true;
          shape[i] = stored[d];
        }
        if (schema_t->shape() != shape || schema_t->dtype() != it->second.dtype)
          bad("its shape is not the stored tensor's, permuted");
        transposed_[schema_t] = Transposed{t.perm, stored};
      }
    } catch (...) {
      tree_.reset();  // moved from: the next call lists the file again
      ids_.clear();
      transposed_.clear();
      throw;
    }
    break;
  }
  return *tree_;
}

uint64_t FormatReader::id_of(const std::string& path) const {
  const Tensor* t = tree_ ? tree_->find_tensor_path(path) : nullptr;
  if (!t) throw UsageError("'" + path_.string() + "' has no tensor '" + path + "'");
  return id_of(*t, path);
}

uint64_t FormatReader::id_of(const Tensor& listed, const std::string& path) const {
  if (!ids_.empty())
    for (size_t s = slot_of(&listed, ids_.size()); ids_[s].first; s = (s + 1) & (ids_.size() - 1))
      if (ids_[s].first == &listed) return ids_[s].second;
  throw UsageError("'" + path_.string() + "': '" + path + "' is not a tensor of this reader's tree");
}

void FormatReader::read_into(const std::string& path, std::span<std::byte> dst) {
  tree();
  const Tensor* t = tree_->find_tensor_path(path);
  if (!t) throw UsageError("'" + path_.string() + "' has no tensor '" + path + "'");
  read_into(*t, path, dst);
}

void FormatReader::read_into(const Tensor& listed, const std::string& path, std::span<std::byte> dst) {
  tree();
  const uint64_t id = id_of(listed, path);
  if (dst.size() != listed.nbytes())
    throw UsageError("read_into '" + path + "': buffer of " + std::to_string(dst.size()) + " bytes, tensor needs " +
                     std::to_string(listed.nbytes()));
  if (chunked_) return read_chunked(id, listed, path, dst);
  if (!transposed_.empty())
    if (auto t = transposed_.find(&listed); t != transposed_.end()) return read_transposed(id, listed, t->second, path, dst);
  check(api_->read_tensor(r_, id, dst.data(), dst.size()), path);
  check_bools(listed.dtype(), dst, path);
}

void FormatReader::read_transposed(uint64_t id, const Tensor& listed, const Transposed& t, const std::string& path,
                                   std::span<std::byte> dst) {
  const size_t r = t.stored.size(), item = itemsize(listed.dtype());
  if (dst.empty()) return;
  // Where a step along each stored dimension lands in the listed (transposed) layout.
  std::vector<uint64_t> listed_stride(r, 1), stride_of_stored(r, 0);
  for (size_t i = r - 1; i > 0; --i) listed_stride[i - 1] = listed_stride[i] * static_cast<uint64_t>(listed.shape()[i]);
  for (size_t i = 0; i < r; ++i) stride_of_stored[static_cast<size_t>(t.perm[i])] = listed_stride[i];
  // Blocks of whole rows of about 8 MiB: the memory stays bounded however large the tensor.
  constexpr uint64_t kBlockBytes = uint64_t{8} << 20;
  const auto rows = static_cast<uint64_t>(t.stored[0]);
  const uint64_t row_bytes = dst.size() / rows;
  uint64_t block = std::max<uint64_t>(1, std::min<uint64_t>(rows, kBlockBytes / row_bytes));
  constexpr size_t kHasSlice = offsetof(ckpt_reader_api, read_slice) + sizeof(ckpt_reader_api::read_slice);
  const bool slices = api_->struct_size >= kHasSlice && api_->read_slice;
  if (!slices) block = rows;  // one read of the whole stored tensor
  std::vector<std::byte> buf(block * row_bytes);
  std::vector<uint64_t> start(r, 0), count(t.stored.begin(), t.stored.end());
  for (uint64_t first = 0; first < rows; first += block) {
    start[0] = first;
    count[0] = std::min(block, rows - first);
    const std::span<std::byte> part(buf.data(), count[0] * row_bytes);
    if (slices) {
      ckpt_status* st = api_->read_slice(r_, id, static_cast<uint32_t>(r), start.data(), count.data(), part.data(), part.size());
      if (st && st->code == CKPT_ERR_UNSUPPORTED && first == 0) {
        // The format reads whole tensors only: one read, then one scatter.
        detail::release_status(st);
        buf.resize(dst.size());
        check(api_->read_tensor(r_, id, buf.data(), buf.size()), path);
        block = rows;
        count[0] = rows;
      } else {
        check(st, path);
      }
    } else {
      check(api_->read_tensor(r_, id, part.data(), part.size()), path);
    }
    const uint64_t base = first * stride_of_stored[0];
    switch (item) {
      case 1: scatter<uint8_t>(buf.data(), dst.data(), count, stride_of_stored, base); break;
      case 2: scatter<uint16_t>(buf.data(), dst.data(), count, stride_of_stored, base); break;
      case 4: scatter<uint32_t>(buf.data(), dst.data(), count, stride_of_stored, base); break;
      case 8: scatter<uint64_t>(buf.data(), dst.data(), count, stride_of_stored, base); break;
      case 16: scatter<Bytes16>(buf.data(), dst.data(), count, stride_of_stored, base); break;
      default: throw Error("'" + path_.string() + "' at " + path + ": no transposition for elements of " + std::to_string(item) + " bytes");
    }
  }
  check_bools(listed.dtype(), dst, path);
}

void FormatReader::check_bools(DType dtype, std::span<const std::byte> bytes, const std::string& path) const {
  // A bool is one byte, 0 or 1. torch, numpy and h5py see True in any other value, ckpt's
  // writers would keep the byte: the same file would read two ways.
  if (dtype != DType::boolean) return;
  for (size_t i = 0; i < bytes.size(); ++i)
    if (static_cast<uint8_t>(bytes[i]) > 1)
      throw FormatError("'" + path_.string() + "' (" + info_.name + ") at " + path + ": bool element " + std::to_string(i) +
                        " holds the byte " + std::to_string(static_cast<unsigned>(bytes[i])) +
                        " (a bool is 0 or 1; readers differ on other values)");
}

Tensor FormatReader::read(const std::string& path) {
  tree();
  const Tensor* t = tree_->find_tensor_path(path);
  if (!t) throw UsageError("'" + path_.string() + "' has no tensor '" + path + "'");
  Tensor out = Tensor::empty(t->dtype(), t->shape());
  read_into(path, out.mutable_bytes());
  return out;
}

std::optional<Tensor> FormatReader::map(const std::string& path) {
  if (chunked_) {
    tree();
    const Tensor* t = tree_->find_tensor_path(path);
    if (!t) throw UsageError("'" + path_.string() + "' has no tensor '" + path + "'");
    // One chunk holding the whole tensor is a tensor of its part; several are assembled.
    const auto& chunks = chunks_.at(id_of(*t, path));
    if (chunks.size() != 1 || chunks[0].sizes != t->shape()) return std::nullopt;
    if (chunks[0].xxh3.empty()) {
      try {
        return part(chunks[0].part)->map(chunks[0].name);
      } catch (...) {
        rethrow_part_error();
      }
    }
    Tensor bytes = chunk_bytes(chunks[0], path);
    if (bytes.storage_kind() != StorageKind::mapped) return std::nullopt;  // read, not mapped: read_into copies it
    return bytes;
  }
  if (!info_.can(CKPT_CAP_MAP) || !api_->map_tensor) return std::nullopt;
  tree();
  const Tensor* t = tree_->find_tensor_path(path);
  if (!t) throw UsageError("'" + path_.string() + "' has no tensor '" + path + "'");
  if (transposed_.count(t)) return std::nullopt;  // its bytes are not the stored ones
  const void* p = nullptr;
  check(api_->map_tensor(r_, id_of(path), &p), path);
  if (!p && t->nbytes()) throw PluginError("'" + path_.string() + "': map_tensor gave no pointer for " + path);
  // Block dtypes are read a byte at a time, so any address serves.
  if (!is_block(t->dtype()) && reinterpret_cast<uintptr_t>(p) % itemsize(t->dtype()) != 0) return std::nullopt;
  auto bytes = std::span<const std::byte>(static_cast<const std::byte*>(p), t->nbytes());
  check_bools(t->dtype(), bytes, path);
  return Tensor(t->dtype(), t->shape(), Storage::mapped(bytes, shared_from_this()));
}

Tensor FormatReader::read_slice(const std::string& path, std::span<const int64_t> start,
                                std::span<const int64_t> count) {
  tree();
  const Tensor* t = tree_->find_tensor_path(path);
  if (!t) throw UsageError("'" + path_.string() + "' has no tensor '" + path + "'");
  detail::check_box(t->shape(), start, count, "'" + path_.string() + "' at " + path);
  Tensor out = Tensor::empty(t->dtype(), Shape(count.begin(), count.end()));
  read_slice_into(path, start, count, out.mutable_bytes());
  return out;
}

void FormatReader::read_slice_into(const std::string& path, std::span<const int64_t> start,
                                   std::span<const int64_t> count, std::span<std::byte> dst) {
  tree();
  const Tensor* t = tree_->find_tensor_path(path);
  if (!t) throw UsageError("'" + path_.string() + "' has no tensor '" + path + "'");
  detail::check_box(t->shape(), start, count, "'" + path_.string() + "' at " + path);
  const Shape box(count.begin(), count.end());
  if (dst.size() != storage_bytes(t->dtype(), numel(box)))
    throw UsageError("read_slice_into '" + path + "': buffer of " + std::to_string(dst.size()) + " bytes, the box needs " +
                     std::to_string(storage_bytes(t->dtype(), numel(box))));
  if (chunked_) {
    // Only the chunks the box overlaps are read, each only where it overlaps: straight out of
    // its part's mapping where the part maps, else through the part's own slice read.
    if (is_block(t->dtype())) throw UsageError("'" + path_.string() + "' at " + path + ": slices of a sharded " +
                                               std::string(name(t->dtype())) + " tensor are not read");
    const size_t r = count.size(), item = itemsize(t->dtype());
    for (const ChunkRef& c : chunks_.at(id_of(*t, path))) {
      std::vector<int64_t> from(r), n(r), at(r);
      bool overlaps = true;
      for (size_t i = 0; i < r && overlaps; ++i) {
        const int64_t lo = std::max(start[i], c.offsets[i]), hi = std::min(start[i] + count[i], c.offsets[i] + c.sizes[i]);
        overlaps = hi > lo;
        from[i] = lo - c.offsets[i];
        n[i] = hi - lo;
        at[i] = lo - start[i];
      }
      if (!overlaps && r > 0) continue;
      // A chunk not yet checked against its hash is taken whole (the hash is of all of it);
      // after, only its overlap: out of its mapping, or through its part's own slice read.
      if (!c.xxh3.empty() && !chunk_checked_[&c]) {
        const Tensor bytes = chunk_bytes(c, path);
        detail::copy_between(bytes.bytes(), bytes.shape(), from, dst, box, at, n, item);
        continue;
      }
      try {
        const auto reader = part(c.part);
        if (const std::optional<Tensor> mapped = reader->map(c.name)) {
          detail::copy_between(mapped->bytes(), mapped->shape(), from, dst, box, at, n, item);
        } else {
          const Tensor piece = reader->read_slice(c.name, from, n);
          detail::copy_between(piece.bytes(), piece.shape(), std::vector<int64_t>(r, 0), dst, box, at, n, item);
        }
      } catch (...) {
        rethrow_part_error();
      }
    }
    return;
  }
  // A block dtype's rows are runs of blocks: a box takes whole rows, copied as one item each.
  const bool rows = is_block(t->dtype());
  if (rows && (start.empty() || start.back() != 0 || count.back() != t->shape().back()))
    throw UsageError("'" + path_.string() + "' at " + path + ": a slice of a " + std::string(name(t->dtype())) +
                     " tensor takes whole rows (its last dimension is blocks)");
  if (dst.empty() && t->rank() > 0) return;
  constexpr size_t kHasSlice = offsetof(ckpt_reader_api, read_slice) + sizeof(ckpt_reader_api::read_slice);
  // A transposed tensor's box is not a box of the stored one: it is cut from one read.
  if (api_->struct_size >= kHasSlice && api_->read_slice && !transposed_.count(t)) {
    std::vector<uint64_t> s(start.begin(), start.end()), c(count.begin(), count.end());
    ckpt_status* st = api_->read_slice(r_, id_of(path), static_cast<uint32_t>(s.size()), s.data(), c.data(), dst.data(),
                                       dst.size());
    if (!st) {
      check_bools(t->dtype(), dst, path);
      return;
    }
    if (st->code != CKPT_ERR_UNSUPPORTED) check(st, path);
    detail::release_status(st);  // the format reads whole tensors only
  }
  std::optional<Tensor> whole = map(path);
  if (!whole) whole = read(path);
  if (rows) {
    const Shape outer(t->shape().begin(), t->shape().end() - 1);
    detail::copy_box(whole->bytes(), outer, storage_bytes(t->dtype(), static_cast<uint64_t>(t->shape().back())),
                     start.first(start.size() - 1), count.first(count.size() - 1), dst);
  } else {
    detail::copy_box(whole->bytes(), t->shape(), itemsize(t->dtype()), start, count, dst);
  }
}

void FormatReader::for_each_tensor_bytes(
    const std::function<void(const std::string&, const Tensor&, std::span<const std::byte>)>& f) {
  std::vector<std::byte> buf;
  tree().for_each_tensor([&](const std::string& path, const Tensor& t) {
    if (std::optional<Tensor> m = map(path)) return f(path, t, m->bytes());
    buf.resize(t.nbytes());
    read_into(t, path, buf);
    f(path, t, buf);
  });
}

Document FormatReader::load(bool prefer_map) {
  Document doc = tree();
  std::function<void(Group&, const std::string&)> fill = [&](Group& g, const std::string& prefix) {
    for (auto& c : g.children()) {
      std::string p = join_path(prefix, c.name);
      if (c.is_group()) {
        fill(c.group(), p);
        continue;
      }
      std::optional<Tensor> m;
      if (prefer_map) m = map(p);
      c.tensor() = m ? *m : read(p);
    }
  };
  fill(doc, "");
  return doc;
}

}  // namespace ckpt
