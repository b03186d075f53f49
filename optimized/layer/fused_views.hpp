#pragma once
// Weight views over a HostLayer's tensors wherever they live: `at` maps each host vector to the
// pointer the view should read (the vector itself on the host, its device copy on the GPU).
#include <vector>

#include "optimized/forward/fused_adapters.hpp"
#include "optimized/layer/host_layer.hpp"
#include "optimized/layer/weight_views.hpp"

namespace qoracle::optimized {

template <class At>
DenseView make_view(const DenseWeights& w, const HostLayer& l, At at) {
  return {at(w.w), l.in_features};
}

template <class At>
HqqView make_view(const HqqWeights& w, const HostLayer& l, At at) {
  HqqView v;
  v.w_q8 = at(w.w_q8);
  v.w_q32 = at(w.w_q32);
  v.scale = at(w.scale);
  v.zero = at(w.zero);
  v.nbits = w.nbits;
  v.axis = w.axis;
  v.in_features = l.in_features;
  v.cols = w.cols;
  v.packed_rows = w.packed_rows;
  return v;
}

template <class At>
AqlmView make_view(const AqlmWeights& w, const HostLayer&, At at) {
  AqlmView v;
  v.codes16 = at(w.codes16);
  v.codes8 = at(w.codes8);
  v.codebooks = at(w.codebooks);
  v.scales = at(w.scales);
  v.in_groups = w.in_groups;
  v.num_codebooks = w.num_codebooks;
  v.nbits = w.nbits;
  v.out_group = w.out_group;
  v.in_group = w.in_group;
  return v;
}

template <class At>
EetqView make_view(const EetqWeights& w, const HostLayer& l, At at) {
  EetqView v;
  v.bytes = at(w.bytes);
  v.scales = at(w.scales);
  v.layout = static_cast<EetqView::Layout>(w.layout);
  v.in_features = l.in_features;
  v.out_features = l.out_features;
  return v;
}

// The adapters' pointers, given where each OFT adapter's rotation blocks are (rotations_on_host's
// vectors, or the device's) and where the layer's tensors live.
template <class At>
FusedAdapters fused_adapters(const HostLayer& l, const std::vector<const float*>& rotations, At at) {
  FusedAdapters a;
  a.rotations = static_cast<int>(l.oft.size());
  for (int k = 0; k < a.rotations; ++k) {
    const HostRotation& rot = l.oft[static_cast<std::size_t>(k)];
    a.rotation[k] = rotation_blocks(rotations[static_cast<std::size_t>(k)], rot.block_size, rot.block_share);
  }
  if (l.rank > 0) {
    a.lora_a = at(l.lora_a);
    a.lora_b = at(l.lora_b);
    a.rank = l.rank;
    a.scaling = l.scaling;
    if (!l.lora_bias.empty()) a.lora_bias = at(l.lora_bias);
  }
  if (!l.dot_scale.empty()) a.dot_scale = at(l.dot_scale);
  if (!l.bias.empty()) a.bias = at(l.bias);
  return a;
}

}  // namespace qoracle::optimized
