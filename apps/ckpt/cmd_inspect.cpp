#include "commands.hpp"

#include <ckpt/io.hpp>

#include <nlohmann/json.hpp>

#include <iostream>

namespace ckpt::cli {

namespace {

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

void print_group(const Group& g, int depth) {
  std::string pad(static_cast<size_t>(depth) * 2, ' ');
  for (const auto& a : g.attributes())
    std::cout << pad << "@" << a.name << " = " << value_to_string(a.value) << "\n";
  for (const auto& c : g.children()) {
    if (c.is_group()) {
      std::cout << pad << c.name << "/\n";
      print_group(c.group(), depth + 1);
    } else {
      const Tensor& t = c.tensor();
      std::cout << pad << c.name << "  " << name(t.dtype()) << " " << shape_string(t.shape()) << "  "
                << human_bytes(t.nbytes()) << "\n";
    }
  }
}

nlohmann::ordered_json value_json(const Value& v) {
  return std::visit(
      [](const auto& x) -> nlohmann::ordered_json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::vector<bool>>) {
          auto a = nlohmann::ordered_json::array();
          for (bool b : x) a.push_back(b);
          return a;
        } else if constexpr (std::is_same_v<T, double>) {
          // JSON has no NaN or infinity; keep them readable.
          if (x != x || x - x != 0) return value_to_string(x);
          return x;
        } else {
          return nlohmann::ordered_json(x);
        }
      },
      v);
}

nlohmann::ordered_json group_json(const Group& g) {
  nlohmann::ordered_json j;
  j["attributes"] = nlohmann::ordered_json::object();
  for (const auto& a : g.attributes())
    j["attributes"][a.name] = {{"type", value_type_name(value_type(a.value))}, {"value", value_json(a.value)}};
  j["tensors"] = nlohmann::ordered_json::object();
  j["groups"] = nlohmann::ordered_json::object();
  for (const auto& c : g.children()) {
    if (c.is_group()) {
      j["groups"][c.name] = group_json(c.group());
    } else {
      const Tensor& t = c.tensor();
      j["tensors"][c.name] = {{"dtype", name(t.dtype())}, {"shape", t.shape()}, {"nbytes", t.nbytes()}};
    }
  }
  return j;
}

}  // namespace

Runner add_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Show a file's tree, dtypes, shapes, sizes and metadata (reads no tensor data where the format allows)");
  static std::string file, format = "auto";
  static bool as_json = false;
  cmd->add_option("FILE", file, "checkpoint file")->required();
  cmd->add_option("--format", format, "the file's format (default: detect)");
  cmd->add_flag("--json", as_json, "machine-readable output");
  return [] {
    LoadOptions lo;
    lo.format = format;
    auto reader = open(file, lo);
    const Document& tree = reader->tree();
    if (as_json) {
      nlohmann::ordered_json j;
      j["file"] = file;
      j["format"] = reader->format().name;
      j["tensor_count"] = tree.tensor_count();
      j["tensor_bytes"] = tree.tensor_bytes();
      j["root"] = group_json(tree);
      std::cout << j.dump(2) << "\n";
      return kOk;
    }
    std::cout << file << " (" << reader->format().name << ", " << tree.tensor_count() << " tensors, "
              << human_bytes(tree.tensor_bytes()) << ")\n";
    print_group(tree, 1);
    return kOk;
  };
}

}  // namespace ckpt::cli
