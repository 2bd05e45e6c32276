// ckpt dtypes and ONNX TensorProto data types. The numbers are ONNX's (onnx.proto); dtypes.cpp
// checks them against the generated enum.
#pragma once

#include <cstdint>
#include <string>

namespace ckpt_onnx {

namespace onnx_type {
inline constexpr int32_t kFloat = 1, kUint8 = 2, kInt8 = 3, kUint16 = 4, kInt16 = 5, kInt32 = 6,
                         kInt64 = 7, kString = 8, kBool = 9, kFloat16 = 10, kDouble = 11,
                         kUint32 = 12, kUint64 = 13, kBfloat16 = 16;
}

// The ONNX data type that holds a ckpt dtype exactly (every ckpt dtype has one).
int32_t onnx_type_of(uint32_t ckpt_dtype);
// The ckpt dtype of an ONNX data type, or 0 when ckpt has none (uint16, uint32, uint64,
// string, complex, float8).
uint32_t ckpt_dtype_of(int32_t onnx_type);
// "FLOAT", "UINT16", ... or "data type 42".
std::string onnx_type_name(int32_t onnx_type);

}  // namespace ckpt_onnx
