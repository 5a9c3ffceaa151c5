// The kernel-built Llama on Vulkan, on the GPU machine (NVIDIA's Vulkan driver).
//
// Here (prepare.sh does it): `npx tsx bench/device/vulkan.ts --build .device` compiles the SPIR-V
// libraries the GPU machine loads (it has no frontend: ts-morph cannot be bundled), for subgroup
// size 32: .device/lib/vulkan-sg32/{stories15M-q4,llama2-7b-q4}.json. `--subgroup 8` builds
// lavapipe's, for trying the bundle here.
//
// There: `bash bench/device/run.sh vulkan` (with .device carried) runs .device/vulkan.mjs:
//  0. the Vulkan loader carried in .device/vulkan and NVIDIA's ICD (bench/device/vulkan-setup.ts);
//  1. stories15M (q4f16_1, the converted model of build-model.ts): greedy 256 tokens must equal the
//     CPU kernel model's text (.device/models/stories15M-q4-expected.json); decode tok/s;
//  2. Llama-2-7B shape (q4f16_1, synthetic weights): decode tok/s over --steps tokens from position
//     1 (the median of --decode-runs runs, 3), bytes read per token and the bandwidth that implies
//     (and the fraction of the CUDA copy bandwidth when libcuda is there); prefill of --prefill
//     tokens;
//  3. where a 7B decode step's GPU time goes: per-launch timestamps of one replay at position 256.
// --shared-layer-buffers builds the 7B model with its per-layer tensors in shared buffers
// (KernelLlama's sharedLayerBuffers); --dynamic-offsets binds storage buffers with dynamic offsets
// (VulkanRuntimeOptions.dynamicOffsets: with shared buffers, one descriptor set an op kind).
// --variant 'name={"foldRowsGateUpNorm":true}' (with --build: builds only the 7B library under
// llama2-7b-q4-<name>.json with those op choices over VULKAN_OP_CHOICES; there: runs the 7B model
// with that library and those choices), for A/B runs of a kernel choice.
// Writes $OUT/vulkan.json after every phase (a later failure keeps the earlier numbers). Exit
// status: 0, 1 when the stories15M text differs, 2 when there is no usable Vulkan device or a phase
// failed.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { LlamaConfig } from "../../llama/config.ts";
import { loadConverted } from "../../llama/convert/format.ts";
import { loadModelTokenizer } from "../../llama/convert/tokenizer.ts";
import {
  compileVulkanLibrary,
  createVulkanDevice,
  readVulkanLibrary,
  VULKAN_OP_CHOICES,
  VULKAN_SCHEDULES,
  writeVulkanLibrary,
  type VulkanDevice,
  type VulkanLibrary,
} from "../../llama/device/vulkan.ts";
import { generateText } from "../../llama/generate.ts";
import { KernelLlama } from "../../llama/model.ts";
import { allOps, llamaOps } from "../../llama/ops.ts";
import { fromConverted, syntheticQ4 } from "../../llama/weights/source.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import {
  DECODE_CONTEXT,
  LLAMA2_7B,
  compareGreedyText,
  decodeBytesPerToken,
  greedyDecodeTokPerS,
  parseChoicesVariant,
  positiveInteger,
  withChoices,
  type ChoicesVariant,
  type ExpectedText,
} from "./models.ts";
import { openVulkan, startVulkan } from "./vulkan-setup.ts";

const STORIES = "stories15M-q4";
const LLAMA7B = "llama2-7b-q4";
const libDir = (deviceDir: string, subgroup: number) => join(deviceDir, "lib", `vulkan-sg${subgroup}`);

// ---- here: the SPIR-V libraries ----

/** stories15M's config, from the converted model build-model.ts made (or the bundled checkpoint). */
async function storiesConfig(deviceDir: string): Promise<LlamaConfig> {
  const dir = join(deviceDir, "models", STORIES);
  if (existsSync(join(dir, "tkc-config.json"))) return loadConverted(dir).config;
  const { loadBundledStories15M } = await import("../../llama/bundled.ts");
  return loadBundledStories15M().weights.config;
}

const library7b = (variant?: ChoicesVariant) => (variant ? `${LLAMA7B}-${variant.name}` : LLAMA7B);

async function build(deviceDir: string, subgroup: number, variant?: ChoicesVariant): Promise<void> {
  const target = { ...TARGETS.vulkan, name: `vulkan (subgroup ${subgroup})`, warpSize: subgroup };
  const out = libDir(deviceDir, subgroup);
  mkdirSync(out, { recursive: true });
  const config7b = { ...LLAMA2_7B, contextLength: DECODE_CONTEXT };
  const models: [string, LlamaConfig][] = variant
    ? [[library7b(variant), config7b]]
    : [
        [STORIES, await storiesConfig(deviceDir)],
        [LLAMA7B, config7b],
      ];
  const choices = withChoices(VULKAN_OP_CHOICES, variant);
  for (const [name, config] of models) {
    const t0 = performance.now();
    const lib = compileVulkanLibrary(allOps(llamaOps(config, "q4f16_1", VULKAN_SCHEDULES, choices)), target);
    writeVulkanLibrary(lib, join(out, `${name}.json`));
    console.log(
      `vulkan library ${name} (subgroup ${subgroup}): ${Object.keys(lib.kernels).length} kernels in ${((performance.now() - t0) / 1e3).toFixed(1)} s -> ${join(out, `${name}.json`)}`,
    );
  }
}

// ---- there ----

/** Device-to-device copy bandwidth through CUDA, when libcuda is there (the roofline's bandwidth). */
async function cudaCopyBandwidth(): Promise<number | undefined> {
  try {
    const { createCudaRuntime } = await import("../../backends/cuda/runtime.ts");
    const { copyBandwidth } = await import("./bandwidth.ts");
    const rt = createCudaRuntime();
    try {
      return copyBandwidth(rt);
    } finally {
      rt.dispose();
    }
  } catch (e) {
    console.log(`(no CUDA copy bandwidth: ${(e as Error).message.split("\n")[0]})`);
    return undefined;
  }
}

function loadLibrary(deviceDir: string, subgroup: number, name: string): VulkanLibrary {
  const file = join(libDir(deviceDir, subgroup), `${name}.json`);
  if (!existsSync(file))
    throw new Error(
      `${file} is missing: this device's subgroup size is ${subgroup}; build it with npx tsx bench/device/vulkan.ts --build .device --subgroup ${subgroup}`,
    );
  return readVulkanLibrary(file);
}

async function run(opts: {
  out: string;
  deviceDir: string;
  steps: number;
  prefill: number;
  storiesTokens: number;
  /** Greedy steps a recording holds (KernelLlama's greedyGraphSteps; undefined: its default). */
  greedyGraphSteps?: number;
  /** The 7B model's per-layer tensors in shared buffers (KernelLlama's sharedLayerBuffers). */
  sharedLayerBuffers?: boolean;
  /** Storage buffers bound with dynamic offsets (VulkanRuntimeOptions.dynamicOffsets). */
  dynamicOffsets?: boolean;
  /** The 7B model's library and op choices (--variant). */
  variant?: ChoicesVariant;
  /** Greedy decodes of --steps tokens timed in turn; the median is reported. */
  decodeRuns: number;
  models: string[];
}): Promise<number> {
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1e3;
  const result: Record<string, unknown> = {};
  const errors: string[] = [];
  let failed = 0;
  const save = () =>
    writeFileSync(
      join(opts.out, "vulkan.json"),
      JSON.stringify({ command: "bash bench/device/run.sh vulkan", ...result, errors, failed }, null, 1),
    );

  const { setup, exitCode } = startVulkan(opts.deviceDir, (line) => console.log(line));
  if (exitCode !== undefined) return exitCode;
  result.setup = setup;
  const opened = openVulkan(setup, "vulkan", "", { dynamicOffsets: opts.dynamicOffsets ?? false });
  result.dynamicOffsets = opts.dynamicOffsets ?? false;
  result.sharedLayerBuffers = opts.sharedLayerBuffers ?? false;
  if (opts.variant) result.variant = opts.variant;
  if ("error" in opened) {
    errors.push(opened.error);
    console.error(`vulkan: ${opened.error}`);
    save();
    return 2;
  }
  const rt = opened.rt;
  const info = rt.device;
  const sg = info.subgroup.size;
  result.device = { name: info.name, ...opened.record };
  save();

  // 1. stories15M, real weights, against the CPU kernel model's greedy text.
  if (opts.models.includes("stories15M"))
    try {
      const dir = join(opts.deviceDir, "models", STORIES);
      const conv = loadConverted(dir);
      const src = fromConverted(conv, (n) => n in conv.manifest.tensors);
      const tok = loadModelTokenizer(conv);
      const device = createVulkanDevice({ runtime: rt, library: loadLibrary(opts.deviceDir, sg, STORIES) });
      const model = new KernelLlama(device, src, {
        format: "q4f16_1",
        schedules: device.schedules,
        opChoices: device.opChoices,
        ...(opts.greedyGraphSteps ? { greedyGraphSteps: opts.greedyGraphSteps } : {}),
      });
      const r = await generateText(model, tok, {
        maxTokens: opts.storiesTokens,
        temperature: 0,
        topP: 1,
        seed: 1,
      });
      const expected = JSON.parse(
        readFileSync(join(opts.deviceDir, "models/stories15M-q4-expected.json"), "utf8"),
      ) as ExpectedText;
      const { same, firstDiff, cpuMargin, describe } = compareGreedyText(r, expected);
      if (!same) failed++;
      console.log(
        `${same ? "ok" : "DIFFERENT"} stories15M q4f16_1 greedy text on Vulkan vs the CPU kernel model (${describe}); decode ${r.stats.decodeTokensPerSecond.toFixed(1)} tok/s`,
      );
      console.log(r.text.slice(0, 300));
      result.stories15M = {
        sameTextAsCpu: same,
        firstDifferentToken: firstDiff,
        ...(cpuMargin === undefined ? {} : { cpuMarginAtFirstDifference: cpuMargin }),
        tokens: r.tokens.length,
        decodeTokPerS: r.stats.decodeTokensPerSecond,
        prefillTokPerS: r.stats.prefillTokensPerSecond,
        text: r.text,
      };
      model.dispose();
    } catch (e) {
      errors.push(`stories15M: ${(e as Error).stack ?? String(e)}`);
      console.error(`vulkan: ${errors.at(-1)}`);
    }
  save();

  // 2. Llama-2-7B shape, synthetic q4f16_1 weights: decode, then prefill.
  const config = { ...LLAMA2_7B, contextLength: DECODE_CONTEXT };
  const model7b = (device: VulkanDevice) =>
    new KernelLlama(device, syntheticQ4(config), {
      format: "q4f16_1",
      schedules: device.schedules,
      opChoices: withChoices(device.opChoices, opts.variant),
      ...(opts.sharedLayerBuffers ? { sharedLayerBuffers: true } : {}),
    });
  if (opts.models.includes("7b"))
    try {
      const copy = await cudaCopyBandwidth();
      if (copy) console.log(`CUDA copy bandwidth ${(copy / 1e9).toFixed(0)} GB/s`);
      const lib = loadLibrary(opts.deviceDir, sg, library7b(opts.variant));
      const device = createVulkanDevice({ runtime: rt, library: lib });
      const sets0 = rt.descriptorSets;
      const t0 = performance.now();
      const model = model7b(device);
      const uploadS = (performance.now() - t0) / 1e3;
      console.log(`7B weights made and uploaded in ${uploadS.toFixed(1)} s`);
      const w0 = performance.now();
      model.decode(1, 0); // compiles the pipelines, records the command buffer
      const firstS = (performance.now() - w0) / 1e3;
      const steps = Math.min(opts.steps, config.contextLength - 1);
      // Half a second of steps first, then several runs, the median reported: timed right after
      // the upload, with the GPU's clocks still down, a run's rate was 2-4% below the next runs',
      // and single runs so timed scattered 3-16% below the warm rate
      // (bench/results/vulkan-h200.json twentySixthSession).
      const warm0 = performance.now();
      do greedyDecodeTokPerS(model, 32);
      while (performance.now() - warm0 < 500);
      const runs = Array.from({ length: opts.decodeRuns }, () => greedyDecodeTokPerS(model, steps));
      const tokPerS = [...runs].sort((a, b) => a - b)[Math.floor(runs.length / 2)]!;
      // Descriptor sets the step's launches bind (one a launch unless buffers and offsets repeat).
      const descriptorSets = rt.descriptorSets - sets0;
      const seconds = steps / tokPerS;
      const bytes = decodeBytesPerToken(config, "q4f16_1", (steps + 1) / 2);
      const decode = {
        tokPerS,
        runsTokPerS: runs,
        steps,
        msPerToken: (1e3 * seconds) / steps,
        firstStepS: firstS,
        uploadS,
        descriptorSets,
        bytesPerToken: bytes,
        effectiveGBs: (bytes * tokPerS) / 1e9,
        ...(copy
          ? {
              copyBandwidthGBs: copy / 1e9,
              rooflineTokPerS: copy / bytes,
              fractionOfRoofline: (tokPerS * bytes) / copy,
            }
          : {}),
      };
      console.log(
        `7B q4f16_1 decode on Vulkan: ${tokPerS.toFixed(1)} tok/s over ${steps} tokens (${decode.msPerToken.toFixed(2)} ms/token; median of ${runs.map((r) => r.toFixed(1)).join(", ")}); ${(bytes / 1e9).toFixed(2)} GB/token = ${decode.effectiveGBs.toFixed(0)} GB/s` +
          (copy ? `; ${(100 * decode.fractionOfRoofline!).toFixed(1)}% of the copy roofline` : "") +
          `; ${descriptorSets} descriptor sets`,
      );
      result.llama2_7b_q4 = {
        decode,
        sharedLayerBuffers: opts.sharedLayerBuffers ?? false,
        dynamicOffsets: opts.dynamicOffsets ?? false,
      };
      save();
      if (opts.prefill > 0) {
        const prompt = Array.from({ length: opts.prefill }, (_, i) => 1 + ((i * 7919) % 31999));
        model.reset();
        const p0 = performance.now();
        model.prefill(prompt, 0);
        const prefillS = (performance.now() - p0) / 1e3;
        console.log(
          `7B q4f16_1 prefill of ${opts.prefill} tokens on Vulkan: ${(opts.prefill / prefillS).toFixed(1)} tok/s`,
        );
        result.llama2_7b_q4 = {
          decode,
          sharedLayerBuffers: opts.sharedLayerBuffers ?? false,
          dynamicOffsets: opts.dynamicOffsets ?? false,
          prefill: { tokens: opts.prefill, tokPerS: opts.prefill / prefillS },
        };
      }
      model.dispose();
    } catch (e) {
      errors.push(`7B: ${(e as Error).stack ?? String(e)}`);
      console.error(`vulkan: ${errors.at(-1)}`);
    }
  save();

  // 3. One 7B decode step's GPU time by op (timestamps around every launch of the recording).
  if (opts.models.includes("7b") && elapsed() < 360)
    try {
      const device = createVulkanDevice({
        runtime: rt,
        library: loadLibrary(opts.deviceDir, sg, library7b(opts.variant)),
        timestamps: true,
      });
      const model = model7b(device);
      const pos = 256;
      const byOp = new Map<string, { ns: number; launches: number }>();
      const reps = 3;
      // Steps for half a second first: after the upload's idle seconds the GPU's clocks are down,
      // and one cold step took 15.3 ms of GPU time against 4.8 ms a step while decoding.
      const warm0 = performance.now();
      do model.decode(1, pos);
      while (performance.now() - warm0 < 500);
      let gpuNs = 0;
      for (let i = 0; i < reps; i++) {
        model.decode(1, pos);
        const t = device.lastReplay!;
        gpuNs += t.gpuNs / reps;
        for (const l of t.launches) {
          const op = l.key.split("_")[0]!;
          const e = byOp.get(op) ?? { ns: 0, launches: 0 };
          e.ns += l.ns / reps;
          e.launches += 1 / reps;
          byOp.set(op, e);
        }
      }
      const table = [...byOp]
        .map(([op, v]) => ({ op, msPerStep: v.ns / 1e6, launchesPerStep: Math.round(v.launches) }))
        .sort((a, b) => b.msPerStep - a.msPerStep);
      console.log(`7B decode step at position ${pos}: ${(gpuNs / 1e6).toFixed(3)} ms of GPU time`);
      for (const t of table)
        console.log(`  ${t.op.padEnd(12)} ${t.msPerStep.toFixed(3)} ms  (${t.launchesPerStep} launches)`);
      result.profile7b = { position: pos, gpuMsPerStep: gpuNs / 1e6, ops: table };
      model.dispose();
    } catch (e) {
      errors.push(`7B profile: ${(e as Error).stack ?? String(e)}`);
      console.error(`vulkan: ${errors.at(-1)}`);
    }
  save();
  rt.destroy();
  return failed ? 1 : errors.length ? 2 : 0;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      out: { type: "string", default: "bench/out" },
      build: { type: "string" },
      subgroup: { type: "string", default: "32" },
      "device-dir": { type: "string" },
      steps: { type: "string", default: "512" },
      "decode-runs": { type: "string", default: "3" },
      prefill: { type: "string", default: "128" },
      "stories-tokens": { type: "string", default: "256" },
      models: { type: "string", default: "stories15M,7b" },
      "greedy-graph-steps": { type: "string" },
      "shared-layer-buffers": { type: "boolean", default: false },
      "dynamic-offsets": { type: "boolean", default: false },
      variant: { type: "string" },
    },
  });
  const variant = values.variant === undefined ? undefined : parseChoicesVariant(values.variant);
  if (values.build !== undefined) {
    await build(resolve(values.build), Number(values.subgroup), variant);
    return 0;
  }
  // The bundle lives in .device/; run from source, the folder is the repository's .device.
  const here = dirname(fileURLToPath(import.meta.url));
  const deviceDir = resolve(
    values["device-dir"] ?? (existsSync(join(here, "lib")) ? here : join(here, "../../.device")),
  );
  mkdirSync(values.out!, { recursive: true });
  return run({
    out: values.out!,
    deviceDir,
    steps: Number(values.steps),
    decodeRuns: positiveInteger(values["decode-runs"]!, "--decode-runs"),
    prefill: Number(values.prefill),
    storiesTokens: Number(values["stories-tokens"]),
    models: values.models!.split(","),
    ...(values["greedy-graph-steps"] ? { greedyGraphSteps: Number(values["greedy-graph-steps"]) } : {}),
    ...(values["shared-layer-buffers"] ? { sharedLayerBuffers: true } : {}),
    ...(values["dynamic-offsets"] ? { dynamicOffsets: true } : {}),
    ...(variant ? { variant } : {}),
  });
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`vulkan: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(2);
  },
);
