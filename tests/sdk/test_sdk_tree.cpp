// ckpt/sdk_tree.hpp: the document skeleton plugins build once and replay to list(), owned or
// as views, and the recorder that builds one from a writer's calls.
#include <ckpt/sdk_tree.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

using ckpt::sdk::Tree;
using ckpt::sdk::TreeRecorder;
using ckpt::sdk::Value;
using ckpt::sdk::ValueView;
using ckpt::sdk::ViewTree;

namespace {

// A host visitor that writes each event as a line.
struct Events {
  std::vector<std::string> lines;
  ckpt_visitor c{};

  Events() {
    c.ctx = this;
    c.begin_group = [](void* ctx, const char* name) -> ckpt_status* {
      static_cast<Events*>(ctx)->lines.push_back(std::string("group ") + name);
      return nullptr;
    };
    c.end_group = [](void* ctx) -> ckpt_status* {
      static_cast<Events*>(ctx)->lines.push_back("end");
      return nullptr;
    };
    c.attribute = [](void* ctx, const char* name, const ckpt_value* v) -> ckpt_status* {
      std::string line = std::string("attr ") + name + " ";
      if (v->type == CKPT_VALUE_INT64) line += std::to_string(v->u.i);
      else if (v->type == CKPT_VALUE_STRING) line += std::string(v->u.s.data, v->u.s.size);
      else if (v->type == CKPT_VALUE_STRING_ARRAY)
        for (uint64_t k = 0; k < v->count; ++k) line += std::string(v->u.strings[k].data, v->u.strings[k].size) + ",";
      static_cast<Events*>(ctx)->lines.push_back(line);
      return nullptr;
    };
    c.tensor = [](void* ctx, const ckpt_tensor_desc* d) -> ckpt_status* {
      std::string line = std::string("tensor ") + d->name + " " + std::to_string(d->dtype) + " [";
      for (uint32_t k = 0; k < d->rank; ++k) line += std::to_string(d->shape[k]) + (k + 1 < d->rank ? "," : "");
      line += "] " + std::to_string(d->nbytes) + " #" + std::to_string(d->id);
      static_cast<Events*>(ctx)->lines.push_back(line);
      return nullptr;
    };
  }
  std::vector<std::string> of(const auto& tree) {
    lines.clear();
    tree.list(ckpt::sdk::Visitor(&c));
    return lines;
  }
};

Tree::Tensor tensor(std::string name, std::vector<int64_t> shape, uint64_t id) {
  Tree::Tensor t;
  t.name = std::move(name);
  t.dtype = CKPT_DTYPE_F32;
  t.shape = std::move(shape);
  t.nbytes = 4;
  for (int64_t d : t.shape) t.nbytes *= static_cast<uint64_t>(d);
  t.id = id;
  return t;
}

const std::vector<std::string> kExpected = {
    "group ",       "attr format demo", "group model", "attr layers 2",
    "tensor w 1 [2,3] 24 #7", "group inner",      "end",         "end",
    "tensor b 1 [] 4 #9",     "end"};

TEST(SdkTree, BuildsFindsAndLists) {
  Tree tree;
  tree.add_attribute(0, "format", Value::string("demo"));
  const size_t model = tree.add_group(0, "model");
  tree.add_attribute(model, "layers", Value::integer(2));
  tree.add_tensor(model, tensor("w", {2, 3}, 7));
  const size_t inner = tree.add_group(model, "inner");
  tree.add_tensor(0, tensor("b", {}, 9));

  EXPECT_EQ(tree.find_group(0, "model"), model);
  EXPECT_EQ(tree.find_path("model/inner"), inner);
  EXPECT_EQ(tree.find_path(""), 0u);
  EXPECT_EQ(tree.find_path("model/w"), Tree::npos);  // a tensor, not a group
  EXPECT_EQ(tree.find_group(0, "nothing"), Tree::npos);
  ASSERT_NE(tree.find_tensor(model, "w"), nullptr);
  EXPECT_EQ(tree.find_tensor(model, "w")->id, 7u);
  EXPECT_EQ(tree.find_tensor(model, "inner"), nullptr);
  ASSERT_NE(tree.find_attribute(model, "layers"), nullptr);
  EXPECT_EQ(tree.find_attribute(model, "layers")->i, 2);

  tree.set_attribute(model, "layers", Value::integer(3));
  EXPECT_EQ(tree.groups[model].attributes.size(), 1u);
  EXPECT_EQ(tree.find_attribute(model, "layers")->i, 3);
  tree.set_attribute(model, "layers", Value::integer(2));

  Events events;
  EXPECT_EQ(events.of(tree), kExpected);
  const Tree copy = tree;  // flat vectors: a copy is a copy
  EXPECT_EQ(events.of(copy), kExpected);
}

TEST(SdkTree, IndexedNamesAreUnique) {
  Tree tree(true);
  const size_t g = tree.add_group(0, "g");
  tree.add_tensor(g, tensor("t", {1}, 0));
  tree.add_attribute(g, "a", Value::integer(1));
  EXPECT_THROW(tree.add_group(g, "t"), ckpt::sdk::Error);
  EXPECT_THROW(tree.add_attribute(g, "a", Value::integer(2)), ckpt::sdk::Error);
  for (int k = 0; k < 1000; ++k) tree.add_tensor(0, tensor("x" + std::to_string(k), {1}, k));
  EXPECT_EQ(tree.find_tensor(0, "x999")->id, 999u);
  EXPECT_EQ(tree.find_group(0, "g"), g);
  tree.set_attribute(g, "a", Value::integer(5));
  EXPECT_EQ(tree.find_attribute(g, "a")->i, 5);
}

TEST(SdkTree, ViewsListAsTheOwnedTree) {
  // Names as a mapped file would hold them: not NUL-terminated.
  const std::string file = "formatdemomodellayerswinnerb";
  auto at = [&](size_t pos, size_t n) { return std::string_view(file).substr(pos, n); };
  ViewTree tree;
  ValueView demo;
  demo.type = CKPT_VALUE_STRING;
  demo.s = at(6, 4);
  tree.add_attribute(0, at(0, 6), demo);
  const size_t model = tree.add_group(0, at(10, 5));
  ValueView two;
  two.type = CKPT_VALUE_INT64;
  two.i = 2;
  tree.add_attribute(model, at(15, 6), two);
  ViewTree::Tensor w;
  w.name = at(21, 1);
  w.dtype = CKPT_DTYPE_F32;
  w.shape = {2, 3};
  w.nbytes = 24;
  w.id = 7;
  tree.add_tensor(model, w);
  const size_t inner = tree.add_group(model, tree.keep(std::string("inner")));
  ViewTree::Tensor b;
  b.name = tree.keep("b");
  b.dtype = CKPT_DTYPE_F32;
  b.nbytes = 4;
  b.id = 9;
  tree.add_tensor(0, b);

  ViewTree moved = std::move(tree);  // kept strings stay where the views point
  Events events;
  EXPECT_EQ(events.of(moved), kExpected);
  EXPECT_EQ(moved.find_path("model/inner"), inner);
}

// Deep nesting lists without recursion and destroys without it.
TEST(SdkTree, DeepTreesAreFlat) {
  Tree tree;
  size_t g = 0;
  for (int k = 0; k < 200000; ++k) g = tree.add_group(g, "g");
  Events events;
  EXPECT_EQ(events.of(tree).size(), 2u * 200001);
}

TEST(SdkTree, RecorderBuildsTheTreeTheHostSends) {
  TreeRecorder r;
  r.begin_group("", 1, 2);
  r.attribute("format", ckpt::sdk::make_string("demo"));
  r.begin_group("model", 1, 2);
  EXPECT_EQ(r.path(), "model");
  r.attribute("layers", ckpt::sdk::make_int(2));
  const int64_t shape[] = {2, 3};
  ckpt::sdk::TensorInfo info;
  info.name = "w";
  info.dtype = CKPT_DTYPE_F32;
  info.shape = shape;
  info.nbytes = 24;
  EXPECT_EQ(r.tensor(info, 7), 0u);
  r.begin_group("inner", 0, 0);
  r.end_group();
  r.end_group();
  ckpt::sdk::TensorInfo b;
  b.name = "b";
  b.dtype = CKPT_DTYPE_F32;
  b.nbytes = 4;
  r.tensor(b, 9);
  EXPECT_FALSE(r.done());
  r.end_group();
  EXPECT_TRUE(r.done());
  Events events;
  EXPECT_EQ(events.of(r.tree()), kExpected);
}

TEST(SdkTree, RecorderRefusesWhatTheWriterContractForbids) {
  auto expect_fails = [](auto&& calls, const char* needle) {
    TreeRecorder r;
    try {
      calls(r);
      ADD_FAILURE() << "no error, expected one with: " << needle;
    } catch (const ckpt::sdk::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_fails([](TreeRecorder& r) { r.begin_group("x", 0, 0); }, "root group must be named");
  expect_fails([](TreeRecorder& r) { r.attribute("a", ckpt::sdk::make_int(1)); }, "outside any group");
  expect_fails(
      [](TreeRecorder& r) {
        r.begin_group("", 0, 1);
        r.begin_group("a/b", 0, 0);
      },
      "hold no '/'");
  expect_fails(
      [](TreeRecorder& r) {
        r.begin_group("", 0, 2);
        r.begin_group("a", 0, 0);
        r.end_group();
        r.begin_group("a", 0, 0);
      },
      "duplicate child 'a'");
  expect_fails(
      [](TreeRecorder& r) {
        r.begin_group("", 2, 0);
        r.attribute("a", ckpt::sdk::make_int(1));
        r.attribute("a", ckpt::sdk::make_int(1));
      },
      "duplicate attribute 'a'");
  expect_fails(
      [](TreeRecorder& r) {
        r.begin_group("", 1, 1);
        r.begin_group("a", 0, 0);
      },
      "before its 1 announced attributes");
  expect_fails(
      [](TreeRecorder& r) {
        r.begin_group("", 0, 1);
        r.end_group();
      },
      "children still announced");
  expect_fails(
      [](TreeRecorder& r) {
        r.begin_group("", 0, 0);
        r.end_group();
        r.begin_group("", 0, 0);
      },
      "a second root group");
  expect_fails([](TreeRecorder& r) { r.check_done(); }, "finish before the root group was closed");
}

}  // namespace
