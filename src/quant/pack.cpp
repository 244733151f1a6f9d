// GPTQ bit streams and AWQ's interleaved nibbles (pack.h).
#include "quant/pack.h"

namespace mc::quant {

bool gptq_bits_ok(int bits) { return bits == 2 || bits == 3 || bits == 4 || bits == 8; }

void pack_stream(const uint8_t* values, int64_t n, int64_t in_stride, int bits, uint32_t* words,
                 int64_t out_stride) {
  const int64_t n_words = n * bits / 32;
  for (int64_t w = 0; w < n_words; ++w) words[w * out_stride] = 0;
  const uint32_t mask = (1u << bits) - 1;
  for (int64_t k = 0; k < n; ++k) {
    const uint64_t v = values[k * in_stride] & mask;
    const int64_t bit = k * bits, w = bit / 32, shift = bit % 32;
    words[w * out_stride] |= static_cast<uint32_t>(v << shift);
    if (shift + bits > 32) words[(w + 1) * out_stride] |= static_cast<uint32_t>(v >> (32 - shift));
  }
}

void unpack_stream(const uint32_t* words, int64_t out_stride, int64_t n, int bits, uint8_t* values,
                   int64_t in_stride) {
  const uint32_t mask = (1u << bits) - 1;
  for (int64_t k = 0; k < n; ++k) {
    const int64_t bit = k * bits, w = bit / 32, shift = bit % 32;
    uint64_t v = words[w * out_stride] >> shift;
    if (shift + bits > 32) v |= uint64_t(words[(w + 1) * out_stride]) << (32 - shift);
    values[k * in_stride] = static_cast<uint8_t>(v & mask);
  }
}

void pack_awq_row(const uint8_t* values, int64_t n, uint32_t* words) {
  for (int64_t c = 0; c < n / 8; ++c) {
    uint32_t w = 0;
    for (int k = 0; k < 8; ++k) w |= uint32_t(values[8 * c + kAwqOrder[static_cast<size_t>(k)]] & 0xF) << (4 * k);
    words[c] = w;
  }
}

void unpack_awq_row(const uint32_t* words, int64_t n, uint8_t* values) {
  for (int64_t c = 0; c < n / 8; ++c)
    for (int k = 0; k < 8; ++k)
      values[8 * c + kAwqOrder[static_cast<size_t>(k)]] = static_cast<uint8_t>((words[c] >> (4 * k)) & 0xF);
}

}  // namespace mc::quant
