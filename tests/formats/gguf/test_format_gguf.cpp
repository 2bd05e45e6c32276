// The gguf plugin against GGUF as ggml's docs/gguf.md publishes it, through readers ckpt did
// not write: a Python reader and writer written from the spec (gguf_side.py, with NumPy
// dequantizers of every block type), and Hugging Face's GGUF parser (@huggingface/gguf, from
// npm, in node/). Files Python writes read with every value type, the asymmetric shape in
// PyTorch's order and quantized blocks as they are; GGUF -> GGUF is byte for byte; ckpt's
// dequantization equals the reference bit for bit; files ckpt writes read in both; a Llama-style
// .pt goes to GGUF (llama.cpp's names) and back, and through q8_0 within its bound; hostile
// files (huge counts, dimensions, offsets) are refused with typed errors naming the place.
#include <ckpt/checkpoint.hpp>
#include <ckpt/convert.hpp>
#include <ckpt/dtype.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>

#include <gtest/gtest.h>

#include "scratch.hpp"
#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <random>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

using namespace ckpt;
namespace fs = std::filesystem;

namespace {

const fs::path kHere = CKPT_GGUF_TEST_DIR;

using ckpt_test::TempDir;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, std::string_view bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

using ckpt_test::run;

std::string side(const std::string& args) {
  std::string out;
  const int rc = run(std::string(CKPT_PYTHON) + " " + (kHere / "gguf_side.py").string() + " " + args, out);
  EXPECT_EQ(rc, 0) << "gguf_side.py " << args << ":\n" << out;
  return out;
}

const Value& attr(const Document& d, const std::string& name) {
  const Value* v = d.attribute(name);
  if (!v) throw std::runtime_error("no attribute " + name);
  return *v;
}

ConvertReport convert_file(const fs::path& a, const fs::path& b, Options w = {}, bool lossy = false) {
  ConvertOptions o;
  o.write_options = std::move(w);
  o.allow_lossy = lossy;
  o.fsync = false;
  return convert(a, b, o);
}

// `b`, which ckpt wrote from `a`, a file of key-values and tensors only: the same bytes (a
// document without the host's records gets no record of hashes: docs/formats/gguf.md, "Hashes").
void expect_same_plus_record(const fs::path& a, const fs::path& b) { EXPECT_TRUE(slurp(a) == slurp(b)); }

// ---- files from the independent writer ----------------------------------------------------------

TEST(Gguf, FileFromTheSpecReadsWithEveryValueType) {
  TempDir tmp;
  const fs::path f = tmp.path / "a.gguf";
  side("make " + f.string());
  Document d = read_document(f);
  EXPECT_EQ(std::get<std::string>(attr(d, "general.architecture")), "llama");
  EXPECT_EQ(std::get<int64_t>(attr(d, "general.alignment")), 32);
  EXPECT_EQ(std::get<int64_t>(attr(d, "test.u8")), 255);
  EXPECT_EQ(std::get<int64_t>(attr(d, "test.i8")), -128);
  EXPECT_EQ(std::get<int64_t>(attr(d, "test.u16")), 65535);
  EXPECT_EQ(std::get<int64_t>(attr(d, "test.i16")), -32768);
  EXPECT_EQ(std::get<int64_t>(attr(d, "test.u32")), 4294967295);
  EXPECT_EQ(std::get<int64_t>(attr(d, "test.i32")), -2147483648LL);
  EXPECT_EQ(std::get<double>(attr(d, "test.f32")), static_cast<double>(0.1f));
  EXPECT_EQ(std::get<bool>(attr(d, "test.bool")), true);
  EXPECT_EQ(std::get<std::string>(attr(d, "test.string")), std::string("nul\0inside", 10));
  EXPECT_EQ(std::get<std::string>(attr(d, "test.u64")), "18446744073709551615");  // above INT64_MAX: its text
  EXPECT_EQ(std::get<int64_t>(attr(d, "test.u64_small")), 7);
  EXPECT_EQ(std::get<int64_t>(attr(d, "test.i64")), INT64_MIN);
  EXPECT_EQ(std::get<double>(attr(d, "test.f64")), 1e300);
  EXPECT_EQ(std::get<std::vector<int64_t>>(attr(d, "test.array_u8")), (std::vector<int64_t>{0, 1, 255}));
  EXPECT_EQ(std::get<std::vector<double>>(attr(d, "test.array_f32")), (std::vector<double>{0.5, -2.0}));
  EXPECT_EQ(std::get<std::vector<bool>>(attr(d, "test.array_bool")), (std::vector<bool>{true, false}));
  EXPECT_EQ(std::get<std::vector<std::string>>(attr(d, "test.array_u64")),
            (std::vector<std::string>{"1", "18446744073709551615"}));
  EXPECT_TRUE(std::get<std::vector<int64_t>>(attr(d, "test.array_empty_i32")).empty());
  EXPECT_EQ(std::get<std::string>(attr(d, "test.array_of_arrays")), "[[1,2],[3]]");
  EXPECT_EQ(std::get<std::string>(attr(d, "test.array_of_string_arrays")), R"([["a","\"q\""],[]])");
  EXPECT_EQ(std::get<std::vector<std::string>>(attr(d, "tokenizer.ggml.tokens")),
            (std::vector<std::string>{"<s>", "</s>", "\xe2\x96\x81the", ""}));
  // The types the writer would not choose by itself, recorded.
  const auto types = std::get<std::vector<std::string>>(attr(d, "gguf:types"));
  auto type_of = [&](const std::string& k) {
    for (size_t i = 0; i + 1 < types.size(); i += 2)
      if (types[i] == k) return types[i + 1];
    return std::string("(default)");
  };
  EXPECT_EQ(type_of("test.u8"), "u8");
  EXPECT_EQ(type_of("test.f32"), "f32");
  EXPECT_EQ(type_of("test.u64"), "u64");
  EXPECT_EQ(type_of("test.array_of_arrays"), "array[array[i32]]");
  EXPECT_EQ(type_of("test.array_of_string_arrays"), "array[array[string]]");
  EXPECT_EQ(type_of("tokenizer.ggml.scores"), "array[f32]");
  EXPECT_EQ(type_of("general.alignment"), "(default)");  // u32, the spec's type
  EXPECT_EQ(type_of("test.i64"), "(default)");
  EXPECT_EQ(d.attribute("gguf:version"), nullptr);  // version 3
}

TEST(Gguf, DimensionsInPyTorchOrder) {
  TempDir tmp;
  const fs::path f = tmp.path / "a.gguf";
  side("make " + f.string());
  auto r = open(f);
  // GGUF stores (5, 3, 2), innermost first: PyTorch's (2, 3, 5); element [i][j][k] = 100i + 10j + k.
  Tensor t = r->read("asym");
  ASSERT_EQ(t.shape(), (Shape{2, 3, 5}));
  auto v = t.data<float>();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 5; ++k) EXPECT_EQ(v[static_cast<size_t>(i * 15 + j * 5 + k)], 100 * i + 10 * j + k);
  EXPECT_EQ(r->read("q.q4_k").shape(), (Shape{3, 512}));  // rows along GGUF's ne[0]
  EXPECT_EQ(r->read("scalar").shape(), Shape{});
  auto m = r->map("asym");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->storage_kind(), StorageKind::mapped);
  EXPECT_TRUE(m->bit_equal(t));
  // A box of a slice, rows of blocks.
  Tensor rows = r->read_slice("q.q8_0", std::vector<int64_t>{1, 0}, std::vector<int64_t>{2, 64});
  EXPECT_EQ(std::memcmp(rows.bytes().data(), r->read("q.q8_0").bytes().data() + 68, 136), 0);
}

TEST(Gguf, GgufToGgufIsByteForByte) {
  TempDir tmp;
  for (const char* version : {"3", "2"}) {
    SCOPED_TRACE(version);
    const fs::path a = tmp.path / "a.gguf", b = tmp.path / "b.gguf", c = tmp.path / "c.gguf";
    side("make " + a.string() + " " + version);
    ConvertReport rep = convert_file(a, b);
    EXPECT_TRUE(rep.losses.empty());
    // The quantized blocks, key types and layout come back as they were, with ckpt's record of
    // hashes added; a file ckpt wrote converts byte for byte.
    expect_same_plus_record(a, b);
    convert_file(b, c);
    EXPECT_EQ(slurp(b), slurp(c)) << "GGUF -> GGUF must be byte for byte";
    if (std::string(version) == "2") {
      EXPECT_EQ(std::get<int64_t>(attr(read_document(a), "gguf:version")), 2);
    }
    // Streamed (nothing staged): the data written before the header is known, moved into place.
    convert_file(a, c, {{"staging_bytes", "0"}});
    EXPECT_EQ(slurp(b), slurp(c)) << "streamed, GGUF -> GGUF must still be laid out as ggml lays it out";
    convert_file(b, c, {{"staging_bytes", "0"}});
    EXPECT_EQ(slurp(b), slurp(c)) << "streamed, GGUF -> GGUF must still be byte for byte";
  }
}

// Past the 16 MiB the writer stages, with quantized blocks in the streamed part: still the same
// bytes.
TEST(Gguf, LargeGgufToGgufIsByteForByte) {
  TempDir tmp;
  const fs::path a = tmp.path / "a.gguf", b = tmp.path / "b.gguf", c = tmp.path / "c.gguf";
  side("make " + a.string() + " 3 40");
  ASSERT_GE(fs::file_size(a), uint64_t{40} << 20);
  convert_file(a, b);
  expect_same_plus_record(a, b);
  convert_file(b, c);
  EXPECT_TRUE(slurp(b) == slurp(c)) << "a 40 MiB GGUF file must convert to GGUF byte for byte";
  // A document that does not come from GGUF is streamed after a reserved header: a valid file
  // the independent reader reads, its data at a block boundary after ckpt.padding.
  Document d = read_document(a);
  for (const char* k : {"gguf:types", "gguf:version", "general.architecture"}) d.erase_attribute(k);
  SaveOptions so;
  so.fsync = false;
  write_document(d, c, so);
  const auto dump = nlohmann::json::parse(side("dump " + c.string()));
  EXPECT_TRUE(dump["kv"].contains("ckpt.padding"));
  EXPECT_EQ(dump["data_start"].get<uint64_t>() % 4096, 0u);
}

TEST(Gguf, DequantizationEqualsTheReference) {
  TempDir tmp;
  const fs::path a = tmp.path / "a.gguf", s = tmp.path / "a.safetensors";
  side("make " + a.string());
  ConvertReport rep = convert_file(a, s);
  EXPECT_TRUE(rep.losses.empty());
  EXPECT_EQ(rep.dequantized.size(), 10u);
  EXPECT_NE(side("dequant " + a.string() + " " + s.string()).find("dequantized 10 tensors bit for bit"), std::string::npos);
  // Into f16 on request: f16 rounds ggml's f32 values, so it is a loss, refused unless allowed,
  // and each value is the f32 one rounded.
  const fs::path h = tmp.path / "h.safetensors";
  EXPECT_THROW(convert_file(a, h, {{"dequantize", "f16"}}), UnsupportedError);
  EXPECT_FALSE(fs::exists(h));
  rep = convert_file(a, h, {{"dequantize", "f16"}}, true);
  EXPECT_EQ(rep.losses.size(), 10u);
  const Document f32 = read_document(s), f16 = read_document(h);
  size_t compared = 0;
  read_document(a).for_each_tensor([&](const std::string& p, const Tensor& q) {
    if (!is_block(q.dtype())) return;
    const Tensor& t = *f32.find_tensor_path(p);
    const Tensor* r = f16.find_tensor_path(p);
    ASSERT_TRUE(r) << p;
    ASSERT_EQ(r->dtype(), DType::f16) << p;
    std::vector<uint16_t> want(t.numel());
    cast_elements(DType::f32, t.bytes().data(), DType::f16, reinterpret_cast<std::byte*>(want.data()), t.numel());
    EXPECT_EQ(0, std::memcmp(want.data(), r->bytes().data(), r->nbytes())) << p;
    ++compared;
  });
  EXPECT_EQ(compared, 10u);
  EXPECT_THROW(convert_file(a, h, {{"dequantize", "f8"}}, true), UsageError);
}

// ---- files ckpt writes, read by others --------------------------------------------------------

Document every_kind() {
  Document d;
  d.set("general.architecture", "llama").set("general.alignment", int64_t{64});
  d.set("b", true).set("i", int64_t{-7}).set("f", 0.1).set("s", std::string("x\0y", 3));
  d.set("ia", std::vector<int64_t>{1, -2, INT64_MAX}).set("fa", std::vector<double>{0.5, 1e-300});
  d.set("sa", std::vector<std::string>{"a", "", "\xc3\xa4"}).set("ba", std::vector<bool>{false, true});
  d.set("empty", std::vector<std::string>{});
  d.add_tensor("w", Tensor::from<float>(DType::f32, {2, 3}, {1, 2, 3, 4, 5, 6}));
  d.add_tensor("h", Tensor::from<uint16_t>(DType::f16, {3}, {0x3c00, 0x4000, 0xc000}));
  d.add_tensor("bf", Tensor::from<uint16_t>(DType::bf16, {1, 2}, {0x3f80, 0x4000}));
  d.add_tensor("i", Tensor::from<int32_t>(DType::i32, {2}, {-1, 7}));
  d.add_tensor("five_dims", Tensor::from<int8_t>(DType::i8, {1, 2, 1, 2, 3}, std::vector<int8_t>(12, 3)));
  d.add_tensor(std::string(80, 'n'), Tensor::from<double>(DType::f64, {1}, {2.5}));
  d.add_tensor("a%2Fb", Tensor::from<int64_t>(DType::i64, {1}, {9}));  // GGUF's "a/b", escaped
  return d;
}

TEST(Gguf, WrittenFileReadsInThePythonReader) {
  TempDir tmp;
  const fs::path f = tmp.path / "w.gguf";
  write_document(every_kind(), f);
  const auto j = nlohmann::json::parse(side("dump " + f.string()));
  EXPECT_EQ(j["version"], 3);
  EXPECT_EQ(j["data_start"].get<uint64_t>() % 64, 0u);
  EXPECT_EQ(j["kv"]["general.alignment"]["type"], 4);  // u32, as the spec types it
  EXPECT_EQ(j["kv"]["general.architecture"]["value"], "llama");
  EXPECT_EQ(j["kv"]["i"]["type"], 11);
  EXPECT_EQ(j["kv"]["f"]["type"], 12);
  EXPECT_EQ(j["kv"]["sa"]["value"]["array_of"], 8);
  std::map<std::string, nlohmann::json> tensors;
  for (const auto& t : j["tensors"]) tensors[t["name"].get<std::string>()] = t;
  EXPECT_EQ(tensors["w"]["dims"], nlohmann::json::parse("[3, 2]"));
  EXPECT_EQ(tensors["w"]["values"], nlohmann::json::parse("[1, 2, 3, 4, 5, 6]"));
  EXPECT_EQ(tensors["bf"]["type"], 30);
  EXPECT_EQ(tensors["five_dims"]["dims"], nlohmann::json::parse("[3, 2, 1, 2]"));  // 1x2 folded, shape in ckpt.tensor_shapes
  EXPECT_TRUE(tensors.count("a/b"));
  for (const auto& [name, t] : tensors) EXPECT_LE(name.size(), 63u) << name;
  // ckpt reads back the document it wrote.
  Document back = read_document(f);
  EXPECT_EQ(back.find_tensor("five_dims")->shape(), (Shape{1, 2, 1, 2, 3}));
  EXPECT_TRUE(back.find_tensor(std::string(80, 'n')));
  EXPECT_TRUE(back.find_tensor("a%2Fb"));
  EXPECT_EQ(std::get<double>(attr(back, "f")), 0.1);
}

TEST(Gguf, WrittenFileReadsInHuggingFacesParser) {
  const fs::path node_dir = kHere / "node";
  if (!fs::exists(node_dir / "node_modules/@huggingface/gguf/package.json"))
    FAIL() << "@huggingface/gguf is not installed in " << node_dir << " (scripts/setup.sh installs it)";
  TempDir tmp;
  const fs::path f = tmp.path / "w.gguf";
  Document d = every_kind();
  add_integrity(d);  // the host's record: the writer records its own
  write_document(d, f);
  std::string out;
  ASSERT_EQ(run("cd " + node_dir.string() + " && node read_gguf.mjs " + f.string(), out), 0) << out;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["version"], 3);
  EXPECT_EQ(j["kv"]["general.architecture"]["value"], "llama");
  EXPECT_EQ(j["kv"]["general.alignment"]["type"], 4);
  EXPECT_EQ(j["kv"]["sa"]["value"], nlohmann::json::parse(R"(["a", "", "ä"])"));
  // ckpt's record of hashes: ordinary keys to this reader, a digest per tensor.
  EXPECT_EQ(j["kv"]["ckpt.integrity.digests"]["value"].size(), 7u);
  EXPECT_EQ(j["kv"]["ckpt.integrity.manifest"]["value"].get<std::string>().size(), 16u);
  std::map<std::string, nlohmann::json> tensors;
  for (const auto& t : j["tensors"]) tensors[t["name"].get<std::string>()] = t;
  EXPECT_EQ(tensors["w"]["shape"], nlohmann::json::parse("[3, 2]"));
  EXPECT_EQ(tensors["w"]["dtype"], 0);
  EXPECT_EQ(tensors["h"]["dtype"], 1);
  EXPECT_EQ(j["data_offset"].get<uint64_t>() % 64, 0u);
}

// ---- a Llama-style model ----------------------------------------------------------------------

TEST(Gguf, LlamaStateDictThroughGgufAndQ8) {
  TempDir tmp;
  const fs::path dir = tmp.path;
  side("llama " + dir.string());
  const fs::path pt = dir / "model.pt", g = dir / "model.gguf", st = dir / "model.safetensors";
  // What llama.cpp needs and the weights cannot tell is asked for, never guessed.
  try {
    convert_file(pt, g, {}, true);
    ADD_FAILURE() << "a Llama state dict written without head counts";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("-w llama.context_length=..., -w llama.head_count=..., -w llama.rms_epsilon=..."),
              std::string::npos)
        << e.what();
  }
  const Options hp = {{"llama.head_count", "4"}, {"llama.head_count_kv", "2"}, {"llama.context_length", "256"},
                      {"llama.rms_epsilon", "1e-5"}};
  // .pt -> GGUF: torch's layout record has no place in GGUF (the one loss).
  ConvertReport r1 = convert_file(pt, g, hp, true);
  ASSERT_EQ(r1.losses.size(), 1u);
  EXPECT_EQ(r1.losses[0].path, "meta/torch_layout");
  // The hashes recorded are those of the tensors as read back: renamed, rows in Hugging Face's order.
  EXPECT_TRUE(verify(*open(g)).ok());
  Document gd = read_document(g);
  EXPECT_TRUE(gd.find_tensor("token_embd.weight"));
  EXPECT_TRUE(gd.find_tensor("blk.1.ffn_down.weight"));
  EXPECT_EQ(gd.find_tensor("blk.0.attn_q.weight")->dtype(), DType::f16);
  // The file as llama.cpp's converter makes it (rows of attn_q/attn_k permuted per head, checked
  // against NumPy's permute; the hyper-parameters), read back in Hugging Face's row order.
  EXPECT_NE(side("llama_gguf " + pt.string() + " " + g.string()).find("21 tensors checked, 4 permuted"), std::string::npos);
  const fs::path g2 = dir / "again.gguf";
  convert_file(g, g2);
  EXPECT_TRUE(slurp(g) == slurp(g2)) << "the permutation undone on reading is redone on writing";
  convert_file(g, st);
  EXPECT_NE(side("llama_check " + dir.string() + " " + pt.string() + " " + st.string()).find("21 tensors checked"),
            std::string::npos);
  // -> GGUF q8_0 -> f32: within q8_0's bound for each block.
  const fs::path q = dir / "model_q8.gguf", qs = dir / "model_q8.safetensors";
  ConvertReport r2 = convert_file(g, q, {{"quantize", "q8_0"}}, true);
  EXPECT_EQ(r2.quantization_errors.size(), 16u);  // the matrices; norms keep f16
  EXPECT_EQ(read_document(q).find_tensor("blk.0.attn_q.weight")->dtype(), DType::q8_0);
  EXPECT_TRUE(verify(*open(q)).ok());
  convert_file(q, qs, {}, true);
  EXPECT_NE(side("llama_check " + dir.string() + " " + pt.string() + " " + qs.string() + " bound").find("21 tensors checked"),
            std::string::npos);
  // names=keep keeps Hugging Face's names.
  const fs::path k = dir / "keep.gguf";
  convert_file(pt, k, {{"names", "keep"}}, true);
  EXPECT_TRUE(read_document(k).find_tensor("model.layers.0.self_attn.q_proj.weight"));
}

// ---- ckpt's record of hashes ------------------------------------------------------------------

// Every file ckpt writes records its hashes (docs/schema.md), GGUF too: a file converted from
// torch.save's records them (not a loss), ckpt verify checks them, and a changed data byte, a
// changed tensor name or a damaged record is found; readers other than ckpt read the record as
// ordinary keys.
TEST(Gguf, EveryFileWrittenRecordsItsHashes) {
  TempDir tmp;
  const fs::path pt = tmp.path / "sd.pt", g = tmp.path / "sd.gguf";
  std::string out;
  ASSERT_EQ(run(std::string(CKPT_PYTHON) + " -c \"import torch; torch.manual_seed(0); m = torch.nn.Sequential("
                "torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)); torch.save(m.state_dict(), '" +
                    pt.string() + "')\"",
                out),
            0)
      << out;
  const ConvertReport rep = convert_file(pt, g, {}, true);
  ASSERT_EQ(rep.losses.size(), 1u);  // torch's layout record; the hashes are no loss
  EXPECT_EQ(rep.losses[0].path, "meta/torch_layout");
  VerifyReport v = verify(*open(g));
  EXPECT_TRUE(v.has_integrity);
  EXPECT_TRUE(v.ok());
  EXPECT_EQ(v.tensors_checked, 4u);
  const Document d = read_document(g);
  const Group* rec = d.find_group_path("meta/integrity");
  ASSERT_TRUE(rec);
  EXPECT_EQ(std::get<std::vector<std::string>>(*rec->attribute("paths")),
            (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  // The independent reader sees four ordinary keys, the digests one per tensor in file order.
  const auto j = nlohmann::json::parse(side("dump " + g.string()));
  EXPECT_EQ(j["kv"]["ckpt.integrity.algorithm"]["value"], "xxh3_64");
  EXPECT_EQ(j["kv"]["ckpt.integrity.digests"]["value"]["items"].size(), 4u);
  EXPECT_EQ(j["kv"]["ckpt.integrity.manifest_encoding"]["value"], "ckpt-manifest-2");

  const std::string bytes = slurp(g);
  auto damaged = [&](const std::string& what, size_t at, char to) {
    std::string b = bytes;
    b[at] = to;
    const fs::path f = tmp.path / (what + ".gguf");
    spit(f, b);
    return f;
  };
  // One data byte (the last tensor's, 2.bias, ends the data): named, and the file is not converted.
  const size_t last = static_cast<size_t>(j["data_start"].get<uint64_t>() + j["tensors"][3]["offset"].get<uint64_t>());
  const fs::path flipped = damaged("data", last, static_cast<char>(bytes[last] ^ 0x40));
  v = verify(*open(flipped));
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.problems.front().find("2.bias: data hash"), std::string::npos) << v.problems.front();
  EXPECT_THROW(convert_file(flipped, tmp.path / "x.safetensors"), IntegrityError);
  // A tensor's name ("2.bias" -> "3.bias"): the manifest names the change.
  const size_t name_at = bytes.rfind(std::string("\x06\0\0\0\0\0\0\0" "2.bias", 14)) + 8;
  ASSERT_NE(name_at, std::string::npos + 8);
  v = verify(*open(damaged("name", name_at, '3')));
  ASSERT_FALSE(v.ok());
  bool manifest = false;
  for (const auto& p : v.problems) manifest = manifest || p.find("manifest digest") != std::string::npos;
  EXPECT_TRUE(manifest);
  // A key of the record ("ckpt.integrity.digests" -> "ckpt.integritz.digests", or under the
  // prefix "...digestz"): a damaged record, refused by name, never a file without hashes.
  const size_t key_at = bytes.find("ckpt.integrity.digests");
  ASSERT_NE(key_at, std::string::npos);
  for (const auto& [pos, to] : {std::pair<size_t, char>{key_at + 13, 'z'}, std::pair<size_t, char>{key_at + 21, 'z'}}) {
    try {
      (void)open(damaged("key", pos, to));
      ADD_FAILURE() << "a damaged record read";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("ckpt.integrity"), std::string::npos) << e.what();
    }
  }
  // The record is ckpt's: a document cannot set it as a key.
  Document own;
  own.set("ckpt.integrity.manifest", "0000000000000000");
  EXPECT_THROW(write_document(own, tmp.path / "own.gguf"), UnsupportedError);
  // A checkpoint saved with groups: flattened, and its hashes those of the file.
  Checkpoint ck;
  ck.model_state.add_tensor("fc.weight", Tensor::from<float>(DType::f32, {2, 2}, {1, 2, 3, 4}));
  SaveOptions so;
  so.fsync = false;
  save(ck, tmp.path / "ck.gguf", so);
  v = verify(*open(tmp.path / "ck.gguf"));
  EXPECT_TRUE(v.has_integrity && v.ok()) << (v.problems.empty() ? "" : v.problems.front());
}

// ---- hostile files ------------------------------------------------------------------------------

struct Builder {
  std::string b;
  Builder& u32(uint32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); return *this; }
  Builder& u64(uint64_t v) { b.append(reinterpret_cast<const char*>(&v), 8); return *this; }
  Builder& str(std::string_view s) { u64(s.size()); b.append(s); return *this; }
  Builder& head(uint64_t tensors, uint64_t kvs, uint32_t version = 3) { b = "GGUF"; u32(version); u64(tensors); return u64(kvs); }
  Builder& tensor(std::string_view name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name);
    u32(static_cast<uint32_t>(dims.size()));
    for (auto d : dims) u64(d);
    u32(type);
    return u64(offset);
  }
  Builder& pad(size_t a = 32) { b.resize((b.size() + a - 1) / a * a, '\0'); return *this; }
  Builder& data(size_t n) { b.append(n, '\x01'); return *this; }
};

// Opens, lists and reads every tensor; the error's type and message.
std::pair<std::string, std::string> attempt(const fs::path& p) {
  try {
    auto r = open(p);
    r->tree().for_each_tensor([&](const std::string& path, const Tensor&) { r->read(path); });
    return {"ok", ""};
  } catch (const LimitError& e) {
    return {"limit", e.what()};
  } catch (const FormatError& e) {
    return {"format", e.what()};
  } catch (const UnsupportedError& e) {
    return {"unsupported", e.what()};
  } catch (const Error& e) {
    return {"error", e.what()};
  }
}

TEST(Gguf, HostileFilesAreRefusedNamingThePlace) {
  TempDir tmp;
  struct Case {
    const char* name;
    std::string bytes;
    const char* kind;
    const char* says;
  };
  std::vector<Case> cases;
  auto add = [&](const char* n, Builder& b, const char* kind, const char* says) { cases.push_back({n, b.b, kind, says}); };
  Builder b;
  add("huge tensor count", b.head(uint64_t{1} << 62, 0).pad(), "format", "at byte 8: 4611686018427387904 tensors");
  add("huge kv count", b.head(0, ~uint64_t{0}).pad(), "format", "at byte 16");
  add("huge string", b.head(0, 1).str("k").u32(8).u64(uint64_t{1} << 60), "format", "the file ends");
  add("huge array", b.head(0, 1).str("k").u32(9).u32(10).u64(uint64_t{1} << 61), "format", "more than the");
  add("array of huge arrays", b.head(0, 1).str("k").u32(9).u32(9).u64(3).u32(4).u64(uint64_t{1} << 40), "format", "at byte");
  {
    Builder deep;
    deep.head(0, 1).str("k").u32(9);
    for (int i = 0; i < 100; ++i) deep.u32(9).u64(1);
    add("arrays nested 100 deep", deep, "limit", "deeper than");
  }
  add("bad value type", b.head(0, 1).str("k").u32(13).u64(0), "format", "value type 13");
  add("bool of 2", b.head(0, 1).str("k").u32(7).u32(2), "format", "a bool of value 2");
  add("key over 65535", b.head(0, 1).str(std::string(70000, 'k')).u32(0).u32(0), "format", "over the spec's limit");
  add("name over 64", b.head(1, 0).tensor(std::string(65, 'n'), {32}, 0, 0).pad().data(128), "format", "over the spec's limit of 64");
  add("alignment over 64 KiB", b.head(1, 1).str("general.alignment").u32(4).u32(1u << 17).tensor("t", {8}, 0, 0).pad().data(64),
      "limit", "general.alignment is 131072");
  add("alignment an i64", b.head(1, 1).str("general.alignment").u32(11).u64(32).tensor("t", {8}, 0, 0).pad().data(64),
      "format", "general.alignment has type i64");
  add("huge n_dims", b.head(1, 0).str("t").u32(0xffffffffu).pad(), "format", "4294967295 dimensions");
  add("huge dims", b.head(1, 0).tensor("t", {uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0).pad().data(64), "format",
      "(1099511627776, 1099511627776, 1, 1) make INT64_MAX elements or more");
  add("elements at INT64_MAX", b.head(1, 0).tensor("t", {uint64_t{1} << 62, 2}, 24, 0).pad().data(64), "format",
      "make INT64_MAX elements or more");
  add("huge bytes", b.head(1, 0).tensor("t", {uint64_t{1} << 31, uint64_t{1} << 31}, 28, 0).pad().data(64), "limit",
      "(info at byte 24): a tensor of 2^62 bytes or more");
  // ggml's element test passes any ne[1..3] beside ne[0] = 0: their product (2^120 here) once
  // overflowed int64 (undefined behaviour), and a type ckpt does not read was listed as empty.
  add("0 in ne[0] beside huge rows", b.head(1, 0).tensor("t", {0, uint64_t{1} << 40, uint64_t{1} << 40, uint64_t{1} << 40}, 16, 0).pad().data(64),
      "limit", "(info at byte 24): a tensor of 2^62 bytes or more");
  add("0 in ne[0] beside rows past 2^62", b.head(1, 0).tensor("t", {0, uint64_t{1} << 31, uint64_t{1} << 31, 2}, 0, 0).pad().data(64),
      "limit", "(info at byte 24): a tensor of 2^62 bytes or more");
  add("dim past int64", b.head(1, 0).tensor("t", {~uint64_t{0}}, 0, 0).pad().data(64), "format", "dimension 0");
  add("offset past the end", b.head(1, 0).tensor("t", {8}, 0, 1 << 20).pad().data(32), "format", "offset 1048576");
  add("tensor past the end", b.head(1, 0).tensor("t", {1000}, 0, 0).pad().data(64), "format", "run past the end");
  add("misaligned", b.head(1, 0).tensor("t", {4}, 0, 4).pad().data(64), "format", "offset 4 is not a multiple of the alignment 32");
  add("overlapping", b.head(2, 0).tensor("a", {16}, 0, 0).tensor("b", {16}, 0, 32).pad().data(128), "format",
      "tensor 'b' (info at byte 57): offset 32, where ggml expects 64");
  add("gap", b.head(2, 0).tensor("a", {8}, 0, 0).tensor("b", {8}, 0, 64).pad().data(128), "format",
      "tensor 'b' (info at byte 57): offset 64, where ggml expects 32");
  add("out of order", b.head(2, 0).tensor("a", {8}, 0, 32).tensor("b", {8}, 0, 0).pad().data(128), "format",
      "tensor 'a' (info at byte 24): offset 32, where ggml expects 0");
  add("name of 64", b.head(1, 0).tensor(std::string(64, 'n'), {8}, 0, 0).pad().data(64), "format",
      "(info at byte 24): a name of 64 bytes; ggml refuses names of more than 63");
  add("NUL in a name", b.head(1, 0).tensor(std::string("a\0b", 3), {8}, 0, 0).pad().data(64), "format",
      "(info at byte 24): the name holds a NUL byte, so ggml reads it as 'a'");
  add("0 in ne[1]", b.head(1, 0).tensor("t", {4, 0}, 0, 0).pad().data(64), "format",
      "tensor 't' (info at byte 24): dimension 1 (ne[1]) is 0");
  add("0 in ne[3]", b.head(1, 0).tensor("t", {4, 1, 1, 0}, 0, 0).pad().data(64), "format", "dimension 3 (ne[3]) is 0");
  add("type past ggml's", b.head(1, 0).tensor("t", {8}, 40, 0).pad().data(64), "format",
      "tensor 't' (info at byte 24), at byte 45: type 40 is no ggml type ggml reads");
  add("retired type", b.head(1, 0).tensor("t", {32}, 4, 0).pad().data(64), "format", "Q4_2 (4) is no ggml type ggml reads");
  add("unread type's rows not whole", b.head(1, 0).tensor("t", {100}, 16, 0).pad().data(64), "format",
      "rows of 100 elements, not whole blocks of 256 (ggml type IQ2_XXS (16))");
  add("unread type past the end", b.head(1, 0).tensor("t", {256}, 16, 0).pad().data(32), "format", "run past the end");
  add("repeated name", b.head(2, 0).tensor("a", {8}, 0, 0).tensor("a", {8}, 0, 32).pad().data(64), "format", "the name repeats");
  {
    Builder r;
    r.head(0, 2).str("k").u32(4).u32(1).str("k").u32(4).u32(2).pad();
    add("repeated key", r, "format", "repeats");
  }
  add("alignment not a power of two", b.head(1, 1).str("general.alignment").u32(4).u32(24).tensor("t", {8}, 0, 0).pad().data(64),
      "format", "power of two");
  add("block rows not whole", b.head(1, 0).tensor("t", {33}, 8, 0).pad().data(64), "format", "(info at byte 24): rows of 33 elements, not whole blocks of 32");
  add("version 1", b.head(0, 0, 1).pad(), "unsupported", "version 1");
  add("big-endian", b.head(0, 0, 0x03000000u).pad(), "unsupported", "big-endian");
  add("truncated header", b.head(3, 5), "format", "at byte 16: 5 key-values");
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path p = tmp.path / "x.gguf";
    spit(p, c.bytes);
    auto [kind, what] = attempt(p);
    EXPECT_EQ(kind, c.kind) << what;
    EXPECT_NE(what.find(c.says), std::string::npos) << what;
  }
  // An unknown ggml type (IQ2_XXS) is named in meta/@unread, the rest read.
  Builder u;
  u.head(2, 0).tensor("iq", {256}, 16, 0).tensor("f", {2}, 0, 96).pad().data(128);
  spit(tmp.path / "u.gguf", u.b);
  Document d = read_document(tmp.path / "u.gguf");
  EXPECT_TRUE(d.find_tensor("f"));
  EXPECT_FALSE(d.find_tensor("iq"));
  const Value* unread = d.find_group("meta") ? d.find_group("meta")->attribute("unread") : nullptr;
  ASSERT_TRUE(unread);
  EXPECT_NE(std::get<std::vector<std::string>>(*unread)[0].find("IQ2_XXS"), std::string::npos);
}

// ---- files crafted with the spec's writer (gguf_side.py craft) --------------------------------

// Writes the file a JSON spec describes (gguf_side.py craft: kvs, tensors, offsets as given).
void craft(const fs::path& file, const nlohmann::json& spec) {
  const fs::path j = file.string() + ".json";
  spit(j, spec.dump());
  side("craft " + file.string() + " " + j.string());
}

constexpr int kU8 = 0, kU32 = 4, kStr = 8, kArr = 9;  // GGUF value types

std::vector<float> floats(int n, float from = 0) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = from + static_cast<float>(i);
  return v;
}

// general.alignment: at most 64 KiB read (an option raises it) and written, always a u32, and
// the padding it asks for never built in memory: the file is header, data and holes.
TEST(Gguf, AlignmentIsBoundedAndAU32) {
  TempDir tmp;
  const fs::path big = tmp.path / "big.gguf";
  craft(big, {{"kvs", {{"general.alignment", kU32, 1 << 30}}}, {"tensors", {{"t", 0, {0}, nlohmann::json::array()}}}});
  auto [kind, what] = attempt(big);
  EXPECT_EQ(kind, "limit") << what;
  EXPECT_NE(what.find("general.alignment"), std::string::npos) << what;
  EXPECT_NE(what.find("max_alignment"), std::string::npos) << what;
  // Raised, it reads; written to GGUF it is refused by the writer, naming the key.
  LoadOptions lo;
  lo.format_options = {{"max_alignment", std::to_string(1 << 30)}};
  EXPECT_NO_THROW(read_document(big, lo));
  ConvertOptions co;
  co.read_options = lo.format_options;
  co.fsync = false;
  try {
    convert(big, tmp.path / "out.gguf", co);
    ADD_FAILURE() << "an alignment of 2^30 written";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("general.alignment"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp.path / "out.gguf"));
  // A type other than u32 (ggml asserts on it) is refused, naming the key and the type.
  const fs::path u8 = tmp.path / "u8.gguf";
  craft(u8, {{"kvs", {{"general.alignment", kU8, 64}}}, {"tensors", {{"t", 0, {4}, floats(4)}}}, {"align", 64}});
  std::tie(kind, what) = attempt(u8);
  EXPECT_EQ(kind, "format") << what;
  EXPECT_NE(what.find("general.alignment has type u8"), std::string::npos) << what;
  // 64 KiB, staged and streamed: small files (holes, not bytes built in memory), read by the
  // independent reader, general.alignment a u32 even when gguf:types says otherwise.
  for (const char* staging : {"16777216", "0"}) {
    SCOPED_TRACE(staging);
    Document d;
    d.set("general.alignment", int64_t{65536}).set("gguf:types", std::vector<std::string>{"general.alignment", "u8"});
    d.add_tensor("a", Tensor::from<float>(DType::f32, {3}, {1, 2, 3}));
    d.add_tensor("b", Tensor::from<float>(DType::f32, {2}, {4, 5}));
    const fs::path f = tmp.path / (std::string("al64k-") + staging + ".gguf");
    SaveOptions so;
    so.format_options = {{"staging_bytes", staging}};
    write_document(d, f, so);
    const auto j = nlohmann::json::parse(side("dump " + f.string()));
    EXPECT_EQ(j["kv"]["general.alignment"]["type"], kU32);
    EXPECT_EQ(j["data_start"].get<uint64_t>() % 65536, 0u);
    EXPECT_EQ(j["tensors"][1]["offset"], 65536);
    EXPECT_LE(fs::file_size(f), uint64_t{4} << 16);
    EXPECT_EQ(j["size"].get<uint64_t>() % 65536, 0u);
    EXPECT_TRUE(read_document(f).find_tensor("b")->bit_equal(*d.find_tensor("b")));
    d.set("general.alignment", int64_t{1} << 17);
    try {
      write_document(d, tmp.path / "x.gguf");
      ADD_FAILURE() << "an alignment of 128 KiB written";
    } catch (const UnsupportedError& e) {
      EXPECT_NE(std::string(e.what()).find("general.alignment"), std::string::npos) << e.what();
    }
  }
}

// A readable tensor named meta beside tensors ckpt cannot read: refused naming them, never
// a conversion that drops them silently.
TEST(Gguf, UnreadTensorsAreNeverDroppedSilently) {
  TempDir tmp;
  const fs::path f = tmp.path / "meta.gguf";
  craft(f, {{"tensors", {{"meta", 0, {1}, floats(1, 1)}, {"x", 16, {256}, std::string(132, '0')}}}});
  auto [kind, what] = attempt(f);
  EXPECT_EQ(kind, "unsupported") << what;
  EXPECT_NE(what.find("tensor x: ggml type IQ2_XXS"), std::string::npos) << what;
  EXPECT_THROW(convert_file(f, tmp.path / "meta.safetensors", {}, true), UnsupportedError);
  EXPECT_FALSE(fs::exists(tmp.path / "meta.safetensors"));
  // With no tensor named meta, the unread one is a named loss of the conversion.
  const fs::path g = tmp.path / "y.gguf";
  craft(g, {{"tensors", {{"y", 0, {1}, floats(1, 1)}, {"x", 16, {256}, std::string(132, '0')}}}});
  EXPECT_THROW(convert_file(g, tmp.path / "y.safetensors"), UnsupportedError);
  ConvertReport r = convert_file(g, tmp.path / "y.safetensors", {}, true);
  std::string losses;
  for (const auto& l : r.losses) losses += l.path + ": " + l.what + "\n";
  EXPECT_NE(losses.find("IQ2_XXS"), std::string::npos) << losses;
}

// ckpt.tensor_names and ckpt.tensor_shapes are taken only in the form ckpt's writer gives
// them; anything else (a file that renames or reshapes for ckpt alone) is refused.
TEST(Gguf, OwnKeysOnlyInTheWritersForm) {
  TempDir tmp;
  const auto data = floats(6) ;
  struct Case {
    const char* name;
    nlohmann::json kvs;
    std::vector<std::pair<std::string, std::vector<uint64_t>>> tensors;
    const char* says;
  };
  const std::string long_name(70, 'n');
  const std::vector<Case> cases = {
      {"names swapped", {{"ckpt.tensor_names", kArr, {kStr, {"a", "b", "b", "a"}}}}, {{"a", {3, 2}}, {"b", {3, 2}}},
       "key ckpt.tensor_names, tensor 'a'"},
      {"a long name for a short one", {{"ckpt.tensor_names", kArr, {kStr, {"a", long_name}}}}, {{"a", {3, 2}}},
       "key ckpt.tensor_names, tensor 'a'"},
      {"a shape of rank 2", {{"ckpt.tensor_shapes", kArr, {kStr, {"a", "3,2"}}}}, {{"a", {3, 2}}},
       "key ckpt.tensor_shapes, tensor 'a'"},
      {"a rank-5 shape folded otherwise", {{"ckpt.tensor_shapes", kArr, {kStr, {"a", "1,1,1,2,3"}}}}, {{"a", {1, 3, 2, 1}}},
       "key ckpt.tensor_shapes, tensor 'a'"},
      {"a rank-5 shape over 3 dims", {{"ckpt.tensor_shapes", kArr, {kStr, {"a", "1,1,1,2,3"}}}}, {{"a", {3, 2}}},
       "key ckpt.tensor_shapes, tensor 'a'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    nlohmann::json tensors = nlohmann::json::array();
    for (const auto& [n, dims] : c.tensors) tensors.push_back({n, 0, dims, data});
    const fs::path f = tmp.path / "x.gguf";
    craft(f, {{"kvs", c.kvs}, {"tensors", tensors}});
    auto [kind, what] = attempt(f);
    EXPECT_EQ(kind, "format") << what;
    EXPECT_NE(what.find(c.says), std::string::npos) << what;
  }
  // What the writer makes reads back: a long name, 5 and 6 dimensions.
  Document d;
  d.add_tensor(long_name, Tensor::from<float>(DType::f32, {1}, {1}));
  d.add_tensor("five", Tensor::from<float>(DType::f32, {2, 1, 1, 2, 3}, std::vector<float>(12, 2)));
  d.add_tensor("six", Tensor::from<float>(DType::f32, {2, 2, 1, 1, 1, 3}, std::vector<float>(12, 2)));
  write_document(d, tmp.path / "w.gguf");
  Document back = read_document(tmp.path / "w.gguf");
  EXPECT_TRUE(back.find_tensor(long_name));
  EXPECT_EQ(back.find_tensor("five")->shape(), (Shape{2, 1, 1, 2, 3}));
  EXPECT_EQ(back.find_tensor("six")->shape(), (Shape{2, 2, 1, 1, 1, 3}));
}

// X -> ckpt -> X is the identity: names with '%', empty arrays of arrays at any depth, and
// names a GGUF file has (never mapped to llama.cpp's again).
TEST(Gguf, GgufThroughTheDocumentIsTheIdentity) {
  TempDir tmp;
  const nlohmann::json f32x1 = floats(1, 7);
  struct Case {
    const char* name;
    nlohmann::json spec;
  };
  const std::vector<Case> cases = {
      {"percent names",
       {{"kvs", {{"a%2Fb", kStr, "v"}, {"%", kStr, "e"}, {"a/b", kStr, "w"}, {"", kStr, "x"}, {"100%", kStr, "y"}}},
        {"tensors", {{"x%2Fy", 0, {3, 2}, floats(6)}, {"%", 0, {1}, f32x1}, {"x/y", 0, {1}, f32x1}, {"", 0, {1}, f32x1},
                     {"%25", 0, {1}, f32x1}}}}},
      {"empty arrays of arrays",
       {{"kvs", {{"k", kArr, {kArr, nlohmann::json::array()}},
                 {"k2", kArr, {kArr, {{kArr, nlohmann::json::array()}, {kArr, nlohmann::json::array()}}}},
                 {"k3", kArr, {kArr, {{kArr, {{kArr, nlohmann::json::array()}}}}}}}}}},
      {"Hugging Face names in a GGUF file",
       {{"kvs", {{"general.architecture", kStr, "llama"}}},
        {"tensors", {{"model.embed_tokens.weight", 0, {2, 2}, floats(4)},
                     {"model.layers.0.self_attn.q_proj.weight", 0, {2, 2}, floats(4)}}}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path a = tmp.path / "a.gguf", b = tmp.path / "b.gguf", m = tmp.path / "a.msgpack", c2 = tmp.path / "c.gguf";
    craft(a, c.spec);
    EXPECT_TRUE(convert_file(a, b).losses.empty());
    expect_same_plus_record(a, b);
    EXPECT_TRUE(convert_file(b, c2).losses.empty());
    EXPECT_EQ(slurp(b), slurp(c2));
    // Through another format and back (without the records msgpack adds in meta).
    convert_file(b, m);
    EXPECT_TRUE(verify(*open(m)).ok());
    Document dm = read_document(m);
    dm.erase("meta");
    write_document(dm, c2);
    EXPECT_EQ(slurp(b), slurp(c2));
  }
  // The names as the document has them: every name with '%' an escape.
  craft(tmp.path / "p.gguf", cases[0].spec);
  Document d = read_document(tmp.path / "p.gguf");
  for (const char* n : {"a%252Fb", "%25", "a%2Fb", "%", "100%25"}) EXPECT_TRUE(d.attribute(n)) << n;
  for (const char* n : {"x%252Fy", "%25", "x%2Fy", "%", "%2525"}) EXPECT_TRUE(d.find_tensor(n)) << n;
}

// Files ggml would crash on or refuse are never written: a 0 in ne[1..3] (the shape kept in
// ckpt.tensor_shapes instead); a document's gguf:types that is no record of types is refused.
TEST(Gguf, WriterMakesOnlyFilesGgmlReads) {
  TempDir tmp;
  // A 0 before the last dimension (ggml's ne[1..3], which ggml's reader divides by): written
  // as dims (0), the shape in ckpt.tensor_shapes; a 0 in ne[0] as it is.
  Document d;
  d.add_tensor("a", Tensor::zeros(DType::f32, {0, 5}));
  d.add_tensor("b", Tensor::zeros(DType::f32, {3, 0, 2}));
  d.add_tensor("c", Tensor::zeros(DType::q8_0, {1, 0, 1, 1, 1, 64}));
  d.add_tensor("d", Tensor::zeros(DType::f32, {5, 0}));
  d.add_tensor("e", Tensor::zeros(DType::f32, {0}));
  d.add_tensor("f", Tensor::zeros(DType::f32, {2, 1, 1, 1, 0}));
  write_document(d, tmp.path / "z.gguf");
  const auto j = nlohmann::json::parse(side("dump " + (tmp.path / "z.gguf").string()));
  std::map<std::string, nlohmann::json> dims;
  for (const auto& t : j["tensors"]) {
    dims[t["name"].get<std::string>()] = t["dims"];
    for (size_t k = 1; k < t["dims"].size(); ++k) EXPECT_NE(t["dims"][k], 0) << t["name"];
  }
  EXPECT_EQ(dims["a"], nlohmann::json::parse("[0]"));
  EXPECT_EQ(dims["c"], nlohmann::json::parse("[0]"));
  EXPECT_EQ(dims["d"], nlohmann::json::parse("[0, 5]"));
  EXPECT_EQ(dims["f"], nlohmann::json::parse("[0, 1, 1, 2]"));
  Document back = read_document(tmp.path / "z.gguf");
  for (const char* n : {"a", "b", "c", "d", "e", "f"}) EXPECT_EQ(back.find_tensor(n)->shape(), d.find_tensor(n)->shape()) << n;
  // A recorded shape with elements for a tensor of dims (0) is refused.
  craft(tmp.path / "bad.gguf", {{"kvs", {{"ckpt.tensor_shapes", kArr, {kStr, {"t", "0,3"}}}}},
                                {"tensors", {{"t", 0, {3}, floats(3)}}}});
  auto [kind, what] = attempt(tmp.path / "bad.gguf");
  EXPECT_EQ(kind, "format") << what;
  EXPECT_NE(what.find("key ckpt.tensor_shapes, tensor 't'"), std::string::npos) << what;
  for (const auto& bad : {Value(std::string("general.alignment")), Value(std::vector<std::string>{"k"}),
                          Value(std::vector<std::string>{"k", "u9"})}) {
    Document t;
    t.set("k", int64_t{1}).set("gguf:types", bad);
    EXPECT_THROW(write_document(t, tmp.path / "t.gguf"), UsageError);
  }
}

// What ggml refuses ckpt refuses (a name of 64 bytes, offsets not packed in order), naming the
// tensor info's byte; ckpt.padding read as the writer's filler only when it is one.
TEST(Gguf, GgmlsRefusalsAreCkpts) {
  TempDir tmp;
  const fs::path a = tmp.path / "a.gguf";
  auto refused = [&](const char* says) {
    try {
      read_document(a);
      ADD_FAILURE() << "read: " << says;
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  craft(a, {{"tensors", {{std::string(64, 'n'), 0, {1}, floats(1, 1)}}}});
  refused("(info at byte 24): a name of 64 bytes");
  craft(a, {{"tensors", {{"late", 0, {2}, floats(2, 2), 32}, {"early", 0, {1}, floats(1, 5), 0}}}});
  refused("tensor 'late' (info at byte 24): offset 32, where ggml expects 0");
  // A key named ckpt.padding that is no filler is an ordinary key.
  craft(a, {{"kvs", {{"ckpt.padding", kStr, "not filler"}}}, {"tensors", {{"t", 0, {1}, floats(1, 1)}}}});
  EXPECT_EQ(std::get<std::string>(attr(read_document(a), "ckpt.padding")), "not filler");
  // A filler of spaces is the writer's and is not listed.
  craft(a, {{"kvs", {{"ckpt.padding", kStr, "    "}}}});
  EXPECT_EQ(read_document(a).attribute("ckpt.padding"), nullptr);
}

// A llama file whose attention rows cannot be put back in Hugging Face's order (no head count)
// is refused, naming the tensor and the key.
TEST(Gguf, LlamaFileWithoutHeadCountIsRefused) {
  TempDir tmp;
  // A llama file whose attention rows cannot be put back in order (no head count) is refused.
  const fs::path bad = tmp.path / "no_heads.gguf";
  craft(bad, {{"kvs", {{"general.architecture", kStr, "llama"}}}, {"tensors", {{"blk.0.attn_q.weight", 0, {2, 4}, floats(8)}}}});
  try {
    read_document(bad);
    ADD_FAILURE() << "read a llama attn_q without a head count";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("'blk.0.attn_q.weight' (info at byte"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no key llama.attention.head_count"), std::string::npos) << e.what();
  }
}

// A document read from GGUF whose header outgrows the room a streamed save reserved (a group's
// attributes, which come after the tensors, past the 64 KiB allowed for them): the data moves
// right, and the file is still the one the staged save makes in one pass.
TEST(Gguf, StreamedHeaderPastItsBoundIsStillGgmlsLayout) {
  TempDir tmp;
  Document d;
  d.set("general.architecture", "test");
  d.add_tensor("a", Tensor::from<float>(DType::f32, {3}, {1, 2, 3}));
  d.add_tensor("b", Tensor::from<float>(DType::f32, {2}, {4, 5}));
  d.group("meta").set("big", std::string(100 << 10, 'x'));
  const fs::path staged = tmp.path / "staged.gguf", streamed = tmp.path / "streamed.gguf";
  SaveOptions so;
  so.fsync = false;
  write_document(d, staged, so);
  so.format_options = {{"staging_bytes", "0"}};
  write_document(d, streamed, so);
  EXPECT_TRUE(slurp(staged) == slurp(streamed));
  const auto j = nlohmann::json::parse(side("dump " + streamed.string()));
  EXPECT_FALSE(j["kv"].contains("ckpt.padding"));
  EXPECT_EQ(j["kv"]["meta.big"]["value"].get<std::string>().size(), size_t{100} << 10);
  EXPECT_TRUE(read_document(streamed).find_tensor("b")->bit_equal(*d.find_tensor("b")));
}

// Random damage to a valid file: read fully or refused with a ckpt::Error, never anything else
// (the libFuzzer target fuzz_gguf does this at length: scripts/fuzz.sh).
TEST(Gguf, RandomDamageIsReadOrRefused) {
  TempDir tmp;
  const fs::path a = tmp.path / "a.gguf";
  side("make " + a.string());
  const std::string good = slurp(a);
  std::mt19937_64 rng(42);
  int refused = 0, read = 0;
  for (int i = 0; i < 400; ++i) {
    std::string bad = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      const size_t at = rng() % std::min<size_t>(bad.size(), i % 2 ? bad.size() : 2048);  // the header, mostly
      bad[at] = static_cast<char>(rng() % 3 == 0 ? 0xff : rng());
    }
    if (i % 7 == 0) bad.resize(rng() % bad.size());
    const fs::path p = tmp.path / "bad.gguf";
    spit(p, bad);
    try {
      auto r = open(p);
      r->tree().for_each_tensor([&](const std::string& path, const Tensor&) {
        r->read(path);
        r->map(path);
      });
      ++read;
    } catch (const Error&) {
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(read, 0);
}

}  // namespace
