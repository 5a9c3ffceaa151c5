// Runs on the GPU machine: the q4f16_1 GEMVs on Vulkan (NVIDIA's driver), next to what a trivial
// compute shader and vkCmdCopyBuffer reach there, to find out why the Vulkan GEMVs are many times
// slower than the same kernels through CUDA (bench/device/gemv.ts is the CUDA twin).
//
//   bash bench/device/run.sh vulkan-bench [--reps N] [--repeats N] [--copies-mib N] [--warm-ms MS] [--only SUBSTRING]
//                                         [--sequence NAME,NAME,...[;NAME,...] [--layers N] [--shared-weights]]
//                                         [--dynamic-offsets] [--in-place] [--chain]
//                                         [--no-stats] [--no-internal]
//
// The kernels are .device/kernels/vulkan-bench-sg<N>.json.gz for the device's subgroup size N, built
// here by bench/device/build-vulkan-bench.ts (prepare.sh builds 32); the loader and driver are found
// as for the other Vulkan runners (vulkan-setup.ts). For each kernel:
//  - once, on random inputs, its outputs against the CPU backend's (the reference IR);
//  - --reps dispatches recorded once with a barrier between each (as the model runs them) and a
//    timestamp after each, submitted for --warm-ms (200) to bring the clocks up, then --repeats times: us per dispatch (the median submission's GPU
//    time over the dispatches), the median single dispatch, and bytes read + written per second;
//    then the same dispatches without barriers (they may overlap: what the GPU could do with more
//    work in flight). The weights have copies (up to --copies-mib in all, at most 16) taken in turn,
//    so they come from DRAM and not the 50 MB L2; inputs are constant fills;
//  - the SPIR-V opcode counts the builder recorded (loads by buffer and type, loops, ...).
// Also vkCmdCopyBuffer device to device. Last, in a child process, the driver's statistics of each
// pipeline (VK_KHR_pipeline_executable_properties: registers, spills...) when the driver has them
// (vulkan-pipeline-stats.ts), and the driver's internal representations where it gives any (text
// ones to $OUT/vulkan-bench-ir/, 256 KB at most each; --no-internal skips them).
// Writes $OUT/vulkan-bench.json (after every kernel). Exit status: 0, 1 when a check fails, 2 without
// a usable Vulkan device or kernels for its subgroup size.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { gunzipSync } from "node:zlib";
import { cloneArgs, compareResults, randomArgs } from "../../backends/check.ts";
import { compileCpu, type CpuKernel } from "../../backends/cpu/exec.ts";
import { vulkanKernel, type DeviceTensor, type VulkanKernel } from "../../backends/vulkan/kernel.ts";
import { type Command, type GpuBuffer, type VulkanRuntime } from "../../backends/vulkan/runtime.ts";
import { bytesOf } from "../../dsl/dtypes.ts";
import { sizeOf, type NDArray } from "../../dsl/ndarray.ts";
import { viewAlignedBytes } from "../../llama/device/types.ts";
import { funcFromJson } from "../../lower/ir/serialize.ts";
import type { BenchTensor, VulkanBenchFile } from "./build-vulkan-bench.ts";
import { pipelineStats, type PipelineStatsReport } from "./vulkan-pipeline-stats.ts";
import { openVulkan, startVulkan } from "./vulkan-setup.ts";

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Timing {
  /** The median submission's GPU time over its dispatches, in microseconds. */
  usPerDispatch: number;
  /** The median of that submission's single-dispatch times (timestamp to timestamp). */
  medianDispatchUs: number;
  minDispatchUs: number;
  /**
   * The same dispatches recorded without timestamps: the median submission's host time (submit to
   * fence) over its dispatches, what the tuner goes by (warm, it agreed with the timestamps).
   */
  hostUsPerDispatch: number;
}

/**
 * GPU time of `commands` recorded once with timestamps, submitted `repeats` times; and host time
 * of the same commands recorded without them. First the plain recording is submitted for `warmMs`
 * of host time: after the runner's idle stretches (pipeline builds, CPU checks) the GPU's clocks
 * are down, and the same GEMV timed cold took up to 5x its warm time.
 */
function timeCommands(rt: VulkanRuntime, commands: Command[], repeats: number, warmMs: number): Timing {
  const plain = rt.record(commands);
  const rec = rt.record(commands, { timestamps: true });
  try {
    const t0 = performance.now();
    do rt.submit(plain);
    while (performance.now() - t0 < warmMs);
    const t = rt.time(rec, { repeats, warmup: 1 });
    const hostMs = Array.from({ length: repeats }, () => rt.submit(plain).hostMs);
    return {
      usPerDispatch: t.medianGpuNs / commands.length / 1e3,
      medianDispatchUs: median(t.dispatchNs) / 1e3,
      minDispatchUs: Math.min(...t.dispatchNs) / 1e3,
      hostUsPerDispatch: (median(hostMs) * 1e3) / commands.length,
    };
  } finally {
    rt.freeRecording(rec);
    rt.freeRecording(plain);
  }
}

/** A tensor of its own filled buffer, which goes on `buffers` for the caller to free. */
function filledTensor(rt: VulkanRuntime, t: BenchTensor, buffers: GpuBuffer[]): DeviceTensor {
  const buffer = filled(rt, sizeOf(t.shape) * bytesOf(t.dtype), t.fill);
  buffers.push(buffer);
  return { dtype: t.dtype, shape: t.shape, buffer };
}

/** A device buffer of `bytes` (at least 16, a multiple of 4) filled with `fill`. */
function filled(rt: VulkanRuntime, bytes: number, fill: number): GpuBuffer {
  const size = Math.max(16, Math.ceil(bytes / 4) * 4);
  const b = rt.buffer(size);
  rt.upload(b, Buffer.alloc(size, fill));
  return b;
}

/** Loads the kernels file for a subgroup size (gzip or plain JSON). */
function loadBenchFile(file: string): VulkanBenchFile {
  const raw = readFileSync(file);
  const text = file.endsWith(".gz") ? gunzipSync(raw).toString("utf8") : raw.toString("utf8");
  const f = JSON.parse(text) as VulkanBenchFile;
  if (f.format !== "tkc-vulkan-bench") throw new Error(`${file} is not a tkc Vulkan benchmark file`);
  return f;
}

function main(): number {
  const { values } = parseArgs({
    options: {
      out: { type: "string", default: "bench/out" },
      "device-dir": { type: "string" },
      kernels: { type: "string" },
      reps: { type: "string", default: "100" },
      repeats: { type: "string", default: "5" },
      "copies-mib": { type: "string", default: "256" },
      "warm-ms": { type: "string", default: "200" },
      sequence: { type: "string" },
      layers: { type: "string", default: "32" },
      "shared-weights": { type: "boolean", default: false },
      "dynamic-offsets": { type: "boolean", default: false },
      "in-place": { type: "boolean", default: false },
      chain: { type: "boolean", default: false },
      seed: { type: "string", default: "7" },
      only: { type: "string" },
      "no-stats": { type: "boolean", default: false },
      "no-internal": { type: "boolean", default: false },
      // Internal: the child process that collects the driver's pipeline statistics into this file.
      "pipeline-stats": { type: "string" },
    },
  });
  // The bundle lives in .device/; run from source, the folder is the repository's .device.
  const here = dirname(fileURLToPath(import.meta.url));
  const deviceDir = resolve(
    values["device-dir"] ?? (existsSync(join(here, "kernels")) ? here : join(here, "../../.device")),
  );
  const out = values.out!;
  mkdirSync(out, { recursive: true });
  const reps = Number(values.reps);
  const repeats = Number(values.repeats);
  const copiesBytes = Number(values["copies-mib"]) * (1 << 20);
  const seed = Number(values.seed);
  const warmMs = Number(values["warm-ms"]);

  if (values["pipeline-stats"] !== undefined) {
    // The child (step 3): the kernels of --kernels through the extension, written to the given file.
    // The parent's environment (loader, ICD, LD_LIBRARY_PATH) comes along.
    const lib = loadBenchFile(resolve(values.kernels!));
    const kernels = lib.entries.filter((e) => values.only === undefined || e.name.includes(values.only));
    writeFileSync(
      values["pipeline-stats"],
      JSON.stringify(pipelineStats(kernels, { internal: !values["no-internal"] })),
    );
    return 0;
  }

  const { setup, exitCode } = startVulkan(deviceDir, (line) => console.log(line));
  if (exitCode !== undefined) return exitCode;

  const report: Record<string, unknown> = {
    command: "bash bench/device/run.sh vulkan-bench",
    device: null,
    setup,
    settings: { reps, repeats, copiesMiB: copiesBytes / (1 << 20), seed, warmMs },
    failed: 0,
    results: [],
  };
  const save = () => writeFileSync(join(out, "vulkan-bench.json"), JSON.stringify(report, null, 1));
  const fatal = (error: string) => {
    console.error(`vulkan-bench: ${error}`);
    report.error = error;
    save();
    return 2;
  };
  const opened = openVulkan(setup, "vulkan-bench", "", {
    dynamicOffsets: values["dynamic-offsets"] ?? false,
  });
  if ("error" in opened) return fatal(opened.error);
  const rt = opened.rt;
  const info = rt.device;
  const sg = info.subgroup.size;
  report.device = info.name;
  report.deviceInfo = opened.record;
  const file = resolve(values.kernels ?? join(deviceDir, "kernels", `vulkan-bench-sg${sg}.json.gz`));
  if (!existsSync(file)) {
    rt.destroy();
    return fatal(
      `${file} is missing: this device's subgroup size is ${sg}; build it here with npx tsx bench/device/build-vulkan-bench.ts .device/kernels --subgroup ${sg}`,
    );
  }
  const lib = loadBenchFile(file);
  if (lib.subgroupSize !== sg) {
    rt.destroy();
    return fatal(`${file} was built for subgroup size ${lib.subgroupSize}, the device's is ${sg}`);
  }
  report.kernelsFile = file;
  report.subgroupSize = sg;
  report.small = lib.small;
  const results: Record<string, unknown>[] = [];
  report.results = results;
  let failed = 0;
  const line = (name: string, t: Timing, bytes: number, extra = "") =>
    console.log(
      `${name.padEnd(44)} ${t.usPerDispatch.toFixed(2).padStart(9)} us/dispatch ${(bytes / (t.usPerDispatch * 1e-6) / 1e9).toFixed(1).padStart(7)} GB/s  (median single ${t.medianDispatchUs.toFixed(2)} us)${extra}`,
    );
  console.log(
    `${reps} dispatches a submission (barriers between), median of ${repeats}; GB/s = bytes read + written; * = the schedule the Vulkan model runs`,
  );

  try {
    // 1. vkCmdCopyBuffer, device to device (bytes read + written).
    if (lib.copyBufferBytes > 0 && (values.only === undefined || "vkCmdCopyBuffer".includes(values.only))) {
      const size = lib.copyBufferBytes;
      const src = filled(rt, size, 0x3c);
      const dst = filled(rt, size, 0);
      try {
        const copies = Array.from({ length: reps }, () => ({
          copy: { src, srcOffset: 0, dst, dstOffset: 0, size },
        }));
        const t = timeCommands(rt, copies, repeats, warmMs);
        line(`vkCmdCopyBuffer ${size >> 20} MiB`, t, 2 * size);
        results.push({
          name: `vkCmdCopyBuffer ${size >> 20} MiB`,
          kind: "copyBuffer",
          bytes: 2 * size,
          ...t,
          gbps: (2 * size) / (t.usPerDispatch * 1e3),
        });
      } catch (e) {
        console.error(`vkCmdCopyBuffer: ${message(e)}`);
        results.push({ name: "vkCmdCopyBuffer", error: message(e) });
      } finally {
        rt.free(src);
        rt.free(dst);
      }
      save();
    }

    // 2. The kernels. Buffers are kept while consecutive entries have the same tensors.
    const refs = new Map<string, CpuKernel>();
    const expected = new Map<
      string,
      { args: Record<string, NDArray | number>; want: Record<string, NDArray | number> }
    >();
    let held: { key: string; sets: Record<string, DeviceTensor>[]; buffers: GpuBuffer[] } | undefined;
    const release = () => {
      for (const b of held?.buffers ?? []) rt.free(b);
      held = undefined;
    };
    /**
     * --sequence: the named entries dispatched in turn, as a model's layer runs its kernels, over
     * --layers rounds, each round on its own copy of the weights (a model-sized working set), a
     * barrier before every dispatch; then each entry alone over the same copies. Against the
     * entries' times alone above, this tells what running them in sequence costs (pipeline
     * switches) from what the larger working set costs.
     */
    const timeSequence = (names: string[]) => {
      const layers = Number(values.layers);
      const buffers: GpuBuffer[] = [];
      try {
        const picked = names.map((n) => {
          const e = lib.entries.find((x) => x.name === n);
          if (!e) throw new Error(`--sequence: no entry named "${n}"`);
          return e;
        });
        const kernels = picked.map((e) => vulkanKernel(rt, e.artifact));
        const tensor = (t: BenchTensor) => filledTensor(rt, t, buffers);
        // --shared-weights: each weight tensor's copies for all layers in one buffer, a layer's
        // at a multiple of VIEW_ALIGN_BYTES (as KernelLlama's sharedLayerBuffers lays the model out).
        const layerCopies = (t: BenchTensor): DeviceTensor[] => {
          if (!values["shared-weights"]) return Array.from({ length: layers }, () => tensor(t));
          const bytes = sizeOf(t.shape) * bytesOf(t.dtype);
          const stride = viewAlignedBytes(bytes);
          const buffer = filled(rt, stride * layers, t.fill);
          buffers.push(buffer);
          return Array.from({ length: layers }, (_, l) => ({
            dtype: t.dtype,
            shape: t.shape,
            buffer,
            offset: l * stride,
          }));
        };
        const sets = picked.map((e) => {
          const shared = Object.fromEntries(
            Object.entries(e.tensors)
              .filter(([n]) => !e.rotate.includes(n))
              .map(([n, t]) => [n, tensor(t)]),
          );
          // --in-place: y is the residual, as the model's O and down projections add into x.
          const { residual, y } = e.tensors;
          if (
            values["in-place"] &&
            residual &&
            y &&
            residual.dtype === y.dtype &&
            sizeOf(residual.shape) === sizeOf(y.shape)
          )
            shared.y = shared.residual!;
          const rotated = e.rotate.map((n) => [n, layerCopies(e.tensors[n]!)] as const);
          return Array.from({ length: layers }, (_, l) => ({
            ...shared,
            ...Object.fromEntries(rotated.map(([n, copies]) => [n, copies[l]!])),
          }));
        });
        // --chain: each entry reads as x what the entry before it wrote (y or out; the first reads
        // the last's), as a model's layer does, instead of a constant input of its own.
        if (values.chain)
          picked.forEach((e, i) => {
            const x = e.tensors.x;
            const before = picked[(i + picked.length - 1) % picked.length]!;
            const outName = ["y", "out"].find((n) => n in before.tensors);
            const out = outName ? before.tensors[outName]! : undefined;
            if (!x || !out || x.dtype !== out.dtype || sizeOf(out.shape) < sizeOf(x.shape)) return;
            sets[i]!.forEach((set, l) => {
              const written = sets[(i + picked.length - 1) % picked.length]![l]![outName!]!;
              set.x = { ...written, shape: x.shape };
            });
          });
        const dispatch = (i: number, l: number): Command => ({
          ...kernels[i]!.dispatch({ ...sets[i]![l]!, ...picked[i]!.scalars }),
          barrier: true,
        });
        const inTurn: Command[] = [];
        for (let l = 0; l < layers; l++) picked.forEach((_, i) => inTurn.push(dispatch(i, l)));
        const seq = timeCommands(rt, inTurn, repeats, warmMs);
        const roundUs = seq.hostUsPerDispatch * picked.length;
        const each = picked.map((e, i) => {
          const t = timeCommands(
            rt,
            Array.from({ length: layers }, (_, l) => dispatch(i, l)),
            repeats,
            warmMs,
          );
          const aloneUs = results.find((r) => r.name === e.name)?.hostUsPerDispatch as number | undefined;
          return { name: e.name, overLayersUs: t.hostUsPerDispatch, aloneUs };
        });
        const sumOverLayers = each.reduce((a, x) => a + x.overLayersUs, 0);
        console.log(
          `sequence of ${picked.length} over ${layers} layers: ${roundUs.toFixed(2)} us a round against ${sumOverLayers.toFixed(2)} us for each alone over the same weights`,
        );
        for (const x of each)
          console.log(
            `  ${x.name.padEnd(44)} ${x.overLayersUs.toFixed(2)} us over ${layers} copies, ${x.aloneUs?.toFixed(2) ?? "-"} us over the entry's copies`,
          );
        return {
          names,
          layers,
          sharedWeights: !!values["shared-weights"],
          dynamicOffsets: !!values["dynamic-offsets"],
          inPlace: !!values["in-place"],
          chain: !!values.chain,
          roundUs,
          sumOverLayersUs: sumOverLayers,
          each,
        };
      } catch (err) {
        failed++;
        console.log(`ERROR    sequence: ${message(err)}`);
        return { names, error: message(err) };
      } finally {
        for (const b of buffers) rt.free(b);
      }
    };
    for (const e of lib.entries) {
      if (values.only !== undefined && !e.name.includes(values.only)) continue;
      const result: Record<string, unknown> = {
        name: e.name,
        kernel: e.kernel,
        kind: e.kind,
        params: e.params,
        model: e.model ?? false,
        bytes: e.bytes,
        localSize: e.artifact.localSize,
        sharedBytes: e.artifact.sharedBytes,
        spirv: e.spirv,
      };
      results.push(result);
      let kernel: VulkanKernel;
      try {
        kernel = vulkanKernel(rt, e.artifact);
      } catch (err) {
        failed++;
        result.error = `pipeline: ${message(err)}`;
        console.log(`ERROR    ${e.name}: ${result.error}`);
        save();
        continue;
      }
      // Correctness, once, against the CPU backend.
      let checkNote = "";
      if (e.check) {
        try {
          const ref =
            refs.get(e.check.reference) ??
            compileCpu(funcFromJson(lib.references[e.check.reference]!), { boundsCheck: false });
          refs.set(e.check.reference, ref);
          const key = `${e.check.reference} ${JSON.stringify(e.check.symbols)}`;
          let c = expected.get(key);
          if (!c) {
            const args = randomArgs(ref.func, e.check.symbols, seed, e.scalars);
            const want = cloneArgs(args);
            ref(want);
            c = { args, want };
            expected.set(key, c);
          }
          const cmp = compareResults(c.want, kernel(c.args), 2e-3);
          const ok = cmp.mismatches.length === 0;
          if (!ok) failed++;
          result.check = {
            ok,
            symbols: e.check.symbols,
            worstRelativeError: cmp.worst,
            ...(ok ? {} : { mismatches: cmp.mismatches.slice(0, 5) }),
          };
          checkNote = ok ? `  check ok (worst ${cmp.worst.toExponential(1)})` : "  CHECK MISMATCH";
        } catch (err) {
          failed++;
          result.check = { ok: false, error: message(err) };
          checkNote = `  CHECK ERROR ${message(err)}`;
        }
      }
      // Timing.
      try {
        const rotBytes = e.rotate.reduce((a, n) => {
          const t = e.tensors[n]!;
          return a + sizeOf(t.shape) * bytesOf(t.dtype);
        }, 0);
        const copies = rotBytes > 0 ? Math.max(1, Math.min(16, Math.ceil(copiesBytes / rotBytes))) : 1;
        const key = JSON.stringify([e.tensors, e.rotate, copies]);
        if (held?.key !== key) {
          release();
          const buffers: GpuBuffer[] = [];
          const tensor = (name: string) => filledTensor(rt, e.tensors[name]!, buffers);
          const shared = Object.fromEntries(
            Object.keys(e.tensors)
              .filter((n) => !e.rotate.includes(n))
              .map((n) => [n, tensor(n)]),
          );
          const sets = Array.from({ length: copies }, () => ({
            ...shared,
            ...Object.fromEntries(e.rotate.map((n) => [n, tensor(n)])),
          }));
          held = { key, sets, buffers };
        }
        const sets = held.sets;
        const dispatches = (barrier: boolean): Command[] =>
          Array.from({ length: reps }, (_, i) => ({
            ...kernel.dispatch({ ...sets[i % sets.length]!, ...e.scalars }),
            barrier,
          }));
        const t = timeCommands(rt, dispatches(true), repeats, warmMs);
        const free = timeCommands(rt, dispatches(false), repeats, warmMs);
        Object.assign(result, {
          copies,
          ...t,
          gbps: e.bytes / (t.usPerDispatch * 1e3),
          hostGbps: e.bytes / (t.hostUsPerDispatch * 1e3),
          noBarrier: {
            usPerDispatch: free.usPerDispatch,
            gbps: e.bytes / (free.usPerDispatch * 1e3),
            hostUsPerDispatch: free.hostUsPerDispatch,
          },
        });
        line(
          e.name + (e.model ? " *" : ""),
          t,
          e.bytes,
          `  host ${t.hostUsPerDispatch.toFixed(2)} us (${(e.bytes / (t.hostUsPerDispatch * 1e3)).toFixed(0)} GB/s); no barriers ${free.usPerDispatch.toFixed(2)} us${checkNote}; spirv ${e.spirv.instructions} instr, global loads ${JSON.stringify(e.spirv.globalLoadTypes)}`,
        );
      } catch (err) {
        failed++;
        result.error = message(err);
        console.log(`ERROR    ${e.name}: ${result.error}${checkNote}`);
      }
      report.failed = failed;
      save();
    }
    release();
    if (values.sequence) report.sequences = values.sequence.split(";").map((q) => timeSequence(q.split(",")));
  } finally {
    rt.destroy();
  }
  report.failed = failed;
  save();

  // 3. The driver's statistics of each pipeline, in a child process.
  if (!values["no-stats"]) {
    const tmp = join(tmpdir(), `tkc-vulkan-bench-stats-${process.pid}.json`);
    const args = [
      ...process.execArgv,
      process.argv[1]!,
      "--pipeline-stats",
      tmp,
      "--kernels",
      file,
      "--out",
      out,
    ];
    if (values.only !== undefined) args.push("--only", values.only);
    if (values["no-internal"]) args.push("--no-internal");
    const child = spawnSync(process.execPath, args, {
      stdio: "inherit",
      env: process.env,
      timeout: 180_000,
    });
    let stats: PipelineStatsReport | { error: string };
    try {
      stats = JSON.parse(readFileSync(tmp, "utf8")) as PipelineStatsReport;
      rmSync(tmp, { force: true });
    } catch {
      stats = { error: `the statistics process ended with status ${child.status} signal ${child.signal}` };
    }
    // Per kernel in its result (`driver`); here whether the driver had them.
    report.pipelineStats = "supported" in stats ? { ...stats, pipelines: undefined } : stats;
    if ("supported" in stats && stats.supported) {
      for (const r of results) {
        const s = stats.pipelines[r.name as string];
        if (!s) continue;
        r.driver = s;
        if (Array.isArray(s))
          for (const x of s)
            console.log(`driver: ${r.name as string} [${x.name}] ${JSON.stringify(x.statistics)}`);
        else console.log(`driver: ${r.name as string}: ${s.error}`);
        if (Array.isArray(s)) {
          const dir = join(out, "vulkan-bench-ir");
          mkdirSync(dir, { recursive: true });
          s.forEach((x, i) =>
            x.internal.forEach((ir, j) => {
              if (ir.text === undefined) return;
              writeFileSync(
                join(dir, `${(r.name as string).replace(/[^A-Za-z0-9_.-]+/g, "_")}.${i}.${j}.txt`),
                ir.text.slice(0, 256 << 10),
              );
              delete ir.text;
            }),
          );
        }
      }
    } else
      console.log(
        `driver statistics: ${"reason" in stats ? stats.reason : "error" in stats ? stats.error : "none"}`,
      );
    save();
  }
  console.log(
    failed
      ? `vulkan-bench: ${failed} failures`
      : `vulkan-bench: ${results.length} measurements, all checks passed`,
  );
  return failed ? 1 : 0;
}

try {
  process.exit(main());
} catch (e) {
  console.error(`vulkan-bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(2);
}
