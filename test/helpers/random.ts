/**
 * Random inputs for kernels and the comparison every schedule test makes: the scheduled function
 * computes what the unscheduled one does, on fresh random inputs, on the CPU backend.
 */
import { expect } from "vitest";
import { DTYPES } from "../../dsl/dtypes.ts";
import { toNumbers, type NDArray } from "../../dsl/ndarray.ts";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import type { PrimFunc } from "../../lower/ir/nodes.ts";

export { rng, randomValues, randomArray, randomArgs } from "../../backends/check.ts";
import { randomArgs } from "../../backends/check.ts";

function cloneArgs(args: Record<string, NDArray | number>): Record<string, NDArray | number> {
  const out: Record<string, NDArray | number> = {};
  for (const [k, v] of Object.entries(args))
    out[k] = typeof v === "number" ? v : { dtype: v.dtype, shape: [...v.shape], data: v.data.slice() };
  return out;
}

/**
 * Runs both functions on the same random inputs and expects every buffer to agree: exactly for
 * integer buffers, within `tol` (relative to the largest magnitude) for floats.
 */
export function expectSameResults(
  reference: PrimFunc,
  scheduled: PrimFunc,
  symbols: Readonly<Record<string, number>>,
  opts: { seed?: number; tol?: number; scalars?: Record<string, number> } = {},
): void {
  const seed = opts.seed ?? 1;
  const args = randomArgs(reference, symbols, seed, opts.scalars);
  const a = cloneArgs(args);
  const b = cloneArgs(args);
  cpuKernel(reference)(a);
  cpuKernel(scheduled)(b);
  for (const [name, v] of Object.entries(a)) {
    if (typeof v === "number") continue;
    const x = toNumbers(v);
    const y = toNumbers(b[name] as NDArray);
    if (DTYPES[v.dtype].kind !== "float" || !opts.tol) {
      expect(Array.from(y), `buffer ${name} (seed ${seed})`).toEqual(Array.from(x));
    } else {
      let scale = 0;
      for (const t of x) scale = Math.max(scale, Math.abs(t));
      let worst = 0;
      for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
      expect(worst / Math.max(scale, 1e-30), `buffer ${name} (seed ${seed})`).toBeLessThanOrEqual(opts.tol);
    }
  }
}
