// ckpt dtypes and ONNX TensorProto data types. The numbers are ONNX's (onnx.proto); dtypes.cpp
// checks them against the generated enum.
#pragma once

#include <cstdint>
#include <string>

namespace ckpt_onnx {

namespace onnx_type {
inline constexpr int32_t kFloat = 1, kUint8 = 2, kInt8 = 3, kUint16 = 4, kInt16 = 5, kInt32 = 6,
                         kInt64 = 7, kString = 8, kBool = 9, kFloat16 = 10, kDouble = 11,
                         kUint32 = 12, kUint64 = 13, kComplex64 = 14, kComplex128 = 15,
                         kBfloat16 = 16, kFloat8e4m3fn = 17, kFloat8e5m2 = 19;
}

// The ONNX data type that holds a ckpt dtype exactly (every ckpt dtype has one), or 0.
int32_t onnx_type_of(uint32_t ckpt_dtype);
// The ckpt dtype of an ONNX data type, or 0 when ckpt has none (string, the fnuz float8s,
// 4-bit types).
uint32_t ckpt_dtype_of(int32_t onnx_type);
// How many numbers of a typed field (float_data, ...) make one element: 2 for complex.
inline uint64_t numbers_per_element(int32_t onnx_type) {
  return onnx_type == onnx_type::kComplex64 || onnx_type == onnx_type::kComplex128 ? 2 : 1;
}
// "FLOAT", "UINT16", ... or "data type 42".
std::string onnx_type_name(int32_t onnx_type);

}  // namespace ckpt_onnx
