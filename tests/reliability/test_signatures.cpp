// Signatures through the real program: `ckpt keygen`, `ckpt sign`, `ckpt verify --pubkey`.
// A signed file whose tensors, metadata or signature change fails verification, even when the
// tamperer recomputes the XXH3 hashes of meta/integrity; converting keeps the hashes and says
// the signature must be renewed. For every writable format in the registry.
#include "common.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/signature.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>

using namespace ckpt;
using namespace ckpt::reliability;
using ::testing::HasSubstr;

namespace {

std::string cli(const std::string& args) { return std::string(CKPT_CLI) + " " + args; }

struct Keys {
  TempDir dir{"keys"};
  fs::path key = dir.path / "signer";
  fs::path pub = dir.path / "signer.pub";
  fs::path other_key = dir.path / "other";
  fs::path other_pub = dir.path / "other.pub";
  Keys() {
    EXPECT_EQ(run_command(cli("keygen " + key.string())).code, 0);
    EXPECT_EQ(run_command(cli("keygen " + other_key.string())).code, 0);
  }
};

// Rewrites `path` in its format after `edit` changed its document, recomputing meta/integrity
// as a tamperer who knows the format would: only the signature can tell.
template <class F>
void tamper(const fs::path& path, const std::string& format, F&& edit) {
  LoadOptions lo;
  lo.format = format;
  lo.map = false;
  Document d = read_document(path, lo);
  edit(d);
  if (d.find_group_path("meta/integrity")) add_integrity(d);
  write_document(d, path, {.format = format});
}

Tensor& first_weight(Document& d) {
  Group& state = d.group("model").group("state");
  for (auto& c : state.children())
    if (c.is_tensor() && c.name.ends_with(".weight")) return c.tensor();
  throw std::runtime_error("no weight");
}

class Signatures : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() { keys_ = new Keys(); }
  static void TearDownTestSuite() {
    delete keys_;
    keys_ = nullptr;
  }
  static Keys* keys_;
};
Keys* Signatures::keys_ = nullptr;

TEST_P(Signatures, SignedFileVerifiesAndEveryChangeFailsIt) {
  const std::string name = GetParam();
  const Format format = Registry::global().get(name);
  const Keys& k = *keys_;
  TempDir tmp("sign-" + param_name(name));
  const fs::path path = tmp.path / file_name(format.info());
  Sample s = make_sample(format.info(), 64 << 10, 3);
  write_document(s.doc, path, format);

  auto sign = run_command(cli("sign " + path.string() + " --key " + k.key.string()));
  if (!s.has_integrity) {
    // A format that holds no nested metadata cannot carry a signature; it says so.
    EXPECT_EQ(sign.code, 2) << sign.out;
    EXPECT_THAT(sign.out, HasSubstr("cannot hold"));
    return;
  }
  ASSERT_EQ(sign.code, 0) << sign.out;
  const std::string id = read_public_key(k.pub).id();
  EXPECT_THAT(sign.out, HasSubstr(id));
  auto ok = run_command(cli("verify " + path.string() + " --pubkey " + k.pub.string()));
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_THAT(ok.out, HasSubstr("signature by key " + id + " is valid"));
  auto unchecked = run_command(cli("verify " + path.string()));
  EXPECT_EQ(unchecked.code, 0) << unchecked.out;
  EXPECT_THAT(unchecked.out, HasSubstr("signed by key " + id));
  auto wrong_key = run_command(cli("verify " + path.string() + " --pubkey " + k.other_pub.string()));
  EXPECT_EQ(wrong_key.code, 1) << wrong_key.out;
  EXPECT_THAT(wrong_key.out, HasSubstr("not with the given key"));

  const std::string signed_bytes = read_file(path);
  const PublicKey pub = read_public_key(k.pub);
  // Through the library (what `ckpt verify --pubkey` runs), returning whether the recomputed
  // XXH3 hashes still pass on their own.
  auto expect_rejected = [&](const char* what, auto edit, const char* says) {
    write_file(path, signed_bytes);
    tamper(path, name, edit);
    LoadOptions lo;
    lo.format = name;
    auto reader = open(path, lo);
    SignatureReport r = verify_signature(*reader, pub);
    EXPECT_FALSE(r.ok()) << what;
    EXPECT_THAT(r.problems.empty() ? std::string() : r.problems.front(), HasSubstr(says)) << what;
    return verify(*reader).ok();
  };
  // The XXH3 hashes were recomputed, so only the signature notices these.
  EXPECT_TRUE(expect_rejected("a tensor's byte", [](Document& d) {
    Tensor t = first_weight(d).clone();
    t.mutable_bytes()[5] ^= std::byte{0x10};
    first_weight(d) = t;
  }, "does not match the content"));
  EXPECT_TRUE(expect_rejected("an attribute", [](Document& d) { d.group("trainer").set("generation", 4); },
                              "does not match the content"));
  EXPECT_TRUE(expect_rejected("a tensor renamed", [](Document& d) {
    Group& st = d.group("model").group("state");
    st.add_tensor("renamed", st.find_tensor("gen")->clone());
    st.erase("gen");
  }, "does not match the content"));
  expect_rejected("the signature", [](Document& d) {
    Group& g = d.group("meta").group("signature");
    std::string sig = std::get<std::string>(*g.attribute("signature"));
    sig[3] = sig[3] == 'A' ? 'B' : 'A';
    g.set("signature", sig);
  }, "does not match the content");
  expect_rejected("the key id", [&](Document& d) {
    d.group("meta").group("signature").set("key_id", read_public_key(k.other_pub).id());
  }, "not with the given key");
  expect_rejected("an attribute added to the signature", [](Document& d) {
    d.group("meta").group("signature").set("note", "trust me");
  }, "unexpected attribute");
  expect_rejected("the signature removed", [](Document& d) { d.group("meta").erase("signature"); }, "not signed");
  // And once through the program: exit 1, saying what failed.
  write_file(path, signed_bytes);
  tamper(path, name, [](Document& d) { d.group("trainer").set("generation", 5); });
  auto tampered = run_command(cli("verify " + path.string() + " --pubkey " + k.pub.string()));
  EXPECT_EQ(tampered.code, 1) << tampered.out;
  EXPECT_THAT(tampered.out, HasSubstr("signature: the signature does not match the content"));

  // Signing again with another key replaces the signature and says so.
  write_file(path, signed_bytes);
  auto again = run_command(cli("sign " + path.string() + " --key " + k.other_key.string()));
  EXPECT_EQ(again.code, 0) << again.out;
  EXPECT_THAT(again.out, HasSubstr("replaced the signature by key " + id));
  EXPECT_EQ(run_command(cli("verify " + path.string() + " --pubkey " + k.other_pub.string())).code, 0);
  EXPECT_EQ(run_command(cli("verify " + path.string() + " --pubkey " + k.pub.string())).code, 1);
}

// Formats that hold a whole checkpoint, signature included.
class SignedConversions : public Signatures {};

TEST_P(SignedConversions, KeepTheHashesAndAskToRenewTheSignature) {
  const std::string name = GetParam();
  const Format format = Registry::global().get(name);
  const Keys& k = *keys_;
  Sample s = make_sample(format.info(), 16 << 10, 3);
  TempDir tmp("convsign-" + param_name(name));
  const fs::path path = tmp.path / file_name(format.info());
  write_document(s.doc, path, format);
  ASSERT_EQ(run_command(cli("sign " + path.string() + " --key " + k.key.string())).code, 0);
  // To the next format that can hold the checkpoint (each is a target of one other).
  const auto all = checkpoint_formats();
  const auto here = std::find(all.begin(), all.end(), name);
  ASSERT_NE(here, all.end());
  const std::string to = std::next(here) == all.end() ? all.front() : *std::next(here);
  {
    const Format target = Registry::global().get(to);
    const fs::path out = tmp.path / ("converted-" + file_name(target.info()));
    auto c = run_command(cli("convert " + path.string() + " " + out.string() + " --to " + to));
    ASSERT_EQ(c.code, 0) << c.out;
    EXPECT_THAT(c.out, HasSubstr("renew it with `ckpt sign")) << to;
    auto hashes = run_command(cli("verify " + out.string()));
    EXPECT_EQ(hashes.code, 0) << to << ": " << hashes.out;
    EXPECT_THAT(hashes.out, HasSubstr("match their recorded hashes")) << to;
    auto sig = run_command(cli("verify " + out.string() + " --pubkey " + k.pub.string()));
    EXPECT_EQ(sig.code, 1) << to << ": " << sig.out;
    EXPECT_THAT(sig.out, HasSubstr("not signed")) << to;
    ASSERT_EQ(run_command(cli("sign " + out.string() + " --key " + k.key.string())).code, 0) << to;
    EXPECT_EQ(run_command(cli("verify " + out.string() + " --pubkey " + k.pub.string())).code, 0) << to;
  }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, Signatures, ::testing::ValuesIn(writable_formats()),
                         [](const auto& info) { return param_name(info.param); });
INSTANTIATE_TEST_SUITE_P(CheckpointFormats, SignedConversions, ::testing::ValuesIn(checkpoint_formats()),
                         [](const auto& info) { return param_name(info.param); });

TEST(KeyFiles, KeygenWritesAPrivateSecretKeyAndRefusesToOverwrite) {
  TempDir tmp("keygen");
  const fs::path key = tmp.path / "k";
  auto r = run_command(cli("keygen " + key.string()));
  ASSERT_EQ(r.code, 0) << r.out;
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string before = read_file(key);
  EXPECT_THAT(before, ::testing::StartsWith("ckpt-ed25519-secret-key-v1\n"));
  EXPECT_THAT(read_file(tmp.path / "k.pub"), ::testing::StartsWith("ckpt-ed25519-public-key-v1\n"));
  EXPECT_THAT(r.out, HasSubstr(read_public_key(tmp.path / "k.pub").id()));
  auto again = run_command(cli("keygen " + key.string()));
  EXPECT_EQ(again.code, 2) << again.out;
  EXPECT_THAT(again.out, HasSubstr("--force"));
  EXPECT_EQ(read_file(key), before);
  EXPECT_EQ(run_command(cli("keygen --force " + key.string())).code, 0);
  EXPECT_NE(read_file(key), before);
  // Secret and public halves belong together.
  EXPECT_EQ(read_secret_key(key).public_key().id(), read_public_key(tmp.path / "k.pub").id());
}

TEST(KeyFiles, DamagedOrExposedKeysAreRefusedNamingTheFileAndLine) {
  TempDir tmp("badkeys");
  ASSERT_EQ(run_command(cli("keygen " + (tmp.path / "k").string())).code, 0);
  const std::string secret = read_file(tmp.path / "k");
  const std::string pub = read_file(tmp.path / "k.pub");
  auto message = [](auto f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_THAT(message([&] { parse_public_key("ckpt-ed25519-secret-key-v1\nAAAA\n", "pk"); }), HasSubstr("pk, line 1"));
  EXPECT_THAT(message([&] { parse_public_key("ckpt-ed25519-public-key-v1\n", "pk"); }), HasSubstr("pk, line 2"));
  EXPECT_THAT(message([&] { parse_public_key("ckpt-ed25519-public-key-v1\nAAAA\n", "pk"); }), HasSubstr("pk, line 2"));
  EXPECT_THAT(message([&] { parse_public_key(pub + "extra\n", "pk"); }), HasSubstr("pk, line 3"));
  EXPECT_THAT(message([&] { parse_public_key(std::string(5000, 'x'), "pk"); }), HasSubstr("too long"));
  std::string swapped = secret;
  size_t at = swapped.find('\n') + 10;
  swapped[at] = swapped[at] == 'A' ? 'B' : 'A';
  EXPECT_THAT(message([&] { parse_secret_key(swapped, "sk"); }), HasSubstr("sk, line 2"));
  EXPECT_EQ(message([&] { parse_secret_key(secret, "sk"); }), "no error");

  ::chmod((tmp.path / "k").c_str(), 0644);
  fs::path file = tmp.path / "x.json";
  Sample s = make_sample(Registry::global().get("json").info(), 1024, 1);
  write_document(s.doc, file);
  auto r = run_command(cli("sign " + file.string() + " --key " + (tmp.path / "k").string()));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("0644"));
  write_file(tmp.path / "bad.pub", "ckpt-ed25519-public-key-v1\nnot base64!\n");
  auto v = run_command(cli("verify " + file.string() + " --pubkey " + (tmp.path / "bad.pub").string()));
  EXPECT_EQ(v.code, 2) << v.out;
  EXPECT_THAT(v.out, HasSubstr("bad.pub', line 2"));
}

// What is signed: everything the integrity manifest covers, with BLAKE2b instead of XXH3, and
// neither meta/integrity nor meta/signature.
TEST(SignedMessage, CoversTheManifestButNotTheIntegrityOrSignatureGroups) {
  Document d;
  d.group("meta").set("schema", "x");
  d.group("model").add_tensor("w", Tensor::from<float>(DType::f32, {2}, {1, 2}));
  std::vector<std::pair<std::string, std::string>> digests = {{"model/w", blake2b_hex(d.find_tensor_path("model/w")->bytes())}};
  const std::string m = signed_message(d, digests);
  EXPECT_THAT(m, HasSubstr("T model/w f32 [2] " + digests[0].second));
  EXPECT_EQ(digests[0].second.size(), 64u);
  add_integrity(d);
  d.group("meta").group("signature").set("signature", "anything");
  EXPECT_EQ(signed_message(d, digests), m);
}

}  // namespace
