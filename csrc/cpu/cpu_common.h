// What the CPU loops share: runtime ISA dispatch and the OpenMP helpers.
#pragma once

#include <cstdint>

#include "fastiou/common.h"

// Hot loops are compiled three times (AVX-512, AVX2, baseline x86-64) and the loader picks the
// best one the CPU has (GCC function multi-versioning). Never -march=native: the wheel must run
// on any x86-64. A clone must not contain an OpenMP region (the outlined body would lose the
// target), so parallel loops call clones, not the other way round.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(FASTIOU_NO_CLONES)
#define FASTIOU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FASTIOU_CLONES
#endif

namespace fastiou {

// Below this many output elements a parallel region costs more than it saves.
constexpr index_t kParallelMin = 1 << 14;

}  // namespace fastiou
