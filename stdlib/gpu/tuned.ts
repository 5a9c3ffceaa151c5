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
        warps: 8,
        rows: 16,
        unrollChunks: 2,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-27: least time at this shape, 5.8 us (bench/tune.ts)",
    },
    "gemvMma:12288x4096": {
      params: {
        warps: 4,
        rows: 16,
        unrollChunks: 4,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-27: least time at this shape, 12.0 us (bench/tune.ts)",
    },
    "gemvMma:4096x11008": {
      params: {
        warps: 16,
        rows: 16,
        unrollChunks: 4,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-27: least time at this shape, 12.2 us (bench/tune.ts)",
    },
    "gemvMma:32000x4096": {
      params: {
        warps: 4,
        rows: 16,
        unrollChunks: 4,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-27: least time at this shape, 27.6 us (bench/tune.ts)",
    },
    "gemvMma:22016x4096": {
      params: {
        warps: 8,
        rows: 32,
        unrollChunks: 1,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured:
        "2026-11-27: least 7B decode step in its graph with the RMSNorm-folded gate/up kernel, 1900.2 against 1931.2 us with 4 warps (bench/device/decode.ts --sections 4 --whole-steps; bench/results/decode-gemv-params-ab-h100.json); bench/tune.ts's plain kernel measured 4 warps best alone (20.8 us)",
    },
    gemvMma: {
      params: {
        warps: 8,
        rows: 32,
        unrollChunks: 1,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-27: least total time over the 7B GEMV shapes, 84.7 us (bench/tune.ts)",
    },
  },
};

/** A family's tuned parameters for a target, if the tuner has stored some. */
export function tunedParams<P>(target: string, family: string): P | undefined {
  return TUNED[target]?.[family]?.params as P | undefined;
}
