#include "common.hpp"

#include <ckpt/checkpoint.hpp>
#include <ckpt/convert.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/plugin_abi.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

namespace ckpt::reliability {

std::vector<std::string> writable_formats() {
  std::vector<std::string> out;
  for (const auto& f : Registry::global().formats())
    if (f.info().can(CKPT_CAP_READ) && f.info().can(CKPT_CAP_WRITE)) out.push_back(f.name());
  return out;
}

std::vector<std::string> checkpoint_formats() {
  std::vector<std::string> out;
  for (const auto& name : writable_formats())
    if (make_sample(Registry::global().get(name).info(), 1024, 0).has_integrity) out.push_back(name);
  return out;
}

std::string param_name(const std::string& format) {
  std::string s;
  for (char c : format) s += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return s;
}

namespace {

uint64_t splitmix(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

DType pick(const FormatInfo& f, std::initializer_list<DType> preferred) {
  for (DType d : preferred)
    if (f.holds(d)) return d;
  for (unsigned d = 1; d <= static_cast<unsigned>(kLastDType); ++d)
    if (f.holds(static_cast<DType>(d))) return static_cast<DType>(d);
  return DType::f32;
}

// Bytes of a float-ish or integer dtype that are always finite and valid (bools 0/1).
Tensor random_tensor(DType dtype, const Shape& shape, uint64_t& state) {
  Tensor t = Tensor::empty(dtype, shape);
  auto bytes = t.mutable_bytes();
  size_t item = itemsize(component(dtype));
  for (size_t i = 0; i < bytes.size(); i += 8) {
    uint64_t r = splitmix(state);
    std::memcpy(bytes.data() + i, &r, std::min<size_t>(8, bytes.size() - i));
  }
  // Keep every element finite: clear the top exponent bit of each float element.
  if (is_floating(dtype) || is_complex(dtype))
    for (size_t i = item - 1; i < bytes.size(); i += item) bytes[i] &= std::byte{0xbf};
  if (dtype == DType::boolean)
    for (auto& b : bytes) b &= std::byte{1};
  return t;
}

Tensor generation_tensor(DType dtype, int64_t generation) {
  double v = static_cast<double>(generation);
  Tensor t = Tensor::empty(dtype, {1});
  cast_elements(DType::f64, reinterpret_cast<const std::byte*>(&v), dtype, t.mutable_bytes().data(), 1);
  return t;
}

void add_tensors(Group& g, const FormatInfo& f, uint64_t bytes, int64_t generation, uint64_t seed,
                 const std::string& prefix) {
  const DType data = pick(f, {DType::f32, DType::f64, DType::f16, DType::bf16});
  const DType gen = pick(f, {DType::i64, DType::i32, DType::f64, DType::f32});
  uint64_t state = seed;
  const int n = bytes >= (8u << 20) ? 8 : 4;
  const int64_t cols = 256;
  const int64_t per = std::max<int64_t>(1, static_cast<int64_t>(bytes / n / itemsize(data) / cols));
  for (int i = 0; i < n; ++i)
    g.add_tensor(prefix + "layer" + std::to_string(i) + ".weight", random_tensor(data, {per, cols}, state));
  g.add_tensor(prefix + "gen", generation_tensor(gen, generation));
}

}  // namespace

Sample make_sample(const FormatInfo& format, uint64_t bytes, int64_t generation, uint64_t seed) {
  Sample s;
  Checkpoint c;
  c.producer = "ckpt reliability tests";
  add_tensors(c.model_state, format, bytes, generation, seed, "");
  c.trainer.set("generation", generation);
  c.trainer.set("losses", std::vector<double>{0.5, 0.25});
  s.doc = c.to_document();
  add_integrity(s.doc);
  s.has_integrity = true;
  if (!plan_losses(s.doc, format).empty()) {
    // The format holds less than a checkpoint: flat tensors, and an attribute only if it fits.
    s.doc = Document();
    s.has_integrity = false;
    add_tensors(s.doc, format, bytes, generation, seed, "model.state.");
    Document with_attr = s.doc;
    with_attr.set("generation", generation);
    if (plan_losses(with_attr, format).empty()) s.doc = std::move(with_attr);
  }
  s.doc.for_each_tensor([&](const std::string& p, const Tensor& t) {
    if (p.rfind("meta/", 0) != 0) s.expected.emplace_back(p, hash_bytes(t.bytes()));
  });
  return s;
}

int64_t generation_of(const Document& doc) {
  int64_t g = -1;
  doc.for_each_tensor([&](const std::string& p, const Tensor& t) {
    bool is_gen = p == "gen" || (p.size() > 4 && (p.ends_with("/gen") || p.ends_with(".gen")));
    if (!is_gen || t.numel() != 1 || !t.defined()) return;
    double v = 0;
    cast_elements(t.dtype(), t.bytes().data(), DType::f64, reinterpret_cast<std::byte*>(&v), 1);
    g = static_cast<int64_t>(v);
  });
  return g;
}

std::string compare_data(const Document& doc, const Sample& sample) {
  std::string out;
  size_t seen = 0;
  doc.for_each_tensor([&](const std::string& p, const Tensor&) {
    if (p.rfind("meta/", 0) != 0) ++seen;
  });
  if (seen != sample.expected.size())
    out += std::to_string(seen) + " tensors, expected " + std::to_string(sample.expected.size()) + "; ";
  for (const auto& [path, hash] : sample.expected) {
    if (path.ends_with("gen")) continue;  // differs between generations by design
    const Tensor* t = doc.find_tensor_path(path);
    if (!t)
      out += path + " missing; ";
    else if (hash_bytes(t->bytes()) != hash)
      out += path + " holds other data; ";
  }
  return out;
}

std::string file_name(const FormatInfo& format) {
  return "model" + (format.extensions.empty() ? std::string(".bin") : format.extensions.front());
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<fs::path> temporaries(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (!n.empty() && n[0] == '.' && n.find(".ckpt-tmp-") != std::string::npos) out.push_back(e.path());
  }
  return out;
}

std::vector<fs::path> visible_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (!(n[0] == '.' && n.find(".ckpt-tmp-") != std::string::npos)) out.push_back(e.path());
  }
  return out;
}

CommandResult run_command(const std::string& command) {
  CommandResult r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  return std::strtoull(v, nullptr, 10);
}

}  // namespace ckpt::reliability

namespace ckpt::reliability {

namespace {
void retag(Group& g, int64_t generation) {
  if (g.attribute("generation")) g.set("generation", generation);
  for (auto& c : g.children()) {
    if (c.is_group()) {
      retag(c.group(), generation);
      continue;
    }
    const std::string& n = c.name;
    if (n == "gen" || n.ends_with(".gen")) c.tensor() = generation_tensor(c.tensor().dtype(), generation);
  }
}
}  // namespace

Document with_generation(const Document& doc, int64_t generation) {
  Document out = doc;
  retag(out, generation);
  return out;
}

}  // namespace ckpt::reliability
