// Signatures through the real program: `ckpt keygen`, `ckpt sign`, `ckpt verify --pubkey`.
// A signature is FILE.sig beside the file; signing leaves the file's bytes alone. Any change to
// the file (a tensor, an attribute, a name, one byte appended, even with meta/integrity's XXH3
// hashes recomputed by the tamperer) or to the signature file fails verification. Converting
// keeps the hashes and says the signature must be renewed. For every writable format.
#include "common.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/signature.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <xxhash.h>

using namespace ckpt;
using namespace ckpt::reliability;
using ::testing::HasSubstr;

namespace {

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

Tensor& first_tensor(Document& d) {
  std::function<Tensor*(Group&)> find = [&](Group& g) -> Tensor* {
    for (auto& c : g.children()) {
      if (c.is_tensor() && c.tensor().nbytes() > 8 && c.name != "gen") return &c.tensor();
      if (c.is_group())
        if (Tensor* t = find(c.group())) return t;
    }
    return nullptr;
  };
  if (Tensor* t = find(d)) return *t;
  throw std::runtime_error("no tensor");
}

// Replaces `field` in a signature file's JSON text by `value` (raw JSON).
std::string with_field(const std::string& text, const std::string& field, const std::string& value) {
  const size_t k = text.find("\"" + field + "\": ");
  EXPECT_NE(k, std::string::npos) << field;
  const size_t v = k + field.size() + 4;
  const size_t end = text.find_first_of(",\n", v);
  return text.substr(0, v) + value + text.substr(end);
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
  const fs::path sig_path = default_signature_path(path);
  Sample s = make_sample(format.info(), 64 << 10, 3);
  write_document(s.doc, path, format);
  const std::string signed_bytes = read_file(path);

  auto sign = run_command(cli("sign " + path.string() + " --key " + k.key.string()));
  ASSERT_EQ(sign.code, 0) << sign.out;
  const std::string id = read_public_key(k.pub).id();
  EXPECT_THAT(sign.out, HasSubstr(id));
  EXPECT_EQ(read_file(path), signed_bytes) << "signing must not touch the file";
  ASSERT_TRUE(fs::exists(sig_path));
  const std::string sig_text = read_file(sig_path);
  auto ok = run_command(cli("verify " + path.string() + " --pubkey " + k.pub.string()));
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_THAT(ok.out, HasSubstr("signature by key " + id + " is valid"));
  auto unchecked = run_command(cli("verify " + path.string()));
  EXPECT_EQ(unchecked.code, 0) << unchecked.out;
  EXPECT_THAT(unchecked.out, HasSubstr("signed by key " + id));
  auto wrong_key = run_command(cli("verify " + path.string() + " --pubkey " + k.other_pub.string()));
  EXPECT_EQ(wrong_key.code, 1) << wrong_key.out;
  EXPECT_THAT(wrong_key.out, HasSubstr("not with the given key"));

  const PublicKey pub = read_public_key(k.pub);
  // Through the library (what `ckpt verify --pubkey` runs), after restoring the signed state.
  auto problem = [&]() -> std::string {
    LoadOptions lo;
    lo.format = name;
    try {
      auto reader = open(path, lo);
      SignatureReport r = verify_signature(path, *reader, pub);
      return r.ok() ? std::string("(valid)") : r.problems.front();
    } catch (const Error& e) {
      return std::string("(unreadable) ") + e.what();
    }
  };
  auto restore = [&] {
    write_file(path, signed_bytes);
    write_file(sig_path, sig_text);
  };
  // The file: the XXH3 hashes were recomputed, so only the signature notices these.
  auto file_changed = [&](const char* what, auto edit) {
    restore();
    tamper(path, name, edit);
    EXPECT_THAT(problem(), HasSubstr("not the signed ones")) << what;
  };
  file_changed("a tensor's byte", [](Document& d) {
    Tensor t = first_tensor(d).clone();
    t.mutable_bytes()[5] ^= std::byte{0x10};
    first_tensor(d) = t;
  });
  if (format.info().can(CKPT_CAP_ATTRIBUTES))
    file_changed("an attribute", [](Document& d) { d.set("added_by_someone", 4); });
  file_changed("a tensor added", [](Document& d) { d.add_tensor("added_tensor", Tensor::from<float>(DType::f32, {1}, {1})); });
  restore();
  write_file(path, signed_bytes + std::string(1, '\0'));
  // Most formats refuse trailing bytes themselves; for the rest the signature does.
  EXPECT_THAT(problem(), ::testing::AnyOf(HasSubstr("not the signed ones"), HasSubstr("(unreadable)"))) << "a byte appended";
  // The signature file.
  auto sig_changed = [&](const char* what, const std::string& text, const char* says) {
    restore();
    write_file(sig_path, text);
    EXPECT_THAT(problem(), HasSubstr(says)) << what;
  };
  std::string flipped = sig_text;
  const size_t at = flipped.find("\"signature\": \"") + 16;
  flipped[at] = flipped[at] == 'A' ? 'B' : 'A';
  sig_changed("the signature", flipped, "does not match its statement");
  sig_changed("the key id", with_field(sig_text, "key_id", "\"" + read_public_key(k.other_pub).id() + "\""),
              "not with the given key");
  sig_changed("the file size", with_field(sig_text, "file_size", std::to_string(signed_bytes.size() + 1)),
              "does not match its statement");
  sig_changed("the format", with_field(sig_text, "checkpoint_format", name == "json" ? "\"msgpack\"" : "\"json\""),
              "does not match its statement");
  sig_changed("a field added", with_field(sig_text, "tensors", "1, \"note\": \"trust me\""), "unexpected field");
  restore();
  fs::remove(sig_path);
  EXPECT_THAT(problem(), HasSubstr("not signed"));
  // And once through the program: exit 1, saying what failed.
  restore();
  tamper(path, name, [](Document& d) { d.add_tensor("added_tensor", Tensor::from<float>(DType::f32, {1}, {1})); });
  auto tampered = run_command(cli("verify " + path.string() + " --pubkey " + k.pub.string()));
  EXPECT_EQ(tampered.code, 1) << tampered.out;
  EXPECT_THAT(tampered.out, HasSubstr("signature: the file's bytes are not the signed ones"));

  // Signing again with another key replaces the signature and says so.
  restore();
  auto again = run_command(cli("sign " + path.string() + " --key " + k.other_key.string()));
  EXPECT_EQ(again.code, 0) << again.out;
  EXPECT_THAT(again.out, HasSubstr("replaced the signature by key " + id));
  EXPECT_EQ(run_command(cli("verify " + path.string() + " --pubkey " + k.other_pub.string())).code, 0);
  EXPECT_EQ(run_command(cli("verify " + path.string() + " --pubkey " + k.pub.string())).code, 1);
  EXPECT_EQ(read_file(path), signed_bytes);
}

// Conversions write a new file: the signature stays with the old one.
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

// What a reader records as read from other files (meta/@external_references) is format-neutral:
// whichever format holds the record, sign refuses the file naming each reference and verify
// says its hashes do not cover them; a conversion does not carry the record, so the output signs.
TEST(ExternalReferences, AnyFormatsRecordMakesSignRefuseAndVerifyNameThem) {
  const Keys k;
  TempDir tmp("extref");
  for (const std::string name : {"msgpack", "json", "safetensors"}) {
    SCOPED_TRACE(name);
    const Format format = Registry::global().get(name);
    Sample s = make_sample(format.info(), 4 << 10, 2);
    s.doc.group("meta").set("external_references",
                            std::vector<std::string>{"/w -> ../weights.bin:/w", "/g/b -> /etc/hostname"});
    if (s.doc.find_group_path("meta/integrity")) add_integrity(s.doc);
    const fs::path path = tmp.path / ("refs-" + file_name(format.info()));
    write_document(s.doc, path, format);
    const auto sign = run_command(cli("sign " + path.string() + " --key " + k.key.string()));
    EXPECT_NE(sign.code, 0) << sign.out;
    EXPECT_THAT(sign.out, HasSubstr("not signing it"));
    EXPECT_THAT(sign.out, HasSubstr("/w -> ../weights.bin:/w, /g/b -> /etc/hostname"));
    EXPECT_FALSE(fs::exists(default_signature_path(path)));
    const auto checked = run_command(cli("verify " + path.string()));
    EXPECT_EQ(checked.code, 0) << checked.out;
    EXPECT_THAT(checked.out, HasSubstr("NOTE " + path.string() + ": not covered by its hashes or a signature: a "
                                       "reference to another file, /g/b -> /etc/hostname"));
    const fs::path out = tmp.path / ("converted-" + file_name(format.info()));
    const auto c = run_command(cli("convert " + path.string() + " " + out.string()));
    ASSERT_EQ(c.code, 0) << c.out;
    const Document converted = read_document(out);
    const Group* meta = converted.find_group("meta");
    ASSERT_TRUE(meta);
    EXPECT_FALSE(meta->attribute("external_references"));
    const auto resigned = run_command(cli("sign " + out.string() + " --key " + k.key.string()));
    EXPECT_EQ(resigned.code, 0) << resigned.out;
  }
  // A record of another type still counts: a reference is never missed for its spelling.
  Sample s = make_sample(Registry::global().get("msgpack").info(), 4 << 10, 2);
  s.doc.group("meta").set("external_references", "/w -> elsewhere");
  if (s.doc.find_group_path("meta/integrity")) add_integrity(s.doc);
  const fs::path odd = tmp.path / "odd.msgpack";
  write_document(s.doc, odd, Registry::global().get("msgpack"));
  const auto sign = run_command(cli("sign " + odd.string() + " --key " + k.key.string()));
  EXPECT_NE(sign.code, 0) << sign.out;
  EXPECT_THAT(sign.out, HasSubstr("meta/@external_references (a record that is not a list of strings)"));
}

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
  // A FIFO named as a key is refused at once, not waited on.
  const fs::path fifo = tmp.path / "fifo.pub";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto f = run_command("timeout 20 " + cli("verify " + file.string() + " --pubkey " + fifo.string()));
  EXPECT_EQ(f.code, 2) << f.out;
  EXPECT_THAT(f.out, HasSubstr("a FIFO"));
}

// The signed message and the manifest have one reading each: every string is length-prefixed,
// so a name holding a newline cannot pose as another record.
TEST(SignedMessage, EveryFieldIsBoundAndLengthPrefixed) {
  SignedStatement a;
  a.key_id = "k";
  a.format = "pytorch";
  a.file_size = 10;
  a.file_digest = std::string(64, 'a');
  a.manifest_digest = std::string(64, 'b');
  a.tensors = 1;
  a.tensor_bytes = 4;
  const std::string m = signed_message(a);
  EXPECT_THAT(m, HasSubstr("format 7:pytorch\n"));
  auto differs = [&](auto change) {
    SignedStatement b = a;
    change(b);
    return signed_message(b) != m;
  };
  EXPECT_TRUE(differs([](SignedStatement& b) { b.key_id = "j"; }));
  EXPECT_TRUE(differs([](SignedStatement& b) { b.format = "json"; }));
  EXPECT_TRUE(differs([](SignedStatement& b) { b.file_size = 11; }));
  EXPECT_TRUE(differs([](SignedStatement& b) { b.file_digest[0] = 'c'; }));
  EXPECT_TRUE(differs([](SignedStatement& b) { b.manifest_digest[0] = 'c'; }));
  EXPECT_TRUE(differs([](SignedStatement& b) { b.tensors = 2; }));
  EXPECT_TRUE(differs([](SignedStatement& b) { b.tensor_bytes = 5; }));
  EXPECT_TRUE(differs([](SignedStatement& b) { b.format = "pytorch\nfile 10"; }));
}

TEST(Manifest, ANameHoldingANewlineCannotForgeAnotherRecord) {
  Document forged, plain;
  forged.set("format string 2:pt\nA format_version", int64_t{1});
  plain.set("format", "pt");
  plain.set("format_version", int64_t{1});
  // ckpt 0.1's encoding read both documents as the same manifest.
  EXPECT_EQ(canonical_manifest(forged, {}, ManifestEncoding::v1), canonical_manifest(plain, {}, ManifestEncoding::v1));
  EXPECT_NE(canonical_manifest(forged, {}), canonical_manifest(plain, {}));
  // Hashes recorded for one do not pass for the other.
  add_integrity(plain);
  Document swapped = forged;
  swapped.group("meta").add_group("integrity") = *plain.find_group_path("meta/integrity");
  EXPECT_FALSE(verify_document(swapped).ok());
  EXPECT_TRUE(verify_document(plain).ok());
}

TEST(Manifest, RecordsOfCkpt01StillVerifyAndNothingRidesAlongInTheRecord) {
  Document d;
  d.group("meta").set("schema", "x");
  d.group("model").add_tensor("w", Tensor::from<float>(DType::f32, {2}, {1, 2}));
  add_integrity(d);
  EXPECT_TRUE(verify_document(d).ok());
  // As ckpt 0.1 wrote it: the v1 manifest and no manifest_encoding.
  Document old = d;
  Group& integ = *old.group("meta").find_group("integrity");
  integ.erase_attribute("manifest_encoding");
  const std::string hash = std::get<std::vector<std::string>>(*integ.attribute("digests"))[0];
  const std::string v1 = canonical_manifest(old, {{"model/w", hash}}, ManifestEncoding::v1);
  integ.set("manifest", hash_hex(XXH3_64bits(v1.data(), v1.size())));
  EXPECT_TRUE(verify_document(old).ok());
  // A tensor or an attribute slipped into the record is a finding.
  Document extra = d;
  extra.group("meta").group("integrity").add_tensor("w", Tensor::from<float>(DType::f32, {1}, {1}));
  EXPECT_FALSE(verify_document(extra).ok());
  Document attr = d;
  attr.group("meta").group("integrity").set("note", "trust me");
  EXPECT_FALSE(verify_document(attr).ok());
}

}  // namespace
