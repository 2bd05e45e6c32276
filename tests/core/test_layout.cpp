// Layout adapters (ckpt/layout.hpp) through the real json and msgpack plugins: a layout
// registered by the program maps a listing onto the schema on every read (load, convert) and
// gives a writer its native members; tensors it moves are read from where the file holds them.
#include "scratch.hpp"

#include <ckpt/convert.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>
#include <ckpt/layout.hpp>

#include <gtest/gtest.h>

#include <cstring>

using namespace ckpt;
namespace fs = std::filesystem;

namespace {

using ckpt_test::TempDir;

// A Flax-like tree: the file's root group "params" holds the weights; the schema wants them in
// model/state. Written to msgpack, a document gets a root group "layout" saying who wrote it.
class ParamsTree final : public LayoutAdapter {
 public:
  std::string_view name() const override { return "test-params-tree"; }
  bool recognises(const Document& native, const LayoutSource& source) const override {
    return source.format == "msgpack" && native.find_group("params");
  }
  SchemaDocument to_schema(Document native, const LayoutSource& source) const override {
    SchemaDocument out;
    Group params = std::move(*native.find_group("params"));
    native.erase("params");
    native.erase("layout");
    Group& state = native.group("model").group("state");
    for (Node& c : params.children()) {
      Tensor t = c.tensor();
      // Kept as [in, out] in the file, [out, in] in the schema: read transposed, lazily.
      if (c.name == "kernel") {
        t = Tensor::empty(t.dtype(), {t.shape()[1], t.shape()[0]});
        out.transposed.push_back({"model/state/" + c.name, {1, 0}});
      }
      state.add_tensor(c.name, Tensor(t.dtype(), t.shape(), nullptr));
      out.moved.emplace_back("model/state/" + c.name, "params/" + c.name);
    }
    // A value the layout needs from the file's bytes, read where the listing has it.
    const Tensor& first = params.children().front().tensor();
    std::vector<std::byte> bytes(first.nbytes());
    source.read("params/" + params.children().front().name, bytes);
    float v = 0;
    std::memcpy(&v, bytes.data(), sizeof v);
    native.group("model").set("first_value", static_cast<double>(v));
    out.doc = std::move(native);
    return out;
  }
  std::optional<Group> to_native(const Document&, std::string_view format) const override {
    if (format != "msgpack") return std::nullopt;
    Group g;
    g.add_group("layout").set("written_by", std::string(name()));
    return g;
  }
};

// A broken layout: it lists one tensor of the file twice.
class Twice final : public LayoutAdapter {
 public:
  std::string_view name() const override { return "test-twice"; }
  bool recognises(const Document& native, const LayoutSource& source) const override {
    return source.format == "json" && native.find_tensor("a");
  }
  SchemaDocument to_schema(Document native, const LayoutSource&) const override {
    const Tensor t = *native.find_tensor("a");
    native.add_tensor("b", t);
    return {std::move(native), {{"b", "a"}}, {}};
  }
  std::optional<Group> to_native(const Document&, std::string_view) const override { return std::nullopt; }
};

void register_once() {
  static const bool done = [] {
    register_layout(std::make_shared<ParamsTree>());
    register_layout(std::make_shared<Twice>());
    return true;
  }();
  (void)done;
}

Document params_document() {
  Document d;
  d.add_group("params").add_tensor("w", Tensor::from<float>(DType::f32, {2, 2}, {1.5f, 2, 3, 4}));
  d.group("params").add_tensor("b", Tensor::from<float>(DType::f32, {2}, {5, 6}));
  // [in = 3, out = 2]
  d.group("params").add_tensor("kernel", Tensor::from<float>(DType::f32, {3, 2}, {0, 1, 2, 3, 4, 5}));
  d.group("extra").set("note", "kept");
  return d;
}

}  // namespace

TEST(Layouts, ANameIsRegisteredOnce) {
  register_once();
  EXPECT_THROW(register_layout(std::make_shared<ParamsTree>()), UsageError);
  EXPECT_THROW(register_layout(nullptr), UsageError);
  std::vector<std::string> names;
  for (const auto& l : layout_adapters()) names.emplace_back(l->name());
  // ckpt's own come first, then the program's in the order it registered them.
  ASSERT_GE(names.size(), 3u);
  EXPECT_EQ(names.front(), "onnx-sequential");
  EXPECT_EQ(names[names.size() - 2], "test-params-tree");
  EXPECT_EQ(names.back(), "test-twice");
}

TEST(Layouts, ReadsMapTheFilesTreeOntoTheSchemaAndWritesAddTheNativeMembers) {
  register_once();
  TempDir tmp;
  const fs::path p = tmp.path / "tree.msgpack", json = tmp.path / "tree.json";
  write_document(params_document(), p, SaveOptions{});
  // The file holds what the writer got: the document and the layout's member.
  {
    LoadOptions plain;
    plain.format = "msgpack";
    auto reader = open(p, plain);
    const Document& doc = reader->tree();
    EXPECT_EQ(doc.find_group("params"), nullptr) << "the listing is mapped before anyone sees it";
    const Tensor* w = doc.find_tensor_path("model/state/w");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->shape(), (Shape{2, 2}));
    const Tensor back = reader->read("model/state/b");
    EXPECT_EQ(back.data<float>()[1], 6.0f);
  }
  const Document doc = read_document(p);
  ASSERT_NE(doc.find_group("model"), nullptr);
  EXPECT_EQ(*doc.find_group("model")->attribute("first_value"), Value(1.5));
  EXPECT_EQ(doc.find_group("layout"), nullptr);
  EXPECT_EQ(doc.find_tensor_path("model/state/w")->data<float>()[3], 4.0f);
  EXPECT_EQ(*doc.find_group_path("extra")->attribute("note"), Value(std::string("kept")));

  // The kernel reads transposed, [out, in], however it is read: whole, loaded (never mapped),
  // sliced, streamed by convert.
  const std::vector<float> transposed{0, 2, 4, 1, 3, 5};
  {
    auto reader = open(p);
    const Tensor k = reader->read("model/state/kernel");
    EXPECT_EQ(k.shape(), (Shape{2, 3}));
    EXPECT_EQ(std::vector<float>(k.data<float>().begin(), k.data<float>().end()), transposed);
    EXPECT_FALSE(reader->map("model/state/kernel"));
    const std::vector<int64_t> start{1, 1}, count{1, 2};
    const Tensor box = reader->read_slice("model/state/kernel", start, count);
    EXPECT_EQ(std::vector<float>(box.data<float>().begin(), box.data<float>().end()), (std::vector<float>{3, 5}));
  }
  const Tensor& k = *doc.find_tensor_path("model/state/kernel");
  EXPECT_EQ(std::vector<float>(k.data<float>().begin(), k.data<float>().end()), transposed);

  // convert streams the moved tensors from where the file holds them; json is not the layout's.
  ConvertReport r = convert(p, json, {});
  EXPECT_EQ(r.tensors, 3u);
  const Document converted = read_document(json);
  EXPECT_EQ(converted.find_tensor_path("model/state/w")->data<float>()[0], 1.5f);
  EXPECT_EQ(converted.find_tensor_path("model/state/b")->data<float>()[0], 5.0f);
  EXPECT_EQ(converted.find_group("layout"), nullptr) << "json is not the layout's format";
  const Tensor& ck = *converted.find_tensor_path("model/state/kernel");
  EXPECT_EQ(std::vector<float>(ck.data<float>().begin(), ck.data<float>().end()), transposed);
}

TEST(Layouts, ALayoutThatListsATensorTwiceIsRefused) {
  register_once();
  TempDir tmp;
  const fs::path p = tmp.path / "a.json";
  Document d;
  d.add_tensor("a", Tensor::from<float>(DType::f32, {1}, {1}));
  write_document(d, p, SaveOptions{});
  try {
    read_document(p);
    ADD_FAILURE() << "read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("test-twice"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("does not hold once"), std::string::npos) << e.what();
  }
}
