#include "predict_json.hpp"

#include <ckpt/errors.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cfloat>
#include <cmath>

namespace ckpt::serve::detail {

namespace {

using json = nlohmann::json;

std::string shape_text(const Shape& s, size_t from = 0) {
  std::string t = "[";
  for (size_t i = from; i < s.size(); ++i) t += (i > from ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

// Where in the body a value sits, built only when there is an error to report.
std::string place(const std::string& root, const std::vector<size_t>& index) {
  std::string p = root;
  for (size_t i : index) p += "[" + std::to_string(i) + "]";
  return p;
}

// Appends `j`, which must be a tensor of shape dims[d...], to `out`; `index` tracks the place.
void read_tensor(const json& j, const Shape& dims, size_t d, std::vector<float>& out, const std::string& root,
                 std::vector<size_t>& index) {
  if (d == dims.size()) {
    if (!j.is_number())
      throw UsageError(place(root, index) + ": expected a number (the input's dtype is DT_FLOAT), got " + std::string(j.type_name()));
    const double v = j.get<double>();
    if (!std::isfinite(v) || std::fabs(v) > FLT_MAX)
      throw UsageError(place(root, index) + ": " + j.dump() + " is not a finite float32");
    out.push_back(static_cast<float>(v));
    return;
  }
  const std::string want = "an array of shape " + shape_text(dims, d);
  if (!j.is_array()) throw UsageError(place(root, index) + ": expected " + want + ", got " + std::string(j.type_name()));
  if (j.size() != static_cast<size_t>(dims[d]))
    throw UsageError(place(root, index) + ": expected " + want + ", got " + std::to_string(j.size()) + " values along its first dimension");
  index.push_back(0);
  for (size_t i = 0; i < j.size(); ++i) {
    index.back() = i;
    read_tensor(j[i], dims, d + 1, out, root, index);
  }
  index.pop_back();
}

// {"input": tensor} -> tensor; anything else is refused by name.
const json& named_input(const json& obj, const std::string& where) {
  if (obj.size() != 1 || !obj.contains(kInputName)) {
    std::string names;
    for (const auto& [k, v] : obj.items()) names += (names.empty() ? "" : ", ") + json(k).dump(-1, ' ', false, json::error_handler_t::replace);
    throw UsageError(where + ": the model has one input, named \"" + kInputName + "\"; got " +
                     (names.empty() ? std::string("none") : names));
  }
  return obj.at(kInputName);
}

void check_rows(int64_t rows, int64_t max_rows, const char* what) {
  if (rows < 1) throw UsageError(std::string(what) + " is empty: a request needs at least one row");
  if (rows > max_rows)
    throw UsageError(std::string(what) + " holds " + std::to_string(rows) + " rows; the limit is " + std::to_string(max_rows) +
                     " per request");
}

void append_float(std::string& out, float v) {
  if (std::isnan(v)) {
    out += "NaN";  // as TensorFlow Serving writes them
  } else if (std::isinf(v)) {
    out += v > 0 ? "Infinity" : "-Infinity";
  } else {
    char buf[32];
    // The shortest text that reads back as this float32: as exact as ckpt predict's %.9g.
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

// One tensor of shape dims[d...] from `v`, advancing it.
void append_tensor(std::string& out, const float*& v, const Shape& dims, size_t d) {
  if (d == dims.size()) {
    append_float(out, *v++);
    return;
  }
  out += '[';
  for (int64_t i = 0; i < dims[d]; ++i) {
    if (i) out += ',';
    append_tensor(out, v, dims, d + 1);
  }
  out += ']';
}

// Arrays and objects in `body`, outside strings. A parsed array or object costs ~50 bytes
// for as little as 2 bytes of text ("[]"), so bodies with more than a valid request can hold
// are refused before parsing.
size_t containers(const std::string& body) {
  size_t n = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++n;
    }
  }
  return n;
}

}  // namespace

PredictInput parse_predict(const std::string& body, const Shape& sample, int64_t max_rows) {
  // A valid request holds per row one array for each dimension but the last (and maybe an
  // object naming the input), plus the outer few.
  uint64_t per_row_arrays = 2;
  for (size_t i = 0; i + 1 < sample.size(); ++i) per_row_arrays *= static_cast<uint64_t>(std::max<int64_t>(sample[i], 1));
  const uint64_t limit = static_cast<uint64_t>(max_rows) * per_row_arrays + 16;
  if (const size_t n = containers(body); n > limit)
    throw UsageError("the body holds " + std::to_string(n) + " arrays and objects; a request of at most " +
                     std::to_string(max_rows) + " rows of shape " + shape_text(sample) + " holds at most " + std::to_string(limit));
  // nlohmann's parser and destructor are iterative, so deep nesting cannot exhaust the stack.
  json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded()) {
    // Parse again for the message: where and what.
    try {
      json again = json::parse(body);
    } catch (const json::exception& e) {
      throw UsageError(std::string("the body is not JSON: ") + e.what());
    }
    throw UsageError("the body is not JSON");
  }
  if (!doc.is_object()) throw UsageError("the body must be a JSON object with \"instances\" or \"inputs\"; got " + std::string(doc.type_name()));
  if (auto it = doc.find("signature_name"); it != doc.end()) {
    if (!it->is_string()) throw UsageError("\"signature_name\" must be a string");
    const std::string name = it->get<std::string>();
    if (!name.empty() && name != kSignatureName)
      throw UsageError("the model has one signature, \"" + std::string(kSignatureName) + "\"; got " + it->dump(-1, ' ', false, json::error_handler_t::replace));
  }
  const bool has_instances = doc.contains("instances"), has_inputs = doc.contains("inputs");
  if (has_instances == has_inputs)
    throw UsageError(has_instances ? "the body holds both \"instances\" and \"inputs\"; give one"
                                   : "the body holds neither \"instances\" (row format) nor \"inputs\" (columnar format)");
  PredictInput in;
  const auto per_row = static_cast<int64_t>(numel(sample));
  std::vector<size_t> index;
  if (has_instances) {
    const json& rows = doc["instances"];
    if (!rows.is_array()) throw UsageError("\"instances\" must be an array of rows; got " + std::string(rows.type_name()));
    in.rows = static_cast<int64_t>(rows.size());
    check_rows(in.rows, max_rows, "\"instances\"");
    in.named = rows[0].is_object();
    in.values.reserve(static_cast<size_t>(in.rows * per_row));
    for (size_t i = 0; i < rows.size(); ++i) {
      const std::string root = "instances[" + std::to_string(i) + "]";
      if (rows[i].is_object() != in.named)
        throw UsageError(root + ": every instance must be given the same way (all named or all plain)");
      if (in.named)
        read_tensor(named_input(rows[i], root), sample, 0, in.values, root + ".input", index);
      else
        read_tensor(rows[i], sample, 0, in.values, root, index);
    }
  } else {
    in.columnar = true;
    const json* t = &doc["inputs"];
    std::string root = "inputs";
    if (t->is_object()) {
      in.named = true;
      t = &named_input(*t, root);
      root += ".input";
    }
    if (!t->is_array()) throw UsageError(root + ": expected an array of rows; got " + std::string(t->type_name()));
    in.rows = static_cast<int64_t>(t->size());
    check_rows(in.rows, max_rows, ("\"" + root + "\"").c_str());
    Shape batch = {in.rows};
    batch.insert(batch.end(), sample.begin(), sample.end());
    in.values.reserve(static_cast<size_t>(in.rows * per_row));
    read_tensor(*t, batch, 0, in.values, root, index);
  }
  return in;
}

std::string format_predict(const PredictInput& input, std::span<const float> output, const Shape& sample) {
  std::string out;
  out.reserve(output.size() * 12 + 32);
  out += input.columnar ? "{\"outputs\":" : "{\"predictions\":";
  Shape batch = {input.rows};
  batch.insert(batch.end(), sample.begin(), sample.end());
  const float* v = output.data();
  append_tensor(out, v, batch, 0);
  out += "}";
  return out;
}

}  // namespace ckpt::serve::detail
