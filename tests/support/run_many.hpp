// Running a Python test script for many cases in one process (run_many.py beside this file):
// each case as a run of its own would get it, with its exit status and output.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "scratch.hpp"

namespace ckpt_test {

struct CaseResult {
  int status = -1;     // the script's exit status; -1 when the batch ended before this case
  std::string output;  // what it printed, lines joined by " | "
};

// `cases` are argument lists (no tabs or newlines in them). `scratch` holds the list and the
// results. A batch that stops early (Python itself failing) leaves its remaining cases at -1,
// with the batch's own output in the first of them.
inline std::vector<CaseResult> run_many(const std::string& python, const std::filesystem::path& script,
                                        const std::vector<std::vector<std::string>>& cases,
                                        const std::filesystem::path& scratch) {
  const std::filesystem::path list = scratch / "run_many.cases", results = scratch / "run_many.results";
  {
    std::ofstream out(list, std::ios::trunc);
    for (const auto& args : cases) {
      for (size_t i = 0; i < args.size(); ++i) out << (i ? "\t" : "") << args[i];
      out << '\n';
    }
  }
  std::filesystem::remove(results);
  std::string log;
  const int status = run(python + " " + CKPT_RUN_MANY + " " + script.string() + " " + list.string() + " " + results.string(), log);
  std::vector<CaseResult> got(cases.size());
  std::ifstream in(results);
  size_t i = 0;
  for (std::string line; i < got.size() && std::getline(in, line); ++i) {
    const size_t tab = line.find('\t');
    got[i].status = std::stoi(line.substr(0, tab));
    got[i].output = tab == std::string::npos ? "" : line.substr(tab + 1);
  }
  if (i < got.size()) got[i].output = "run_many.py ended (status " + std::to_string(status) + ") before this case: " + log;
  return got;
}

}  // namespace ckpt_test
