// A hardware probe, not part of tkc: can a decode step's attention over the cached positions run
// while the QKV projection still streams its weights, instead of after it? In tkc's step the chain
// from QKV's end to O's end (attention, combine, O) takes ~12 us a layer on an H200 against ~3 at
// copy bandwidth (bench/results/decode-trace-h200.json): attention is latency-bound and waits for
// the whole projection, though it needs only its head's q rows (the first third of the matrix) and
// the current position's k and v (which the combine can fold in, as one more split).
// Each layer of a Llama-2-7B-shaped step, with stand-in GEMVs (layer.h) and a real split attention:
//   QKV      12288 x 4096 GEMV of x                           -> qkv (q | k | v, f32)
//   attn     32 heads x SPLITS blocks of 4 warps: online softmax of q . k over the cached positions
//            (f16 cache, [POS][4096] each of k and v), partial max, sum and 128 accumulators a split
//   combine  32 blocks: the splits merged with the current position's k and v (read from qkv)
//   O        4096 x 4096 GEMV of the combined heads,           x += it
// over 32 layers of distinct weights and caches, in a CUDA graph with programmatic dependent launch.
// Variants, timed per layer:
//   waitAll    tkc's order: attention waits (griddepcontrol.wait) for the whole projection;
//   headFlags  the projection triggers its dependents once it has staged x, and counts each q row
//              it writes in its head's counter (fence, then atomic add); attention's blocks launch
//              beside its last wave, each waits for its head's 128 q rows only (an acquire load in a
//              spin), and waits for the whole projection only before it exits (so the combine, which
//              reads k and v, still follows the projection);
//   qDone      as headFlags, but the projection counts once a block, after the two rounds of rows
//              that hold every q row (one fence a block, not one a row), and attention waits for
//              all q rows;
//   noAttention  QKV then O on qkv's first 4096 values: the chain without attention, for scale.
// The final x of headFlags and qDone is compared with waitAll's (same arithmetic: equal bits).
// Build and run on the GPU machine:
//   nvcc -O3 -arch=sm_90a -std=c++17 -o /tmp/ao attention_overlap.cu && /tmp/ao
// (-DPROBE_POS=512 for the bench's longest context, -DPROBE_SPLITS=n for other splits)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

constexpr int WARPS = 16, BT = WARPS * 32;
#include "layer.h"

#ifndef PROBE_POS
#define PROBE_POS 256
#endif
#ifndef PROBE_SPLITS
#define PROBE_SPLITS 8
#endif
constexpr int LAYERS = 32, DIM = 4096, QKV = 3 * DIM, HEADS = 32, HD = 128, POS = PROBE_POS, SPLITS = PROBE_SPLITS;
constexpr int AT = 128;  // attention and combine threads a block

struct Layer {
  Gemv qkv, o;
  const __half *k, *v;  // [POS][DIM] each
  unsigned int* flags;  // [HEADS] q rows written this step
};
struct Acts {
  float *x, *qkv, *attn;
  float *partMax, *partSum, *partAcc;  // [SPLITS][HEADS], [SPLITS][HEADS], [SPLITS][DIM]
};

// WAIT_ALL: attention waits for the whole projection; HEAD_FLAGS: for its head's 128 q rows, each
// counted as it is written (a fence and an atomic a row); Q_DONE: for all q rows, counted once a
// block (a fence and an atomic a block, after the block's rows of the first two rounds: rows
// gw + k * TW with k < 2 cover every q row when the grid has 2,048 or more warps).
enum Order { WAIT_ALL, HEAD_FLAGS, Q_DONE };

// The projection: x staged, rows as layer.h's gemvRows, with HEAD_FLAGS each q row counted.
template <Order O>
__global__ void __launch_bounds__(BT) qkvKernel(Gemv m, const float* x, float* y, unsigned int* flags) {
  __shared__ float xs[DIM];
  const int lane = threadIdx.x & 31, gw = blockIdx.x * WARPS + (threadIdx.x >> 5), TW = gridDim.x * WARPS;
  Row<DIM> first;
  first.load(m, gw, lane);
  waitPrevious();
  for (int i = threadIdx.x; i < DIM; i += BT) xs[i] = ldcg(x + i);
  __syncthreads();
  if (O != WAIT_ALL) triggerNext();
  for (int row = gw, round = 0; row < QKV; row += TW, round++) {
    Row<DIM> r;
    if (row == gw) r = first;
    else r.load(m, row, lane);
    float v = r.dot(xs, lane);
    if (lane == 0) {
      y[row] = v;
      if (O == HEAD_FLAGS && row < DIM) {
        __threadfence();
        atomicAdd(flags + row / HD, 1u);
      }
    }
    if (O == Q_DONE && round == 1) {
      __syncthreads();
      if (threadIdx.x == 0) {
        __threadfence();
        atomicAdd(flags, 1u);
      }
    }
  }
  if (O == WAIT_ALL) triggerNext();
}

__device__ __forceinline__ float warpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Block (head, split): its warps take positions in turn, each an online softmax over its positions
// (a lane holds 4 of the head's 128 dimensions), merged across warps at the end.
template <Order O>
__global__ void __launch_bounds__(AT) attnKernel(const __half* kc, const __half* vc, const float* qkv, unsigned int* flags, unsigned int qkvBlocks, Acts a) {
  __shared__ float wm[4], ws[4], wacc[4][HD];
  const int head = blockIdx.x / SPLITS, split = blockIdx.x % SPLITS, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (O == WAIT_ALL) waitPrevious();
  else {
    if (threadIdx.x == 0) {
      const unsigned int* flag = O == HEAD_FLAGS ? flags + head : flags;
      const unsigned int target = O == HEAD_FLAGS ? HD : qkvBlocks;
      unsigned int seen;
      for (;;) {
        asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(seen) : "l"(flag) : "memory");
        if (seen >= target) break;
        __nanosleep(64);
      }
    }
    __syncthreads();
  }
  float q[4];
#pragma unroll
  for (int j = 0; j < 4; j++) q[j] = ldcg(qkv + head * HD + lane * 4 + j) * rsqrtf((float)HD);
  float m = -INFINITY, s = 0.f, acc[4] = {0.f, 0.f, 0.f, 0.f};
  const int p0 = split * (POS / SPLITS), p1 = (split + 1) * (POS / SPLITS);
  for (int p = p0 + warp; p < p1; p += 4) {
    const __half2* kr = reinterpret_cast<const __half2*>(kc + (size_t)p * DIM + head * HD + lane * 4);
    const __half2* vr = reinterpret_cast<const __half2*>(vc + (size_t)p * DIM + head * HD + lane * 4);
    float2 k0 = __half22float2(kr[0]), k1 = __half22float2(kr[1]);
    float2 v0 = __half22float2(vr[0]), v1 = __half22float2(vr[1]);
    float sc = warpSum(q[0] * k0.x + q[1] * k0.y + q[2] * k1.x + q[3] * k1.y);
    float mn = fmaxf(m, sc), c = __expf(m - mn), e = __expf(sc - mn);
    s = s * c + e;
    acc[0] = acc[0] * c + e * v0.x;
    acc[1] = acc[1] * c + e * v0.y;
    acc[2] = acc[2] * c + e * v1.x;
    acc[3] = acc[3] * c + e * v1.y;
    m = mn;
  }
  if (lane == 0) wm[warp] = m, ws[warp] = s;
#pragma unroll
  for (int j = 0; j < 4; j++) wacc[warp][lane * 4 + j] = acc[j];
  __syncthreads();
  float bm = fmaxf(fmaxf(wm[0], wm[1]), fmaxf(wm[2], wm[3])), bs = 0.f, ba = 0.f;
  for (int w = 0; w < 4; w++) {
    float c = wm[w] == -INFINITY ? 0.f : __expf(wm[w] - bm);
    bs += ws[w] * c;
    ba += wacc[w][threadIdx.x] * c;
  }
  a.partAcc[split * DIM + head * HD + threadIdx.x] = ba;
  if (threadIdx.x == 0) a.partMax[split * HEADS + head] = bm, a.partSum[split * HEADS + head] = bs;
  // headFlags: the combine reads k and v, the projection's last rows; this grid completes only
  // after the projection has (a no-op for waitAll, which waited at the start).
  if (O != WAIT_ALL) waitPrevious();
  triggerNext();
}

// Block head: the splits and the current position (q . k from qkv, v from qkv) merged.
__global__ void __launch_bounds__(AT) combineKernel(const float* qkv, Acts a) {
  __shared__ float red[4];
  const int head = blockIdx.x, d = head * HD + threadIdx.x;
  waitPrevious();
  float part = warpSum(ldcg(qkv + d) * rsqrtf((float)HD) * ldcg(qkv + DIM + d));
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = part;
  __syncthreads();
  const float sc = red[0] + red[1] + red[2] + red[3];
  float m = sc;
  for (int s = 0; s < SPLITS; s++) m = fmaxf(m, ldcg(a.partMax + s * HEADS + head));
  float den = __expf(sc - m), num = den * ldcg(qkv + 2 * DIM + d);
  for (int s = 0; s < SPLITS; s++) {
    float c = __expf(ldcg(a.partMax + s * HEADS + head) - m);
    den += c * ldcg(a.partSum + s * HEADS + head);
    num += c * ldcg(a.partAcc + s * DIM + d);
  }
  a.attn[d] = num / den;
  triggerNext();
}

__global__ void __launch_bounds__(BT) oKernel(Gemv m, const float* src, float* x) {
  __shared__ float xs[DIM];
  Row<DIM> first;
  const int gw = blockIdx.x * WARPS + (threadIdx.x >> 5);
  if (gw < DIM) first.load(m, gw, threadIdx.x & 31);
  waitPrevious();
  for (int i = threadIdx.x; i < DIM; i += BT) xs[i] = ldcg(src + i);
  __syncthreads();
  gemvRows<DIM, DIM, ADD>(m, xs, x, first);
  triggerNext();
}

int main() {
  int sms;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  std::vector<Layer> hl(LAYERS);
  size_t weightBytes = 0, cacheBytes = 2 * (size_t)POS * DIM * 2;
  for (int l = 0; l < LAYERS; l++) {
    hl[l].qkv = makeGemv(QKV, DIM, 1 + l * 8);
    hl[l].o = makeGemv(DIM, DIM, 2 + l * 8);
    __half *k, *v;
    CHECK(cudaMalloc(&k, (size_t)POS * DIM * 2));
    CHECK(cudaMalloc(&v, (size_t)POS * DIM * 2));
    fillHalf<<<1024, 256>>>(k, (size_t)POS * DIM, 0.5f);
    fillHalf<<<1024, 256>>>(v, (size_t)POS * DIM, 1.f);
    hl[l].k = k, hl[l].v = v;
    CHECK(cudaMalloc(&hl[l].flags, HEADS * 4));
  }
  for (auto [n, k] : {std::pair{QKV, DIM}, {DIM, DIM}}) weightBytes += (size_t)n * (k / 32) * 18;
  Acts a;
  CHECK(cudaMalloc(&a.x, DIM * 4));
  CHECK(cudaMalloc(&a.qkv, QKV * 4));
  CHECK(cudaMalloc(&a.attn, DIM * 4));
  CHECK(cudaMalloc(&a.partMax, SPLITS * HEADS * 4));
  CHECK(cudaMalloc(&a.partSum, SPLITS * HEADS * 4));
  CHECK(cudaMalloc(&a.partAcc, SPLITS * DIM * 4));
  std::vector<float> x0(DIM);
  for (int i = 0; i < DIM; i++) x0[i] = 0.01f * (float)((i * 37) % 101 - 50);
  CHECK(cudaDeviceSynchronize());
  const double copyGBs = copyBandwidthGBs();

  cudaStream_t st;
  CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  const int grid = sms;
  auto launchT = [&](auto k, int g, int threads, auto... args) { launchThreads(st, true, k, g, threads, 0, args...); };
  auto graphOf = [&](int variant) {
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    for (int l = 0; l < LAYERS; l++) {
      const Layer& L = hl[l];
      if (variant == 3) {
        launchT(qkvKernel<WAIT_ALL>, grid, BT, L.qkv, (const float*)a.x, a.qkv, L.flags);
        launchT(oKernel, grid, BT, L.o, (const float*)a.qkv, a.x);
        continue;
      }
      const unsigned int blocks = grid;
      if (variant == 0) {
        launchT(qkvKernel<WAIT_ALL>, grid, BT, L.qkv, (const float*)a.x, a.qkv, L.flags);
        launchT(attnKernel<WAIT_ALL>, HEADS * SPLITS, AT, L.k, L.v, (const float*)a.qkv, L.flags, blocks, a);
      } else if (variant == 1) {
        launchT(qkvKernel<HEAD_FLAGS>, grid, BT, L.qkv, (const float*)a.x, a.qkv, L.flags);
        launchT(attnKernel<HEAD_FLAGS>, HEADS * SPLITS, AT, L.k, L.v, (const float*)a.qkv, L.flags, blocks, a);
      } else {
        launchT(qkvKernel<Q_DONE>, grid, BT, L.qkv, (const float*)a.x, a.qkv, L.flags);
        launchT(attnKernel<Q_DONE>, HEADS * SPLITS, AT, L.k, L.v, (const float*)a.qkv, L.flags, blocks, a);
      }
      launchT(combineKernel, HEADS, AT, (const float*)a.qkv, a);
      launchT(oKernel, grid, BT, L.o, (const float*)a.attn, a.x);
    }
    CHECK(cudaStreamEndCapture(st, &g));
    CHECK(cudaGraphInstantiate(&ge, g, 0));
    return ge;
  };
  cudaGraphExec_t graphs[4] = {graphOf(0), graphOf(1), graphOf(2), graphOf(3)};
  auto run = [&](int variant) {
    CHECK(cudaMemcpyAsync(a.x, x0.data(), DIM * 4, cudaMemcpyHostToDevice, st));
    for (auto& L : hl) CHECK(cudaMemsetAsync(L.flags, 0, HEADS * 4, st));
    CHECK(cudaEventRecord(e0, st));
    CHECK(cudaGraphLaunch(graphs[variant], st));
    CHECK(cudaEventRecord(e1, st));
    CHECK(cudaEventSynchronize(e1));
    float t;
    CHECK(cudaEventElapsedTime(&t, e0, e1));
    return t * 1e3f / LAYERS;
  };
  const char* names[] = {"waitAll", "headFlags", "qDone", "noAttention"};
  std::vector<float> ref(DIM), got(DIM);
  printf("{\n \"device\": \"%s\",\n \"copyBandwidthGBs\": %.1f,\n \"positions\": %d,\n \"splits\": %d,\n \"weightBytesPerLayer\": %zu,\n \"cacheBytesPerLayer\": %zu,\n \"layerUsAtCopyBandwidth\": %.2f,\n \"variants\": [\n",
         prop.name, copyGBs, POS, SPLITS, weightBytes, cacheBytes, (weightBytes + cacheBytes) / (copyGBs * 1e3));
  for (int v = 0; v < 4; v++) {
    for (int i = 0; i < 5; i++) run(v);
    std::vector<float> t;
    for (int i = 0; i < 31; i++) t.push_back(run(v));
    std::sort(t.begin(), t.end());
    CHECK(cudaMemcpy(got.data(), a.x, DIM * 4, cudaMemcpyDeviceToHost));
    if (v == 0) ref = got;
    bool finite;
    const float diff = maxAbsDiff(got, ref, finite);
    char diffText[32];
    snprintf(diffText, sizeof diffText, v == 3 ? "null" : "%g", diff);  // noAttention computes another x
    printf("  {\"variant\": \"%s\", \"layerUs\": %.2f, \"layerUsMin\": %.2f, \"maxDiffFromWaitAll\": %s, \"finite\": %s}%s\n",
           names[v], t[t.size() / 2], t[0], diffText, finite ? "true" : "false", v < 3 ? "," : "");
  }
  printf(" ]\n}\n");
  return 0;
}
