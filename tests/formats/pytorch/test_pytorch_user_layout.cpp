// .pt files as their users laid them out (torch_faithful.py): converted to .pt, directly or
// through another format, torch.load gives back the very object torch saved. And the layout
// that makes this possible is never a second reading: a layout that disagrees with its
// document, names what the document does not hold or asks for a class ckpt does not write is
// refused, on writing and on reading.
#include <ckpt/convert.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>

#include "pytorch_test_support.hpp"
#include "run_many.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

using namespace ckpt;
using namespace pytorch_test;
using json = nlohmann::ordered_json;  // a document's members keep their order

namespace {

std::string faithful(const std::string& args) {
  return std::string(CKPT_PYTHON) + " " + (kHere / "torch_faithful.py").string() + " " + args;
}

std::vector<std::string> write_cases(const fs::path& dir) {
  std::string out;
  EXPECT_EQ(run(faithful("write " + dir.string()), out), 0) << out;
  std::vector<std::string> names;
  std::istringstream lines(out);
  for (std::string n; std::getline(lines, n);)
    if (!n.empty()) names.push_back(n);
  return names;
}

json read_json(const fs::path& p) { return json::parse(slurp(p)); }
void write_json(const fs::path& p, const json& j) { std::ofstream(p) << j.dump(1); }

// The layout of a JSON document, parsed, and the document with `layout` put back.
json layout_of(const json& doc) { return json::parse(doc["meta"]["$attrs"]["torch_layout"].get<std::string>()); }
json with_layout(json doc, const json& layout) {
  doc["meta"]["$attrs"]["torch_layout"] = layout.dump();
  return doc;
}

// The value of `key` in a layout dict node ({"d": [[k, v], ...]}).
json& entry(json& dict, const std::string& key) {
  for (json& kv : dict.begin().value())
    if (kv[0] == key) return kv[1];
  throw std::runtime_error("no key " + key);
}

void expect_refused(const fs::path& src, const fs::path& dst, const std::string& why) {
  SCOPED_TRACE(why);
  try {
    convert(src, dst, to("pytorch"));
    ADD_FAILURE() << "written";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dst));
}

}  // namespace

TEST(PytorchUserLayout, TorchLoadsTheObjectItSavedBackFromEveryFormat) {
  TempDir tmp;
  const std::vector<std::string> names = write_cases(tmp.path);
  ASSERT_GE(names.size(), 8u);
  // torch.load compares every output with its source in one Python process (run_many.py).
  std::vector<std::vector<std::string>> compares;
  std::vector<fs::path> compared;
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    const fs::path src = tmp.path / (name + ".pt");
    const fs::path direct = tmp.path / (name + ".direct.pt");
    convert(src, direct, to("pytorch"));
    std::vector<fs::path> outputs{direct};
    // Through the other formats that hold groups and attributes, and back. python_values holds
    // bytes that are not UTF-8, which JSON and safetensors headers cannot hold (they refuse).
    std::vector<std::pair<const char*, const char*>> via = {{"msgpack", ".msgpack"}, {"hdf5", ".h5"}};
    if (name != "python_values") via.insert(via.end(), {{"json", ".json"}, {"safetensors", ".safetensors"}});
    for (const auto& [format, ext] : via) {
      const fs::path mid = tmp.path / (name + ".via" + ext);
      const fs::path back = tmp.path / (name + ".via" + ext + ".pt");
      convert(direct, mid, to(format));
      convert(mid, back, to("pytorch"));
      outputs.push_back(back);
    }
    for (const fs::path& out : outputs) {
      compares.push_back({name == "reference_script" ? "strict" : "compare", src.string(), out.string()});
      compared.push_back(out);
    }
  }
  const auto results = ckpt_test::run_many(CKPT_PYTHON, kHere / "torch_faithful.py", compares, tmp.path);
  for (size_t i = 0; i < results.size(); ++i) EXPECT_EQ(results[i].status, 0) << compared[i] << ": " << results[i].output;
  EXPECT_GE(compared.size(), 8u + 7 * 4 + 2);
  // A tie is one storage in the file, as torch wrote it, and one copy in safetensors (with the
  // alias recorded, which the round trip above turned back into a tie).
  EXPECT_LT(fs::file_size(tmp.path / "tied_state_dict.direct.pt"), fs::file_size(tmp.path / "tied_state_dict.pt") + 4096);
  const std::string st = slurp(tmp.path / "tied_state_dict.via.safetensors");
  EXPECT_EQ(st.find("\"head.weight\":{\"dtype\""), std::string::npos);
  EXPECT_NE(st.find("{\\\"head.weight\\\":\\\"embed.weight\\\"}"), std::string::npos);
}

TEST(PytorchUserLayout, ALayoutIsNeverASecondReading) {
  TempDir tmp;
  write_cases(tmp.path);
  const fs::path doc_path = tmp.path / "multistep.json";
  convert(tmp.path / "multistep.pt", doc_path, to("json"));
  const json doc = read_json(doc_path);
  auto attempt = [&](const char* name, json edited, const std::string& why) {
    const fs::path p = tmp.path / (std::string(name) + ".json");
    edited["meta"].erase("integrity");  // else convert finds the edit first, by the manifest
    write_json(p, edited);
    expect_refused(p, tmp.path / (std::string(name) + ".pt"), why);
  };
  {  // The document says one learning rate, the layout another.
    json d = doc;
    d["optimizer"]["$attrs"]["lr"] = 999.0;
    attempt("view_lr", d, "does not describe the document at optimizer@lr");
    json l = layout_of(doc);
    entry(entry(l["root"], "optimizer"), "param_groups")["l"][0]["d"][0][1] = json{{"f", "408f380000000000"}};
    attempt("layout_lr", with_layout(doc, l), "does not describe the document at optimizer@lr");
  }
  {  // A key the document does not hold.
    json l = layout_of(doc);
    l["root"]["d"].push_back(json::array({"hidden", "payload"}));
    attempt("extra_key", with_layout(doc, l), "does not describe the document");
  }
  {  // A tensor moved to another key: torch would load the weight as the bias.
    json l = layout_of(doc);
    json& model = entry(l["root"], "model");
    std::swap(model["o"][0][1], model["o"][1][1]);
    attempt("swapped", with_layout(doc, l), "does not describe the document");
  }
  {  // A tensor the document does not hold.
    json l = layout_of(doc);
    entry(l["root"], "model")["o"][0][1]["T"] = "model/state/nothing";
    attempt("missing_tensor", with_layout(doc, l), "names a tensor 'model/state/nothing' the document does not hold");
  }
  {  // An object whose class could run code in torch.load.
    json l = layout_of(doc);
    l["root"]["d"].push_back(json::array({"args", json{{"R", "posix.system"}, {"a", json::array()}}}));
    attempt("class", with_layout(doc, l), "which ckpt does not write into a pickle");
  }
  {  // Values the schema's view would not show: a learning rate that is a bool, a state on the
     // model's OrderedDict beside _metadata, a trainer dict that says another epoch, two keys
     // that name one member.
    json l = layout_of(doc);
    entry(entry(l["root"], "optimizer"), "param_groups")["l"][0]["d"][0][1] = true;
    attempt("lr_bool", with_layout(doc, l), "does not describe the document");
    l = layout_of(doc);
    entry(l["root"], "model")["state"]["d"].push_back(json::array({"hidden", 1}));
    attempt("state", with_layout(doc, l),
            "describes an object ckpt does not write back exactly: ['model']: an OrderedDict with a state other than the "
            "_metadata torch's state_dict() sets");
    l = layout_of(doc);
    l["root"]["d"].push_back(json::array({"trainer", json{{"d", json::array({json::array({"epoch", 999})})}}}));
    attempt("trainer", with_layout(doc, l), "does not describe the document");
    l = layout_of(doc);
    l["root"]["d"].push_back(json::array({7, "int"}));
    l["root"]["d"].push_back(json::array({"7", "str"}));
    attempt("collision", with_layout(doc, l), "meta/@torch_layout");
    l = layout_of(doc);
    l["root"]["d"].push_back(json::array({"bad", json{{"s", "ff"}}}));
    attempt("not_a_str", with_layout(doc, l), "meta/@torch_layout");
  }
  {  // Not a layout at all.
    json d = doc;
    d["meta"]["$attrs"]["torch_layout"] = std::string(5000, '[');
    attempt("nested", d, "nested deeper");
    d["meta"]["$attrs"]["torch_layout"] = "{\"format\":\"ckpt-torch-layout\",\"version\":1,\"root\":{\"zz\":1}}";
    attempt("unknown_node", d, "an unknown layout node");
  }
  {  // Two tensors tied by the layout whose bytes differ.
    convert(tmp.path / "tied_state_dict.pt", tmp.path / "tied.json", to("json"));
    json t = read_json(tmp.path / "tied.json");
    ASSERT_NE(t["meta"]["$attrs"]["torch_layout"].get<std::string>().find("\"same\":\"embed.weight\""), std::string::npos);
    std::string& data = t["head.weight"]["$data"].get_ref<std::string&>();
    data[0] = data[0] == 'A' ? 'B' : 'A';
    t["meta"].erase("integrity");  // else convert finds the change first, by its hash
    write_json(tmp.path / "tied_changed.json", t);
    expect_refused(tmp.path / "tied_changed.json", tmp.path / "tied_changed.pt", "ties 'head.weight' to 'embed.weight', but their bytes differ");
  }
}

// A .pt ckpt wrote by a layout: its data.pkl is read as any torch file and must be its
// document, laid out as its meta/@torch_layout says. The zip is rewritten by Python's zipfile
// with one member changed; unchanged, the rewrite reads.
TEST(PytorchUserLayout, AnOwnFileWhosePickleOrLayoutWasChangedIsRefused) {
  TempDir tmp;
  write_cases(tmp.path);
  const fs::path own = tmp.path / "own.pt";
  convert(tmp.path / "multistep.pt", own, to("pytorch"));
  auto rewrite = [&](const char* out, const std::string& python_edit) {
    const std::string script =
        "import sys, zipfile\n"
        "src, dst = sys.argv[1], sys.argv[2]\n"
        "zin = zipfile.ZipFile(src)\n"
        "zout = zipfile.ZipFile(dst, 'w', zipfile.ZIP_STORED)\n"
        "for i in zin.infolist():\n"
        "    data = zin.read(i.filename)\n"
        "    name = i.filename\n" +
        python_edit +
        "    zout.writestr(i, data)\n"
        "zout.close()\n";
    std::ofstream(tmp.path / "edit.py") << script;
    std::string r;
    EXPECT_EQ(run(std::string(CKPT_PYTHON) + " " + (tmp.path / "edit.py").string() + " " + own.string() + " " +
                      (tmp.path / out).string(), r),
              0)
        << r;
    return tmp.path / out;
  };
  EXPECT_NO_THROW(read_document(rewrite("same.pt", "")));
  // The layout says epoch 4 while data.pkl and the document say 3.
  auto changed = rewrite("layout.pt",
                         "    if name.endswith('ckpt/document.json'):\n"
                         "        data = data.replace(b'[\\\\\"epoch\\\\\",3]', b'[\\\\\"epoch\\\\\",4]')\n"
                         "        assert b'epoch\\\\\",4' in data, data\n");
  auto refused = [](const fs::path& p, const std::string& why) {
    try {
      read_document(p);
      ADD_FAILURE() << "read";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  refused(changed, "is not laid out as its meta/@torch_layout says");
  // data.pkl says epoch 5 (the pickle's BININT1 3 after 'epoch') while the document says 3.
  auto pickled = rewrite("pickle.pt",
                         "    if name.endswith('data.pkl'):\n"
                         "        at = data.rindex(b'epoch')\n"
                         "        assert data[at + 5:at + 7] == b'K\\x03', data[at:at + 8]\n"
                         "        data = data[:at + 6] + b'\\x05' + data[at + 7:]\n");
  refused(pickled, "data.pkl does not describe the document at trainer@epoch");

  // A NumPy array's bytes are in data.pkl (for torch) and in a storage (for ckpt): the two
  // must be equal. The int8 array -3..2 pickles as the latin-1 text of its bytes.
  const fs::path arrays = tmp.path / "arrays.pt";
  convert(tmp.path / "numpy_arrays.pt", arrays, to("pytorch"));
  fs::copy_file(arrays, own, fs::copy_options::overwrite_existing);
  EXPECT_NO_THROW(read_document(rewrite("arrays_same.pt", "")));
  auto values = rewrite("arrays_values.pt",
                        "    if name.endswith('data.pkl'):\n"
                        "        old = bytes([0xfd, 0xfe, 0xff, 0, 1, 2]).decode('latin1').encode('utf-8')\n"
                        "        assert old in data\n"
                        "        data = data.replace(old, old[:-1] + b'\\x07', 1)\n");
  refused(values, "data.pkl does not describe the document at extra/ints/i1: another tensor");
}
