// A hardware probe, not part of tkc: how fast can a GPU stream read-only weights into its
// multiprocessors, per path? The decode GEMVs read each block's slab of weights once (a block's
// rows are contiguous in memory) and reach about 80% of the device-to-device copy bandwidth on an
// H200; this measures the same access shape without the arithmetic:
//   ldg   each thread loads its share of the block's slab with 16-byte loads, all issued at once
//         (as the GEMVs do into registers);
//   bulk  one thread asks the copy engine (sm_90 cp.async.bulk, completion on an mbarrier) for
//         the whole slab into shared memory, the block then reads it from there.
//   ldgPdl ldg under programmatic dependent launch (each launch's loads issued while the one before
//         it finishes), as tkc's decode launches its GEMVs.
// Slabs are read from a pool larger than L2 at a rotating offset, so every launch reads DRAM.
// Build and run on the GPU machine: nvcc -O3 -arch=sm_90a -o /tmp/read_paths read_paths.cu && /tmp/read_paths
#include <cstdio>
#include <cstdint>
#include <vector>
#include <cuda_runtime.h>
#include "probe.h"


template <int SLAB, int PIECE>
__global__ void __launch_bounds__(THREADS) bulkSlab(const uint4* __restrict__ src, uint32_t* sink) {
  extern __shared__ __align__(128) uint4 tile[];
  __shared__ __align__(8) uint64_t bar;
  const uint32_t barAddr = (uint32_t)__cvta_generic_to_shared(&bar);
  if (threadIdx.x == 0) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(barAddr));
    asm volatile("fence.mbarrier_init.release.cluster;");
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(barAddr), "r"(SLAB));
    const char* from = (const char*)(src + (size_t)blockIdx.x * (SLAB / 16));
    const uint32_t to = (uint32_t)__cvta_generic_to_shared(tile);
#pragma unroll
    for (int off = 0; off < SLAB; off += PIECE)
      asm volatile(
          "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(to + off),
          "l"(from + off), "r"(PIECE), "r"(barAddr)
          : "memory");
  }
  uint32_t done = 0;
  while (!done)
    asm volatile(
        "{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], 0; selp.u32 %0, 1, 0, p; }"
        : "=r"(done)
        : "r"(barAddr)
        : "memory");
  constexpr int PER = SLAB / 16 / THREADS;
  uint32_t acc = 0;
#pragma unroll
  for (int i = 0; i < PER; i++) {
    uint4 v = tile[i * THREADS + threadIdx.x];
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9e3779b9u) sink[blockIdx.x * THREADS + threadIdx.x] = acc;
}

// ldgSlab under programmatic dependent launch, as tkc's decode launches its GEMVs: the next
// launch may start once every block has started, and a block's loads are issued before it waits
// for the previous launch (the pool is read-only, so that is safe); only its store waits.
template <int SLAB>
__global__ void __launch_bounds__(THREADS) ldgSlabPdl(const uint4* __restrict__ src, uint32_t* sink) {
  asm volatile("griddepcontrol.launch_dependents;");
  uint32_t acc = readSlab<SLAB>(src);
  asm volatile("griddepcontrol.wait;" ::: "memory");
  if (acc == 0x9e3779b9u) sink[blockIdx.x * THREADS + threadIdx.x] = acc;
}

template <typename K>
static void launchPdl(K kernel, size_t blocks, const uint4* src, uint32_t* sink) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3((unsigned)blocks);
  cfg.blockDim = dim3(THREADS);
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  CHECK(cudaLaunchKernelEx(&cfg, kernel, src, sink));
}

static const size_t POOL = size_t(1) << 30;  // 1 GiB: every launch's slabs miss L2 (50 MB)

template <typename Launch>
static double timeUs(Launch launch, size_t bytes, int reps) {
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  size_t slots = POOL / bytes;
  for (int i = 0; i < 20; i++) launch(i % slots);
  CHECK(cudaEventRecord(a));
  for (int i = 0; i < reps; i++) launch(i % slots);
  CHECK(cudaEventRecord(b));
  CHECK(cudaEventSynchronize(b));
  CHECK(cudaGetLastError());
  float ms = 0;
  CHECK(cudaEventElapsedTime(&ms, a, b));
  return ms * 1000.0 / reps;
}

int main() {
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  char* pool;
  uint32_t* sink;
  CHECK(cudaMalloc(&pool, POOL));
  CHECK(cudaMalloc(&sink, 64 << 20));
  CHECK(cudaMemset(pool, 0x37, POOL));
  // Copy bandwidth (bytes read + written), a 1 GiB device-to-device copy as tkc's bench measures it.
  char* other;
  CHECK(cudaMalloc(&other, POOL));
  double copyUs = timeUs([&](size_t) { CHECK(cudaMemcpyAsync(other, pool, POOL, cudaMemcpyDeviceToDevice)); }, POOL, 10);
  double copyGBs = 2.0 * POOL / (copyUs * 1e3);
  CHECK(cudaFree(other));
  printf("{\"device\": \"%s\", \"copyGBs\": %.1f, \"results\": [\n", prop.name, copyGBs);
  struct Shape { const char* name; size_t bytes; };
  // The 7B decode GEMVs' weights (codes + scales) per launch.
  std::vector<Shape> shapes = {{"4096x4096", 9437184}, {"12288x4096", 28311552}, {"22016x4096", 50724864}, {"4096x11008", 25362432}, {"32000x4096", 73728000}};
  bool first = true;
  auto report = [&](const char* path, const char* shape, int slab, size_t bytes, double us) {
    double gbs = bytes / (us * 1e3);
    printf("%s {\"path\": \"%s\", \"shape\": \"%s\", \"slabBytes\": %d, \"us\": %.3f, \"GBs\": %.1f, \"fractionOfCopy\": %.4f}\n",
           first ? " " : ",", path, shape, slab, us, gbs, gbs / copyGBs);
    first = false;
  };
  for (auto& s : shapes) {
#define RUN_LDG(SL)                                                                                       \
  {                                                                                                       \
    size_t blocks = s.bytes / SL, bytes = blocks * SL;                                                    \
    double us = timeUs([&](size_t slot) { ldgSlab<SL><<<blocks, THREADS>>>((const uint4*)(pool + slot * bytes), sink); }, bytes, 400); \
    report("ldg", s.name, SL, bytes, us);                                                                 \
  }
#define RUN_BULK(SL, PC)                                                                                  \
  {                                                                                                       \
    size_t blocks = s.bytes / SL, bytes = blocks * SL;                                                    \
    CHECK(cudaFuncSetAttribute(bulkSlab<SL, PC>, cudaFuncAttributeMaxDynamicSharedMemorySize, SL));       \
    double us = timeUs([&](size_t slot) { bulkSlab<SL, PC><<<blocks, THREADS, SL>>>((const uint4*)(pool + slot * bytes), sink); }, bytes, 400); \
    report(PC == SL ? "bulk" : "bulk16k", s.name, SL, bytes, us);                                        \
  }
    RUN_LDG(32768)
    RUN_LDG(65536)
#define RUN_PDL(SL)                                                                                       \
  {                                                                                                       \
    size_t blocks = s.bytes / SL, bytes = blocks * SL;                                                    \
    double us = timeUs([&](size_t slot) { launchPdl(ldgSlabPdl<SL>, blocks, (const uint4*)(pool + slot * bytes), sink); }, bytes, 400); \
    report("ldgPdl", s.name, SL, bytes, us);                                                              \
  }
    RUN_PDL(16384)
    RUN_PDL(32768)
    RUN_PDL(65536)
    RUN_BULK(32768, 32768)
    RUN_BULK(65536, 65536)
    RUN_BULK(65536, 16384)
    RUN_BULK(98304, 98304)
  }
  printf("]}\n");
  return 0;
}
