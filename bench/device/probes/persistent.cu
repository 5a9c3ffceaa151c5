// A hardware probe, not part of tkc: would one persistent kernel per decode step, its phases
// separated by grid-wide barriers, beat a CUDA graph of one kernel per phase with programmatic
// dependent launch (what tkc runs)? Each layer of a Llama-2-7B-shaped step, with stand-in kernels
// that read what tkc's read (q4f16_1-like weights: a 16-byte word of 32 four-bit codes and an f16
// scale per group of 32; f32 activations):
//   QKV   12288 x 4096 GEMV of x                      -> qkv
//   attn  128 blocks (32 heads x 4 splits) reading 2 MB of f16 "cache" against q -> 4 partial sums
//   O     4096 x 4096 GEMV of the summed partials,     x += it
//   gate/up 22016 x 4096 GEMV of x                     -> gu
//   down  4096 x 11008 GEMV of silu(gate) * up,        x += it
// over 32 layers of distinct weights (3.7 GB, streamed from DRAM). Every GEMV phase is the same
// code in every variant (its arithmetic a stand-in, see Row::dot): a warp a row, the row's 16-byte words spread over the lanes, the warp's
// first row loaded into registers before the phase waits for its input (the weights do not depend
// on it), x staged in shared memory. Variants, timed per layer:
//   graph       the 5 x 32 kernels captured in a CUDA graph, plain stream order;
//   graphPDL    the same with programmatic dependent launch: each kernel loads its first row, then
//               griddepcontrol.wait; each triggers its dependents after its rows (its epilogue);
//   persistent  one kernel, one block a multiprocessor, a grid barrier between phases (an atomic
//               counter), the first row of the next phase loaded before the barrier;
//   persistentNoPre  the same with the first row loaded after the barrier.
// The final x of each variant is compared with the graph's (same arithmetic: equal bits).
// Build and run on the GPU machine: nvcc -O3 -arch=sm_90a -std=c++17 -o /tmp/pp persistent.cu && /tmp/pp
// (-DPROBE_WARPS=32 for blocks of 1024 threads)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

constexpr int LAYERS = 32;
constexpr int DIM = 4096, QKV = 12288, HID = 11008, GU = 2 * HID, POS = 256, HEADS = 32, SPLITS = 4;
#ifndef PROBE_WARPS
#define PROBE_WARPS 16
#endif
// 16 warps: a block of 512 threads (the next kernel's block fits beside it under programmatic
// launch); -DPROBE_WARPS=32: 1024 threads, twice the bytes in flight, no room beside it.
constexpr int WARPS = PROBE_WARPS, BT = WARPS * 32;
#include "layer.h"

struct Layer {
  Gemv qkv, o, gu, down;
  const __half* kv;      // [POS][DIM]
};
struct Acts {
  float *x, *qkv, *part, *gu;
};


// x staged in shared memory: plain, the sum of the attention's partials, or silu(gate) * up.
enum Stage { PLAIN, PARTS, SWIGLU };
template <int K, Stage S>
__device__ void stage(float* xs, const float* src) {
  for (int i = threadIdx.x; i < K; i += blockDim.x) {
    float v;
    if (S == PLAIN) v = ldcg(src + i);
    else if (S == PARTS) v = ldcg(src + i) + ldcg(src + DIM + i) + ldcg(src + 2 * DIM + i) + ldcg(src + 3 * DIM + i);
    else {
      float g = ldcg(src + i), u = ldcg(src + HID + i);
      v = g / (1.f + __expf(-g)) * u;
    }
    xs[i] = v;
  }
  __syncthreads();
}

// The attention stand-in: block b < 128 takes head b / 4 and positions of split b % 4.
__device__ void attn(const __half* kv, const float* q, float* part) {
  if (blockIdx.x >= HEADS * SPLITS || threadIdx.x >= 128) return;
  int head = blockIdx.x / SPLITS, split = blockIdx.x % SPLITS, d = head * 128 + threadIdx.x;
  float qd = ldcg(q + d), acc = 0.f;
  for (int p = split * (POS / SPLITS); p < (split + 1) * (POS / SPLITS); p++)
    acc = fmaf(__half2float(kv[(size_t)p * DIM + d]), qd, acc);
  part[split * DIM + d] = acc;
}


// ---- one kernel a phase ----
template <int N, int K, Epi E, Stage S>
__global__ void __launch_bounds__(BT) gemvKernel(Gemv m, const float* src, float* y) {
  extern __shared__ float xs[];
  Row<K> first;
  const int gw = blockIdx.x * WARPS + (threadIdx.x >> 5);
  if (gw < N) first.load(m, gw, threadIdx.x & 31);
  waitPrevious();  // a no-op without programmatic launch
  stage<K, S>(xs, src);
  gemvRows<N, K, E>(m, xs, y, first);
  triggerNext();
}

__global__ void __launch_bounds__(BT) attnKernel(const __half* kv, const float* q, float* part) {
  waitPrevious();
  attn(kv, q, part);
  triggerNext();
}

// ---- one persistent kernel ----
__device__ unsigned int barrierCount;

__device__ __forceinline__ void gridBarrier(unsigned int& target) {
  __syncthreads();
  target += gridDim.x;
  if (threadIdx.x == 0) {
    __threadfence();
    atomicAdd(&barrierCount, 1u);
    unsigned int seen;
    do asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(seen) : "l"(&barrierCount) : "memory");
    while (seen < target);
  }
  __syncthreads();
}

// The warp's first row of an N-row GEMV, where it has one (with 32 warps a block, 4,224 warps
// outnumber O's and down's 4,096 rows).
template <int K>
__device__ __forceinline__ void loadFirst(Row<K>& r, const Gemv& m, int n, int gw, int lane) {
  if (gw < n) r.load(m, gw, lane);
}

template <bool PRELOAD>
__global__ void __launch_bounds__(BT) persistentKernel(const Layer* layers, Acts a) {
  extern __shared__ float xs[];
  unsigned int target = 0;
  const int lane = threadIdx.x & 31, gw = blockIdx.x * WARPS + (threadIdx.x >> 5);
  Row<DIM> r4;
  Row<HID> r11;
  if (PRELOAD) loadFirst(r4, layers[0].qkv, QKV, gw, lane);
  for (int l = 0; l < LAYERS; l++) {
    const Layer& L = layers[l];
    if (!PRELOAD) loadFirst(r4, L.qkv, QKV, gw, lane);
    stage<DIM, PLAIN>(xs, a.x);
    gemvRows<QKV, DIM, STORE>(L.qkv, xs, a.qkv, r4);
    if (PRELOAD) loadFirst(r4, L.o, DIM, gw, lane);
    gridBarrier(target);
    attn(L.kv, a.qkv, a.part);
    gridBarrier(target);
    if (!PRELOAD) loadFirst(r4, L.o, DIM, gw, lane);
    stage<DIM, PARTS>(xs, a.part);
    gemvRows<DIM, DIM, ADD>(L.o, xs, a.x, r4);
    if (PRELOAD) loadFirst(r4, L.gu, GU, gw, lane);
    gridBarrier(target);
    if (!PRELOAD) loadFirst(r4, L.gu, GU, gw, lane);
    stage<DIM, PLAIN>(xs, a.x);
    gemvRows<GU, DIM, STORE>(L.gu, xs, a.gu, r4);
    if (PRELOAD) loadFirst(r11, L.down, DIM, gw, lane);
    gridBarrier(target);
    if (!PRELOAD) loadFirst(r11, L.down, DIM, gw, lane);
    stage<HID, SWIGLU>(xs, a.gu);
    gemvRows<DIM, HID, ADD>(L.down, xs, a.x, r11);
    if (PRELOAD && l + 1 < LAYERS) loadFirst(r4, layers[l + 1].qkv, QKV, gw, lane);
    gridBarrier(target);
  }
}

// ---- host ----

int main() {
  int sms;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  const size_t smem4 = DIM * 4, smem11 = HID * 4;
  auto allowSmem = [](auto k, size_t bytes) { CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes)); };
  allowSmem(gemvKernel<DIM, HID, ADD, SWIGLU>, smem11);
  allowSmem(persistentKernel<true>, smem11);
  allowSmem(persistentKernel<false>, smem11);

  std::vector<Layer> hl(LAYERS);
  size_t bytesPerLayer = 0;
  for (int l = 0; l < LAYERS; l++) {
    hl[l].qkv = makeGemv(QKV, DIM, 1 + l * 8);
    hl[l].o = makeGemv(DIM, DIM, 2 + l * 8);
    hl[l].gu = makeGemv(GU, DIM, 3 + l * 8);
    hl[l].down = makeGemv(DIM, HID, 4 + l * 8);
    __half* kv;
    CHECK(cudaMalloc(&kv, (size_t)POS * DIM * 2));
    fillHalf<<<1024, 256>>>(kv, (size_t)POS * DIM, 0.01f);
    hl[l].kv = kv;
  }
  for (auto [n, k] : {std::pair{QKV, DIM}, {DIM, DIM}, {GU, DIM}, {DIM, HID}}) bytesPerLayer += (size_t)n * (k / 32) * 18;
  bytesPerLayer += (size_t)POS * DIM * 2;
  Layer* dl;
  CHECK(cudaMalloc(&dl, sizeof(Layer) * LAYERS));
  CHECK(cudaMemcpy(dl, hl.data(), sizeof(Layer) * LAYERS, cudaMemcpyHostToDevice));
  Acts a;
  CHECK(cudaMalloc(&a.x, DIM * 4));
  CHECK(cudaMalloc(&a.qkv, QKV * 4));
  CHECK(cudaMalloc(&a.part, SPLITS * DIM * 4));
  CHECK(cudaMalloc(&a.gu, GU * 4));
  std::vector<float> x0(DIM);
  for (int i = 0; i < DIM; i++) x0[i] = 0.01f * (float)((i * 37) % 101 - 50);
  CHECK(cudaDeviceSynchronize());

  const double copyGBs = copyBandwidthGBs();
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));

  cudaStream_t st;
  CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  const int grid = sms;  // one block of 512 threads a multiprocessor: the next kernel's fit beside it
  auto graphOf = [&](bool pdl) {
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    for (int l = 0; l < LAYERS; l++) {
      launch(st, pdl, gemvKernel<QKV, DIM, STORE, PLAIN>, grid, smem4, hl[l].qkv, (const float*)a.x, a.qkv);
      launch(st, pdl, attnKernel, HEADS * SPLITS, 0, hl[l].kv, (const float*)a.qkv, a.part);
      launch(st, pdl, gemvKernel<DIM, DIM, ADD, PARTS>, grid, smem4, hl[l].o, (const float*)a.part, a.x);
      launch(st, pdl, gemvKernel<GU, DIM, STORE, PLAIN>, grid, smem4, hl[l].gu, (const float*)a.x, a.gu);
      launch(st, pdl, gemvKernel<DIM, HID, ADD, SWIGLU>, grid, smem11, hl[l].down, (const float*)a.gu, a.x);
    }
    CHECK(cudaStreamEndCapture(st, &g));
    CHECK(cudaGraphInstantiate(&ge, g, 0));
    return ge;
  };
  cudaGraphExec_t plain = graphOf(false), pdl = graphOf(true);
  const unsigned int zero = 0;
  auto run = [&](int variant) {
    CHECK(cudaMemcpyAsync(a.x, x0.data(), DIM * 4, cudaMemcpyHostToDevice, st));
    CHECK(cudaMemcpyToSymbolAsync(barrierCount, &zero, 4, 0, cudaMemcpyHostToDevice, st));
    CHECK(cudaEventRecord(e0, st));
    if (variant == 0) CHECK(cudaGraphLaunch(plain, st));
    else if (variant == 1) CHECK(cudaGraphLaunch(pdl, st));
    else if (variant == 2) persistentKernel<true><<<grid, BT, smem11, st>>>(dl, a);
    else persistentKernel<false><<<grid, BT, smem11, st>>>(dl, a);
    CHECK(cudaGetLastError());
    CHECK(cudaEventRecord(e1, st));
    CHECK(cudaEventSynchronize(e1));
    float t;
    CHECK(cudaEventElapsedTime(&t, e0, e1));
    return t * 1e3f / LAYERS;  // us a layer
  };
  const char* names[] = {"graph", "graphPDL", "persistent", "persistentNoPre"};
  std::vector<float> ref(DIM), got(DIM);
  printf("{\n \"warpsPerBlock\": %d,\n \"device\": \"%s\",\n \"copyBandwidthGBs\": %.1f,\n \"bytesPerLayer\": %zu,\n \"layerUsAtCopyBandwidth\": %.2f,\n \"grid\": %d,\n \"threads\": %d,\n \"variants\": [\n",
         WARPS, prop.name, copyGBs, bytesPerLayer, bytesPerLayer / (copyGBs * 1e3), grid, BT);
  for (int v = 0; v < 4; v++) {
    for (int i = 0; i < 3; i++) run(v);  // warm the clocks
    std::vector<float> t;
    for (int i = 0; i < 21; i++) t.push_back(run(v));
    std::sort(t.begin(), t.end());
    CHECK(cudaMemcpy(got.data(), a.x, DIM * 4, cudaMemcpyDeviceToHost));
    if (v == 0) ref = got;
    bool finite;
    const float diff = maxAbsDiff(got, ref, finite);
    printf("  {\"variant\": \"%s\", \"layerUs\": %.2f, \"layerUsMin\": %.2f, \"fractionOfCopy\": %.3f, \"maxDiffFromGraph\": %g, \"finite\": %s}%s\n",
           names[v], t[t.size() / 2], t[0], bytesPerLayer / (copyGBs * 1e3) / t[t.size() / 2], diff, finite ? "true" : "false", v < 3 ? "," : "");
  }
  printf(" ]\n}\n");
  return 0;
}
