#include "model_scan.hpp"

#include "dtypes.hpp"
#include "onnx_layout.hpp"
#include "text.hpp"
#include "wire_reader.hpp"

#include <ckpt/sdk.hpp>

#include <charconv>
#include <unordered_set>

namespace ckpt_onnx {

using ckpt::sdk::fail;

const std::string* ScannedModel::metadata_value(std::string_view key) const {
  const std::string* found = nullptr;
  for (const auto& [k, v] : metadata)
    if (k == key) found = &v;  // as protobuf's maps do, the last entry wins
  return found;
}

namespace {

const char* typed_field_name(uint32_t f) {
  switch (f) {
    case field::kFloatData: return "float_data";
    case field::kInt32Data: return "int32_data";
    case field::kStringData: return "string_data";
    case field::kInt64Data: return "int64_data";
    case field::kDoubleData: return "double_data";
    case field::kUint64Data: return "uint64_data";
    default: return "?";
  }
}

// The typed field ONNX keeps elements of `type` in (onnx.proto's comments on each field).
uint32_t typed_field_for(int32_t type) {
  switch (type) {
    case onnx_type::kFloat: case onnx_type::kComplex64: return field::kFloatData;
    case onnx_type::kDouble: case onnx_type::kComplex128: return field::kDoubleData;
    case onnx_type::kInt64: return field::kInt64Data;
    case onnx_type::kUint32: case onnx_type::kUint64: return field::kUint64Data;
    case onnx_type::kString: return field::kStringData;
    default: return field::kInt32Data;  // int32 and everything narrower, float16, bfloat16, bool
  }
}

// Elements in a packed run; varint runs must end inside it.
uint64_t count_packed(std::span<const std::byte> file, uint32_t typed_field, uint64_t offset, uint64_t size,
                      WireReader& w) {
  switch (typed_field) {
    case field::kFloatData:
      if (size % 4) w.error(offset, "packed float_data of " + std::to_string(size) + " bytes, not a multiple of 4");
      return size / 4;
    case field::kDoubleData:
      if (size % 8) w.error(offset, "packed double_data of " + std::to_string(size) + " bytes, not a multiple of 8");
      return size / 8;
    default: {
      // A varint ends at each byte below 0x80.
      uint64_t n = 0, run = 0;
      for (uint64_t k = 0; k < size; ++k) {
        if (static_cast<uint8_t>(file[offset + k]) < 0x80) {
          ++n;
          run = 0;
        } else if (++run >= 10) {
          w.error(offset + k, std::string("a varint in packed ") + typed_field_name(typed_field) + " longer than 10 bytes");
        }
      }
      if (run) w.error(offset + size - 1, std::string("packed ") + typed_field_name(typed_field) + " ends inside a varint");
      return n;
    }
  }
}

uint64_t decimal(WireReader& w, uint64_t at, const std::string& key, const std::string& text) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size())
    w.error(at, "external_data " + key + " " + quote_text(text) + " is not a non-negative decimal integer");
  return v;
}

class Scanner {
 public:
  Scanner(std::span<const std::byte> file, const std::string& source) : file_(file), w_(file, source) {}

  ScannedModel run() {
    bool graph = false;
    uint32_t f, wt;
    while (w_.next(f, wt)) {
      const uint64_t at = w_.pos();
      switch (f) {
        case field::kIrVersion:
          w_.expect(wt, wire::kVarint, "ir_version");
          m_.ir_version = static_cast<int64_t>(w_.varint("ir_version"));
          if (m_.ir_version <= 0) w_.error(at, "ir_version " + std::to_string(m_.ir_version) + " is not positive");
          break;
        case field::kProducerName: w_.expect(wt, wire::kLength, "producer_name"); m_.producer_name = w_.string("producer_name"); break;
        case field::kProducerVersion: w_.expect(wt, wire::kLength, "producer_version"); m_.producer_version = w_.string("producer_version"); break;
        case field::kDomain: w_.expect(wt, wire::kLength, "domain"); m_.domain = w_.string("domain"); break;
        case field::kDocString: w_.expect(wt, wire::kLength, "doc_string"); m_.doc_string = w_.string("doc_string"); break;
        case field::kModelVersion:
          w_.expect(wt, wire::kVarint, "model_version");
          m_.model_version = static_cast<int64_t>(w_.varint("model_version"));
          break;
        case field::kGraph:
          w_.expect(wt, wire::kLength, "graph");
          w_.set_context("graph");
          w_.enter("graph");
          graph_fields();
          w_.leave();
          w_.set_context("");
          graph = true;
          break;
        case field::kOpsetImport: opset(wt); break;
        case field::kMetadataProps: metadata(wt); break;
        case field::kTrainingInfo: {
          m_.has_training_info = true;
          w_.expect(wt, wire::kLength, "training_info");
          const uint64_t n = w_.length("training_info");
          m_.training_info.emplace_back(reinterpret_cast<const char*>(file_.data() + w_.pos()), n);
          w_.skip(n);
          break;
        }
        case field::kFunctions: {
          m_.has_functions = true;
          w_.expect(wt, wire::kLength, "functions");
          const uint64_t n = w_.length("functions");
          m_.functions.emplace_back(reinterpret_cast<const char*>(file_.data() + w_.pos()), n);
          w_.skip(n);
          break;
        }
        default: w_.skip_field(f, wt);
      }
    }
    if (m_.ir_version == 0) w_.error(0, "not an ONNX model: it has no ir_version (ModelProto field 1)");
    if (!graph) w_.error(w_.pos(), "not an ONNX model: it has no graph (ModelProto field 7)");
    return std::move(m_);
  }

 private:
  void opset(uint32_t wt) {
    w_.expect(wt, wire::kLength, "opset_import");
    if (m_.opsets.size() >= kMaxEntries)
      fail(CKPT_ERR_LIMIT, "'" + w_.source() + "': more than " + std::to_string(kMaxEntries) + " opset_import entries");
    w_.set_context("opset_import[" + std::to_string(m_.opsets.size()) + "]");
    w_.enter("opset_import");
    std::string domain;
    int64_t version = 0;
    uint32_t f, t;
    while (w_.next(f, t)) {
      if (f == field::kOpsetDomain && t == wire::kLength) domain = w_.string("domain");
      else if (f == field::kOpsetVersion && t == wire::kVarint) version = static_cast<int64_t>(w_.varint("version"));
      else w_.skip_field(f, t);
    }
    w_.leave();
    w_.set_context("");
    m_.opsets.emplace_back(std::move(domain), version);
  }

  void metadata(uint32_t wt) {
    w_.expect(wt, wire::kLength, "metadata_props");
    if (m_.metadata.size() >= kMaxEntries)
      fail(CKPT_ERR_LIMIT, "'" + w_.source() + "': more than " + std::to_string(kMaxEntries) + " metadata_props entries");
    w_.set_context("metadata_props[" + std::to_string(m_.metadata.size()) + "]");
    w_.enter("metadata_props entry");
    std::string key, value;
    uint32_t f, t;
    while (w_.next(f, t)) {
      if (f == field::kKey && t == wire::kLength) key = w_.string("key");
      else if (f == field::kValue && t == wire::kLength) value = w_.string("value");
      else w_.skip_field(f, t);
    }
    w_.leave();
    w_.set_context("");
    // ONNX Runtime keeps the last entry of a key, onnx.helper lists both: refused.
    if (!metadata_keys_.insert(key).second)
      w_.error(w_.pos(), "metadata_props key " + quote_text(key) + " appears twice (readers differ on which counts)");
    m_.metadata.emplace_back(std::move(key), std::move(value));
  }

  void graph_fields() {
    uint32_t f, wt;
    for (;;) {
      const uint64_t start = w_.pos();
      if (!w_.next(f, wt)) break;
      if (f == field::kInitializer) {
        w_.expect(wt, wire::kLength, "graph initializer");
        initializer();
        w_.set_context("graph");
        continue;
      }
      if (f == field::kNode && wt == wire::kLength) {
        node();
      } else {
        if (f == field::kSparseInitializer) ++m_.sparse_initializers;
        w_.skip_field(f, wt);
      }
      m_.graph_rest.append(reinterpret_cast<const char*>(file_.data() + start), w_.pos() - start);
    }
  }

  // Counts the elements of one occurrence of a typed field; the reader decodes them later by
  // walking the TensorProto again, so nothing per element is kept here.
  uint64_t typed_elements(Initializer& t, uint32_t f, uint32_t wt, uint64_t tag_at) {
    const bool fixed32 = f == field::kFloatData, fixed64 = f == field::kDoubleData;
    const uint32_t single = fixed32 ? wire::kFixed32 : fixed64 ? wire::kFixed64 : wire::kVarint;
    if (t.typed_field && t.typed_field != f)
      w_.error(tag_at, std::string("data in both ") + typed_field_name(t.typed_field) + " and " + typed_field_name(f));
    t.typed_field = f;
    if (wt == wire::kLength) {
      const uint64_t size = w_.length(typed_field_name(f));
      const uint64_t n = count_packed(file_, f, w_.pos(), size, w_);
      w_.skip(size);
      return n;
    }
    if (wt != single) w_.error(tag_at, std::string(typed_field_name(f)) + " has wire type " + std::to_string(wt));
    if (fixed32) w_.fixed32(typed_field_name(f));
    else if (fixed64) w_.fixed64(typed_field_name(f));
    else w_.varint(typed_field_name(f));
    return 1;
  }

  void initializer() {
    const size_t index = m_.initializers.size();
    count_tensor();
    m_.initializers.push_back(tensor("graph/initializer[" + std::to_string(index) + "]", true, {}));
  }

  void count_tensor() {
    if (m_.initializers.size() + m_.attribute_tensors.size() >= kMaxEntries)
      fail(CKPT_ERR_LIMIT, "'" + w_.source() + "': more than " + std::to_string(kMaxEntries) +
                               " initializers and node attribute tensors");
  }

  // A node, copied whole for the generated parser by the caller; each attribute's tensor
  // (AttributeProto.t: a Constant's value) is scanned here as an initializer is, so that its
  // data is found, checked and later read by the same code.
  void node() {
    const size_t index = nodes_++;
    const std::string context = "graph/node[" + std::to_string(index) + "]";
    w_.set_context(context);
    w_.enter("node");
    const size_t first = m_.attribute_tensors.size();
    std::string name, op_type;
    std::vector<std::string> attribute_names;
    uint32_t f, wt;
    while (w_.next(f, wt)) {
      if (f == field::kNodeName && wt == wire::kLength) {
        name = w_.string("name");
      } else if (f == field::kNodeOpType && wt == wire::kLength) {
        op_type = w_.string("op_type");
      } else if (f == field::kNodeAttribute && wt == wire::kLength) {
        attribute_names.push_back(node_attribute(index, attribute_names.size(), context));
        w_.set_context(context);
      } else {
        w_.skip_field(f, wt);
      }
    }
    w_.leave();
    w_.set_context("graph");
    // Named once the whole node is read: protobuf's fields may come in any order.
    for (size_t i = first; i < m_.attribute_tensors.size(); ++i) {
      AttributeTensor& a = m_.attribute_tensors[i];
      a.tensor.what = "node " + std::to_string(index) + " (" + op_type + (name.empty() ? "" : " " + quote_text(name)) +
                      ") attribute " + quote_text(attribute_names[a.attribute]);
    }
  }

  // Returns the attribute's name.
  std::string node_attribute(size_t node, size_t k, const std::string& node_context) {
    const std::string context = node_context + " attribute[" + std::to_string(k) + "]";
    w_.set_context(context);
    w_.enter("attribute");
    std::string name;
    bool has_tensor = false;
    uint32_t f, wt;
    for (;;) {
      const uint64_t tag_at = w_.pos();
      if (!w_.next(f, wt)) break;
      if (f == field::kAttributeName && wt == wire::kLength) {
        name = w_.string("name");
      } else if (f == field::kAttributeTensor && wt == wire::kLength) {
        // protobuf merges a message field given twice (dims appended, the last raw_data): one
        // reading would take more than this scan. Refused.
        if (has_tensor) w_.error(tag_at, "the attribute gives its tensor (field t) twice");
        has_tensor = true;
        count_tensor();
        const std::string what = "node " + std::to_string(node) + " attribute " + quote_text(name);
        m_.attribute_tensors.push_back({node, k, tensor(context + " " + quote_text(name) + " t", false, what)});
        w_.set_context(context);
      } else {
        w_.skip_field(f, wt);
      }
    }
    w_.leave();
    return name;
  }

  // One TensorProto, the current field: an initializer's (named by its name field) or the
  // tensor of a node attribute (described by `what`).
  Initializer tensor(const std::string& context, bool is_initializer, const std::string& what) {
    Initializer t;
    t.at = w_.pos();
    w_.set_context(context);
    t.body_size = w_.enter(is_initializer ? "initializer" : "tensor");
    t.body_offset = w_.pos();
    uint64_t typed_count = 0;
    bool has_type = false, has_raw = false;
    uint64_t raw_size = 0;
    int64_t location = 0;
    std::vector<std::pair<std::string, std::string>> external;
    uint32_t f, wt;
    for (;;) {
      const uint64_t tag_at = w_.pos();
      if (!w_.next(f, wt)) break;
      const uint64_t at = w_.pos();
      switch (f) {
        case field::kDims:
          if (wt == wire::kLength) {
            w_.enter("dims");
            while (w_.end() > w_.pos()) {
              if (t.dims.size() == kMaxRank) w_.error(at, "more than " + std::to_string(kMaxRank) + " dims");
              t.dims.push_back(static_cast<int64_t>(w_.varint("dims")));
            }
            w_.leave();
          } else {
            w_.expect(wt, wire::kVarint, "dims");
            if (t.dims.size() == kMaxRank) w_.error(at, "more than " + std::to_string(kMaxRank) + " dims");
            t.dims.push_back(static_cast<int64_t>(w_.varint("dims")));
          }
          break;
        case field::kDataType:
          w_.expect(wt, wire::kVarint, "data_type");
          t.onnx_type = static_cast<int32_t>(w_.varint("data_type"));
          has_type = true;
          break;
        case field::kSegment: w_.error(at, "segmented tensors (TensorProto.segment) are not supported");
        case field::kFloatData: case field::kInt32Data: case field::kInt64Data:
        case field::kDoubleData: case field::kUint64Data:
          typed_count += typed_elements(t, f, wt, tag_at);
          break;
        case field::kStringData:
          t.typed_field = field::kStringData;
          w_.skip_field(f, wt);
          break;
        case field::kName:
          w_.expect(wt, wire::kLength, "name");
          t.name = w_.string("name");
          if (is_initializer) w_.set_context(context + " " + quote_text(t.name));
          break;
        case field::kRawData:
          w_.expect(wt, wire::kLength, "raw_data");
          raw_size = w_.length("raw_data");
          t.raw_offset = w_.pos();
          has_raw = true;
          w_.skip(raw_size);
          break;
        case field::kExternalData: {
          w_.expect(wt, wire::kLength, "external_data");
          w_.enter("external_data entry");
          std::string key, value;
          uint32_t ef, et;
          while (w_.next(ef, et)) {
            if (ef == field::kKey && et == wire::kLength) key = w_.string("key");
            else if (ef == field::kValue && et == wire::kLength) value = w_.string("value");
            else w_.skip_field(ef, et);
          }
          w_.leave();
          if (external.size() == 64) w_.error(at, "more than 64 external_data entries");
          external.emplace_back(std::move(key), std::move(value));
          break;
        }
        case field::kDataLocation:
          w_.expect(wt, wire::kVarint, "data_location");
          location = static_cast<int64_t>(w_.varint("data_location"));
          break;
        default: w_.skip_field(f, wt);
      }
    }
    w_.leave();
    const uint64_t at = t.at;
    if (!has_type || t.onnx_type == 0) w_.error(at, "the tensor has no data_type");
    t.dtype = ckpt_dtype_of(t.onnx_type);
    for (int64_t d : t.dims)
      if (d < 0) w_.error(at, "negative dimension in dims " + shape_text(t.dims));
    t.what = is_initializer ? "initializer " + quote_text(t.name) : what;
    const std::string where = "'" + w_.source() + "': " + t.what;
    t.numel = ckpt::sdk::checked_nbytes(t.dims, 1, where);
    if (t.dtype) t.nbytes = ckpt::sdk::checked_nbytes(t.dims, ckpt::sdk::dtype_size(t.dtype), where);
    const std::string type = onnx_type_name(t.onnx_type);

    if (location != 0 && location != 1) w_.error(at, "data_location " + std::to_string(location) + " is neither DEFAULT (0) nor EXTERNAL (1)");
    if (location == 1) {
      if (has_raw || t.typed_field) w_.error(at, "data_location is EXTERNAL but the tensor also holds data in the file");
      t.storage = Initializer::Storage::external;
      bool has_location = false;
      for (const auto& [k, v] : external) {
        if (k == "location") {
          // ONNX Runtime refuses a second location; taking either would read another file.
          if (has_location) w_.error(at, "external_data gives the key \"location\" twice");
          t.external.location = v;
          has_location = true;
        } else if (k == "offset") {
          t.external.offset = decimal(w_, at, k, v);
        } else if (k == "length") {
          t.external.length = decimal(w_, at, k, v);
          t.external.has_length = true;
        }
      }
      if (!has_location || t.external.location.empty())
        w_.error(at, "data_location is EXTERNAL but external_data has no location");
      if (t.dtype && t.external.has_length && t.external.length != t.nbytes)
        w_.error(at, "external_data length " + std::to_string(t.external.length) + " but dims " + shape_text(t.dims) +
                         " of " + type + " need " + std::to_string(t.nbytes) + " bytes");
    } else if (!external.empty()) {
      w_.error(at, "external_data is given but data_location is not EXTERNAL");
    } else if (has_raw) {
      if (t.typed_field) w_.error(at, std::string("data in both raw_data and ") + typed_field_name(t.typed_field));
      if (t.dtype && raw_size != t.nbytes)
        w_.error(at, "raw_data holds " + std::to_string(raw_size) + " bytes but dims " + shape_text(t.dims) + " of " +
                         type + " need " + std::to_string(t.nbytes));
      t.storage = Initializer::Storage::raw;
    } else if (t.typed_field) {
      if (t.dtype) {
        if (t.typed_field != typed_field_for(t.onnx_type))
          w_.error(at, "a " + type + " tensor keeps its elements in " + typed_field_name(typed_field_for(t.onnx_type)) +
                           ", not " + typed_field_name(t.typed_field));
        const uint64_t n = typed_count, need = t.numel * numbers_per_element(t.onnx_type);
        if (n != need)
          w_.error(at, std::string(typed_field_name(t.typed_field)) + " holds " + std::to_string(n) + " numbers but dims " +
                           shape_text(t.dims) + " of " + type + " need " + std::to_string(need));
      }
      t.storage = Initializer::Storage::typed;
    } else if (t.numel != 0) {
      w_.error(at, "the tensor has " + std::to_string(t.numel) + " elements but no data");
    }
    return t;
  }

  std::span<const std::byte> file_;
  WireReader w_;
  ScannedModel m_;
  size_t nodes_ = 0;  // across every graph field, which protobuf merges into one graph
  std::unordered_set<std::string> metadata_keys_;
};

}  // namespace

ScannedModel scan_model(std::span<const std::byte> file, const std::string& source) {
  if (file.empty()) fail(CKPT_ERR_FORMAT, "'" + source + "': an empty file is not an ONNX model");
  if (file.size() > kProtobufLimit)
    fail(CKPT_ERR_LIMIT, "'" + source + "': " + std::to_string(file.size()) +
                             " bytes; an .onnx file is one protobuf message, which must stay below 2 GiB "
                             "(larger models keep their tensors in external data)");
  return Scanner(file, source).run();
}

}  // namespace ckpt_onnx
