#include "commands.hpp"
#include "text.hpp"

#include <ckpt/io.hpp>

#include <nlohmann/json.hpp>

#include <functional>
#include <iostream>
#include <optional>
#include <set>

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
    std::cout << pad << "@" << terminal_safe(a.name) << " = " << terminal_safe(value_to_string(a.value)) << "\n";
  for (const auto& c : g.children()) {
    if (c.is_group()) {
      std::cout << pad << terminal_safe(c.name) << "/\n";
      print_group(c.group(), depth + 1);
    } else {
      const Tensor& t = c.tensor();
      std::cout << pad << terminal_safe(c.name) << "  " << name(t.dtype()) << " " << shape_string(t.shape()) << "  "
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

// Written as it goes rather than built as an ordered_json: that keeps members in a vector
// and looks each key up by a linear scan, so a group of a million tensors took hours.
void write_group_json(std::ostream& out, const Group& g, int depth) {
  const std::string pad(static_cast<size_t>(depth) * 2, ' ');
  auto key = [&](const std::string& k) { return nlohmann::json(k).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); };
  out << "{\n" << pad << "  \"attributes\": {";
  bool first = true;
  for (const auto& a : g.attributes()) {
    out << (first ? "\n" : ",\n") << pad << "    " << key(a.name) << ": {\"type\": \""
        << value_type_name(value_type(a.value)) << "\", \"value\": "
        << value_json(a.value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "}";
    first = false;
  }
  out << (first ? "" : "\n" + pad + "  ") << "},\n" << pad << "  \"tensors\": {";
  first = true;
  for (const auto& c : g.children()) {
    if (!c.is_tensor()) continue;
    const Tensor& t = c.tensor();
    out << (first ? "\n" : ",\n") << pad << "    " << key(c.name) << ": {\"dtype\": \"" << name(t.dtype())
        << "\", \"shape\": " << nlohmann::json(t.shape()).dump() << ", \"nbytes\": " << t.nbytes() << "}";
    first = false;
  }
  out << (first ? "" : "\n" + pad + "  ") << "},\n" << pad << "  \"groups\": {";
  first = true;
  for (const auto& c : g.children()) {
    if (!c.is_group()) continue;
    out << (first ? "\n" : ",\n") << pad << "    " << key(c.name) << ": ";
    write_group_json(out, c.group(), depth + 2);
    first = false;
  }
  out << (first ? "" : "\n" + pad + "  ") << "}\n" << pad << "}";
}

// ckpt reads a pickle without running anything; Python's unpickler runs what the pickle names.
// A clean listing must not read as a clean bill of health for pickle.load, so say so where the
// file is a pickle that builds objects (their classes' __setstate__, __reduce__ run in Python).
std::optional<std::string> unpickling_note(const std::string& format, const Group& tree) {
  std::set<std::string> classes;
  std::function<void(const Group&)> look = [&](const Group& g) {
    // Objects (by class) and calls the pickle asked for and ckpt did not make.
    for (const char* key : {"__class__", "__call__"})
      if (const Value* c = g.attribute(key))
        if (const auto* s = std::get_if<std::string>(c); s && classes.size() < 8) classes.insert(*s);
    for (const auto& c : g.children())
      if (c.is_group()) look(c.group());
  };
  look(tree);
  if (format != "pickle" && classes.empty()) return std::nullopt;
  if (format != "pickle" && format != "pytorch") return std::nullopt;
  std::string note = "ckpt read this pickle without running any of it; that does not make it safe to load in Python "
                     "(pickle.load, joblib.load, torch.load without weights_only) on this machine";
  if (!classes.empty()) {
    std::string list;
    for (const auto& c : classes) list += (list.empty() ? "" : ", ") + c;
    note += ": it builds objects of " + list + (classes.size() == 8 ? ", ..." : "") +
            ", whose __setstate__ or __reduce__ Python would run";
  }
  return note;
}

}  // namespace

Runner add_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Show a file's tree, dtypes, shapes, sizes and metadata (reads no tensor data where the format allows)");
  static std::string file, format = "auto";
  static bool as_json = false;
  static std::vector<std::string> read_opts;
  cmd->add_option("FILE", file, "checkpoint file")->required();
  cmd->add_option("--format", format, "the file's format (default: detect)");
  cmd->add_option("-r,--read-option", read_opts, "KEY=VALUE for the file's format")->allow_extra_args(false);
  cmd->add_flag("--json", as_json, "machine-readable output");
  return [] {
    LoadOptions lo;
    lo.format = format;
    lo.format_options = parse_options(read_opts);
    auto reader = open(file, lo);
    const Document& tree = reader->tree();
    const std::optional<std::string> pickle_note = unpickling_note(reader->format().name, tree);
    if (as_json) {
      auto text = [](const std::string& v) { return nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); };
      std::cout << "{\n  \"file\": " << text(file) << ",\n  \"format\": " << text(reader->format().name)
                << ",\n  \"tensor_count\": " << tree.tensor_count() << ",\n  \"tensor_bytes\": " << tree.tensor_bytes()
                << ",\n  \"root\": ";
      write_group_json(std::cout, tree, 1);
      if (pickle_note) std::cout << ",\n  \"note\": " << text(*pickle_note);
      std::cout << "\n}\n";
      return kOk;
    }
    std::cout << file << " (" << reader->format().name << ", " << tree.tensor_count() << " tensors, "
              << human_bytes(tree.tensor_bytes()) << ")\n";
    print_group(tree, 1);
    if (pickle_note) std::cout << "NOTE: " << *pickle_note << "\n";
    return kOk;
  };
}

}  // namespace ckpt::cli
