/**
 * Schedule parameters measured best on a GPU, per target and kernel family: data written by
 * `npx tsx bench/tune.ts apply <results>` from a bench/tune run on the device (do not edit by hand;
 * rerun the tuner), or, where the kernels the model runs measured otherwise inside the decode
 * step's graph than the tuner's stand-ins alone, taken from that measurement (the entry's
 * `measured` names its results file). The GPU schedules (gemv.ts, schedules.ts) take a family's
 * entry here over their defaults.
 *
 * Families: "gemv" (the one-row q4 GEMVs: q4Gemv, q4GemvF32, q4GemvResidual, q4QkvGemv,
 * q4GateUpSilu), "gemvRows" (the rows-per-thread ones: q4GemvRows4, q4GemvResidualRows4,
 * q4GateUpSiluRows2, q4GemvRows4Rms), "gemvMma" (the tensor-core GEMVs of q4_gemv_mma.ts: warps,
 * rows per block, unrolled chunks), "rowReduce" (rmsNorm's threads per row, one row: decode),
 * "rowReduceRows" (the same over many rows: the prefill's, measured in the model).
 */
export interface TunedEntry {
  /** The parameters, as the family's schedule takes them. */
  readonly params: Readonly<Record<string, number | boolean>>;
  /** Where and how they were measured. */
  readonly device: string;
  readonly measured: string;
}

export const TUNED: Readonly<Record<string, Readonly<Record<string, TunedEntry>>>> = {
  sm_90: {
    gemv: {
      params: {
        rows: 4,
        lanes: 32,
        unrollGroups: true,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-27: least total time over the 7B GEMV shapes, 105.8 us (bench/tune.ts)",
    },
    gemvRows: {
      params: {
        rows: 1,
        lanes: 64,
        unrollGroups: true,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-27: least total time over the 7B GEMV shapes, 89.3 us (bench/tune.ts)",
    },
    rowReduce: {
      params: {
        threads: 1024,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-27: least total time over RMSNorm of 4096, 2.3 us (bench/tune.ts)",
    },
    rowReduceRows: {
      params: {
        threads: 512,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured:
        "2026-11-28: the 512-token 7B prefill's RMSNorm in the model's order, 6.4 us against 7.6 at 256 and 1,024 threads (bench/results/prefill-norm-vector-ab-h100.json)",
    },
    "gemv:4096x4096": {
      params: {
        rows: 4,
        lanes: 32,
        unrollGroups: true,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-27: least time at this shape, 7.2 us (bench/tune.ts)",
    },
    "gemv:12288x4096": {
      params: {
        rows: 4,
        lanes: 32,
        unrollGroups: true,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-27: least time at this shape, 16.6 us (bench/tune.ts)",
    },
    "gemv:22016x4096": {
      params: {
        rows: 4,
        lanes: 32,
        unrollGroups: true,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-27: least time at this shape, 27.5 us (bench/tune.ts)",
    },
    "gemv:4096x11008": {
      params: {
        rows: 2,
        lanes: 32,
        unrollGroups: true,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-27: least time at this shape, 15.9 us (bench/tune.ts)",
    },
    "gemv:32000x4096": {
      params: {
        rows: 4,
        lanes: 32,
        unrollGroups: true,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-27: least time at this shape, 38.5 us (bench/tune.ts)",
    },
    "gemvRows:4096x4096": {
      params: {
        rows: 1,
        lanes: 64,
        unrollGroups: true,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-27: least time at this shape, 6.4 us (bench/tune.ts)",
    },
    "gemvRows:12288x4096": {
      params: {
        rows: 1,
        lanes: 32,
        unrollGroups: false,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-27: least time at this shape, 14.1 us (bench/tune.ts)",
    },
    "gemvRows:22016x4096": {
      params: {
        rows: 1,
        lanes: 64,
        unrollGroups: true,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-27: least time at this shape, 22.5 us (bench/tune.ts)",
    },
    "gemvRows:4096x11008": {
      params: {
        rows: 2,
        lanes: 128,
        unrollGroups: true,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-27: least time at this shape, 13.1 us (bench/tune.ts)",
    },
    "gemvRows:32000x4096": {
      params: {
        rows: 1,
        lanes: 64,
        unrollGroups: true,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-27: least time at this shape, 31.4 us (bench/tune.ts)",
    },
    "gemvMma:4096x4096": {
      params: {
        warps: 16,
        rows: 32,
        unrollChunks: 1,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured:
        "2026-11-28: least time at this shape, 4.8 us (bench/tune.ts, with programmatic launch), and the least 7B decode step in its graph with the residual-adding O kernel: 1721.2 against 1747.8 us with 8 warps, 16 rows, 2 unrolled (bench/results/decode-gemv-params-ab3-h100.json)",
    },
    "gemvMma:12288x4096": {
      params: {
        warps: 4,
        rows: 16,
        unrollChunks: 4,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured:
        "2026-11-28: least 7B decode step in its graph with the RMSNorm-folded QKV kernel: 1721.4 us against 1745.4 with 8 warps, 16 rows, 2 unrolled; 1792.2 with 16 warps, 16 rows; 1774.5 against 1747.8 with bench/tune.ts's pick alone (8 warps, 32 rows, 4 unrolled: 11.0 us against 11.8) (bench/results/decode-gemv-params-ab3-h100.json); 1709.5 with 2 unrolled and 1725.9 with 1 against 1695.3 (decode-gemv-warps-ab-h100.json)",
    },
    "gemvMma:4096x11008": {
      params: {
        warps: 16,
        rows: 16,
        unrollChunks: 4,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured:
        "2026-11-28: least 7B decode step in its graph with the residual-adding down kernel: 1721.4 us against 1799.6 with 32 rows (decode-gemv-params-ab3-h100.json); 1719.1 against 1797.9 with 11 warps (bench/tune.ts's pick alone with programmatic launch, 10.3 against 10.5 us) and 1720.0 with 15 (decode-gemv-warps-ab-h100.json)",
    },
    "gemvMma:32000x4096": {
      params: {
        warps: 8,
        rows: 16,
        unrollChunks: 2,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-28: least time at this shape, 25.7 us (bench/tune.ts, with programmatic launch)",
    },
    "gemvMma:22016x4096": {
      params: {
        warps: 8,
        rows: 32,
        unrollChunks: 2,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured:
        "2026-11-28: least 7B decode step in its graph with the RMSNorm-folded gate/up kernel, its first round of weights loaded before the wait: 1747.8 against 1808.3 us with 1 chunk unrolled; 1722.2 with 4 against 1721.4 with 2; 1922.6 with 16 warps (bench/device/decode.ts --sections 4 --whole-steps; bench/results/decode-gemv-params-ab3-h100.json)",
    },
    gemvMma: {
      params: {
        warps: 16,
        rows: 32,
        unrollChunks: 4,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured:
        "2026-11-28: least total time over the 7B GEMV shapes, 76.2 us (bench/tune.ts, with programmatic launch)",
    },
  },
  vulkan: {
    rowReduce: {
      params: {
        threads: 256,
      },
      device: "NVIDIA H200 (Vulkan)",
      measured:
        "2026-11-29: the 7B decode step's RMSNorm of 4096 in the model, 264.2-264.4 tok/s against 262.6-262.8 at 128 threads; 512 and 1,024 ran the norm faster but the step no faster (bench/results/vulkan-rmsnorm-threads-h200.json)",
    },
    rowReduceRows: {
      params: {
        threads: 128,
      },
      device: "NVIDIA H200 (Vulkan)",
      measured: "2026-11-29: the prefill's norms keep ROW_THREADS (128): not measured with another count",
    },
    "gemvRows:12288x4096": {
      params: {
        rows: 1,
        lanes: 128,
        unrollGroups: false,
      },
      device: "NVIDIA H200 (Vulkan)",
      measured:
        "2026-11-29: least time at this shape of q4GemvRows4Rms through the Vulkan driver, 19.3 us a dispatch timed from the host (bench/device/build-vulkan-bench.ts --tune, bench/results/vulkan-tune-*.json)",
    },
    "gemvRows:4096x4096": {
      params: {
        rows: 1,
        lanes: 32,
        unrollGroups: true,
      },
      device: "NVIDIA H200 (Vulkan)",
      measured:
        "2026-11-29: least time at this shape of q4GemvResidualRows4 through the Vulkan driver, 9.1 us a dispatch timed from the host (bench/device/build-vulkan-bench.ts --tune, bench/results/vulkan-tune-*.json)",
    },
    "gemvRows:22016x4096": {
      params: {
        rows: 1,
        lanes: 32,
        unrollGroups: true,
      },
      device: "NVIDIA H200 (Vulkan)",
      measured:
        "2026-11-29: least time at this shape of q4GateUpSiluRows2 through the Vulkan driver, 24.5 us a dispatch timed from the host (bench/device/build-vulkan-bench.ts --tune, bench/results/vulkan-tune-*.json)",
    },
    "gemv:4096x11008": {
      params: {
        rows: 4,
        lanes: 32,
        unrollGroups: true,
      },
      device: "NVIDIA H200 (Vulkan)",
      measured:
        "2026-11-29: least time at this shape of q4GemvResidual through the Vulkan driver, 17.8 us a dispatch timed from the host (bench/device/build-vulkan-bench.ts --tune, bench/results/vulkan-tune-*.json)",
    },
    "gemvRows:4096x11008": {
      params: {
        rows: 1,
        lanes: 32,
        unrollGroups: true,
      },
      device: "NVIDIA H200 (Vulkan)",
      measured:
        "2026-11-29: least time at this shape of q4GemvResidualRows4 through the Vulkan driver, 16.3 us a dispatch timed from the host (bench/device/build-vulkan-bench.ts --tune, bench/results/vulkan-tune-*.json)",
    },
    "gemvRows:32000x4096": {
      params: {
        rows: 1,
        lanes: 64,
        unrollGroups: true,
      },
      device: "NVIDIA H200 (Vulkan)",
      measured:
        "2026-11-29: least time at this shape of q4GemvF32Rows4 through the Vulkan driver, 32.5 us a dispatch timed from the host (bench/device/build-vulkan-bench.ts --tune, bench/results/vulkan-tune-*.json)",
    },
  },
};

/** A family's tuned parameters for a target, if the tuner has stored some. */
export function tunedParams<P>(target: string, family: string): P | undefined {
  return TUNED[target]?.[family]?.params as P | undefined;
}
