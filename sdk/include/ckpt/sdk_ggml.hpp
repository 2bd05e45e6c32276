// ggml's block-quantized dtypes (plugin_abi.h, CKPT_DTYPE_Q4_0 to Q6_K), decoded and encoded
// from their layouts (ggml's ggml-common.h). Decoding does ggml's float operations in ggml's
// order, so its values are the ones ggml computes, as long as no multiply and add are fused
// into one rounding: clang is told so below; GCC fuses only under -ffp-contract=fast (its GNU
// dialects' default) on a target with FMA, which the baseline x86-64 build has not. Encoding is for the three targets
// ckpt writes (q8_0 and q4_0 as ggml's reference quantizers do; q4_k by each sub-block's
// range, without ggml's iterative search): any valid blocks read the same everywhere.
// Shared by the host (casts) and plugins; header-only like the rest of the SDK.
#pragma once

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_float.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__clang__)
#pragma clang fp contract(off)
#endif

namespace ckpt::sdk::ggml {

namespace detail {

inline float half(const uint8_t* p) { return f16_to_f32(static_cast<uint16_t>(p[0] | p[1] << 8)); }
inline void put_half(uint8_t* p, float f) {
  const uint16_t h = f32_to_f16(f);
  // A scale past f16's range would decode the whole block as infinities and NaNs.
  if ((h & 0x7c00) == 0x7c00)
    fail(CKPT_ERR_UNSUPPORTED, "a block whose scale " + std::to_string(f) + " is beyond the f16 a block stores it in "
                               "(its values are too large for this quantization)");
  p[0] = static_cast<uint8_t>(h & 0xff);
  p[1] = static_cast<uint8_t>(h >> 8);
}

// x / d as x * (1 / d), as ggml computes it, unless 1 / d overflows (a block of tiny values).
inline float scaled(float x, float d, float id) { return std::isfinite(id) ? x * id : x / d; }

// A K-quant's 6-bit scale and min of sub-block j, packed into 12 bytes.
inline void scale_min_k4(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// ggml's rounding to the nearest integer (ties to even, through the float's mantissa) for
// |f| < 2^22.
inline int nearest_int(float f) {
  const float v = f + 12582912.f;
  int32_t i;
  std::memcpy(&i, &v, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

inline void q4_0(const uint8_t* b, float* y) {
  const float d = half(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
    y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

inline void q4_1(const uint8_t* b, float* y) {
  const float d = half(b), m = half(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
    y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

inline uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

// Q5_0 and Q5_1: the fifth bit of element j in bit j of qh.
inline void q5(const uint8_t* b, float* y, bool with_min) {
  const float d = half(b), m = with_min ? half(b + 2) : 0.f;
  const uint32_t qh = le32(b + (with_min ? 4 : 2));
  const uint8_t* qs = b + (with_min ? 8 : 6);
  for (int j = 0; j < 16; ++j) {
    const int h0 = static_cast<int>(((qh >> j) << 4) & 0x10), h1 = static_cast<int>((qh >> (j + 12)) & 0x10);
    const int x0 = (qs[j] & 0x0F) | h0, x1 = (qs[j] >> 4) | h1;
    if (with_min) {
      y[j] = static_cast<float>(x0) * d + m;
      y[j + 16] = static_cast<float>(x1) * d + m;
    } else {
      y[j] = static_cast<float>(x0 - 16) * d;
      y[j + 16] = static_cast<float>(x1 - 16) * d;
    }
  }
}

inline void q8_0(const uint8_t* b, float* y) {
  const float d = half(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

inline void q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* q = b + 16;
  const float d = half(b + 80), dmin = half(b + 82);
  int is = 0;
  for (int n = 0; n < 256; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half16 = 0; half16 < 32; half16 += 16) {
        const uint8_t sc = scales[is++];
        const float dl = d * static_cast<float>(sc & 0xF), ml = dmin * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + half16] >> shift) & 3) - ml;
      }
    }
    q += 32;
  }
}

inline void q3_k(const uint8_t* b, float* y) {
  const uint8_t* hm = b;
  const uint8_t* q = b + 32;
  const uint8_t* packed = b + 96;
  const float d = half(b + 108);
  // Sixteen 6-bit scales: low 4 bits in bytes 0-7 (two per byte), high 2 bits in bytes 8-11.
  int8_t sc[16];
  for (int k = 0; k < 16; ++k) {
    const int low = k < 8 ? packed[k] & 0xF : packed[k - 8] >> 4;
    const int high = (packed[8 + k % 4] >> (2 * (k / 4))) & 3;
    sc[k] = static_cast<int8_t>(low | high << 4);
  }
  int is = 0;
  uint8_t m = 1;
  for (int n = 0; n < 256; n += 128) {
    for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1)) {
      for (int half16 = 0; half16 < 32; half16 += 16) {
        const float dl = d * static_cast<float>(sc[is++] - 32);
        for (int l = 0; l < 16; ++l)
          *y++ = dl * static_cast<float>(((q[l + half16] >> shift) & 3) - ((hm[l + half16] & m) ? 0 : 4));
      }
    }
    q += 32;
  }
}

// Q4_K and Q5_K: eight sub-blocks of 32, each with a 6-bit scale and min.
inline void q45_k(const uint8_t* b, float* y, bool five) {
  const float d = half(b), dmin = half(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + (five ? 48 : 16);
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0, is = 0; j < 256; j += 64, is += 2) {
    uint8_t sc, m;
    scale_min_k4(is, scales, sc, m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    scale_min_k4(is + 1, scales, sc, m);
    const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l)
      *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (five && (qh[l] & u1) ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l)
      *y++ = d2 * static_cast<float>((ql[l] >> 4) + (five && (qh[l] & u2) ? 16 : 0)) - m2;
    ql += 32;
    u1 = static_cast<uint8_t>(u1 << 2);
    u2 = static_cast<uint8_t>(u2 << 2);
  }
}

inline void q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = half(b + 208);
  for (int n = 0; n < 256; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

}  // namespace detail

// Decodes `blocks` blocks of `dtype` at `in` into blocks * dtype_block(dtype).elements floats.
inline void dequantize(uint32_t dtype, const std::byte* in, float* out, uint64_t blocks) {
  const DtypeBlock b = dtype_block(dtype);
  if (!is_block_dtype(dtype)) fail(CKPT_ERR_INVALID_ARGUMENT, std::string("dequantize: ") + (dtype_name(dtype) ? dtype_name(dtype) : "?") + " is not a block dtype");
  const auto* p = reinterpret_cast<const uint8_t*>(in);
  for (uint64_t k = 0; k < blocks; ++k, p += b.bytes, out += b.elements) {
    switch (dtype) {
      case CKPT_DTYPE_Q4_0: detail::q4_0(p, out); break;
      case CKPT_DTYPE_Q4_1: detail::q4_1(p, out); break;
      case CKPT_DTYPE_Q5_0: detail::q5(p, out, false); break;
      case CKPT_DTYPE_Q5_1: detail::q5(p, out, true); break;
      case CKPT_DTYPE_Q8_0: detail::q8_0(p, out); break;
      case CKPT_DTYPE_Q2_K: detail::q2_k(p, out); break;
      case CKPT_DTYPE_Q3_K: detail::q3_k(p, out); break;
      case CKPT_DTYPE_Q4_K: detail::q45_k(p, out, false); break;
      case CKPT_DTYPE_Q5_K: detail::q45_k(p, out, true); break;
      case CKPT_DTYPE_Q6_K: detail::q6_k(p, out); break;
    }
  }
}

// The dtypes ckpt quantizes into.
inline bool can_quantize(uint32_t dtype) {
  return dtype == CKPT_DTYPE_Q8_0 || dtype == CKPT_DTYPE_Q4_0 || dtype == CKPT_DTYPE_Q4_K;
}

// Encodes blocks * dtype_block(dtype).elements finite floats at `in` as `blocks` blocks of
// `dtype` (one of can_quantize's) at `out`.
inline void quantize(uint32_t dtype, const float* in, std::byte* out, uint64_t blocks) {
  if (!can_quantize(dtype))
    fail(CKPT_ERR_UNSUPPORTED, std::string("ckpt quantizes into q8_0, q4_0 and q4_k, not ") + (dtype_name(dtype) ? dtype_name(dtype) : "?"));
  const DtypeBlock bl = dtype_block(dtype);
  auto* b = reinterpret_cast<uint8_t*>(out);
  for (uint64_t k = 0; k < blocks; ++k, in += bl.elements, b += bl.bytes) {
    std::memset(b, 0, bl.bytes);
    if (dtype == CKPT_DTYPE_Q8_0) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(in[j]));
      const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
      detail::put_half(b, d);
      for (int j = 0; j < 32; ++j) {
        const float q = d != 0.f ? std::round(detail::scaled(in[j], d, id)) : 0.f;
        b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::clamp(q, -127.f, 127.f)));
      }
    } else if (dtype == CKPT_DTYPE_Q4_0) {
      // The value of largest magnitude maps to -8, so its sign keeps the full range.
      float amax = 0, max = 0;
      for (int j = 0; j < 32; ++j)
        if (amax < std::fabs(in[j])) {
          amax = std::fabs(in[j]);
          max = in[j];
        }
      const float d = max / -8.f, id = d != 0.f ? 1.f / d : 0.f;
      detail::put_half(b, d);
      auto level = [&](float x) {
        const float v = d != 0.f ? detail::scaled(x, d, id) + 8.5f : 8.5f;
        return static_cast<int>(std::clamp(v, 0.f, 15.f));  // ggml's (int8_t) truncation, kept in range
      };
      for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(level(in[j]) | level(in[j + 16]) << 4);
    } else {
      // Q4_K: per sub-block of 32, x ~ scale * l - min with l in 0..15; the eight scales and
      // mins are themselves 6-bit multiples of the block's d and dmin.
      float scale[8], mn[8], max_scale = 0, max_min = 0;
      for (int j = 0; j < 8; ++j) {
        float lo = in[32 * j], hi = in[32 * j];
        for (int l = 1; l < 32; ++l) {
          lo = std::min(lo, in[32 * j + l]);
          hi = std::max(hi, in[32 * j + l]);
        }
        lo = std::min(lo, 0.f);
        scale[j] = (hi - lo) / 15.f;
        mn[j] = -lo;
        max_scale = std::max(max_scale, scale[j]);
        max_min = std::max(max_min, mn[j]);
      }
      const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f, inv_min = max_min > 0 ? 63.f / max_min : 0.f;
      uint8_t* scales = b + 4;
      for (int j = 0; j < 8; ++j) {
        // In 0..63 by construction (scale <= max_scale), clamped so that rounding cannot leave it.
        const auto ls = static_cast<uint8_t>(std::clamp(detail::nearest_int(std::min(inv_scale * scale[j], 63.f)), 0, 63));
        const auto lm = static_cast<uint8_t>(std::clamp(detail::nearest_int(std::min(inv_min * mn[j], 63.f)), 0, 63));
        if (j < 4) {
          scales[j] = ls;
          scales[j + 4] = lm;
        } else {
          scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
          scales[j - 4] = static_cast<uint8_t>(scales[j - 4] | ((ls >> 4) << 6));
          scales[j] = static_cast<uint8_t>(scales[j] | ((lm >> 4) << 6));
        }
      }
      detail::put_half(b, max_scale / 63.f);
      detail::put_half(b + 2, max_min / 63.f);
      const float d = detail::half(b), dmin = detail::half(b + 2);
      uint8_t levels[256] = {};
      for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        detail::scale_min_k4(j, scales, sc, m);
        const float dd = d * static_cast<float>(sc), dm = dmin * static_cast<float>(m);
        if (dd == 0.f) continue;
        for (int l = 0; l < 32; ++l) {
          const float v = std::clamp((in[32 * j + l] + dm) / dd, -1.f, 16.f);  // nearest_int needs |v| < 2^22
          levels[32 * j + l] = static_cast<uint8_t>(std::clamp(detail::nearest_int(v), 0, 15));
        }
      }
      uint8_t* q = b + 16;
      for (int j = 0; j < 256; j += 64, q += 32)
        for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(levels[j + l] | levels[j + l + 32] << 4);
    }
  }
}

}  // namespace ckpt::sdk::ggml
