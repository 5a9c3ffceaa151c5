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

export const TUNED: Readonly<Record<string, Readonly<Record<string, TunedEntry>>>> = {};

/** A family's tuned parameters for a target, if the tuner has stored some. */
export function tunedParams<P>(target: string, family: string): P | undefined {
  return TUNED[target]?.[family]?.params as P | undefined;
}
