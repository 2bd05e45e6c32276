#include "plugin_check.hpp"
#include "text.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/registry.hpp>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

extern char** environ;

namespace ckpt::cli {

namespace {

namespace fs = std::filesystem;

class Report {
 public:
  explicit Report(std::ostream& out) : out_(out) {}
  void ok(const std::string& what) { out_ << "  ok    " << what << "\n"; }
  void note(const std::string& what) { out_ << "  note  " << what << "\n"; }
  // A problem, and how to fix it.
  void fix(const std::string& what, const std::string& how) {
    ++problems_;
    out_ << "  FIX   " << indented(what) << "\n";
    if (!how.empty()) out_ << "        how: " << indented(how) << "\n";
  }
  int problems() const { return problems_; }
  std::ostream& out() { return out_; }

 private:
  static std::string indented(const std::string& s) {
    std::string r;
    for (char c : s) r += c == '\n' ? std::string("\n        ") : std::string(1, c);
    return r;
  }
  std::ostream& out_;
  int problems_ = 0;
};

// What to do about a library the host cannot load, by the loader's reason.
std::string load_hint(const std::string& why, const fs::path& library, const fs::path& manifest) {
  if (why.find("does not match its manifest") != std::string::npos)
    return "the manifest is stale: rebuild (ckpt_add_format_plugin rewrites it after every build) or run\n"
           "ckpt-manifest " + library.string() + " " + manifest.string();
  if (why.find("does not export") != std::string::npos)
    return "declare the plugin with CKPT_DECLARE_PLUGIN(name, version, Format...) in exactly one source file";
  if (why.find("refused this host") != std::string::npos || why.find("ABI version") != std::string::npos)
    return "the plugin was built for another ABI version: rebuild it against this ckpt's SDK";
  if (why.find("cannot load plugin") != std::string::npos)
    return "the dynamic loader refused it: usually a symbol no library provides or a missing dependency;\n"
           "link what the plugin uses (ckpt_add_format_plugin(... LIBRARIES ...)) and check `ldd -r` on it";
  return "fix the descriptor the entry point returns (every format needs a name, identify, open_writer and open_reader)";
}

// What each part of the conformance kit holds a plugin to.
std::string suite_hint(const std::string& suite) {
  const std::pair<const char*, const char*> hints[] = {
      {"Declaration", "what the plugin declares (names, extensions, magic, capability bits) must be coherent:\n"
                      "the registry acts on it without loading the library"},
      {"Identify", "identify(head, len, file_size) must score the format's own files above 0, anything else 0,\n"
                   "and read no byte past len"},
      {"DtypeRoundTrip", "every dtype the format declares must come back bit for bit; a dtype it does not declare\n"
                         "must be refused (CKPT_ERR_UNSUPPORTED) or kept exactly"},
      {"RoundTrip", "everything the format declares it holds must come back bit for bit: fix the writer or the\n"
                    "reader, or stop declaring the capability"},
      {"Corruption", "a damaged file must end in a ckpt::sdk::Error (CKPT_ERR_FORMAT, CKPT_ERR_LIMIT), never in a\n"
                     "crash, another exception or a different document: check every length against the bytes left"},
      {"Errors", "failures are statuses: I/O as CKPT_ERR_IO, an unknown option as CKPT_ERR_INVALID_ARGUMENT naming\n"
                 "it (ckpt::sdk::Options does this), and a writer destroyed without finish() frees everything"},
      {"Determinism", "the same document must give the same bytes (no time stamps, addresses or hash-map order),\n"
                      "or the format must not declare 'deterministic'"},
      {"Map", "map_tensor must point at the tensor's bytes and stay valid until the reader is destroyed,\n"
              "or the format must not declare 'map'"},
  };
  for (auto [name, hint] : hints)
    if (suite.find(std::string("/") + name) != std::string::npos || suite == name) return hint;
  return {};
}

// gtest's failure text without the kit's own source location, and not too long.
std::string failure_text(const std::string& raw) {
  std::istringstream in(raw);
  std::string line, out;
  int lines = 0;
  while (std::getline(in, line)) {
    if (out.empty() && (line == "unknown file" || line.find(".cpp:") != std::string::npos)) continue;
    if (++lines > 8) {
      out += "\n...";
      break;
    }
    out += (out.empty() ? "" : "\n") + line;
  }
  return out;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The last case the kit started and never finished, from its own output.
std::string unfinished_case(const std::string& log) {
  std::string last;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("[ RUN      ] ", 0) == 0) last = line.substr(13);
    else if (line.rfind("[       OK ] ", 0) == 0 || line.rfind("[  FAILED  ] ", 0) == 0 || line.rfind("[  SKIPPED ] ", 0) == 0)
      last.clear();
  }
  return last;
}

fs::path kit_program() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  fs::path kit = self.parent_path() / "ckpt-conformance";
  if (ec || !fs::exists(kit))
    throw UsageError("cannot run the conformance kit: no ckpt-conformance beside " +
                     (ec ? std::string("this program") : self.string()) +
                     " (build ckpt with CKPT_BUILD_CONFORMANCE=ON and install it)");
  return kit;
}

// Runs `argv` with stdout and stderr into `log`; returns the wait status.
int spawn(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw IoError("cannot run " + args[0] + ": " + std::strerror(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw IoError("cannot wait for " + args[0] + ": " + std::strerror(errno));
  return status;
}

void run_kit(const fs::path& library, Report& report) {
  fs::path kit = kit_program();
  fs::path dir = fs::temp_directory_path() /
                 ("ckpt-check-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  fs::path json = dir / "conformance.json", log = dir / "conformance.log";
  std::vector<std::string> args = {kit.string(), library.string(), "--quick", "--gtest_output=json:" + json.string()};
  int status = spawn(args, log);
  std::string command = kit.string() + " " + library.string() + " --quick";
  bool keep = true;
  if (WIFSIGNALED(status)) {
    std::string where = unfinished_case(slurp(log));
    report.fix("the plugin crashed (" + std::string(strsignal(WTERMSIG(status))) + ")" +
                   (where.empty() ? std::string() : " in conformance case " + where),
               "run that case alone under a debugger or AddressSanitizer:\n" + command +
                   (where.empty() ? std::string() : " --gtest_filter='" + where + "'"));
  } else if (!fs::exists(json)) {
    report.fix("the conformance kit could not run (exit " + std::to_string(WEXITSTATUS(status)) + ")", "see its output");
  } else {
    nlohmann::json results = nlohmann::json::parse(slurp(json));
    int passed = 0, skipped = 0, failed = 0;
    for (const auto& suite : results.at("testsuites")) {
      for (const auto& c : suite.at("testsuite")) {
        std::string name = suite.at("name").get<std::string>() + "." + c.at("name").get<std::string>();
        if (c.contains("failures")) {
          ++failed;
          std::string text;
          for (const auto& f : c.at("failures")) text += (text.empty() ? "" : "\n") + failure_text(f.value("failure", ""));
          std::string hint = suite_hint(suite.at("name").get<std::string>());
          report.fix("conformance " + name + "\n" + text, hint);
        } else if (c.value("result", "") == "SKIPPED") {
          ++skipped;
        } else {
          ++passed;
        }
      }
    }
    report.out() << "  " << (failed ? "FIX " : "ok  ") << "  conformance kit (quick): " << passed << " passed, " << failed
                 << " failed, " << skipped << " skipped (capabilities or dtypes the format does not declare)\n";
    if (failed == 0 && WEXITSTATUS(status) != 0)
      report.fix("the conformance kit exited with " + std::to_string(WEXITSTATUS(status)) + " without a failed case", "see its output");
    keep = failed > 0 || WEXITSTATUS(status) != 0;
  }
  if (keep) {
    report.out() << "        the kit's whole output: " << log.string() << "\n"
                 << "        again, with every case: " << kit.string() << " " << library.string() << "\n";
  } else {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
}

}  // namespace

int check_plugin(const fs::path& given, std::ostream& out) {
  std::error_code ec;
  if (!fs::is_regular_file(given, ec)) throw UsageError("no plugin library at '" + given.string() + "'");
  const fs::path library = fs::absolute(given);
  const std::string file = library.filename().string(), stem = library.stem().string();
  Report report(out);
  out << "checking " << library.string() << "\n";

  if (library.extension() != ".so" || stem.rfind("ckpt_", 0) != 0 || stem.size() == 5)
    report.fix("file name '" + file + "': the registry loads only files named ckpt_<plugin>.so",
               "name the library after its plugin (ckpt_add_format_plugin(NAME ...) builds ckpt_NAME.so)");
  else
    report.ok("file name " + file);

  fs::path manifest = library.parent_path() / (stem + ".ckpt-plugin.json");
  bool manifest_ok = false;
  if (!fs::exists(manifest)) {
    report.fix("no manifest " + manifest.filename().string() + " beside the library: the registry skips it",
               "build with ckpt_add_format_plugin, which writes it after every build, or run\nckpt-manifest " +
                   library.string() + " " + manifest.string());
  } else {
    try {
      parse_manifest(manifest);
      manifest_ok = true;
    } catch (const Error& e) {
      report.fix(std::string("the manifest is broken: ") + e.what(),
                 "regenerate it: ckpt-manifest " + library.string() + " " + manifest.string());
    }
  }

  std::shared_ptr<const PluginInfo> info;
  try {
    info = Registry::load_library_info(library);
  } catch (const Error& e) {
    report.fix(std::string("cannot load it: ") + e.what(), load_hint(e.what(), library, manifest));
    out << report.problems() << " problem(s) to fix; the conformance kit needs a library that loads\n";
    return report.problems();
  }
  std::vector<std::string> formats;
  for (const auto& f : info->formats) formats.push_back(f.name + " (" + join(capability_names(f.capabilities)) + ")");
  report.ok("loads alone: plugin '" + info->name + "' " + info->version + ", ABI " + std::to_string(info->abi_version) +
            ", formats: " + (formats.empty() ? std::string("none") : join(formats)));
  if (manifest_ok) report.ok("the manifest matches the library");
  if (stem.rfind("ckpt_", 0) == 0 && stem != "ckpt_" + info->name)
    report.fix("the descriptor names plugin '" + info->name + "' but the file is " + file,
               "name the file ckpt_" + info->name + ".so, or the plugin '" + stem.substr(5) + "' in CKPT_DECLARE_PLUGIN");

  // Plugins already on the search path win over this one wherever they are found first.
  for (const auto& other : Registry::global().plugins()) {
    if (fs::equivalent(other->library, library, ec)) continue;
    for (const auto& f : info->formats)
      for (const auto& g : other->formats)
        if (f.name == g.name)
          report.note("format '" + f.name + "' is also provided by " + other->library.string() + " (" + other->origin +
                      "); the registry keeps the first it finds and skips the other");
  }

  run_kit(library, report);
  if (report.problems() == 0)
    out << "no problems found\n";
  else
    out << report.problems() << " problem(s) to fix\n";
  return report.problems();
}

}  // namespace ckpt::cli
