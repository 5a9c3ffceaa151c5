// Run here (by prepare.sh): the kernels of the Vulkan GEMV benchmark (bench/device/vulkan-bench.ts)
// as SPIR-V for one subgroup size, validated by spirv-val, with the opcode counts of each module:
//   npx tsx bench/device/build-vulkan-bench.ts <outDir> [--subgroup 32] [--small]
//     -> <outDir>/vulkan-bench-sg<N>.json.gz
//  - q4Gemv (one row per thread family) at 4096x11008 and 12288x4096, rows {1, 4} x unrollGroups
//    {on, off}, 32 lanes (rows 4 unrolled is what the Vulkan model runs: GEMV_SCHEDULES.vulkan);
//  - q4GemvRows4 (four rows per thread) at both shapes, one row of threads per block and the model's
//    Vulkan schedule (GEMV_ROWS_SCHEDULES.vulkan);
//  - at 4096x11008, the model's q4Gemv schedule with x staged in shared memory per block;
//  - streaming kernels: y[i] = x[i] in f16 and u32 (one element per thread, or four per thread in
//    flight), stdlib residualAdd with the model's Vulkan schedule, 128 MiB a buffer, and a 256-element
//    copy (the per-dispatch floor); plus vkCmdCopyBuffer of 128 MiB (the runtime's buffer copy).
// Each q4 kernel and streaming kernel carries its CPU reference (the unscheduled IR) and the shape to
// check it at: the smaller GEMV shape, small sizes for the streaming ones.
// --small: small shapes (512x1376 and 768x512, 4 MiB buffers) for trying the runner on lavapipe
// (subgroup 8): npx tsx bench/device/build-vulkan-bench.ts /tmp/vkb/kernels --subgroup 8 --small
// --tune: instead, the Vulkan tuner's candidates (bench/device/vulkan-tune-entries.ts) ->
// <outDir>/vulkan-tune-sg<N>.json.gz.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import * as S from "../../stdlib/index.ts";
import { gemvParams, q4GemvSchedule, type GemvSchedule } from "../../stdlib/gpu/gemv.ts";
import { cooperativeCopy } from "../../stdlib/gpu/gemm.ts";
import { scheduledFunc, specializedFunc } from "../../llama/device/prepare.ts";
import { VULKAN_SCHEDULES } from "../../llama/device/vulkan.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { funcToJson, type FuncJson } from "../../lower/ir/serialize.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { buildVulkanArtifact, type VulkanArtifact } from "../../backends/vulkan/kernel.ts";
import type { DType } from "../../dsl/dtypes.ts";
import type { KernelDef } from "../../dsl/kernel.ts";
import type { OpSpec } from "../../llama/device/types.ts";
import { copyF16, copyU32 } from "./vulkan-bench-kernels.ts";
import { vulkanTuneEntries, type CompileVulkan } from "./vulkan-tune-entries.ts";

/** Opcode counts of one SPIR-V module, from its assembly text. */
export interface SpirvStats {
  /** Words of the binary module. */
  words: number;
  /** Instructions inside functions (OpFunction to OpFunctionEnd). */
  instructions: number;
  /** Those instructions by opcode, most frequent first. */
  opcodes: Record<string, number>;
  /** Loads and stores through storage-buffer (global) and workgroup (shared) pointers, by variable. */
  globalLoads: Record<string, number>;
  globalStores: Record<string, number>;
  sharedLoads: number;
  sharedStores: number;
  /** Loads and stores of Function-scope variables (accumulators the driver must promote). */
  functionVarLoads: number;
  functionVarStores: number;
  /** Value types of the global loads (half, uint, v4uint...): whether any load is vectorized. */
  globalLoadTypes: Record<string, number>;
  loops: number;
  branches: number;
  barriers: number;
  subgroupOps: number;
}

export interface BenchTensor {
  dtype: DType;
  shape: number[];
  /** The byte every element is filled with before timing (a memset). */
  fill: number;
}

export interface BenchEntry {
  name: string;
  kernel: string;
  kind: "q4gemv" | "stream";
  /** Schedule parameters (q4) or threads and elements per thread (streaming kernels). */
  params: Record<string, number | boolean | string>;
  /** The schedule the Vulkan model runs for this kernel. */
  model?: boolean;
  artifact: VulkanArtifact;
  spirv: SpirvStats;
  /** Tensors of the timed dispatches. */
  tensors: Record<string, BenchTensor>;
  /** Tensors that get copies (weights), taken in turn so the working set exceeds the L2 cache. */
  rotate: string[];
  /** Scalar arguments of every dispatch and check (a fused RMSNorm's eps). */
  scalars?: Record<string, number>;
  /** Bytes one dispatch reads and writes (the GB/s numerator). */
  bytes: number;
  /** Check against the CPU backend: the reference IR (a key of `references`) and its symbols. */
  check?: { reference: string; symbols: Record<string, number> };
}

export interface VulkanBenchFile {
  format: "tkc-vulkan-bench";
  subgroupSize: number;
  small: boolean;
  entries: BenchEntry[];
  references: Record<string, FuncJson>;
  /** Bytes of each vkCmdCopyBuffer timed (device to device). */
  copyBufferBytes: number;
}

/** Opcode counts from the renderer's assembly text (one instruction a line, `%id = OpX ...`). */
export function spirvStats(text: string, words: number): SpirvStats {
  const s: SpirvStats = {
    words,
    instructions: 0,
    opcodes: {},
    globalLoads: {},
    globalStores: {},
    sharedLoads: 0,
    sharedStores: 0,
    functionVarLoads: 0,
    functionVarStores: 0,
    globalLoadTypes: {},
    loops: 0,
    branches: 0,
    barriers: 0,
    subgroupOps: 0,
  };
  const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);
  // Pointer ids: where each points (StorageBuffer variable, Workgroup, Function).
  const pointers = new Map<string, { scope: string; base: string }>();
  const pointerTypes = new Map<string, string>(); // %_ptr_X_T -> X
  let inFunction = false;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/;.*$/, "").trim();
    if (!line) continue;
    const m = /^(?:(%\S+)\s*=\s*)?(Op\w+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const [, result, op, rest] = m as unknown as [string, string | undefined, string, string];
    const args = rest.split(/\s+/).filter(Boolean);
    if (op === "OpTypePointer" && result) pointerTypes.set(result, args[0]!);
    if (op === "OpVariable" && result) pointers.set(result, { scope: args[1]!, base: result.slice(1) });
    if (op === "OpFunction") inFunction = true;
    if (!inFunction) continue;
    s.instructions++;
    bump(s.opcodes, op);
    if (op === "OpFunctionEnd") inFunction = false;
    if ((op === "OpAccessChain" || op === "OpInBoundsAccessChain") && result) {
      const base = pointers.get(args[1]!);
      const scope = pointerTypes.get(args[0]!) ?? base?.scope ?? "?";
      pointers.set(result, { scope, base: base?.base ?? args[1]!.slice(1) });
    }
    if (op === "OpLoad" || op === "OpStore") {
      const ptr = pointers.get(op === "OpLoad" ? args[1]! : args[0]!);
      const load = op === "OpLoad";
      if (ptr?.scope === "StorageBuffer") {
        bump(load ? s.globalLoads : s.globalStores, ptr.base);
        if (load) bump(s.globalLoadTypes, args[0]!.slice(1));
      } else if (ptr?.scope === "Workgroup") {
        if (load) s.sharedLoads++;
        else s.sharedStores++;
      } else if (ptr?.scope === "Function") {
        if (load) s.functionVarLoads++;
        else s.functionVarStores++;
      }
    }
    if (op === "OpLoopMerge") s.loops++;
    if (op === "OpBranchConditional" || op === "OpSwitch") s.branches++;
    if (op === "OpControlBarrier") s.barriers++;
    if (op.startsWith("OpGroupNonUniform")) s.subgroupOps++;
  }
  s.opcodes = Object.fromEntries(Object.entries(s.opcodes).sort((a, b) => b[1] - a[1]));
  return s;
}

/**
 * q4GemvSchedule("n", p) with x copied to shared memory once per block by all its threads
 * (cooperativeCopy, as the prefill GEMMs stage their tiles) and read from there: the block's rows
 * then load x from global memory once instead of once each.
 */
function q4GemvXSharedSchedule(p: GemvSchedule) {
  return (s: Schedule): void => {
    const [rowBlock, rowThread] = s.split("n", [null, p.rows]);
    const [groupOuter, groupLane] = s.split("g", [null, p.lanes]);
    s.reorder(groupLane!, groupOuter!, { reassociate: true });
    s.bind(rowBlock!, "blockIdx.x");
    s.bind(rowThread!, "threadIdx.y");
    s.bind(groupLane!, "threadIdx.x");
    s.unroll("w");
    s.unroll("r");
    if (p.unrollGroups) s.unroll(groupOuter!);
    cooperativeCopy(s, "dot_1", "x", rowBlock!, { threadsM: p.rows, threadsN: p.lanes, vec: 1 });
  };
}

function main(): void {
  const { values, positionals } = parseArgs({
    options: {
      subgroup: { type: "string", default: "32" },
      small: { type: "boolean", default: false },
      tune: { type: "boolean", default: false },
    },
    allowPositionals: true,
  });
  const outDir = resolve(positionals[0] ?? ".device/kernels");
  const sg = Number(values.subgroup);
  if (!Number.isInteger(sg) || sg < 1) throw new Error(`build-vulkan-bench: --subgroup ${values.subgroup}`);
  const small = values.small!;
  const target = { ...TARGETS.vulkan, name: `vulkan (subgroup ${sg})`, warpSize: sg };
  const t0 = performance.now();

  const compile: CompileVulkan = (f) => {
    const art = buildVulkanArtifact(lowerToDevice(f, target), {
      env: "vulkan1.2",
      subgroupSize: sg,
      validate: true,
    });
    const spirv = spirvStats(art.text, Buffer.from(art.image, "base64").length / 4);
    // The GPU machine needs the words, not the text (a few hundred KB per unrolled kernel).
    return { artifact: { ...art, text: "" }, spirv };
  };
  const entries: BenchEntry[] = [];
  const references: Record<string, FuncJson> = {};
  if (values.tune) {
    const tuned: VulkanBenchFile = {
      format: "tkc-vulkan-bench",
      subgroupSize: sg,
      small: false,
      entries: vulkanTuneEntries(compile, references, sg),
      references,
      copyBufferBytes: 0,
    };
    mkdirSync(outDir, { recursive: true });
    const out = join(outDir, `vulkan-tune-sg${sg}.json.gz`);
    writeFileSync(out, gzipSync(JSON.stringify(tuned)));
    console.log(
      `vulkan-bench --tune: ${tuned.entries.length} candidates in ${((performance.now() - t0) / 1e3).toFixed(1)} s -> ${out}`,
    );
    return;
  }

  // ---- q4f16_1 GEMV ----
  const shapes: [number, number][] = small
    ? [
        [512, 1376],
        [768, 512],
      ]
    : [
        [4096, 11008],
        [12288, 4096],
      ];
  const [checkN, checkK] = shapes[0]!;
  const modelGemv = gemvParams("vulkan", "gemv");
  const modelRows = gemvParams("vulkan", "gemvRows");
  const same = (a: GemvSchedule, b: GemvSchedule) =>
    a.rows === b.rows &&
    a.lanes === b.lanes &&
    !!a.unrollGroups === !!b.unrollGroups &&
    a.maxUnrolledGroups === b.maxUnrolledGroups;
  const variants: { kernel: KernelDef; rowLoop: string; p: GemvSchedule; xShared?: boolean }[] = [];
  for (const rows of [1, 4])
    for (const unrollGroups of [true, false])
      variants.push({ kernel: S.q4Gemv, rowLoop: "n", p: { rows, lanes: 32, unrollGroups } });
  variants.push({ kernel: S.q4GemvRows4, rowLoop: "n4", p: { rows: 1, lanes: 32, unrollGroups: true } });
  variants.push({ kernel: S.q4GemvRows4, rowLoop: "n4", p: { rows: 1, lanes: 32, unrollGroups: false } });
  if (!same(modelRows, { rows: 1, lanes: 32, unrollGroups: true }))
    variants.push({ kernel: S.q4GemvRows4, rowLoop: "n4", p: modelRows });
  // The model's schedule with x staged in shared memory once per block (its rows share it).
  const xSharedP: GemvSchedule = { rows: 4, lanes: 32, unrollGroups: true };
  for (const [n, k] of shapes)
    for (const { kernel, rowLoop, p, xShared } of [
      ...variants,
      ...(n === checkN && k === checkK
        ? [{ kernel: S.q4Gemv, rowLoop: "n", p: xSharedP, xShared: true }]
        : []),
    ]) {
      const tag = `r${p.rows}l${p.lanes}${p.unrollGroups ? "u" : ""}${p.maxUnrolledGroups ? `<=${p.maxUnrolledGroups}` : ""}${xShared ? " xshared" : ""}`;
      const spec: OpSpec = {
        key: `${kernel.name}_${n}x${k}_${tag.replace(" ", "_")}`,
        kernel,
        specialize: { n, k, kw: k / 8, kg: k / 32 },
        schedule: xShared ? q4GemvXSharedSchedule(p) : q4GemvSchedule(rowLoop, p),
      };
      const refKey = `${kernel.name}_${n}x${k}`;
      const checked = n === checkN && k === checkK;
      if (checked) references[refKey] ??= funcToJson(specializedFunc(spec));
      const model = !xShared && same(p, kernel === S.q4Gemv ? modelGemv : modelRows);
      entries.push({
        name: `${kernel.name} ${n}x${k} ${tag}`,
        kernel: kernel.name,
        kind: "q4gemv",
        params: { n, k, ...p, unrollGroups: !!p.unrollGroups, ...(xShared ? { xShared } : {}) },
        ...(model ? { model } : {}),
        ...compile(scheduledFunc(spec, "vulkan")),
        tensors: {
          x: { dtype: "f16", shape: [k], fill: 0x22 },
          packed: { dtype: "u32", shape: [n, k / 8], fill: 0x37 },
          scales: { dtype: "f16", shape: [n, k / 32], fill: 0x11 },
          y: { dtype: "f16", shape: [n], fill: 0 },
        },
        rotate: ["packed", "scales"],
        bytes: k * 2 + (n * k) / 2 + (n * k) / 16 + n * 2,
        ...(checked ? { check: { reference: refKey, symbols: {} } } : {}),
      });
      console.log(`  ${entries.at(-1)!.name}: ${entries.at(-1)!.spirv.instructions} instructions`);
    }

  // ---- streaming kernels ----
  const bufferBytes = small ? 4 << 20 : 128 << 20;
  const stream = (
    name: string,
    kernel: KernelDef,
    schedule: (s: Schedule) => void,
    params: BenchEntry["params"],
    tensors: Record<string, BenchTensor>,
    checkSymbols: Record<string, number>,
  ) => {
    const s = new Schedule(lowerKernel(kernel));
    schedule(s);
    const refKey = kernel.name;
    references[refKey] ??= funcToJson(lowerKernel(kernel));
    const bytes = Object.values(tensors).reduce(
      (a, t) => a + t.shape.reduce((x, y) => x * y, 1) * (t.dtype === "u32" ? 4 : 2),
      0,
    );
    entries.push({
      name,
      kernel: kernel.name,
      kind: "stream",
      params,
      ...compile(s.func),
      tensors,
      rotate: [],
      bytes,
      check: { reference: refKey, symbols: checkSymbols },
    });
    console.log(`  ${name}: ${entries.at(-1)!.spirv.instructions} instructions`);
  };
  /**
   * One element per thread: i split over blocks of `threads`; or `per` per thread, `threads` apart
   * (coalesced, all in flight); or `per` adjacent ones per thread (`contiguous`: the q4 GEMV's
   * pattern, where each lane reads its group's 4 consecutive words).
   */
  const flat =
    (threads: number, per = 1, contiguous = false) =>
    (s: Schedule) => {
      const loop = s.getLoops("y")[0]!; // the loop over i of the block writing y
      if (per === 1) {
        const [b, t] = s.split(loop, [null, threads]);
        s.bind(b!, "blockIdx.x");
        s.bind(t!, "threadIdx.x");
      } else if (contiguous) {
        const [b, t, v] = s.split(loop, [null, threads, per]);
        s.bind(b!, "blockIdx.x");
        s.bind(t!, "threadIdx.x");
        // The renderer emits vectorized loops as scalar accesses (no vector loads in SPIR-V).
        s.vectorize(v!);
      } else {
        const [b, u, t] = s.split(loop, [null, per, threads]);
        s.bind(b!, "blockIdx.x");
        s.bind(t!, "threadIdx.x");
        s.unroll(u!);
      }
    };
  const f16n = bufferBytes / 2;
  const u32n = bufferBytes / 4;
  const pair = (dtype: DType, n: number) => ({
    x: { dtype, shape: [n], fill: 0x3c },
    y: { dtype, shape: [n], fill: 0 },
  });
  const mib = `${bufferBytes >> 20} MiB`;
  stream(`copyF16 ${mib} 256t x1`, copyF16, flat(256), { threads: 256, perThread: 1 }, pair("f16", f16n), {
    n: 5000,
  });
  stream(`copyF16 ${mib} 256t x4`, copyF16, flat(256, 4), { threads: 256, perThread: 4 }, pair("f16", f16n), {
    n: 5000,
  });
  stream(`copyU32 ${mib} 256t x1`, copyU32, flat(256), { threads: 256, perThread: 1 }, pair("u32", u32n), {
    n: 5000,
  });
  stream(`copyU32 ${mib} 256t x4`, copyU32, flat(256, 4), { threads: 256, perThread: 4 }, pair("u32", u32n), {
    n: 5000,
  });
  stream(
    `copyU32 ${mib} 256t x4 contiguous`,
    copyU32,
    flat(256, 4, true),
    { threads: 256, perThread: 4, contiguous: true },
    pair("u32", u32n),
    { n: 5000 },
  );
  stream(
    `copyF16 256 elements (dispatch floor)`,
    copyF16,
    flat(256),
    { threads: 256, perThread: 1 },
    pair("f16", 256),
    { n: 300 },
  );
  stream(
    `residualAdd ${mib} (model schedule)`,
    S.residualAdd,
    (s) => VULKAN_SCHEDULES.residualAdd!(s, "vulkan"),
    { schedule: "VULKAN_SCHEDULES.residualAdd" },
    {
      a: { dtype: "f16", shape: [1, f16n], fill: 0x3c },
      b: { dtype: "f16", shape: [1, f16n], fill: 0x3c },
      y: { dtype: "f16", shape: [1, f16n], fill: 0 },
    },
    { m: 2, d: 3000 },
  );

  const file: VulkanBenchFile = {
    format: "tkc-vulkan-bench",
    subgroupSize: sg,
    small,
    entries,
    references,
    copyBufferBytes: bufferBytes,
  };
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, `vulkan-bench-sg${sg}.json.gz`);
  writeFileSync(out, gzipSync(JSON.stringify(file)));
  console.log(
    `vulkan-bench: ${entries.length} kernels (subgroup ${sg}${small ? ", small" : ""}) in ${((performance.now() - t0) / 1e3).toFixed(1)} s -> ${out}`,
  );
}

main();
