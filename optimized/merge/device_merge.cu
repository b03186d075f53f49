// Merges on a resident layer's device tensors (optimized/merge/device_merge.hpp), and the
// HostLayer merges as that on a temporary resident layer.
#include "optimized/merge/device_merge.hpp"

#include <cuda_runtime.h>

#include <limits>
#include <optional>

#include "optimized/device/device_buffer.hpp"
#include "optimized/device/device_probe.hpp"
#include "optimized/merge/dense_merge.hpp"
#include "optimized/merge/eetq_merge.hpp"
#include "optimized/merge/eetq_merge_device.cuh"
#include "optimized/merge/hqq_merge.hpp"
#include "optimized/merge/hqq_merge_device.cuh"
#include "optimized/merge/merged_weight_launch.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

struct DeviceMerge::Impl {
  HostLayer meta;
  cudaStream_t stream = nullptr;
  std::optional<StreamBuffer<float>> dense;  // the merged float32 weight (dense bases)
  std::optional<HqqRequantized> hqq;
  std::optional<StreamBuffer<std::int8_t>> eetq_bytes;
  std::optional<StreamBuffer<float>> eetq_scales;
};

namespace {

// The merged weight in a stream-ordered buffer (and a second one while several OFT adapters ping-pong).
StreamBuffer<float> merged_weight(const ResidentTensors& t) {
  const std::size_t n = static_cast<std::size_t>(t.meta.out_features) * t.meta.in_features;
  StreamBuffer<float> merged(n, t.stream);
  StreamBuffer<float> other(t.adapters.rotations > 1 ? n : 0, t.stream);
  launch_merged_weight(t, merged.get(), other.get());
  return merged;
}

}  // namespace

DeviceMerge::DeviceMerge(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeviceMerge::DeviceMerge(DeviceMerge&&) noexcept = default;
DeviceMerge::~DeviceMerge() = default;

void DeviceMerge::wait() const { check_cuda(cudaStreamSynchronize(impl_->stream), "merge"); }

int DeviceMerge::steps() const { return impl_->hqq ? impl_->hqq->steps.download()[0] : 0; }

HostLayer DeviceMerge::layer() const {
  const Impl& m = *impl_;
  if (m.dense) return layer_after_merge(m.meta, DenseWeights{m.dense->download()});
  if (m.hqq) {
    HqqWeights w{HqqLayout(std::get<HqqWeights>(m.meta.weights))};  // the layout and config stay
    w.w_q8 = m.hqq->words8.download();
    w.w_q32 = m.hqq->words32.download();
    w.scale = m.hqq->scale.download();
    w.zero = m.hqq->zero.download();
    return layer_after_merge(m.meta, std::move(w));
  }
  return eetq_merged_layer(m.meta, EetqWeights{m.eetq_bytes->download(), m.eetq_scales->download(),
                                               std::get<EetqWeights>(m.meta.weights).layout});
}

DeviceMerge merge_on_device(const ResidentFusedLayer& layer) {
  const ResidentTensors& t = layer.tensors();
  const HostLayer& l = t.meta;
  auto m = std::make_unique<DeviceMerge::Impl>();
  m->meta = l;
  m->stream = t.stream;
  std::visit(
      [&](const auto& w) {
        using W = std::decay_t<decltype(w)>;
        if constexpr (std::is_same_v<W, DenseWeights>) {
          check_merge_adapters(l, "dense_merge");
          check_lora_bias_target(l);
          m->dense.emplace(merged_weight(t));
        } else if constexpr (std::is_same_v<W, HqqWeights>) {
          check_merge_adapters(l, "hqq_merge");
          check_hqq_lora_bias(l);
          const StreamBuffer<float> merged = merged_weight(t);
          m->hqq.emplace(requantize_hqq_on_device(hqq_merge_grouping(l, w), w.optimize ? w.iters : 0, merged.get(), t.stream));
        } else if constexpr (std::is_same_v<W, EetqWeights>) {
          check_merge_adapters(l, "eetq_merge");
          check_lora_bias_target(l);
          const std::size_t n = static_cast<std::size_t>(l.out_features) * l.in_features;
          const StreamBuffer<float> merged = merged_weight(t);
          m->eetq_bytes.emplace(n, t.stream);
          m->eetq_scales.emplace(static_cast<std::size_t>(l.out_features), t.stream);
          StreamBuffer<unsigned long long> unstorable(1, t.stream);
          check_cuda(cudaMemsetAsync(unstorable.get(), 0xff, sizeof(unsigned long long), t.stream), "cudaMemsetAsync");
          launch_eetq_requantize(merged.get(), eetq_layout_of(l, w), m->eetq_bytes->get(), m->eetq_scales->get(),
                                 unstorable.get(), t.stream);
          const unsigned long long bad = unstorable.download()[0];  // the merge must know it succeeded
          if (bad != std::numeric_limits<unsigned long long>::max()) {
            float value = 0;
            check_cuda(cudaMemcpy(&value, merged.get() + bad, sizeof value, cudaMemcpyDeviceToHost), "cudaMemcpy");
            refuse_unstorable_weight(l, static_cast<long long>(bad), value);
          }
        } else {
          throw Error("base: no merge into AQLM (PEFT has none either; the codebooks would need re-fitting)");
        }
      },
      l.weights);
  return DeviceMerge(std::move(m));
}

HostLayer dense_merge(const HostLayer& l) {
  check_dense_merge(l);
  require_device();
  const ResidentFusedLayer resident(l);
  return merge_on_device(resident).layer();
}

HqqMergeResult hqq_merge(const HostLayer& l) {
  check_hqq_merge(l);
  require_device();
  const ResidentFusedLayer resident(l);
  const DeviceMerge merged = merge_on_device(resident);
  return {std::get<HqqWeights>(merged.layer().weights), merged.steps()};
}

HostLayer eetq_merge(const HostLayer& l) {
  check_eetq_merge(l);
  require_device();
  const ResidentFusedLayer resident(l);
  return merge_on_device(resident).layer();
}

}  // namespace qoracle::optimized
