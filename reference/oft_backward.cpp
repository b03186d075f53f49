// OftLayer's training path (spec training.md §4, §5): the release's Neumann series and the
// float64 backward, closed forms per adapter (OftAdapter::rotate_backward) chained in reverse
// active order, then the frozen base.
#include "reference/base_backward.hpp"
#include "reference/oft_linear.hpp"
#include "reference/validate.hpp"

namespace qoracle {

template <class Base>
void OftLayer<Base>::set_peft_neumann_series(PeftNeumannSeries series) {
  neumann_series_ = series;
  adapters_.for_each([&](const std::string&, OftAdapter& a) { a.set_peft_neumann_series(series); });
}

template <class Base>
LayerGradients OftLayer<Base>::backward(const Matrix& x, const Matrix& grad_output, bool training) const {
  require_input(x, base_.in_features());
  require_shape(grad_output, x.rows(), base_.out_features(), "grad_output");
  if (const std::string why = base_backward_refusal(base_, convention_, training); !why.empty()) throw Error(why);
  LayerGradients g;
  const bool graph = base_has_backward(base_, convention_, training);
  if (!adapters_.merged.empty() || !graph) {  // the merged base alone: x W_merged^T
    // With no graph through the base (T13) nothing gets a gradient.
    g.grad_x = graph ? base_grad_input(base_, grad_output) : Matrix::Zero(x.rows(), x.cols());
    g.grad_x_none = !graph;
    for (const auto& name : active_adapters()) {
      const Matrix& w = adapters_.get(name).weight();
      g.adapters[name].weight = Matrix::Zero(w.rows(), w.cols());
      g.adapters[name].peft_grad_none = true;
    }
    return g;
  }
  // Forward: z_0 = x, z_k = z_{k-1} R_k in active order; y = base(z_K).
  const auto& active = active_adapters();
  std::vector<Matrix> inputs{x};
  for (const auto& name : active) inputs.push_back(adapters_.get(name).rotate(inputs.back()));
  Matrix grad_z = base_grad_input(base_, grad_output);  // H = G W
  for (std::size_t k = active.size(); k-- > 0;) {
    auto r = adapters_.get(active[k]).rotate_backward(inputs[k], grad_z);
    AdapterGradients& a = g.adapters[active[k]];
    if (a.weight) {  // the same adapter active twice: its gradients add
      *a.weight += r.grad_weight;
    } else {
      a.weight = std::move(r.grad_weight);
    }
    a.peft_grad_none = convention_ == Convention::Peft && r.peft_grad_none;
    grad_z = std::move(r.grad_x);
  }
  g.grad_x = std::move(grad_z);
  return g;
}

#define QORACLE_OFT_TRAINING(Base)                                                             \
  template void OftLayer<Base>::set_peft_neumann_series(PeftNeumannSeries);                    \
  template LayerGradients OftLayer<Base>::backward(const Matrix&, const Matrix&, bool) const;
QORACLE_OFT_TRAINING(DenseLinear)
QORACLE_OFT_TRAINING(HqqLinear)
QORACLE_OFT_TRAINING(AqlmLinear)
QORACLE_OFT_TRAINING(EetqLinear)
#undef QORACLE_OFT_TRAINING

}  // namespace qoracle
