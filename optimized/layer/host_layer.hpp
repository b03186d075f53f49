#pragma once
// The fused layer's inputs as plain host data (no Eigen, so nvcc never sees the reference): a base
// layer's stored tensors in its own layout, and the adapters' float32 parameters.
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace qoracle::optimized {

struct DenseWeights {
  std::vector<float> w;  // (out, in) row-major
};
// An HQQ layer's layout and quantizer config, apart from its tensors (a merge keeps them).
struct HqqLayout {
  int nbits = 4, axis = 1, cols = 0, packed_rows = 0;
  // The quantizer settings a merge requantizes with (hqq's config of the layer).
  bool round_zero = false, optimize = true;
  int iters = 20;
  double lp_norm = 0.7, beta = 10.0;
};
struct HqqWeights : HqqLayout {
  std::vector<std::uint8_t> w_q8;   // nbits 1, 2, 4, 8
  std::vector<std::int32_t> w_q32;  // nbits 3
  std::vector<float> scale, zero;   // per group
};
struct AqlmWeights {
  std::vector<std::int16_t> codes16;  // stored signed codes [Og][Ig][C], nbits > 8
  std::vector<std::int8_t> codes8;    // nbits <= 8
  std::vector<float> codebooks, scales;
  int in_groups = 0, num_codebooks = 1, nbits = 16, out_group = 1, in_group = 8;
};
struct EetqWeights {
  std::vector<std::int8_t> bytes;  // the checkpoint's weight buffer
  std::vector<float> scales;
  int layout = 0;                  // EetqView::Layout
};

// The dtype of a layer's activations (x and y); the kernels accumulate in float32 whatever it is
// and round y once, where they store it.
enum class Activations { Float32, Float16, BFloat16 };
const char* activations_name(Activations a);

// One OFT adapter: its stored parameters (COFT projects them in the batched Cayley) and how R is
// formed from them: the exact Cayley, or a Neumann series (PEFT's, or the math convention's).
struct HostRotation {
  std::vector<float> params;  // rows x b(b-1)/2
  int rows = 0, block_size = 0;
  bool block_share = false, neumann = true;
  int terms = 5;
  bool math_series = false;
  bool all_twos = false;  // PEFT 0.17's Neumann series (cayley_block.hpp)
  float coft_radius = 0.0f;  // COFT: each row projected onto ||S||_F <= radius (0: none)
};

// A base layer's stored tensors, in whichever format it has.
using HostWeights = std::variant<DenseWeights, HqqWeights, AqlmWeights, EetqWeights>;

struct HostLayer {
  int out_features = 0, in_features = 0;
  HostWeights weights;
  Activations activations = Activations::Float32;
  std::vector<float> bias;  // empty: none
  // OFT: x R_1 R_2 ... in this order (PEFT's active order), each R block diagonal; empty: none.
  std::vector<HostRotation> oft;
  // LoRA (rank 0: none); lora_bias is lora_B's bias (PEFT's lora_bias), empty: none.
  std::vector<float> lora_a, lora_b, lora_bias;
  int rank = 0;
  float scaling = 0.0f;
  // DoRA (empty: none): the factor on x W^T, per output; its magnitude scales are folded into
  // lora_b and lora_bias.
  std::vector<float> dot_scale;
};

// The resident layer's forward run on the host (optimized/forward/forward_host.cpp), on the same
// repacked tensors and with the same per-lane code: what the GPU result must equal up to float32
// summation order and FMA contraction.
//   fused_gemv_on_host: the few-token path (tensor-core GEMV over the row layout, or the view
//     path), in groups of kGemvMaxTokens tokens;
//   fused_gemm_on_host: the many-token path (prepass, the dequantized weight in the activation
//     dtype, products summed in float64 and rounded once where cuBLAS rounds its output);
//   fused_forward_on_host: whichever of the two the GPU runs for `tokens`.
std::vector<float> fused_gemv_on_host(const HostLayer& layer, const std::vector<float>& x, int tokens);
std::vector<float> fused_gemm_on_host(const HostLayer& layer, const std::vector<float>& x, int tokens);
std::vector<float> fused_forward_on_host(const HostLayer& layer, const std::vector<float>& x, int tokens);

}  // namespace qoracle::optimized
