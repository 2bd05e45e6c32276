// The JSON manifest beside each plugin: what the registry knows without loading the library.
#include "loaded_plugin.hpp"

#include <ckpt/errors.hpp>

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

namespace ckpt {

namespace {

std::string to_hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::string from_hex(const std::string& h, const std::string& where) {
  if (h.size() % 2) throw FormatError(where + ": odd-length hex string");
  std::string out;
  for (size_t i = 0; i < h.size(); i += 2) {
    auto v = [&](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      throw FormatError(where + ": bad hex digit '" + std::string(1, c) + "'");
    };
    out += static_cast<char>(v(h[i]) * 16 + v(h[i + 1]));
  }
  return out;
}

const std::pair<uint32_t, const char*> kCaps[] = {
    {CKPT_CAP_READ, "read"},
    {CKPT_CAP_WRITE, "write"},
    {CKPT_CAP_MAP, "map"},
    {CKPT_CAP_ATTRIBUTES, "attributes"},
    {CKPT_CAP_NESTED_GROUPS, "nested_groups"},
    {CKPT_CAP_ATTRIBUTE_ARRAYS, "attribute_arrays"},
    {CKPT_CAP_LAZY_LIST, "lazy_list"},
    {CKPT_CAP_DETERMINISTIC, "deterministic"},
    {CKPT_CAP_PRIVATE_TREE, "private_tree"},
};

}  // namespace

std::vector<std::string> capability_names(uint32_t caps) {
  std::vector<std::string> out;
  for (auto [bit, name] : kCaps)
    if (caps & bit) out.push_back(name);
  return out;
}

bool FormatInfo::magic_matches(std::span<const uint8_t> head) const {
  for (const auto& m : magic) {
    if (m.offset + m.bytes.size() > head.size()) continue;
    if (std::equal(m.bytes.begin(), m.bytes.end(),
                   reinterpret_cast<const char*>(head.data()) + m.offset))
      return true;
  }
  return false;
}

std::string manifest_for_library(const fs::path& library) {
  PluginInfo info = LoadedPlugin::open(library)->describe();
  nlohmann::ordered_json j;
  j["abi_version"] = info.abi_version;
  j["plugin"] = info.name;
  j["version"] = info.version;
  j["library"] = library.filename().string();
  j["formats"] = nlohmann::ordered_json::array();
  for (const auto& f : info.formats) {
    nlohmann::ordered_json jf;
    jf["name"] = f.name;
    jf["long_name"] = f.long_name;
    jf["extensions"] = f.extensions;
    jf["magic"] = nlohmann::ordered_json::array();
    for (const auto& m : f.magic) jf["magic"].push_back({{"offset", m.offset}, {"hex", to_hex(m.bytes)}});
    jf["capabilities"] = capability_names(f.capabilities);
    std::vector<std::string> dts;
    for (int d = static_cast<int>(kFirstDType); d <= static_cast<int>(kLastDType); ++d)
      if (f.holds(static_cast<DType>(d))) dts.emplace_back(name(static_cast<DType>(d)));
    jf["dtypes"] = dts;
    j["formats"].push_back(jf);
  }
  return j.dump(2) + "\n";
}

PluginInfo parse_manifest(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot read manifest '" + path.string() + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j;
  if (ss.str().find('\0') != std::string::npos) throw FormatError("manifest '" + path.string() + "' is not JSON: it holds a NUL byte");
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const std::exception& e) {
    throw FormatError("manifest '" + path.string() + "' is not JSON: " + e.what());
  }
  std::string where = "manifest '" + path.string() + "'";
  try {
    PluginInfo info;
    info.manifest = path;
    info.abi_version = j.at("abi_version").get<uint32_t>();
    info.name = j.at("plugin").get<std::string>();
    info.version = j.at("version").get<std::string>();
    info.library = path.parent_path() / j.at("library").get<std::string>();
    if (j.at("library").get<std::string>().find('/') != std::string::npos)
      throw FormatError(where + ": library must be a file name beside the manifest");
    for (const auto& jf : j.at("formats")) {
      FormatInfo f;
      f.name = jf.at("name").get<std::string>();
      f.long_name = jf.value("long_name", f.name);
      f.extensions = jf.at("extensions").get<std::vector<std::string>>();
      for (const auto& m : jf.value("magic", nlohmann::json::array()))
        f.magic.push_back({m.at("offset").get<uint64_t>(), from_hex(m.at("hex").get<std::string>(), where)});
      for (const auto& c : jf.at("capabilities")) {
        bool known = false;
        for (auto [bit, name] : kCaps)
          if (c.get<std::string>() == name) {
            f.capabilities |= bit;
            known = true;
          }
        if (!known) throw FormatError(where + ": unknown capability '" + c.get<std::string>() + "'");
      }
      for (const auto& d : jf.at("dtypes"))
        f.dtypes |= 1u << static_cast<unsigned>(dtype_from_name(d.get<std::string>()));
      info.formats.push_back(std::move(f));
    }
    return info;
  } catch (const Error&) {
    throw;
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(where + ": missing or mistyped field (" + e.what() + ")");
  }
}

}  // namespace ckpt
