#include <ckpt/conformance.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/plugin_abi.h>

#include <gtest/gtest.h>

#include <charconv>
#include <iostream>
#include <optional>
#include <random>

namespace ckpt::conformance {

namespace {

std::string usage() {
  return std::string(
             "usage: ckpt-conformance LIBRARY [--format NAME]... [--quick] [--seed N|random] [gtest flags]\n"
             "\n"
             "Runs the ckpt conformance cases against the formats of the plugin LIBRARY (ckpt_<name>.so).\n"
             "  --format NAME   test only this format (repeatable; default: every format of LIBRARY)\n"
             "  --quick         the fast subset: no 64 MiB tensor, 25 instead of 200 files with flipped bytes\n"
             "  --seed N        seed for random data and damage; 'random' picks one (default ") +
         std::to_string(kDefaultSeed) +
         ")\n"
         "  any --gtest_* flag, e.g. --gtest_filter='*Corruption*' or --gtest_list_tests\n";
}

struct UsageProblem {
  std::string what;
};

// The value of "--name VALUE" or "--name=VALUE" at argv[i], advancing i past it.
std::optional<std::string> option_value(const std::string& name, int argc, char** argv, int& i) {
  std::string a = argv[i];
  if (a == name) {
    if (i + 1 >= argc) throw UsageProblem{name + " needs a value"};
    return std::string(argv[++i]);
  }
  if (a.rfind(name + "=", 0) == 0) return a.substr(name.size() + 1);
  return std::nullopt;
}

uint64_t parse_seed(const std::string& s) {
  if (s == "random") return std::random_device{}() * uint64_t{0x100000001} ^ std::random_device{}();
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) throw UsageProblem{"--seed takes a number or 'random', not '" + s + "'"};
  return v;
}

}  // namespace

int run(int argc, char** argv) {
  Settings s;
  std::vector<char*> gtest_args = {argv[0]};
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--help" || a == "-h") {
        std::cout << usage();
        return 0;
      }
      if (auto v = option_value("--format", argc, argv, i)) {
        s.formats.push_back(*v);
      } else if (auto v = option_value("--seed", argc, argv, i)) {
        s.seed = parse_seed(*v);
      } else if (a == "--quick") {
        s.quick = true;
      } else if (a.rfind("--gtest_", 0) == 0) {
        gtest_args.push_back(argv[i]);
      } else if (!a.empty() && a[0] == '-') {
        throw UsageProblem{"unknown option '" + a + "'"};
      } else if (s.library.empty()) {
        s.library = a;
      } else {
        throw UsageProblem{"one plugin library at a time ('" + s.library.string() + "', then '" + a + "')"};
      }
    }
    if (s.library.empty()) throw UsageProblem{"which plugin library?"};
  } catch (const UsageProblem& p) {
    std::cerr << "ckpt-conformance: " << p.what << "\n" << usage();
    return 2;
  }

  try {
    configure(s);
  } catch (const std::exception& e) {
    std::cerr << "ckpt-conformance: " << e.what() << "\n";
    return 2;
  }
  const PluginInfo& plugin = *subjects().front().plugin;
  std::cout << "[ckpt-conformance] plugin '" << plugin.name << "' " << plugin.version << " (ABI "
            << plugin.abi_version << ") from " << plugin.library.string() << "\n[ckpt-conformance] formats:";
  for (const auto& subject : subjects()) std::cout << " " << subject.name;
  std::cout << "; " << (s.quick ? "quick" : "full") << " run; seed " << s.seed << "\n";

  int n = static_cast<int>(gtest_args.size());
  gtest_args.push_back(nullptr);
  ::testing::InitGoogleTest(&n, gtest_args.data());
  return RUN_ALL_TESTS() == 0 ? 0 : 1;
}

}  // namespace ckpt::conformance
