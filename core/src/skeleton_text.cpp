#include <ckpt/errors.hpp>
#include <ckpt/sdk_value.hpp>
#include <ckpt/skeleton_text.hpp>

#include <nlohmann/json.hpp>

#include <bit>
#include <cstring>

namespace ckpt {

namespace {

using json = nlohmann::json;
// A skeleton comes from a database or a file; a damaged one must not recurse without bound.
constexpr int kMaxDepth = 512;

// Doubles go as their bits: JSON has no NaN or infinities and some readers round.
uint64_t bits(double d) { return std::bit_cast<uint64_t>(d); }
double from_bits(uint64_t b) { return std::bit_cast<double>(b); }

json encode_value(const Value& v) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, double>)
          return bits(x);
        else if constexpr (std::is_same_v<T, std::vector<double>>) {
          json a = json::array();
          for (double d : x) a.push_back(bits(d));
          return a;
        } else if constexpr (std::is_same_v<T, std::vector<bool>>) {
          json a = json::array();
          for (bool b : x) a.push_back(static_cast<bool>(b));
          return a;
        } else
          return json(x);
      },
      v);
}

using TensorText = std::function<std::string(const std::string& path)>;

json encode_group(const Group& g, const std::string& prefix, const TensorText& text_of) {
  json attrs = json::array();
  for (const auto& a : g.attributes())
    attrs.push_back(json::array({a.name, static_cast<int>(value_type(a.value)), encode_value(a.value)}));
  json children = json::array();
  for (const auto& n : g.children()) {
    const std::string path = prefix.empty() ? n.name : prefix + "/" + n.name;
    if (n.is_group()) {
      children.push_back(json::array({n.name, "g", encode_group(n.group(), path, text_of)}));
    } else {
      const Tensor& t = n.tensor();
      children.push_back(json::array({n.name, "t", std::string(name(t.dtype())), t.shape(), text_of(path)}));
    }
  }
  return json{{"a", std::move(attrs)}, {"c", std::move(children)}};
}

[[noreturn]] void bad(const std::string& where, const std::string& path, const std::string& what) {
  throw FormatError(where + ": " + (path.empty() ? std::string("the root") : "at '" + path + "'") + ": " + what);
}

Value decode_value(const json& j, int type, const std::string& where, const std::string& path) {
  auto need = [&](bool ok) {
    if (!ok) bad(where, path, "attribute value does not match its type " + std::to_string(type));
  };
  switch (static_cast<ValueType>(type)) {
    case ValueType::boolean: need(j.is_boolean()); return j.get<bool>();
    case ValueType::int64: need(j.is_number_integer()); return j.get<int64_t>();
    case ValueType::float64: need(j.is_number_unsigned()); return from_bits(j.get<uint64_t>());
    case ValueType::string: need(j.is_string()); return j.get<std::string>();
    case ValueType::bool_array: {
      need(j.is_array());
      std::vector<bool> v;
      for (const auto& e : j) need(e.is_boolean()), v.push_back(e.get<bool>());
      return v;
    }
    case ValueType::int64_array: {
      need(j.is_array());
      std::vector<int64_t> v;
      for (const auto& e : j) need(e.is_number_integer()), v.push_back(e.get<int64_t>());
      return v;
    }
    case ValueType::float64_array: {
      need(j.is_array());
      std::vector<double> v;
      for (const auto& e : j) need(e.is_number_unsigned()), v.push_back(from_bits(e.get<uint64_t>()));
      return v;
    }
    case ValueType::string_array: {
      need(j.is_array());
      std::vector<std::string> v;
      for (const auto& e : j) need(e.is_string()), v.push_back(e.get<std::string>());
      return v;
    }
  }
  bad(where, path, "unknown attribute type " + std::to_string(type));
}

void decode_group(const json& j, Group& g, const std::string& prefix, std::vector<SkeletonTensor>& tensors,
                  const std::string& where, int depth) {
  if (depth > kMaxDepth) bad(where, prefix, "nested deeper than " + std::to_string(kMaxDepth));
  if (!j.is_object() || !j.contains("a") || !j.contains("c") || !j["a"].is_array() || !j["c"].is_array())
    bad(where, prefix, "a group is not {a: [...], c: [...]}");
  for (const auto& a : j["a"]) {
    if (!a.is_array() || a.size() != 3 || !a[0].is_string() || !a[1].is_number_integer())
      bad(where, prefix, "an attribute is not [name, type, value]");
    g.set(a[0].get<std::string>(), decode_value(a[2], a[1].get<int>(), where, prefix));
  }
  for (const auto& c : j["c"]) {
    if (!c.is_array() || c.size() < 3 || !c[0].is_string() || !c[1].is_string())
      bad(where, prefix, "a child is not [name, kind, ...]");
    const std::string name = c[0].get<std::string>();
    const std::string path = prefix.empty() ? name : prefix + "/" + name;
    try {
      if (c[1] == "g") {
        decode_group(c[2], g.add_group(name), path, tensors, where, depth + 1);
      } else if (c[1] == "t" && c.size() == 5 && c[2].is_string() && c[3].is_array() && c[4].is_string()) {
        Shape shape;
        for (const auto& d : c[3]) {
          if (!d.is_number_integer() || d.get<int64_t>() < 0) bad(where, path, "a dimension is not a non-negative integer");
          shape.push_back(d.get<int64_t>());
        }
        const DType dt = dtype_from_name(c[2].get<std::string>());
        Tensor& t = g.add_tensor(name, Tensor(dt, shape, nullptr));
        tensors.push_back({path, c[4].get<std::string>(), t.nbytes(), nullptr});
      } else {
        bad(where, path, "a child is neither a group nor a tensor [name, \"t\", dtype, shape, digest]");
      }
    } catch (const FormatError&) {
      throw;
    } catch (const Error& e) {  // a bad name or dtype
      bad(where, path, e.what());
    }
  }
}

}  // namespace

std::string skeleton_text(const Document& tree, std::string_view format, int64_t version, const TensorText& tensor_text) {
  json j{{"format", format}, {"version", version}, {"root", encode_group(tree, "", tensor_text)}};
  try {
    return j.dump();
  } catch (const json::type_error& e) {
    throw UnsupportedError(std::string("a skeleton is JSON text, which cannot hold a name or string that is not UTF-8: ") +
                           e.what());
  }
}

Document parse_skeleton_text(std::string_view text, std::string_view format, int64_t version,
                             std::vector<SkeletonTensor>& tensors, const std::string& where) {
  // Three JSON levels per group ({"c": [[name, "g", {...}]]}), and the top.
  if (sdk::json_nesting(text) > 3 * kMaxDepth + 8) throw FormatError(where + ": nested deeper than " + std::to_string(kMaxDepth) + " groups");
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw FormatError(where + ": not JSON");
  if (j.value("format", "") != format) throw FormatError(where + ": its format is not \"" + std::string(format) + "\"");
  if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<int64_t>() != version)
    throw UnsupportedError(where + ": version " + j.value("version", json()).dump().substr(0, 32) + ", this build reads " +
                           std::to_string(version));
  if (!j.contains("root")) throw FormatError(where + ": no root");
  Document doc;
  tensors.clear();
  decode_group(j["root"], doc, "", tensors, where, 0);
  // Pointers into the tree, taken once it no longer grows.
  for (auto& t : tensors) t.listed = doc.find_tensor_path(t.path);
  return doc;
}

}  // namespace ckpt
