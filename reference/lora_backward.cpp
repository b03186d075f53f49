// LoraLayer's training path (spec training.md §2, §3, §5, §7): the forward with recorded dropout
// noise and the float64 backward in closed form. The layer is a chain over the active adapters:
// Y_0 = x W^T, Y_k = step_k(Y_{k-1}), y = Y_K + b; the backward walks it in reverse with
// G_k = dL/dY_k, starting from G_K = G.
//   LoRA:            Y_k = Y_{k-1} + s (x_d A^T B^T + b_B)
//   DoRA, no noise:  Y_k = g ⊙ (Y_{k-1} + s x A^T B^T)         (PEFT scales the result so far)
//   DoRA with noise: Y_k = Y_{k-1} + (g - 1) ⊙ (x_d W^T) + g ⊙ (s x_d A^T B^T)   (T5)
// with g = m / n, n_o = ||V_o||, V = W + s B A on the unmerged W.
#include <algorithm>

#include "reference/base_backward.hpp"
#include "reference/lora_linear.hpp"
#include "reference/validate.hpp"

namespace qoracle {

namespace {

bool sixteen_bit(Dtype d) { return d == Dtype::Float16 || d == Dtype::BFloat16; }

// The noise an adapter's forward drew, checked against x; nullptr when it sees x itself.
const Matrix* noise_of(const DropoutNoise& noise, const std::string& name, const Matrix& x) {
  auto it = noise.find(name);
  if (it == noise.end()) return nullptr;
  require_shape(it->second, x.rows(), x.cols(), "dropout_noise/" + name);
  require_finite(it->second, "dropout_noise/" + name);
  return &it->second;
}

template <class Registry>
void require_noise_for_active(const DropoutNoise& noise, const Registry& adapters) {
  for (const auto& [name, nu] : noise) {
    const auto& active = adapters.active();
    if (std::find(active.begin(), active.end(), name) == active.end())
      throw Error("dropout_noise/" + name + ": no active adapter of that name draws dropout noise");
  }
}

}  // namespace

template <class Base>
Matrix LoraLayer<Base>::forward_training(const Matrix& x, const DropoutNoise& noise) const {
  require_input(x, base_.in_features());
  require_noise_for_active(noise, adapters_);
  // forward()'s arithmetic and rounding points, each adapter on its own x_d (§7: x cast to the
  // adapter dtype, then x * nu in that dtype: one rounding of the exact product).
  Matrix y = base_.forward(x, dtype_);
  if (!adapters_.merged.empty()) return y;
  std::optional<Matrix> w;
  for (const auto& name : adapters_.active()) {
    const Entry& e = adapters_.get(name);
    const LoraAdapter& a = e.adapter;
    const Matrix* nu = noise_of(noise, name, x);
    const Matrix xd = nu ? round_to(adapter_dtype_of(e), Matrix(x.cwiseProduct(*nu))) : x;
    if (a.config().use_dora) {
      if (!w) w = base_.weight();
      const Vector g = dora_scale(a, *w);
      if (nu) {  // T5: the base recomputed on x_d, earlier adapters not rescaled
        y += (xd * w->transpose()) * (g.array() - 1.0).matrix().asDiagonal() + a.output(xd) * g.asDiagonal();
      } else {
        Matrix so_far = y;
        if (base_.bias()) so_far.rowwise() -= base_.bias()->transpose();
        y += (so_far + a.output(xd)) * g.asDiagonal() - so_far;
      }
    } else if (sixteen_bit(adapter_dtype_of(e)) || (Base::peft_quirks.lora_rounds_before_scaling && dtype_ != Dtype::Float64)) {
      y = round_to(dtype_, Matrix(y + rounded_output(e, xd)));
    } else {
      y += a.output(xd);
    }
  }
  y = round_to(dtype_, y);
  require_finite_result(y, "forward");
  return y;
}

template <class Base>
LayerGradients LoraLayer<Base>::backward(const Matrix& x, const Matrix& grad_output, const DropoutNoise& noise,
                                         bool training) const {
  require_input(x, base_.in_features());
  require_shape(grad_output, x.rows(), base_.out_features(), "grad_output");
  require_noise_for_active(noise, adapters_);
  if (const std::string why = base_backward_refusal(base_, convention_, training); !why.empty()) throw Error(why);
  const Matrix w = base_.weight();
  const auto& active = adapters_.active();
  LayerGradients grads;
  if (!adapters_.merged.empty()) {  // PEFT's merged forward is the base alone
    grads.grad_x = base_has_backward(base_, convention_, training) ? Matrix(grad_output * w) : Matrix::Zero(x.rows(), x.cols());
    grads.grad_x_none = !base_has_backward(base_, convention_, training);
    for (const auto& name : active) {
      const LoraAdapter& a = adapters_.get(name).adapter;
      AdapterGradients& ag = grads.adapters[name];
      ag.lora_A = Matrix::Zero(a.a().rows(), a.a().cols());
      ag.lora_B = Matrix::Zero(a.b().rows(), a.b().cols());
      if (a.b_bias()) ag.lora_B_bias = Vector::Zero(a.b_bias()->size());
      if (a.magnitude()) ag.magnitude = Vector::Zero(a.magnitude()->size());
      ag.peft_grad_none = true;
    }
    return grads;
  }

  // The forward again, keeping what the backward reads: Y_{k-1} and x_d per adapter.
  std::vector<Matrix> y_before, inputs;
  Matrix y = x * w.transpose();
  for (const auto& name : active) {
    const LoraAdapter& a = adapters_.get(name).adapter;
    const Matrix* nu = noise_of(noise, name, x);
    inputs.push_back(nu ? round_to(adapter_dtype_of(adapters_.get(name)), Matrix(x.cwiseProduct(*nu))) : x);
    const Matrix& xd = inputs.back();
    y_before.push_back(y);
    if (a.config().use_dora) {
      const Vector g = dora_scale(a, w);
      const Matrix lora = a.scaling() * (xd * a.a().transpose()) * a.b().transpose();
      if (nu) {
        y += (xd * w.transpose()) * (g.array() - 1.0).matrix().asDiagonal() + lora * g.asDiagonal();
      } else {
        y = (y + lora) * g.asDiagonal();
      }
    } else {
      y += a.output(xd);
    }
  }

  // §6 T7: in 16 bits the AQLM/EETQ LoRA (float32 adapters) multiplies G by s in 16 bits. The other
  // 16-bit rounding points of the backward are not emulated: rounding dx's shares as PEFT does moved
  // it no closer to PEFT's (measured on the grad-export fixtures), so dx stays float64 math.
  const bool t7 = sixteen_bit(dtype_) && Base::peft_quirks.lora_rounds_before_scaling;

  Matrix grad_y = grad_output;  // G_k
  Matrix grad_x = Matrix::Zero(x.rows(), x.cols());
  for (std::size_t k = active.size(); k-- > 0;) {
    const LoraAdapter& a = adapters_.get(active[k]).adapter;
    const Matrix* nu = noise_of(noise, active[k], x);
    const Matrix& xd = inputs[k];
    const double s = a.scaling();
    AdapterGradients ag;
    Matrix grad_xd;
    if (!a.config().use_dora) {
      // §2: dA = s B^T G^T x_d, dB = s G^T (x_d A^T), db_B = s sum_t G_t, dx_d = s (G B) A.
      ag.lora_A = s * (a.b().transpose() * grad_y.transpose()) * xd;
      ag.lora_B = s * grad_y.transpose() * (xd * a.a().transpose());
      if (a.b_bias()) ag.lora_B_bias = s * grad_y.colwise().sum().transpose();
      grad_xd = s * (grad_y * a.b()) * a.a();
      if (t7 && adapter_dtype_of(adapters_.get(active[k])) == Dtype::Float32) {  // G~ = fp32(rnd16(G fl32(s))) replaces s G
        const Matrix gs = round_to(dtype_, Matrix(grad_y * round_to(Dtype::Float32, s)));
        ag.lora_A = (a.b().transpose() * gs.transpose()) * xd;
        ag.lora_B = gs.transpose() * (xd * a.a().transpose());
        if (a.b_bias()) ag.lora_B_bias = gs.colwise().sum().transpose();
        grad_xd = (gs * a.b()) * a.a();
      }
    } else {
      // §3: V = W + s B A, n = rownorm(V), g = m / n.
      const Matrix v = w + a.delta_weight();
      const Vector n = v.rowwise().norm();
      const Vector& m = *a.magnitude();
      const Vector g = m.cwiseQuotient(n);
      const Matrix lora = s * (xd * a.a().transpose()) * a.b().transpose();
      // What g multiplies: Y_{k-1} + lora without noise, x_d W^T + lora with it.
      const Matrix scaled = (nu ? Matrix(xd * w.transpose()) : y_before[k]) + lora;
      const Vector grad_g = grad_y.cwiseProduct(scaled).colwise().sum().transpose();
      ag.magnitude = grad_g.cwiseQuotient(n);
      const Matrix grad_lora = grad_y * g.asDiagonal();  // dL/d(lora)
      Matrix grad_v = grad_lora.transpose() * xd;         // dV through lora = x_d A^T B^T (with s below)
      ag.lora_A = s * a.b().transpose() * grad_v;
      ag.lora_B = s * grad_v * a.a().transpose();
      if (convention_ == Convention::Math) {
        // The norm's radial term (PEFT detaches the norm, T1): dn = -dg m / n^2, dV_o += dn_o V_o / n_o.
        const Vector grad_n = -grad_g.cwiseProduct(m).cwiseQuotient(n.cwiseProduct(n));
        const Matrix radial = grad_n.cwiseQuotient(n).asDiagonal() * v;
        *ag.lora_A += s * a.b().transpose() * radial;
        *ag.lora_B += s * radial * a.a().transpose();
      }
      grad_xd = s * (grad_lora * a.b()) * a.a();
      if (nu) {
        grad_xd += (grad_y * (g.array() - 1.0).matrix().asDiagonal()) * w;  // through (g - 1) ⊙ x_d W^T
      } else {
        grad_y = grad_lora;  // Y_{k-1} is scaled by g
      }
    }
    grad_x += nu ? Matrix(grad_xd.cwiseProduct(*nu)) : grad_xd;
    auto it = grads.adapters.find(active[k]);
    if (it == grads.adapters.end()) {
      grads.adapters[active[k]] = std::move(ag);
    } else {  // the same adapter active twice: its gradients add
      *it->second.lora_A += *ag.lora_A;
      *it->second.lora_B += *ag.lora_B;
      if (ag.lora_B_bias) *it->second.lora_B_bias += *ag.lora_B_bias;
      if (ag.magnitude) *it->second.magnitude += *ag.magnitude;
    }
  }
  // The base term G_0 W, absent where the base has no graph (EETQ in eval, T13).
  grads.grad_x = base_has_backward(base_, convention_, training) ? Matrix(grad_x + base_grad_input(base_, grad_y)) : grad_x;
  return grads;
}

#define QORACLE_LORA_TRAINING(Base)                                                        \
  template Matrix LoraLayer<Base>::forward_training(const Matrix&, const DropoutNoise&) const; \
  template LayerGradients LoraLayer<Base>::backward(const Matrix&, const Matrix&, const DropoutNoise&, bool) const;
QORACLE_LORA_TRAINING(DenseLinear)
QORACLE_LORA_TRAINING(HqqLinear)
QORACLE_LORA_TRAINING(AqlmLinear)
QORACLE_LORA_TRAINING(EetqLinear)
#undef QORACLE_LORA_TRAINING

}  // namespace qoracle
