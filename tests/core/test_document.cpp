#include <ckpt/checkpoint.hpp>
#include <ckpt/document.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>

#include <gtest/gtest.h>

#include <cmath>

using namespace ckpt;

TEST(Document, AttributesKeepTypesAndOrder) {
  Group g;
  g.set("flag", true).set("n", 3).set("lr", 0.5).set("name", "mlp");
  g.set("sizes", std::vector<int64_t>{784, 10});
  EXPECT_EQ(value_type(*g.attribute("flag")), ValueType::boolean);
  EXPECT_EQ(value_type(*g.attribute("n")), ValueType::int64);
  EXPECT_EQ(value_type(*g.attribute("lr")), ValueType::float64);
  EXPECT_EQ(value_type(*g.attribute("name")), ValueType::string);
  g.set("n", 4);  // replaces in place
  ASSERT_EQ(g.attributes().size(), 5u);
  EXPECT_EQ(g.attributes()[1].name, "n");
  EXPECT_EQ(std::get<int64_t>(g.attributes()[1].value), 4);
}

TEST(Document, NamesAreCheckedAndUnique) {
  Group g;
  g.add_tensor("w", Tensor::zeros(DType::f32, {1}));
  EXPECT_THROW(g.add_tensor("w", Tensor::zeros(DType::f32, {1})), UsageError);
  EXPECT_THROW(g.add_group("a/b"), UsageError);
  EXPECT_THROW(g.set("", 1), UsageError);
  EXPECT_THROW(g.group("w"), UsageError);  // a tensor is not a group
}

TEST(Document, CopiesAreDeepForGroupsAndShallowForTensorBytes) {
  Group g;
  g.group("a").group("b").add_tensor("t", Tensor::zeros(DType::i32, {2}));
  Group copy = g;
  copy.group("a").set("x", 1);
  EXPECT_EQ(g.find_group("a")->attribute("x"), nullptr);
  EXPECT_NE(g.find_tensor_path("a/b/t"), nullptr);
  EXPECT_EQ(copy.find_tensor_path("a/b/t")->bytes().data(), g.find_tensor_path("a/b/t")->bytes().data());
  EXPECT_EQ(g.tensor_count(), 1u);
  EXPECT_EQ(g.tensor_bytes(), 8u);
}

TEST(Document, ValueEqualityIsBitwise) {
  EXPECT_TRUE(value_equal(Value(std::nan("")), Value(std::nan(""))));
  EXPECT_FALSE(value_equal(Value(0.0), Value(-0.0)));
  EXPECT_FALSE(value_equal(Value(int64_t{1}), Value(1.0)));
}

TEST(Checkpoint, SchemaRoundTripAndVersionCheck) {
  Checkpoint c;
  c.model_state.add_tensor("fc.weight", Tensor::zeros(DType::f32, {2, 3}));
  c.optimizer.set("type", "adam");
  c.trainer.set("epoch", 2);
  c.user.set("note", "hello");
  Document doc = c.to_document();
  EXPECT_TRUE(is_checkpoint(doc));
  Checkpoint back = Checkpoint::from_document(doc);
  EXPECT_NE(back.model_state.find_tensor("fc.weight"), nullptr);
  EXPECT_EQ(std::get<std::string>(*back.optimizer.attribute("type")), "adam");
  EXPECT_EQ(std::get<std::string>(*back.user.attribute("note")), "hello");
  EXPECT_FALSE(back.created.empty());

  doc.group("meta").set("schema_version", 99);
  try {
    Checkpoint::from_document(doc, "x.json");
    FAIL() << "a newer schema must be refused";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("x.json"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("meta/schema_version"), std::string::npos);
  }
}

TEST(Checkpoint, ForeignDocumentsKeepTheirTensorsAsModelState) {
  Document doc;
  doc.add_tensor("weight", Tensor::zeros(DType::f32, {2, 1}));
  doc.add_tensor("bias", Tensor::zeros(DType::f32, {1}));
  doc.group("other").set("k", 1);
  Checkpoint c = Checkpoint::from_document(doc);
  EXPECT_EQ(c.model_state.tensor_count(), 2u);
  EXPECT_NE(c.extra.find_group("other"), nullptr);
}

TEST(Integrity, DetectsChangedTensorsAndAttributes) {
  Checkpoint c;
  Tensor w = Tensor::from<float>(DType::f32, {3}, {1, 2, 3});
  c.model_state.add_tensor("w", w);
  c.trainer.set("epoch", 1);
  Document doc = c.to_document();
  add_integrity(doc);
  EXPECT_TRUE(verify_document(doc).ok());

  Document changed = doc;
  changed.find_group("model")->find_group("state")->set_tensor("w", Tensor::from<float>(DType::f32, {3}, {1, 2, 4}));
  auto r = verify_document(changed);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.problems[0].find("model/state/w"), std::string::npos);

  Document attr = doc;
  attr.find_group("trainer")->set("epoch", 2);
  EXPECT_FALSE(verify_document(attr).ok());

  Document renamed = doc;
  renamed.find_group("model")->find_group("state")->erase("w");
  renamed.find_group("model")->find_group("state")->add_tensor("w2", w);
  EXPECT_GE(verify_document(renamed).problems.size(), 2u);
}
