// Run here (by prepare.sh): the prefill GEMMs of Llama-2-7B (M = 512 tokens; (N, K) = (4096, 4096),
// (11008, 4096), (4096, 11008)) in q4f16_1 and f16, scheduled for sm_90 and compiled to PTX, for
// bench/device/gemm.ts. Each shape is built with several schedules: the register-tiled kernels of
// stdlib/q4_gemm_tiled.ts with stdlib/gpu/gemm.ts's parameters and a few variants of them, q4Gemm
// and f16Gemm with the same staging one output per thread (the model's GPU_SCHEDULES), and the
// schedule the model used before (one thread per output, no shared memory), as the baseline.
// M stays symbolic, as in the model; the runner passes 512. Writes <outDir>/gemm.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { withConsts, type KernelDef } from "../../dsl/kernel.ts";
import { buildArtifact } from "../../backends/llvm/artifact.ts";
import type { KernelArtifact } from "../../backends/gpu-common/kernel.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { funcToJson, type FuncJson } from "../../lower/ir/serialize.ts";
import { specialize } from "../../lower/ir/specialize.ts";
import { LoweringError } from "../../lower/passes/errors.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { f16Gemm } from "../../stdlib/f16_gemv.ts";
import {
  GEMM_SCHEDULES,
  MMA_GEMM_SCHEDULE,
  WGMMA_GEMM_SCHEDULE,
  wgmmaGemmSchedule,
  f16GemmSchedule,
  mmaGemmSchedule,
  q4GemmSchedule,
  type GemmSchedule,
} from "../../stdlib/gpu/gemm.ts";
import { f16GemmTiled, q4GemmTiled } from "../../stdlib/q4_gemm_tiled.ts";
import { q4Gemm } from "../../stdlib/q4_gemv.ts";
import { f16GemmMma, q4GemmMma } from "../../stdlib/gemm_mma.ts";
import { q4GemmResidualWgmma, q4GemmWgmma } from "../../stdlib/gemm_wgmma.ts";

export const GEMM_M = 512;
export const GEMM_SHAPES: readonly [number, number][] = [
  [4096, 4096],
  [11008, 4096],
  [4096, 11008],
];

export type GemmFormat = "q4f16_1" | "f16";

export interface GemmEntry {
  format: GemmFormat;
  /** What was built: the kernel and the schedule's label. */
  kernel: string;
  schedule: string;
  params?: GemmSchedule;
  m: number;
  n: number;
  k: number;
  artifact: KernelArtifact;
  /** The unscheduled kernel at this (N, K), for a check against the CPU (first shape only). */
  reference?: FuncJson;
}

const target = { kind: "nvptx", arch: "sm_90" } as const;
const sm90 = GEMM_SCHEDULES.sm_90!;

/** The schedule q4Gemm and f16Gemm had before: rows to blockIdx.y, 256 columns per block. */
function oneThreadPerOutput(s: Schedule): void {
  s.bind("m", "blockIdx.y");
  const [bo, ti] = s.split("n", [null, 256]);
  s.bind(bo!, "blockIdx.x");
  s.bind(ti!, "threadIdx.x");
}

interface Variant {
  format: GemmFormat;
  kernel: KernelDef;
  label: string;
  params?: GemmSchedule;
  schedule: (s: Schedule, target: string) => void;
}

function variants(): Variant[] {
  const out: Variant[] = [];
  const tiled: [GemmFormat, KernelDef, typeof q4GemmSchedule][] = [
    ["q4f16_1", q4GemmTiled, q4GemmSchedule],
    ["f16", f16GemmTiled, f16GemmSchedule],
  ];
  for (const [format, kernel, sched] of tiled)
    for (const p of [
      sm90,
      { ...sm90, unrollK: 32 },
      { ...sm90, unrollK: 4 },
      // 16-byte copies: lowering refuses them until the barriers pass treats a vectorized loop as
      // one access; those are skipped (and said so) until it does.
      { ...sm90, vec: 8 },
      { ...sm90, vec: 8, unrollK: 4 },
      ...(format === "f16" ? [{ ...sm90, kTile: 16, unrollK: 16 }] : []),
    ])
      out.push({ format, kernel, label: `tiled ${label(p)}`, params: p, schedule: sched(p) });
  out.push(
    { format: "q4f16_1", kernel: q4Gemm, label: "staged, 1 output/thread", schedule: q4GemmSchedule() },
    { format: "f16", kernel: f16Gemm, label: "staged, 1 output/thread", schedule: f16GemmSchedule() },
    { format: "q4f16_1", kernel: q4Gemm, label: "before: 1 thread/output", schedule: oneThreadPerOutput },
    { format: "f16", kernel: f16Gemm, label: "before: 1 thread/output", schedule: oneThreadPerOutput },
    {
      format: "q4f16_1",
      kernel: q4GemmMma,
      label: "tensor cores (mma.m16n8k16)",
      schedule: mmaGemmSchedule(),
    },
    { format: "f16", kernel: f16GemmMma, label: "tensor cores (mma.m16n8k16)", schedule: mmaGemmSchedule() },
    {
      format: "q4f16_1",
      kernel: q4GemmMma,
      label: "tensor cores (mma.m16n8k16), registers for 3 blocks/SM",
      schedule: mmaGemmSchedule({ ...MMA_GEMM_SCHEDULE, minBlocksPerSM: { q4: 3, f16: 2 } }),
    },
    {
      format: "q4f16_1",
      kernel: q4GemmWgmma,
      label: "tensor cores (wgmma.m64n128k16)",
      schedule: wgmmaGemmSchedule(),
    },
    {
      format: "q4f16_1",
      kernel: q4GemmWgmma,
      label: "tensor cores (wgmma.m64n128k16), neighbouring blocks along weights",
      schedule: wgmmaGemmSchedule({ ...WGMMA_GEMM_SCHEDULE, blocksAlong: "weights" }),
    },
    {
      format: "q4f16_1",
      kernel: q4GemmWgmma,
      label: "tensor cores (wgmma.m64n128k16), three x copies",
      schedule: wgmmaGemmSchedule({ ...WGMMA_GEMM_SCHEDULE, xCopies: 3 }),
    },
    {
      // 64 KB of x copies: dynamic shared memory (not yet run on a GPU).
      format: "q4f16_1",
      kernel: q4GemmWgmma,
      label: "tensor cores (wgmma.m64n128k16), four x copies",
      schedule: wgmmaGemmSchedule({ ...WGMMA_GEMM_SCHEDULE, xCopies: 4 }),
    },
    {
      // As the model runs it (CUDA_OP_CHOICES' prefillWeightsAhead): each weight row's next L2
      // line prefetched 4 stages ahead. Alone, the weights stay in L2 between repetitions.
      format: "q4f16_1",
      kernel: withConsts(q4GemmWgmma, { PREFETCH_AHEAD: 4 }),
      label: "tensor cores (wgmma.m64n128k16), weights prefetched 4 stages ahead",
      schedule: wgmmaGemmSchedule(),
    },
    {
      // As the model runs the GEMMs of K = 11,008 (CUDA_OP_CHOICES' prefillWideStagesFromK with
      // prefillWeightsAhead 4): K stages of 128, half as many.
      format: "q4f16_1",
      kernel: withConsts(q4GemmWgmma, { PREFETCH_AHEAD: 4, STAGE_GROUPS: 4 }),
      label: "tensor cores (wgmma.m64n128k16), K stages of 128, weights prefetched 4 stages ahead",
      schedule: wgmmaGemmSchedule(),
    },
    {
      // Blocks of 64 weight rows (one warpgroup): twice the blocks, up to three a multiprocessor,
      // for a shorter last wave (688 blocks of two warpgroups at the gate/up shape are 5.2 waves
      // of 132).
      format: "q4f16_1",
      kernel: withConsts(q4GemmWgmma, { WGMMA_GROUPS: 1 }),
      label: "tensor cores (wgmma.m64n128k16), one warpgroup a block",
      schedule: wgmmaGemmSchedule(),
    },
    {
      format: "q4f16_1",
      kernel: withConsts(q4GemmWgmma, { WGMMA_GROUPS: 1 }),
      label: "tensor cores (wgmma.m64n128k16), one warpgroup a block, registers for 3 blocks/SM",
      schedule: wgmmaGemmSchedule({ ...WGMMA_GEMM_SCHEDULE, minBlocksPerSM: 3 }),
    },
    {
      // The model's O and down projections: the residual added in the epilogue (y = residual +
      // x W^T), to tell the epilogue's cost from the products'.
      format: "q4f16_1",
      kernel: q4GemmResidualWgmma,
      label: "tensor cores (wgmma.m64n128k16), residual epilogue",
      schedule: wgmmaGemmSchedule(),
    },
  );
  return out;
}

const label = (p: GemmSchedule): string =>
  `${p.threadsM}x${p.threadsN} threads, k ${p.kTile}, vec ${p.vec}, unroll ${p.unrollK}`;

export function buildGemm(
  log: (line: string) => void = console.log,
  only?: string,
): {
  entries: GemmEntry[];
  skipped: string[];
} {
  const entries: GemmEntry[] = [];
  const skipped: string[] = [];
  for (const v of variants().filter((x) => !only || `${x.kernel.name} ${x.label}`.includes(only)))
    for (const [n, k] of GEMM_SHAPES) {
      const dims: Record<string, number> =
        v.format === "q4f16_1" ? { n, k, kw: k / 8, kg: k / 32 } : { n, k };
      const unscheduled = specialize(lowerKernel(v.kernel), dims);
      const s = new Schedule({ ...unscheduled, name: `${v.kernel.name}_${n}x${k}` });
      v.schedule(s, "sm_90");
      let device;
      try {
        device = lowerToDevice(s.func, TARGETS.sm_90);
      } catch (e) {
        if (!(e instanceof LoweringError)) throw e;
        skipped.push(`${v.kernel.name} ${n}x${k} ${v.label}: ${e.message}`);
        continue;
      }
      const { llvm: _ir, ...artifact } = buildArtifact(device, target, { resources: true });
      entries.push({
        format: v.format,
        kernel: v.kernel.name,
        schedule: v.label,
        ...(v.params ? { params: v.params } : {}),
        m: GEMM_M,
        n,
        k,
        artifact,
        ...(n === GEMM_SHAPES[0]![0] && k === GEMM_SHAPES[0]![1]
          ? { reference: funcToJson(unscheduled) }
          : {}),
      });
      log(`gemm: ${v.kernel.name} ${n}x${k} ${v.label}: ${artifact.registers ?? "?"} registers`);
    }
  return { entries, skipped };
}

if (process.argv[1] && /build-gemm\.ts$/.test(process.argv[1])) {
  const outDir = resolve(process.argv[2] ?? ".device/kernels");
  mkdirSync(outDir, { recursive: true });
  // An optional second argument keeps only the variants whose kernel and label contain it.
  const only = process.argv[3];
  const { entries, skipped } = buildGemm(console.log, only);
  for (const s of skipped) console.log(`gemm: skipped ${s.split("\n")[0]}`);
  writeFileSync(join(outDir, "gemm.json"), JSON.stringify({ m: GEMM_M, entries, skipped }));
  console.log(`gemm: ${entries.length} kernels (${skipped.length} skipped) -> ${join(outDir, "gemm.json")}`);
}
