// Run here (by prepare.sh): the q4f16_1 GEMV kernels at the Llama-2-7B shapes, scheduled for
// sm_90 and compiled to PTX, for bench/device/gemv.ts. Writes <outDir>/gemv.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as S from "../../stdlib/index.ts";
import { q4GemvMmaSchedule, q4GemvSchedule, gemvParams, type GemvSchedule } from "../../stdlib/gpu/gemv.ts";
import { specializedFunc } from "../../llama/device/prepare.ts";
import { funcToJson } from "../../lower/ir/serialize.ts";
import type { OpSpec } from "../../llama/device/types.ts";
import { compileOp } from "../../llama/device/compile.ts";

export const GEMV_SHAPES: readonly [number, number][] = [
  [4096, 4096],
  [12288, 4096],
  [22016, 4096],
  [4096, 11008],
  [32000, 4096],
];

export function gemvSpec(n: number, k: number, p?: GemvSchedule, rows4 = false): OpSpec {
  return {
    key: `q4gemv${rows4 ? "rows4" : ""}_${n}x${k}${p ? `_r${p.rows}l${p.lanes}${p.unrollGroups ? "u" : ""}` : ""}`,
    kernel: rows4 ? S.q4GemvRows4 : S.q4Gemv,
    specialize: { n, k, kw: k / 8, kg: k / 32 },
    schedule: q4GemvSchedule(rows4 ? "n4" : "n", p),
  };
}

/** The tensor-core GEMV (stdlib/q4_gemv_mma.ts) at one shape, with other warps or rows per block. */
export function gemvMmaSpec(n: number, k: number, warps = 8, rows = 32, unrollChunks = 1): OpSpec {
  return {
    key: `q4gemvmma_${n}x${k}_w${warps}r${rows}u${unrollChunks}`,
    kernel: { ...S.q4GemvMma, consts: { WARPS: warps, MMA_ROWS: rows, TILES: rows / 16 } },
    specialize: { n, k, kw: k / 8, kg: k / 32 },
    schedule: q4GemvMmaSchedule({ unrollChunks }),
  };
}

const outDir = resolve(process.argv[2] ?? ".device/kernels");
mkdirSync(outDir, { recursive: true });
// The schedules the model uses (the tuned or default parameters of each family); bench/tune.ts
// searches the others.
const variants: [GemvSchedule, boolean][] = [
  [gemvParams("sm_90", "gemv"), false],
  [gemvParams("sm_90", "gemvRows"), true],
];
const out = GEMV_SHAPES.flatMap(([n, k]) =>
  variants.map(([p, rows4]) => {
    const spec = gemvSpec(n, k, p, rows4);
    const artifact = compileOp(spec, "sm_90");
    return {
      n,
      k,
      params: { ...p, rows4 },
      artifact,
      reference: n === 4096 && k === 4096 ? funcToJson(specializedFunc(spec)) : undefined,
    };
  }),
);
// The tensor-core GEMV, checked against the four-rows kernel (another implementation) at 4096^2.
const mmaVariants: [number, number, number][] = [
  [8, 32, 1],
  [8, 32, 2],
  [4, 32, 2],
  [4, 32, 4],
  [16, 16, 1],
  [16, 16, 3],
  [8, 16, 2],
  [16, 32, 3],
];
const mma = GEMV_SHAPES.flatMap(([n, k]) =>
  mmaVariants.map(([warps, rows, unroll]) => ({
    n,
    k,
    params: { rows, lanes: warps, mma: true, unrollChunks: unroll },
    artifact: compileOp(gemvMmaSpec(n, k, warps, rows, unroll), "sm_90"),
    reference:
      n === 4096 && k === 4096 ? funcToJson(specializedFunc(gemvSpec(n, k, undefined, true))) : undefined,
  })),
);
out.push(...(mma as never[]));
writeFileSync(join(outDir, "gemv.json"), JSON.stringify(out));
console.log(`gemv: ${out.length} kernels -> ${join(outDir, "gemv.json")}`);
