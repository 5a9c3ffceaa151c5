// A hardware probe, not part of tkc: does asking L2 for part of a GEMV's weights ahead of time
// make the GEMV's later streaming read faster? The decode step's attention chain leaves DRAM idle
// for several microseconds a layer; if weights prefetched then were read from L2 at a higher rate,
// a branch of the step's graph beside the chain could fill that time. Each trial flushes L2 (a
// read of 512 MB elsewhere), warms P bytes of the gate/up-shaped weights (50.7 MB) one way, then
// times one streaming read of all of them (32 KB slabs a block, 16-byte loads, as the GEMVs read):
//   none    nothing warmed (P = 0);
//   bulkHead / bulkTail  cp.async.bulk.prefetch.L2 of the first / last P bytes (64 KB a request);
//   lineHead  prefetch.global.L2 of each 128-byte line of the first P bytes;
//   loadHead  the first P bytes read with plain loads (they stay in L2 as any read does).
// Also: the warming itself timed alone (us), to see whether it streams at DRAM speed.
// Build and run on the GPU machine: nvcc -O3 -arch=sm_90a -o /tmp/l2p l2_prefetch.cu && /tmp/l2p
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>
#include <cuda_runtime.h>
#include "probe.h"


constexpr int SLAB = 32768;

// One thread a block: bulk prefetches of 64 KB covering the block's share of [from, from + bytes).
__global__ void bulkPrefetch(const char* from, size_t bytes) {
  constexpr size_t PIECE = 65536;
  size_t pieces = (bytes + PIECE - 1) / PIECE;
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < pieces; i += (size_t)gridDim.x * blockDim.x) {
    size_t off = i * PIECE;
    uint32_t n = (uint32_t)(bytes - off < PIECE ? bytes - off : PIECE);
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(from + off), "r"(n) : "memory");
  }
}

__global__ void linePrefetch(const char* from, size_t bytes) {
  size_t lines = bytes / 128;
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < lines; i += (size_t)gridDim.x * blockDim.x)
    asm volatile("prefetch.global.L2 [%0];" ::"l"(from + i * 128));
}

static const size_t FLUSH = size_t(512) << 20;
static const size_t WEIGHTS = 50724864 / SLAB * SLAB;  // 22016x4096 q4f16_1 codes + scales

int main() {
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  char *flush, *weights;
  uint32_t* sink;
  CHECK(cudaMalloc(&flush, FLUSH));
  CHECK(cudaMalloc(&weights, WEIGHTS));
  CHECK(cudaMalloc(&sink, 64 << 20));
  CHECK(cudaMemset(flush, 0x11, FLUSH));
  CHECK(cudaMemset(weights, 0x37, WEIGHTS));
  cudaEvent_t a, b, c;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  CHECK(cudaEventCreate(&c));
  printf("{\"device\": \"%s\", \"l2Bytes\": %d, \"weightBytes\": %zu, \"results\": [\n", prop.name, prop.l2CacheSize, WEIGHTS);
  const char* ways[] = {"none", "bulkHead", "bulkTail", "lineHead", "loadHead"};
  const size_t mb = size_t(1) << 20;
  std::vector<size_t> sizes = {8 * mb, 16 * mb, 24 * mb, 32 * mb, 40 * mb};
  bool first = true;
  for (int w = 0; w < 5; w++) {
    for (size_t p : (w == 0 ? std::vector<size_t>{0} : sizes)) {
      p = p / SLAB * SLAB;
      std::vector<float> warmUs, readUs;
      for (int trial = 0; trial < 31; trial++) {
        ldgSlab<SLAB><<<FLUSH / SLAB, THREADS>>>((const uint4*)flush, sink);
        CHECK(cudaEventRecord(a));
        const char* from = w == 2 ? weights + WEIGHTS - p : weights;
        if (w == 1 || w == 2) bulkPrefetch<<<8, 32>>>(from, p);
        if (w == 3) linePrefetch<<<264, 256>>>(from, p);
        if (w == 4) ldgSlab<SLAB><<<p / SLAB, THREADS>>>((const uint4*)from, sink);
        CHECK(cudaEventRecord(b));
        ldgSlab<SLAB><<<WEIGHTS / SLAB, THREADS>>>((const uint4*)weights, sink);
        CHECK(cudaEventRecord(c));
        CHECK(cudaEventSynchronize(c));
        CHECK(cudaGetLastError());
        float x, y;
        CHECK(cudaEventElapsedTime(&x, a, b));
        CHECK(cudaEventElapsedTime(&y, b, c));
        warmUs.push_back(x * 1000);
        readUs.push_back(y * 1000);
      }
      std::sort(warmUs.begin(), warmUs.end());
      std::sort(readUs.begin(), readUs.end());
      printf("%s {\"warm\": \"%s\", \"warmMB\": %.1f, \"warmUs\": %.2f, \"readUs\": %.2f, \"readUsMin\": %.2f}\n", first ? " " : ",",
             ways[w], p / 1048576.0, warmUs[15], readUs[15], readUs[0]);
      first = false;
    }
  }
  printf("]}\n");
  return 0;
}
