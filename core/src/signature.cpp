#include "atomic_file.hpp"
#include "atomic_write.hpp"

#include <ckpt/convert.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/format_io.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/signature.hpp>

#include <sodium.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt {

namespace {

constexpr const char* kSecretHeader = "ckpt-ed25519-secret-key-v1";
constexpr const char* kPublicHeader = "ckpt-ed25519-public-key-v1";
constexpr const char* kMessageHeader = "ckpt-signature-v1 ed25519 blake2b-256\n";
// A key file is two short lines; anything much longer is not one.
constexpr size_t kMaxKeyFileBytes = 4096;

void ensure_sodium() {
  static const int rc = sodium_init();
  if (rc < 0) throw Error("libsodium could not be initialised");
}

std::string to_base64(const unsigned char* bin, size_t n) {
  std::string out(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), bin, n, sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

// Decodes exactly `out.size()` bytes from the whole of `text`; false on anything else.
bool from_base64(std::string_view text, std::span<unsigned char> out) {
  size_t n = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &n, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0)
    return false;
  return n == out.size() && end == text.data() + text.size();
}

std::string hex(const unsigned char* p, size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), p, n);
  out.pop_back();
  return out;
}

// The key line of a two-line key file, after checking the header; FormatError otherwise.
std::string_view key_line(std::string_view text, const char* header, const std::string& source) {
  if (text.size() > kMaxKeyFileBytes)
    throw FormatError(source + ": " + std::to_string(text.size()) + " bytes is too long for a key file");
  size_t nl = text.find('\n');
  std::string_view first = text.substr(0, nl);
  if (first != header)
    throw FormatError(source + ", line 1: expected \"" + std::string(header) + "\"");
  if (nl == std::string_view::npos) throw FormatError(source + ": the key line is missing");
  std::string_view rest = text.substr(nl + 1);
  size_t nl2 = rest.find('\n');
  std::string_view line = rest.substr(0, nl2);
  if (nl2 != std::string_view::npos && nl2 + 1 != rest.size())
    throw FormatError(source + ", line 3: unexpected text after the key");
  return line;
}

std::string read_small_file(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError("cannot open '" + path.string() + "': " + std::strerror(errno));
  std::string out;
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      throw IoError("cannot read '" + path.string() + "': " + std::strerror(e));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxKeyFileBytes) break;
  }
  ::close(fd);
  return out;
}

void write_key_file(const fs::path& path, const std::string& text, mode_t mode, bool overwrite) {
  std::error_code ec;
  if (!overwrite && fs::symlink_status(path, ec).type() != fs::file_type::not_found)
    throw UsageError("'" + path.string() + "' exists; not replacing a key file (use --force)");
  detail::AtomicFile file(path);
  int fd = ::open(file.temp_path().c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  auto fail = [&](const char* what) {
    int e = errno;
    if (fd >= 0) ::close(fd);
    throw IoError(std::string(what) + " '" + file.temp_path().string() + "': " + std::strerror(e));
  };
  if (fd < 0) fail("cannot open");
  // Restricted before the key is in it, whatever the umask.
  if (::fchmod(fd, mode) != 0) fail("cannot set the permissions of");
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot write");
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    fd = -1;
    fail("cannot close");
  }
  file.commit(true);
}

bool in_signed_scope(const std::string& path) {
  return path.rfind("meta/integrity/", 0) != 0 && path.rfind(std::string(kSignaturePath) + "/", 0) != 0;
}

struct Recorded {
  std::string key_id;
  std::array<unsigned char, crypto_sign_BYTES> signature{};
  std::vector<std::string> problems;
};

// Reads meta/signature strictly: exactly its four string attributes and nothing else, so that
// nothing unsigned can ride along in it.
Recorded read_recorded(const Group& g) {
  Recorded r;
  const std::string where = kSignaturePath;
  auto str = [&](const char* name) -> std::string {
    const Value* v = g.attribute(name);
    const std::string* s = v ? std::get_if<std::string>(v) : nullptr;
    if (!s) {
      r.problems.push_back(where + "/" + name + ": missing, or not a string");
      return {};
    }
    return *s;
  };
  std::string alg = str("algorithm"), digest = str("digest"), sig = str("signature");
  r.key_id = str("key_id");
  if (!r.problems.empty()) return r;
  if (alg != kSignatureAlgorithm)
    r.problems.push_back(where + "/algorithm: \"" + alg + "\", this build checks \"" + kSignatureAlgorithm + "\"");
  if (digest != kSignatureDigest)
    r.problems.push_back(where + "/digest: \"" + digest + "\", this build checks \"" + kSignatureDigest + "\"");
  if (!from_base64(sig, r.signature))
    r.problems.push_back(where + "/signature: not " + std::to_string(crypto_sign_BYTES) + " bytes of base64");
  for (const auto& a : g.attributes())
    if (a.name != "algorithm" && a.name != "digest" && a.name != "key_id" && a.name != "signature")
      r.problems.push_back(where + "/" + a.name + ": unexpected attribute (not covered by the signature)");
  for (const auto& c : g.children())
    r.problems.push_back(where + "/" + c.name + ": unexpected member (not covered by the signature)");
  return r;
}

}  // namespace

// ---- keys -------------------------------------------------------------------------------------

std::string PublicKey::id() const {
  ensure_sodium();
  unsigned char h[16];
  crypto_generichash(h, sizeof h, bytes_.data(), bytes_.size(), nullptr, 0);
  return hex(h, sizeof h);
}

SecretKey::SecretKey(SecretKey&& other) noexcept : bytes_(other.bytes_) {
  sodium_memzero(other.bytes_.data(), other.bytes_.size());
}

SecretKey::~SecretKey() { sodium_memzero(bytes_.data(), bytes_.size()); }

PublicKey SecretKey::public_key() const {
  std::array<unsigned char, PublicKey::kSize> pk{};
  crypto_sign_ed25519_sk_to_pk(pk.data(), bytes_.data());
  return PublicKey(pk);
}

std::pair<SecretKey, PublicKey> generate_key_pair() {
  ensure_sodium();
  std::array<unsigned char, SecretKey::kSize> sk{};
  std::array<unsigned char, PublicKey::kSize> pk{};
  crypto_sign_keypair(pk.data(), sk.data());
  SecretKey secret(sk);
  sodium_memzero(sk.data(), sk.size());
  return {std::move(secret), PublicKey(pk)};
}

void write_secret_key(const SecretKey& key, const fs::path& path, bool overwrite) {
  std::string text = std::string(kSecretHeader) + "\n" + to_base64(key.bytes().data(), key.bytes().size()) + "\n";
  try {
    write_key_file(path, text, 0600, overwrite);
  } catch (...) {
    sodium_memzero(text.data(), text.size());
    throw;
  }
  sodium_memzero(text.data(), text.size());
}

void write_public_key(const PublicKey& key, const fs::path& path, bool overwrite) {
  write_key_file(path, std::string(kPublicHeader) + "\n" + to_base64(key.bytes().data(), key.bytes().size()) + "\n",
                 0644, overwrite);
}

SecretKey parse_secret_key(std::string_view text, const std::string& source) {
  ensure_sodium();
  std::string_view line = key_line(text, kSecretHeader, source);
  std::array<unsigned char, SecretKey::kSize> sk{};
  if (!from_base64(line, sk))
    throw FormatError(source + ", line 2: expected " + std::to_string(SecretKey::kSize) + " bytes of base64");
  SecretKey key(sk);
  sodium_memzero(sk.data(), sk.size());
  // The second half is the public key; it must be the one the first half (the seed) makes.
  std::array<unsigned char, PublicKey::kSize> pk{};
  std::array<unsigned char, SecretKey::kSize> again{};
  crypto_sign_seed_keypair(pk.data(), again.data(), key.bytes().data());
  bool consistent = sodium_memcmp(again.data(), key.bytes().data(), again.size()) == 0;
  sodium_memzero(again.data(), again.size());
  if (!consistent) throw FormatError(source + ", line 2: the key's two halves do not belong together (damaged?)");
  return key;
}

PublicKey parse_public_key(std::string_view text, const std::string& source) {
  ensure_sodium();
  std::string_view line = key_line(text, kPublicHeader, source);
  std::array<unsigned char, PublicKey::kSize> pk{};
  if (!from_base64(line, pk))
    throw FormatError(source + ", line 2: expected " + std::to_string(PublicKey::kSize) + " bytes of base64");
  return PublicKey(pk);
}

SecretKey read_secret_key(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw IoError("cannot open '" + path.string() + "': " + std::strerror(errno));
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw UsageError("'" + path.string() + "' has permissions " + mode +
                     "; a secret key must be readable by its owner only (chmod 600)");
  }
  std::string text = read_small_file(path);
  try {
    SecretKey key = parse_secret_key(text, "'" + path.string() + "'");
    sodium_memzero(text.data(), text.size());
    return key;
  } catch (...) {
    sodium_memzero(text.data(), text.size());
    throw;
  }
}

PublicKey read_public_key(const fs::path& path) {
  return parse_public_key(read_small_file(path), "'" + path.string() + "'");
}

// ---- signing and checking ---------------------------------------------------------------------

std::string blake2b_hex(std::span<const std::byte> bytes) {
  ensure_sodium();
  unsigned char h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), nullptr, 0);
  return hex(h, sizeof h);
}

std::string signed_message(const Document& tree, const std::vector<std::pair<std::string, std::string>>& digests) {
  return kMessageHeader + canonical_manifest(tree, digests);
}

std::optional<std::string> recorded_signer(const Document& tree) {
  const Group* g = tree.find_group_path(kSignaturePath);
  if (!g) return std::nullopt;
  const Value* v = g->attribute("key_id");
  const std::string* s = v ? std::get_if<std::string>(v) : nullptr;
  return s ? *s : std::string("(none recorded)");
}

SignatureReport verify_signature(FormatReader& reader, const PublicKey& key) {
  ensure_sodium();
  SignatureReport rep;
  const Document& tree = reader.tree();
  const Group* g = tree.find_group_path(kSignaturePath);
  if (!g) {
    rep.problems.push_back("not signed (no " + std::string(kSignaturePath) + ")");
    return rep;
  }
  rep.present = true;
  Recorded rec = read_recorded(*g);
  rep.key_id = rec.key_id;
  rep.problems = rec.problems;
  if (!rep.problems.empty()) return rep;
  if (rec.key_id != key.id()) {
    rep.problems.push_back("signed with key " + rec.key_id + ", not with the given key " + key.id());
    return rep;
  }
  std::vector<std::pair<std::string, std::string>> digests;
  std::vector<std::byte> buf;
  tree.for_each_tensor([&](const std::string& path, const Tensor& t) {
    if (!in_signed_scope(path)) return;
    std::optional<Tensor> m = reader.map(path);
    std::span<const std::byte> bytes;
    if (m) {
      bytes = m->bytes();
    } else {
      buf.resize(t.nbytes());
      reader.read_into(path, buf);
      bytes = buf;
    }
    digests.emplace_back(path, blake2b_hex(bytes));
    rep.tensors++;
    rep.bytes += bytes.size();
  });
  std::string msg = signed_message(tree, digests);
  if (crypto_sign_verify_detached(rec.signature.data(), reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                                  key.bytes().data()) != 0)
    rep.problems.push_back("the signature does not match the content (tensors, metadata or the signature changed)");
  return rep;
}

SignReport sign_file(const fs::path& path, const SecretKey& key, const SignOptions& options) {
  ensure_sodium();
  const Registry& reg = options.registry ? *options.registry : Registry::global();
  LoadOptions lo;
  lo.format = options.format;
  lo.registry = &reg;
  auto reader = open(path, lo);
  Format format = reg.get(reader->format().name);
  // Mapped tensors keep the old file readable after the new one is renamed over it.
  Document doc = reader->load(true);
  VerifyReport check = verify_document(doc);
  if (check.has_integrity && !check.ok()) {
    std::string msg = "'" + path.string() + "' does not match its own recorded hashes; not signing it:";
    for (const auto& p : check.problems) msg += "\n  " + p;
    throw IntegrityError(msg);
  }

  SignReport report;
  report.format = format.name();
  report.key_id = key.public_key().id();
  if (auto old = recorded_signer(doc)) report.replaced_key_id = old;
  Group& meta = doc.group("meta");
  meta.erase("signature");
  // Present (and empty) before the message is made, so the message sees the tree as it will be
  // read back: the group itself is outside the manifest, but `meta` may be new.
  Group& sig = meta.add_group("signature");
  std::vector<std::pair<std::string, std::string>> digests;
  doc.for_each_tensor([&](const std::string& p, const Tensor& t) {
    if (!in_signed_scope(p)) return;
    digests.emplace_back(p, blake2b_hex(t.bytes()));
    report.tensors++;
    report.bytes += t.nbytes();
  });
  std::string msg = signed_message(doc, digests);
  unsigned char s[crypto_sign_BYTES];
  crypto_sign_detached(s, nullptr, reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), key.bytes().data());
  sig.set("algorithm", kSignatureAlgorithm);
  sig.set("digest", kSignatureDigest);
  sig.set("key_id", report.key_id);
  sig.set("signature", to_base64(s, sizeof s));

  auto losses = plan_losses(doc, format.info());
  if (!losses.empty()) {
    std::string m = "'" + path.string() + "': format " + format.name() + " cannot hold the signed file:";
    for (const auto& l : losses) m += "\n  " + l.path + ": " + l.what;
    throw UnsupportedError(m);
  }

  auto read_back = [&](const fs::path& temp) {
    auto back = format.open_reader(temp, {});
    SignatureReport r = verify_signature(*back, key.public_key());
    VerifyReport v = verify(*back);
    std::vector<std::string> problems = r.problems;
    if (v.has_integrity) problems.insert(problems.end(), v.problems.begin(), v.problems.end());
    if (!problems.empty()) {
      std::string m = "'" + path.string() + "': the file written in " + format.name() +
                      " does not read back as what was signed; the original is left unchanged:";
      for (const auto& p : problems) m += "\n  " + p;
      throw IntegrityError(m);
    }
  };
  detail::write_atomically(path, format, options.write_options, options.fsync,
                           [&](FormatWriter& writer) { writer.write(doc); }, read_back);
  return report;
}

}  // namespace ckpt
