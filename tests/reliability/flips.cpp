#include "flips.hpp"

#include "byte_flips.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>

#include <random>

namespace ckpt::reliability {

namespace {

// Everything the checkpoint says, exactly: names, dtypes, shapes, attribute values and the
// hash of every tensor's bytes, meta/integrity included.
std::string fingerprint(const Document& doc) {
  std::vector<std::pair<std::string, std::string>> hashes;
  doc.for_each_tensor([&](const std::string& p, const Tensor& t) { hashes.emplace_back(p, hash_hex(hash_bytes(t.bytes()))); });
  std::string out = canonical_manifest(doc, hashes);
  if (const Group* integ = doc.find_group_path("meta/integrity"))
    for (const auto& a : integ->attributes()) out += "I " + a.name + " " + value_to_string(a.value, 1u << 20) + "\n";
  return out;
}

enum class Verdict { passed, detected, escaped };

}  // namespace

FlipStats run_flips(const std::string& format_name, const fs::path& workdir, const FlipOptions& options) {
  const Format format = Registry::global().get(format_name);
  FlipStats s;
  s.format = format_name;
  const fs::path original = workdir / ("original-" + file_name(format.info()));
  const fs::path flipped = workdir / file_name(format.info());
  Sample sample = make_sample(format.info(), options.tensor_bytes, 7, options.seed);
  write_document(sample.doc, original, format);
  s.has_integrity = sample.has_integrity;
  const std::string bytes = read_file(original);
  s.file_bytes = bytes.size();
  LoadOptions plain;
  plain.map = false;
  const std::string want = fingerprint(read_document(original, plain));

  std::mt19937_64 rng(options.seed);
  auto note = [&](const std::string& what) {
    if (s.examples.size() < 8) s.examples.push_back(what);
  };
  for (uint64_t i = 0; i < options.flips; ++i) {
    const size_t at = std::uniform_int_distribution<size_t>(0, bytes.size() - 1)(rng);
    const auto x = static_cast<uint8_t>(std::uniform_int_distribution<int>(1, 255)(rng));
    ckpt_test::write_flipped(flipped, bytes, at, x);
    const std::string where = "offset " + std::to_string(at) + " ^ " + std::to_string(x);
    s.flips++;

    // What `ckpt verify` does: detect the format, open, hash every tensor against meta.
    Verdict verdict;
    try {
      auto reader = open(flipped, {});
      VerifyReport r = verify(*reader);
      verdict = r.ok() ? Verdict::passed : Verdict::detected;
    } catch (const Error&) {
      verdict = Verdict::detected;
    } catch (const std::exception& e) {
      verdict = Verdict::escaped;
      s.not_ckpt_error++;
      note("verify, " + where + ": " + e.what());
    }

    // What the flip really changed.
    bool changed = true;
    try {
      changed = fingerprint(read_document(flipped, plain)) != want;
    } catch (const Error&) {
    } catch (const std::exception& e) {
      s.not_ckpt_error++;
      note("load, " + where + ": " + e.what());
    }
    if (verdict == Verdict::detected) s.detected++;
    if (verdict == Verdict::passed && !changed) s.harmless++;
    if (verdict == Verdict::passed && changed) {
      s.missed++;
      note("verify passed a changed file, " + where);
    }

    // A verified load refuses, or returns exactly the original.
    try {
      LoadOptions lo = plain;
      lo.verify = true;
      if (fingerprint(read_document(flipped, lo)) == want) {
        s.load_identical++;
      } else {
        s.load_wrong++;
        note("a verified load returned other content, " + where);
      }
    } catch (const Error&) {
      s.load_refused++;
    } catch (const std::exception& e) {
      s.not_ckpt_error++;
      note("verified load, " + where + ": " + e.what());
    }

    if (!options.cli.empty()) {
      auto r = run_command(options.cli + " verify " + flipped.string());
      bool cli_detected = r.code != 0;
      if (cli_detected != (verdict != Verdict::passed) || (r.code != 0 && r.code != 1 && r.code != 2)) {
        s.cli_disagreed++;
        note("ckpt verify exit " + std::to_string(r.code) + ", " + where + ": " + r.out);
      }
    }
  }
  return s;
}

}  // namespace ckpt::reliability
