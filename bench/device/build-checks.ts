// Run here (by prepare.sh): schedules every kernel for the GPU, compiles it to PTX for sm_90, and
// writes <outDir>/checks.json with the unscheduled IR (the CPU reference the GPU machine runs) and
// the test cases, for bench/device/checks.ts.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { GPU_EXAMPLES } from "../../examples/gpu-schedules.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { funcToJson } from "../../lower/ir/serialize.ts";
import { buildArtifact } from "../../backends/llvm/artifact.ts";
import type { CheckCase } from "./checks.ts";
import * as S from "../../stdlib/index.ts";
import type { KernelDef } from "../../dsl/kernel.ts";
import { llamaOps, allOps } from "../../llama/ops.ts";
import { GPU_SCHEDULES } from "../../stdlib/gpu/schedules.ts";
import { scheduledFunc, specializedFunc } from "../../llama/device/prepare.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { TINY_GQA } from "../../llama/presets.ts";

const target = { kind: "nvptx", arch: "sm_90" } as const;

const TINY = TINY_GQA;

/** Arguments that must hold valid positions or token ids (random ones would index out of bounds). */
function fixedArgs(
  f: ReturnType<typeof specializedFunc>,
  symbols: Record<string, number>,
): CheckCase["fixed"] {
  const fixed: NonNullable<CheckCase["fixed"]> = {};
  for (const p of f.params) {
    const name = p.kind === "buffer" ? p.buffer.name : p.v.name;
    if (name === "pos_mem" || name === "offset_mem") fixed[name] = { dtype: "i32", shape: [1], values: [5] };
    if (name === "len_mem") fixed[name] = { dtype: "i32", shape: [1], values: [6] };
    if (name === "ids") {
      const n = symbols.t ?? 1;
      fixed[name] = {
        dtype: "i32",
        shape: [n],
        values: Array.from({ length: n }, (_, i) => (i * 7) % TINY.vocabSize),
      };
    }
    if (name === "pos" || name === "start" || name === "offset") fixed[name] = 4;
    if (name === "eps") fixed[name] = 1e-5;
    if (name === "theta") fixed[name] = 10000;
  }
  return fixed;
}

/** Small sizes for every stdlib kernel's symbols (per-kernel overrides where a name means another thing). */
const STDLIB_SYMBOLS: Record<string, number> = {
  k: 64,
  kw: 8,
  kg: 2,
  n: 12,
  qd: 8,
  kvd: 2,
  n2: 12,
  i: 6,
  m: 3,
  t: 3,
  h: 4,
  kvh: 2,
  d: 16,
  ctx: 12,
  v: 40,
  vocab: 40,
  dim: 64,
  dw: 8,
  dg: 2,
};
const STDLIB_OVERRIDES: Record<string, Record<string, number>> = {
  kvAppend: { n: 3 },
  attentionPrefill: { n: 3 },
};
const STDLIB_SCALARS: Record<string, number> = {
  eps: 1e-5,
  offset: 4,
  theta: 10000,
  pos: 4,
  len: 6,
  start: 4,
  temperature: 0.8,
  topP: 0.9,
};

/** Every stdlib kernel at small sizes, with its GPU schedule where it has one (else one thread). */
function stdlibChecks(): CheckCase[] {
  const out: CheckCase[] = [];
  for (const [name, k] of Object.entries(S)) {
    if (typeof k !== "object" || (k as { kind?: string }).kind !== "kernel") continue;
    const def = k as KernelDef;
    const base = lowerKernel(def);
    const values = Object.fromEntries(
      base.symbols.map((s) => [s.name, STDLIB_OVERRIDES[name]?.[s.name] ?? STDLIB_SYMBOLS[s.name] ?? 3]),
    );
    const spec = {
      key: `stdlib_${name}`,
      kernel: def,
      specialize: values,
      ...(GPU_SCHEDULES[name] ? { schedule: GPU_SCHEDULES[name] } : {}),
    };
    const reference = specializedFunc(spec);
    const device = lowerToDevice(scheduledFunc(spec, "sm_90"), TARGETS.sm_90);
    const { llvm: _ir, ...artifact } = buildArtifact(device, target, { resources: true });
    const fixed: NonNullable<CheckCase["fixed"]> = {};
    for (const p of reference.params) {
      if (p.kind === "scalar" && p.v.name in STDLIB_SCALARS) fixed[p.v.name] = STDLIB_SCALARS[p.v.name]!;
      if (p.kind === "buffer" && p.buffer.name === "ids")
        fixed.ids = { dtype: "i32", shape: [3], values: [0, 17, 39] };
    }
    out.push({
      name: `stdlib ${name}${GPU_SCHEDULES[name] ? "" : " (unscheduled: one thread)"}`,
      reference: funcToJson(reference),
      artifact,
      cases: [{}],
      scalars: {},
      tol: 2e-3,
      fixed,
    });
  }
  return out;
}

export function buildChecks(): CheckCase[] {
  const out: CheckCase[] = stdlibChecks();
  const ops = [
    ...allOps(llamaOps(TINY, "q4f16_1", GPU_SCHEDULES)),
    ...allOps(llamaOps(TINY, "f16", GPU_SCHEDULES)),
  ];
  for (const spec of new Map(ops.map((o) => [o.key, o])).values()) {
    const reference = specializedFunc(spec);
    const device = lowerToDevice(scheduledFunc(spec, "sm_90"), TARGETS.sm_90);
    const { llvm: _ir, ...artifact } = buildArtifact(device, target, { resources: true });
    const symbols = Object.fromEntries(reference.symbols.map((s) => [s.name, 3]));
    out.push({
      name: spec.key,
      reference: funcToJson(reference),
      artifact,
      cases: [symbols],
      scalars: {},
      tol: 2e-3,
      fixed: fixedArgs(reference, symbols),
    });
  }
  for (const [name, ex] of Object.entries(GPU_EXAMPLES)) {
    const scheduled = lowerToDevice(ex.schedule().func, TARGETS.sm_90);
    const { llvm: _llvm, ...artifact } = buildArtifact(scheduled, target, { resources: true });
    out.push({
      name,
      reference: funcToJson(lowerKernel(ex.kernel)),
      artifact,
      cases: ex.cases,
      scalars: ex.scalars ?? {},
      tol: ex.tol,
    });
  }
  return out;
}

const outDir = resolve(process.argv[2] ?? ".device/kernels");
mkdirSync(outDir, { recursive: true });
const checks = buildChecks();
writeFileSync(join(outDir, "checks.json"), JSON.stringify(checks));
console.log(`checks: ${checks.map((c) => c.name).join(", ")} -> ${join(outDir, "checks.json")}`);
