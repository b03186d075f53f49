#include "reference/aqlm_quantizer.hpp"

#include <limits>

#include "reference/error.hpp"
#include "reference/seeded_random.hpp"
#include "reference/validate.hpp"

namespace qoracle {

AqlmQuantized aqlm_quantize(const Matrix& weight, const AqlmConfig& c, const AqlmQuantizerOptions& options) {
  require_finite(weight, "weight to quantize");
  const int out = static_cast<int>(weight.rows()), in = static_cast<int>(weight.cols());
  const AqlmGeometry g = aqlm_geometry(c, out, in);
  const int og = c.out_group_size, ig = c.in_group_size, dim = og * ig;
  const int n_og = g.out_groups, n_ig = g.in_groups, entries = g.entries;
  SeededRandom rng(options.seed);

  AqlmQuantized q;
  q.scales.resize(n_og);
  for (int o = 0; o < n_og; ++o) {
    const double norm = weight.middleRows(o * og, og).norm();
    q.scales(o) = round_to(options.storage, norm > 0 ? norm : 1.0);
  }
  // The residual vectors, one per (out group, in group), each og x ig tile flattened row-major.
  const int n = n_og * n_ig;
  Matrix residual(n, dim);
  for (int o = 0; o < n_og; ++o)
    for (int i = 0; i < n_ig; ++i)
      for (int r = 0; r < og; ++r)
        for (int col = 0; col < ig; ++col)
          residual(o * n_ig + i, r * ig + col) = weight(o * og + r, i * ig + col) / q.scales(o);

  q.codes.assign(static_cast<std::size_t>(n) * c.num_codebooks, 0);
  q.codebooks.assign(static_cast<std::size_t>(c.num_codebooks) * entries * dim, 0.0);
  for (int k = 0; k < c.num_codebooks; ++k) {
    // Initial centroids: a seeded random subset of the residuals (zeros beyond n).
    Matrix centroids = Matrix::Zero(entries, dim);
    std::vector<int> order(static_cast<std::size_t>(n));
    for (int v = 0; v < n; ++v) order[static_cast<std::size_t>(v)] = v;
    for (int v = n - 1; v > 0; --v) std::swap(order[static_cast<std::size_t>(v)], order[rng.next_u64() % static_cast<std::uint64_t>(v + 1)]);
    for (int e = 0; e < std::min(n, entries); ++e) centroids.row(e) = residual.row(order[static_cast<std::size_t>(e)]);
    std::vector<int> assign(static_cast<std::size_t>(n), 0);
    auto nearest = [&](int v) {
      int best = 0;
      double best_d = std::numeric_limits<double>::infinity();
      for (int e = 0; e < entries; ++e) {
        const double d = (residual.row(v) - centroids.row(e)).squaredNorm();
        if (d < best_d) best_d = d, best = e;  // ties keep the lowest index
      }
      return best;
    };
    // With at least as many entries as vectors every vector is its own centroid: no Lloyd needed.
    const int iterations = entries >= n ? 0 : options.lloyd_iterations;
    for (int it = 0; it <= iterations; ++it) {
      for (int v = 0; v < n; ++v) assign[static_cast<std::size_t>(v)] = nearest(v);
      if (it == iterations) break;
      Matrix sums = Matrix::Zero(entries, dim);
      std::vector<int> counts(static_cast<std::size_t>(entries), 0);
      for (int v = 0; v < n; ++v) {
        sums.row(assign[static_cast<std::size_t>(v)]) += residual.row(v);
        ++counts[static_cast<std::size_t>(assign[static_cast<std::size_t>(v)])];
      }
      for (int e = 0; e < entries; ++e)
        if (counts[static_cast<std::size_t>(e)] > 0) centroids.row(e) = sums.row(e) / counts[static_cast<std::size_t>(e)];
    }
    centroids = round_to(options.storage, centroids);  // stored as the checkpoint holds it
    for (int v = 0; v < n; ++v) {
      const int e = nearest(v);  // against the stored centroids
      q.codes[static_cast<std::size_t>(v) * c.num_codebooks + k] = e;
      residual.row(v) -= centroids.row(e);
    }
    for (int e = 0; e < entries; ++e)
      for (int d = 0; d < dim; ++d) q.codebooks[(static_cast<std::size_t>(k) * entries + e) * dim + d] = centroids(e, d);
  }
  const AqlmLinear layer(c, out, in, q.codes, q.codebooks, q.scales, std::nullopt, options.storage, AqlmKernel::Exact);
  q.relative_error = (layer.weight() - weight).norm() / std::max(weight.norm(), 1e-300);
  return q;
}

}  // namespace qoracle
