// What is particular to the pytorch format, checked against Debian's python3-torch: files
// torch.save wrote read as ckpt's schema (bytes, optimizer state, epoch and loss), files ckpt
// writes load in torch (weights_only, strict load_state_dict, optimizer steps that match
// ckpt's), torch-trained models predict the same after conversion to every other format, and
// pickled code in a .pt file is refused without being run. Generic round trips are the
// conformance kit's job.
#include <ckpt/diff.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>
#include <ckpt/registry.hpp>
#include <ckpt/train/loss.hpp>
#include <ckpt/train/model.hpp>
#include <ckpt/train/optimizer.hpp>

#include "pytorch_test_support.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <sstream>

using namespace ckpt;
using namespace pytorch_test;

namespace {

std::vector<std::vector<float>> read_logits(const std::string& text) {
  std::vector<std::vector<float>> rows;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream l(line);
    std::vector<float> row;
    for (float v; l >> v;) row.push_back(v);
    if (!row.empty()) rows.push_back(row);
  }
  return rows;
}

}  // namespace

TEST_F(PytorchFormat, TorchStateDictReadsAsRootTensorsWithTheirExactBytes) {
  const Document doc = read_document(fixture("dtypes.pt"));  // by extension, confirmed by identify
  EXPECT_TRUE(doc.attributes().empty());
  // How torch laid the file out (views, _metadata) is kept beside the tensors, for writing it
  // back as it was; it is the only thing beside them.
  ASSERT_TRUE(doc.find_group("meta"));
  EXPECT_EQ(doc.find_group("meta")->attributes().size(), 1u);
  EXPECT_TRUE(doc.find_group("meta")->attribute("torch_layout"));
  size_t seen = 0;
  for (const auto& c : doc.children()) {
    if (c.name == "meta") continue;
    ASSERT_TRUE(c.is_tensor()) << c.name;
    EXPECT_EQ(bytes_of(c.tensor()), slurp(fixture("expect/dtypes." + c.name))) << c.name;
    ++seen;
  }
  EXPECT_EQ(seen, 15u);
  EXPECT_EQ(doc.find_tensor("bf16")->dtype(), DType::bf16);
  EXPECT_EQ(doc.find_tensor("f16")->dtype(), DType::f16);
  EXPECT_EQ(doc.find_tensor("bool")->dtype(), DType::boolean);
  EXPECT_EQ(doc.find_tensor("transposed")->shape(), (Shape{6, 4}));
  EXPECT_EQ(doc.find_tensor("scalar")->shape(), Shape{});
  EXPECT_EQ(doc.find_tensor("empty")->shape(), (Shape{0, 3}));
  // A dense tensor is a view into the mapped file.
  EXPECT_EQ(doc.find_tensor("base")->storage_kind(), StorageKind::mapped);
}

TEST_F(PytorchFormat, TorchCheckpointMapsOntoTheSchema) {
  const Checkpoint c = load(fixture("mlp_checkpoint.pt"));
  EXPECT_EQ(c.model_state.children().size(), 4u);
  EXPECT_EQ(bytes_of(*c.model_state.find_tensor("fc1.weight")), slurp(fixture("expect/mlp.fc1.weight")));
  EXPECT_EQ(std::get<int64_t>(*c.trainer.attribute("epoch")), 3);
  double mlp_loss = 0, conv_loss = 0;
  std::istringstream(slurp(fixture("expect/losses"))) >> mlp_loss >> conv_loss;
  EXPECT_EQ(std::get<double>(*c.trainer.attribute("loss")), static_cast<double>(static_cast<float>(mlp_loss)));
  EXPECT_EQ(std::get<std::string>(*c.optimizer.attribute("type")), "sgd");
  EXPECT_EQ(std::get<double>(*c.optimizer.attribute("lr")), 0.05);
  EXPECT_EQ(std::get<double>(*c.optimizer.attribute("momentum")), 0.9);
  EXPECT_EQ(std::get<bool>(*c.optimizer.attribute("nesterov")), false);
  // torch's state {index: {momentum_buffer}} becomes state/<parameter name>/momentum_buffer.
  const char* names[] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
  for (int i = 0; i < 4; ++i) {
    const Tensor* m = c.optimizer.find_tensor_path(std::string("state/") + names[i] + "/momentum_buffer");
    ASSERT_TRUE(m) << names[i];
    EXPECT_EQ(bytes_of(*m), slurp(fixture("expect/sgd." + std::to_string(i) + ".momentum_buffer"))) << names[i];
  }

  const Checkpoint a = load(fixture("convnet_checkpoint.pt"));
  EXPECT_EQ(std::get<std::string>(*a.optimizer.attribute("type")), "adam");
  EXPECT_EQ(std::get<int64_t>(*a.optimizer.attribute("step")), 10);
  EXPECT_EQ(std::get<std::vector<double>>(*a.optimizer.attribute("betas")), (std::vector<double>{0.9, 0.999}));
  EXPECT_TRUE(a.optimizer.find_tensor_path("state/conv1.weight/exp_avg_sq"));
  EXPECT_EQ(std::get<double>(*a.trainer.attribute("loss")), conv_loss);
  EXPECT_EQ(std::get<std::string>(*a.extra.attribute("note")), "adam");
}

TEST_F(PytorchFormat, StateDictsWeWriteLoadInTorchStrictlyAndPredictTheSame) {
  TempDir tmp;
  for (const char* kind : {"mlp", "convnet"}) {
    const fs::path src = fixture(std::string(kind) + (std::string(kind) == "mlp" ? ".pt" : ".pth"));
    Checkpoint c = load(src);
    c.model_spec = std::string(kind) == "mlp" ? train::Model::mlp_spec(784, {64}, 10) : train::Model::convnet_spec();
    const fs::path p = tmp.path / (std::string(kind) + "_ckpt.pt");
    save(c, p, as_pytorch());
    std::string out;
    EXPECT_EQ(run(torch_side("state-dict " + p.string() + " " + kind + " " + fixture("expect/" + std::string(kind) + ".logits").string()), out), 0)
        << out;
    // And back: the exact document ckpt wrote, spec and meta included (data.pkl cannot hold
    // a spec; ckpt's own copy of the document in the zip does).
    LoadOptions verified;
    verified.verify = true;
    const Document back = read_document(p, verified);
    const DiffReport d = diff_documents(c.to_document(), back);
    EXPECT_TRUE(d.identical()) << d.entries.front().path << ": " << d.entries.front().detail;
    EXPECT_GT(d.tensors_compared, 0u);
    const Checkpoint loaded = Checkpoint::from_document(back);
    EXPECT_FALSE(loaded.model_spec.empty());
    EXPECT_FALSE(loaded.producer.empty());
    EXPECT_TRUE(back.find_group_path("meta/integrity"));
  }
}

TEST_F(PytorchFormat, EveryDtypeWeWriteLoadsInTorchWithAlignedStorages) {
  TempDir tmp;
  const Document doc = read_document(fixture("dtypes.pt"));
  const fs::path p = tmp.path / "dtypes.pt";
  write_document(doc, p, as_pytorch());
  std::string out;
  EXPECT_EQ(run(torch_side("dtypes " + p.string() + " " + fixture("expect").string() + "/dtypes."), out), 0) << out;
}

// Text that is not strict UTF-8 (a lone UTF-16 surrogate, which Python's pickle writes for
// str, an overlong NUL, a stray byte) cannot be a JSON string in ckpt/document.json: it is
// stored as hex and comes back byte for byte, where a lenient check once let it reach
// nlohmann's dump, which throws.
TEST_F(PytorchFormat, AttributesThatAreNotStrictUtf8ComeBackByteForByte) {
  TempDir tmp;
  const std::vector<std::string> texts = {"\xed\xa0\x80", std::string("a\xc0\x80z", 4), "\xff", "ok \xc3\xa9"};
  Document doc;
  Group& g = doc.group("extra");
  g.set("surrogate", texts[0]).set("overlong", texts[1]).set("stray", texts[2]).set("fine", texts[3]);
  g.set("all", texts);
  const fs::path p = tmp.path / "text.pt";
  write_document(doc, p, as_pytorch());
  Document back = read_document(p);
  const Group& b = back.group("extra");
  for (const char* name : {"surrogate", "overlong", "stray", "fine", "all"}) {
    const Value* v = b.attribute(name);
    ASSERT_NE(v, nullptr) << name;
    EXPECT_TRUE(value_equal(*v, *g.attribute(name))) << name << ": " << value_to_string(*v);
  }
}

namespace {

// A deterministic batch of Fashion-MNIST-shaped images: 784 bytes each, then the labels.
std::string make_batch(int n) {
  std::mt19937 rng(7);
  std::string b(static_cast<size_t>(n) * 785, '\0');
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<char>(i < static_cast<size_t>(n) * 784 ? rng() % 256 : rng() % 10);
  return b;
}

void train_step(train::Model& m, train::Optimizer& opt, const std::string& batch) {
  const int n = static_cast<int>(batch.size() / 785);
  Tensor x = train::aligned_tensor({n, 784});
  auto xv = x.mutable_data<float>();
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = static_cast<float>(static_cast<uint8_t>(batch[i])) / 255.0f;
  std::vector<uint8_t> y(batch.begin() + n * 784, batch.end());
  Tensor grad;
  const Tensor& logits = m.forward(x);
  train::cross_entropy(logits, y, grad);
  m.backward(grad);
  opt.step(m.named_parameters(), opt.lr());
}

}  // namespace

TEST_F(PytorchFormat, OptimizerStateWeWriteStepsInTorchAsInCkpt) {
  TempDir tmp;
  const int n = 32;
  const std::string batch = make_batch(n);
  std::ofstream(tmp.path / "batch.bin", std::ios::binary).write(batch.data(), static_cast<std::streamsize>(batch.size()));
  struct Case {
    const char* type;
    std::function<void(Group&)> config;
    bool floats_python = false;
  };
  const Case cases[] = {
      {"sgd", [](Group& g) { g.set("lr", 0.05).set("momentum", 0.9).set("weight_decay", 0.01); }},
      {"sgd", [](Group& g) { g.set("lr", 0.05).set("momentum", 0.8).set("nesterov", Value(true)); }},
      {"adam", [](Group& g) { g.set("lr", 0.003).set("weight_decay", 0.001); }},
      {"adamw", [](Group& g) { g.set("lr", 0.003).set("betas", std::vector<double>{0.8, 0.99}); }},
      {"adam", [](Group& g) { g.set("lr", 0.002); }, true},
      {"sgd", [](Group& g) { g.set("lr", 0.05).set("momentum", 0.9); }, true},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.type);
    Group config;
    config.set("type", k.type);
    k.config(config);
    auto model = train::Model::from_spec(train::Model::mlp_spec(784, {64}, 10), 3);
    auto opt = train::Optimizer::make(config);
    for (int s = 0; s < 3; ++s) train_step(*model, *opt, make_batch(n + s));
    Checkpoint c;
    c.model_spec = model->spec();
    c.model_state = model->state_dict();
    c.optimizer = opt->state_dict();
    c.trainer.set("epoch", 2).set("loss", 0.75);
    const fs::path p = tmp.path / (std::string(k.type) + ".pt");
    // The default writes floats as 0-d tensors, which torch 1.13 loads weights_only; with
    // floats=python they are Python floats, as torch.save writes them.
    save(c, p, as_pytorch(k.floats_python ? Options{{"floats", "python"}} : Options{}));
    train_step(*model, *opt, batch);

    const fs::path after = tmp.path / "after.bin";
    std::string out;
    ASSERT_EQ(run(torch_side(std::string("optimizer-step ") + p.string() + " " + k.type + " " +
                             (tmp.path / "batch.bin").string() + " " + after.string() +
                             (k.floats_python ? " python-floats" : " weights-only")),
                  out),
              0)
        << out;
    const std::string theirs = slurp(after);
    std::string ours;
    for (const auto& [name, param] : model->named_parameters()) ours += bytes_of(param->value);
    ASSERT_EQ(theirs.size(), ours.size());
    double worst = 0;
    for (size_t i = 0; i < ours.size(); i += 4) {
      float a, b;
      std::memcpy(&a, ours.data() + i, 4);
      std::memcpy(&b, theirs.data() + i, 4);
      worst = std::max(worst, static_cast<double>(std::fabs(a - b)));
    }
    EXPECT_LE(worst, 1e-6) << "largest difference after one more step";
    // And ckpt reads torch's layout back into its own.
    const Checkpoint back = load(p);
    EXPECT_EQ(std::get<std::string>(*back.optimizer.attribute("type")), k.type);
  }
}

TEST_F(PytorchFormat, TorchTrainedModelsPredictTheSameInEveryFormat) {
  TempDir tmp;
  const Registry& reg = Registry::global();
  struct Source {
    const char* file;
    const char* kind;
    bool checkpoint;  // model, optimizer, epoch and loss
  };
  const Source sources[] = {{"mlp.pt", "mlp", false},
                            {"convnet.pth", "convnet", false},
                            {"mlp_checkpoint.pt", "mlp", true},
                            {"convnet_checkpoint.pt", "convnet", true}};
  std::vector<FormatInfo> targets;
  for (const auto& f : reg.formats())
    if (f.info().can(CKPT_CAP_WRITE) && f.info().can(CKPT_CAP_READ) && f.name() != "pytorch") targets.push_back(f.info());
  ASSERT_GE(targets.size(), 2u) << "the other formats' plugins are not in the build";
  targets.push_back(reg.get("pytorch").info());  // itself, after a round trip through ckpt's writer
  for (const Source& src : sources) {
    const auto want = read_logits(slurp(fixture("expect/" + std::string(src.kind) + ".logits")));
    ASSERT_EQ(want.size(), 20u);
    double want_accuracy = -1, want_loss = -1;
    std::istringstream(slurp(fixture("expect/" + std::string(src.kind) + ".eval"))) >> want_accuracy >> want_loss;
    ASSERT_GE(want_accuracy, 0);
    for (const FormatInfo& t : targets) {
      SCOPED_TRACE(std::string(src.file) + " -> " + t.name);
      const fs::path dst = tmp.path / (std::string(src.file) + "." + t.name);
      // A format without attributes or groups cannot hold a checkpoint's epoch and optimizer
      // settings: converting says so and needs the user's leave.
      const bool lossy = !t.can(CKPT_CAP_ATTRIBUTES) || !t.can(CKPT_CAP_NESTED_GROUPS);
      std::string out;
      ASSERT_EQ(run(std::string(CKPT_CLI) + " convert --to " + t.name + (lossy ? " --allow-lossy " : " ") +
                        fixture(src.file).string() + " " + dst.string(),
                    out),
                0)
          << out;
      out.clear();
      const int predicted = run(std::string(CKPT_CLI) + " predict --images 20 " + dst.string(), out);
      if (lossy && predicted != 0) {
        // Without attributes or nested groups a format holds no model/spec (NumPy's files,
        // GGUF): when the model cannot be rebuilt from the weights' names alone, predict says so.
        EXPECT_NE(out.find("no model/spec"), std::string::npos) << out;
        continue;
      }
      ASSERT_EQ(predicted, 0) << out;
      const auto got = read_logits(out);
      ASSERT_EQ(got.size(), want.size());
      double worst = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i].size(), want[i].size());
        for (size_t j = 0; j < got[i].size(); ++j) worst = std::max(worst, static_cast<double>(std::fabs(got[i][j] - want[i][j])));
      }
      EXPECT_LE(worst, 1e-5);
      // ckpt eval prints accuracy and mean loss to 4 decimals: torch's, to that precision.
      out.clear();
      ASSERT_EQ(run(std::string(CKPT_CLI) + " eval --limit 500 " + dst.string(), out), 0) << out;
      const size_t at = out.find("test accuracy ");
      ASSERT_NE(at, std::string::npos) << out;
      double accuracy = -1, loss = -1;
      long long images = 0;
      ASSERT_EQ(std::sscanf(out.c_str() + at, "test accuracy %lf (%lld images), loss %lf", &accuracy, &images, &loss), 3) << out;
      EXPECT_EQ(images, 500);
      EXPECT_LE(std::fabs(accuracy - want_accuracy), 0.5e-4 + 1e-9) << out;
      EXPECT_LE(std::fabs(loss - want_loss), 0.5e-4 + 1e-6) << out;
      if (src.checkpoint && !lossy) {
        const Checkpoint c = load(dst);
        EXPECT_EQ(std::get<int64_t>(*c.trainer.attribute("epoch")), std::string(src.kind) == "mlp" ? 3 : 1);
        EXPECT_EQ(std::get<std::string>(*c.optimizer.attribute("type")), std::string(src.kind) == "mlp" ? "sgd" : "adam");
        EXPECT_TRUE(c.trainer.attribute("loss"));
      }
    }
  }
}

TEST_F(PytorchFormat, PickledCodeInAPtFileIsRefusedAndNeverRuns) {
  TempDir tmp;
  const fs::path marker = tmp.path / "ran";
  std::string out;
  ASSERT_EQ(run(torch_side("malicious " + tmp.path.string() + " " + marker.string()), out), 0) << out;
  const std::pair<const char*, const char*> cases[] = {
      {"evil_system.pt", "refused: os.system"},
      {"evil_subprocess.pt", "refused: subprocess.check_call"},
      {"evil_nested.pt", "refused: os.system"},
  };
  for (const auto& [name, want] : cases) {
    try {
      read_document(tmp.path / name);
      ADD_FAILURE() << name << " was read";
    } catch (const UnsupportedError& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << "names the file: " << e.what();
      EXPECT_NE(std::string(e.what()).find("data.pkl, at byte"), std::string::npos) << "names the place: " << e.what();
    }
    // The ckpt program says the same and fails.
    out.clear();
    EXPECT_NE(run(std::string(CKPT_CLI) + " inspect " + (tmp.path / name).string(), out), 0) << out;
    EXPECT_NE(out.find(want), std::string::npos) << out;
  }
  EXPECT_FALSE(fs::exists(marker)) << "a pickle's code ran";
}

TEST_F(PytorchFormat, LegacyFormatIsRecognisedAndRefusedClearly) {
  // By extension, and by content alone (protocol 4 puts a FRAME before torch's magic number).
  for (const char* name : {"legacy.pt", "legacy_p4.bin"}) {
    try {
      read_document(fixture(name));
      ADD_FAILURE() << name << ": the legacy format was read";
    } catch (const UnsupportedError& e) {
      EXPECT_NE(std::string(e.what()).find("legacy format"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
    std::string out;
    EXPECT_NE(run(std::string(CKPT_CLI) + " inspect " + fixture(name).string(), out), 0) << out;
    EXPECT_NE(out.find("(pytorch): a PyTorch file in the legacy format"), std::string::npos) << out;
  }
}

TEST_F(PytorchFormat, DamagedZipsAreFormatErrorsNamingTheFile) {
  TempDir tmp;
  const std::string good = slurp(fixture("mlp.pt"));
  const fs::path p = tmp.path / "cut.pt";
  // Cut before the central directory, then with the storage entry's bytes gone.
  for (size_t keep : {good.size() / 2, good.size() - 30, size_t{40}}) {
    std::ofstream(p, std::ios::binary | std::ios::trunc).write(good.data(), static_cast<std::streamsize>(keep));
    try {
      LoadOptions o;
      o.format = "pytorch";
      read_document(p, o);
      ADD_FAILURE() << "a file cut to " << keep << " bytes was read";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("cut.pt"), std::string::npos) << e.what();
    }
  }
}

// ckpt/document.json may nest 733 groups (the 2200 JSON levels the reader once allowed, three a
// group); the writer refuses deeper documents, which once made a .pt ckpt then refused.
TEST(PytorchLimits, WriterRefusesGroupsNestedDeeperThanTheReaderReads) {
  TempDir tmp;
  auto chain = [](int depth) {
    Document doc;
    Group* g = &doc;
    for (int i = 0; i < depth; ++i) g = &g->add_group("g");
    g->add_tensor("t", Tensor::zeros(DType::f32, {2}));
    g->set("leaf", int64_t{1});
    return doc;
  };
  const fs::path p = tmp.path / "deep.pt";
  try {
    write_document(chain(734), p, as_pytorch());
    FAIL() << "a group 734 levels deep was written";
  } catch (const LimitError& e) {
    EXPECT_NE(std::string(e.what()).find("deeper than 733"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("group 'g/g/g"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(tmp.path)) << "the refused save left a file";
  const Document ok = chain(733);
  write_document(ok, p, as_pytorch());
  const DiffReport d = diff_documents(ok, read_document(p));
  EXPECT_TRUE(d.identical()) << d.entries.front().path << ": " << d.entries.front().detail;
}
