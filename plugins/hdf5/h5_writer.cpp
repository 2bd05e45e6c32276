#include "h5_writer.hpp"

#include "h5_attribute_types.hpp"
#include "h5_attributes.hpp"
#include "h5_layout.hpp"
#include "h5_types.hpp"

#include <ckpt/sdk_names.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace ckpt_hdf5 {

using ckpt::sdk::fail;

namespace {

// gzip works well on chunks of this size, and a chunk this small keeps a slice read cheap.
constexpr uint64_t kAutoChunkBytes = uint64_t(1) << 20;
// HDF5 caps a chunk below 4 GiB.
constexpr uint64_t kMaxChunkBytes = (uint64_t(1) << 32) - 1;
// What a recorded fixed-length string type may cost (make_string_datasets): its size at most
// its longest element or this, and all its cells at most the base plus this many times the
// value's bytes (each element counted with one byte more).
constexpr size_t kMaxFixedStringSlack = size_t(64) << 10;
constexpr uint64_t kMaxFixedCellsBase = uint64_t(64) << 20;
constexpr uint64_t kMaxFixedCellsPerByte = 64;

std::string shape_text(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

void check_name(std::string_view name, const std::string& where) {
  if (name.empty() || name.find('/') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos)
    fail(CKPT_ERR_INVALID_ARGUMENT, "invalid name '" + std::string(name) + "' in " + where +
                                        ": names are non-empty and hold no '/' or NUL");
}

// Halves leading dimensions first, so a chunk stays a run of whole rows while it can.
void shrink_chunk(std::vector<hsize_t>& chunk, size_t itemsize, uint64_t target) {
  auto bytes = [&] {
    unsigned __int128 n = itemsize;
    for (hsize_t c : chunk) n *= c;
    return n;
  };
  for (size_t d = 0; d < chunk.size() && bytes() > target; ++d)
    while (chunk[d] > 1 && bytes() > target) chunk[d] = (chunk[d] + 1) / 2;
}

// The path of stored names (escape_link_name) of a document path.
std::string stored_path(const std::string& doc) {
  std::string out;
  for (size_t p = 1; p <= doc.size();) {
    size_t q = doc.find('/', p);
    if (q == std::string::npos) q = doc.size();
    out += "/" + escape_link_name(std::string_view(doc).substr(p, q - p));
    p = q + 1;
  }
  return out.empty() ? "/" : out;
}

// An absolute path of a member, split into its group's path and its name; `what` names the
// record it came from.
std::pair<std::string, std::string> split_path(const std::string& path, const std::string& what) {
  const size_t slash = path.rfind('/');
  if (path.size() < 2 || path[0] != '/' || slash == path.size() - 1 || path.find('\0') != std::string::npos ||
      path.find("//") != std::string::npos)
    fail(CKPT_ERR_INVALID_ARGUMENT, what + ": '" + path + "' is not the absolute path of a member");
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

// Opens the object at `stored` (an absolute path of stored names) one segment at a time, through
// hard links only, and only objects of this very file: a record's path never resolves through a
// soft or external link (which could lead into another file, opened writable with this one).
// An invalid handle when it does not resolve so, with `problem` saying why (empty: no member).
Handle open_own(hid_t file, const std::string& stored, std::string& problem) {
  problem.clear();
  Handle cur(H5Oopen(file, "/", H5P_DEFAULT), H5Oclose);
  H5O_info_t root{};
  if (!cur.valid() || H5Oget_info2(cur, &root, H5O_INFO_BASIC) < 0) {
    H5Eclear2(H5E_DEFAULT);
    problem = "the root group cannot be opened";
    return Handle();
  }
  std::string walked;
  for (size_t p = 1; p < stored.size();) {
    size_t q = stored.find('/', p);
    if (q == std::string::npos) q = stored.size();
    const std::string segment = stored.substr(p, q - p);
    p = q + 1;
    walked += "/" + segment;
    if (segment.empty() || segment == "." || segment == "..") {
      problem = "'" + walked + "' is not a path of member names";
      return Handle();
    }
    H5L_info_t link{};
    if (H5Lexists(cur, segment.c_str(), H5P_DEFAULT) <= 0 || H5Lget_info(cur, segment.c_str(), &link, H5P_DEFAULT) < 0) {
      H5Eclear2(H5E_DEFAULT);
      return Handle();
    }
    if (link.type != H5L_TYPE_HARD) {
      problem = walked + " is a soft or external link, which no record is resolved through";
      return Handle();
    }
    Handle next(H5Oopen(cur, segment.c_str(), H5P_DEFAULT), H5Oclose);
    H5O_info_t info{};
    if (!next.valid() || H5Oget_info2(next, &info, H5O_INFO_BASIC) < 0) {
      H5Eclear2(H5E_DEFAULT);
      return Handle();
    }
    if (info.fileno != root.fileno) {
      problem = walked + " is an object of another file";
      return Handle();
    }
    cur = std::move(next);
  }
  return cur;
}

// The group at document path `doc`, resolved as open_own does.
Handle open_group_at(hid_t file, const std::string& doc, const std::string& what) {
  std::string problem;
  Handle g = open_own(file, stored_path(doc), problem);
  if (!problem.empty()) fail(CKPT_ERR_INVALID_ARGUMENT, what + ": " + problem);
  if (!g.valid() || H5Iget_type(g) != H5I_GROUP) fail(CKPT_ERR_INVALID_ARGUMENT, what + ": no group " + doc);
  return g;
}

std::vector<hsize_t> parse_shape(const std::string& text, const std::string& what) {
  std::vector<hsize_t> dims;
  for (size_t p = 0; !text.empty() && p <= text.size();) {
    size_t q = text.find(',', p);
    if (q == std::string::npos) q = text.size();
    hsize_t d = 0;
    const auto r = std::from_chars(text.data() + p, text.data() + q, d);
    if (r.ec != std::errc() || r.ptr != text.data() + q || dims.size() == H5S_MAX_RANK)
      fail(CKPT_ERR_INVALID_ARGUMENT, what + ": shape '" + text + "' is not a list of dimensions");
    dims.push_back(d);
    p = q + 1;
  }
  return dims;
}

}  // namespace

WriteOptions WriteOptions::parse(ckpt::sdk::Options& options) {
  WriteOptions o;
  const std::string compression = options.get("compression", "none");
  if (compression == "none") o.compression = Compression::none;
  else if (compression == "gzip") o.compression = Compression::gzip;
  else if (compression == "shuffle+gzip") o.compression = Compression::shuffle_gzip;
  else
    fail(CKPT_ERR_INVALID_ARGUMENT,
         "option compression='" + compression + "': expected none, gzip or shuffle+gzip");

  const bool has_level = options.has("level");
  const std::string level = options.get("level", "4");
  if (level.size() != 1 || level[0] < '0' || level[0] > '9')
    fail(CKPT_ERR_INVALID_ARGUMENT, "option level='" + level + "': expected 0..9");
  o.level = static_cast<unsigned>(level[0] - '0');
  if (has_level && o.compression == Compression::none)
    fail(CKPT_ERR_INVALID_ARGUMENT, "option level applies only with compression=gzip or shuffle+gzip");

  const std::string chunk =
      options.get("chunk", o.compression == Compression::none ? "none" : "auto");
  if (chunk == "none") {
    o.chunk = Chunk::none;
  } else if (chunk == "auto") {
    o.chunk = Chunk::automatic;
  } else {
    uint64_t rows = 0;
    auto [end, ec] = std::from_chars(chunk.data(), chunk.data() + chunk.size(), rows);
    if (ec != std::errc() || end != chunk.data() + chunk.size() || rows == 0)
      fail(CKPT_ERR_INVALID_ARGUMENT,
           "option chunk='" + chunk + "': expected auto, none or a positive number of rows");
    o.chunk = Chunk::rows;
    o.rows = rows;
  }
  if (o.chunk == Chunk::none && o.compression != Compression::none)
    fail(CKPT_ERR_INVALID_ARGUMENT, "option chunk=none: HDF5 compresses only chunked datasets");
  return o;
}

H5Writer::H5Writer(const std::string& path, const WriteOptions& options)
    : path_(path), options_(options) {
  Lock lock;
  const std::string at = "creating '" + path + "'";
  if (options_.compression != WriteOptions::Compression::none &&
      H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0)
    fail(CKPT_ERR_UNSUPPORTED, at + ": this libhdf5 has no gzip (deflate) filter");

  const unsigned order = H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED;
  // The file creation list also sets up the root group, which is why order and times go here.
  Handle fcpl = plist_handle(H5Pcreate(H5P_FILE_CREATE), at);
  h5_ok(H5Pset_link_creation_order(fcpl, order), at, CKPT_ERR_INTERNAL);
  h5_ok(H5Pset_attr_creation_order(fcpl, order), at, CKPT_ERR_INTERNAL);
  h5_ok(H5Pset_obj_track_times(fcpl, false), at, CKPT_ERR_INTERNAL);
  Handle fapl = plist_handle(H5Pcreate(H5P_FILE_ACCESS), at);
  // Closing the file must really close it: the host fsyncs and renames it right after.
  h5_ok(H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG), at, CKPT_ERR_INTERNAL);
  // The HDF5 1.8 format: every piece of metadata (superblock, object headers, B-trees, heaps)
  // carries a checksum, so damage is reported instead of parsed, and HDF5 1.8 still reads it.
  h5_ok(H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18), at, CKPT_ERR_INTERNAL);
  file_ = file_handle(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl, fapl), at, CKPT_ERR_IO);

  lcpl_ = plist_handle(H5Pcreate(H5P_LINK_CREATE), at);
  h5_ok(H5Pset_char_encoding(lcpl_, H5T_CSET_UTF8), at, CKPT_ERR_INTERNAL);
  gcpl_ = plist_handle(H5Pcreate(H5P_GROUP_CREATE), at);
  h5_ok(H5Pset_link_creation_order(gcpl_, order), at, CKPT_ERR_INTERNAL);
  h5_ok(H5Pset_attr_creation_order(gcpl_, order), at, CKPT_ERR_INTERNAL);
  // Without modification times, the same document gives the same bytes.
  h5_ok(H5Pset_obj_track_times(gcpl_, false), at, CKPT_ERR_INTERNAL);
}

H5Writer::~H5Writer() {
  Lock lock;
  stack_.clear();
  lcpl_.reset();
  gcpl_.reset();
  file_.reset();
}

H5Writer::OpenGroup& H5Writer::current(const char* event) {
  if (finished_) fail(CKPT_ERR_INVALID_ARGUMENT, std::string(event) + " after finish");
  if (stack_.empty())
    fail(CKPT_ERR_INVALID_ARGUMENT,
         std::string(event) + " outside any group (the root group is " +
             (root_done_ ? "already closed)" : "not open yet)"));
  return stack_.back();
}

std::string H5Writer::claim_child(std::string_view name, const char* event) {
  OpenGroup& g = current(event);
  check_name(name, g.path);
  const std::string n(name);
  if (g.attributes_left != 0)
    fail(CKPT_ERR_INVALID_ARGUMENT, std::string(event) + " '" + n + "' in " + g.path +
                                        " before its " + std::to_string(g.attributes_left) +
                                        " announced attributes");
  if (g.children_left == 0)
    fail(CKPT_ERR_INVALID_ARGUMENT,
         std::string(event) + " '" + n + "' in " + g.path + " beyond its announced children");
  if (!g.child_names.insert(n).second)
    fail(CKPT_ERR_INVALID_ARGUMENT, "duplicate child '" + n + "' in " + g.path);
  --g.children_left;
  return escape_link_name(name);
}

void H5Writer::begin_group(std::string_view name, uint64_t n_attributes, uint64_t n_children) {
  Lock lock;
  if (finished_) fail(CKPT_ERR_INVALID_ARGUMENT, "begin_group after finish");
  if (stack_.empty()) {
    if (root_done_) fail(CKPT_ERR_INVALID_ARGUMENT, "a second root group");
    if (!name.empty())
      fail(CKPT_ERR_INVALID_ARGUMENT, "the root group must be named \"\", not '" +
                                          std::string(name) + "'");
    Handle root = group_handle(H5Gopen2(file_, "/", H5P_DEFAULT), "/", CKPT_ERR_IO);
    const ckpt_value marker = ckpt::sdk::make_int(kLayoutVersion);
    write_attribute(root, kLayoutAttr, marker, "/");
    stack_.push_back({std::move(root), "/", n_attributes, n_children, {}, {}});
    return;
  }
  const std::string path = child_path(stack_.back().path, std::string(name));
  if (stack_.size() > static_cast<size_t>(kMaxDepth))
    fail(CKPT_ERR_LIMIT, path + ": groups nested deeper than " + std::to_string(kMaxDepth) +
                             " levels, which ckpt's HDF5 reader refuses");
  const std::string stored = claim_child(name, "group");
  const OpenGroup& parent = stack_.back();
  if (parent.capture || (parent.path == "/meta" && name == kDatasetAttributes)) {
    // Dataset attributes, kept for finish; nothing of them is made in the file.
    if (parent.capture && parent.captured != SIZE_MAX)
      fail(CKPT_ERR_INVALID_ARGUMENT, path + ": a group in a dataset's attributes (meta/" + kDatasetAttributes + ")");
    size_t captured = SIZE_MAX;
    if (parent.capture) {
      captured = dataset_attributes_.size();
      dataset_attributes_.emplace_back(std::string(name), std::vector<std::pair<std::string, ckpt::sdk::Value>>());
    }
    stack_.push_back({Handle(), path, n_attributes, n_children, {}, {}, true, captured});
    return;
  }
  Handle g = group_handle(H5Gcreate2(stack_.back().group, stored.c_str(), lcpl_, gcpl_, H5P_DEFAULT),
                          path, CKPT_ERR_IO);
  stack_.push_back({std::move(g), path, n_attributes, n_children, {}, {}});
}

void H5Writer::end_group() {
  Lock lock;
  OpenGroup& g = current("end_group");
  if (g.attributes_left != 0 || g.children_left != 0)
    fail(CKPT_ERR_INVALID_ARGUMENT,
         "end of " + g.path + " with " + std::to_string(g.attributes_left) + " attributes and " +
             std::to_string(g.children_left) + " children still announced");
  g.group.close(g.path, CKPT_ERR_IO);
  stack_.pop_back();
  if (stack_.empty()) root_done_ = true;
}

void H5Writer::attribute(std::string_view name, const ckpt_value& value) {
  Lock lock;
  OpenGroup& g = current("attribute");
  check_name(name, g.path);
  const std::string n(name);
  if (g.attributes_left == 0)
    fail(CKPT_ERR_INVALID_ARGUMENT,
         "attribute '" + n + "' in " + g.path + " beyond its announced attributes");
  if (!g.attribute_names.insert(n).second)
    fail(CKPT_ERR_INVALID_ARGUMENT, "duplicate attribute '" + n + "' in " + g.path);
  --g.attributes_left;
  if (g.capture) {
    if (g.captured == SIZE_MAX)
      fail(CKPT_ERR_INVALID_ARGUMENT, g.path + ": attribute '" + n + "' beside the datasets' groups");
    dataset_attributes_[g.captured].second.emplace_back(n, ckpt::sdk::Value::copy_of(value, g.path + " attribute '" + n + "'"));
    return;
  }
  std::optional<std::vector<std::string>>* links = n == kSoftLinkPaths           ? &soft_paths_
                                                   : n == kSoftLinkTargets        ? &soft_targets_
                                                   : n == kExternalLinkPaths      ? &external_paths_
                                                   : n == kExternalLinkFiles      ? &external_files_
                                                   : n == kExternalLinkObjects    ? &external_objects_
                                                   : n == kStringDatasetPaths     ? &string_paths_
                                                   : n == kStringDatasetTypes     ? &string_types_
                                                   : n == kStringDatasetShapes    ? &string_shapes_
                                                   : n == kCompoundDatasetPaths   ? &compound_paths_
                                                   : n == kAttributeTypePaths     ? &attr_type_paths_
                                                   : n == kAttributeTypeNames     ? &attr_type_names_
                                                   : n == kAttributeTypes         ? &attr_types_
                                                   : n == kAttributeTypeShapes    ? &attr_type_shapes_
                                                                                  : nullptr;
  if (g.path == "/meta" && links && value.type == CKPT_VALUE_STRING_ARRAY) {
    std::vector<std::string> strings;
    for (uint64_t i = 0; i < value.count; ++i)
      strings.emplace_back(value.u.strings[i].data ? value.u.strings[i].data : "", value.u.strings[i].size);
    *links = std::move(strings);
    return;
  }
  if (value.type == CKPT_VALUE_STRING || value.type == CKPT_VALUE_STRING_ARRAY)
    string_values_[child_path(g.path, n)] = ckpt::sdk::Value::copy_of(value, g.path + " attribute '" + n + "'");
  group_attributes_[g.path].emplace_back(n, ckpt::sdk::Value::copy_of(value, g.path + " attribute '" + n + "'"));
  write_attribute(g.group, n, value, g.path);
}

Handle H5Writer::dataset_creation(std::span<const int64_t> shape, size_t item, const std::string& where) {
  Handle dcpl = plist_handle(H5Pcreate(H5P_DATASET_CREATE), where);
  h5_ok(H5Pset_obj_track_times(dcpl, false), where, CKPT_ERR_INTERNAL);
  // Every byte is written right after creation: filling first would write it all twice.
  h5_ok(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), where, CKPT_ERR_INTERNAL);
  uint64_t numel = 1;
  for (int64_t d : shape) numel *= static_cast<uint64_t>(d);
  // A scalar cannot be chunked and an empty tensor has nothing to compress.
  if (options_.chunk == WriteOptions::Chunk::none || shape.empty() || numel == 0) return dcpl;

  std::vector<hsize_t> chunk(shape.begin(), shape.end());
  if (options_.chunk == WriteOptions::Chunk::rows) {
    chunk[0] = std::min<hsize_t>(chunk[0], options_.rows);
    shrink_chunk(chunk, item, kMaxChunkBytes);
  } else {
    shrink_chunk(chunk, item, kAutoChunkBytes);
  }
  h5_ok(H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data()), where,
        CKPT_ERR_INVALID_ARGUMENT);
  if (options_.compression == WriteOptions::Compression::shuffle_gzip)
    h5_ok(H5Pset_shuffle(dcpl), where, CKPT_ERR_INTERNAL);
  if (options_.compression != WriteOptions::Compression::none)
    h5_ok(H5Pset_deflate(dcpl, options_.level), where, CKPT_ERR_INTERNAL);
  return dcpl;
}

void H5Writer::tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) {
  Lock lock;
  const std::string stored = claim_child(info.name, "tensor");
  if (stack_.back().capture)
    fail(CKPT_ERR_INVALID_ARGUMENT, stack_.back().path + ": tensor '" + std::string(info.name) +
                                        "' among datasets' attributes (meta/" + kDatasetAttributes + ")");
  const std::string where = child_path(stack_.back().path, std::string(info.name));
  const size_t item = ckpt::sdk::dtype_size(info.dtype);
  if (item == 0)
    fail(CKPT_ERR_INVALID_ARGUMENT, where + ": unknown dtype " + std::to_string(info.dtype));
  if (info.shape.size() > H5S_MAX_RANK)
    fail(CKPT_ERR_UNSUPPORTED, where + ": rank " + std::to_string(info.shape.size()) +
                                   " exceeds HDF5's maximum of " + std::to_string(H5S_MAX_RANK));
  const uint64_t nbytes = ckpt::sdk::checked_nbytes(info.shape, item, where);
  if (nbytes != info.nbytes || data.size() != nbytes)
    fail(CKPT_ERR_INVALID_ARGUMENT, where + ": shape " + shape_text(info.shape) + " of " +
                                        ckpt::sdk::dtype_name(info.dtype) + " is " +
                                        std::to_string(nbytes) + " bytes, got " +
                                        std::to_string(data.size()));

  std::vector<hsize_t> dims(info.shape.begin(), info.shape.end());
  Handle space = dims.empty()
                     ? space_handle(H5Screate(H5S_SCALAR), where, CKPT_ERR_INTERNAL)
                     : space_handle(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                                    where, CKPT_ERR_INTERNAL);
  Handle type = tensor_type(info.dtype);
  Handle dcpl = dataset_creation(info.shape, item, where);
  Handle dset = dataset_handle(
      H5Dcreate2(stack_.back().group, stored.c_str(), type, space, lcpl_, dcpl, H5P_DEFAULT), where,
      CKPT_ERR_IO);
  // The memory type is the file type: HDF5 copies straight from `data`, no conversion pass.
  if (nbytes > 0)
    h5_ok(H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), where, CKPT_ERR_IO);
  if (const char* marker = dtype_marker(info.dtype))
    write_attribute(dset, kDtypeAttr, ckpt::sdk::make_string(marker), where);
  dset.close(where, CKPT_ERR_IO);
}

namespace {
// The links a document records as parallel string arrays of meta (h5_layout.hpp), the first
// the links' absolute paths: none, or every column of one length, every entry non-empty and
// free of NUL; `create` makes one link from a row, in the group holding it (resolved by
// open_own: never through a link) under its name.
template <class Create>
void make_links(hid_t file, const std::string& what, std::initializer_list<std::optional<std::vector<std::string>>*> columns,
                Create create) {
  const auto& first = **columns.begin();
  const bool any = std::any_of(columns.begin(), columns.end(), [](auto* c) { return c->has_value(); });
  if (!any) return;
  for (auto* c : columns)
    if (!*c || (*c)->size() != first->size()) fail(CKPT_ERR_INVALID_ARGUMENT, what + " do not line up");
  for (size_t i = 0; i < first->size(); ++i) {
    std::vector<const std::string*> row;
    for (auto* c : columns) {
      const std::string& v = (**c)[i];
      if (v.empty() || v.find('\0') != std::string::npos)
        fail(CKPT_ERR_INVALID_ARGUMENT, what + ": entry " + std::to_string(i) + " is empty or holds NUL");
      row.push_back(&v);
    }
    const std::string at = *row[0] + ": the link that " + what + " record";
    const auto [parent, name] = split_path(*row[0], what + ": entry " + std::to_string(i));
    std::string problem;
    Handle g = open_own(file, parent, problem);
    if (!problem.empty()) fail(CKPT_ERR_INVALID_ARGUMENT, at + ": " + problem);
    if (!g.valid() || H5Iget_type(g) != H5I_GROUP) fail(CKPT_ERR_INVALID_ARGUMENT, at + ": no group " + parent);
    h5_ok(create(g.get(), name, row), at, CKPT_ERR_INVALID_ARGUMENT);
  }
}
}  // namespace

void H5Writer::finish() {
  Lock lock;
  if (finished_) fail(CKPT_ERR_INVALID_ARGUMENT, "finish called twice");
  if (!root_done_)
    fail(CKPT_ERR_INVALID_ARGUMENT,
         stack_.empty() ? "finish before the root group" : "finish inside group " + stack_.back().path);
  take_attribute_types();
  retype_group_attributes();
  make_string_datasets();
  make_compound_datasets();
  write_dataset_attributes();
  for (const auto& [key, row] : attribute_types_)
    if (!row.used)
      fail(CKPT_ERR_INVALID_ARGUMENT, "meta/@" + std::string(kAttributeTypePaths) + ": " + row.path + " has no attribute '" +
                                          row.name + "' to give the type " + row.type);
  // Links last: every step above resolves record paths in a tree of hard links alone.
  make_links(file_, "meta/@" + std::string(kSoftLinkPaths) + ", _targets", {&soft_paths_, &soft_targets_},
             [&](hid_t g, const std::string& name, const std::vector<const std::string*>& row) {
               return H5Lcreate_soft(row[1]->c_str(), g, name.c_str(), lcpl_, H5P_DEFAULT);
             });
  make_links(file_, "meta/@" + std::string(kExternalLinkPaths) + ", _files, _objects",
             {&external_paths_, &external_files_, &external_objects_},
             [&](hid_t g, const std::string& name, const std::vector<const std::string*>& row) {
               return H5Lcreate_external(row[1]->c_str(), row[2]->c_str(), g, name.c_str(), lcpl_, H5P_DEFAULT);
             });
  lcpl_.reset();
  gcpl_.reset();
  file_.close("closing '" + path_ + "'", CKPT_ERR_IO);
  finished_ = true;
}

// meta/@hdf5_attribute_type_*: one row per attribute, by its object's path and its name.
void H5Writer::take_attribute_types() {
  const std::string what = "meta/@" + std::string(kAttributeTypePaths) + ", _names, " + kAttributeTypes + ", _shapes";
  if (!attr_type_paths_ && !attr_type_names_ && !attr_types_ && !attr_type_shapes_) return;
  if (!attr_type_paths_ || !attr_type_names_ || !attr_types_ || !attr_type_shapes_ ||
      attr_type_names_->size() != attr_type_paths_->size() || attr_types_->size() != attr_type_paths_->size() ||
      attr_type_shapes_->size() != attr_type_paths_->size())
    fail(CKPT_ERR_INVALID_ARGUMENT, what + " do not line up");
  for (size_t i = 0; i < attr_type_paths_->size(); ++i) {
    AttributeType row{(*attr_type_paths_)[i], (*attr_type_names_)[i], (*attr_types_)[i], (*attr_type_shapes_)[i], false};
    if (row.path.find('\0') != std::string::npos)
      fail(CKPT_ERR_INVALID_ARGUMENT, what + ": entry " + std::to_string(i) + " holds NUL");
    const std::string key = row.path + '\0' + row.name;
    if (!attribute_types_.emplace(key, std::move(row)).second)
      fail(CKPT_ERR_INVALID_ARGUMENT, what + ": entry " + std::to_string(i) + " repeats an attribute");
  }
}

// A group's attributes were written as their values say; when one has a recorded type, all of
// them are made again in their order (the reader lists ckpt's files' attributes in creation
// order), that one of its type.
void H5Writer::retype_group_attributes() {
  std::vector<ckpt_str> scratch;
  for (const auto& [path, attributes] : group_attributes_) {
    bool any = false;
    for (const auto& a : attributes) any = any || attribute_types_.count(path + '\0' + a.first);
    if (!any) continue;
    Handle g = open_group_at(file_, path, path);
    for (const auto& a : attributes) h5_ok(H5Adelete(g, a.first.c_str()), path + " attribute '" + a.first + "'", CKPT_ERR_INTERNAL);
    for (const auto& a : attributes) {
      const auto typed = attribute_types_.find(path + '\0' + a.first);
      if (typed == attribute_types_.end()) {
        write_attribute(g, a.first, a.second.view(scratch), path);
        continue;
      }
      typed->second.used = true;
      write_typed_attribute(g, a.first, a.second.view(scratch), typed->second.type, typed->second.shape, path);
    }
  }
}

// Each recorded string dataset: the attribute its value was written as gives way to a dataset
// of the recorded type and shape.
void H5Writer::make_string_datasets() {
  const std::string what = "meta/@" + std::string(kStringDatasetPaths);
  if (!string_paths_ && !string_types_ && !string_shapes_) return;
  if (!string_paths_ || !string_types_ || !string_shapes_ || string_types_->size() != string_paths_->size() ||
      string_shapes_->size() != string_paths_->size())
    fail(CKPT_ERR_INVALID_ARGUMENT, what + ", _types and _shapes do not line up");
  for (size_t i = 0; i < string_paths_->size(); ++i) {
    const std::string& path = (*string_paths_)[i];
    const std::string at = what + ": " + path;
    const auto [parent, name] = split_path(path, what);
    const auto it = string_values_.find(path);
    if (it == string_values_.end()) fail(CKPT_ERR_INVALID_ARGUMENT, at + ": its group has no string value of that name");
    const ckpt::sdk::Value& v = it->second;
    const std::vector<hsize_t> dims = parse_shape((*string_shapes_)[i], at);
    unsigned __int128 count = 1;
    for (hsize_t d : dims) count *= d;
    const bool scalar = dims.empty();
    if (scalar != (v.type == CKPT_VALUE_STRING) || (!scalar && count != v.strings.size()))
      fail(CKPT_ERR_INVALID_ARGUMENT, at + ": shape '" + (*string_shapes_)[i] + "' does not hold its value of " +
                                          (v.type == CKPT_VALUE_STRING ? "one string" : std::to_string(v.strings.size()) + " strings"));
    auto type = string_type_from((*string_types_)[i]);
    if (!type) fail(CKPT_ERR_INVALID_ARGUMENT, at + ": '" + (*string_types_)[i] + "' is no string type this layout records");
    const std::vector<std::string> one = scalar ? std::vector<std::string>{v.s} : std::vector<std::string>();
    const std::vector<std::string>& strings = scalar ? one : v.strings;
    // The elements as HDF5 takes them: pointers to NUL-terminated strings, or fixed-size cells.
    const bool variable = H5Tis_variable_str(*type) > 0;
    const size_t size = H5Tget_size(*type);
    if (!variable) {
      // A fixed size is what the cells cost: a few recorded bytes must not make gigabytes. At
      // most the longest element or 64 KiB, and all cells at most 64 MiB plus 64 times the
      // value's bytes (one per element at least).
      size_t longest = 0;
      uint64_t bytes = 0;
      for (const std::string& e : strings) {
        longest = std::max(longest, e.size());
        bytes += e.size() + 1;
      }
      if (size > std::max(longest, kMaxFixedStringSlack))
        fail(CKPT_ERR_INVALID_ARGUMENT, at + ": a fixed size of " + std::to_string(size) + " bytes, more than its longest element (" +
                                            std::to_string(longest) + " bytes) and than " + std::to_string(kMaxFixedStringSlack));
      const unsigned __int128 cells = static_cast<unsigned __int128>(size) * strings.size();
      if (cells > kMaxFixedCellsBase + static_cast<unsigned __int128>(bytes) * kMaxFixedCellsPerByte)
        fail(CKPT_ERR_INVALID_ARGUMENT, at + ": " + std::to_string(strings.size()) + " cells of " + std::to_string(size) +
                                            " bytes, more than " + std::to_string(kMaxFixedCellsBase) + " bytes plus " +
                                            std::to_string(kMaxFixedCellsPerByte) + " times its " + std::to_string(bytes) +
                                            " bytes of strings");
    }
    std::vector<const char*> pointers;
    std::vector<char> cells;
    if (!variable) cells.assign(strings.size() * size, H5Tget_strpad(*type) == H5T_STR_SPACEPAD ? ' ' : '\0');
    for (size_t k = 0; k < strings.size(); ++k) {
      const std::string& e = strings[k];
      if (variable && e.find('\0') != std::string::npos)
        fail(CKPT_ERR_INVALID_ARGUMENT, at + ": element " + std::to_string(k) + " holds a NUL, which a variable-length string cannot");
      if (!variable && e.size() > size)
        fail(CKPT_ERR_INVALID_ARGUMENT, at + ": element " + std::to_string(k) + " has " + std::to_string(e.size()) +
                                            " bytes, more than its fixed size of " + std::to_string(size));
      if (variable) pointers.push_back(e.c_str());
      else std::memcpy(cells.data() + k * size, e.data(), e.size());
    }
    Handle g = open_group_at(file_, parent, at);
    if (H5Lexists(g, escape_link_name(name).c_str(), H5P_DEFAULT) > 0)
      fail(CKPT_ERR_INVALID_ARGUMENT, at + ": its group already has a member named '" + name + "', which the dataset cannot replace" +
                                          (path == "/meta" ? " (a string dataset at /meta cannot be written back: /meta is the group holding ckpt's records)" : ""));
    H5Eclear2(H5E_DEFAULT);
    h5_ok(H5Adelete(g, name.c_str()), at, CKPT_ERR_INTERNAL);
    Handle space = scalar ? space_handle(H5Screate(H5S_SCALAR), at, CKPT_ERR_INTERNAL)
                          : space_handle(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), at, CKPT_ERR_INTERNAL);
    Handle dcpl = plist_handle(H5Pcreate(H5P_DATASET_CREATE), at);
    h5_ok(H5Pset_obj_track_times(dcpl, false), at, CKPT_ERR_INTERNAL);
    Handle dset = dataset_handle(H5Dcreate2(g, escape_link_name(name).c_str(), *type, space, lcpl_, dcpl, H5P_DEFAULT), at, CKPT_ERR_IO);
    if (!strings.empty())
      h5_ok(H5Dwrite(dset, *type, H5S_ALL, H5S_ALL, H5P_DEFAULT, variable ? static_cast<const void*>(pointers.data()) : cells.data()),
            at, CKPT_ERR_IO);
    dset.close(at, CKPT_ERR_IO);
  }
}

// Each recorded compound dataset: its group of columns, as written, becomes a compound dataset
// of packed fields in the columns' order. The columns are read back one at a time and written
// as their field (HDF5 writes one field of each record); their space stays in the file
// (h5repack reclaims it).
void H5Writer::make_compound_datasets() {
  if (!compound_paths_) return;
  const std::string what = "meta/@" + std::string(kCompoundDatasetPaths);
  for (const std::string& path : *compound_paths_) {
    const std::string at = what + ": " + path;
    const auto [parent, name] = split_path(path, what);
    Handle g = open_group_at(file_, parent, at);
    const std::string stored = escape_link_name(name);
    struct Column {
      std::string field;
      Handle dataset, type;
    };
    std::vector<Column> columns;
    std::vector<int64_t> shape;
    {
      Handle group = open_group_at(file_, path, at);
      H5G_info_t info{};
      h5_ok(H5Gget_info(group, &info), at, CKPT_ERR_INTERNAL);
      if (info.nlinks == 0) fail(CKPT_ERR_INVALID_ARGUMENT, at + ": a group of no columns");
      for (hsize_t k = 0; k < info.nlinks; ++k) {
        const ssize_t n = H5Lget_name_by_idx(group, ".", H5_INDEX_CRT_ORDER, H5_ITER_INC, k, nullptr, 0, H5P_DEFAULT);
        if (n < 0) h5_fail(CKPT_ERR_INTERNAL, at);
        std::string link(static_cast<size_t>(n) + 1, '\0');
        H5Lget_name_by_idx(group, ".", H5_INDEX_CRT_ORDER, H5_ITER_INC, k, link.data(), link.size(), H5P_DEFAULT);
        link.resize(static_cast<size_t>(n));
        Column c;
        c.field = unescape_link_name(link).value_or(link);
        const std::string col = at + " column '" + c.field + "'";
        H5L_info_t linfo{};
        H5O_info_t oinfo{};
        if (H5Lget_info(group, link.c_str(), &linfo, H5P_DEFAULT) < 0 || linfo.type != H5L_TYPE_HARD ||
            H5Oget_info_by_name2(group, link.c_str(), &oinfo, H5O_INFO_BASIC, H5P_DEFAULT) < 0 || oinfo.type != H5O_TYPE_DATASET) {
          H5Eclear2(H5E_DEFAULT);
          fail(CKPT_ERR_INVALID_ARGUMENT, col + ": not a tensor");
        }
        c.dataset = dataset_handle(H5Dopen2(group, link.c_str(), H5P_DEFAULT), col, CKPT_ERR_INTERNAL);
        if (H5Aexists(c.dataset, kDtypeAttr) > 0)
          fail(CKPT_ERR_INVALID_ARGUMENT, col + ": a dtype (bf16, a float8) no compound field can mark");
        c.type = type_handle(H5Dget_type(c.dataset), col, CKPT_ERR_INTERNAL);
        Handle space = space_handle(H5Dget_space(c.dataset), col, CKPT_ERR_INTERNAL);
        std::vector<hsize_t> dims(static_cast<size_t>(std::max(0, H5Sget_simple_extent_ndims(space))));
        if (!dims.empty()) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
        const std::vector<int64_t> s(dims.begin(), dims.end());
        if (k == 0) shape = s;
        else if (s != shape)
          fail(CKPT_ERR_INVALID_ARGUMENT, col + ": shape " + shape_text(s) + ", the first column's " + shape_text(shape));
        columns.push_back(std::move(c));
      }
    }
    size_t record = 0;
    for (const Column& c : columns) record += H5Tget_size(c.type);
    Handle type = type_handle(H5Tcreate(H5T_COMPOUND, record), at, CKPT_ERR_INVALID_ARGUMENT);
    size_t offset = 0;
    for (const Column& c : columns) {
      h5_ok(H5Tinsert(type, c.field.c_str(), offset, c.type), at + " column '" + c.field + "'", CKPT_ERR_INVALID_ARGUMENT);
      offset += H5Tget_size(c.type);
    }
    // The columns stay readable through their open handles once their group is unlinked.
    h5_ok(H5Ldelete(g, stored.c_str(), H5P_DEFAULT), at, CKPT_ERR_IO);
    std::vector<hsize_t> dims(shape.begin(), shape.end());
    Handle space = dims.empty() ? space_handle(H5Screate(H5S_SCALAR), at, CKPT_ERR_INTERNAL)
                                : space_handle(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), at, CKPT_ERR_INTERNAL);
    Handle dcpl = dataset_creation(shape, record, at);
    Handle dset = dataset_handle(H5Dcreate2(g, stored.c_str(), type, space, lcpl_, dcpl, H5P_DEFAULT), at, CKPT_ERR_IO);
    const uint64_t n = ckpt::sdk::checked_nbytes(shape, 1, at);
    std::vector<std::byte> buf;
    for (const Column& c : columns) {
      if (n == 0) break;
      buf.resize(n * H5Tget_size(c.type));
      h5_ok(H5Dread(c.dataset, c.type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), at + " column '" + c.field + "'", CKPT_ERR_IO);
      Handle memtype = column_memtype(c.field, c.type);
      h5_ok(H5Dwrite(dset, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), at + " column '" + c.field + "'", CKPT_ERR_IO);
    }
    dset.close(at, CKPT_ERR_IO);
  }
}

// meta/hdf5_dataset_attributes: each group's attributes on the dataset its name escapes.
void H5Writer::write_dataset_attributes() {
  const std::string what = "meta/" + std::string(kDatasetAttributes);
  std::vector<ckpt_str> scratch;
  for (const auto& entry : dataset_attributes_) {
    const std::string at = what + "/" + entry.first;
    const auto path = unescape_name(entry.first);
    if (!path || path->empty() || (*path)[0] != '/')
      fail(CKPT_ERR_INVALID_ARGUMENT, at + ": not the escaped absolute path of a dataset");
    std::string problem;
    Handle obj = open_own(file_, stored_path(*path), problem);
    if (!problem.empty()) fail(CKPT_ERR_INVALID_ARGUMENT, at + ": " + problem);
    if (!obj.valid() || H5Iget_type(obj) != H5I_DATASET)
      fail(CKPT_ERR_INVALID_ARGUMENT, at + ": no dataset at " + *path);
    for (const auto& attribute : entry.second) {
      const auto typed = attribute_types_.find(*path + '\0' + attribute.first);
      if (typed == attribute_types_.end()) {
        write_attribute(obj, attribute.first, attribute.second.view(scratch), *path);
        continue;
      }
      typed->second.used = true;
      write_typed_attribute(obj, attribute.first, attribute.second.view(scratch), typed->second.type, typed->second.shape, *path);
    }
  }
}

}  // namespace ckpt_hdf5
