#include "dtypes.hpp"

#include <iterator>

#include <ckpt/plugin_abi.h>

#include <onnx/onnx_pb.h>

namespace ckpt_onnx {

static_assert(onnx_type::kFloat == onnx::TensorProto_DataType_FLOAT);
static_assert(onnx_type::kUint8 == onnx::TensorProto_DataType_UINT8);
static_assert(onnx_type::kInt8 == onnx::TensorProto_DataType_INT8);
static_assert(onnx_type::kUint16 == onnx::TensorProto_DataType_UINT16);
static_assert(onnx_type::kInt16 == onnx::TensorProto_DataType_INT16);
static_assert(onnx_type::kInt32 == onnx::TensorProto_DataType_INT32);
static_assert(onnx_type::kInt64 == onnx::TensorProto_DataType_INT64);
static_assert(onnx_type::kString == onnx::TensorProto_DataType_STRING);
static_assert(onnx_type::kBool == onnx::TensorProto_DataType_BOOL);
static_assert(onnx_type::kFloat16 == onnx::TensorProto_DataType_FLOAT16);
static_assert(onnx_type::kDouble == onnx::TensorProto_DataType_DOUBLE);
static_assert(onnx_type::kUint32 == onnx::TensorProto_DataType_UINT32);
static_assert(onnx_type::kUint64 == onnx::TensorProto_DataType_UINT64);
static_assert(onnx_type::kBfloat16 == onnx::TensorProto_DataType_BFLOAT16);
static_assert(onnx_type::kComplex64 == onnx::TensorProto_DataType_COMPLEX64);
static_assert(onnx_type::kComplex128 == onnx::TensorProto_DataType_COMPLEX128);
// FLOAT8E4M3FN (17) and FLOAT8E5M2 (19) are newer than the onnx.proto Debian builds against;
// their numbers are fixed by ONNX 1.14's onnx.proto.

int32_t onnx_type_of(uint32_t d) {
  switch (d) {
    case CKPT_DTYPE_F32: return onnx_type::kFloat;
    case CKPT_DTYPE_F64: return onnx_type::kDouble;
    case CKPT_DTYPE_F16: return onnx_type::kFloat16;
    case CKPT_DTYPE_BF16: return onnx_type::kBfloat16;
    case CKPT_DTYPE_I8: return onnx_type::kInt8;
    case CKPT_DTYPE_U8: return onnx_type::kUint8;
    case CKPT_DTYPE_I16: return onnx_type::kInt16;
    case CKPT_DTYPE_I32: return onnx_type::kInt32;
    case CKPT_DTYPE_I64: return onnx_type::kInt64;
    case CKPT_DTYPE_BOOL: return onnx_type::kBool;
    case CKPT_DTYPE_U16: return onnx_type::kUint16;
    case CKPT_DTYPE_U32: return onnx_type::kUint32;
    case CKPT_DTYPE_U64: return onnx_type::kUint64;
    case CKPT_DTYPE_C64: return onnx_type::kComplex64;
    case CKPT_DTYPE_C128: return onnx_type::kComplex128;
    case CKPT_DTYPE_F8_E4M3FN: return onnx_type::kFloat8e4m3fn;
    case CKPT_DTYPE_F8_E5M2: return onnx_type::kFloat8e5m2;
    default: return 0;
  }
}

uint32_t ckpt_dtype_of(int32_t t) {
  switch (t) {
    case onnx_type::kFloat: return CKPT_DTYPE_F32;
    case onnx_type::kDouble: return CKPT_DTYPE_F64;
    case onnx_type::kFloat16: return CKPT_DTYPE_F16;
    case onnx_type::kBfloat16: return CKPT_DTYPE_BF16;
    case onnx_type::kInt8: return CKPT_DTYPE_I8;
    case onnx_type::kUint8: return CKPT_DTYPE_U8;
    case onnx_type::kInt16: return CKPT_DTYPE_I16;
    case onnx_type::kInt32: return CKPT_DTYPE_I32;
    case onnx_type::kInt64: return CKPT_DTYPE_I64;
    case onnx_type::kBool: return CKPT_DTYPE_BOOL;
    case onnx_type::kUint16: return CKPT_DTYPE_U16;
    case onnx_type::kUint32: return CKPT_DTYPE_U32;
    case onnx_type::kUint64: return CKPT_DTYPE_U64;
    case onnx_type::kComplex64: return CKPT_DTYPE_C64;
    case onnx_type::kComplex128: return CKPT_DTYPE_C128;
    case onnx_type::kFloat8e4m3fn: return CKPT_DTYPE_F8_E4M3FN;
    case onnx_type::kFloat8e5m2: return CKPT_DTYPE_F8_E5M2;
    default: return 0;
  }
}

std::string onnx_type_name(int32_t t) {
  // The names of onnx.proto's TensorProto.DataType as Debian's onnx knows them, and the float8s
  // it does not. A table, not TensorProto_DataType_Name: that builds protobuf's descriptors of
  // all of onnx.proto on first use, milliseconds for every process that reads a model.
  static constexpr const char* kNames[] = {"UNDEFINED", "FLOAT",  "UINT8",  "INT8",      "UINT16",    "INT16",
                                           "INT32",     "INT64",  "STRING", "BOOL",      "FLOAT16",   "DOUBLE",
                                           "UINT32",    "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"};
  static_assert(std::size(kNames) == onnx::TensorProto_DataType_DataType_ARRAYSIZE);
  // Newer types (onnx.proto of IR 9 and 10; ckpt has no dtype for most): named in messages.
  switch (t) {
    case onnx_type::kFloat8e4m3fn: return "FLOAT8E4M3FN";
    case 18: return "FLOAT8E4M3FNUZ";
    case onnx_type::kFloat8e5m2: return "FLOAT8E5M2";
    case 20: return "FLOAT8E5M2FNUZ";
    case 21: return "UINT4";
    case 22: return "INT4";
    case 23: return "FLOAT4E2M1";
    default: break;
  }
  if (t >= 0 && static_cast<size_t>(t) < std::size(kNames)) return kNames[t];
  return "data type " + std::to_string(t);
}

}  // namespace ckpt_onnx
