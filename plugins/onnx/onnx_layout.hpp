// The constants of the ckpt ONNX layout (docs/formats/onnx.md): which ONNX versions we write,
// where our own metadata lives, and the protobuf field numbers the streaming writer and the
// lazy scanner use without the generated classes.
#pragma once

#include <cstdint>
#include <string_view>

namespace ckpt_onnx {

// IR 8 and opset 13: the newest IR Debian's onnx 1.12 checker accepts, and an opset every
// ONNX Runtime since 1.7 runs whose Softmax normalises one axis as PyTorch's does.
inline constexpr int64_t kIrVersion = 8;
inline constexpr int64_t kOpsetVersion = 13;
inline constexpr std::string_view kProducerName = "ckpt";
inline constexpr std::string_view kProducerVersion = "0.1.0";

// metadata_props keys. kDocumentKey holds the whole document but its tensors (JSON, see
// onnx_document.hpp); it is written last, so a file cut anywhere before its end lacks it.
inline constexpr std::string_view kDocumentKey = "ckpt.document";
inline constexpr std::string_view kGraphKey = "ckpt.graph";
inline constexpr std::string_view kExternalKey = "ckpt.external_data";
// meta's attributes are also copied here, one entry each, for tools that show metadata_props.
inline constexpr std::string_view kMetaKeyPrefix = "meta/";
inline constexpr int64_t kDocumentVersion = 1;

// Initializers of tensors outside model/state (optimizer moments, trainer RNG state, extra)
// are named by this prefix and their document path; no ONNX exporter uses it and no document
// name can hold the '/'.
inline constexpr std::string_view kReservedPrefix = "ckpt/";

// A protobuf message (and so a whole .onnx file without external data) must stay below 2 GiB;
// the writer keeps this much room for the graph and the metadata that follow the tensors.
inline constexpr uint64_t kProtobufLimit = (uint64_t{1} << 31) - 1;
inline constexpr uint64_t kTailReserve = uint64_t{64} << 20;

// External data: one file beside the model; a header page, then every tensor at a multiple of
// the page size so that it can be mapped (by us, and by ONNX Runtime) where it lies.
inline constexpr uint64_t kExternalAlignment = 4096;
inline constexpr std::string_view kExternalMagic = "ckpt-onnx-data/1";
inline constexpr std::string_view kExternalSuffix = ".data";

// Nesting of groups in a document the reader accepts (its decoder recurses once per level).
inline constexpr size_t kMaxDepth = 1024;

namespace field {
// ModelProto
inline constexpr uint32_t kIrVersion = 1, kProducerName = 2, kProducerVersion = 3, kDomain = 4,
                          kModelVersion = 5, kDocString = 6, kGraph = 7, kOpsetImport = 8,
                          kMetadataProps = 14, kTrainingInfo = 20, kFunctions = 25;
// GraphProto
inline constexpr uint32_t kNode = 1, kInitializer = 5, kSparseInitializer = 15;
// NodeProto, AttributeProto
inline constexpr uint32_t kNodeName = 3, kNodeOpType = 4, kNodeAttribute = 5;
inline constexpr uint32_t kAttributeName = 1, kAttributeTensor = 5;
// TensorProto
inline constexpr uint32_t kDims = 1, kDataType = 2, kSegment = 3, kFloatData = 4, kInt32Data = 5,
                          kStringData = 6, kInt64Data = 7, kName = 8, kRawData = 9,
                          kDoubleData = 10, kUint64Data = 11, kTensorDocString = 12,
                          kExternalData = 13, kDataLocation = 14;
// StringStringEntryProto, OperatorSetIdProto
inline constexpr uint32_t kKey = 1, kValue = 2, kOpsetDomain = 1, kOpsetVersion = 2;
}  // namespace field

namespace wire {
inline constexpr uint32_t kVarint = 0, kFixed64 = 1, kLength = 2, kFixed32 = 5;
constexpr uint32_t tag(uint32_t field, uint32_t type) { return (field << 3) | type; }
}  // namespace wire

}  // namespace ckpt_onnx
