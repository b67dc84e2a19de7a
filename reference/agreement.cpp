// How far two fp64 oracle results are apart (reference/attention.hpp oracle_disagreement): the
// CPU oracle against the GPU one, and either against an independent implementation.
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "reference/attention.hpp"

namespace pa {

double oracle_disagreement(const ReferenceResult& a, const ReferenceResult& b) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (a.out.size() != b.out.size() || a.lse.size() != b.lse.size() || a.uniform.size() != b.uniform.size())
    return kInf;
  // |x - y| / scale, where a NaN on exactly one side is infinitely far and NaN on both is equal.
  auto rel = [&](double x, double y, double scale) {
    if (std::isnan(x) || std::isnan(y)) return std::isnan(x) == std::isnan(y) ? 0.0 : kInf;
    if (x == y) return 0.0;
    return std::fabs(x - y) / scale;
  };
  double worst = 0;
  const size_t rows = b.lse.size(), D = rows ? b.out.size() / rows : 0;
  for (const auto* pair : {&a.out, &a.uniform}) {
    const std::vector<double>& x = *pair;
    const std::vector<double>& y = pair == &a.out ? b.out : b.uniform;
    for (size_t r = 0; r < rows; ++r) {
      double scale = 0;
      for (size_t d = 0; d < D; ++d) scale = std::max(scale, std::fabs(y[r * D + d]));
      scale = scale > 0 ? scale : 1.0;
      for (size_t d = 0; d < D; ++d) worst = std::max(worst, rel(x[r * D + d], y[r * D + d], scale));
    }
  }
  for (size_t r = 0; r < rows; ++r) worst = std::max(worst, rel(a.lse[r], b.lse[r], std::max(1.0, std::fabs(b.lse[r]))));
  for (auto [x, y] : {std::pair{a.stats.v_max, b.stats.v_max}, std::pair{a.stats.logit_rms, b.stats.logit_rms},
                      std::pair{a.stats.pv_rms, b.stats.pv_rms}})
    worst = std::max(worst, rel(x, y, std::max(std::fabs(y), std::numeric_limits<double>::min())));
  return worst;
}

}  // namespace pa
