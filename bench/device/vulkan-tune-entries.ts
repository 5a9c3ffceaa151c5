// The Vulkan tuner's candidates (bench/device/build-vulkan-bench.ts --tune): each decode GEMV the
// Vulkan 7B model runs (its own fused kernel: llamaOps with VULKAN_OP_CHOICES) under every schedule
// of its family's grid, the small ops before GEMVs as the model runs them (for --sequence), and the
// step's RMSNorm under other workgroup sizes; each checked against its kernel's CPU reference at the
// 7B shape. Timed by run.sh vulkan-bench --kernels .device/kernels/vulkan-tune-sg32.json.gz; the
// GEMVs' best stored by npx tsx bench/tune.ts apply-vulkan.
import { familyOf, q4GemvRmsSchedule, q4GemvSchedule, type GemvSchedule } from "../../stdlib/gpu/gemv.ts";
import { rowReduction } from "../../stdlib/gpu/schedules.ts";
import { scheduledFunc, specializedFunc } from "../../llama/device/prepare.ts";
import { VULKAN_OP_CHOICES, VULKAN_SCHEDULES } from "../../llama/device/vulkan.ts";
import { llamaOps } from "../../llama/ops.ts";
import type { OpChoices } from "../../llama/op-choices.ts";
import { LLAMA2_7B } from "../../llama/presets.ts";
import type { OpSpec } from "../../llama/device/types.ts";
import { funcToJson, type FuncJson } from "../../lower/ir/serialize.ts";
import type { PrimFunc } from "../../lower/ir/nodes.ts";
import type { VulkanArtifact } from "../../backends/vulkan/kernel.ts";
import { bytesOf } from "../../dsl/dtypes.ts";
import { sizeOf } from "../../dsl/ndarray.ts";
import type { BenchEntry, BenchTensor, SpirvStats } from "./build-vulkan-bench.ts";

/** A kernel to SPIR-V for the benchmark's subgroup size, with its opcode counts. */
export type CompileVulkan = (f: PrimFunc) => { artifact: VulkanArtifact; spirv: SpirvStats };

/**
 * The Vulkan tuner's grid for a GEMV family. NVIDIA's Vulkan driver gives a workgroup of 32 threads
 * 64 registers and larger ones 32 (bench/results/vulkan-bench-h100.json), so the grid holds
 * one-subgroup workgroups of several shapes (rows x lanes = 32) beside wider ones.
 */
export function vulkanGemvGrid(family: "gemv" | "gemvRows"): GemvSchedule[] {
  const shapes: [number, number][] =
    family === "gemv"
      ? [
          [1, 32],
          [2, 16],
          [4, 8],
          [1, 64],
          [2, 32],
          [4, 32],
          [8, 32],
          [1, 128],
          [2, 128],
          [1, 256],
          [4, 16],
        ]
      : [
          [1, 32],
          [2, 16],
          [4, 8],
          [1, 16],
          [1, 64],
          [2, 32],
          [1, 128],
          [1, 256],
        ];
  return shapes.flatMap(([rows, lanes]) => [
    { rows, lanes, unrollGroups: true },
    { rows, lanes, unrollGroups: false },
  ]);
}

/**
 * The decode GEMVs of the Vulkan 7B model: op, row loop (its family), whether RMSNorm is folded,
 * and choices other than VULKAN_OP_CHOICES (the down projection's one-row kernel, Vulkan's choice
 * before this tuner, against the four-rows kernel).
 */
const VULKAN_TUNE_OPS: readonly { op: string; rowLoop: string; rms?: boolean; choices?: OpChoices }[] = [
  { op: "qkv", rowLoop: "n4", rms: true },
  { op: "oRes", rowLoop: "n4" },
  { op: "gateUp", rowLoop: "i2" },
  { op: "downRes", rowLoop: "n", choices: { downRowsPerThread: 1 } },
  { op: "downRes", rowLoop: "n4" },
  { op: "lmHead", rowLoop: "n4" },
];

/**
 * Fill bytes of a candidate's inputs: codes 7 and 3, scales 0x1111 (5.2e-4); other f16 0x2222
 * (0.012), f32 0x3f3f3f3f (0.75).
 */
const TUNE_FILL: Record<string, number> = { packed: 0x37, scales: 0x11 };

/** Tensors (filled per TUNE_FILL, outputs zero), scalars (eps) and bytes of a specialized op. */
function opTensors(reference: PrimFunc): {
  tensors: Record<string, BenchTensor>;
  scalars: Record<string, number>;
  bytes: number;
} {
  const tensors: Record<string, BenchTensor> = {};
  const scalars: Record<string, number> = {};
  let bytes = 0;
  for (const p of reference.params) {
    if (p.kind === "scalar") {
      scalars[p.v.name] = 1e-5; // eps, the one scalar of these kernels
      continue;
    }
    const shape = p.buffer.shape.map((d) => {
      if (d.kind !== "const")
        throw new Error(`build-vulkan-bench --tune: ${reference.name} has a symbolic shape`);
      return d.value;
    });
    const out = p.buffer.name === "y" || p.buffer.name === "out";
    const fill = TUNE_FILL[p.buffer.name] ?? (p.buffer.dtype === "f32" ? 0x3f : 0x22);
    tensors[p.buffer.name] = { dtype: p.buffer.dtype, shape, fill: out ? 0 : fill };
    bytes += sizeOf(shape) * bytesOf(p.buffer.dtype);
  }
  return { tensors, scalars, bytes };
}

/**
 * An entry for one of the Vulkan 7B model's decode ops as it stands (its own specialized kernel,
 * checked against its CPU reference), under its schedule or `schedule`.
 */
function modelOpEntry(
  compile: CompileVulkan,
  references: Record<string, FuncJson>,
  spec: OpSpec,
  entry: Pick<BenchEntry, "name" | "params" | "model">,
  schedule = spec.schedule,
): BenchEntry {
  const reference = specializedFunc(spec);
  references[spec.key] = funcToJson(reference);
  const { tensors, scalars, bytes } = opTensors(reference);
  return {
    ...entry,
    kernel: spec.kernel.name,
    kind: "stream",
    ...compile(scheduledFunc({ ...spec, schedule }, "vulkan")),
    tensors,
    rotate: [],
    ...(Object.keys(scalars).length ? { scalars } : {}),
    bytes,
    check: { reference: spec.key, symbols: {} },
  };
}

/** The Vulkan 7B model's decode ops (VULKAN_OP_CHOICES). */
const modelDecodeOps = () => llamaOps(LLAMA2_7B, "q4f16_1", VULKAN_SCHEDULES, VULKAN_OP_CHOICES).decode;

/**
 * The small ops that precede GEMVs in the Vulkan 7B step (RMSNorm before gate/up, the attention's
 * combination before O), as entries for --sequence: is a GEMV slower after them than alone?
 */
function precedingOpEntries(compile: CompileVulkan, references: Record<string, FuncJson>): BenchEntry[] {
  const ops = modelDecodeOps();
  return ["rmsNorm", "attentionCombine"].map((op) =>
    modelOpEntry(compile, references, ops[op]!, { name: `${op} (model)`, params: { op }, model: true }),
  );
}

/**
 * The model's RMSNorm of one row (4,096) under other threads a workgroup (rowReduction's; the
 * default through Vulkan is ROW_THREADS, 128): a decode step runs 33 of them, each a single
 * workgroup, latency-bound.
 */
function rowReduceEntries(compile: CompileVulkan, references: Record<string, FuncJson>): BenchEntry[] {
  const spec = modelDecodeOps().rmsNorm!;
  return [32, 64, 256, 512, 1024].map((threads) =>
    modelOpEntry(
      compile,
      references,
      spec,
      { name: `rmsNorm 4096 t${threads}`, params: { op: "rmsNorm", threads } },
      rowReduction("m", "i", "i_1", threads),
    ),
  );
}

function gemvEntries(
  compile: CompileVulkan,
  references: Record<string, FuncJson>,
  subgroupSize: number,
): BenchEntry[] {
  const entries: BenchEntry[] = [];
  for (const { op, rowLoop, rms, choices } of VULKAN_TUNE_OPS) {
    const ops = llamaOps(LLAMA2_7B, "q4f16_1", VULKAN_SCHEDULES, { ...VULKAN_OP_CHOICES, ...choices }).decode;
    const base = ops[op];
    if (!base) throw new Error(`build-vulkan-bench --tune: the Vulkan 7B model has no decode op ${op}`);
    const reference = specializedFunc(base);
    const refKey = base.key;
    references[refKey] = funcToJson(reference);
    const { tensors, scalars, bytes } = opTensors(reference);
    const packed = tensors.packed!.shape;
    const [n, k] = [packed[0]!, packed[1]! * 8];
    const family = familyOf(rowLoop);
    // The model adds the residual in place (y is the residual's buffer): a workgroup whose row
    // spans several subgroups then reads it through a staging copy (llama/device/vulkan.ts), which
    // these separate buffers would hide, so such schedules are no candidates.
    const inPlace = "residual" in tensors;
    for (const p of vulkanGemvGrid(family)) {
      if (inPlace && p.lanes > subgroupSize) continue;
      const tag = `r${p.rows}l${p.lanes}${p.unrollGroups ? "u" : ""}`;
      const spec: OpSpec = {
        ...base,
        key: `${base.key}_${tag}`,
        schedule: rms ? q4GemvRmsSchedule(rowLoop, p) : q4GemvSchedule(rowLoop, p),
      };
      let built: { artifact: VulkanArtifact; spirv: SpirvStats };
      try {
        built = compile(scheduledFunc(spec, "vulkan"));
      } catch (e) {
        // A schedule the kernel's loops cannot take (rows that do not divide N): not a candidate.
        console.log(
          `  ${base.kernel.name} ${n}x${k} ${tag}: skipped (${(e as Error).message.split("\n")[0]})`,
        );
        continue;
      }
      entries.push({
        name: `${base.kernel.name} ${n}x${k} ${tag}`,
        kernel: base.kernel.name,
        kind: "q4gemv",
        params: { family, n, k, rows: p.rows, lanes: p.lanes, unrollGroups: !!p.unrollGroups },
        ...built,
        tensors,
        rotate: ["packed", "scales"],
        ...(Object.keys(scalars).length ? { scalars } : {}),
        bytes,
        check: { reference: refKey, symbols: {} },
      });
      console.log(`  ${entries.at(-1)!.name}: ${built.spirv.instructions} instructions`);
    }
  }
  return entries;
}

/** Every tuning candidate: the GEMVs' grids, the ops before GEMVs, the RMSNorm's workgroup sizes. */
export function vulkanTuneEntries(
  compile: CompileVulkan,
  references: Record<string, FuncJson>,
  subgroupSize: number,
): BenchEntry[] {
  return [
    ...gemvEntries(compile, references, subgroupSize),
    ...precedingOpEntries(compile, references),
    ...rowReduceEntries(compile, references),
  ];
}
