/** Schedules and checks the lowering-pass tests share. */
import { expect } from "vitest";
import { DTYPES } from "../../dsl/dtypes.ts";
import { toNumbers, type NDArray } from "../../dsl/ndarray.ts";
import { cpuDeviceKernel } from "../../backends/cpu/device.ts";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import type { For, PrimFunc, ThreadTag } from "../../lower/ir/nodes.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { loopPath, replaceStmt } from "../../lower/schedule/state.ts";
import { randomArgs } from "../helpers/random.ts";
import { matmul, matmulTiled, rmsNormRows } from "./kernels.ts";

/**
 * rmsNormRows for a GPU: rows over blockIdx.x (or `rowsPerBlock` rows per block on threadIdx.y, or
 * `serialRows` rows per block one after another),
 * the row sum as a cross-thread reduction over `threads` threads of threadIdx.x, the output loop
 * over `outThreads` threads (a narrower loop gets a guard).
 */
export function rmsNormGpu(p: {
  threads: number;
  outThreads?: number;
  rowsPerBlock?: number;
  serialRows?: number;
}): Schedule {
  const s = Schedule.of(rmsNormRows);
  if (p.serialRows) {
    // Several rows one after another in each block: the shared scratch is reused per row.
    const [bi] = s.split("i", [null, p.serialRows]);
    s.bind(bi!, "blockIdx.x");
  } else if (p.rowsPerBlock) {
    const [bi, ti] = s.split("i", [null, p.rowsPerBlock]);
    s.bind(bi!, "blockIdx.x");
    s.bind(ti!, "threadIdx.y");
  } else s.bind("i", "blockIdx.x");
  const [kt] = s.split("k", [p.threads, null]);
  s.bind(kt!, "threadIdx.x");
  const [, yt] = s.split("k_1", [null, p.outThreads ?? p.threads]);
  s.bind(yt!, "threadIdx.x");
  return s;
}

/** The pre-tiled matmul with its block and thread loops bound and the inner product unrolled. */
export function matmulGpu(): Schedule {
  const s = Schedule.of(matmulTiled);
  s.bind("by", "blockIdx.y");
  s.bind("bx", "blockIdx.x");
  for (const suffix of ["", "1", "2", "3"]) {
    s.bind(`ty${suffix}`, "threadIdx.y");
    s.bind(`tx${suffix}`, "threadIdx.x");
  }
  s.unroll("ki");
  return s;
}

export const rmsNormRef = (): PrimFunc => lowerKernel(rmsNormRows);
export const matmulRef = (): PrimFunc => lowerKernel(matmul);

/** Marks a loop as bound to a thread axis without bind's checks, to build IR bind would refuse. */
export function bindRaw(f: PrimFunc, loop: string, tag: ThreadTag): PrimFunc {
  const l = loopPath(f, loop, "test").loop;
  return replaceStmt(f, l, { ...l, forKind: "thread", thread: tag } satisfies For);
}

/** The largest difference between the reference (cpuKernel) and `device` (cpuDeviceKernel) outputs. */
export function deviceError(
  reference: PrimFunc,
  device: PrimFunc,
  symbols: Readonly<Record<string, number>>,
  opts: { seed?: number; scalars?: Record<string, number> } = {},
): number {
  const seed = opts.seed ?? 7;
  const a = randomArgs(reference, symbols, seed, opts.scalars);
  const b = randomArgs(reference, symbols, seed, opts.scalars);
  cpuKernel(reference)(a);
  cpuDeviceKernel(device)(b);
  let worst = 0;
  for (const [name, v] of Object.entries(a)) {
    if (typeof v === "number") continue;
    const x = toNumbers(v);
    const y = toNumbers(b[name] as NDArray);
    let scale = 1e-30;
    for (const t of x) scale = Math.max(scale, Math.abs(t));
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(x[i]! - y[i]!);
      worst = Math.max(worst, Number.isNaN(d) ? Infinity : DTYPES[v.dtype].kind === "float" ? d / scale : d);
    }
  }
  return worst;
}

/** Expects the device function to compute what the reference does (relative tolerance for floats). */
export function expectDeviceMatches(
  reference: PrimFunc,
  device: PrimFunc,
  symbols: Readonly<Record<string, number>>,
  opts: { seed?: number; scalars?: Record<string, number>; tol?: number } = {},
): void {
  expect(deviceError(reference, device, symbols, opts)).toBeLessThanOrEqual(opts.tol ?? 0);
}
