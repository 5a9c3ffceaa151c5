/**
 * Schedule parameters measured best on a GPU, per target and kernel family: data written by
 * `npx tsx bench/tune.ts apply <results>` from a bench/tune run on the device (do not edit by hand;
 * rerun the tuner). The GPU schedules (gemv.ts, schedules.ts) take a family's entry here over their
 * defaults.
 *
 * Families: "gemv" (the one-row q4 GEMVs: q4Gemv, q4GemvF32, q4GemvResidual, q4QkvGemv,
 * q4GateUpSilu), "gemvRows" (the rows-per-thread ones: q4GemvRows4, q4GemvResidualRows4,
 * q4GateUpSiluRows2, q4GemvRows4Rms), "rowReduce" (rmsNorm's threads per row).
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
        rows: 2,
        lanes: 32,
        unrollGroups: true,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-26: least total time over the 7B GEMV shapes, 108.8 us (bench/tune.ts)",
    },
    gemvRows: {
      params: {
        rows: 1,
        lanes: 32,
        unrollGroups: true,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-26: least total time over the 7B GEMV shapes, 93.7 us (bench/tune.ts)",
    },
    rowReduce: {
      params: {
        threads: 1024,
      },
      device: "NVIDIA H100 80GB HBM3",
      measured: "2026-11-26: least total time over RMSNorm of 4096, 2.3 us (bench/tune.ts)",
    },
  },
};

/** A family's tuned parameters for a target, if the tuner has stored some. */
export function tunedParams<P>(target: string, family: string): P | undefined {
  return TUNED[target]?.[family]?.params as P | undefined;
}
