#pragma once
// One OFT block's rotation in float32, written once for both sides: the CUDA kernel runs it with
// all threads of a thread block cooperating (tid, nthreads, __syncthreads), and the host tests run
// the same code serially (tid 0 of 1, no sync) against the float64 reference. Only the launch and
// the indexing of blocks are left for the GPU to verify.
//
// Every loop over elements is `for (e = tid; e < n; e += nthreads)`; a `sync()` separates phases
// that read what another thread wrote. Storage is row-major b x b (aug: b x 2b).
#include <cmath>

#include "optimized/device/hd.hpp"

namespace qoracle::optimized {

struct NoSync {
  QORACLE_HD void operator()() const {}
};

// COFT (constrained OFT): the factor that scales a parameter row so that S = skew(v) lies in the
// Frobenius ball of `radius` (||S||_F = sqrt(2) ||v||); 1 inside the ball or without COFT (radius
// 0). Every thread sums the per-thread partials in the same order, so all get the same factor.
// `partial` holds nthreads floats.
template <class Sync>
QORACLE_HD float coft_factor(const float* v, int n, float radius, float* partial, int tid, int nthreads, Sync sync) {
  if (radius <= 0.0f) return 1.0f;
  float sum = 0.0f;
  for (int e = tid; e < n; e += nthreads) sum += v[e] * v[e];
  partial[tid] = sum;
  sync();
  float total = 0.0f;
  for (int t = 0; t < nthreads; ++t) total += partial[t];
  sync();  // partial may be reused once everyone has read it
  const float frobenius = sqrtf(2.0f * total);
  return frobenius > radius ? radius / frobenius : 1.0f;
}

// S from a parameter row: v (times `scale`, COFT's factor) fills the strict upper triangle row by
// row, S = M - M^T.
template <class Sync>
QORACLE_HD void skew_block(const float* v, int b, float* s, int tid, int nthreads, Sync sync, float scale = 1.0f) {
  for (int e = tid; e < b * b; e += nthreads) {
    const int p = e / b, q = e % b;
    // Index of (min, max) in the row-major strict upper triangle.
    const int lo = p < q ? p : q, hi = p < q ? q : p;
    const int k = lo * b - lo * (lo + 1) / 2 + (hi - lo - 1);
    s[e] = p == q ? 0.0f : (p < q ? v[k] * scale : -(v[k] * scale));
  }
  sync();
}

// Exact Cayley, PEFT's direction: R = (I - S)(I + S)^-1 = (I + S)^-1 (I - S) (the factors
// commute). Gauss-Jordan with partial pivoting on [I + S | I - S]; the right half becomes R.
// I + S is well conditioned (singular values >= 1), but pivoting keeps the float32 error small.
template <class Sync>
QORACLE_HD void cayley_exact_block(const float* s, int b, float* aug, float* r, int tid, int nthreads, Sync sync) {
  const int w = 2 * b;
  for (int e = tid; e < b * w; e += nthreads) {
    const int i = e / w, j = e % w;
    const float id = (i == j % b) ? 1.0f : 0.0f;
    aug[e] = j < b ? id + s[i * b + j] : id - s[i * b + (j - b)];
  }
  sync();
  for (int k = 0; k < b; ++k) {
    // Every thread finds the same pivot (reads only), so no broadcast is needed.
    int piv = k;
    float best = aug[k * w + k] < 0 ? -aug[k * w + k] : aug[k * w + k];
    for (int i = k + 1; i < b; ++i) {
      const float a = aug[i * w + k] < 0 ? -aug[i * w + k] : aug[i * w + k];
      if (a > best) best = a, piv = i;
    }
    sync();
    if (piv != k)
      for (int j = tid; j < w; j += nthreads) {
        const float t = aug[k * w + j];
        aug[k * w + j] = aug[piv * w + j];
        aug[piv * w + j] = t;
      }
    sync();
    const float inv = 1.0f / aug[k * w + k];
    sync();
    for (int j = tid; j < w; j += nthreads) aug[k * w + j] *= inv;
    sync();
    // Eliminate column k from every other row. Column k itself is read by all threads, so it is
    // zeroed only after the others have used it.
    for (int e = tid; e < b * w; e += nthreads) {
      const int i = e / w, j = e % w;
      if (i != k && j != k) aug[e] -= aug[i * w + k] * aug[k * w + j];
    }
    sync();
    for (int i = tid; i < b; i += nthreads)
      if (i != k) aug[i * w + k] = 0.0f;
    sync();
  }
  for (int e = tid; e < b * b; e += nthreads) r[e] = aug[(e / b) * w + b + e % b];
  sync();
}

// A truncated Neumann series R = I + 2 S' + 2 S'^2 + ... + 2 S'^(last-1) + last_weight S'^last with
// S' = sign * S. PEFT's with n = `terms` (spec peft-oft-lora.md §1.4): n = 1: I; n = 2: I + 2S;
// n > 2: last = max(3, n - 1), weight 1, so n = 3 and n = 4 coincide. The math convention's
// (I - S) sum_{k<n} (-S)^k expands to I + 2 sum_{1<=k<n} (-S)^k + (-S)^n: last n on -S, which
// is R's transpose in PEFT's direction.
struct NeumannSeries {
  int last = 0;
  float last_weight = 1.0f, sign = 1.0f;
};

// PEFT 0.17 (`all_twos`) weights every power after I by 2: I + 2S + ... + 2S^(n-1).
QORACLE_HD inline NeumannSeries neumann_series(int terms, bool math_convention, bool all_twos = false) {
  if (math_convention) return {terms, 1.0f, -1.0f};
  if (all_twos) return {terms > 1 ? terms - 1 : 0, 2.0f, 1.0f};
  if (terms <= 1) return {0, 1.0f, 1.0f};
  if (terms == 2) return {1, 2.0f, 1.0f};
  return {terms - 1 > 3 ? terms - 1 : 3, 1.0f, 1.0f};
}

// The series from S' (already signed); p and q are b x b scratch.
template <class Sync>
QORACLE_HD void cayley_neumann_block(const float* s, int b, NeumannSeries series, float* p, float* q, float* r, int tid,
                                     int nthreads, Sync sync) {
  const float w1 = series.last == 1 ? series.last_weight : 2.0f;
  for (int e = tid; e < b * b; e += nthreads) {
    const float id = (e / b == e % b) ? 1.0f : 0.0f;
    r[e] = series.last >= 1 ? id + w1 * s[e] : id;
    p[e] = s[e];
  }
  sync();
  for (int k = 2; k <= series.last; ++k) {
    // q = p * s (the power S'^k), then r += 2 q, or last_weight q for the last term.
    for (int e = tid; e < b * b; e += nthreads) {
      const int i = e / b, j = e % b;
      float acc = 0.0f;
      for (int t = 0; t < b; ++t) acc += p[i * b + t] * s[t * b + j];
      q[e] = acc;
    }
    sync();
    const float weight = k == series.last ? series.last_weight : 2.0f;
    for (int e = tid; e < b * b; e += nthreads) {
      r[e] += weight * q[e];
      p[e] = q[e];
    }
    sync();
  }
}

// Scratch floats per block for rotation_block: the Neumann series keeps S and two powers; the
// exact Cayley keeps [I+S | I-S] (S itself is built in r, which the solve overwrites last).
QORACLE_HD inline int rotation_scratch_floats(int b, bool neumann) { return (neumann ? 3 : 2) * b * b; }

// One OFT block's R from its parameter row v: COFT's factor, S, then the exact Cayley or the
// Neumann series. ws: rotation_scratch_floats; partial: nthreads floats (COFT's reduction).
template <class Sync>
QORACLE_HD void rotation_block(const float* v, int b, bool neumann, NeumannSeries series, float coft_radius, float* ws,
                               float* partial, float* r, int tid, int nthreads, Sync sync) {
  const float f = coft_factor(v, b * (b - 1) / 2, coft_radius, partial, tid, nthreads, sync);
  if (neumann) {
    skew_block(v, b, ws, tid, nthreads, sync, f * series.sign);
    cayley_neumann_block(ws, b, series, ws + b * b, ws + 2 * b * b, r, tid, nthreads, sync);
  } else {
    skew_block(v, b, r, tid, nthreads, sync, f);
    cayley_exact_block(r, b, ws, r, tid, nthreads, sync);
  }
}

}  // namespace qoracle::optimized
