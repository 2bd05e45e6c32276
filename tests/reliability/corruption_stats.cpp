// ckpt_corruption_stats [--flips N] [--seed S] [--cli PATH] [FORMAT...]
//
// Prints, for every writable format in the registry (or those named), what 1000 one-byte
// changes of a small checkpoint did: the "detections / flips" table of docs/reliability.md.
// Exits 1 when any flip was missed, any verified load returned other content, or anything but
// a ckpt error escaped.
#include "flips.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace ckpt::reliability;

int main(int argc, char** argv) {
  FlipOptions o;
  std::vector<std::string> formats;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--flips") o.flips = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--seed") o.seed = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--cli") o.cli = next();
    else if (a == "--tensor-bytes") o.tensor_bytes = std::strtoull(next().c_str(), nullptr, 10);
    else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "usage: %s [--flips N] [--seed S] [--cli PATH] [--tensor-bytes N] [FORMAT...]\n", argv[0]);
      return 2;
    } else formats.push_back(a);
  }
  if (formats.empty()) formats = writable_formats();
  bool bad = false;
  std::printf("| format | file bytes | flips | detected | harmless | missed | verified load: refused / identical / wrong |%s\n",
              o.cli.empty() ? "" : " ckpt verify disagreed |");
  std::printf("|---|---|---|---|---|---|---|%s\n", o.cli.empty() ? "" : "---|");
  std::vector<std::string> notes;
  for (const auto& f : formats) {
    TempDir tmp("stats-" + param_name(f));
    FlipStats s;
    try {
      s = run_flips(f, tmp.path, o);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", f.c_str(), e.what());
      bad = true;
      continue;
    }
    std::printf("| %s%s | %llu | %llu | %llu | %llu | %llu | %llu / %llu / %llu |", f.c_str(),
                s.has_integrity ? "" : " (no hashes)", static_cast<unsigned long long>(s.file_bytes),
                static_cast<unsigned long long>(s.flips), static_cast<unsigned long long>(s.detected),
                static_cast<unsigned long long>(s.harmless), static_cast<unsigned long long>(s.missed),
                static_cast<unsigned long long>(s.load_refused), static_cast<unsigned long long>(s.load_identical),
                static_cast<unsigned long long>(s.load_wrong));
    if (!o.cli.empty()) std::printf(" %llu |", static_cast<unsigned long long>(s.cli_disagreed));
    std::printf("\n");
    std::fflush(stdout);
    for (const auto& e : s.examples) notes.push_back(f + ": " + e);
    if (s.not_ckpt_error || s.cli_disagreed || (s.has_integrity && (s.missed || s.load_wrong))) bad = true;
  }
  std::printf("\nseed %llu, %llu tensor bytes per checkpoint\n", static_cast<unsigned long long>(o.seed),
              static_cast<unsigned long long>(o.tensor_bytes));
  for (const auto& n : notes) std::printf("note: %s\n", n.c_str());
  return bad ? 1 : 0;
}
