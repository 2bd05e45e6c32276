#include "predict_json.hpp"

#include <ckpt/errors.hpp>

#include <nlohmann/json.hpp>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cfloat>
#include <cmath>

namespace ckpt::serve::detail {

namespace {

using json = nlohmann::json;
namespace dom = simdjson::dom;

std::string shape_text(const Shape& s, size_t from = 0) {
  std::string t = "[";
  for (size_t i = from; i < s.size(); ++i) t += (i > from ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

std::string type_name(const dom::element& e) {
  switch (e.type()) {
    case dom::element_type::ARRAY: return "array";
    case dom::element_type::OBJECT: return "object";
    case dom::element_type::STRING: return "string";
    case dom::element_type::BOOL: return "boolean";
    case dom::element_type::NULL_VALUE: return "null";
    default: return "number";
  }
}

// Text from the client, quoted for a message: JSON-escaped, bytes outside UTF-8 replaced.
std::string quoted(std::string_view text) {
  return json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
}

// Where in the body a value sits, built only when there is an error to report.
std::string place(const std::string& root, const std::vector<size_t>& index) {
  std::string p = root;
  for (size_t i : index) p += "[" + std::to_string(i) + "]";
  return p;
}

// Appends `e`, which must be a tensor of shape dims[d...], to `out`; `index` tracks the place.
// The recursion is as deep as the sample's rank, whatever the body holds.
void read_tensor(const dom::element& e, const Shape& dims, size_t d, std::vector<float>& out, const std::string& root,
                 std::vector<size_t>& index) {
  if (d == dims.size()) {
    double v = 0;
    if (e.get_double().get(v) != simdjson::SUCCESS)
      throw UsageError(place(root, index) + ": expected a number (the input's dtype is DT_FLOAT), got " + type_name(e));
    if (!std::isfinite(v) || std::fabs(v) > FLT_MAX) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", v);
      throw UsageError(place(root, index) + ": " + buf + " is not a finite float32");
    }
    out.push_back(static_cast<float>(v));
    return;
  }
  dom::array a;
  if (e.get_array().get(a) != simdjson::SUCCESS)
    throw UsageError(place(root, index) + ": expected an array of shape " + shape_text(dims, d) + ", got " + type_name(e));
  if (a.size() != static_cast<size_t>(dims[d]))
    throw UsageError(place(root, index) + ": expected an array of shape " + shape_text(dims, d) + ", got " +
                     std::to_string(a.size()) + " values along its first dimension");
  index.push_back(0);
  for (dom::element x : a) {
    read_tensor(x, dims, d + 1, out, root, index);
    ++index.back();
  }
  index.pop_back();
}

// {"input": tensor} -> tensor; anything else is refused by name.
dom::element named_input(const dom::object& obj, const std::string& where) {
  dom::element input;
  if (obj.size() != 1 || obj.at_key(kInputName).get(input) != simdjson::SUCCESS) {
    std::string names;
    for (auto field : obj) names += (names.empty() ? "" : ", ") + quoted(field.key);
    throw UsageError(where + ": the model has one input, named \"" + std::string(kInputName) + "\"; got " +
                     (names.empty() ? std::string("none") : names));
  }
  return input;
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

// A SAX handler that keeps nothing but the first parse error's message.
struct ParseErrorOnly : nlohmann::json_sax<json> {
  explicit ParseErrorOnly(std::string& message) : message(message) {}
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    message = e.what();
    return false;
  }
  std::string& message;
};

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
  // simdjson (as the safetensors plugin reads headers): a compact tape, UTF-8 validated, depth
  // bounded; read_tensor walks only as deep as the sample's shape.
  dom::parser parser;
  dom::element doc;
  if (auto error = parser.parse(body).get(doc); error != simdjson::SUCCESS) {
    // nlohmann says where (line, column) and what; through its SAX interface, so nothing is
    // built (its DOM of a 16 MiB body took 30x the body).
    std::string where;
    ParseErrorOnly sax(where);
    json::sax_parse(body, &sax);
    if (!where.empty()) throw UsageError("the body is not JSON: " + where);
    throw UsageError(std::string("the body is not JSON: ") + simdjson::error_message(error));
  }
  dom::object top;
  if (doc.get_object().get(top) != simdjson::SUCCESS)
    throw UsageError("the body must be a JSON object with \"instances\" or \"inputs\"; got " + type_name(doc));
  dom::element field;
  if (top.at_key("signature_name").get(field) == simdjson::SUCCESS) {
    std::string_view name;
    if (field.get_string().get(name) != simdjson::SUCCESS) throw UsageError("\"signature_name\" must be a string");
    if (!name.empty() && name != kSignatureName)
      throw UsageError("the model has one signature, \"" + std::string(kSignatureName) + "\"; got " + quoted(name));
  }
  dom::element instances, inputs;
  const bool has_instances = top.at_key("instances").get(instances) == simdjson::SUCCESS;
  const bool has_inputs = top.at_key("inputs").get(inputs) == simdjson::SUCCESS;
  if (has_instances == has_inputs)
    throw UsageError(has_instances ? "the body holds both \"instances\" and \"inputs\"; give one"
                                   : "the body holds neither \"instances\" (row format) nor \"inputs\" (columnar format)");
  PredictInput in;
  const auto per_row = static_cast<int64_t>(numel(sample));
  std::vector<size_t> index;
  if (has_instances) {
    dom::array rows;
    if (instances.get_array().get(rows) != simdjson::SUCCESS)
      throw UsageError("\"instances\" must be an array of rows; got " + type_name(instances));
    in.rows = static_cast<int64_t>(rows.size());
    check_rows(in.rows, max_rows, "\"instances\"");
    in.named = (*rows.begin()).is_object();
    in.values.reserve(static_cast<size_t>(in.rows * per_row));
    size_t i = 0;
    for (dom::element row : rows) {
      const std::string root = "instances[" + std::to_string(i++) + "]";
      if (row.is_object() != in.named)
        throw UsageError(root + ": every instance must be given the same way (all named or all plain)");
      if (in.named)
        read_tensor(named_input(dom::object(row), root), sample, 0, in.values, root + ".input", index);
      else
        read_tensor(row, sample, 0, in.values, root, index);
    }
  } else {
    in.columnar = true;
    dom::element t = inputs;
    std::string root = "inputs";
    if (t.is_object()) {
      in.named = true;
      t = named_input(dom::object(t), root);
      root += ".input";
    }
    dom::array rows;
    if (t.get_array().get(rows) != simdjson::SUCCESS)
      throw UsageError(root + ": expected an array of rows; got " + type_name(t));
    in.rows = static_cast<int64_t>(rows.size());
    check_rows(in.rows, max_rows, ("\"" + root + "\"").c_str());
    Shape batch = {in.rows};
    batch.insert(batch.end(), sample.begin(), sample.end());
    in.values.reserve(static_cast<size_t>(in.rows * per_row));
    read_tensor(t, batch, 0, in.values, root, index);
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
