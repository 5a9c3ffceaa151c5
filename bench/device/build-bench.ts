// Run here (by prepare.sh): the q4f16_1 GEMV kernels at the Llama-2-7B shapes, scheduled for
// sm_90 and compiled to PTX, for bench/device/gemv.ts. Writes <outDir>/gemv.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as S from "../../stdlib/index.ts";
import {
  mmaGemvKernel,
  mmaGemvVariant,
  q4GemvMmaSchedule,
  q4GemvSchedule,
  gemvParams,
  type GemvSchedule,
} from "../../stdlib/gpu/gemv.ts";
import { specializedFunc } from "../../llama/device/prepare.ts";
import { funcToJson } from "../../lower/ir/serialize.ts";
import type { OpSpec } from "../../llama/device/types.ts";
import { compileOp } from "../../llama/device/compile.ts";
import type { DependentsLaunch } from "../../lower/ir/nodes.ts";

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

/**
 * The tensor-core GEMV (stdlib/q4_gemv_mma.ts) at one shape, in the variant the model uses there;
 * with `dependentsLaunch`, letting the next launch start once this one's blocks start ("start":
 * its blocks then load their weights while this one runs, as the decode launches O), reach their
 * epilogue ("epilogue", as the decode launches its QKV and down GEMVs) or exit
 * (OpSpec.dependentsLaunch), not once they pass their wait.
 */
export function gemvMmaSpec(n: number, k: number, dependentsLaunch?: DependentsLaunch): OpSpec {
  return {
    key: `q4gemvmma_${n}x${k}${dependentsLaunch ? `_at${dependentsLaunch}` : ""}`,
    kernel: mmaGemvKernel(S.q4GemvMma, n, k)!,
    specialize: { n, k, kw: k / 8, kg: k / 32 },
    schedule: q4GemvMmaSchedule(),
    ...(dependentsLaunch ? { dependentsLaunch } : {}),
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
// The tensor-core GEMV in each shape's tuned variant (bench/tune.ts searches the others), checked
// against the four-rows kernel (another implementation) at 4096^2; each also letting the next
// launch start at its blocks' start (with programmatic launch, the next launch's blocks stream
// their weights while this one's run) and only at their epilogue.
const mma = GEMV_SHAPES.flatMap(([n, k]) =>
  [undefined, "start" as const, "epilogue" as const].map((dependentsLaunch) => {
    const v = mmaGemvVariant(`${n}x${k}`);
    return {
      n,
      k,
      params: {
        rows: v.rows,
        lanes: v.warps,
        mma: true,
        unrollChunks: v.unrollChunks,
        ...(dependentsLaunch ? { dependentsLaunch } : {}),
      },
      artifact: compileOp(gemvMmaSpec(n, k, dependentsLaunch), "sm_90"),
      reference:
        n === 4096 && k === 4096 && !dependentsLaunch
          ? funcToJson(specializedFunc(gemvSpec(n, k, undefined, true)))
          : undefined,
    };
  }),
);
out.push(...(mma as never[]));
writeFileSync(join(outDir, "gemv.json"), JSON.stringify(out));
console.log(`gemv: ${out.length} kernels -> ${join(outDir, "gemv.json")}`);
