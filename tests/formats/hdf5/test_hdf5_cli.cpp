// The ckpt program on .h5 files h5py wrote (a plain tree, Keras weight files): inspect and
// convert; and failures on damaged files, from the program and from the library, print nothing
// of HDF5's own error stack.
#include "hdf5_test_support.hpp"

#include <hdf5.h>

#include <fcntl.h>

#include <algorithm>

using namespace hdf5_test;

namespace {

// What `ckpt inspect --json` prints, in its order.
using ojson = nlohmann::ordered_json;

struct Ran {
  int status = -1;
  std::string out, err;
};

fs::path scratch_file(const std::string& what) {
  return fs::temp_directory_path() /
         ("ckpt-hdf5-" + what + "-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}()));
}

// Runs the ckpt program with `args`, keeping its stdout and stderr apart.
Ran ckpt_cli(const std::string& args) {
  const fs::path err = scratch_file("stderr");
  Ran r;
  FILE* p = ::popen((std::string(CKPT_CLI) + " " + args + " 2>" + quoted(err)).c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = file_bytes(err);
  fs::remove(err);
  return r;
}

// What HDF5 prints when its automatic error printing is on: "HDF5-DIAG: Error detected in
// HDF5 (1.10.8) thread 0:", then "  #000: H5F.c line 620 in H5Fopen(): ..." and "major:" and
// "minor:" lines.
void expect_no_hdf5_stack(const std::string& err) {
  for (const char* mark : {"HDF5-DIAG", "#000:", "major:", "minor:", "H5F.c", "H5O"})
    EXPECT_EQ(err.find(mark), std::string::npos) << "'" << mark << "' on stderr:\n" << err;
}

// Sends this process's stderr (fd 2) to a file until take().
class StderrCapture {
 public:
  StderrCapture() : file_(scratch_file("captured")) {
    std::fflush(stderr);
    saved_ = ::dup(2);
    const int fd = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0);
    if (fd >= 0) {
      ::dup2(fd, 2);
      ::close(fd);
    }
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;
  ~StderrCapture() {
    restore();
    fs::remove(file_);
  }
  std::string take() {
    restore();
    return file_bytes(file_);
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  fs::path file_;
  int saved_ = -1;
};

herr_t print_stack(hid_t stack, void* stream) { return H5Eprint2(stack, static_cast<FILE*>(stream)); }

// The JSON `ckpt inspect --json` gives for the group at `path` ("model/state"; "" the root).
const ojson& json_group(const ojson& root, const std::string& path) {
  const ojson* g = &root;
  size_t p = 0;
  while (p < path.size()) {
    size_t q = path.find('/', p);
    if (q == std::string::npos) q = path.size();
    g = &g->at("groups").at(path.substr(p, q - p));
    p = q + 1;
  }
  return *g;
}

// Every tensor and attribute of `want` is listed in `got` (an inspect group) with its dtype,
// shape and size, or its type and value; and nothing else is.
void expect_listed(const Group& want, const ojson& got, const std::string& path = "/") {
  EXPECT_EQ(got.at("attributes").size(), want.attributes().size()) << path;
  for (const auto& a : want.attributes()) {
    ASSERT_TRUE(got.at("attributes").contains(a.name)) << path << "@" << a.name;
    EXPECT_EQ(got.at("attributes").at(a.name).at("type"), value_type_name(value_type(a.value))) << path << "@" << a.name;
  }
  size_t tensors = 0, groups = 0;
  for (const Node& n : want.children()) {
    if (n.is_group()) {
      ++groups;
      ASSERT_TRUE(got.at("groups").contains(n.name)) << path << n.name;
      expect_listed(n.group(), got.at("groups").at(n.name), path + n.name + "/");
      continue;
    }
    ++tensors;
    ASSERT_TRUE(got.at("tensors").contains(n.name)) << path << n.name;
    const ojson& t = got.at("tensors").at(n.name);
    EXPECT_EQ(t.at("dtype"), name(n.tensor().dtype())) << path << n.name;
    EXPECT_EQ(t.at("shape").get<Shape>(), n.tensor().shape()) << path << n.name;
    EXPECT_EQ(t.at("nbytes").get<uint64_t>(), n.tensor().nbytes()) << path << n.name;
  }
  EXPECT_EQ(got.at("tensors").size(), tensors) << path;
  EXPECT_EQ(got.at("groups").size(), groups) << path;
}

// A copy of a file this plugin wrote with one byte of its first object header after the root
// group's changed: every object header carries a checksum, so libhdf5 itself reports the damage.
fs::path damaged_object_header(const fs::path& folder) {
  Document doc;
  doc.group("g").set("note", "kept").add_tensor("t", Tensor::zeros(DType::f32, {4}));
  const fs::path good = folder / "good.h5";
  write_document(doc, good, hdf5_save());
  std::string bytes = file_bytes(good);
  const size_t root = bytes.find("OHDR");
  const size_t child = bytes.find("OHDR", root + 4);
  EXPECT_NE(child, std::string::npos);
  if (child == std::string::npos) return good;
  bytes[child + 8] = static_cast<char>(bytes[child + 8] ^ 0x55);
  const fs::path p = folder / "header.h5";
  put_bytes(p, bytes);
  return p;
}

fs::path truncated(const fs::path& folder) {
  const fs::path good = folder / "whole.h5";
  write_document(sample_document(), good, hdf5_save());
  const std::string bytes = file_bytes(good);
  const fs::path p = folder / "cut.h5";
  put_bytes(p, bytes.substr(0, bytes.size() / 2));
  return p;
}

}  // namespace

// ---- ckpt inspect and ckpt convert on files h5py wrote ----------------------------------------

TEST_F(H5pyFixtures, CkptInspectListsAnH5pyTree) {
  const Document want = read_manifest(fixture("plain.json"));
  const Ran r = ckpt_cli("inspect " + quoted(fixture("plain.h5")) + " --json");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.err, "");
  const ojson j = ojson::parse(r.out);
  EXPECT_EQ(j.at("format"), "hdf5");
  EXPECT_EQ(j.at("tensor_count").get<size_t>(), want.tensor_count());
  EXPECT_EQ(j.at("tensor_bytes").get<uint64_t>(), want.tensor_bytes());
  expect_listed(want, j.at("root"));
  EXPECT_EQ(j.at("root").at("attributes").at("int").at("value"), -7);
  EXPECT_EQ(j.at("root").at("attributes").at("text").at("value"), "héllo");
  EXPECT_EQ(j.at("root").at("attributes").at("texts").at("value"), ojson::array({"a", "bc", ""}));

  const Ran text = ckpt_cli("inspect " + quoted(fixture("plain.h5")));
  ASSERT_EQ(text.status, 0) << text.out << text.err;
  EXPECT_NE(text.out.find("plain.h5 (hdf5, " + std::to_string(want.tensor_count()) + " tensors"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("\n  @int = " + value_to_string(Value(int64_t{-7})) + "\n"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("\n  weights/\n"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("\n    w_f32  f32 " + shape_string({3, 5}) + "  60 B\n"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("\n    u16  u16 " + shape_string({5}) + "  10 B\n"), std::string::npos) << text.out;
}

TEST_F(H5pyFixtures, CkptInspectListsAKerasFileAsAStateDict) {
  for (const std::string name : {"keras_model", "keras_weights"}) {
    SCOPED_TRACE(name);
    const Document want = read_manifest(fixture(name + ".json"));
    const Ran r = ckpt_cli("inspect --json " + quoted(fixture(name + ".h5")));
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    const ojson j = ojson::parse(r.out);
    const ojson& root = j.at("root");
    expect_listed(want, json_group(root, "model/state"));
    // In model order (Keras' layer_names, then weight_names), not by name.
    std::vector<std::string> listed, expected;
    for (const auto& [k, v] : json_group(root, "model/state").at("tensors").items()) listed.push_back(k);
    for (const Node& n : want.children()) expected.push_back(n.name);
    EXPECT_EQ(listed, expected);
    EXPECT_EQ(json_group(root, "meta").at("attributes").at("producer").at("value"),
              "Keras 2.11.0 (legacy HDF5 weights)");
    EXPECT_EQ(json_group(root, "extra/keras").at("attributes").at("keras_version").at("value"), "2.11.0");
  }
  // The transposition the text shows: Dense [in, out] as [out, in], Conv2D as [out, in, kh, kw].
  const Ran text = ckpt_cli("inspect " + quoted(fixture("keras_weights.h5")));
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("dense.weight  f32 " + shape_string({4096, 1024})), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("conv2d.weight  f32 " + shape_string({4, 2, 3, 3})), std::string::npos) << text.out;
}

TEST_F(H5pyFixtures, CkptConvertsAnH5pyTree) {
  TempDir tmp;
  const Document want = read_manifest(fixture("plain.json"));
  const Ran r = ckpt_cli("convert " + quoted(fixture("plain.h5")) + " " + quoted(tmp.path / "plain.msgpack"));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("(hdf5) -> "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(msgpack): " + std::to_string(want.tensor_count()) + " tensors"), std::string::npos) << r.out;
  expect_equivalent(want, without_hashes(read_document(tmp.path / "plain.msgpack")));
  // The converted file records the hashes of its data, though h5py's file had none.
  const Ran verified = ckpt_cli("verify " + quoted(tmp.path / "plain.msgpack"));
  EXPECT_EQ(verified.status, 0) << verified.out << verified.err;
  EXPECT_NE(verified.out.find("bytes match their recorded hashes"), std::string::npos) << verified.out;

  // Back to HDF5 with compression: h5py reads every tensor and attribute as h5py wrote them.
  const Ran back = ckpt_cli("convert " + quoted(tmp.path / "plain.msgpack") + " " + quoted(tmp.path / "again.h5") +
                            " -w compression=shuffle+gzip -w chunk=2");
  ASSERT_EQ(back.status, 0) << back.out << back.err;
  expect_equivalent(want, without_hashes(read_document(tmp.path / "again.h5")));
  int status = 0;
  const std::string out = python("h5py_check_written.py", {tmp.path / "again.h5", fixture("plain.json")}, &status);
  EXPECT_EQ(status, 0) << out;
}

// Soft and external links are links again after any format: the reader records them in meta
// (they are no member of a document; an external link is never followed), other formats carry
// them, the writer makes them links. A relative external link is resolved from its file's
// folder, so a conversion names it as a loss (the output may be elsewhere): --allow-lossy.
TEST_F(H5pyFixtures, SoftAndExternalLinksComeBackAsLinks) {
  TempDir tmp;
  int status = 0;
  std::string out = python("h5py_links.py", {"make", tmp.path / "links.h5"}, &status);
  ASSERT_EQ(status, 0) << out;
  const Document doc = read_document(tmp.path / "links.h5");
  const Group* meta = doc.find_group("meta");
  ASSERT_TRUE(meta);
  EXPECT_EQ(std::get<std::vector<std::string>>(*meta->attribute("hdf5_soft_link_paths")),
            (std::vector<std::string>{"/alias", "/g/later"}));
  EXPECT_EQ(std::get<std::vector<std::string>>(*meta->attribute("hdf5_soft_link_targets")),
            (std::vector<std::string>{"/w", "/g/missing"}));
  EXPECT_EQ(std::get<std::vector<std::string>>(*meta->attribute("hdf5_external_link_paths")),
            std::vector<std::string>{"/g/ext"});
  EXPECT_EQ(std::get<std::vector<std::string>>(*meta->attribute("hdf5_external_link_files")),
            std::vector<std::string>{"../elsewhere.h5"});
  // The same link in the format-neutral record sign and verify read.
  EXPECT_EQ(std::get<std::vector<std::string>>(*meta->attribute("external_references")),
            std::vector<std::string>{"/g/ext -> ../elsewhere.h5:/x"});
  ASSERT_TRUE(meta->attribute("unread"));
  const auto unread = std::get<std::vector<std::string>>(*meta->attribute("unread"));
  ASSERT_EQ(unread.size(), 1u);
  EXPECT_EQ(unread[0].rfind("/g/ext: an external link to '../elsewhere.h5' (object '/x'), relative to this file's folder", 0), 0u)
      << unread[0];
  for (const char* mid : {"links.msgpack", "links.json", "links.pt"}) {
    SCOPED_TRACE(mid);
    const Ran refused = ckpt_cli("convert " + quoted(tmp.path / "links.h5") + " " + quoted(tmp.path / mid));
    EXPECT_EQ(refused.status, 2) << refused.out << refused.err;
    EXPECT_NE(refused.err.find("/g/ext: an external link to '../elsewhere.h5'"), std::string::npos) << refused.err;
    const Ran there = ckpt_cli("convert --allow-lossy " + quoted(tmp.path / "links.h5") + " " + quoted(tmp.path / mid));
    ASSERT_EQ(there.status, 0) << there.out << there.err;
    // The record is the hdf5 reader's finding about links.h5, never carried: the output holds
    // no link (its hdf5 records only say how to make them again).
    const Document mid_doc = read_document(tmp.path / mid);
    const Group* mid_meta = mid_doc.find_group("meta");
    ASSERT_TRUE(mid_meta);
    EXPECT_FALSE(mid_meta->attribute("external_references"));
    const fs::path back = tmp.path / (std::string("back_") + mid + ".h5");
    const Ran again = ckpt_cli("convert " + quoted(tmp.path / mid) + " " + quoted(back));
    ASSERT_EQ(again.status, 0) << again.out << again.err;
    // Written back as a link, it is found again.
    const Document back_doc = read_document(back);
    const Group* back_meta = back_doc.find_group("meta");
    ASSERT_TRUE(back_meta);
    ASSERT_TRUE(back_meta->attribute("external_references"));
    EXPECT_EQ(std::get<std::vector<std::string>>(*back_meta->attribute("external_references")),
              std::vector<std::string>{"/g/ext -> ../elsewhere.h5:/x"});
    out = python("h5py_links.py", {"check", back}, &status);
    EXPECT_EQ(status, 0) << out;
  }
}

// String datasets, compound datasets and datasets' attributes as h5py makes them come back as
// h5py wrote them after any format: the reader makes strings values of their group, compounds
// groups of columns, and records in meta what they were; the writer makes them datasets again.
TEST_F(H5pyFixtures, StringAndCompoundDatasetsAndDatasetAttributesComeBack) {
  TempDir tmp;
  int status = 0;
  const fs::path src = tmp.path / "values.h5";
  std::string out = python("h5py_values.py", {"make", src}, &status);
  ASSERT_EQ(status, 0) << out;
  const Document doc = read_document(src);
  EXPECT_EQ(std::get<std::string>(*doc.attribute("name")), "résumé ✓");
  EXPECT_EQ(std::get<std::vector<std::string>>(*doc.attribute("grid")),
            (std::vector<std::string>{"a", "βb", "c", "日本", "", "z"}));
  EXPECT_EQ(std::get<std::vector<std::string>>(*doc.attribute("labels")), (std::vector<std::string>{"cat", "dog", "emu"}));
  ASSERT_TRUE(doc.find_tensor_path("rec/d"));
  EXPECT_EQ(doc.find_tensor_path("rec/d")->dtype(), DType::boolean);
  EXPECT_EQ(doc.find_tensor_path("g/table/y")->shape(), (Shape{3, 2}));
  const Group* meta = doc.find_group("meta");
  ASSERT_TRUE(meta);
  EXPECT_FALSE(meta->attribute("unread")) << "nothing is left unread";
  EXPECT_EQ(std::get<std::vector<std::string>>(*meta->attribute("hdf5_string_dataset_paths")),
            (std::vector<std::string>{"/ascii", "/fixed_utf8", "/g/note", "/grid", "/labels", "/name"}));
  EXPECT_EQ(std::get<std::vector<std::string>>(*meta->attribute("hdf5_string_dataset_types")),
            (std::vector<std::string>{"variable ascii", "fixed 8 utf-8 nullpad", "variable utf-8", "variable utf-8",
                                      "fixed 5 ascii nullpad", "variable utf-8"}));
  EXPECT_EQ(std::get<std::vector<std::string>>(*meta->attribute("hdf5_string_dataset_shapes")),
            (std::vector<std::string>{"2", "2", "", "2,3", "3", ""}));
  EXPECT_EQ(std::get<std::vector<std::string>>(*meta->attribute("hdf5_compound_dataset_paths")),
            (std::vector<std::string>{"/g/table", "/rec"}));
  const Group* w = doc.find_group_path("meta/hdf5_dataset_attributes/%2Fw");
  ASSERT_TRUE(w);
  EXPECT_EQ(std::get<std::string>(*w->attribute("units")), "m/s");
  EXPECT_EQ(std::get<std::vector<int64_t>>(*w->attribute("dims")), (std::vector<int64_t>{1, 2, 3}));
  for (const char* mid : {"", "values.msgpack", "values.json", "values.pt"}) {
    SCOPED_TRACE(*mid ? mid : "h5 -> h5");
    const fs::path back = tmp.path / (std::string("back_") + mid + ".h5");
    const fs::path first = *mid ? tmp.path / mid : back;
    const Ran there = ckpt_cli("convert " + quoted(src) + " " + quoted(first));
    ASSERT_EQ(there.status, 0) << there.out << there.err;
    if (*mid) {
      const Ran again = ckpt_cli("convert " + quoted(first) + " " + quoted(back));
      ASSERT_EQ(again.status, 0) << again.out << again.err;
    }
    out = python("h5py_values.py", {"check", src, back}, &status);
    EXPECT_EQ(status, 0) << out;
    const Ran verified = ckpt_cli("verify " + quoted(back));
    EXPECT_EQ(verified.status, 0) << verified.out << verified.err;
  }
}

// Files that claim more than they hold: string datasets are read whole while listing, so their
// elements are bounded before libhdf5 allocates them; compounds libhdf5 would take too long to
// split into columns are named, not read.
TEST_F(H5pyFixtures, StringAndCompoundDatasetsAreBounded) {
  TempDir tmp;
  int status = 0;
  const std::string out = python("h5py_values.py", {"attacks", tmp.path}, &status);
  ASSERT_EQ(status, 0) << out;
  const auto refused = [&](const char* file, const std::string& want, bool limit) {
    SCOPED_TRACE(file);
    try {
      read_document(tmp.path / file);
      ADD_FAILURE() << "read without error";
    } catch (const FormatError& e) {
      EXPECT_EQ(dynamic_cast<const LimitError*>(&e) != nullptr, limit) << e.what();
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  // 200 million never written elements of a compressed dataset of 1,400 bytes.
  refused("many.h5", "/s: string datasets (read whole while listing) list 1600000000", true);
  // 1,000 elements all referring to one heap object of 1 MiB.
  refused("shared.h5", "/s: its 1000 variable-length elements would read more than", true);
  // An element claiming 1 GiB of an object of 1 MiB.
  refused("long.h5", "/s: element 0 has 1073741824 bytes, its global heap object 1048576", false);
  const auto unread = [&](const char* file) {
    const Document d = read_document(tmp.path / file);
    return std::get<std::vector<std::string>>(*d.find_group("meta")->attribute("unread"));
  };
  EXPECT_EQ(unread("fields.h5"),
            std::vector<std::string>{"/wide: a dataset of compound records (2000 fields, more than the 256 ckpt reads as columns)"});
  const std::vector<std::string> bomb = unread("wide_bomb.h5");
  ASSERT_EQ(bomb.size(), 1u);
  EXPECT_NE(bomb[0].find("/wide: a dataset of compound records (200 fields of 100000000 bytes of records: reading each "
                         "column apart would convert more than"),
            std::string::npos) << bomb[0];
  const Document wide = read_document(tmp.path / "fields256.h5");
  ASSERT_EQ(wide.find_group("wide")->children().size(), 256u);
  const Tensor* f9 = wide.find_tensor_path("wide/f9");
  ASSERT_TRUE(f9);
  EXPECT_EQ(f9->shape(), (Shape{4}));
  const auto* b = reinterpret_cast<const uint8_t*>(f9->bytes().data());
  EXPECT_EQ((std::vector<uint8_t>(b, b + 4)), (std::vector<uint8_t>{2, 3, 4, 5}));
  // The group's attribute keeps the name; the dataset is named, not dropped.
  const Document clash = read_document(tmp.path / "clash.h5");
  EXPECT_EQ(std::get<std::string>(*clash.find_group("g")->attribute("note")), "the attribute");
  EXPECT_EQ(unread("clash.h5"), std::vector<std::string>{"/g/note: a dataset of strings (its group has an attribute of that name)"});
}

// What meta records of string datasets, compounds and dataset attributes must match the
// document: the writer names the record and the path that does not.
TEST(Hdf5, RecordsOfDatasetsThatDoNotMatchAreRefused) {
  TempDir tmp;
  const auto refused = [&](const Document& d, const std::string& want) {
    try {
      write_document(d, tmp.path / "x.h5", hdf5_save());
      ADD_FAILURE() << "written without error";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  const auto with_strings = [](std::vector<std::string> paths, std::vector<std::string> shapes) {
    Document d;
    d.set("s", std::vector<std::string>{"a", "b", "c"});
    d.add_tensor("w", Tensor::from<float>(DType::f32, {2}, {1, 2}));
    Group& meta = d.group("meta");
    const size_t n = paths.size();
    meta.set("hdf5_string_dataset_paths", std::move(paths))
        .set("hdf5_string_dataset_types", std::vector<std::string>(n, "variable utf-8"))
        .set("hdf5_string_dataset_shapes", std::move(shapes));
    return d;
  };
  refused(with_strings({"/missing"}, {"3"}), "meta/@hdf5_string_dataset_paths: /missing: its group has no string value of that name");
  refused(with_strings({"/s"}, {"2,2"}), "meta/@hdf5_string_dataset_paths: /s: shape '2,2' does not hold its value of 3 strings");
  Document compound;
  compound.add_tensor("w", Tensor::from<float>(DType::f32, {2}, {1, 2}));
  compound.group("meta").set("hdf5_compound_dataset_paths", std::vector<std::string>{"/nothing"});
  refused(compound, "meta/@hdf5_compound_dataset_paths: /nothing: no group /nothing");
  Document attrs;
  attrs.add_tensor("w", Tensor::from<float>(DType::f32, {2}, {1, 2}));
  attrs.group("meta").group("hdf5_dataset_attributes").group("%2Fv").set("units", "m");
  refused(attrs, "meta/hdf5_dataset_attributes/%2Fv: no dataset at /v");
  // A matching record writes: the string array is a 3-element dataset again.
  write_document(with_strings({"/s"}, {"3"}), tmp.path / "ok.h5", hdf5_save());
  const Document back = read_document(tmp.path / "ok.h5");
  EXPECT_EQ(std::get<std::vector<std::string>>(*back.attribute("s")), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(std::get<std::vector<std::string>>(*back.find_group("meta")->attribute("hdf5_string_dataset_paths")),
            std::vector<std::string>{"/s"});
}

// Files crafted by h5py_hostile.py against the bounds on string and compound datasets; a read
// refused is a FormatError (a LimitError when `limit`) whose message holds `want`.
static void crafted(const fs::path& folder) {
  int status = 0;
  const std::string out = python("h5py_hostile.py", {folder}, &status);
  ASSERT_EQ(status, 0) << out;
}

static void expect_refused(const fs::path& file, const std::string& want, bool limit) {
  SCOPED_TRACE(file.filename().string());
  try {
    read_document(file);
    ADD_FAILURE() << "read without error";
  } catch (const FormatError& e) {
    EXPECT_EQ(dynamic_cast<const LimitError*>(&e) != nullptr, limit) << e.what();
    EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
  }
}

static std::vector<std::string> unread_of(const Document& d) {
  const Group* meta = d.find_group("meta");
  if (!meta || !meta->attribute("unread")) return {};
  return std::get<std::vector<std::string>>(*meta->attribute("unread"));
}

// A compound field whose offset lies beyond its record crashed libhdf5's conversion: refused
// before any read, naming the dataset and the field.
TEST_F(H5pyFixtures, CompoundFieldsOutsideTheirRecordAreRefused) {
  TempDir tmp;
  crafted(tmp.path);
  expect_refused(tmp.path / "beyond.h5", "/c field 'qqb': 4 bytes at offset 2147483632 lie outside its record of 8 bytes", false);
}

// Each string element costs a std::string beside its bytes: two million one-byte strings
// compressed to 5 KB are refused within the document's budget, before libhdf5 reads them.
TEST_F(H5pyFixtures, StringElementsAreChargedWhatTheyCost) {
  TempDir tmp;
  crafted(tmp.path);
  expect_refused(tmp.path / "strings.h5", "/s: string datasets (read whole while listing) of 2000000 elements here would cost more than", true);
  // The budget is an option.
  const Document d = read_document(tmp.path / "strings.h5", hdf5_load(Options{{"max_document_bytes", "200000000"}}));
  EXPECT_EQ(std::get<std::vector<std::string>>(*d.attribute("s")).size(), 2000000u);
}

// Variable-length elements sharing a heap object are bounded for the whole file: 20 attributes
// of 18 MiB each (9 references to one object of 2 MiB) are refused together.
TEST_F(H5pyFixtures, SharedHeapObjectsAreBoundedPerFile) {
  TempDir tmp;
  crafted(tmp.path);
  expect_refused(tmp.path / "shared_attrs.h5", "its 9 variable-length elements would read more than", true);
}

// A chunk far larger than its dataset (one element, chunks of 2^30) is refused before libhdf5
// or ckpt allocates it, for string datasets and tensors alike.
TEST_F(H5pyFixtures, ChunksFarBeyondTheirDatasetAreRefused) {
  TempDir tmp;
  crafted(tmp.path);
  for (const char* file : {"bigchunk_strings.h5", "bigchunk_tensor.h5"})
    expect_refused(tmp.path / file, "/s: chunks of 1073741824 bytes for a dataset of 1 elements of 1 bytes", true);
}

// Columns read apart decode and convert the whole records each: a compressed compound whose
// columns would cost more than 1 GiB plus 64 times the file is named, not read for minutes.
TEST_F(H5pyFixtures, CostlyCompoundColumnsAreNamed) {
  TempDir tmp;
  crafted(tmp.path);
  const std::vector<std::string> unread = unread_of(read_document(tmp.path / "wide.h5"));
  ASSERT_EQ(unread.size(), 1u);
  EXPECT_NE(unread[0].find("/wide: a dataset of compound records (64 fields of 19200000 bytes of records"), std::string::npos)
      << unread[0];
}

// /meta's own values named like ckpt's records (an attribute, a string dataset named unread
// with an attribute of its own) give way to the records and are named in unread.
TEST_F(H5pyFixtures, MetaValuesNamedLikeRecordsAreNamed) {
  TempDir tmp;
  crafted(tmp.path);
  const Document d = read_document(tmp.path / "meta_names.h5");
  std::vector<std::string> unread = unread_of(d);
  std::sort(unread.begin(), unread.end());
  EXPECT_EQ(unread, (std::vector<std::string>{
                        "/e: a dataset of enums",
                        "/meta/unread: a dataset of strings (ckpt records what it could not read, or how, under that name)",
                        "/meta/unread: its attribute 'units' (its dataset is not read)",
                        "/meta: its attribute 'hdf5_compound_dataset_paths' (ckpt records what it could not read, or how, "
                        "under that name)"}));
  EXPECT_EQ(std::get<std::vector<std::string>>(*d.find_group("meta")->attribute("hdf5_compound_dataset_paths")),
            std::vector<std::string>{"/c"});
  EXPECT_FALSE(d.find_group("meta")->attribute("hdf5_string_dataset_paths"));
  EXPECT_FALSE(d.find_group_path("meta/hdf5_dataset_attributes"));
}

// Compound columns that a write back would not keep exactly (a long double, big-endian fields,
// padding) are read and named; a packed little-endian one is not.
TEST_F(H5pyFixtures, InexactCompoundColumnsAreNamed) {
  TempDir tmp;
  crafted(tmp.path);
  const Document d = read_document(tmp.path / "inexact.h5");
  std::vector<std::string> unread = unread_of(d);
  std::sort(unread.begin(), unread.end());
  EXPECT_EQ(unread, (std::vector<std::string>{
                        "/be: compound records read as columns, not kept exactly (big-endian fields, written back little-endian)",
                        "/ld: compound records read as columns, not kept exactly (field 'x' is a 16-byte float, read rounded to f64)",
                        "/pad: compound records read as columns, not kept exactly (a layout with padding or out of field order, "
                        "written back packed)"}));
  EXPECT_TRUE(d.find_tensor_path("ok/y"));
  EXPECT_TRUE(d.find_tensor_path("pad/y"));
}

// The writer resolves every record's path through hard links of its own file only, and makes
// the links last: a document cannot make it write into another file through an external link
// (nor through a soft one).
TEST(Hdf5, RecordsNeverResolveThroughLinks) {
  TempDir tmp;
  Document v;
  v.add_tensor("w", Tensor::from<float>(DType::f32, {2}, {1, 2}));
  v.group("grp").add_tensor("x", Tensor::from<float>(DType::f32, {1}, {3}));
  const fs::path victim = tmp.path / "victim.h5";
  write_document(v, victim, hdf5_save());
  const std::string before = file_bytes(victim);
  const auto refused = [&](const Document& d, const std::string& want) {
    try {
      write_document(d, tmp.path / "x.h5", hdf5_save());
      ADD_FAILURE() << "written without error";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
    EXPECT_EQ(file_bytes(victim), before) << "the other file was changed";
  };
  const auto linked = [&](std::vector<std::string> paths) {
    Document d;
    d.add_tensor("t", Tensor::from<float>(DType::f32, {1}, {1}));
    const size_t n = paths.size();
    d.group("meta")
        .set("hdf5_external_link_paths", std::move(paths))
        .set("hdf5_external_link_files", std::vector<std::string>(n, victim.string()))
        .set("hdf5_external_link_objects", std::vector<std::string>(n, "/"));
    return d;
  };
  Document attrs = linked({"/ext"});
  attrs.group("meta").group("hdf5_dataset_attributes").group("%2Fext%2Fw").set("pwned", "yes");
  refused(attrs, "meta/hdf5_dataset_attributes/%2Fext%2Fw: no dataset at /ext/w");
  Document compound = linked({"/ext"});
  compound.group("meta").set("hdf5_compound_dataset_paths", std::vector<std::string>{"/ext/grp"});
  refused(compound, "meta/@hdf5_compound_dataset_paths: /ext/grp: no group /ext");
  Document strings = linked({"/ext"});
  strings.group("meta")
      .set("hdf5_string_dataset_paths", std::vector<std::string>{"/ext/grp/s"})
      .set("hdf5_string_dataset_types", std::vector<std::string>{"variable utf-8"})
      .set("hdf5_string_dataset_shapes", std::vector<std::string>{""});
  refused(strings, "/ext/grp/s: its group has no string value of that name");
  // A link made through an earlier one.
  refused(linked({"/ext", "/ext/pwn"}), "/ext/pwn: the link that meta/@hdf5_external_link_paths, _files, _objects record: /ext is a "
                                        "soft or external link, which no record is resolved through");
  Document soft;
  soft.group("g").add_tensor("t", Tensor::from<float>(DType::f32, {1}, {1}));
  soft.group("meta")
      .set("hdf5_soft_link_paths", std::vector<std::string>{"/alias", "/alias/again"})
      .set("hdf5_soft_link_targets", std::vector<std::string>{"/g", "/g/t"});
  refused(soft, "/alias is a soft or external link");
  // Links alone are still made.
  write_document(linked({"/ext"}), tmp.path / "ok.h5", hdf5_save());
  EXPECT_EQ(std::get<std::vector<std::string>>(*read_document(tmp.path / "ok.h5").find_group("meta")->attribute("hdf5_external_link_paths")),
            std::vector<std::string>{"/ext"});
}

// A recorded fixed-length string type costs its cells: a few bytes of a document cannot make
// the writer write gigabytes. A string dataset at /meta cannot be written back, and says why.
TEST(Hdf5, RecordedFixedStringSizesAreBounded) {
  TempDir tmp;
  const auto fixed = [](std::vector<std::string> value, const std::string& type, const std::string& shape) {
    Document d;
    d.set("s", std::move(value));
    d.group("meta")
        .set("hdf5_string_dataset_paths", std::vector<std::string>{"/s"})
        .set("hdf5_string_dataset_types", std::vector<std::string>{type})
        .set("hdf5_string_dataset_shapes", std::vector<std::string>{shape});
    return d;
  };
  const auto refused = [&](const Document& d, const std::string& want) {
    try {
      write_document(d, tmp.path / "x.h5", hdf5_save());
      ADD_FAILURE() << "written without error";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  refused(fixed({"a", "b", "c", "d"}, "fixed 268435456 ascii nullpad", "4"),
          "meta/@hdf5_string_dataset_paths: /s: a fixed size of 268435456 bytes, more than its longest element (1 bytes) and than 65536");
  refused(fixed(std::vector<std::string>(100000, ""), "fixed 65536 ascii nullpad", "100000"),
          "meta/@hdf5_string_dataset_paths: /s: 100000 cells of 65536 bytes, more than");
  // Within the bounds: a cell wider than the longest element, as numpy's S10 of short strings.
  write_document(fixed({"a", "bc"}, "fixed 10 ascii nullpad", "2"), tmp.path / "ok.h5", hdf5_save());
  EXPECT_EQ(std::get<std::vector<std::string>>(*read_document(tmp.path / "ok.h5").find_group("meta")->attribute("hdf5_string_dataset_types")),
            std::vector<std::string>{"fixed 10 ascii nullpad"});
  Document at_meta;
  at_meta.set("meta", "a string dataset named /meta");
  at_meta.add_tensor("w", Tensor::from<float>(DType::f32, {1}, {1}));
  at_meta.group("meta")
      .set("hdf5_string_dataset_paths", std::vector<std::string>{"/meta"})
      .set("hdf5_string_dataset_types", std::vector<std::string>{"variable utf-8"})
      .set("hdf5_string_dataset_shapes", std::vector<std::string>{""});
  refused(at_meta, "/meta: its group already has a member named 'meta', which the dataset cannot replace (a string dataset at "
                   "/meta cannot be written back");
}

TEST_F(H5pyFixtures, CkptConvertsAKerasWeightsFile) {
  TempDir tmp;
  for (const std::string name : {"keras_model", "keras_weights"}) {
    SCOPED_TRACE(name);
    const fs::path out = tmp.path / (name + ".h5");
    const Ran r = ckpt_cli("convert " + quoted(fixture(name + ".h5")) + " " + quoted(out));
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("(hdf5) -> "), std::string::npos) << r.out;
    // h5py finds the PyTorch-layout state dict in the converted file, bit for bit.
    int status = 0;
    const std::string checked = python("h5py_check_state.py", {out, fixture(name + ".json"), "model/state"}, &status);
    EXPECT_EQ(status, 0) << checked;
    expect_same(read_manifest(fixture(name + ".json")), *read_document(out).find_group_path("model/state"));
  }
  // keras=raw converts the file as stored.
  const Ran raw = ckpt_cli("convert -r keras=raw " + quoted(fixture("keras_weights.h5")) + " " +
                           quoted(tmp.path / "raw.msgpack"));
  ASSERT_EQ(raw.status, 0) << raw.out << raw.err;
  const Document d = read_document(tmp.path / "raw.msgpack");
  ASSERT_NE(d.find_tensor_path("dense/dense/kernel:0"), nullptr);
  EXPECT_EQ(d.find_tensor_path("dense/dense/kernel:0")->shape(), (Shape{1024, 4096}));
  EXPECT_EQ(d.find_group("model"), nullptr);
}

// ---- HDF5's error stack stays off stderr -------------------------------------------------------

TEST(Hdf5, CkptPrintsNoneOfHdf5sErrorStack) {
  TempDir tmp;
  const fs::path header = damaged_object_header(tmp.path), cut = truncated(tmp.path);
  for (const fs::path& p : {header, cut}) {
    SCOPED_TRACE(p.filename().string());
    for (const std::string& cmd : {"inspect " + quoted(p), "convert " + quoted(p) + " " + quoted(tmp.path / "x.msgpack")}) {
      SCOPED_TRACE(cmd);
      const Ran r = ckpt_cli(cmd);
      EXPECT_EQ(r.status, 2) << r.out << r.err;
      // One line: ckpt's own error, naming the file.
      EXPECT_EQ(r.err.rfind("ckpt: error: ", 0), 0u) << r.err;
      EXPECT_NE(r.err.find(p.filename().string()), std::string::npos) << r.err;
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
      expect_no_hdf5_stack(r.err);
    }
    // verify reports an unreadable file as a finding, on stdout.
    const Ran v = ckpt_cli("verify " + quoted(p));
    EXPECT_EQ(v.status, 1) << v.out << v.err;
    EXPECT_EQ(v.out.rfind("FAILED ", 0), 0u) << v.out;
    EXPECT_NE(v.out.find(p.filename().string()), std::string::npos) << v.out;
    EXPECT_EQ(v.err, "");
    expect_no_hdf5_stack(v.out);
  }
  // The damaged header is found by libhdf5 (its checksum), and its reason is in ckpt's message.
  const Ran r = ckpt_cli("inspect " + quoted(header));
  EXPECT_NE(r.err.find("checksum"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp.path / "x.msgpack"));
}

TEST(Hdf5, LibraryPrintsNoneOfHdf5sErrorStackEvenWhenTheHostTurnedPrintingOn) {
  TempDir tmp;
  const fs::path header = damaged_object_header(tmp.path), cut = truncated(tmp.path);
  // A host that uses libhdf5 itself, with HDF5's printing on (its default): a failing call of
  // its own does print, so the capture below would see a stack if the plugin let one through.
  H5Eset_auto2(H5E_DEFAULT, print_stack, stderr);
  {
    StderrCapture capture;
    EXPECT_LT(H5Fopen((tmp.path / "missing.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), 0);
    const std::string err = capture.take();
    ASSERT_NE(err.find("HDF5-DIAG"), std::string::npos) << "HDF5 printed no stack of its own:\n" << err;
  }
  for (const fs::path& p : {header, cut}) {
    SCOPED_TRACE(p.filename().string());
    H5Eset_auto2(H5E_DEFAULT, print_stack, stderr);
    StderrCapture capture;
    std::string message;
    try {
      read_document(p);
      ADD_FAILURE() << "read without error";
    } catch (const FormatError& e) {
      message = e.what();
    }
    try {
      load(p);
      ADD_FAILURE() << "loaded without error";
    } catch (const FormatError&) {
    }
    const std::string err = capture.take();
    EXPECT_EQ(err, "");
    expect_no_hdf5_stack(err);
    EXPECT_NE(message.find(p.filename().string()), std::string::npos) << message;
    if (p == header) {
      EXPECT_NE(message.find("checksum"), std::string::npos) << message;
    }
  }
}

// A chunk that fails to decode is reported through ckpt's error alone as well.
TEST_F(H5pyFixtures, DamagedChunksPrintNothingOfHdf5sErrorStack) {
  TempDir tmp;
  const fs::path p = tmp.path / "chunk.h5";
  fs::copy_file(fixture("sliced.h5"), p);
  int status = 0;
  const std::string out = python("h5py_damage_chunk.py", {p, "gzip_f32", "7,6", "short"}, &status);
  ASSERT_EQ(status, 0) << out;
  // --allow-lossy: sliced.h5 has a fill value of 7, which a conversion names as a loss.
  const Ran r = ckpt_cli("convert --allow-lossy " + quoted(p) + " " + quoted(tmp.path / "x.msgpack"));
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("gzip_f32 chunk at [7,6]"), std::string::npos) << r.err;
  expect_no_hdf5_stack(r.err);
  H5Eset_auto2(H5E_DEFAULT, print_stack, stderr);
  StderrCapture capture;
  auto reader = open(p);
  EXPECT_THROW(reader->read("gzip_f32"), FormatError);
  EXPECT_EQ(capture.take(), "");
}

// ---- what h5py reads is what ckpt signs and converts (h5py_fidelity.py) ----------------------

namespace {

// The files of h5py_fidelity.py make, in a folder of their own.
struct FidelityFiles {
  TempDir tmp;
  FidelityFiles() {
    int status = 0;
    const std::string out = python("h5py_fidelity.py", {"make", tmp.path}, &status);
    EXPECT_EQ(status, 0) << out;
  }
  fs::path operator/(const std::string& name) const { return tmp.path / name; }
};

}  // namespace

// h5py follows an external link into the file it names, which neither the signed file's bytes
// nor ckpt's manifest hold: sign refuses, naming the link; a virtual dataset is refused too.
TEST_F(H5pyFixtures, SignRefusesLinksIntoOtherFiles) {
  FidelityFiles f;
  ASSERT_EQ(ckpt_cli("keygen " + quoted(f / "k")).status, 0);
  const Ran linked = ckpt_cli("sign " + quoted(f / "sub/extlink.h5") + " --key " + quoted(f / "k"));
  EXPECT_NE(linked.status, 0) << linked.out;
  EXPECT_NE(linked.err.find("not signing it"), std::string::npos) << linked.err;
  EXPECT_NE(linked.err.find("/ext -> ../secret.h5:/secret"), std::string::npos) << linked.err;
  EXPECT_NE(linked.err.find("/ext_abs -> " + (f / "secret.h5").string() + ":/secret"), std::string::npos) << linked.err;
  EXPECT_NE(linked.err.find("cannot cover"), std::string::npos) << linked.err;
  EXPECT_FALSE(fs::exists(f / "sub/extlink.h5.sig"));
  const Ran virt = ckpt_cli("sign " + quoted(f / "sub/vds.h5") + " --key " + quoted(f / "k"));
  EXPECT_NE(virt.status, 0) << virt.out;
  EXPECT_NE(virt.err.find("/v"), std::string::npos) << virt.err;
  EXPECT_NE(virt.err.find("ckpt does not read virtual datasets"), std::string::npos) << virt.err;
  EXPECT_FALSE(fs::exists(f / "sub/vds.h5.sig"));
  // Not signed, the file does not verify with a key either.
  const Ran verified = ckpt_cli("verify " + quoted(f / "sub/extlink.h5") + " --pubkey " + quoted(f / "k.pub"));
  EXPECT_EQ(verified.status, 1) << verified.out << verified.err;
  EXPECT_EQ(verified.out.find("OK"), std::string::npos) << verified.out;
}

// A relative external link names a file from its own file's folder: a conversion, whose output
// may be elsewhere, names it as a loss (an absolute one keeps its meaning and is not named).
TEST_F(H5pyFixtures, ConvertNamesRelativeExternalLinksAsLosses) {
  FidelityFiles f;
  const Ran refused = ckpt_cli("convert " + quoted(f / "sub/extlink.h5") + " " + quoted(f / "other.h5"));
  EXPECT_EQ(refused.status, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("/ext: an external link to '../secret.h5' (object '/secret'), relative to this file's folder"),
            std::string::npos)
      << refused.err;
  EXPECT_EQ(refused.err.find("/ext_abs:"), std::string::npos) << refused.err;
  EXPECT_FALSE(fs::exists(f / "other.h5"));
  const Ran allowed = ckpt_cli("convert --allow-lossy " + quoted(f / "sub/extlink.h5") + " " + quoted(f / "other.h5"));
  ASSERT_EQ(allowed.status, 0) << allowed.out << allowed.err;
  EXPECT_NE(allowed.err.find("/ext: an external link to '../secret.h5'"), std::string::npos) << allowed.err;
  // The output says what it lost.
  const Document out = read_document(f / "other.h5");
  const Group* losses = out.find_group_path("meta/conversion");
  ASSERT_NE(losses, nullptr);
}

// h5 -> h5 (directly, and through msgpack) hands h5py the same attributes: dtypes (int8, uint16,
// float16, float32, fixed-length bytes that are not UTF-8), shapes (2-d, 3-d, h5py.Empty) and
// values, on groups and datasets.
TEST_F(H5pyFixtures, AttributesKeepTheirTypesAndShapes) {
  FidelityFiles f;
  int status = 0;
  const Ran direct = ckpt_cli("convert " + quoted(f / "attrs.h5") + " " + quoted(f / "direct.h5"));
  ASSERT_EQ(direct.status, 0) << direct.out << direct.err;
  std::string out = python("h5py_fidelity.py", {"compare", f / "attrs.h5", f / "direct.h5"}, &status);
  EXPECT_EQ(status, 0) << out;
  ASSERT_EQ(ckpt_cli("convert " + quoted(f / "attrs.h5") + " " + quoted(f / "attrs.msgpack")).status, 0);
  const Ran back = ckpt_cli("convert " + quoted(f / "attrs.msgpack") + " " + quoted(f / "back.h5"));
  ASSERT_EQ(back.status, 0) << back.out << back.err;
  out = python("h5py_fidelity.py", {"compare", f / "attrs.h5", f / "back.h5"}, &status);
  EXPECT_EQ(status, 0) << out;
  // Again from ckpt's own file: the records are made from the file, not carried.
  ASSERT_EQ(ckpt_cli("convert " + quoted(f / "direct.h5") + " " + quoted(f / "again.h5")).status, 0);
  out = python("h5py_fidelity.py", {"compare", f / "attrs.h5", f / "again.h5"}, &status);
  EXPECT_EQ(status, 0) << out;
}

// A recorded type that cannot hold the value (edited on the way) is refused, not clamped.
TEST_F(H5pyFixtures, AValueARecordedTypeCannotHoldIsRefused) {
  FidelityFiles f;
  const auto refused = [&f](const char* name, Value v, const std::string& why) {
    SCOPED_TRACE(name);
    Document doc = read_document(f / "attrs.h5");
    doc.set(name, std::move(v));
    try {
      write_document(doc, f / "edited.h5", hdf5_save());
      ADD_FAILURE() << "written";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("/ attribute '") + name + "'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  refused("i8", int64_t{300}, "does not fit that type exactly");
  refused("f32", 0.1, "does not fit that type exactly");
  refused("m", std::vector<double>{1, 2, 3}, "the shape does not hold its value of 3 elements");
  refused("b", std::string("abcd"), "more than the fixed size");
  refused("u16", std::string("x"), "not an integer value");
}

// A uint64 attribute beyond int64 is named (the file stays readable); other attributes read.
TEST_F(H5pyFixtures, Uint64AttributesBeyondInt64AreNamed) {
  FidelityFiles f;
  const Document doc = read_document(f / "u64.h5");
  const Group* meta = doc.find_group("meta");
  ASSERT_NE(meta, nullptr);
  const auto unread = std::get<std::vector<std::string>>(*meta->attribute("unread"));
  EXPECT_EQ(unread, (std::vector<std::string>{
                        "/: its attribute 'big' (a uint64 value of 9223372036854775808, beyond the int64 of ckpt's values (h5py reads it exactly))",
                        "/x: its attribute 'big' (a uint64 value of 18446744073709551615, beyond the int64 of ckpt's values (h5py reads it exactly))"}));
  const Ran refused = ckpt_cli("convert " + quoted(f / "u64.h5") + " " + quoted(f / "u64.msgpack"));
  EXPECT_EQ(refused.status, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("its attribute 'big'"), std::string::npos) << refused.err;
}

// What a conversion does not keep of a dataset's creation is named: a maxshape beyond its shape,
// a fill value other than 0.
TEST_F(H5pyFixtures, MaxshapeAndFillValueAreNamed) {
  FidelityFiles f;
  const Ran refused = ckpt_cli("convert " + quoted(f / "props.h5") + " " + quoted(f / "props2.h5"));
  EXPECT_EQ(refused.status, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("/resizable: its maxshape (None,)"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("/filled: its fill value 7"), std::string::npos) << refused.err;
}
