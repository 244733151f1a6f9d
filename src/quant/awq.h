// The numeric parts of AWQ (Lin et al.; AutoAWQ's `AwqQuantizer`), 4-bit with zero points:
// the group quantizer, the statistics of the scale search, the scale candidates of the grid and
// the clipping search. Running the model on candidates (the search loss) is the caller's part:
// it needs the runtime.
//
// pseudo_quantize (zero_point=True, per group of g weights along the input dimension):
//   s = clamp(max - min, >= 1e-5) / 15, z = clamp(-round(min / s), 0, 15),
//   q = clamp(round(w / s) + z, 0, 15), w' = (q - z) * s.
// Scales are rounded to fp16 where they are made (what the checkpoint stores and kernels read).
#pragma once

#include <cstdint>
#include <vector>

#include "quant/gptq.h"

namespace mc::quant {

inline constexpr int kAwqBits = 4;

// Quantizes W ([out][in], groups of g along in) to codes, scales and zeros (g_idx = i / g).
GroupQuant awq_quantize(const float* w, int64_t out, int64_t in, int64_t g);
// W <- dequantize(quantize(W)), in place.
void awq_pseudo_quantize(float* w, int64_t out, int64_t in, int64_t g);

// Adds, per input channel, sum over rows of |w| / max|w| within its group (w [rows][in]);
// the w_mean of a scaling group is this sum over all its Linears divided by their total rows.
void awq_add_w_scale(const float* w, int64_t rows, int64_t in, int64_t g, std::vector<double>& acc);

// The candidate scales for grid ratio r: duo scaling s = x_mean^r / (w_mean^(1-r) + 1e-4), or
// s = x_mean^r; clamped to >= 1e-4, normalised by sqrt(max * min), inf/nan -> 1.
std::vector<float> awq_candidate_scales(const std::vector<float>& x_mean, const std::vector<float>& w_mean,
                                        double ratio, bool duo_scaling);

// The clipping search for one Linear: for each output row and group, the max_val among
// org_max * (1 - k/20), k = 0..9, whose clamped-and-quantized weights give the smallest mean
// squared error of that group's partial outputs on the tokens x ([tokens][in]); W is then
// clamped to +-max_val in place. Returns max_val [out][groups]. `threads`: BLAS threads.
std::vector<float> awq_clip(float* w, int64_t out, int64_t in, int64_t g, const float* x, int64_t tokens,
                            int threads = 1);

}  // namespace mc::quant
