// The 16-bit element types the kernels are instantiated for: conversions to and from fp32 and the
// matching tensor-core instruction. Storage is always uint16_t bits.
#pragma once
#include <cstdint>

#include "longalign/kernels/device_api.hpp"

namespace longalign::kernels {

struct Bf16 {
  static constexpr int kDtype = 0;
  static LA_DEVICE float to_f32(uint16_t h) {
    union { uint32_t u; float f; } x;
    x.u = uint32_t(h) << 16;
    return x.f;
  }
  // Round to nearest even; NaN stays NaN. On the GPU one cvt (sm_80+). The bit trick on the host
  // must test NaN first: adding 0x7FFF carries the GPU's canonical NaN (0x7FFFFFFF) into the
  // sign bit, giving -0.0 (x86's NaN, 0xFFC00000, happens to survive, so only this test sees it).
  static LA_DEVICE uint16_t from_f32(float f) {
#if defined(__CUDA_ARCH__)
    uint16_t r;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r) : "f"(f));
    return r;
#else
    union { uint32_t u; float f; } x;
    x.f = f;
    if ((x.u & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((x.u >> 16) | 0x0040u);  // quiet NaN, sign kept
    return uint16_t((x.u + 0x7FFFu + ((x.u >> 16) & 1u)) >> 16);
#endif
  }
  static LA_DEVICE void mma(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    mma_m16n8k16_bf16(d, a, b, c);
  }
};

struct F16 {
  static constexpr int kDtype = 1;
  static LA_DEVICE float to_f32(uint16_t h) { return f16_to_f32(h); }
  static LA_DEVICE uint16_t from_f32(float f) { return f32_to_f16(f); }
  static LA_DEVICE void mma(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    mma_m16n8k16_f16(d, a, b, c);
  }
};

// Two fp32 values as one register of two 16-bit elements, low half first (mma operand order).
template <typename E>
LA_DEVICE uint32_t pack2(float lo, float hi) { return uint32_t(E::from_f32(lo)) | (uint32_t(E::from_f32(hi)) << 16); }

}  // namespace longalign::kernels
