// Integer packing of GPTQ and AWQ checkpoints (docs/gptq_awq.md has the byte pictures).
//
// GPTQ (AutoGPTQ / GPTQModel, bits 2, 3, 4, 8): values are packed into int32 words as one
// LSB-first bit stream: value k of a run occupies stream bits [k*bits, (k+1)*bits), word w holds
// stream bits [32w, 32w+32). For 2/4/8 bits a word holds 32/bits whole values; for 3 bits three
// words hold 32 values and values 10 and 21 straddle a word boundary (AutoGPTQ's 10|1|10|1|10
// layout is exactly this stream).
//   qweight [in*bits/32, out]: column o is the stream of W's codes q[0..in)[o] (packed along the
//                              input dimension);
//   qzeros  [groups, out*bits/32]: row g is the stream of the zero points of group g (packed
//                              along the output dimension).
// AWQ (AutoAWQ GEMM, 4 bits only): qweight [in, out/8] and qzeros [in/g, out/8] are packed along
// the output dimension, 8 nibbles a word, interleaved: the nibble at bits [4k, 4k+4) of word c
// holds column 8c + kAwqOrder[k].
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace mc::quant {

// Output column stored in nibble k of an AWQ word.
inline constexpr std::array<int, 8> kAwqOrder = {0, 2, 4, 6, 1, 3, 5, 7};
// Nibble that holds column j (the inverse permutation).
inline constexpr std::array<int, 8> kAwqReverseOrder = {0, 4, 1, 5, 2, 6, 3, 7};

// True for the bit widths GPTQ packs (2, 3, 4, 8).
bool gptq_bits_ok(int bits);

// Packs n values (each < 2^bits) read with stride `in_stride` into n*bits/32 words written with
// stride `out_stride` (n*bits must be a multiple of 32). Words are uint32 (stored as int32).
void pack_stream(const uint8_t* values, int64_t n, int64_t in_stride, int bits, uint32_t* words,
                 int64_t out_stride);
// The inverse: n values out of the stream.
void unpack_stream(const uint32_t* words, int64_t out_stride, int64_t n, int bits, uint8_t* values,
                   int64_t in_stride);

// AWQ: packs n values (n % 8 == 0) of one row into n/8 interleaved words, and back.
void pack_awq_row(const uint8_t* values, int64_t n, uint32_t* words);
void unpack_awq_row(const uint32_t* words, int64_t n, uint8_t* values);

}  // namespace mc::quant
