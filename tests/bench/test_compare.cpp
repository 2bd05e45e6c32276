// benchmarks/compare end to end at 1 MiB: one real round of two formats beside NumPy and the
// machine's limits, then the same tables and chart drawn again from the run's JSON.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

struct Ran {
  int status;
  std::string out;
};

Ran run(const std::string& cmd) {
  Ran r{-1, {}};
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

struct Scratch {
  fs::path path = fs::temp_directory_path() / ("ckpt-bench-compare-" + std::to_string(::getpid()));
  Scratch() { fs::create_directories(path); }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void expect_report(const fs::path& out) {
  const std::string md = slurp(out / "latest.md");
  EXPECT_NE(md.find("## 1M"), std::string::npos) << md;
  for (const char* format : {"| json |", "| msgpack |"}) EXPECT_NE(md.find(format), std::string::npos) << format;
  EXPECT_NE(md.find("Limits (MB/s): memcpy"), std::string::npos) << md;
  EXPECT_NE(md.find("| numpy |"), std::string::npos) << md;
  const std::string png = slurp(out / "latest.png");
  ASSERT_GT(png.size(), 1000u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

}  // namespace

TEST(BenchmarksCompare, MeasuresWritesTheTablesAndTheChartAndRedrawsThemFromItsJson) {
  Scratch tmp;
  const std::string compare = std::string(CKPT_SOURCE_DIR) + "/benchmarks/compare";
  const fs::path out = tmp.path / "results";
  const Ran r = run(compare + " --build " + CKPT_BUILD_DIR + " --sizes 1M --rounds 1 --no-train --formats json,msgpack"
                    " --peers numpy --dir " + (tmp.path / "scratch").string() + " --out " + out.string());
  ASSERT_EQ(r.status, 0) << r.out;
  expect_report(out);

  // Every measurement is in the JSON, and positive.
  const nlohmann::json j = nlohmann::json::parse(slurp(out / "latest.json"));
  const std::string dump = j.dump();
  for (const char* key : {"memcpy", "msgpack", "json", "py:numpy"})
    EXPECT_NE(dump.find(key), std::string::npos) << key << " missing from latest.json";

  // Redrawn from the JSON alone: the same tables.
  const fs::path again = tmp.path / "again";
  const Ran redraw = run(compare + " --from-json " + (out / "latest.json").string() + " --out " + again.string());
  ASSERT_EQ(redraw.status, 0) << redraw.out;
  expect_report(again);
  EXPECT_EQ(slurp(again / "latest.md"), slurp(out / "latest.md"));
}

// The --ranks section end to end at 1 MiB: real ranks under mpirun save a sharded checkpoint, load
// it at other world sizes and train one short epoch, and every ratio lands in ranks.md and
// ranks.json.
TEST(BenchmarksCompare, RanksMeasuresShardedSaveLoadAndTrainingUnderMpirun) {
  Scratch tmp;
  const std::string compare = std::string(CKPT_SOURCE_DIR) + "/benchmarks/compare";
  const fs::path out = tmp.path / "results";
  const Ran r = run(compare + " --build " + CKPT_BUILD_DIR + " --ranks --ranks-size 1M --rounds 1 --ranks-samples 640"
                    " --dir " + (tmp.path / "scratch").string() + " --out " + out.string());
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string md = slurp(out / "ranks.md");
  for (const char* row : {"| save 1 rank |", "| save 2 ranks |", "| load at 1 rank |", "| load at 3 ranks |",
                          "| train 2 ranks x 1 thread |"})
    EXPECT_NE(md.find(row), std::string::npos) << row << "\n" << md;
  const nlohmann::json j = nlohmann::json::parse(slurp(out / "ranks.json"));
  ASSERT_EQ(j["rounds"].size(), 1u);
  for (const auto& [key, ratio] : j["rounds"][0].items()) EXPECT_GT(ratio.get<double>(), 0.0) << key;
  EXPECT_FALSE(fs::exists(tmp.path / "scratch" / "ranks")) << "the scratch checkpoints are removed";
}
