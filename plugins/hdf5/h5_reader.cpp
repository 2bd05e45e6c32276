#include "h5_reader.hpp"

#include <ckpt/sdk_records.hpp>

#include "h5_attribute_types.hpp"
#include "h5_chunks.hpp"
#include "h5_layout.hpp"
#include "h5_read_driver.hpp"
#include "h5_types.hpp"

#include <ckpt/sdk_confined.hpp>
#include <ckpt/sdk_io.hpp>
#include <ckpt/sdk_names.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <sys/stat.h>

namespace ckpt_hdf5 {

using ckpt::sdk::fail;

namespace {

// A chunk may claim at most this many times its stored bytes (deflate's ceiling is 1032:1).
constexpr uint64_t kMaxExpansion = 1100;
// What reading every column of the compound datasets apart may convert, beyond 64 times the
// file's size: each column's read decodes its dataset's every chunk and converts its whole
// records again (wide.h5, 83 KB of 256 one-byte fields, took 70 s under 16 GiB).
constexpr uint64_t kMaxColumnReadBytes = uint64_t(1) << 30;
// What a string element costs beyond its bytes as read: libhdf5's pointer or cell, the
// std::string holding it, and its allocation; charged against the document's budget.
constexpr uint64_t kStringElementCost = 40;

std::string name_at(ssize_t (*get)(hid_t, const char*, H5_index_t, H5_iter_order_t, hsize_t, char*,
                                   size_t, hid_t),
                    hid_t loc, H5_index_t index, hsize_t k, const std::string& where) {
  const ssize_t n = get(loc, ".", index, H5_ITER_INC, k, nullptr, 0, H5P_DEFAULT);
  if (n < 0) h5_fail(CKPT_ERR_FORMAT, where);
  std::string s(static_cast<size_t>(n) + 1, '\0');
  if (get(loc, ".", index, H5_ITER_INC, k, s.data(), s.size(), H5P_DEFAULT) < 0)
    h5_fail(CKPT_ERR_FORMAT, where);
  s.resize(static_cast<size_t>(n));
  return s;
}

struct LinkEntry {
  std::string name;
  H5L_info_t info;
};

// H5Literate's callback: collects, so that nothing can throw across libhdf5's frames.
herr_t collect_link(hid_t, const char* name, const H5L_info_t* info, void* data) {
  try {
    static_cast<std::vector<LinkEntry>*>(data)->push_back({name, *info});
  } catch (...) {
    return -1;
  }
  return 0;
}

ssize_t attr_name_by_idx(hid_t loc, const char* obj, H5_index_t index, H5_iter_order_t order,
                         hsize_t k, char* buf, size_t size, hid_t lapl) {
  return H5Aget_name_by_idx(loc, obj, index, order, k, buf, size, lapl);
}

// Whether the object's creation list tracks and indexes the creation order of its links and of
// its attributes. Files that do not (h5py's default) are listed by name.
struct OrderFlags {
  bool links = false;
  bool attributes = false;
};

OrderFlags creation_order(hid_t group, const std::string& where) {
  Handle gcpl = plist_handle(H5Gget_create_plist(group), where, CKPT_ERR_FORMAT);
  unsigned links = 0, attrs = 0;
  h5_ok(H5Pget_link_creation_order(gcpl, &links), where);
  h5_ok(H5Pget_attr_creation_order(gcpl, &attrs), where);
  const unsigned both = H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED;
  return {(links & both) == both, (attrs & both) == both};
}

// Sorts parallel columns by the first one's entries.
void sort_rows(std::initializer_list<std::vector<std::string>*> columns) {
  const std::vector<std::string>& key = **columns.begin();
  std::vector<size_t> order(key.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&key](size_t a, size_t b) { return key[a] < key[b]; });
  for (std::vector<std::string>* c : columns) {
    std::vector<std::string> sorted;
    sorted.reserve(c->size());
    for (size_t i : order) sorted.push_back(std::move((*c)[i]));
    *c = std::move(sorted);
  }
}

}  // namespace

ReadOptions ReadOptions::parse(ckpt::sdk::Options& options) {
  ReadOptions o;
  const std::string keras = options.get("keras", "auto");
  if (keras != "auto" && keras != "raw") fail(CKPT_ERR_INVALID_ARGUMENT, "option keras='" + keras + "': expected auto or raw");
  const std::string external = options.get("external", "refuse");
  if (external == "refuse") o.external_inside = false;
  else if (external == "inside") o.external_inside = true;
  else fail(CKPT_ERR_INVALID_ARGUMENT, "option external='" + external + "': expected refuse or inside");
  o.limits = ckpt::sdk::ReadLimits::parse(options);
  return o;
}

H5Reader::H5Reader(const std::string& path, const ReadOptions& options)
    : path_(path), options_(options) {
  guard_ = std::make_unique<FileGuard>(path);
  file_size_ = guard_->file_size();
  Lock lock;
  Handle fapl = plist_handle(H5Pcreate(H5P_FILE_ACCESS), "opening");
  h5_ok(H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG), "opening", CKPT_ERR_INTERNAL);
  use_read_driver(fapl, *guard_);
  file_ = file_handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl), "opening '" + path + "'");
  vfd_ = guard_->fd();
  H5Eclear2(H5E_DEFAULT);
}

H5Reader::~H5Reader() {
  Lock lock;
  file_.reset();
  for (int fd : external_fds_) ::close(fd);
}

// What the document has no member for goes to meta: what was not read, links, which datasets
// were strings or compounds, and datasets' attributes.
void H5Reader::add_records(Tree& tree, bool ours) {
  // By path: the same tree lists the same records whatever order its groups keep (h5py's
  // files by name, ckpt's by creation, where the writer makes these datasets last), so a
  // document read back matches the manifest recorded when it was written.
  sort_rows({&soft_paths_, &soft_targets_});
  sort_rows({&external_paths_, &external_files_, &external_objects_});
  sort_rows({&string_paths_, &string_types_, &string_shapes_});
  sort_rows({&compound_paths_});
  sort_rows({&attr_type_paths_, &attr_type_names_, &attr_types_, &attr_type_shapes_});
  const auto meta_child = tree.find_child(0, "meta");
  size_t meta = meta_child && !meta_child->is_tensor ? meta_child->index : Tree::npos;
  // A dataset named /meta leaves no place for records: the types of attributes are dropped then
  // (their values are listed, and written back as the values say), where refusing the file for
  // them would refuse files that read before these records existed.
  if (meta_child && meta_child->is_tensor)
    for (auto* c : {&attr_type_paths_, &attr_type_names_, &attr_types_, &attr_type_shapes_}) c->clear();
  // A value of /meta (its own attribute, or a string dataset) named like a record ckpt adds
  // gives way to the record, named in unread, never dropped in silence. Naming it adds to
  // unread, which may then be a record of a name taken too: until nothing changes.
  if (meta != Tree::npos) {
    for (bool changed = true; changed;) {
      changed = false;
      const std::pair<const char*, bool> records[] = {
          {"unread", !unread_.empty()},
          {kSoftLinkPaths, !soft_paths_.empty()}, {kSoftLinkTargets, !soft_paths_.empty()},
          {kExternalLinkPaths, !external_paths_.empty()}, {kExternalLinkFiles, !external_paths_.empty()},
          {kExternalLinkObjects, !external_paths_.empty()}, {ckpt::sdk::kExternalReferencesRecord, !external_paths_.empty()},
          {kStringDatasetPaths, !string_paths_.empty()}, {kStringDatasetTypes, !string_paths_.empty()},
          {kStringDatasetShapes, !string_paths_.empty()}, {kCompoundDatasetPaths, !compound_paths_.empty()},
          {kAttributeTypePaths, !attr_type_paths_.empty()}, {kAttributeTypeNames, !attr_type_paths_.empty()},
          {kAttributeTypes, !attr_type_paths_.empty()}, {kAttributeTypeShapes, !attr_type_paths_.empty()},
          {kAsStored, !ours}};
      for (const auto& record : records) {
        const std::string name = record.first;
        if (!record.second || !tree.find_attribute(meta, name)) continue;
        std::erase_if(tree.groups[meta].attributes, [&name](const Tree::Attribute& a) { return a.name == name; });
        const auto it = std::find(string_paths_.begin(), string_paths_.end(), "/meta/" + name);
        if (it != string_paths_.end()) {
          const auto k = it - string_paths_.begin();
          string_paths_.erase(it);
          string_types_.erase(string_types_.begin() + k);
          string_shapes_.erase(string_shapes_.begin() + k);
          unread_.push_back("/meta/" + name + ": a dataset of strings (ckpt records what it could not read, or how, under that name)");
          const std::string escaped = ckpt::sdk::escape_name("/meta/" + name);
          for (auto d = dataset_attributes_.begin(); d != dataset_attributes_.end();) {
            if (d->first != escaped) {
              ++d;
              continue;
            }
            for (const auto& a : d->second)
              unread_.push_back("/meta/" + name + ": its attribute '" + a.first + "' (its dataset is not read)");
            d = dataset_attributes_.erase(d);
          }
          for (size_t r = 0; r < attr_type_paths_.size();) {  // nor the types of its attributes
            if (attr_type_paths_[r] != "/meta/" + name) {
              ++r;
              continue;
            }
            for (auto* c : {&attr_type_paths_, &attr_type_names_, &attr_types_, &attr_type_shapes_})
              c->erase(c->begin() + static_cast<ptrdiff_t>(r));
          }
        } else {
          unread_.push_back("/meta: its attribute '" + name + "' (ckpt records what it could not read, or how, under that name)");
          for (size_t k = 0; k < attr_type_paths_.size();) {  // nor its type: the attribute is not listed
            if (attr_type_paths_[k] != "/meta" || attr_type_names_[k] != name) {
              ++k;
              continue;
            }
            for (auto* c : {&attr_type_paths_, &attr_type_names_, &attr_types_, &attr_type_shapes_})
              c->erase(c->begin() + static_cast<ptrdiff_t>(k));
          }
        }
        changed = true;
      }
    }
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> notes;
  if (!unread_.empty()) notes.emplace_back("unread", unread_);
  if (!soft_paths_.empty()) {
    notes.emplace_back(kSoftLinkPaths, soft_paths_);
    notes.emplace_back(kSoftLinkTargets, soft_targets_);
  }
  if (!external_paths_.empty()) {
    notes.emplace_back(kExternalLinkPaths, external_paths_);
    notes.emplace_back(kExternalLinkFiles, external_files_);
    notes.emplace_back(kExternalLinkObjects, external_objects_);
    // The same links in the format-neutral record sign and verify read (sdk_records.hpp).
    std::vector<std::string> references;
    for (size_t i = 0; i < external_paths_.size(); ++i)
      references.push_back(external_paths_[i] + " -> " + external_files_[i] + ":" + external_objects_[i]);
    notes.emplace_back(ckpt::sdk::kExternalReferencesRecord, std::move(references));
  }
  if (!string_paths_.empty()) {
    notes.emplace_back(kStringDatasetPaths, string_paths_);
    notes.emplace_back(kStringDatasetTypes, string_types_);
    notes.emplace_back(kStringDatasetShapes, string_shapes_);
  }
  if (!compound_paths_.empty()) notes.emplace_back(kCompoundDatasetPaths, compound_paths_);
  if (!attr_type_paths_.empty()) {
    notes.emplace_back(kAttributeTypePaths, attr_type_paths_);
    notes.emplace_back(kAttributeTypeNames, attr_type_names_);
    notes.emplace_back(kAttributeTypes, attr_types_);
    notes.emplace_back(kAttributeTypeShapes, attr_type_shapes_);
  }
  // A dataset named /meta leaves no place for the marker either: such a file is listed as it is.
  const bool marked = !ours && !(meta_child && meta_child->is_tensor);
  const std::string as_stored = meta == Tree::npos ? "records" : "file";
  if (notes.empty() && dataset_attributes_.empty() && !marked) return;
  if (meta_child && meta_child->is_tensor)
    fail(CKPT_ERR_UNSUPPORTED, (unread_.empty() ? "a link, string or compound dataset, or dataset attribute" : unread_.front()) +
                                   " (and a dataset named /meta leaves no place to say so)");
  if (meta == Tree::npos) meta = tree.add_group(0, "meta");
  for (auto& note : notes) {
    const std::string& name = note.first;  // not a structured binding: clang 14 cannot capture one
    Value v;
    v.type = CKPT_VALUE_STRING_ARRAY;
    v.strings = std::move(note.second);
    if (tree.find_attribute(meta, name)) fail(CKPT_ERR_INTERNAL, "/meta attribute '" + name + "' is taken");
    tree.add_attribute(meta, name, std::move(v));
  }
  if (marked) {
    if (tree.find_attribute(meta, kAsStored)) fail(CKPT_ERR_INTERNAL, std::string("/meta attribute '") + kAsStored + "' is taken");
    tree.add_attribute(meta, kAsStored, Value::string(as_stored));
  }
  if (dataset_attributes_.empty()) return;
  if (tree.find_child(meta, kDatasetAttributes))
    fail(CKPT_ERR_UNSUPPORTED, std::string("/meta/") + kDatasetAttributes +
                                   ": the file has a member where ckpt records the attributes of its datasets");
  const size_t holder = tree.add_group(meta, kDatasetAttributes);
  for (auto& [escaped, attributes] : dataset_attributes_) {
    const size_t d = tree.add_group(holder, escaped);
    for (auto& [name, value] : attributes) tree.add_attribute(d, std::move(name), std::move(value));
  }
  dataset_attributes_.clear();
}

void H5Reader::build() {
  Lock lock;
  entries_.clear();
  Handle root = group_handle(H5Gopen2(file_, "/", H5P_DEFAULT), "/");
  bool ours = false;
  if (H5Aexists(root, kLayoutAttr) > 0) {
    Handle a = attr_handle(H5Aopen(root, kLayoutAttr, H5P_DEFAULT), std::string("/ attribute ") + kLayoutAttr);
    auto v = read_attribute(a, std::string("/ attribute ") + kLayoutAttr, *guard_);
    if (!v || v->type != CKPT_VALUE_INT64 || v->i < 1)
      fail(CKPT_ERR_FORMAT, std::string("/ attribute ") + kLayoutAttr + ": expected a positive int64");
    if (v->i > kLayoutVersion)
      fail(CKPT_ERR_FORMAT, "written with layout version " + std::to_string(v->i) +
                                "; this plugin reads up to " + std::to_string(kLayoutVersion));
    ours = true;
  }
  H5Eclear2(H5E_DEFAULT);
  std::vector<haddr_t> ancestors;
  Tree tree;
  build_group(root, "/", "/", ours, 0, ancestors, tree, 0);
  options_.limits.check_expansion(unwritten_, 0, "", "datasets never written (read as their fill value)");
  add_records(tree, ours);
  // What list() reports of each tensor is its entry's.
  for (Tree::Tensor& t : tree.tensors) {
    const TensorEntry& e = entries_[t.id];
    t.dtype = e.dtype;
    t.shape = e.shape;
    t.nbytes = e.nbytes;
  }
  tree_ = std::move(tree);
}

void H5Reader::build_group(hid_t group, const std::string& where, const std::string& doc, bool ours, int depth,
                           std::vector<haddr_t>& ancestors, Tree& tree, size_t g) {
  if (depth > kMaxDepth)
    fail(CKPT_ERR_LIMIT, where + ": groups nested deeper than " + std::to_string(kMaxDepth));
  H5O_info_t info{};
  h5_ok(H5Oget_info2(group, &info, H5O_INFO_BASIC | H5O_INFO_NUM_ATTRS), where);
  ancestors.push_back(info.addr);
  const OrderFlags order = creation_order(group, where);

  const H5_index_t attr_index = order.attributes ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  for (hsize_t k = 0; k < info.num_attrs; ++k) {
    std::string name = name_at(attr_name_by_idx, group, attr_index, k, where);
    if (ours && depth == 0 && name == kLayoutAttr) continue;
    const std::string at = where + " attribute '" + name + "'";
    Handle a = attr_handle(H5Aopen_by_idx(group, ".", attr_index, H5_ITER_INC, k, H5P_DEFAULT, H5P_DEFAULT), at);
    std::string unheld;
    if (auto v = read_attribute(a, at, *guard_, &unheld)) {
      note_attribute_type(a, doc, name, *v, where);
      tree.add_attribute(g, std::move(name), std::move(*v));
    } else {  // a compound, reference, ... attribute: named, never dropped in silence
      unread_.push_back(where + ": its attribute '" + name + "' (" + (unheld.empty() ? "a type no attribute value holds" : unheld) + ")");
    }
  }

  const H5_index_t link_index = order.links ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  H5G_info_t ginfo{};
  h5_ok(H5Gget_info(group, &ginfo), where);
  std::vector<LinkEntry> links;
  if (ginfo.storage_type == H5G_STORAGE_TYPE_SYMBOL_TABLE) {
    // An old-style group (h5py's default) in one pass: asking libhdf5 for its k-th link walks
    // its B-tree from the start each time (20k datasets took 4.5 times h5py's listing). Its
    // heap and B-tree were checked when its header was read (h5_guard_groups.cpp).
    hsize_t next = 0;
    h5_ok(H5Literate(group, link_index, H5_ITER_INC, &next, collect_link, &links), where);
  } else {
    // Link messages and dense storage by index: an index lookup is cheap there, while libhdf5
    // 1.10's iteration of a dense group builds a table of links that it frees unfilled when
    // the group's heap is damaged.
    for (hsize_t k = 0; k < ginfo.nlinks; ++k) {
      LinkEntry e{name_at(H5Lget_name_by_idx, group, link_index, k, where), {}};
      h5_ok(H5Lget_info_by_idx(group, ".", link_index, H5_ITER_INC, k, &e.info, H5P_DEFAULT), child_path(where, e.name));
      links.push_back(std::move(e));
    }
  }
  for (const LinkEntry& link : links) {
    const std::string& stored = link.name;
    std::string name = stored;
    if (ours) {
      auto n = unescape_link_name(stored);
      if (!n) fail(CKPT_ERR_FORMAT, child_path(where, stored) + ": not a name this layout writes");
      name = std::move(*n);
    }
    const std::string at = child_path(where, stored);
    const H5L_info_t& linfo = link.info;
    if (linfo.type == H5L_TYPE_EXTERNAL) {
      // Recorded, never followed: ckpt reads no file but the one it was given.
      std::string value(linfo.u.val_size, '\0');
      const char* file = nullptr;
      const char* object = nullptr;
      unsigned flags = 0;
      if (!linfo.u.val_size || H5Lget_val(group, stored.c_str(), value.data(), value.size(), H5P_DEFAULT) < 0 ||
          H5Lunpack_elink_val(value.data(), value.size(), &flags, &file, &object) < 0 || !file || !object || !*file ||
          !*object) {
        H5Eclear2(H5E_DEFAULT);
        fail(CKPT_ERR_FORMAT, at + ": an external link whose file and object cannot be read");
      }
      // libhdf5 resolves a relative file name from the linking file's folder: a copy of the link
      // in a file elsewhere names another file (or none), so any conversion names it as a loss.
      // ckpt never rewrites it: the document does not know the source's folder, and a rewritten
      // name could reach what the source could not.
      if (file[0] != '/')
        unread_.push_back(at + ": an external link to '" + std::string(file) + "' (object '" + object +
                          "'), relative to this file's folder: a file written elsewhere gets it as stored, naming "
                          "another file from its own folder");
      external_paths_.push_back(at);
      external_files_.emplace_back(file);
      external_objects_.emplace_back(object);
      continue;
    }
    if (linfo.type == H5L_TYPE_SOFT) {
      std::string target(linfo.u.val_size, '\0');
      if (linfo.u.val_size == 0 ||
          H5Lget_val(group, stored.c_str(), target.data(), target.size(), H5P_DEFAULT) < 0)
        target = "(unreadable)";
      H5Eclear2(H5E_DEFAULT);
      target.resize(std::strlen(target.c_str()));
      soft_paths_.push_back(at);
      soft_targets_.push_back(std::move(target));
      continue;
    }
    if (linfo.type != H5L_TYPE_HARD) {
      unread_.push_back(at + ": a user-defined link");
      continue;
    }
    // By the address the link holds: no name is resolved again.
    if (std::find(ancestors.begin(), ancestors.end(), linfo.u.address) != ancestors.end()) continue;
    Handle child = object_handle(H5Oopen_by_addr(group, linfo.u.address), at);
    H5O_info_t oinfo{};
    h5_ok(H5Oget_info2(child, &oinfo, H5O_INFO_BASIC), at);
    if (oinfo.type == H5O_TYPE_GROUP) {
      const std::string doc_at = child_path(doc, name);
      build_group(child, at, doc_at, ours, depth + 1, ancestors, tree, tree.add_group(g, std::move(name)));
    } else if (oinfo.type == H5O_TYPE_DATASET) {
      add_dataset(child, std::move(name), at, doc, tree, g);
    } else {
      unread_.push_back(at + ": a named datatype");
    }
  }
  ancestors.pop_back();
}

void H5Reader::add_dataset(hid_t dset, std::string name, const std::string& where, const std::string& doc,
                           Tree& tree, size_t parent) {
  const std::string doc_at = child_path(doc, name);
  Handle ft = type_handle(H5Dget_type(dset), where);
  bool kept = false, marked = false;
  if (H5Tget_class(ft) == H5T_STRING) {
    kept = add_string_dataset(dset, ft, name, where, doc_at, tree, parent);
  } else {
    const size_t groups = tree.groups.size();
    kept = add_tensor(dset, ft, std::move(name), where, marked, tree, parent);
    if (tree.groups.size() != groups) compound_paths_.push_back(doc_at);
  }
  note_dataset_attributes(dset, where, doc_at, kept, marked);
}

// A string dataset becomes a value of its group under its own name (its group's attribute of
// that name, if any, keeps the name: the dataset is named in unread).
bool H5Reader::add_string_dataset(hid_t dset, hid_t ft, const std::string& name, const std::string& where,
                                  const std::string& doc, Tree& tree, size_t parent) {
  if (tree.find_attribute(parent, name)) {
    unread_.push_back(where + ": a dataset of strings (its group has an attribute of that name)");
    return false;
  }
  Handle space = space_handle(H5Dget_space(dset), where);
  const H5S_class_t sc = H5Sget_simple_extent_type(space);
  if (sc == H5S_NULL) {
    unread_.push_back(where + ": a dataset of strings with a null dataspace");
    return false;
  }
  const int rank = H5Sget_simple_extent_ndims(space);
  const hssize_t points = H5Sget_simple_extent_npoints(space);
  if (sc == H5S_NO_CLASS || rank < 0 || points < 0) h5_fail(CKPT_ERR_FORMAT, where);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0 && H5Sget_simple_extent_dims(space, dims.data(), nullptr) < 0) h5_fail(CKPT_ERR_FORMAT, where);
  // Read whole while listing: bounded like tensors, by the storage behind them (a compressed
  // or never written dataset can claim far more than the file holds), over all string
  // datasets together. Variable-length elements are counted as the pointers libhdf5 hands over;
  // their heap bytes are checked by the guard before libhdf5 reads them.
  const uint64_t item = H5Tis_variable_str(ft) > 0 ? sizeof(char*) : H5Tget_size(ft);
  const unsigned __int128 bytes = static_cast<unsigned __int128>(points) * item;
  Handle dcpl = plist_handle(H5Dget_create_plist(dset), where, CKPT_ERR_FORMAT);
  if (H5Pget_layout(dcpl) == H5D_VIRTUAL || H5Pget_external_count(dcpl) > 0)
    fail(CKPT_ERR_UNSUPPORTED, where + ": a string dataset stored in other files; ckpt reads nothing outside the file it was given");
  const uint64_t stored = std::min<uint64_t>(H5Dget_storage_size(dset), file_size_);
  H5Eclear2(H5E_DEFAULT);
  const uint64_t listed = bytes > UINT64_MAX / 2 ? UINT64_MAX / 2 : static_cast<uint64_t>(bytes);
  options_.limits.check_expansion(string_bytes_ + listed, string_stored_ + stored, "",
                                  where + ": string datasets (read whole while listing)");
  // What the elements cost in memory once read: each a std::string and an allocation beside its
  // bytes (a cell of a fixed-length one, a pointer of a variable-length one, whose heap bytes
  // the guard bounds), for all string datasets together, within the document's budget.
  const unsigned __int128 memory = static_cast<unsigned __int128>(points) * (kStringElementCost + item) + string_memory_;
  const uint64_t budget = options_.limits.document_bytes_for(file_size_);
  if (memory > budget)
    fail(CKPT_ERR_LIMIT, where + ": string datasets (read whole while listing) of " + std::to_string(points) +
                             " elements here would cost more than the " + std::to_string(budget) +
                             " bytes a document of this file may (" + std::to_string(kStringElementCost) +
                             " bytes per element beside its own; option max_document_bytes)");
  check_chunk_bytes(dcpl, H5Tget_size(ft), static_cast<uint64_t>(points), where);
  string_memory_ = static_cast<uint64_t>(memory);
  string_bytes_ += listed;
  string_stored_ += stored;
  auto v = read_value(ValueSource::of_dataset(dset), where, *guard_, UINT64_MAX);
  if (!v) fail(CKPT_ERR_INTERNAL, where + ": a string dataset read as no value");
  std::string shape;
  for (hsize_t d : dims) shape += (shape.empty() ? "" : ",") + std::to_string(d);
  tree.add_attribute(parent, name, std::move(*v));
  string_paths_.push_back(doc);
  string_types_.push_back(describe_string_type(ft));
  string_shapes_.push_back(std::move(shape));
  return true;
}

// The attribute's type and dataspace, recorded when its value would be written otherwise; a
// type the writer cannot make again is named, as the value is all that is kept of it.
void H5Reader::note_attribute_type(hid_t attr, const std::string& doc, const std::string& name, const Value& v,
                                   const std::string& where) {
  Handle ft = type_handle(H5Aget_type(attr), where);
  Handle sp = space_handle(H5Aget_space(attr), where);
  std::vector<ckpt_str> scratch;
  const ckpt_value view = v.view(scratch);
  std::string type = describe_attribute_type(ft);
  const std::string shape = describe_attribute_shape(sp);
  if (type.empty()) {
    unread_.push_back(where + ": its attribute '" + name + "' (its HDF5 type is kept only as its value, a " +
                      default_attribute_type(view) + ")");
    type = default_attribute_type(view);
  }
  if (type == default_attribute_type(view) && shape == default_attribute_shape(view)) return;
  attr_type_paths_.push_back(doc);
  attr_type_names_.push_back(name);
  attr_types_.push_back(std::move(type));
  attr_type_shapes_.push_back(shape);
}

// A dataset's own attributes (h5py's `units`) go to meta/hdf5_dataset_attributes, as the
// attributes of a group named by its escaped path; those of a dataset that is not read are
// named as unread with it.
void H5Reader::note_dataset_attributes(hid_t dset, const std::string& where, const std::string& doc, bool kept,
                                       bool marked) {
  H5O_info_t info{};
  h5_ok(H5Oget_info2(dset, &info, H5O_INFO_NUM_ATTRS), where);
  std::vector<std::pair<std::string, Value>> attributes;
  for (hsize_t k = 0; k < info.num_attrs; ++k) {
    std::string name = name_at(attr_name_by_idx, dset, H5_INDEX_NAME, k, where);
    if (marked && name == kDtypeAttr) continue;
    const std::string at = where + " attribute '" + name + "'";
    if (!kept) {
      unread_.push_back(where + ": its attribute '" + name + "' (its dataset is not read)");
      continue;
    }
    Handle a = attr_handle(H5Aopen_by_idx(dset, ".", H5_INDEX_NAME, H5_ITER_INC, k, H5P_DEFAULT, H5P_DEFAULT), at);
    std::string unheld;
    if (auto v = read_attribute(a, at, *guard_, &unheld)) {
      note_attribute_type(a, doc, name, *v, where);
      attributes.emplace_back(std::move(name), std::move(*v));
    } else {
      unread_.push_back(where + ": its attribute '" + name + "' (" + (unheld.empty() ? "a type no attribute value holds" : unheld) + ")");
    }
  }
  if (!attributes.empty()) dataset_attributes_.emplace_back(ckpt::sdk::escape_name(doc), std::move(attributes));
}

bool H5Reader::add_tensor(hid_t dset, hid_t ft, std::string name, const std::string& where, bool& marked, Tree& tree,
                          size_t parent) {
  const std::string marker = H5Tget_class(ft) == H5T_INTEGER ? read_string_attribute(dset, kDtypeAttr, *guard_).value_or("") : "";
  auto tt = classify_tensor_type(ft, marker);
  if (!tt && H5Tget_class(ft) == H5T_COMPOUND) return add_compound(dset, ft, std::move(name), where, tree, parent);
  // Enums, references and other types have no tensor dtype: named as unread.
  if (!tt) {
    static const std::map<H5T_class_t, const char*> kinds = {
        {H5T_ENUM, "enums"}, {H5T_VLEN, "variable-length sequences"},
        {H5T_ARRAY, "arrays"}, {H5T_OPAQUE, "opaque values"}, {H5T_REFERENCE, "references"}, {H5T_BITFIELD, "bitfields"},
        {H5T_TIME, "times"}};
    const auto it = kinds.find(H5Tget_class(ft));
    unread_.push_back(where + ": a dataset of " + (it != kinds.end() ? it->second : "a type ckpt has no dtype for"));
    H5Eclear2(H5E_DEFAULT);
    return false;
  }
  marked = !marker.empty() && dtype_marker(tt->dtype);
  auto e = dataset_entry(dset, ft, tt->dtype, tt->memtype, where);
  if (!e) return false;
  e->marker = marker;
  Tree::Tensor t;
  t.name = std::move(name);
  t.id = entries_.size();
  entries_.push_back(std::move(*e));
  tree.add_tensor(parent, std::move(t));
  return true;
}

// A compound of numeric fields becomes a group of one tensor per field, each read apart (a
// memory type of that one field), lazily as tensors are.
bool H5Reader::add_compound(hid_t dset, hid_t ft, std::string name, const std::string& where, Tree& tree, size_t parent) {
  std::string problem;
  auto fields = compound_fields(ft, where, problem);
  if (!fields) {
    unread_.push_back(where + ": a dataset of compound records (" + problem + ")");
    return false;
  }
  // Read as columns, but not kept exactly as they were: named, so convert says so.
  if (const std::string loss = compound_layout_loss(ft, *fields); !loss.empty())
    unread_.push_back(where + ": compound records read as columns, not kept exactly (" + loss + ")");
  auto first = dataset_entry(dset, ft, fields->front().dtype, fields->front().memtype, where);
  if (!first) return false;
  // Each column's read converts the dataset's whole records: a compressed dataset of many
  // fields could cost far more time than its bytes.
  const uint64_t records = ckpt::sdk::checked_nbytes(first->shape, H5Tget_size(ft), where);
  const unsigned __int128 cost = static_cast<unsigned __int128>(records) * fields->size() + column_read_bytes_;
  if (cost > kMaxColumnReadBytes + static_cast<unsigned __int128>(file_size_) * 64) {
    unread_.push_back(where + ": a dataset of compound records (" + std::to_string(fields->size()) + " fields of " +
                      std::to_string(records) + " bytes of records: reading each column apart would convert more than " +
                      std::to_string(kMaxColumnReadBytes) + " bytes)");
    return false;
  }
  column_read_bytes_ = static_cast<uint64_t>(cost);
  const size_t group = tree.add_group(parent, std::move(name));
  for (CompoundField& f : *fields) {
    TensorEntry e = *first;
    e.where = where + " field '" + f.name + "'";
    e.dtype = f.dtype;
    e.member = f.name;
    e.raw_offset = TensorEntry::kNotRaw;
    e.nbytes = ckpt::sdk::checked_nbytes(e.shape, ckpt::sdk::dtype_size(f.dtype), where);
    Tree::Tensor t;
    t.name = f.name;
    t.id = entries_.size();
    entries_.push_back(std::move(e));
    tree.add_tensor(group, std::move(t));
  }
  return true;
}

std::optional<TensorEntry> H5Reader::dataset_entry(hid_t dset, hid_t ft, uint32_t dtype, hid_t memtype,
                                                   const std::string& where) {
  Handle space = space_handle(H5Dget_space(dset), where);
  const H5S_class_t sc = H5Sget_simple_extent_type(space);
  if (sc == H5S_NULL) {
    unread_.push_back(where + ": a dataset with a null dataspace");
    return std::nullopt;
  }
  if (sc == H5S_NO_CLASS) h5_fail(CKPT_ERR_FORMAT, where);
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) h5_fail(CKPT_ERR_FORMAT, where);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0 && H5Sget_simple_extent_dims(space, dims.data(), nullptr) < 0) h5_fail(CKPT_ERR_FORMAT, where);

  TensorEntry e;
  H5O_info_t oinfo{};
  h5_ok(H5Oget_info2(dset, &oinfo, H5O_INFO_BASIC), where);
  e.addr = oinfo.addr;
  e.where = where;
  e.dtype = dtype;
  for (hsize_t d : dims) {
    if (d > static_cast<hsize_t>(INT64_MAX)) fail(CKPT_ERR_FORMAT, where + ": dimension too large");
    e.shape.push_back(static_cast<int64_t>(d));
  }
  e.nbytes = ckpt::sdk::checked_nbytes(e.shape, ckpt::sdk::dtype_size(e.dtype), where);
  // The host allocates a listed tensor's bytes before reading them, so a size the file cannot
  // back is refused here. A contiguous dataset's bytes lie in the file as they are.
  Handle dcpl = plist_handle(H5Dget_create_plist(dset), where, CKPT_ERR_FORMAT);
  const uint64_t stored = ckpt::sdk::checked_nbytes(e.shape, H5Tget_size(ft), where);
  const H5D_layout_t layout = H5Pget_layout(dcpl);
  if (layout == H5D_VIRTUAL) {
    // Refused before libhdf5 reads it: it would open the mapped files itself, and a mapping of
    // the dataset onto itself crashes it.
    size_t n = 0;
    std::string source = "(unreadable)";
    if (H5Pget_virtual_count(dcpl, &n) >= 0 && n > 0) {
      char file[1024] = {}, dataset[1024] = {};
      if (H5Pget_virtual_filename(dcpl, 0, file, sizeof file) >= 0 && H5Pget_virtual_dsetname(dcpl, 0, dataset, sizeof dataset) >= 0)
        source = std::string(file) + ":" + dataset + (n > 1 ? " and " + std::to_string(n - 1) + " more" : "");
    }
    H5Eclear2(H5E_DEFAULT);
    fail(CKPT_ERR_UNSUPPORTED, where + ": a virtual dataset mapping " + source +
                                   "; ckpt does not read virtual datasets (libhdf5 follows their mappings into other "
                                   "files, and crashes on a mapping of itself)");
  }
  if (H5Pget_external_count(dcpl) > 0) {
    e.external = external_pieces(dcpl, stored, where);
    if (stored != e.nbytes || H5Tequal(ft, memtype) <= 0)
      fail(CKPT_ERR_UNSUPPORTED, where + ": external storage in a type ckpt would have to convert");
  }
  if (layout == H5D_CHUNKED) check_chunk_bytes(dcpl, H5Tget_size(ft), ckpt::sdk::checked_nbytes(e.shape, 1, where), where);
  count_unwritten(dset, dcpl, layout, stored, where);
  note_creation(dset, dcpl, ft, where);
  if (!e.external.empty()) {
    // Read from the pieces alone, below.
  } else if (layout == H5D_CONTIGUOUS) {
    const haddr_t off = H5Dget_offset(dset);
    H5Eclear2(H5E_DEFAULT);  // HADDR_UNDEF (not yet written) is reported as an error too
    if (off != HADDR_UNDEF && (off > file_size_ || stored > file_size_ - off))
      fail(CKPT_ERR_FORMAT, where + ": its " + std::to_string(stored) + " bytes at offset " +
                                std::to_string(off) + " lie past the end of the file (" +
                                std::to_string(file_size_) + " bytes)");
    // H5Dread would convert nothing either; reading the bytes ourselves spares libhdf5's
    // lock and lets sdk::read_file_at steer around the kernel's slow copy distances.
    if (off != HADDR_UNDEF && vfd_ >= 0 && stored == e.nbytes && H5Tequal(ft, memtype) > 0)
      e.raw_offset = off;
  } else if (layout == H5D_COMPACT) {
    if (stored > file_size_) fail(CKPT_ERR_FORMAT, where + ": " + std::to_string(stored) + " bytes do not fit in the file");
    // libhdf5 1.10 takes the size a compact layout message gives and copies the dataset's
    // bytes out of a buffer of that size: a message giving fewer (none: no buffer at all)
    // made it read past the buffer or from a null one.
    const hsize_t held = H5Dget_storage_size(dset);
    H5Eclear2(H5E_DEFAULT);
    if (held != stored)
      fail(CKPT_ERR_FORMAT, where + ": its compact storage holds " + std::to_string(held) + " bytes; its " +
                                std::to_string(e.shape.size()) + "-d shape needs " + std::to_string(stored));
  }
  return e;
}

void H5Reader::note_creation(hid_t dset, hid_t dcpl, hid_t ft, const std::string& where) {
  Handle space = space_handle(H5Dget_space(dset), where);
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank > 0) {
    std::vector<hsize_t> dims(static_cast<size_t>(rank)), maxdims(static_cast<size_t>(rank));
    if (H5Sget_simple_extent_dims(space, dims.data(), maxdims.data()) < 0) h5_fail(CKPT_ERR_FORMAT, where);
    if (dims != maxdims) {
      std::string text;
      for (hsize_t d : maxdims) text += (text.empty() ? "" : ", ") + (d == H5S_UNLIMITED ? std::string("None") : std::to_string(d));
      unread_.push_back(where + ": its maxshape (" + text + (rank == 1 ? ",)" : ")") +
                        " (a conversion writes the dataset at its shape, not resizable)");
    }
  }
  H5D_fill_value_t defined{};
  if (H5Pfill_value_defined(dcpl, &defined) < 0) h5_fail(CKPT_ERR_FORMAT, where);
  if (defined != H5D_FILL_VALUE_USER_DEFINED) return;
  std::vector<unsigned char> fill(H5Tget_size(ft));
  if (H5Pget_fill_value(dcpl, ft, fill.data()) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return;
  }
  if (std::all_of(fill.begin(), fill.end(), [](unsigned char b) { return b == 0; })) return;
  std::string text = "other than zeros";
  const H5T_class_t c = H5Tget_class(ft);
  if (double d = 0; (c == H5T_INTEGER || c == H5T_FLOAT) && H5Pget_fill_value(dcpl, H5T_NATIVE_DOUBLE, &d) >= 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", d);
    text = buf;
  }
  H5Eclear2(H5E_DEFAULT);
  unread_.push_back(where + ": its fill value " + text + " (a conversion writes the dataset with the fill value 0)");
}

std::vector<TensorEntry::Piece> H5Reader::external_pieces(hid_t dcpl, uint64_t stored, const std::string& where) {
  const int n = H5Pget_external_count(dcpl);
  std::vector<TensorEntry::Piece> pieces;
  std::string listed;
  for (int i = 0; i < n; ++i) {
    char name[4096] = {};
    off_t offset = 0;
    hsize_t size = 0;
    if (H5Pget_external(dcpl, static_cast<unsigned>(i), sizeof name, name, &offset, &size) < 0) h5_fail(CKPT_ERR_FORMAT, where);
    TensorEntry::Piece p;
    p.name = std::string(name, strnlen(name, sizeof name));
    p.offset = static_cast<uint64_t>(offset);
    p.size = size;
    listed += (listed.empty() ? "" : ", ") + ("'" + p.name + "' (" + std::to_string(p.size) + " bytes at " +
                                              std::to_string(p.offset) + ")");
    pieces.push_back(std::move(p));
  }
  if (!options_.external_inside)
    fail(CKPT_ERR_UNSUPPORTED, where + ": its data is stored in other files: " + listed +
                                   "; ckpt reads nothing outside the file it was given (option external=inside reads "
                                   "files inside this file's folder)");
  // Resolved from this file's folder (libhdf5 would take the working directory), confined to it,
  // regular files only, and every piece inside its file.
  const std::string folder = ckpt::sdk::folder_of(path_);
  uint64_t total = 0;
  std::vector<TensorEntry::Piece> out;
  for (auto& p : pieces) {
    if (total >= stored) break;  // H5F_UNLIMITED pieces past the data
    std::string problem;
    int err = 0;
    const int fd = ckpt::sdk::open_confined(folder, p.name, problem, err);
    if (fd < 0)
      fail(err == ENOENT ? CKPT_ERR_NOT_FOUND : CKPT_ERR_FORMAT,
           where + ": external file '" + p.name + "' is refused: " + problem);
    external_fds_.push_back(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) fail(CKPT_ERR_IO, ckpt::sdk::os_error("cannot stat", p.name));
    const uint64_t take = std::min<uint64_t>(p.size, stored - total);
    if (p.offset > static_cast<uint64_t>(st.st_size) || take > static_cast<uint64_t>(st.st_size) - p.offset)
      fail(CKPT_ERR_FORMAT, where + ": external file '" + p.name + "' holds " + std::to_string(st.st_size) +
                                " bytes, the dataset's piece ends at " + std::to_string(p.offset + take));
    p.fd = fd;
    p.size = take;
    total += take;
    out.push_back(p);
  }
  if (total < stored)
    fail(CKPT_ERR_FORMAT, where + ": its external pieces hold " + std::to_string(total) + " of its " +
                              std::to_string(stored) + " bytes");
  return out;
}

// libhdf5 allocates a whole chunk to read any of it (to decode it, or to fill it when it was
// never written), and so does ckpt's own decoding: a chunk far larger than its dataset (one
// element, a chunk of 2^30) would cost gigabytes from a file of a megabyte. A chunk may exceed
// its dataset's bytes by max_expansion at most.
void H5Reader::check_chunk_bytes(hid_t dcpl, size_t item, uint64_t elements, const std::string& where) {
  if (H5Pget_layout(dcpl) != H5D_CHUNKED) return;
  const int rank = H5Pget_chunk(dcpl, 0, nullptr);
  if (rank <= 0) h5_fail(CKPT_ERR_FORMAT, where);
  std::vector<hsize_t> chunk(static_cast<size_t>(rank));
  if (H5Pget_chunk(dcpl, rank, chunk.data()) != rank) h5_fail(CKPT_ERR_FORMAT, where);
  unsigned __int128 bytes = item;
  for (hsize_t c : chunk) bytes = std::min<unsigned __int128>(bytes, static_cast<unsigned __int128>(1) << 63) * c;
  const unsigned __int128 allowed = static_cast<unsigned __int128>(elements) * item + options_.limits.max_expansion;
  if (bytes > allowed)
    fail(CKPT_ERR_LIMIT, where + ": chunks of " + std::to_string(static_cast<uint64_t>(std::min<unsigned __int128>(bytes, UINT64_MAX))) +
                             " bytes for a dataset of " + std::to_string(elements) + " elements of " + std::to_string(item) +
                             " bytes; a chunk may exceed its dataset by " + std::to_string(options_.limits.max_expansion) +
                             " bytes (option max_expansion)");
}

void H5Reader::count_unwritten(hid_t dset, hid_t dcpl, H5D_layout_t layout, uint64_t stored, const std::string& where) {
  if (layout == H5D_CONTIGUOUS && H5Pget_external_count(dcpl) == 0) {
    const haddr_t off = H5Dget_offset(dset);
    H5Eclear2(H5E_DEFAULT);
    if (off == HADDR_UNDEF) unwritten_ += stored;
    return;
  }
  if (layout != H5D_CHUNKED) return;
  const int rank = H5Pget_chunk(dcpl, 0, nullptr);
  if (rank <= 0) return;
  std::vector<hsize_t> chunk(static_cast<size_t>(rank)), dims(static_cast<size_t>(rank));
  Handle space = space_handle(H5Dget_space(dset), where);
  if (H5Pget_chunk(dcpl, rank, chunk.data()) < 0 || H5Sget_simple_extent_dims(space, dims.data(), nullptr) < 0)
    h5_fail(CKPT_ERR_FORMAT, where);
  unsigned __int128 total = 1, chunk_bytes = stored == 0 ? 0 : 1;
  for (int i = 0; i < rank; ++i) {
    if (chunk[static_cast<size_t>(i)] == 0) fail(CKPT_ERR_FORMAT, where + ": a chunk dimension of 0");
    total *= (dims[static_cast<size_t>(i)] + chunk[static_cast<size_t>(i)] - 1) / chunk[static_cast<size_t>(i)];
  }
  if (stored == 0) return;
  hsize_t written = 0;
  if (H5Dget_num_chunks(dset, space, &written) < 0) h5_fail(CKPT_ERR_FORMAT, where);
  // Bytes per chunk, from the element size and the chunk's shape.
  Handle ft = type_handle(H5Dget_type(dset), where);
  chunk_bytes = H5Tget_size(ft);
  for (hsize_t c : chunk) chunk_bytes *= c;
  const unsigned __int128 missing = total > written ? (total - written) * chunk_bytes : 0;
  unwritten_ += static_cast<uint64_t>(std::min<unsigned __int128>(missing, stored));
  // Written chunks inflate to at most 1100 times their stored bytes (deflate's ceiling is
  // 1032:1); a shape that claims more of them is a lie about the data.
  const uint64_t backed = H5Dget_storage_size(dset);
  const unsigned __int128 claimed = std::min<unsigned __int128>(static_cast<unsigned __int128>(written) * chunk_bytes, stored);
  if (claimed > static_cast<unsigned __int128>(backed) * kMaxExpansion + (uint64_t(1) << 20))
    fail(CKPT_ERR_LIMIT, where + ": " + std::to_string(written) + " chunks of " + std::to_string(static_cast<uint64_t>(chunk_bytes)) +
                             " bytes claimed from only " + std::to_string(backed) + " stored bytes");
}

void H5Reader::list(const ckpt::sdk::Visitor& visitor) {
  if (!tree_) build();
  tree_->list(visitor);
}

H5Reader::Opened H5Reader::open_tensor(const TensorEntry& e) {
  Opened o;
  o.dataset = object_handle(H5Oopen_by_addr(file_, e.addr), e.where);
  Handle ft = type_handle(H5Dget_type(o.dataset), e.where);
  if (!e.member.empty()) {
    // A column: HDF5 reads the one field a compound memory type of that field names.
    const int k = H5Tget_class(ft) == H5T_COMPOUND ? H5Tget_member_index(ft, e.member.c_str()) : -1;
    H5Eclear2(H5E_DEFAULT);
    if (k < 0) fail(CKPT_ERR_FORMAT, e.where + ": its datatype changed since it was listed");
    Handle mt = type_handle(H5Tget_member_type(ft, static_cast<unsigned>(k)), e.where);
    auto tt = classify_tensor_type(mt, "");
    if (!tt || tt->dtype != e.dtype) fail(CKPT_ERR_FORMAT, e.where + ": its datatype changed since it was listed");
    o.memtype = column_memtype(e.member, tt->memtype);
    return o;
  }
  // The marker as listed: read again, its variable-length bytes would count again.
  auto tt = classify_tensor_type(ft, e.marker);
  if (!tt || tt->dtype != e.dtype) fail(CKPT_ERR_FORMAT, e.where + ": its datatype changed since it was listed");
  o.memtype = std::move(tt->memtype);
  return o;
}

void H5Reader::read_tensor(uint64_t id, std::span<std::byte> dst) {
  if (!tree_) build();
  if (id >= entries_.size())
    fail(CKPT_ERR_NOT_FOUND, "no tensor with id " + std::to_string(id));
  const TensorEntry& e = entries_[id];
  if (dst.size() != e.nbytes)
    fail(CKPT_ERR_INVALID_ARGUMENT, e.where + ": destination holds " + std::to_string(dst.size()) +
                                        " bytes, the tensor " + std::to_string(e.nbytes));
  if (e.nbytes == 0) return;
  if (!e.external.empty()) {
    uint64_t done = 0;
    for (const auto& p : e.external) {
      ckpt::sdk::read_file_at(p.fd, p.offset, dst.subspan(done, p.size), p.name);
      done += p.size;
    }
    return;
  }
  // Outside libhdf5's lock: other threads' reads go on meanwhile.
  if (e.raw_offset != TensorEntry::kNotRaw)
    return ckpt::sdk::read_file_at(vfd_, e.raw_offset, dst, path_);
  Lock lock;
  Opened d = open_tensor(e);
  // Straight into the caller's buffer: one H5Dread, or each chunk decoded once into place.
  const std::vector<hsize_t> start(e.shape.size(), 0), count(e.shape.begin(), e.shape.end());
  read_box(d.dataset, d.memtype, start, count, dst.data(), file_size_, e.where);
}

void H5Reader::read_slice(uint64_t id, std::span<const uint64_t> start, std::span<const uint64_t> count,
                          std::span<std::byte> dst) {
  if (!tree_) build();
  Lock lock;
  if (id >= entries_.size())
    fail(CKPT_ERR_NOT_FOUND, "no tensor with id " + std::to_string(id));
  const TensorEntry& e = entries_[id];
  if (!e.external.empty()) fail(CKPT_ERR_UNSUPPORTED, e.where + ": external storage, read whole by the host");
  const size_t r = e.shape.size();
  if (start.size() != r || count.size() != r)
    fail(CKPT_ERR_INVALID_ARGUMENT, e.where + ": slice of rank " + std::to_string(start.size()) +
                                        " for a tensor of rank " + std::to_string(r));
  uint64_t n = ckpt::sdk::dtype_size(e.dtype);
  for (size_t i = 0; i < r; ++i) {
    if (start[i] > static_cast<uint64_t>(e.shape[i]) || count[i] > static_cast<uint64_t>(e.shape[i]) - start[i])
      fail(CKPT_ERR_INVALID_ARGUMENT, e.where + ": slice outside dimension " + std::to_string(i));
    n *= count[i];
  }
  if (dst.size() != n)
    fail(CKPT_ERR_INVALID_ARGUMENT, e.where + ": destination holds " + std::to_string(dst.size()) +
                                        " bytes, the slice " + std::to_string(n));
  if (n == 0) return;
  Opened d = open_tensor(e);
  // Only the chunks (or the contiguous runs) that the box touches are read.
  const std::vector<hsize_t> s(start.begin(), start.end()), c(count.begin(), count.end());
  read_box(d.dataset, d.memtype, s, c, dst.data(), file_size_, e.where);
}

}  // namespace ckpt_hdf5
