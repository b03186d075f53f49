#pragma once
// One OFT block's rotation in float32, written once for both sides: the CUDA kernel runs it with
// all threads of a thread block cooperating (tid, nthreads, __syncthreads), and the host tests run
// the same code serially (tid 0 of 1, no sync) against the float64 reference. Only the launch and
// the indexing of blocks are left for the GPU to verify.
//
// Every loop over elements is `for (e = tid; e < n; e += nthreads)`; a `sync()` separates phases
// that read what another thread wrote. Storage is row-major b x b (aug: b x 2b).
#include <cmath>

#if defined(__CUDACC__)
#define QORACLE_HD __host__ __device__
#else
#define QORACLE_HD
#endif

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

// PEFT's Cayley-Neumann series with n = `terms`: n = 1: I; n = 2: I + 2S; n > 2:
// I + 2S + 2S^2 + ... + 2S^(m-1) + S^m with m = max(3, n - 1), so n = 3 and n = 4 coincide
// (spec peft-oft-lora.md §1.4). p and q are b x b scratch.
template <class Sync>
QORACLE_HD void cayley_neumann_block(const float* s, int b, int terms, float* p, float* q, float* r, int tid,
                                     int nthreads, Sync sync) {
  for (int e = tid; e < b * b; e += nthreads) {
    const float id = (e / b == e % b) ? 1.0f : 0.0f;
    r[e] = terms > 1 ? id + 2.0f * s[e] : id;
    p[e] = s[e];
  }
  sync();
  const int last = terms > 2 ? (terms - 1 > 3 ? terms - 1 : 3) : 1;
  for (int k = 2; k <= last; ++k) {
    // q = p * s (the power S^k), then r += 2 q, or q alone for the last term.
    for (int e = tid; e < b * b; e += nthreads) {
      const int i = e / b, j = e % b;
      float acc = 0.0f;
      for (int t = 0; t < b; ++t) acc += p[i * b + t] * s[t * b + j];
      q[e] = acc;
    }
    sync();
    const float weight = k == last ? 1.0f : 2.0f;
    for (int e = tid; e < b * b; e += nthreads) {
      r[e] += weight * q[e];
      p[e] = q[e];
    }
    sync();
  }
}

}  // namespace qoracle::optimized
