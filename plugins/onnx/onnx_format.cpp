// The "onnx" format: what it declares to the host, how it recognises ONNX models, its options,
// and the plugin's entry point.
#include "onnx_layout.hpp"
#include "onnx_reader.hpp"
#include "onnx_writer.hpp"

#include <ckpt/sdk.hpp>

#include <onnx/onnx_pb.h>

#include <charconv>
#include <dlfcn.h>
#include <string_view>

namespace ckpt_onnx {

namespace {

uint64_t byte_option(ckpt::sdk::Options& o, const std::string& key, uint64_t fallback) {
  const std::string text = o.get(key, std::to_string(fallback));
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size())
    ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, "option " + key + "=" + text + " is not a byte count");
  return v;
}

// The fields a ModelProto may hold, with their wire types; anything else at the top level of
// the first bytes means the file is not an ONNX model.
bool model_field(uint32_t field, uint32_t type) {
  switch (field) {
    case field::kIrVersion: case field::kModelVersion: return type == wire::kVarint;
    case field::kProducerName: case field::kProducerVersion: case field::kDomain: case field::kDocString:
    case field::kGraph: case field::kOpsetImport: case field::kMetadataProps: case field::kTrainingInfo:
    case field::kFunctions:
      return type == wire::kLength;
    default: return false;
  }
}

// libprotobuf cannot be unloaded (it has GNU unique symbols), but libonnx_proto can; when the
// host unloads this plugin and loads it again, a reloaded libonnx_proto would register its
// descriptors a second time in the surviving libprotobuf, which aborts the process. Marking
// libonnx_proto NODELETE when this plugin loads keeps it resident with libprotobuf; the plugin
// itself still unloads.
[[maybe_unused]] const bool kOnnxProtoPinned = [] {
  Dl_info info{};
  // A data object libonnx_proto defines (inline functions would resolve to this plugin's copy).
  if (!::dladdr(&::descriptor_table_onnx_2fonnx_2dml_2eproto, &info) || !info.dli_fname)
    return false;
  return ::dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != nullptr;
}();

}  // namespace

struct OnnxFormat {
  static constexpr const char* name = "onnx";
  static constexpr const char* long_name = "ONNX model (graph from model/spec, initializers, external data)";
  static std::vector<std::string> extensions() { return {".onnx"}; }
  // Every ONNX model starts with ir_version (field 1, varint): protobuf writes fields in order.
  static std::vector<ckpt::sdk::Magic> magic() { return {{0, std::string("\x08", 1)}}; }
  static constexpr uint32_t capabilities = CKPT_CAP_READ | CKPT_CAP_WRITE | CKPT_CAP_MAP | CKPT_CAP_ATTRIBUTES |
                                           CKPT_CAP_NESTED_GROUPS | CKPT_CAP_ATTRIBUTE_ARRAYS |
                                           CKPT_CAP_LAZY_LIST | CKPT_CAP_DETERMINISTIC;
  static constexpr uint32_t dtypes =
      CKPT_DTYPES_ALL | CKPT_DTYPES_UNSIGNED | CKPT_DTYPES_FLOAT8 | CKPT_DTYPES_COMPLEX;

  // Walks the top-level fields that fit in `head`: ir_version first, then only ModelProto
  // fields with their wire types and lengths that fit in the file. 100 for files ckpt wrote,
  // 90 for other ONNX models.
  static int identify(std::span<const uint8_t> head, uint64_t file_size) {
    if (head.size() < 2 || head[0] != 0x08 || file_size > kProtobufLimit) return 0;
    size_t p = 1;
    // 1: read, 0: the head ends first, -1: longer than a varint can be.
    auto varint = [&](uint64_t& v) {
      v = 0;
      for (int k = 0; k < 10; ++k) {
        if (p >= head.size()) return 0;
        const uint8_t b = head[p++];
        v |= static_cast<uint64_t>(b & 0x7f) << (7 * k);
        if (!(b & 0x80)) return 1;
      }
      return -1;
    };
    uint64_t v = 0;
    if (varint(v) != 1 || v < 1 || v > 100) return 0;
    int fields = 1;
    bool ours = false;
    while (p < head.size()) {
      uint64_t tag = 0, n = 0;
      int r = varint(tag);
      if (r < 0) return 0;
      if (r == 0) break;
      const auto f = static_cast<uint32_t>(tag >> 3), type = static_cast<uint32_t>(tag & 7);
      if (!model_field(f, type)) return 0;
      ++fields;
      r = varint(n);
      if (r < 0) return 0;
      if (r == 0) break;
      if (type == wire::kVarint) continue;
      if (n > file_size - p) return 0;
      if (f == field::kProducerName && n <= head.size() - p)
        ours = std::string_view(reinterpret_cast<const char*>(head.data() + p), n) == kProducerName;
      if (n > head.size() - p) break;
      p += n;
    }
    if (fields < 2) return 0;
    return ours ? 100 : 90;
  }

  static std::unique_ptr<ckpt::sdk::Writer> open_writer(const std::string& path, ckpt::sdk::Options& o) {
    WriterOptions w;
    const std::string mode = o.get("external_data", "auto");
    if (mode == "auto") w.external = WriterOptions::External::automatic;
    else if (mode == "always") w.external = WriterOptions::External::always;
    else if (mode == "never") w.external = WriterOptions::External::never;
    else ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, "option external_data=" + mode + " is not auto, always or never");
    w.external_threshold = byte_option(o, "external_threshold", 1024);
    w.max_inline = byte_option(o, "max_inline_bytes", kProtobufLimit - kTailReserve);
    if (w.max_inline > kProtobufLimit - kTailReserve)
      ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, "option max_inline_bytes may not exceed " +
                                                     std::to_string(kProtobufLimit - kTailReserve) + " (2 GiB - 64 MiB)");
    return std::make_unique<OnnxWriter>(path, w);
  }

  static std::unique_ptr<ckpt::sdk::Reader> open_reader(const std::string& path, ckpt::sdk::Options& o) {
    ReaderOptions r;
    const std::string layout = o.get("layout", "auto");
    if (layout == "onnx") r.as_plain_onnx = true;
    else if (layout != "auto") ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, "option layout=" + layout + " is not auto or onnx");
    return std::make_unique<OnnxReader>(path, r);
  }
};

}  // namespace ckpt_onnx

CKPT_DECLARE_PLUGIN("onnx", "0.1.0", ckpt_onnx::OnnxFormat)
