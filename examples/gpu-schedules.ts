/**
 * GPU schedules for the example kernels: functions of their parameters (tile sizes, threads), so
 * per-target values are data. Each returns the schedule; its trace replays the same IR.
 */
import type { KernelDef } from "../dsl/kernel.ts";
import { Schedule } from "../lower/schedule/index.ts";
import * as K from "./kernels.ts";

/** One thread per element of the last loop of a block: outer loops to blockIdx.y, the last split. */
function elementwise(k: KernelDef, block: string, p: { threads: number }): Schedule {
  const s = Schedule.of(k);
  const loops = s.getLoops(block);
  const last = loops[loops.length - 1]!;
  const [bo, ti] = s.split(last, [null, p.threads]);
  s.bind(bo!, "blockIdx.x");
  s.bind(ti!, "threadIdx.x");
  if (loops.length > 1) s.bind(loops[0]!, "blockIdx.y");
  return s;
}

/** One thread per row: the row loop split over blocks and threads, the row's work serial. */
function perRow(k: KernelDef, block: string, p: { threads: number }): Schedule {
  const s = Schedule.of(k);
  const row = s.getLoops(block)[0]!;
  const [bo, ti] = s.split(row, [null, p.threads]);
  s.bind(bo!, "blockIdx.x");
  s.bind(ti!, "threadIdx.x");
  return s;
}

/** A 2-D tile of outputs per block, one output per thread. */
function tiled2d(k: KernelDef, block: string, p: { tile: number }): Schedule {
  const s = Schedule.of(k);
  const [i, j] = s.getLoops(block);
  const [io, ii] = s.split(i!, [null, p.tile]);
  const [jo, ji] = s.split(j!, [null, p.tile]);
  s.reorder(io!, jo!, ii!, ji!);
  s.bind(io!, "blockIdx.y");
  s.bind(jo!, "blockIdx.x");
  s.bind(ii!, "threadIdx.y");
  s.bind(ji!, "threadIdx.x");
  return s;
}

export interface GpuExample {
  readonly kernel: KernelDef;
  readonly schedule: () => Schedule;
  /** Symbol values to test with (odd sizes on purpose). */
  readonly cases: readonly Readonly<Record<string, number>>[];
  readonly scalars?: Readonly<Record<string, number>>;
  /** Relative tolerance against the CPU backend (GPU transcendentals are approximations). */
  readonly tol: number;
}

export const GPU_EXAMPLES: Readonly<Record<string, GpuExample>> = {
  addBroadcast: {
    kernel: K.addBroadcast,
    schedule: () => elementwise(K.addBroadcast, "y", { threads: 128 }),
    cases: [
      { m: 3, n: 1000 },
      { m: 17, n: 5 },
    ],
    tol: 0,
  },
  siluMul: {
    kernel: K.siluMul,
    schedule: () => elementwise(K.siluMul, "out", { threads: 256 }),
    cases: [{ n: 11008 }, { n: 37 }],
    tol: 2e-3,
  },
  softmax: {
    kernel: K.softmax,
    schedule: () => perRow(K.softmax, "y", { threads: 32 }),
    cases: [
      { m: 33, n: 100 },
      { m: 2, n: 1 },
    ],
    tol: 1e-5,
  },
  rmsNorm: {
    kernel: K.rmsNorm,
    schedule: () => perRow(K.rmsNorm, "y", { threads: 32 }),
    cases: [{ n: 70 }],
    scalars: { eps: 1e-5 },
    tol: 2e-3,
  },
  matmul: {
    kernel: K.matmul,
    schedule: () => tiled2d(K.matmul, "c", { tile: 16 }),
    cases: [{ m: 33, k: 65, n: 17 }],
    tol: 1e-5,
  },
  matmulF16: {
    kernel: K.matmulF16,
    schedule: () => tiled2d(K.matmulF16, "c", { tile: 8 }),
    cases: [{ m: 9, k: 130, n: 31 }],
    tol: 2e-3,
  },
  transpose: {
    kernel: K.transpose,
    schedule: () => tiled2d(K.transpose, "y", { tile: 16 }),
    cases: [{ m: 37, n: 70 }],
    tol: 0,
  },
  sumAll: {
    kernel: K.sumAll,
    // A single thread: the reduction is sequential (a cross-thread schedule lives in stdlib).
    schedule: () => Schedule.of(K.sumAll),
    cases: [{ n: 1001 }],
    tol: 1e-5,
  },
  int4Dequant: {
    kernel: K.int4Dequant,
    schedule: () => elementwise(K.int4Dequant, "out", { threads: 64 }),
    cases: [{ n: 5, kw: 12, kg: 3, k: 96 }],
    tol: 0,
  },
  argmax: {
    kernel: K.argmax,
    schedule: () => perRow(K.argmax, "out", { threads: 32 }),
    cases: [{ m: 45, n: 77 }],
    tol: 0,
  },
  histogram: {
    kernel: K.histogram,
    // One thread per element, every one adding to its bin at once (the bins are atomics').
    schedule: () => {
      const s = Schedule.of(K.histogram);
      const [bo, ti] = s.split("i", [null, 64]);
      s.bind(bo!, "blockIdx.x");
      s.bind(ti!, "threadIdx.x");
      return s;
    },
    cases: [{ n: 1000, bins: 7 }],
    tol: 0,
  },
  stagedRowSums: {
    kernel: K.stagedRowSums,
    // A block a row, 32 threads; each thread's copies of a tile one 16-byte copy (vectorized).
    schedule: () => {
      const s = Schedule.of(K.stagedRowSums);
      s.bind("i", "blockIdx.x");
      for (const t of ["t0", "tp", "t1", "t2", "t3"]) s.bind(t, "threadIdx.x");
      for (const v of ["vp", "v2"]) s.vectorize(v);
      return s;
    },
    cases: [
      { m: 5, tiles: 5 },
      { m: 3, tiles: 1 },
    ],
    tol: 1e-5,
  },
};
