// MLX affine group quantization (formats.md §8): the quantizer of MLX's CPU backend, the uint32
// packing along the input dimension, and the dequantizer.
//
// Per group of `group_size` consecutive values of a row (fp32 arithmetic throughout):
//   range_scale = max((wmax - wmin) / (2^bits - 1), 1e-7)
//   |wmin| > |wmax|: edge = wmin, scale = +range_scale;  else edge = wmax, scale = -range_scale
//   q0 = rint(edge / scale); if q0 != 0: scale = edge / q0, bias = edge; else bias = 0
//   q = clamp(rint((w - bias) / scale), 0, 2^bits - 1)
// rint rounds half to even. The edge value and 0.0 come back exactly; scales can be negative.
// Scales and biases are cast to the weight dtype only after q was computed.
//
// Packing: the q values of a row form one little-endian bitstream, value i at bits
// [i*bits, (i+1)*bits), read as consecutive uint32 words. For 2/4/8 bits no value crosses a
// word; 3-, 5- and 6-bit values do (MLX writes them as 3-, 5- and 3-byte packs of 8, 8 and 4
// values, which is the same bitstream).
#pragma once

#include <cstdint>
#include <span>

#include "core/error.h"

namespace mc::mlx {

inline constexpr int kSupportedBits[] = {2, 3, 4, 5, 6, 8};
inline constexpr int kSupportedGroups[] = {32, 64, 128};

// InvalidArgument (with a hint listing what is supported) unless bits/group_size are supported.
Status check_params(int bits, int group_size);

// uint32 words holding `cols` values of `bits` bits (cols must be a multiple of 32).
inline int64_t packed_words(int64_t cols, int bits) { return cols * bits / 32; }

// One group's scale and bias, before the cast to the weight dtype.
struct GroupParams {
  float scale;
  float bias;
};
GroupParams group_params(const float* w, int group_size, int bits);

// Quantized values (0 .. 2^bits-1) of one group given its fp32 parameters. NaN inputs give 0
// (MLX leaves that case undefined).
void quantize_group(const float* w, int group_size, int bits, GroupParams p, uint8_t* q);

// Packs n values (n*bits a multiple of 32) into n*bits/32 words; `out` is overwritten.
void pack(const uint8_t* q, int64_t n, int bits, uint32_t* out);
// Inverse of pack.
void unpack(const uint32_t* words, int64_t n, int bits, uint8_t* q);

// A whole row: `cols` values (a multiple of group_size) -> packed words and per-group fp32
// scales/biases (cols/group_size of each). `scratch` needs `cols` bytes.
void quantize_row(const float* w, int64_t cols, int bits, int group_size, uint32_t* packed,
                  float* scales, float* biases, uint8_t* scratch);

// w = scale * q + bias in fp32 for one row; scales/biases are the stored values widened to fp32.
// `scratch` needs `cols` bytes.
void dequantize_row(const uint32_t* packed, const float* scales, const float* biases, int64_t cols,
                    int bits, int group_size, float* out, uint8_t* scratch);

}  // namespace mc::mlx
