// ggml block quantization (formats.md §2.3-2.6): quantizers bit-identical with ggml's reference
// quantizers (what llama-quantize produces without an imatrix), dequantizers for every type, and
// llama-quantize's per-tensor type choice for each file type.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/dtype.h"
#include "core/error.h"
#include "core/thread_pool.h"

namespace mc::quant {

// Quantizes `n_rows` rows of `row_len` f32 values into `dst` (type t: a ggml block type, or
// F32/F16/BF16 for plain conversion). row_len must be a multiple of the block size.
// dst.size() must equal n_rows * row bytes. Splits rows across `pool` when given; the bytes do
// not depend on the thread count.
Status quantize_rows(DType t, const float* src, int64_t n_rows, int64_t row_len,
                     std::span<std::byte> dst, ThreadPool* pool = nullptr);

// Dequantizes n elements (a multiple of the block size) of type t into f32.
Status dequantize(DType t, std::span<const std::byte> src, float* dst, int64_t n);

// Instruction sets the k-quant fits run on. Every one gives the same bytes (ggml's); they differ
// in speed only. The default is the best one this CPU has; the environment variable
// MC_QUANT_ISA=scalar|avx2|avx512 picks another (an unknown or unavailable name is ignored
// with a note on stderr), set_kernel_isa too (tests, benchmarks).
enum class KernelIsa : uint8_t { Scalar, Avx2, Avx512 };
std::string_view kernel_isa_name(KernelIsa isa);
std::optional<KernelIsa> kernel_isa_from_name(std::string_view name);
// Compiled in and supported by this CPU (and its OS, for the AVX-512 registers).
bool kernel_isa_available(KernelIsa isa);
KernelIsa kernel_isa();
Status set_kernel_isa(KernelIsa isa);

// llama-quantize file types (LLAMA_FTYPE_*), and the type llama-quantize picks per tensor.
enum class FileType : uint8_t {
  F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M,
  Q5_K_S, Q5_K_M, Q6_K, Count
};
std::string_view file_type_name(FileType f);                 // "q4_k_m"
std::span<const std::string_view> file_type_names();         // every name, in FileType order
std::optional<FileType> file_type_from_name(std::string_view name);
int file_type_id(FileType f);                                // general.file_type value (LLAMA_FTYPE)

// Facts about one tensor needed by llama-quantize's rules (llama-quant.cpp).
struct TensorQuantContext {
  std::string gguf_name;   // e.g. "blk.3.attn_v.weight", "token_embd.weight", "output.weight"
  int64_t n_dims = 2;
  int64_t row_len = 0;     // ne[0]
  int64_t n_layers = 0;    // block count of the model
  int64_t n_heads = 0, n_kv_heads = 0;
  int64_t n_experts = 0;
  std::string arch;        // gguf general.architecture
  bool output_tied = false;  // no separate output.weight (token_embd used as output)
};

// Counters llama-quantize keeps across tensors (i_attention_wv, i_ffn_down, ...): pass the same
// object for every tensor of a model, in file order.
struct QuantState {
  int64_t n_attention_wv = 0, i_attention_wv = 0;
  int64_t n_ffn_down = 0, i_ffn_down = 0;
  int64_t n_ffn_gate = 0, i_ffn_gate = 0;
  int64_t n_ffn_up = 0, i_ffn_up = 0;
};

// Type llama-quantize stores tensor `ctx` as for file type `ft` (F32 for 1-D tensors and
// norms, more bits for attn_v/ffn_down/output per the mixture rules, fallbacks when row_len is
// not a multiple of 256).
DType choose_tensor_type(FileType ft, const TensorQuantContext& ctx, QuantState& state);

// --- additions (llama-quant.cpp helpers the writer needs around choose_tensor_type) ---

std::optional<FileType> file_type_from_id(int id);
// The float file type storing `t` (F32, F16, BF16); nullopt for other dtypes.
std::optional<FileType> file_type_for_float(DType t);
// The type a GGUF tensor gets in a file of type `ft` (the whole policy, in one place):
// convert_hf_to_gguf's rule first (1-D tensors, norms, biases, position embeddings: F32), then
// the file's float type, or llama-quantize's mixture (choose_tensor_type) for quantized types.
DType gguf_tensor_type(FileType ft, const TensorQuantContext& ctx, QuantState& state);
// The ftype's default tensor type (llama_ftype_get_default_type): q4_k_m -> Q4_K, f16 -> F16.
DType file_type_default_type(FileType f);
// Whether llama-quantize converts this tensor at all (2+ dims, name ends in "weight", not a norm,
// not ffn_gate_inp / position embeddings / conv1d / ...); others keep their type.
bool tensor_allows_quantization(const TensorQuantContext& ctx);
// Fresh state for a model: n_attention_wv counts the attn_v / attn_qkv / attn_kv_b tensors among
// `gguf_names`; the ffn counters are the block count.
QuantState make_quant_state(std::span<const std::string> gguf_names, int64_t n_layers);
// llama.cpp's tensor order (llama_model_loader::weight_name_comparer): by block number ("blk.N.",
// tensors without one first), then by name. Feed choose_tensor_type tensors in this order.
bool quant_order_less(std::string_view a, std::string_view b);

}  // namespace mc::quant
