// One checkpoint operation in a process of its own, so that its peak memory can be read:
// benchmarks/compare runs one of these per measurement and reads the JSON line it prints.
//
//   bench_op shapes SIZE                       the tensors of model_state.hpp, as JSON
//   bench_op save FORMAT FILE SIZE [--no-fsync]
//   bench_op load FORMAT FILE [--fresh]        into reused parameters, or new memory
//   bench_op map FORMAT FILE                   open, then map (or read) the last tensor
//   bench_op convert SRC DST [--to FORMAT]     ckpt::convert, as `ckpt convert` runs it
//
// What is printed, all memory in bytes:
//   seconds       the operation alone (not building the state dict or the parameters);
//                 cpu_seconds, its user + system CPU time (for loaded machines)
//   bytes         tensor bytes moved
//   rss_before    resident memory just before the operation (for save: the state dict; for a
//                 reused load: the parameters it loads into; with the libraries and the heap)
//   peak          the process's high-water mark of resident memory (VmHWM, what getrusage's
//                 ru_maxrss and /usr/bin/time -v report), at the end
//   peak_extra    peak - rss_before: what the operation added at its worst. Resident pages of
//                 a mapped file count too (they are clean page cache, freed under pressure)
//   anon_peak     for convert: the largest anonymous (heap) resident size seen after each
//                 tensor, minus the one before; mapped file pages are not in it
//   largest       the largest tensor's bytes
#include "../model_state.hpp"

#include <ckpt/convert.hpp>
#include <ckpt/io.hpp>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace ckpt;

namespace {

// A field of /proc/self/status in bytes ("VmRSS", "VmHWM", "RssAnon", "RssFile").
uint64_t status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1)) * 1024;
  return 0;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// User plus system CPU seconds of this process so far.
double cpu_now() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

// Wall and CPU seconds of one operation.
struct Clock {
  double wall = now(), cpu = cpu_now();
  void stop(double& wall_s, double& cpu_s) const {
    wall_s = now() - wall;
    cpu_s = cpu_now() - cpu;
  }
};

uint64_t largest_tensor(const Document& d) {
  uint64_t m = 0;
  d.for_each_tensor([&](const std::string&, const Tensor& t) { m = std::max<uint64_t>(m, t.nbytes()); });
  return m;
}

// Loads a format's plugin and makes its first calls outside the clock (dlopen of libhdf5 alone
// takes milliseconds).
void warm_up(const Format& f, const fs::path& beside) {
  Document tiny;
  tiny.group("model").group("state").add_tensor("w", Tensor::zeros(DType::f32, {4, 4}));
  const fs::path p = beside.parent_path() / (".bench-op-warm-up" + f.info().extensions.at(0));
  write_document(tiny, p, f, {.fsync = false});
  fs::remove(p);
}

struct Result {
  std::string op, format;
  double seconds = 0, cpu_seconds = 0;
  uint64_t bytes = 0, rss_before = 0, anon_before = 0, largest = 0;
  int64_t anon_peak = -1;

  void print() const {
    const uint64_t peak = status_bytes("VmHWM");
    std::printf("{\"op\": \"%s\", \"format\": \"%s\", \"seconds\": %.6f, \"cpu_seconds\": %.6f, \"bytes\": %llu, \"rss_before\": %llu, "
                "\"peak\": %llu, \"peak_extra\": %lld, \"anon_peak\": %lld, \"largest\": %llu}\n",
                op.c_str(), format.c_str(), seconds, cpu_seconds, static_cast<unsigned long long>(bytes),
                static_cast<unsigned long long>(rss_before), static_cast<unsigned long long>(peak),
                static_cast<long long>(peak) - static_cast<long long>(rss_before), static_cast<long long>(anon_peak),
                static_cast<unsigned long long>(largest));
  }
};

int shapes(uint64_t size) {
  std::printf("[");
  bool first = true;
  for (const auto& [name, shape] : bench::model_shapes(size)) {
    std::printf("%s\n {\"name\": \"%s\", \"shape\": [", first ? "" : ",", name.c_str());
    for (size_t i = 0; i < shape.size(); ++i) std::printf("%s%lld", i ? ", " : "", static_cast<long long>(shape[i]));
    std::printf("]}");
    first = false;
  }
  std::printf("\n]\n");
  return 0;
}

int save(const std::string& format, const fs::path& file, uint64_t size, bool durable) {
  const Document doc = bench::make_model_state(size);
  const Format f = Registry::global().get(format);
  Result r{.op = durable ? "save+fsync" : "save", .format = format};
  r.bytes = doc.tensor_bytes();
  r.largest = largest_tensor(doc);
  warm_up(f, file);
  r.rss_before = status_bytes("VmRSS");
  const Clock c;
  write_document(doc, file, f, {.fsync = durable});
  c.stop(r.seconds, r.cpu_seconds);
  r.print();
  return 0;
}

int load(const std::string& format, const fs::path& file, bool fresh) {
  const Format f = Registry::global().get(format);
  Result r{.op = fresh ? "load-fresh" : "load", .format = format};
  if (fresh) {
    LoadOptions o;
    o.format = format;
    o.map = false;
    f.open_reader(file, {})->tree();  // loads the plugin outside the clock
    r.rss_before = status_bytes("VmRSS");
    const Clock c;
    const Document d = read_document(file, o);
    c.stop(r.seconds, r.cpu_seconds);
    r.bytes = d.tensor_bytes();
    r.largest = largest_tensor(d);
    r.print();
    return 0;
  }
  // The parameters, allocated and touched before the clock starts.
  std::map<std::string, std::vector<std::byte>> params;
  {
    auto reader = f.open_reader(file, {});
    reader->tree().for_each_tensor([&](const std::string& p, const Tensor& t) {
      params[p].assign(t.nbytes(), std::byte{1});
      r.largest = std::max<uint64_t>(r.largest, t.nbytes());
    });
  }
  r.rss_before = status_bytes("VmRSS");
  const Clock c;
  auto reader = f.open_reader(file, {});
  reader->tree().for_each_tensor([&](const std::string& p, const Tensor& t) {
    reader->read_into(p, params.at(p));
    r.bytes += t.nbytes();
  });
  reader.reset();
  c.stop(r.seconds, r.cpu_seconds);
  r.print();
  return 0;
}

volatile unsigned sink;  // keeps the sum that proves the bytes were read

int map_one(const std::string& format, const fs::path& file) {
  const Format f = Registry::global().get(format);
  Result r{.op = "open+one", .format = format};
  f.open_reader(file, {});  // loads the plugin library outside the clock
  r.rss_before = status_bytes("VmRSS");
  const Clock c;
  auto reader = f.open_reader(file, {});
  std::string last;
  reader->tree().for_each_tensor([&](const std::string& p, const Tensor&) { last = p; });
  auto m = reader->map(last);
  const Tensor t = m ? *m : reader->read(last);
  unsigned sum = 0;
  for (std::byte b : t.bytes()) sum += static_cast<unsigned>(b);
  c.stop(r.seconds, r.cpu_seconds);
  r.bytes = t.nbytes();
  sink = sum;
  r.print();
  return 0;
}

int convert_file(const fs::path& src, const fs::path& dst, const std::string& to) {
  ConvertOptions o;
  o.to = to;
  o.allow_lossy = true;
  Result r{.op = "convert", .format = to};
  uint64_t anon_max = 0;
  o.progress = [&](uint64_t, uint64_t) { anon_max = std::max(anon_max, status_bytes("RssAnon")); };
  // Both plugins loaded outside the clock, and kept loaded by these two.
  const Format from = Registry::global().for_reading(src, "auto");
  const Format target = Registry::global().for_writing(dst, to);
  from.open_reader(src, {})->tree();
  warm_up(target, dst);
  r.rss_before = status_bytes("VmRSS");
  r.anon_before = anon_max = status_bytes("RssAnon");
  const Clock c;
  const ConvertReport rep = convert(src, dst, o);
  c.stop(r.seconds, r.cpu_seconds);
  r.format = rep.from_format + ">" + rep.to_format;
  r.bytes = rep.bytes;
  r.anon_peak = static_cast<int64_t>(anon_max) - static_cast<int64_t>(r.anon_before);
  LoadOptions lo;
  lo.format = rep.to_format;
  r.largest = largest_tensor(open(dst, lo)->tree());
  r.print();
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: bench_op shapes SIZE\n"
               "       bench_op save FORMAT FILE SIZE [--no-fsync]\n"
               "       bench_op load FORMAT FILE [--fresh]\n"
               "       bench_op map FORMAT FILE\n"
               "       bench_op convert SRC DST [--to FORMAT]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  try {
    if (a.size() == 2 && a[0] == "shapes") return shapes(bench::parse_size(a[1]));
    if ((a.size() == 4 || a.size() == 5) && a[0] == "save")
      return save(a[1], a[2], bench::parse_size(a[3]), !(a.size() == 5 && a[4] == "--no-fsync"));
    if ((a.size() == 3 || a.size() == 4) && a[0] == "load") return load(a[1], a[2], a.size() == 4 && a[3] == "--fresh");
    if (a.size() == 3 && a[0] == "map") return map_one(a[1], a[2]);
    if (a.size() == 3 && a[0] == "convert") return convert_file(a[1], a[2], "auto");
    if (a.size() == 5 && a[0] == "convert" && a[3] == "--to") return convert_file(a[1], a[2], a[4]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_op: %s\n", e.what());
    return 1;
  }
  return usage();
}
