// A torch.save file whose object ckpt cannot record as the user's layout (torch_lost.py: an
// object of the user's own class, a global, a big-endian NumPy array) reads with the reason in
// meta/@torch_layout_lost; written back to .pt it takes ckpt's checkpoint layout, so convert
// names that as a loss: refused without --allow-lossy, written and reported with it, directly or
// through another format. A file ckpt records or reproduces has no record and loses nothing.
// And the dtypes Debian's torch 1.13 has no storage for: written for a later torch by default
// (that torch cannot load the file, checked with it), refused naming the tensor with torch=1.13.
#include <ckpt/convert.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>

#include "pytorch_test_support.hpp"

#include <gtest/gtest.h>

#include <sstream>

using namespace ckpt;
using namespace pytorch_test;

namespace {

std::string lost_py(const std::string& args) {
  return std::string(CKPT_PYTHON) + " " + (kHere / "torch_lost.py").string() + " " + args;
}

std::string faithful(const std::string& args) {
  return std::string(CKPT_PYTHON) + " " + (kHere / "torch_faithful.py").string() + " " + args;
}

const std::string* lost_record(const Document& doc) {
  const Group* meta = doc.find_group("meta");
  const Value* v = meta ? meta->attribute("torch_layout_lost") : nullptr;
  return v ? std::get_if<std::string>(v) : nullptr;
}

bool has_layout(const Document& doc) {
  const Group* meta = doc.find_group("meta");
  return meta && meta->attribute("torch_layout");
}

class PytorchLostLayout : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string out;
    ASSERT_EQ(run(lost_py("write " + tmp.path.string()), out), 0) << out;
    ASSERT_NE(out.find("plain_checkpoint"), std::string::npos) << out;
  }
  fs::path at(const std::string& name) const { return tmp.path / name; }
  TempDir tmp;
};

// Converting `src` to `dst` (.pt) without permission is refused naming `why`, and writes nothing.
void expect_named_refusal(const fs::path& src, const fs::path& dst, const std::string& why) {
  try {
    convert(src, dst, to("pytorch"));
    ADD_FAILURE() << src << " -> " << dst << ": written without --allow-lossy";
  } catch (const UnsupportedError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("would lose"), std::string::npos) << m;
    EXPECT_NE(m.find("meta/torch_layout_lost: the object torch.save wrote is not recorded"), std::string::npos) << m;
    EXPECT_NE(m.find(why), std::string::npos) << m;
    EXPECT_NE(m.find("--allow-lossy"), std::string::npos) << m;
  }
  EXPECT_FALSE(fs::exists(dst)) << dst;
}

// With permission: written, the loss in the report and in the output's meta/conversion, no
// record left in the output, and torch.load reads ckpt's checkpoint layout with the weights.
void expect_named_write(const fs::path& src, const fs::path& orig, const fs::path& dst, const std::string& why) {
  ConvertOptions o = to("pytorch");
  o.allow_lossy = true;
  const ConvertReport r = convert(src, dst, o);
  ASSERT_EQ(r.losses.size(), 1u);
  EXPECT_EQ(r.losses[0].path, "meta/torch_layout_lost");
  EXPECT_NE(r.losses[0].what.find(why), std::string::npos) << r.losses[0].what;
  const Document back = read_document(dst);
  EXPECT_EQ(lost_record(back), nullptr) << "the record went into the output";
  const Group* conv = back.find_group_path("meta/conversion");
  ASSERT_TRUE(conv);
  const auto* lines = std::get_if<std::vector<std::string>>(conv->attribute("losses"));
  ASSERT_TRUE(lines);
  ASSERT_EQ(lines->size(), 1u);
  EXPECT_NE((*lines)[0].find(why), std::string::npos) << (*lines)[0];
  std::string out;
  EXPECT_EQ(run(lost_py("schema " + orig.string() + " " + dst.string()), out), 0) << out;
  EXPECT_NE(out.find("OK"), std::string::npos) << out;
}

}  // namespace

TEST_F(PytorchLostLayout, AnObjectCkptCannotRecordIsALossNamedWithItsPlace) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"custom_class", "data.pkl: ['cfg']: an object of class ckptlost_user.Config, which ckpt does not write back"},
      {"global_ref", "data.pkl: ['activation']: the global torch.nn.functional.relu"},
      {"big_endian", "data.pkl: ['history']: a big-endian NumPy array (dtype '>f4')"},
  };
  for (const auto& [name, why] : cases) {
    SCOPED_TRACE(name);
    const fs::path src = at(name + ".pt");
    const Document doc = read_document(src);
    const std::string* record = lost_record(doc);
    ASSERT_TRUE(record) << "no meta/@torch_layout_lost";
    EXPECT_EQ(record->rfind(why, 0), 0u) << *record;
    EXPECT_FALSE(has_layout(doc));

    // .pt -> .pt: refused, then written with permission.
    expect_named_refusal(src, at(name + ".direct.pt"), why);
    expect_named_write(src, src, at(name + ".direct.pt"), why);

    // .pt -> msgpack keeps the record (nothing is lost there); msgpack -> .pt names the loss.
    const fs::path mid = at(name + ".msgpack");
    const ConvertReport r = convert(src, mid, to("msgpack"));
    EXPECT_TRUE(r.losses.empty());
    const Document mid_doc = read_document(mid);  // kept: the record points into it
    const std::string* carried = lost_record(mid_doc);
    ASSERT_TRUE(carried);
    EXPECT_EQ(*carried, *record);
    expect_named_refusal(mid, at(name + ".via.pt"), why);
    expect_named_write(mid, src, at(name + ".via.pt"), why);

    // A writer handed the record without convert naming the loss refuses it.
    try {
      write_document(doc, at(name + ".saved.pt"), as_pytorch());
      ADD_FAILURE() << "written";
    } catch (const UnsupportedError& e) {
      EXPECT_NE(std::string(e.what()).find("meta/@torch_layout_lost"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(at(name + ".saved.pt")));
  }
}

TEST_F(PytorchLostLayout, WhatCkptRecordsOrReproducesHasNoRecordAndLosesNothing) {
  for (const std::string name : {"plain_state_dict", "module_state_dict", "plain_checkpoint"}) {
    SCOPED_TRACE(name);
    const fs::path src = at(name + ".pt");
    const Document doc = read_document(src);
    EXPECT_EQ(lost_record(doc), nullptr);
    const fs::path direct = at(name + ".direct.pt");
    const fs::path mid = at(name + ".msgpack"), back = at(name + ".via.pt");
    EXPECT_TRUE(convert(src, direct, to("pytorch")).losses.empty());
    EXPECT_TRUE(convert(src, mid, to("msgpack")).losses.empty());
    EXPECT_TRUE(convert(mid, back, to("pytorch")).losses.empty());
    for (const fs::path& out : {direct, back}) {
      std::string r;
      EXPECT_EQ(run(faithful("compare " + src.string() + " " + out.string()), r), 0) << out << ": " << r;
    }
  }
  // ckpt's own documents and another format's file have neither record, and lose nothing.
  Document own;
  own.group("meta").set("note", "ckpt's own");
  own.group("model").group("state").add_tensor("w", Tensor::from<float>(DType::f32, {2}, {1.5f, -2.0f}));
  write_document(own, at("own.msgpack"));
  write_document(own, at("own.safetensors"));
  for (const char* file : {"own.msgpack", "own.safetensors"}) {
    SCOPED_TRACE(file);
    const fs::path out = at(std::string(file) + ".pt");
    EXPECT_TRUE(convert(at(file), out, to("pytorch")).losses.empty());
    const Document back = read_document(out);
    EXPECT_EQ(lost_record(back), nullptr);
    EXPECT_EQ(back.find_group_path("meta/conversion"), nullptr);
  }
}

// Debian's torch 1.13 has no uint16-64 or float8 storages: a file holding one does not load at
// all. By default ckpt writes them (the format declares them held exactly, and ckpt reads them
// back bit for bit) for torch 2.3 and later; the write option torch=1.13 refuses each, naming
// the tensor and its dtype. The installed torch shows both sides.
TEST_F(PytorchLostLayout, DtypesTorch113HasNoStorageForAreWrittenForLaterTorchOrRefusedNamingTheTensor) {
  const fs::path dir = at("unsigned");
  fs::create_directories(dir);
  const std::vector<std::pair<DType, std::string>> dtypes = {{DType::u16, "torch.UInt16Storage"},
                                                             {DType::u32, "torch.UInt32Storage"},
                                                             {DType::u64, "torch.UInt64Storage"},
                                                             {DType::f8_e4m3fn, "torch.Float8_e4m3fnStorage"},
                                                             {DType::f8_e5m2, "torch.Float8_e5m2Storage"}};
  for (const auto& [dtype, storage] : dtypes) {
    const std::string n(name(dtype));
    SCOPED_TRACE(n);
    Document doc;
    doc.add_tensor("ok", Tensor::from<int32_t>(DType::i32, {2}, {1, 2}));
    Tensor t = Tensor::empty(dtype, {3});
    for (size_t i = 0; i < t.nbytes(); ++i) t.mutable_bytes()[i] = static_cast<std::byte>(i + 1);
    doc.add_tensor("x_" + n, t);
    const fs::path refused = dir / ("refused_" + n + ".pt");
    try {
      write_document(doc, refused, as_pytorch({{"torch", "1.13"}}));
      ADD_FAILURE() << "written";
    } catch (const UnsupportedError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("tensor 'x_" + n + "': dtype " + n + " is " + storage), std::string::npos) << m;
      EXPECT_NE(m.find("torch 1.13 (Debian's) cannot load a file holding one"), std::string::npos) << m;
    }
    EXPECT_FALSE(fs::exists(refused));
    // convert passes the option on, and refuses the same way, --allow-lossy or not (it is no cast).
    write_document(doc, dir / (n + ".msgpack"));
    ConvertOptions lossy = to("pytorch");
    lossy.allow_lossy = true;
    lossy.write_options = {{"torch", "1.13"}};
    EXPECT_THROW(convert(dir / (n + ".msgpack"), dir / ("converted_" + n + ".pt"), lossy), UnsupportedError);
    EXPECT_FALSE(fs::exists(dir / ("converted_" + n + ".pt")));
    // By default: written, and read back by ckpt exactly.
    const fs::path later = dir / ("later_" + n + ".pt");
    write_document(doc, later, as_pytorch());
    const Document back = read_document(later);
    const Tensor* x = back.find_tensor("x_" + n);
    ASSERT_TRUE(x);
    EXPECT_EQ(x->dtype(), dtype);
    EXPECT_TRUE(x->bit_equal(t));
  }
  // The same values cast as the message says load in the installed torch, with torch=1.13.
  Document cast;
  cast.add_tensor("u16_as_i32", Tensor::from<int32_t>(DType::i32, {2}, {65535, 0}));
  cast.add_tensor("f8_as_f16", Tensor::from<uint16_t>(DType::f16, {1}, {0x3c00}));
  write_document(cast, dir / "cast.pt", as_pytorch({{"torch", "1.13"}}));
  EXPECT_THROW(write_document(cast, dir / "bad_option.pt", as_pytorch({{"torch", "2.0"}})), Error);

  std::string out;
  ASSERT_EQ(run(lost_py("unsigned " + dir.string()), out), 0) << out;
  std::istringstream lines(out);
  int loads = 0, fails = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("later_", 0) == 0) {
      // What the installed torch makes of the default: it cannot load them.
      EXPECT_NE(line.find(" fails: "), std::string::npos) << line;
      ++fails;
    } else if (line.rfind("cast ", 0) == 0) {
      EXPECT_NE(line.find("cast loads: u16_as_i32=torch.int32, f8_as_f16=torch.float16"), std::string::npos) << line;
      ++loads;
    }
  }
  EXPECT_EQ(fails, 5) << out;
  EXPECT_EQ(loads, 1) << out;
}
