// The adversarial suite. make_attacks.py (a CTest fixture) writes hostile files; each is run here
// through `ckpt inspect`, `ckpt verify`, `ckpt verify --pubkey` (the signature attacks) and
// `ckpt convert`, every run in a watchdog child (watchdog.hpp) whose peak memory and ending are
// checked, with a marker file that the pickles calling os.system would create if anything ran
// them. One test per class of attack; each prints a line per attack, and the last line of each
// test the count that held.
#include "sanitizers.hpp"
#include "watchdog.hpp"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace ckpt::security;

namespace {

const fs::path kAttacks = CKPT_ATTACKS;
const std::string kMarker = std::string(CKPT_ATTACKS) + "-marker";

#ifdef CKPT_TEST_ASAN
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

Limits limits() {
  Limits l;
  // ASan reserves terabytes of address space for its shadow: the cap would stop it at start.
  if (kSanitized) l.address_space = 0;
  return l;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const json& attacks() {
  static const json all = [] {
    const fs::path manifest = kAttacks / "attacks.json";
    if (!fs::exists(manifest))
      throw std::runtime_error(manifest.string() + " is missing: the fixture test security.make_attacks makes it");
    return json::parse(slurp(manifest));
  }();
  return all;
}

// What a run of ckpt may hold at its peak: the process as it is on a tiny file, plus the bound
// the threat model promises (twice the tensor bytes the file really holds, plus 64 MiB), plus
// what its non-tensor content costs (a document's nodes, linear in the file's size).
uint64_t baseline_rss() {
  static const uint64_t rss = [] {
    const fs::path tiny = kAttacks / "base.json";
    Outcome o = run_limited({CKPT_CLI, "inspect", tiny.string()}, "", {}, limits());
    return o.max_rss;
  }();
  return rss;
}

uint64_t memory_bound(const json& a) {
  const uint64_t stored = a.value("stored", uint64_t{0});
  std::error_code ec;
  const uint64_t size = fs::is_regular_file(kAttacks / a["file"].get<std::string>(), ec)
                            ? fs::file_size(kAttacks / a["file"].get<std::string>(), ec)
                            : 0;
  uint64_t bound = baseline_rss() + 2 * stored + (uint64_t{64} << 20) + 64 * size;
  if (kSanitized) bound = bound * 3 + (uint64_t{256} << 20);
  return bound;
}

// What no output may ever show: bytes of files outside the attacked file's folder.
std::vector<std::string> secrets() {
  std::vector<std::string> s = {"SECRETDATA", "CWDSECRETS"};
  std::string host = slurp("/etc/hostname");
  while (!host.empty() && (host.back() == '\n' || host.back() == ' ')) host.pop_back();
  if (host.size() >= 8) s.push_back(host);  // a short one could be any word of a message
  return s;
}

struct Tally {
  int attacks = 0, held = 0;
};

// Runs one command on one attack and checks what every run must satisfy; returns its outcome.
Outcome run_checked(const json& a, const std::vector<std::string>& args, const std::string& what, bool& ok) {
  std::vector<std::string> argv = {CKPT_CLI};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string cwd = (kAttacks / a.value("cwd", std::string())).string();
  Outcome o = run_limited(argv, cwd, {}, limits());
  auto expect = [&](bool cond, const std::string& why) {
    if (!cond) {
      ok = false;
      ADD_FAILURE() << a["name"].get<std::string>() << ": " << what << ": " << why << " (" << o.describe()
                    << ")\n" << o.output.substr(0, 2000);
    }
  };
  expect(!o.timed_out && o.signal == 0, "ended abnormally");
  expect(o.max_rss <= memory_bound(a), "peak memory " + std::to_string(o.max_rss >> 20) + " MiB over the bound of " +
                                           std::to_string(memory_bound(a) >> 20) + " MiB");
  expect(!fs::exists(kMarker), "the marker exists: something ran code from the file");
  for (const auto& s : secrets())
    expect(o.output.find(s) == std::string::npos, "the output shows bytes of a file outside the folder (" + s + ")");
  return o;
}

void run_attack(const json& a, Tally& t) {
  const std::string name = a["name"];
  const fs::path file = kAttacks / a["file"].get<std::string>();
  std::vector<std::string> opts;
  if (a.contains("format")) opts = {"--format", a["format"]};
  for (const auto& r : a.value("read", json::array())) {
    opts.push_back("-r");
    opts.push_back(r);
  }
  const bool refused = a["expect"] == "refused";
  const bool reading_refused = a.contains("unsigned") ? a["unsigned"] == "refused" : refused;
  const std::string says = a.value("says", std::string());
  bool ok = true;
  ++t.attacks;
  auto expect = [&](bool cond, const std::string& what, const Outcome& o) {
    if (!cond) {
      ok = false;
      ADD_FAILURE() << name << ": " << what << " (" << o.describe() << ")\n" << o.output.substr(0, 2000);
    }
  };

  std::vector<std::string> args = {"inspect", file.string()};
  args.insert(args.end(), opts.begin(), opts.end());
  Outcome inspect = run_checked(a, args, "inspect", ok);
  if (reading_refused && a.value("when", std::string()) == "data") {
    expect(inspect.exit_code == 0, "inspect reads no tensor data, so it should list the file", inspect);
  } else if (reading_refused) {
    expect(inspect.exit_code == 2, "inspect should refuse the file (exit 2)", inspect);
    expect(says.empty() || a.contains("unsigned") || inspect.output.find(says) != std::string::npos,
           "inspect should say '" + says + "'", inspect);
    expect(inspect.output.find(file.string()) != std::string::npos, "the error should name the file", inspect);
  } else {
    expect(inspect.exit_code == 0, "inspect should read the file", inspect);
    if (a.contains("shows"))
      expect(inspect.output.find(a["shows"].get<std::string>()) != std::string::npos,
             "inspect should show " + a["shows"].get<std::string>(), inspect);
  }

  args = {"verify", file.string()};
  args.insert(args.end(), opts.begin(), opts.end());
  Outcome verify = run_checked(a, args, "verify", ok);
  // A finding about the file's content is exit 1; what is not a checkpoint file at all (a FIFO)
  // is refused as bad usage, exit 2.
  if (reading_refused)
    expect((verify.exit_code == 1 && verify.output.find("FAILED") != std::string::npos) ||
               (verify.exit_code == 2 && a["class"] == "confinement" && verify.output.find("not a regular file") != std::string::npos),
           "verify should report a finding (exit 1)", verify);
  else expect(verify.exit_code == 0, "verify should pass", verify);

  if (a.contains("signed")) {
    args = {"verify", file.string(), "--pubkey", a["signed"].get<std::string>()};
    args.insert(args.end(), opts.begin(), opts.end());
    Outcome sig = run_checked(a, args, "verify --pubkey", ok);
    expect(sig.exit_code == 1 && sig.output.find("FAILED") != std::string::npos,
           "verify --pubkey should fail: the file is not what was signed", sig);
  }

  const fs::path out = kAttacks / "converted" /
                       (fs::path(a["file"].get<std::string>()).filename().string() + a.value("to", std::string(".msgpack")));
  fs::create_directories(out.parent_path());
  fs::remove(out);
  args = {"convert", file.string(), out.string(), "--allow-lossy"};
  for (size_t i = 0; i + 1 < opts.size(); i += 2)
    if (opts[i] == "-r" || opts[i] == "--format") {
      args.push_back(opts[i] == "--format" ? "--from" : "-r");
      args.push_back(opts[i + 1]);
    }
  Outcome convert = run_checked(a, args, "convert", ok);
  if (reading_refused) {
    expect(convert.exit_code == 2, "convert should refuse the file (exit 2)", convert);
    expect(!fs::exists(out), "convert must write nothing", convert);
  } else {
    expect(convert.exit_code == 0 && fs::exists(out), "convert should write the file", convert);
    // What convert writes, ckpt reads back: a conversion never makes a file its reader refuses.
    Outcome back = run_checked(a, {"verify", out.string()}, "verify of the converted file", ok);
    expect(back.exit_code == 0, "the converted file should verify", back);
  }
  fs::remove(out);

  if (a.contains("other"))
    std::printf("  %s reads it as: %s\n", a["other"]["tool"].get<std::string>().c_str(),
                a["other"]["sees"].get<std::string>().c_str());
  std::printf("%s %s (inspect %s; convert %s)\n", ok ? "HELD  " : "BROKEN", name.c_str(), inspect.describe().c_str(),
              convert.describe().c_str());
  if (ok) ++t.held;
}

void run_class(const std::string& cls) {
  Tally t;
  for (const auto& a : attacks())
    if (a["class"] == cls) run_attack(a, t);
  std::printf("%s: %d of %d attacks held\n", cls.c_str(), t.held, t.attacks);
  EXPECT_GT(t.attacks, 0) << "no attacks of class " << cls;
  EXPECT_EQ(t.held, t.attacks);
}

}  // namespace

TEST(Security, SignaturesCoverEveryByteAConsumerReads) { run_class("signature"); }
TEST(Security, NoFileHasTwoReadings) { run_class("differential"); }
TEST(Security, NoReaderLeavesItsFilesFolderOrBlocks) { run_class("confinement"); }
TEST(Security, NoInputCostsMoreThanItHolds) { run_class("resources"); }

// Differentials found by running the other reader at generation time: it must really have seen
// something else (or refused), or the attack proves nothing.
TEST(Security, TheOtherReadersReallyDisagree) {
  int n = 0;
  for (const auto& a : attacks()) {
    if (!a.contains("other")) continue;
    ++n;
    const std::string sees = a["other"]["sees"];
    EXPECT_FALSE(sees.empty()) << a["name"];
    std::printf("%s: %s says %s\n", a["name"].get<std::string>().c_str(), a["other"]["tool"].get<std::string>().c_str(),
                sees.c_str());
  }
  EXPECT_GE(n, 4);
}

// ---- saves never damage what is not a checkpoint ------------------------------------------------

namespace {
std::string tiny_json() { return (kAttacks / "base.json").string(); }
}  // namespace

TEST(Security, SavesRefuseTargetsThatAreNotRegularFiles) {
  const fs::path dir = kAttacks / "targets";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<std::pair<std::string, fs::path>> targets;
  ASSERT_EQ(::mkfifo((dir / "fifo.msgpack").c_str(), 0600), 0);
  targets.emplace_back("a FIFO", dir / "fifo.msgpack");
  fs::create_directories(dir / "folder.msgpack");
  targets.emplace_back("a folder", dir / "folder.msgpack");
  fs::create_symlink("/dev/null", dir / "devnull_link.msgpack");
  targets.emplace_back("a symlink to /dev/null", dir / "devnull_link.msgpack");
  // A device node of our own (the null device's numbers), where the user may make one.
  if (::mknod((dir / "device.msgpack").c_str(), S_IFCHR | 0600, makedev(1, 3)) == 0)
    targets.emplace_back("a character device", dir / "device.msgpack");
  else
    std::printf("NOTE: mknod is not permitted here (%s): the device case runs as root only\n", std::strerror(errno));
  for (const auto& [what, target] : targets) {
    struct stat before {};
    ASSERT_EQ(::lstat(target.c_str(), &before), 0);
    Outcome o = run_limited({CKPT_CLI, "convert", tiny_json(), target.string(), "--to", "msgpack"}, "", {}, limits());
    EXPECT_EQ(o.exit_code, 2) << what << ": " << o.output;
    EXPECT_NE(o.output.find("regular file"), std::string::npos) << what << ": " << o.output;
    struct stat after {};
    ASSERT_EQ(::lstat(target.c_str(), &after), 0) << what;
    EXPECT_EQ(before.st_ino, after.st_ino) << what << " was replaced";
    EXPECT_EQ(before.st_mode & S_IFMT, after.st_mode & S_IFMT) << what << " changed kind";
    std::printf("HELD   convert to %s: %s\n", what.c_str(), o.describe().c_str());
  }
  // A signature written over a FIFO is refused the same way.
  Outcome sig = run_limited({CKPT_CLI, "sign", tiny_json(), "--key", (kAttacks / "key").string(), "--signature",
                             (dir / "fifo.msgpack").string()},
                            "", {}, limits());
  EXPECT_EQ(sig.exit_code, 2) << sig.output;
}

// ---- plugins load only from where the user said ----------------------------------------------------

TEST(Security, RelativePluginFoldersAreIgnored) {
  const fs::path dir = kAttacks / "download";
  fs::remove_all(dir);
  fs::create_directories(dir / "plugins");
  fs::copy_file(CKPT_EVIL_PLUGIN, dir / "plugins" / "ckpt_evil.so");
  fs::copy_file(CKPT_EVIL_MANIFEST, dir / "plugins" / "ckpt_evil.ckpt-plugin.json");
  fs::copy_file(CKPT_EVIL_PLUGIN, dir / "ckpt_evil.so");
  fs::copy_file(CKPT_EVIL_MANIFEST, dir / "ckpt_evil.ckpt-plugin.json");
  fs::copy_file(tiny_json(), dir / "model.json");
  const std::string marker = (dir / "ran").string();
  auto inspect = [&](const std::string& plugin_path) {
    fs::remove(marker);
    return run_limited({CKPT_CLI, "inspect", "model.json"}, dir.string(),
                       {{"CKPT_PLUGIN_PATH", plugin_path}, {"CKPT_EVIL_MARKER", marker}}, limits());
  };
  for (const std::string& rel : std::vector<std::string>{"plugins", ".", "./plugins", "plugins:" + (kAttacks / "none").string()}) {
    Outcome o = inspect(rel);
    EXPECT_FALSE(fs::exists(marker)) << "CKPT_PLUGIN_PATH=" << rel << " loaded a library from the working directory";
    EXPECT_NE(o.output.find("ignoring the relative CKPT_PLUGIN_PATH entry"), std::string::npos) << o.output;
    std::printf("HELD   CKPT_PLUGIN_PATH=%s: %s\n", rel.c_str(), o.describe().c_str());
  }
  // The control: named by its absolute path, the same folder is searched, and loading the
  // library is what leaves the marker (so its absence above means something).
  Outcome o = inspect((dir / "plugins").string());
  EXPECT_TRUE(fs::exists(marker)) << "the control did not load the library: " << o.output;
}
