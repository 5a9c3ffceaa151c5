// Run here (by prepare.sh): every kernel the GPU machine checks, scheduled for the GPU and compiled
// for one target, with its unscheduled IR (the CPU reference the GPU machine runs) and test cases:
//   npx tsx bench/device/build-checks.ts <outDir>                -> <outDir>/checks.json: PTX for
//     sm_90, for bench/device/checks.ts
//   npx tsx bench/device/build-checks.ts <outDir> --vulkan <sg>  -> <outDir>/vulkan-checks-sg<sg>.json:
//     SPIR-V lowered for subgroup size <sg> (32: NVIDIA, 8: lavapipe) with the Vulkan schedules, for
//     bench/device/vulkan-checks.ts
// Both targets check the same kernels (checkSources): every stdlib kernel at small sizes, every
// Llama op for TINY_GQA in q4f16_1 and f16, and every GPU example.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { GPU_EXAMPLES } from "../../examples/gpu-schedules.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { funcToJson } from "../../lower/ir/serialize.ts";
import type { PrimFunc } from "../../lower/ir/nodes.ts";
import { buildArtifact } from "../../backends/llvm/artifact.ts";
import type { KernelArtifact } from "../../backends/gpu-common/kernel.ts";
import { buildVulkanArtifact, type VulkanArtifact } from "../../backends/vulkan/kernel.ts";
import type { CheckCase, VulkanChecksFile } from "./check-case.ts";
import * as S from "../../stdlib/index.ts";
import { STEP_WORDS, stepWords } from "../../stdlib/sampling.ts";
import { withConsts, type KernelDef } from "../../dsl/kernel.ts";
import { llamaOps, allOps, type ScheduleTable } from "../../llama/ops.ts";
import { CUDA_OP_CHOICES, type OpChoices } from "../../llama/op-choices.ts";
import { GPU_SCHEDULES } from "../../stdlib/gpu/schedules.ts";
import { scheduledFunc, specializedFunc } from "../../llama/device/prepare.ts";
import { VULKAN_OP_CHOICES, VULKAN_SCHEDULES } from "../../llama/device/vulkan.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { TargetUnsupportedError } from "../../lower/schedule/errors.ts";
import { TINY_GQA } from "../../llama/presets.ts";

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
    // recordToken's [token, position, length]: a position inside the history.
    if (name === "step") fixed[name] = { dtype: "i32", shape: [STEP_WORDS], values: [...stepWords(5, 2, 3)] };
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
  attentionPrefillWarps: { n: 11, d: 64, h: 4, kvh: 2, ctx: 20 },
  // Two blocks of 128 rows, three chunks of 64 positions.
  attentionPrefillMma: { n: 150, d: 64, h: 4, kvh: 2, ctx: 160 },
  // Head dimensions are multiples of 32 (a lane's share of channels).
  attentionDecodeWarps: { d: 64, h: 4, kvh: 2 },
  // Blocks of 32 rows, chunks of 256 along K (3 chunks: one warp reloads and drops the last).
  q4GemvMma: { n: 64, k: 768, kw: 96, kg: 24 },
  q4GemvResidualMma: { n: 64, k: 768, kw: 96, kg: 24 },
  q4GemvF32Mma: { n: 64, k: 768, kw: 96, kg: 24 },
  q4GateUpSiluMma: { n2: 64, i: 32, k: 768, kw: 96, kg: 24 },
  q4GemvRmsMma: { n: 64, k: 768, kw: 96, kg: 24 },
  q4QkvRopeAppendMma: { n: 128, k: 768, kw: 96, kg: 24, h: 2, kvh: 1, d: 32, ctx: 12 },
  q4QkvRopeAppendRmsMma: { n: 128, k: 768, kw: 96, kg: 24, h: 2, kvh: 1, d: 32, ctx: 12 },
  q4GateUpSiluRmsMma: { n2: 64, i: 32, k: 768, kw: 96, kg: 24 },
  // Heads of 64 (a block's 32 rotation pairs a head), two q heads, one k/v head.
  q4QkvRopeAppendGemmMma: { n: 256, k: 64, kw: 8, kg: 2, h: 2, kvh: 1, d: 64, ctx: 12 },
  // wgmma: two blocks of 128 tokens, blocks of weight rows cut at the edge, three K stages (a
  // stage's x tile in each half of the double buffer and back); heads of 128 for RoPE.
  q4GemmWgmma: { m: 130, n: 200, k: 192, kw: 24, kg: 6 },
  q4GemmResidualWgmma: { m: 130, n: 200, k: 192, kw: 24, kg: 6 },
  q4QkvGemmWgmma: { m: 130, n: 208, qd: 80, kvd: 64, k: 192, kw: 24, kg: 6 },
  q4GateUpSiluGemmWgmma: { m: 130, n2: 160, i: 80, k: 192, kw: 24, kg: 6 },
  // Three splits of three K stages (one each); p: the outputs from OUT_FROM (80, or 16 from 64).
  q4GateUpSplitKGemmWgmma: { m: 130, n2: 160, k: 192, kw: 24, kg: 6, s: 3, p: 80 },
  gateUpSiluSplitReduce: { m: 5, s: 3, p: 80, i: 80 },
  q4QkvRopeAppendGemmWgmma: { m: 130, n: 512, k: 192, kw: 24, kg: 6, h: 2, kvh: 1, d: 128, ctx: 140 },
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

/** A check before compilation: its reference IR and how to schedule it for a target. */
interface CheckSource extends Omit<CheckCase, "reference" | "artifact"> {
  reference: PrimFunc;
  /** The scheduled loop IR for a schedule target ("sm_90", "vulkan"). */
  scheduled(target: string): PrimFunc;
}

/**
 * Stdlib kernels with constants of their own as the model takes them (llama/ops.ts), at the sizes
 * of the kernel they vary: [label, kernel name, constants].
 */
const STDLIB_VARIANTS: readonly (readonly [
  string,
  string,
  Readonly<Record<string, number>>,
  Readonly<Record<string, number>>?,
])[] = [
  // prefillGateUpWave: the outputs before 64, then the rest (16 of 80) with K split.
  ["outputs to 64", "q4GateUpSiluGemmWgmma", { OUT_TO: 64 }],
  ["outputs from 64", "q4GateUpSplitKGemmWgmma", { OUT_FROM: 64 }, { p: 16 }],
  ["outputs from 64", "gateUpSiluSplitReduce", { OUT_FROM: 64 }, { p: 16 }],
  // decodeGemvStages: the weights through a ring in shared memory (cp.async), refilled or not.
  ["ring of 2, refilled", "q4GemvRmsMma", { WARPS: 1, MMA_ROWS: 16, TILES: 1, STAGES: 2 }],
  ["ring of 1", "q4GateUpSiluRmsMma", { WARPS: 2, MMA_ROWS: 32, TILES: 2, STAGES: 1 }],
  ["ring of 3", "q4QkvRopeAppendRmsMma", { WARPS: 1, MMA_ROWS: 16, TILES: 1, STAGES: 3 }],
  ["ring of 2", "q4GemvResidualMma", { WARPS: 2, MMA_ROWS: 16, TILES: 1, STAGES: 2 }],
  ["ring of 2", "q4GemvF32Mma", { WARPS: 1, MMA_ROWS: 32, TILES: 2, STAGES: 2 }],
];

/** Every stdlib kernel at small sizes, with its GPU schedule where it has one (else one thread). */
function stdlibChecks(schedules: ScheduleTable): CheckSource[] {
  const out: CheckSource[] = [];
  const kernels: [string, string, KernelDef, Readonly<Record<string, number>>][] = [];
  for (const [name, k] of Object.entries(S))
    if (typeof k === "object" && (k as { kind?: string }).kind === "kernel")
      kernels.push([name, name, k as KernelDef, STDLIB_OVERRIDES[name] ?? {}]);
  for (const [label, name, consts, symbols] of STDLIB_VARIANTS)
    kernels.push([
      `${name} (${label})`,
      name,
      withConsts((S as Record<string, unknown>)[name] as KernelDef, consts),
      { ...STDLIB_OVERRIDES[name], ...symbols },
    ]);
  for (const [label, name, def, overrides] of kernels) {
    const base = lowerKernel(def);
    const values = Object.fromEntries(
      base.symbols.map((s) => [s.name, overrides[s.name] ?? STDLIB_SYMBOLS[s.name] ?? 3]),
    );
    const spec = {
      key: `stdlib_${label.replace(/[^A-Za-z0-9]+/g, "_")}`,
      kernel: def,
      specialize: values,
      ...(schedules[name] ? { schedule: schedules[name] } : {}),
    };
    const reference = specializedFunc(spec);
    const fixed: NonNullable<CheckCase["fixed"]> = {};
    for (const p of reference.params) {
      if (p.kind === "scalar" && p.v.name in STDLIB_SCALARS) fixed[p.v.name] = STDLIB_SCALARS[p.v.name]!;
      if (p.kind === "buffer" && p.buffer.name === "ids")
        fixed.ids = { dtype: "i32", shape: [3], values: [0, 17, 39] };
      if (p.kind === "buffer" && p.buffer.name === "step")
        fixed.step = { dtype: "i32", shape: [STEP_WORDS], values: [...stepWords(5, 1, 2)] };
      // attentionDecodeSplitLast's counters start at 0, so that its last blocks combine.
      if (p.kind === "buffer" && p.buffer.name === "count") {
        const shape = p.buffer.shape.map((d) => (d.kind === "const" ? d.value : 1));
        fixed.count = {
          dtype: "i32",
          shape,
          values: new Array<number>(shape.reduce((a, b) => a * b, 1)).fill(0),
        };
      }
    }
    out.push({
      name: `stdlib ${label}${schedules[name] ? "" : " (unscheduled: one thread)"}`,
      reference,
      scheduled: (target) => scheduledFunc(spec, target),
      cases: [{}],
      scalars: {},
      tol: 2e-3,
      fixed,
    });
  }
  return out;
}

/** Every kernel the GPU machine checks, with the schedules of one target's table. */
function checkSources(schedules: ScheduleTable, choices: OpChoices): CheckSource[] {
  const out = stdlibChecks(schedules);
  const ops = [
    ...allOps(llamaOps(TINY, "q4f16_1", schedules, choices)),
    ...allOps(llamaOps(TINY, "f16", schedules, choices)),
  ];
  for (const spec of new Map(ops.map((o) => [o.key, o])).values()) {
    const reference = specializedFunc(spec);
    const symbols = Object.fromEntries(reference.symbols.map((s) => [s.name, 3]));
    out.push({
      name: spec.key,
      reference,
      scheduled: (target) => scheduledFunc(spec, target),
      cases: [symbols],
      scalars: {},
      tol: 2e-3,
      fixed: fixedArgs(reference, symbols),
    });
  }
  for (const [name, ex] of Object.entries(GPU_EXAMPLES))
    out.push({
      name,
      reference: lowerKernel(ex.kernel),
      scheduled: () => ex.schedule().func,
      cases: ex.cases,
      scalars: ex.scalars ?? {},
      tol: ex.tol,
    });
  return out;
}

/** How one target schedules and compiles a check. */
interface CheckTarget<A extends KernelArtifact> {
  /** The target name the schedules see. */
  readonly schedule: string;
  readonly schedules: ScheduleTable;
  /** The model's kernel choices on this target (llama/ops.ts). */
  readonly choices: OpChoices;
  compile(scheduled: PrimFunc): A;
}

const PTX: CheckTarget<KernelArtifact> = {
  schedule: "sm_90",
  schedules: GPU_SCHEDULES,
  choices: CUDA_OP_CHOICES,
  compile(f) {
    const device = lowerToDevice(f, TARGETS.sm_90);
    const { llvm: _ir, ...artifact } = buildArtifact(
      device,
      { kind: "nvptx", arch: "sm_90" },
      { resources: true },
    );
    return artifact;
  },
};

/** SPIR-V for devices of one subgroup size, as bench/device/vulkan.ts --build compiles the model. */
function vulkanTarget(subgroup: number): CheckTarget<VulkanArtifact> {
  const target = { ...TARGETS.vulkan, name: `vulkan (subgroup ${subgroup})`, warpSize: subgroup };
  return {
    schedule: "vulkan",
    schedules: VULKAN_SCHEDULES,
    choices: VULKAN_OP_CHOICES,
    compile(f) {
      const device = lowerToDevice(f, target);
      // The assembly text is for dumps; the words are what the device loads.
      return { ...buildVulkanArtifact(device, { env: "vulkan1.2", subgroupSize: subgroup }), text: "" };
    },
  };
}

function buildChecks<A extends KernelArtifact>(target: CheckTarget<A>): CheckCase<A>[] {
  return checkSources(target.schedules, target.choices).flatMap(({ reference, scheduled, ...rest }) => {
    let artifact: A;
    let f: PrimFunc;
    try {
      f = scheduled(target.schedule);
    } catch (e) {
      // Kernels for instructions the target lacks (the tensor-core GEMVs off NVIDIA) are refused
      // by their schedule, and the model never chooses them there.
      if (e instanceof TargetUnsupportedError) {
        console.log(`build-checks: ${rest.name} not checked for ${target.schedule}: ${e.message}`);
        return [];
      }
      throw e;
    }
    try {
      artifact = target.compile(f);
    } catch (e) {
      throw new Error(`build-checks: ${rest.name}: ${e instanceof Error ? e.message : String(e)}`, {
        cause: e,
      });
    }
    return [{ ...rest, reference: funcToJson(reference), artifact }];
  });
}

const { values, positionals } = parseArgs({
  options: { vulkan: { type: "string" } },
  allowPositionals: true,
});
const outDir = resolve(positionals[0] ?? ".device/kernels");
mkdirSync(outDir, { recursive: true });
const t0 = performance.now();
let file: string;
let checks: CheckCase[];
if (values.vulkan !== undefined) {
  const subgroup = Number(values.vulkan);
  if (!Number.isInteger(subgroup) || subgroup < 1)
    throw new Error(`build-checks: --vulkan ${values.vulkan}: not a subgroup size`);
  const vk = buildChecks(vulkanTarget(subgroup));
  const body: VulkanChecksFile = { format: "tkc-vulkan-checks", subgroupSize: subgroup, checks: vk };
  file = join(outDir, `vulkan-checks-sg${subgroup}.json`);
  writeFileSync(file, JSON.stringify(body));
  checks = vk;
} else {
  checks = buildChecks(PTX);
  file = join(outDir, "checks.json");
  writeFileSync(file, JSON.stringify(checks));
}
console.log(
  `checks: ${checks.map((c) => c.name).join(", ")} -> ${file} (${checks.length} kernels in ${((performance.now() - t0) / 1e3).toFixed(1)} s)`,
);
