// The model registry against SQLite and PostgreSQL (the same tests, parameterised).
#include "registry_fixture.hpp"
#include "../../registry/src/blob_store.hpp"

#include <ckpt/convert.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/keys.hpp>
#include <ckpt/signature.hpp>

#include <cmath>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <limits>
#include <set>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>

namespace ckpt::model_registry::detail {
std::unique_ptr<ModelRegistry> open_at_schema(const std::string& uri, int64_t schema);
}

namespace ckpt_test {
namespace {

using ckpt::Document;
using Open = mr::ModelRegistry::Open;

const auto* const kPgEnvironment = ::testing::AddGlobalTestEnvironment(new PgEnvironment);

std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void expect_same_tensors(const Document& a, const Document& b) {
  size_t n = 0;
  a.for_each_tensor([&](const std::string& path, const ckpt::Tensor& t) {
    const ckpt::Tensor* u = b.find_tensor_path(path);
    ASSERT_NE(u, nullptr) << path;
    EXPECT_TRUE(t.bit_equal(*u)) << path;
    ++n;
  });
  EXPECT_EQ(n, b.tensor_count());
}

mr::RegisterOptions named(const std::string& name) {
  mr::RegisterOptions o;
  o.name = name;
  o.fsync = false;
  return o;
}

TEST_P(RegistryTest, RegisterShowListWithLineage) {
  auto reg = open();
  EXPECT_EQ(reg->schema_version(), mr::kSchemaVersion);
  write_checkpoint(make_checkpoint(3, 1000, 1, 0.81, 250), path("a.msgpack"));
  auto o = named("fashion-convnet");
  o.aliases = {"candidate"};
  o.tags = {{"team", "vision"}};
  o.description = "first";
  o.metrics = {{"val_f1", 0.7}};
  o.run_start = "2026-12-07T08:00:00Z";
  const mr::VersionInfo v = reg->register_checkpoint(path("a.msgpack"), o);
  EXPECT_EQ(v.version, 1);
  EXPECT_EQ(v.status, mr::Status::ready);
  EXPECT_EQ(v.format, "msgpack");
  EXPECT_EQ(v.tensors, 3u);
  EXPECT_EQ(v.bytes, 3u * 4000);
  EXPECT_EQ(v.bytes_written, 3u * 4000);
  EXPECT_EQ(v.digest.size(), 64u);
  EXPECT_EQ(v.step, 250);
  EXPECT_EQ(v.seed, 42);
  EXPECT_EQ(v.run_config, "{\"epochs\": 3}");
  EXPECT_EQ(v.run_start, "2026-12-07T08:00:00Z");
  EXPECT_EQ(v.producer, "registry test");
  EXPECT_FALSE(v.run_host.empty());
  EXPECT_NE(v.ckpt_version.find("ckpt "), std::string::npos);
  ASSERT_EQ(v.aliases, std::vector<std::string>{"candidate"});
  std::map<std::string, double> metrics(v.metrics.begin(), v.metrics.end());
  EXPECT_EQ(metrics["test_accuracy"], 0.81);
  EXPECT_EQ(metrics["val_f1"], 0.7);
  EXPECT_EQ(v.tags, (std::vector<std::pair<std::string, std::string>>{{"team", "vision"}}));

  // Fine-tuned from version 1: the lineage names it by version and content digest.
  write_checkpoint(make_checkpoint(3, 1000, 2, 0.85, 300), path("b.msgpack"));
  auto o2 = named("fashion-convnet");
  o2.parent = "fashion-convnet@candidate";
  const auto v2 = reg->register_checkpoint(path("b.msgpack"), o2);
  EXPECT_EQ(v2.version, 2);
  EXPECT_EQ(v2.parent, "fashion-convnet/1");
  EXPECT_EQ(v2.parent_digest, v.digest);
  // A parent given as a file is found by its content.
  auto o3 = named("other");
  o3.parent = path("a.msgpack").string();
  EXPECT_EQ(reg->register_checkpoint(path("b.msgpack"), o3).parent, "fashion-convnet/1");

  EXPECT_EQ(reg->show(mr::parse_ref("fashion-convnet")).version, 2);
  EXPECT_EQ(reg->show(mr::parse_ref("fashion-convnet@candidate")).version, 1);
  EXPECT_EQ(reg->show(mr::parse_ref("fashion-convnet/2")).version, 2);
  const auto listed = reg->tensors(mr::parse_ref("fashion-convnet/1"));
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[0].path, "model/state/layer0.weight");
  EXPECT_EQ(listed[0].dtype, "f32");
  EXPECT_EQ(listed[0].shape, std::vector<int64_t>{1000});
  EXPECT_EQ(listed[0].bytes, 4000u);
  EXPECT_EQ(listed[0].digest.size(), 64u);
  const auto versions = reg->list_versions("fashion-convnet");
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0].aliases, std::vector<std::string>{"candidate"});
  const auto models = reg->list_models();
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].name, "fashion-convnet");
  EXPECT_EQ(models[0].versions, 2);
  EXPECT_EQ(models[0].latest, 2);
  // Reopening sees the same.
  reg.reset();
  EXPECT_EQ(open(Open::existing)->show(mr::parse_ref("fashion-convnet/1")).digest, v.digest);
}

TEST_P(RegistryTest, SharedTensorsAreStoredOnce) {
  auto reg = open();
  Document base = make_checkpoint(8, 25'000, 10);
  write_checkpoint(base, path("v1.msgpack"));
  const auto v1 = reg->register_checkpoint(path("v1.msgpack"), named("m"));
  EXPECT_EQ(v1.bytes_written, 8u * 100'000);
  // One tensor changed: only it is written.
  base.group("model").group("state").set_tensor(
      "layer3.weight", ckpt::Tensor::from<float>(ckpt::DType::f32, {25'000}, std::vector<float>(25'000, 9.5f)));
  write_checkpoint(base, path("v2.msgpack"));
  const auto v2 = reg->register_checkpoint(path("v2.msgpack"), named("m"));
  EXPECT_EQ(v2.bytes_written, 100'000u);
  // The same file again: nothing new.
  const auto v3 = reg->register_checkpoint(path("v1.msgpack"), named("m"));
  EXPECT_EQ(v3.bytes_written, 0u);
  EXPECT_EQ(v3.digest, v1.digest);
  EXPECT_EQ(count_blobs(reg->store()), 9u);
}

// Every tensor goes through BLAKE2b-256 and the manifest names its own digest: unchanged tensors
// are found by that digest (nothing new written), never through a weaker index.
TEST_P(RegistryTest, EveryTensorIsHashedWithBlake2bAndUnchangedOnesAreNotRewritten) {
  auto reg = open();
  Document d = make_checkpoint(6, 10'000, 7);
  write_checkpoint(d, path("v1.msgpack"));
  EXPECT_EQ(reg->register_checkpoint(path("v1.msgpack"), named("m")).bytes_hashed, 6u * 40'000);
  d.group("model").group("state").set_tensor("layer2.weight",
                                             ckpt::Tensor::from<float>(ckpt::DType::f32, {10'000}, std::vector<float>(10'000, 3.f)));
  write_checkpoint(d, path("v2.msgpack"));
  const auto v2 = reg->register_checkpoint(path("v2.msgpack"), named("m"));
  // Each tensor where it is; the changed one, found missing, again as written.
  EXPECT_EQ(v2.bytes_hashed, 7u * 40'000);
  EXPECT_EQ(v2.bytes_written, 40'000u);
  for (const auto& t : reg->tensors(mr::parse_ref("m/2"))) {
    const ckpt::Tensor* mine = d.find_tensor_path(t.path);
    ASSERT_NE(mine, nullptr) << t.path;
    EXPECT_EQ(t.digest, mr::detail::blake2b256_hex(mine->bytes())) << t.path;
  }
  // After gc removed a blob, the tensor is stored again.
  reg->delete_version("m", 1);
  reg->gc();
  const auto v3 = reg->register_checkpoint(path("v1.msgpack"), named("m"));
  EXPECT_EQ(v3.bytes_written, 40'000u);
  reg->pull(mr::parse_ref("m/3"), path("back.msgpack"));
  expect_same_tensors(make_checkpoint(6, 10'000, 7), ckpt::read_document(path("back.msgpack")));
}

// A blob under a tensor's digest holding other bytes of the same size can only be damage (the
// store re-hashes what it writes before it takes the name): a registration reuses it without
// re-hashing, but no pull ever hands its bytes out; verify names it and sets it aside, and the
// next registration of the tensor stores it again.
TEST_P(RegistryTest, ADamagedBlobIsNeverHandedOutAndVerifySetsItAside) {
  auto reg = open();
  const Document x = make_checkpoint(1, 5'000, 1), y = make_checkpoint(1, 5'000, 2);
  write_checkpoint(x, path("x.msgpack"));
  write_checkpoint(y, path("y.msgpack"));
  const std::string ydigest = mr::detail::blake2b256_hex(y.find_tensor_path("model/state/layer0.weight")->bytes());
  const fs::path planted = reg->store() / "blobs" / ydigest.substr(0, 2) / ydigest;
  fs::create_directories(planted.parent_path());
  {
    const auto xb = x.find_tensor_path("model/state/layer0.weight")->bytes();
    std::ofstream(planted, std::ios::binary).write(reinterpret_cast<const char*>(xb.data()), static_cast<std::streamsize>(xb.size()));
  }
  const auto v = reg->register_checkpoint(path("y.msgpack"), named("m"));
  EXPECT_EQ(v.bytes_written, 0u);
  EXPECT_THROW(reg->pull(mr::parse_ref("m/1"), path("back.msgpack")), ckpt::IntegrityError);
  EXPECT_FALSE(fs::exists(path("back.msgpack")));
  const auto check = reg->verify(mr::parse_ref("m/1"));
  ASSERT_EQ(check.problems.size(), 1u);
  EXPECT_NE(check.problems[0].find("layer0.weight"), std::string::npos) << check.problems[0];
  EXPECT_EQ(check.blobs_set_aside, 1u);
  EXPECT_FALSE(fs::exists(planted));
  const auto v2 = reg->register_checkpoint(path("y.msgpack"), named("m"));
  EXPECT_EQ(v2.bytes_written, 20'000u);
  // The blob is whole again: both versions pull (they share it), and gc removes what was set aside.
  for (const char* ref : {"m/1", "m/2"}) {
    EXPECT_TRUE(reg->verify(mr::parse_ref(ref)).problems.empty()) << ref;
    reg->pull(mr::parse_ref(ref), path("back.msgpack"));
    expect_same_tensors(y, ckpt::read_document(path("back.msgpack")));
  }
  EXPECT_EQ(reg->gc().temporaries_removed, 1u);
}

// A mapped tensor that the previous version did not have is copied by the kernel and the copy
// hashed (once); one it had is hashed where it is and, found in the store, not written again.
TEST_P(RegistryTest, MappedTensorsAreHashedOnceAndUnchangedOnesNotRewritten) {
  auto reg = open();
  Document d = make_checkpoint(4, 300'000, 3);  // 1.2 MB tensors: mapped and copied by the kernel
  ckpt::write_document(d, path("v1.safetensors"));
  const auto v1 = reg->register_checkpoint(path("v1.safetensors"), named("m"));
  EXPECT_EQ(v1.bytes_hashed, 4u * 1'200'000);
  EXPECT_EQ(v1.bytes_written, 4u * 1'200'000);
  d.group("model").group("state").set_tensor(
      "layer1.weight", ckpt::Tensor::from<float>(ckpt::DType::f32, {300'000}, std::vector<float>(300'000, 2.f)));
  ckpt::write_document(d, path("v2.safetensors"));
  const auto v2 = reg->register_checkpoint(path("v2.safetensors"), named("m"));
  EXPECT_EQ(v2.bytes_written, 1'200'000u);
  // Every tensor hashed once where it is, and the changed one again as written.
  EXPECT_EQ(v2.bytes_hashed, 5u * 1'200'000);
  for (const auto& t : reg->tensors(mr::parse_ref("m/2")))
    EXPECT_EQ(t.digest, mr::detail::blake2b256_hex(d.find_tensor_path(t.path)->bytes())) << t.path;
  reg->pull(mr::parse_ref("m/2"), path("back.safetensors"));
  expect_same_tensors(d, ckpt::read_document(path("back.safetensors")));
  EXPECT_TRUE(fs::is_empty(reg->store() / "tmp"));
}

// What the store writes is re-hashed before it takes a digest's name: bytes that are not the
// digest's (a source rewritten after it was hashed) are refused and leave nothing behind.
TEST_P(RegistryTest, BytesThatAreNotTheDigestsAreNeverStoredUnderIt) {
  auto reg = open();
  mr::detail::BlobStore store(reg->store());
  std::vector<std::byte> bytes(3 << 20, std::byte{7});
  const std::string wrong = mr::detail::blake2b256_hex(std::span(bytes).first(100));
  EXPECT_THROW(store.put(wrong, bytes), ckpt::IntegrityError);
  EXPECT_FALSE(fs::exists(store.blob_path(wrong)));
  const fs::path src = path("src.bin");
  std::ofstream(src, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  const int fd = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_THROW(store.put_from_file(wrong, fd, 0, bytes.size()), ckpt::IntegrityError);
  ::close(fd);
  EXPECT_FALSE(fs::exists(store.blob_path(wrong)));
  EXPECT_TRUE(fs::is_empty(reg->store() / "tmp"));
}

TEST_P(RegistryTest, PullWritesAnyFormatAtomicallyAndExactly) {
  auto reg = open();
  const Document doc = make_checkpoint(4, 3000, 5);
  write_checkpoint(doc, path("a.msgpack"));
  auto o = named("m");
  o.aliases = {"production"};
  reg->register_checkpoint(path("a.msgpack"), o);
  // The registered format, every attribute and tensor back.
  const auto r = reg->pull(mr::parse_ref("m@production"), path("out.msgpack"));
  EXPECT_EQ(r.format, "msgpack");
  EXPECT_TRUE(r.blake2b_checked);
  EXPECT_EQ(r.tensors, 4u);
  const Document back = ckpt::read_document(path("out.msgpack"));
  expect_same_tensors(doc, back);
  EXPECT_EQ(ckpt::value_to_string(*back.find_group_path("trainer/metrics")->attribute("test_accuracy")),
            ckpt::value_to_string(*doc.find_group_path("trainer/metrics")->attribute("test_accuracy")));
  // Another format, by OUT's extension.
  const auto s = reg->pull(mr::parse_ref("m/1"), path("out.safetensors"));
  EXPECT_EQ(s.format, "safetensors");
  expect_same_tensors(doc, ckpt::read_document(path("out.safetensors")));
  // Nothing left beside the outputs.
  for (const auto& e : fs::directory_iterator(tmp_.path))
    EXPECT_EQ(e.path().filename().string().find(".ckpt-tmp"), std::string::npos) << e.path();
}

// The small blobs a pull holds go to a temporary file once they pass memory_limit: the output is
// the same, a damaged one is still refused, and nothing is left beside OUT.
TEST_P(RegistryTest, PullHoldsSmallBlobsInAFileBeyondItsMemoryLimit) {
  auto reg = open();
  const Document doc = make_checkpoint(40, 1000, 3);  // 40 blobs of 4,000 bytes
  write_checkpoint(doc, path("a.msgpack"));
  reg->register_checkpoint(path("a.msgpack"), named("m"));
  fs::create_directories(path("out"));
  mr::PullOptions o;
  o.memory_limit = 64 << 10;
  const auto r = reg->pull(mr::parse_ref("m/1"), path("out") / "a.safetensors", o);
  EXPECT_EQ(r.spilled_bytes, 40u * 4000);
  expect_same_tensors(doc, ckpt::read_document(path("out") / "a.safetensors"));
  EXPECT_EQ(std::distance(fs::directory_iterator(path("out")), fs::directory_iterator()), 1);
  EXPECT_EQ(reg->pull(mr::parse_ref("m/1"), path("out") / "b.safetensors").spilled_bytes, 0u);
  // One blob damaged: refused while spilled too.
  const std::string d = mr::detail::blake2b256_hex(doc.find_tensor_path("model/state/layer7.weight")->bytes());
  const fs::path blob = reg->store() / "blobs" / d.substr(0, 2) / d;
  fs::permissions(blob, fs::perms::owner_write, fs::perm_options::add);
  {
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x01');
  }
  EXPECT_THROW(reg->pull(mr::parse_ref("m/1"), path("out") / "c.safetensors", o), ckpt::IntegrityError);
  EXPECT_FALSE(fs::exists(path("out") / "c.safetensors"));
}

TEST_P(RegistryTest, AliasHistoryRecordsEveryMove) {
  auto reg = open();
  write_checkpoint(make_checkpoint(1, 10, 1), path("a.msgpack"));
  for (int i = 0; i < 3; ++i) reg->register_checkpoint(path("a.msgpack"), named("m"));
  reg->set_alias("m", "production", 1);
  reg->set_alias("m", "production", 3);
  reg->set_alias("m", "production", 2);
  reg->remove_alias("m", "production");
  const auto h = reg->history("m", "production");
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h[0].version, 1);
  EXPECT_FALSE(h[0].previous);
  EXPECT_EQ(h[1].version, 3);
  EXPECT_EQ(h[1].previous, 1);
  EXPECT_EQ(h[2].version, 2);
  EXPECT_EQ(h[2].previous, 3);
  EXPECT_FALSE(h[3].version);
  EXPECT_EQ(h[3].previous, 2);
  for (const auto& m : h) {
    EXPECT_FALSE(m.at.empty());
    EXPECT_NE(m.by.find('@'), std::string::npos);
  }
  EXPECT_THROW(reg->show(mr::parse_ref("m@production")), ckpt::UsageError);
}

TEST_P(RegistryTest, SearchByMetricAndTag) {
  auto reg = open();
  const double acc[] = {0.7, 0.9, 0.8};
  for (int i = 0; i < 3; ++i) {
    write_checkpoint(make_checkpoint(1, 10, i, acc[i]), path("c" + std::to_string(i) + ".msgpack"));
    auto o = named(i == 2 ? "other" : "m");
    o.tags = {{"dataset", i == 0 ? "small" : "full"}};
    reg->register_checkpoint(path("c" + std::to_string(i) + ".msgpack"), o);
  }
  mr::SearchQuery q;
  q.metric = "test_accuracy";
  auto best = reg->search(q);
  ASSERT_EQ(best.size(), 3u);
  EXPECT_EQ(best[0].name, "m");
  EXPECT_EQ(best[0].version, 2);
  EXPECT_EQ(best[1].name, "other");
  q.maximize = false;
  EXPECT_EQ(reg->search(q).front().version, 1);
  q.tags = {{"dataset", "full"}};
  q.maximize = true;
  q.name = "m";
  auto tagged = reg->search(q);
  ASSERT_EQ(tagged.size(), 1u);
  EXPECT_EQ(tagged[0].version, 2);
  reg->set_tag(mr::parse_ref("m/1"), "dataset", "full");
  EXPECT_EQ(reg->search(q).size(), 2u);
  reg->remove_tag(mr::parse_ref("m/1"), "dataset");
  EXPECT_THROW(reg->remove_tag(mr::parse_ref("m/1"), "dataset"), ckpt::UsageError);
}

TEST_P(RegistryTest, DeleteThenGcRemovesOnlyUnsharedBlobs) {
  auto reg = open();
  Document d = make_checkpoint(4, 1000, 1);
  write_checkpoint(d, path("v1.msgpack"));
  auto o = named("m");
  o.aliases = {"production"};
  reg->register_checkpoint(path("v1.msgpack"), o);
  d.group("model").group("state").set_tensor("layer0.weight",
                                                ckpt::Tensor::from<float>(ckpt::DType::f32, {1000}, std::vector<float>(1000, 2.f)));
  write_checkpoint(d, path("v2.msgpack"));
  reg->register_checkpoint(path("v2.msgpack"), named("m"));
  EXPECT_EQ(count_blobs(reg->store()), 5u);
  reg->delete_version("m", 1);
  EXPECT_THROW(reg->delete_version("m", 1), ckpt::UsageError);
  EXPECT_THROW(reg->pull(mr::parse_ref("m/1"), path("x.msgpack")), ckpt::UsageError);
  EXPECT_FALSE(fs::exists(path("x.msgpack")));
  // The alias went with the version, recorded.
  EXPECT_THROW(reg->show(mr::parse_ref("m@production")), ckpt::UsageError);
  EXPECT_EQ(reg->history("m", "production").back().reason, "version 1 deleted");
  EXPECT_EQ(reg->list_versions("m").size(), 1u);
  EXPECT_EQ(reg->list_versions("m", true).size(), 2u);

  mr::GcOptions dry;
  dry.dry_run = true;
  auto preview = reg->gc(dry);
  EXPECT_EQ(preview.deleted_removed, 1u);
  EXPECT_EQ(preview.blobs_removed, 1u);
  EXPECT_EQ(count_blobs(reg->store()), 5u);
  auto rep = reg->gc();
  EXPECT_EQ(rep.deleted_removed, 1u);
  EXPECT_EQ(rep.blobs_removed, 1u);
  EXPECT_EQ(rep.bytes_removed, 4000u);
  EXPECT_EQ(count_blobs(reg->store()), 4u);
  reg->pull(mr::parse_ref("m/2"), path("v2-back.msgpack"));
  expect_same_tensors(d, ckpt::read_document(path("v2-back.msgpack")));
  // Numbers are never reused.
  EXPECT_EQ(reg->register_checkpoint(path("v1.msgpack"), named("m")).version, 3);
}

TEST_P(RegistryTest, DamagedBlobFailsPullNamingTheTensor) {
  auto reg = open();
  write_checkpoint(make_checkpoint(3, 1000, 1), path("a.msgpack"));
  reg->register_checkpoint(path("a.msgpack"), named("m"));
  // Flip one byte of the blob of layer1.
  const auto v = reg->show(mr::parse_ref("m/1"));
  std::string victim;
  for (const auto& e : fs::recursive_directory_iterator(reg->store() / "blobs")) {
    if (!e.is_regular_file()) continue;
    Document one = make_checkpoint(3, 1000, 1);
    const auto& t = *one.find_tensor_path("model/state/layer1.weight");
    if (file_bytes(e.path()) == std::string(reinterpret_cast<const char*>(t.bytes().data()), t.nbytes())) victim = e.path();
  }
  ASSERT_FALSE(victim.empty());
  fs::permissions(victim, fs::perms::owner_write, fs::perm_options::add);
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1234);
    f.put('\x5a');
  }
  try {
    reg->pull(mr::parse_ref("m/1"), path("out.msgpack"));
    FAIL() << "pulled a damaged blob";
  } catch (const ckpt::IntegrityError& e) {
    EXPECT_NE(std::string(e.what()).find("model/state/layer1.weight"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path("out.msgpack")));

  // A truncated blob likewise.
  fs::resize_file(victim, 10);
  EXPECT_THROW(reg->pull(mr::parse_ref("m/1"), path("out.msgpack")), ckpt::IntegrityError);
  EXPECT_FALSE(fs::exists(path("out.msgpack")));

  const auto check = reg->verify(mr::parse_ref("m/1"));
  ASSERT_EQ(check.problems.size(), 1u);
  EXPECT_NE(check.problems[0].find("layer1.weight"), std::string::npos);
  EXPECT_EQ(check.blobs_set_aside, 1u);
  EXPECT_FALSE(fs::exists(victim));
}

TEST_P(RegistryTest, UnknownNamesAliasesVersionsAreClearErrors) {
  auto reg = open();
  write_checkpoint(make_checkpoint(1, 10, 1), path("a.msgpack"));
  reg->register_checkpoint(path("a.msgpack"), named("m"));
  auto message = [&](auto f) {
    try {
      f();
    } catch (const ckpt::UsageError& e) {
      return std::string(e.what());
    }
    return std::string("(no UsageError)");
  };
  EXPECT_NE(message([&] { reg->show(mr::parse_ref("nope")); }).find("no model named 'nope'"), std::string::npos);
  EXPECT_NE(message([&] { reg->show(mr::parse_ref("m@staging")); }).find("no alias 'staging'"), std::string::npos);
  EXPECT_NE(message([&] { reg->show(mr::parse_ref("m/7")); }).find("no version 7"), std::string::npos);
  EXPECT_NE(message([&] { reg->set_alias("m", "prod", 9); }).find("no version 9"), std::string::npos);
  EXPECT_NE(message([&] { reg->history("m", "prod"); }).find("never had an alias"), std::string::npos);
  EXPECT_NE(message([&] { mr::parse_ref("m/x"); }).find("must be a number"), std::string::npos);
  EXPECT_NE(message([&] { mr::parse_ref("bad name"); }).find("may hold only"), std::string::npos);
  EXPECT_NE(message([&] { reg->register_checkpoint(path("missing.msgpack"), named("m")); }).find("no such file"),
            std::string::npos);
  auto o = named("m");
  o.parent = "m@nothing";
  EXPECT_THROW(reg->register_checkpoint(path("a.msgpack"), o), ckpt::UsageError);
  // Nothing was registered by the refused calls.
  EXPECT_EQ(reg->list_versions("m").size(), 1u);
  EXPECT_EQ(reg->show(mr::parse_ref("m")).version, 1);
}

TEST_P(RegistryTest, OlderSchemaIsMigratedNewerIsRefused) {
  // A registry as the first schema made it (this build's code only runs on the newest schema,
  // so the old one stays empty until it is migrated).
  EXPECT_EQ(mr::detail::open_at_schema(uri_, 1)->schema_version(), 1);
  auto reg = open(Open::existing);
  EXPECT_EQ(reg->schema_version(), mr::kSchemaVersion);
  write_checkpoint(make_checkpoint(1, 10, 1), path("a.msgpack"));
  reg->register_checkpoint(path("a.msgpack"), named("m"));
  EXPECT_EQ(reg->show(mr::parse_ref("m/1")).status, mr::Status::ready);
  // A registry from the future, made with the backend's own client.
  reg.reset();
  const std::string bump = "UPDATE schema_version SET version = 99";
  std::string out;
  if (GetParam() == "sqlite") {
    ASSERT_EQ(run("sqlite3 " + path("registry.db").string() + " '" + bump + "'", out), 0) << out;
  } else {
    const std::string db = uri_.substr(std::strlen("postgresql:///"), uri_.find('?') - std::strlen("postgresql:///"));
    const std::string err = pg_cluster().psql(db, bump);
    ASSERT_TRUE(err.empty()) << err;
  }
  try {
    mr::ModelRegistry::open(uri_);
    FAIL() << "opened a registry of schema 99";
  } catch (const ckpt::UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 99"), std::string::npos) << e.what();
  }
}

// A PostgreSQL registry names its store folder once; later URIs may leave it out.
TEST_P(RegistryTest, StoreFolderIsNamedOnceForPostgresql) {
  if (GetParam() == "sqlite") {
    EXPECT_EQ(open()->store(), path("registry.store"));  // beside the database
    return;
  }
  const std::string bare = uri_.substr(0, uri_.find("&store="));
  try {
    mr::ModelRegistry::open(bare, Open::create);
    FAIL() << "a PostgreSQL registry without a store folder";
  } catch (const ckpt::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("?store=/folder"), std::string::npos) << e.what();
  }
  // Nothing was made: the same URI still finds no registry.
  EXPECT_THROW(mr::ModelRegistry::open(uri_, Open::existing), ckpt::UsageError);
  EXPECT_EQ(open()->store(), path("store"));
  EXPECT_EQ(mr::ModelRegistry::open(bare)->store(), path("store"));
}

// Schema 5 drops schema 3's keyed XXH3 index and schema 4's per-tensor XXH3: versions
// registered before are still pulled and verified (with BLAKE2b).
TEST_P(RegistryTest, MigrationFiveDropsTheXxh3IndexAndKeepsVersions) {
  const Document doc = make_checkpoint(2, 500, 9);
  write_checkpoint(doc, path("a.msgpack"));
  mr::detail::open_at_schema(uri_, 4)->register_checkpoint(path("a.msgpack"), named("m"));
  auto reg = open();
  EXPECT_EQ(reg->schema_version(), 5);
  const auto r = reg->pull(mr::parse_ref("m/1"), path("y.msgpack"));
  EXPECT_TRUE(r.blake2b_checked);
  expect_same_tensors(doc, ckpt::read_document(path("y.msgpack")));
  const std::string probe = "SELECT COUNT(*) FROM fast_digests";
  std::string out;
  if (GetParam() == "sqlite") {
    EXPECT_NE(run("sqlite3 " + path("registry.db").string() + " '" + probe + "' 2>&1", out), 0) << out;
  } else {
    const std::string db = uri_.substr(std::strlen("postgresql:///"), uri_.find('?') - std::strlen("postgresql:///"));
    EXPECT_FALSE(pg_cluster().psql(db, probe).empty());
  }
}

TEST_P(RegistryTest, EightProcessesRegisterOneNameWithoutGapsOrDuplicates) {
  constexpr int kProcesses = 8, kEach = 20;
  open();  // created before the race, as a team's registry would be
  for (int p = 0; p < kProcesses; ++p)
    write_checkpoint(make_checkpoint(2, 256, 100 + p), path("p" + std::to_string(p) + ".msgpack"));
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int rc = 0;
      try {
        auto reg = mr::ModelRegistry::open(uri_);
        for (int i = 0; i < kEach; ++i) {
          auto o = named("shared");
          o.fsync = true;
          o.tags = {{"writer", std::to_string(p)}};
          reg->register_checkpoint(path("p" + std::to_string(p) + ".msgpack"), o);
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: %s\n", p, e.what());
        rc = 1;
      }
      std::fflush(stderr);
      ::_exit(rc);
    }
    children.push_back(pid);
  }
  for (pid_t c : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(c, &status, 0), c);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a registrant failed";
  }
  auto reg = open(Open::existing);
  const auto versions = reg->list_versions("shared", true);
  ASSERT_EQ(versions.size(), size_t{kProcesses * kEach});
  std::map<std::string, int> per_writer;
  for (size_t i = 0; i < versions.size(); ++i) {
    EXPECT_EQ(versions[i].version, static_cast<int64_t>(i + 1));
    EXPECT_EQ(versions[i].status, mr::Status::ready);
  }
  for (int64_t v = 1; v <= kProcesses * kEach; ++v) {
    const auto info = reg->show(mr::Ref{"shared", v, std::nullopt});
    ASSERT_EQ(info.tags.size(), 1u);
    per_writer[info.tags[0].second]++;
    EXPECT_TRUE(reg->verify(mr::Ref{"shared", v, std::nullopt}).problems.empty()) << v;
  }
  for (int p = 0; p < kProcesses; ++p) EXPECT_EQ(per_writer[std::to_string(p)], kEach) << p;
}

// gc runs over and over while registrants work: it waits for them (the store's lock) and never
// removes a blob a version in progress or a READY one needs.
TEST_P(RegistryTest, GcDuringRegistrationsRemovesNothingInUse) {
  constexpr int kProcesses = 4, kEach = 8;
  open();
  for (int p = 0; p < kProcesses; ++p)
    for (int i = 0; i < kEach; ++i)
      write_checkpoint(make_checkpoint(3, 2048, 1000 + (p * kEach + i) * 10), path("g" + std::to_string(p) + "-" + std::to_string(i) + ".msgpack"));
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int rc = 0;
      try {
        auto reg = mr::ModelRegistry::open(uri_);
        for (int i = 0; i < kEach; ++i)
          reg->register_checkpoint(path("g" + std::to_string(p) + "-" + std::to_string(i) + ".msgpack"), named("g"));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: %s\n", p, e.what());
        rc = 1;
      }
      ::_exit(rc);
    }
    children.push_back(pid);
  }
  auto reg = open(Open::existing);
  size_t runs = 0, removed_versions = 0;
  for (size_t left = children.size(); left > 0;) {
    const auto rep = reg->gc();
    ++runs;
    removed_versions += rep.pending_removed + rep.deleted_removed;
    for (auto& c : children) {
      int status = 0;
      if (c > 0 && ::waitpid(c, &status, WNOHANG) == c) {
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a registrant failed";
        c = -1;
        --left;
      }
    }
  }
  EXPECT_GE(runs, 1u);
  EXPECT_EQ(removed_versions, 0u);
  const auto versions = reg->list_versions("g", true);
  ASSERT_EQ(versions.size(), size_t{kProcesses * kEach});
  for (const auto& v : versions) {
    EXPECT_EQ(v.status, mr::Status::ready);
    EXPECT_TRUE(reg->verify(mr::Ref{"g", v.version, std::nullopt}).problems.empty()) << v.version;
  }
  EXPECT_EQ(reg->gc().blobs_removed, 0u);
  EXPECT_EQ(count_blobs(reg->store()), size_t{kProcesses * kEach * 3});
}

TEST_P(RegistryTest, KilledRegistrantLeavesPendingThatGcCleans) {
  open();
  write_checkpoint(make_checkpoint(1, 10, 1), path("kept.msgpack"));
  open()->register_checkpoint(path("kept.msgpack"), named("kept"));
  write_checkpoint(make_checkpoint(40, 4096, 500), path("big.msgpack"));
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    try {
      auto reg = mr::ModelRegistry::open(uri_);
      auto o = named("victim");
      // Stops itself half-way through storing blobs; the parent kills it there.
      o.progress = [](uint64_t done, uint64_t total) {
        if (done * 2 >= total) ::raise(SIGSTOP);
      };
      reg->register_checkpoint(path("big.msgpack"), o);
    } catch (...) {
    }
    ::_exit(3);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, WUNTRACED), pid);
  ASSERT_TRUE(WIFSTOPPED(status));
  ::kill(pid, SIGKILL);
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));

  auto reg = open(Open::existing);
  const auto left = reg->list_versions("victim");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].status, mr::Status::pending);
  EXPECT_THROW(reg->pull(mr::parse_ref("victim/1"), path("x.msgpack")), ckpt::UsageError);
  EXPECT_GE(count_blobs(reg->store()), 20u);
  const auto rep = reg->gc();
  EXPECT_EQ(rep.pending_removed, 1u);
  EXPECT_GE(rep.blobs_removed, 19u);
  // Only the kept model's blob is left, and it still pulls.
  EXPECT_EQ(count_blobs(reg->store()), 1u);
  EXPECT_TRUE(reg->list_versions("victim", true).empty());
  reg->pull(mr::parse_ref("kept"), path("kept-back.msgpack"));
  size_t temporaries = 0;
  for (const auto& e : fs::directory_iterator(reg->store() / "tmp")) (void)e, ++temporaries;
  EXPECT_EQ(temporaries, 0u);
}

TEST_P(RegistryTest, RequiredSignaturesAreCheckedOnRegisterAndPull) {
  auto reg = open();
  auto [secret, pub] = ckpt::generate_key_pair();
  reg->require_signed(pub);
  write_checkpoint(make_checkpoint(2, 100, 1), path("a.msgpack"));
  EXPECT_THROW(reg->register_checkpoint(path("a.msgpack"), named("m")), ckpt::IntegrityError);
  EXPECT_THROW(reg->list_versions("m"), ckpt::UsageError);  // nothing registered, not even the model
  ckpt::SignOptions so;
  so.fsync = false;
  ckpt::sign_file(path("a.msgpack"), secret, so);
  const auto v = reg->register_checkpoint(path("a.msgpack"), named("m"));
  EXPECT_EQ(v.signer, pub.id());
  const auto r = reg->pull(mr::parse_ref("m/1"), path("out.safetensors"));
  EXPECT_TRUE(r.signature_checked);
  // Another key is refused at pull.
  auto [other_secret, other] = ckpt::generate_key_pair();
  mr::PullOptions po;
  po.require_signed = other;
  EXPECT_THROW(reg->pull(mr::parse_ref("m/1"), path("out2.msgpack"), po), ckpt::IntegrityError);
  EXPECT_FALSE(fs::exists(path("out2.msgpack")));
}

// A caller's --require-signed adds a key: a version signed by another key than the registry's
// is refused; init with another key does not replace the registry's.
TEST_P(RegistryTest, ACallersKeyNeverReplacesTheRegistrysKey) {
  auto reg = open();
  auto [k1_secret, k1] = ckpt::generate_key_pair();
  auto [k2_secret, k2] = ckpt::generate_key_pair();
  reg->require_signed(k1);
  reg->require_signed(k1);  // the same key again changes nothing
  EXPECT_THROW(reg->require_signed(k2), ckpt::UsageError);
  EXPECT_EQ(reg->required_key()->id(), k1.id());
  write_checkpoint(make_checkpoint(2, 100, 1), path("a.msgpack"));
  ckpt::SignOptions so;
  so.fsync = false;
  ckpt::sign_file(path("a.msgpack"), k2_secret, so);
  auto o = named("m");
  o.require_signed = k2;
  EXPECT_THROW(reg->register_checkpoint(path("a.msgpack"), o), ckpt::IntegrityError);
  EXPECT_THROW(reg->list_versions("m"), ckpt::UsageError);
  // Signed by the registry's key, the extra key is still required.
  ckpt::sign_file(path("a.msgpack"), k1_secret, so);
  EXPECT_THROW(reg->register_checkpoint(path("a.msgpack"), o), ckpt::IntegrityError);
  EXPECT_EQ(reg->register_checkpoint(path("a.msgpack"), named("m")).signer, k1.id());
  mr::PullOptions po;
  po.require_signed = k1;
  EXPECT_TRUE(reg->pull(mr::parse_ref("m/1"), path("out.msgpack"), po).signature_checked);
}

// A store belongs to the registry that made it: another registry opened on it is refused (its
// gc would delete the first registry's blobs), and so is the registry on a store without its id.
TEST_P(RegistryTest, AStoreIsTiedToItsDatabase) {
  auto a = open();
  write_checkpoint(make_checkpoint(2, 1000, 1), path("a.msgpack"));
  a->register_checkpoint(path("a.msgpack"), named("m"));
  std::string other;
  if (GetParam() == "sqlite") {
    other = "sqlite://" + path("b.db").string() + "?store=" + a->store().string();
  } else {
    static int n = 0;
    const std::string db = "regb_" + std::to_string(::getpid()) + "_" + std::to_string(n++);
    ASSERT_EQ(pg_cluster().create_database(db), "");
    other = pg_cluster().uri(db) + "&store=" + a->store().string();
  }
  try {
    mr::ModelRegistry::open(other, Open::create);
    FAIL() << "a second registry opened the first one's store";
  } catch (const ckpt::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("belongs to another registry"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(a->verify(mr::parse_ref("m/1")).problems.empty());
  // The registry on a folder that is not its store (here: its store without the id).
  const fs::path store = a->store();
  a.reset();
  ASSERT_TRUE(fs::remove(store / ".store-id"));
  EXPECT_THROW(open(Open::existing), ckpt::UsageError);
}

// Links inside the store are never followed: gc removes nothing outside it, registrations write
// nothing outside it, and a file in the wrong blobs/XX folder is not taken for a blob.
TEST_P(RegistryTest, GcAndRegistrationsNeverFollowLinksOutOfTheStore) {
  auto reg = open();
  write_checkpoint(make_checkpoint(1, 1000, 1), path("a.msgpack"));
  const fs::path store = reg->store(), outside = path("outside");
  fs::create_directories(outside);
  const std::string name(64, 'a'), misplaced = "ab" + std::string(62, '0');
  std::ofstream(outside / name) << "not the registry's";
  std::ofstream(outside / "precious") << "not the registry's";
  // blobs/aa -> outside, and a blob-named file in the wrong folder.
  fs::create_directory_symlink(outside, store / "blobs" / "aa");
  fs::create_directories(store / "blobs" / "cd");
  std::ofstream(store / "blobs" / "cd" / misplaced) << "x";
  const auto rep = reg->gc();
  EXPECT_EQ(rep.blobs_removed, 0u);
  EXPECT_TRUE(fs::exists(outside / name));
  EXPECT_TRUE(fs::exists(store / "blobs" / "cd" / misplaced));
  // A link in tmp/ is removed, not what it points at.
  fs::create_directory_symlink(outside, store / "tmp" / "x.1.2");
  reg->gc();
  EXPECT_TRUE(fs::exists(outside / "precious"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(store / "tmp" / "x.1.2")));
  // tmp/ itself a link: refused, nothing removed.
  reg.reset();
  fs::remove(store / "tmp");
  fs::create_directory_symlink(outside, store / "tmp");
  EXPECT_THROW(open(), ckpt::IoError);
  EXPECT_TRUE(fs::exists(outside / "precious"));
  fs::remove(store / "tmp");
  // .lock a link to a file elsewhere: not opened through it.
  reg = open();
  fs::remove(store / ".lock");
  fs::create_symlink(outside / "lockfile", store / ".lock");
  EXPECT_THROW(reg->gc(), ckpt::IoError);
  EXPECT_FALSE(fs::exists(outside / "lockfile"));
}

// The store's folders are held open (O_NOFOLLOW) from the moment the store is opened: blobs/ or
// tmp/ swapped for a link afterwards is not followed (what is written lands in the store's own
// folders), and a link in place of blobs/ab/ is refused.
TEST_P(RegistryTest, StoreFoldersSwappedForLinksAfterOpeningAreNotFollowed) {
  auto reg = open();
  const fs::path store = reg->store(), outside = path("outside");
  fs::create_directories(outside);
  mr::detail::BlobStore bs(store);
  for (const char* sub : {"blobs", "tmp"}) {
    fs::rename(store / sub, store / (std::string(sub) + ".real"));
    fs::create_directory_symlink(outside, store / sub);
  }
  const std::vector<std::byte> bytes(1000, std::byte{9});
  const std::string d = mr::detail::blake2b256_hex(bytes);
  EXPECT_EQ(bs.put(d, bytes, mr::detail::BlobStore::Source::own), 1000u);
  EXPECT_TRUE(fs::is_empty(outside));
  EXPECT_TRUE(fs::is_regular_file(store / "blobs.real" / d.substr(0, 2) / d));
  EXPECT_EQ(bs.get(d, 1000, "t")->bytes().size(), 1000u);
  EXPECT_EQ(bs.list().size(), 1u);
  // The store id is written the same way (in tmp/, then linked into the root).
  bs.publish_once(".probe", "x\n");
  bs.publish_once(".probe", "y\n");  // the first one stands
  EXPECT_EQ(file_bytes(store / ".probe"), "x\n");
  EXPECT_TRUE(fs::is_empty(outside));
  EXPECT_TRUE(fs::is_empty(store / "tmp.real"));
  for (const char* sub : {"blobs", "tmp"}) {
    fs::remove(store / sub);
    fs::rename(store / (std::string(sub) + ".real"), store / sub);
  }
  // blobs/ab -> outside, made after the store was opened.
  std::vector<std::byte> other(1000, std::byte{10});
  std::string e = mr::detail::blake2b256_hex(other);
  for (uint8_t k = 11; e.compare(0, 2, d, 0, 2) == 0; ++k) {
    other.assign(1000, std::byte{k});
    e = mr::detail::blake2b256_hex(other);
  }
  fs::create_directory_symlink(outside, store / "blobs" / e.substr(0, 2));
  EXPECT_THROW(bs.put(e, other, mr::detail::BlobStore::Source::own), ckpt::IoError);
  EXPECT_TRUE(fs::is_empty(outside));
  EXPECT_TRUE(fs::is_empty(store / "tmp"));
}

// A store that holds blobs but no store id, under a database that records none (a registry made
// before stores had ids, or another registry's store) is refused until adopted explicitly.
TEST_P(RegistryTest, AStoreMadeBeforeStoreIdsIsAdoptedOnlyWhenAsked) {
  auto reg = open();
  write_checkpoint(make_checkpoint(2, 1000, 1), path("a.msgpack"));
  reg->register_checkpoint(path("a.msgpack"), named("m"));
  const fs::path store = reg->store();
  reg.reset();
  ASSERT_TRUE(fs::remove(store / ".store-id"));
  ASSERT_EQ(run_sql("DELETE FROM settings WHERE key = 'store_id'"), "");
  try {
    open(Open::existing);
    FAIL() << "a store without an id was taken silently";
  } catch (const ckpt::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("init --adopt-store"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(store / ".store-id"));
  mr::ModelRegistry::open_adopting_store(uri_).reset();
  EXPECT_TRUE(fs::exists(store / ".store-id"));
  reg = open(Open::existing);
  reg->pull(mr::parse_ref("m/1"), path("back.msgpack"));
  expect_same_tensors(make_checkpoint(2, 1000, 1), ckpt::read_document(path("back.msgpack")));
}

TEST_P(RegistryTest, NaNMetricsAreKept) {
  auto reg = open();
  write_checkpoint(make_checkpoint(1, 100, 1, std::numeric_limits<double>::quiet_NaN()), path("a.msgpack"));
  reg->register_checkpoint(path("a.msgpack"), named("m"));
  const auto v = reg->show(mr::parse_ref("m/1"));
  bool found = false;
  for (const auto& [k, x] : v.metrics)
    if (k == "test_accuracy") {
      found = true;
      EXPECT_TRUE(std::isnan(x));
    }
  EXPECT_TRUE(found);
}

// pull writes as every save does (core's atomic save): a FIFO or a link to a device at OUT is
// refused and left as it was.
TEST_P(RegistryTest, PullRefusesTargetsThatAreNotRegularFiles) {
  auto reg = open();
  write_checkpoint(make_checkpoint(1, 100, 1), path("a.msgpack"));
  reg->register_checkpoint(path("a.msgpack"), named("m"));
  ASSERT_EQ(::mkfifo(path("fifo.msgpack").c_str(), 0600), 0);
  EXPECT_THROW(reg->pull(mr::parse_ref("m/1"), path("fifo.msgpack")), ckpt::UsageError);
  EXPECT_EQ(fs::symlink_status(path("fifo.msgpack")).type(), fs::file_type::fifo);
  fs::create_symlink("/dev/null", path("null.msgpack"));
  EXPECT_THROW(reg->pull(mr::parse_ref("m/1"), path("null.msgpack")), ckpt::UsageError);
  EXPECT_TRUE(fs::is_symlink(path("null.msgpack")));
  reg->pull(mr::parse_ref("m/1"), path("ok.msgpack"));
  EXPECT_TRUE(fs::is_regular_file(path("ok.msgpack")));
}

TEST_P(RegistryTest, ShardedFolderRegistersAsOneVersion) {
  auto reg = open();
  const Document doc = make_checkpoint(6, 5000, 3);
  write_checkpoint(doc, path("a.safetensors"));
  ckpt::ConvertOptions co;
  co.max_shard_bytes = 45'000;
  co.to = "safetensors";
  co.fsync = false;
  ckpt::convert(path("a.safetensors"), path("sharded"), co);
  const auto v = reg->register_checkpoint(path("sharded"), named("m"));
  EXPECT_EQ(v.tensors, 6u);
  reg->pull(mr::parse_ref("m"), path("whole.safetensors"));
  expect_same_tensors(ckpt::read_document(path("a.safetensors")), ckpt::read_document(path("whole.safetensors")));
}

INSTANTIATE_TEST_SUITE_P(Backends, RegistryTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

// Independent of the backend.

// A test process killed with its cluster running (SIGKILL: nothing of it runs) leaves the
// cluster; the next cluster stops it and removes its folder. SIGTERM stops the server at once.
TEST(PgClusterFixture, ClustersOfKilledTestProcessesAreStoppedAndRemoved) {
  for (const int sig : {SIGKILL, SIGTERM}) {
    SCOPED_TRACE(sig == SIGKILL ? "SIGKILL" : "SIGTERM");
    int fds[2];
    // Close-on-exec: the server the child starts must not hold the pipe open.
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(fds[0]);
      auto* cluster = new PgCluster;  // never destroyed: the process is killed
      const std::string dir = cluster->ok() ? cluster->socket_dir().string() : "";
      if (::write(fds[1], dir.c_str(), dir.size()) < 0) ::_exit(1);
      ::close(fds[1]);
      for (;;) ::pause();
    }
    ::close(fds[1]);
    char buf[4096];
    std::string dir;
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) dir.append(buf, static_cast<size_t>(n));
    ::close(fds[0]);
    ASSERT_FALSE(dir.empty()) << "the child could not start a cluster";
    const pid_t server = PgCluster::postmaster_of(dir);
    ASSERT_GT(server, 0);
    ::kill(child, sig);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status));
    if (sig == SIGTERM) {
      // The handler stopped the server before the process died.
      for (int i = 0; i < 200 && PgCluster::alive(server); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      EXPECT_FALSE(PgCluster::alive(server)) << "the server outlived its test process";
    } else {
      EXPECT_TRUE(PgCluster::alive(server)) << "the server should still run after SIGKILL";
    }
    const auto removed = PgCluster::reap_stale();
    EXPECT_NE(std::find(removed.begin(), removed.end(), fs::path(dir)), removed.end());
    EXPECT_FALSE(fs::exists(dir));
    EXPECT_FALSE(PgCluster::alive(server));
  }
}

TEST(RegistryUri, MalformedUrisAreUsageErrors) {
  for (const char* bad : {"", "sqlite:", "sqlite:/x.db", "sqlite://", "mysql://h/db", "postgresql:/db",
                          "sqlite://x.db?cache=shared", "postgresql:///db?store="})
    EXPECT_THROW(mr::parse_uri(bad), ckpt::UsageError) << bad;
  EXPECT_EQ(mr::parse_uri("sqlite:///tmp/r.db").sqlite_path, "/tmp/r.db");
  EXPECT_EQ(mr::parse_uri("sqlite://rel/r.db").sqlite_path, "rel/r.db");
  const auto pg = mr::parse_uri("postgresql:///reg?host=/tmp/sock&store=/srv/blobs&user=ckpt");
  EXPECT_EQ(pg.conninfo, "postgresql:///reg?host=/tmp/sock&user=ckpt&connect_timeout=15");
  EXPECT_EQ(mr::parse_uri("postgresql://u@h/db?connect_timeout=3").conninfo, "postgresql://u@h/db?connect_timeout=3");
  EXPECT_EQ(pg.store, fs::path("/srv/blobs"));
}

TEST(RegistryUri, PasswordsAreNeverShown) {
  EXPECT_EQ(mr::redact_uri("postgresql://ckpt:s3cret@db.example/reg?store=/srv"), "postgresql://ckpt:***@db.example/reg?store=/srv");
  EXPECT_EQ(mr::redact_uri("postgres://u:p@h/db?password=x&sslmode=require"), "postgres://u:***@h/db?password=***&sslmode=require");
  EXPECT_EQ(mr::redact_uri("postgresql://u@h/db"), "postgresql://u@h/db");
  try {
    mr::parse_uri("postgresql://u:s3cret@h/db?store=");
    FAIL();
  } catch (const ckpt::UsageError& e) {
    EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos) << e.what();
  }
  // A server that cannot be reached: the message names the database without its password.
  try {
    mr::ModelRegistry::open("postgresql://u:s3cret@127.0.0.1:1/db?store=/tmp/x&connect_timeout=2");
    FAIL();
  } catch (const ckpt::Error& e) {
    EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos) << e.what();
  }
}

TEST(RegistrySqlite, ADatabaseThatIsNotARegistryIsRefusedUnchanged) {
  TempDir tmp("model-registry");
  const fs::path db = tmp.path / "other.db";
  std::string out;
  ASSERT_EQ(run("sqlite3 " + db.string() + " 'CREATE TABLE users (id INTEGER, name TEXT)'", out), 0) << out;
  const std::string before = ckpt::file_blake2b(db, nullptr);
  try {
    mr::ModelRegistry::open("sqlite://" + db.string(), mr::ModelRegistry::Open::create);
    FAIL();
  } catch (const ckpt::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("not a ckpt model registry"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("users"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ckpt::file_blake2b(db, nullptr), before);
  EXPECT_FALSE(fs::exists(tmp.path / "other-wal"));
  // Not SQLite at all.
  {
    std::ofstream f(tmp.path / "text.db");
    f << "this is not a database, just some text that is long enough to have a header...............................";
  }
  EXPECT_THROW(mr::ModelRegistry::open("sqlite://" + (tmp.path / "text.db").string()), ckpt::FormatError);
  // Missing, without create: nothing is made.
  EXPECT_THROW(mr::ModelRegistry::open("sqlite://" + (tmp.path / "none.db").string()), ckpt::UsageError);
  EXPECT_FALSE(fs::exists(tmp.path / "none.db"));
}

}  // namespace
}  // namespace ckpt_test
