// What the layer-shaped probes (persistent.cu, attention_overlap.cu) share: q4f16_1-sized stand-in
// weights, a warp-a-row GEMV whose arithmetic is a few instructions a 16-byte word (so that a phase
// is bound by DRAM and the boundaries between phases show), programmatic-launch helpers and the
// host-side fills. Include after defining WARPS and BT (warps and threads a block).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include "probe.h"

struct Gemv {
  const uint4* w;        // [n][k / 32] words of 32 codes
  const __half* s;       // [n][k / 32] scales
};

__device__ __forceinline__ float ldcg(const float* p) { return __ldcg(p); }

// The warp's share of a row: IT words (and scales) a lane.
template <int K>
struct Row {
  static constexpr int G = K / 32, IT = (G + 31) / 32;
  uint4 w[IT];
  __half s[IT];
  __device__ __forceinline__ void load(const Gemv& m, int row, int lane) {
#pragma unroll
    for (int i = 0; i < IT; i++) {
      int g = lane + 32 * i;
      if (g < G) {
        w[i] = __ldcs(m.w + (size_t)row * G + g);
        s[i] = m.s[(size_t)row * G + g];
      }
    }
  }
  // Cheap on purpose (a few instructions a 16-byte word, so every phase is bound by DRAM as tkc's
  // GEMVs nearly are, and the phases' boundaries show): a value in [1, 2) from the word's bits,
  // times its scale and one element of x a group. A first version decoding all 32 codes into f32
  // was bound by its arithmetic (240 us a layer, 11% of copy) and hid the boundaries.
  __device__ __forceinline__ float dot(const float* xs, int lane) const {
    float acc = 0.f;
#pragma unroll
    for (int i = 0; i < IT; i++) {
      int g = lane + 32 * i;
      if (g >= G) continue;
      float v = __uint_as_float(0x3f800000u | ((w[i].x ^ w[i].y ^ w[i].z ^ w[i].w) >> 9));
      acc = fmaf(v * __half2float(s[i]), xs[g * 32 + (g & 31)], acc);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    return acc;
  }
};

enum Epi { STORE, ADD };

// Rows gw, gw + TW, ... of an N x K GEMV; `first` holds row gw already (loaded before the wait).
template <int N, int K, Epi E>
__device__ void gemvRows(const Gemv& m, const float* xs, float* y, Row<K>& first) {
  const int lane = threadIdx.x & 31, gw = blockIdx.x * WARPS + (threadIdx.x >> 5), TW = gridDim.x * WARPS;
  for (int row = gw; row < N; row += TW) {
    Row<K> r;
    if (row == gw) r = first;
    else r.load(m, row, lane);
    float v = r.dot(xs, lane);
    if (lane == 0) y[row] = E == ADD ? y[row] + v : v;
  }
}

__device__ __forceinline__ void waitPrevious() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void triggerNext() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }

__global__ void fillWords(uint4* w, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u ^ seed;
    w[i] = make_uint4(h, h * 2246822519u, h * 3266489917u, h ^ 0x9e3779b9u);
  }
}
__global__ void fillHalf(__half* p, size_t n, float v) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = __float2half(v * (float)((i * 7919) % 17) / 17.f);
}

static Gemv makeGemv(int n, int k, uint32_t seed) {
  size_t g = (size_t)n * (k / 32);
  uint4* w;
  __half* s;
  CHECK(cudaMalloc(&w, g * 16));
  CHECK(cudaMalloc(&s, g * 2));
  fillWords<<<1024, 256>>>(w, g, seed);
  fillHalf<<<1024, 256>>>(s, g, 1.f / 2048.f);
  return {w, s};
}

// A launch of `threads` a block, with programmatic dependent launch when pdl.
template <typename Kern, typename... Args>
static void launchThreads(cudaStream_t st, bool pdl, Kern k, int grid, int threads, size_t smem, Args... args) {
  cudaLaunchConfig_t c = {};
  c.gridDim = grid;
  c.blockDim = threads;
  c.dynamicSmemBytes = smem;
  c.stream = st;
  cudaLaunchAttribute at[1];
  at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  at[0].val.programmaticStreamSerializationAllowed = 1;
  c.attrs = at;
  c.numAttrs = pdl ? 1 : 0;
  CHECK(cudaLaunchKernelEx(&c, k, args...));
}

template <typename Kern, typename... Args>
static void launch(cudaStream_t st, bool pdl, Kern k, int grid, size_t smem, Args... args) {
  launchThreads(st, pdl, k, grid, BT, smem, args...);
}

// The largest |got - ref| over the elements, and whether every one of got is finite.
static float maxAbsDiff(const std::vector<float>& got, const std::vector<float>& ref, bool& finite) {
  float diff = 0.f;
  finite = true;
  for (size_t i = 0; i < got.size(); i++) {
    diff = std::max(diff, std::fabs(got[i] - ref[i]));
    finite = finite && std::isfinite(got[i]);
  }
  return diff;
}

// Device-to-device copy bandwidth in GB/s (1 GiB, five copies), the scale the probes report against.
static double copyBandwidthGBs() {
  char *c0, *c1;
  const size_t cb = size_t(1) << 30;
  CHECK(cudaMalloc(&c0, cb));
  CHECK(cudaMalloc(&c1, cb));
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  float ms;
  CHECK(cudaMemcpy(c1, c0, cb, cudaMemcpyDeviceToDevice));
  CHECK(cudaEventRecord(e0));
  for (int i = 0; i < 5; i++) CHECK(cudaMemcpy(c1, c0, cb, cudaMemcpyDeviceToDevice));
  CHECK(cudaEventRecord(e1));
  CHECK(cudaEventSynchronize(e1));
  CHECK(cudaEventElapsedTime(&ms, e0, e1));
  CHECK(cudaFree(c0));
  CHECK(cudaFree(c1));
  return 2.0 * cb * 5 / (ms * 1e-3) / 1e9;
}
