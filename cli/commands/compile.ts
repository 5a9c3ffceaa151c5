/**
 * `tkc compile`: every kernel a model needs, compiled ahead of time into a directory: one file per
 * kernel (.ptx for CUDA, .hsaco for ROCm, .spv for Vulkan, .js for the CPU) and manifest.json with
 * what a runtime needs to launch each one (its arguments in ABI order, launch dimensions as
 * expressions over the symbolic sizes, shared memory, registers where a tool reports them). A
 * CUDA/ROCm directory is a kernel library that `tkc generate --device cuda --library DIR` and
 * readLibrary (llama/device/library.ts) load on a machine without LLVM.
 */
import fs from "node:fs";
import path from "node:path";
import type { KernelArtifact } from "../../backends/gpu-common/kernel.ts";
import { llvm, LLVMUnavailableError } from "../../backends/llvm/llvm-c.ts";
import { amdgpuResources, ResourceToolUnavailableError } from "../../backends/llvm/resources.ts";
import type { LlamaConfig } from "../../llama/config.ts";
import { writeLibrary, type Library } from "../../llama/device/library.ts";
import type { OpSpec } from "../../llama/device/types.ts";
import type { LlamaOps, WeightFormat } from "../../llama/ops.ts";
import type { Expr } from "../../lower/ir/nodes.ts";
import { printExpr } from "../../lower/ir/printer.ts";
import { choiceFlag, parseFlags, UsageError } from "../args.ts";
import type { Command, Io } from "../command.ts";
import { gpuConfig, resolveModelConfig, WEIGHT_FORMATS, type ModelConfig } from "../load-model.ts";
import { LLAMA2_7B } from "../../llama/presets.ts";

/**
 * The compiler proper (the frontend with ts-morph, the passes, the renderers, the stdlib), loaded
 * when a compile runs rather than at every start of tkc.
 */
async function loadCompiler() {
  const [cpu, gpu, vulkan, vulkanDevice, compile, prepare, ops, choices, pipeline, target, schedules] =
    await Promise.all([
      import("../../backends/cpu/render.ts"),
      import("../../backends/gpu-common/kernel.ts"),
      import("../../backends/vulkan/kernel.ts"),
      import("../../llama/device/vulkan.ts"),
      import("../../llama/device/compile.ts"),
      import("../../llama/device/prepare.ts"),
      import("../../llama/ops.ts"),
      import("../../llama/op-choices.ts"),
      import("../../lower/passes/pipeline.ts"),
      import("../../lower/passes/target.ts"),
      import("../../stdlib/gpu/schedules.ts"),
    ]);
  return {
    renderJs: cpu.renderJs,
    bufferAccess: gpu.bufferAccess,
    buildVulkanArtifact: vulkan.buildVulkanArtifact,
    compileLibrary: compile.compileLibrary,
    scheduledFunc: prepare.scheduledFunc,
    specializedFunc: prepare.specializedFunc,
    llamaOps: ops.llamaOps,
    allOps: ops.allOps,
    lowerToDevice: pipeline.lowerToDevice,
    TARGETS: target.TARGETS,
    GPU_SCHEDULES: schedules.GPU_SCHEDULES,
    /** What the Vulkan device schedules its ops with (GPU_SCHEDULES, and more). */
    VULKAN_SCHEDULES: vulkanDevice.VULKAN_SCHEDULES,
    VULKAN_OP_CHOICES: vulkanDevice.VULKAN_OP_CHOICES,
    cudaOpChoices: choices.cudaOpChoices,
  };
}
type Compiler = Awaited<ReturnType<typeof loadCompiler>>;

const NAME = "compile";

export const TARGET_KINDS = ["cuda", "rocm", "vulkan", "cpu"] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];

/** The architectures each target compiles for; the first is the default. */
export const ARCHS: Readonly<Record<TargetKind, readonly string[]>> = {
  cuda: ["sm_90", "sm_80"],
  rocm: ["gfx1100", "gfx942", "gfx90a"],
  vulkan: [],
  cpu: [],
};

/** The model compiled when --model is not given: Llama-2-7B's shape. */
export { LLAMA2_7B };

const flags = {
  target: { type: "string" },
  arch: { type: "string" },
  out: { type: "string", short: "o" },
  model: { type: "string" },
  format: { type: "string" },
} as const;

export const compileCommand: Command = {
  name: NAME,
  summary: "compile every kernel a model needs ahead of time (PTX, HSA code objects, SPIR-V, JS)",
  help: `Usage: tkc compile --target cuda|rocm|vulkan|cpu [--arch ARCH] --out DIR [--model M] [--format F]

Compiles every kernel the kernel-built Llama needs for one model shape and weight format (decode
and prefill, each specialised to the model's sizes and scheduled for the target) into DIR: one
file per kernel and manifest.json with each kernel's arguments (ABI order, dtypes, shapes, which
buffers it reads and writes), launch dimensions, shared memory and registers (where ptxas or
llvm-readobj-19 report them). Progress goes to standard error. CUDA and ROCm need LLVM 19 (and
ld.lld-19 for ROCm); the directory then runs where there is none:
'tkc generate --device cuda --library DIR --model M'.

Flags:
      --target T    cuda (PTX), rocm (HSA code objects), vulkan (SPIR-V, with the Vulkan
                    device's schedules, for subgroups of 32 as NVIDIA's), cpu (JavaScript)
      --arch A      cuda: sm_90 (default), sm_80; rocm: gfx1100 (default), gfx942, gfx90a
  -o, --out DIR     where to write (created; a previous library there is replaced)
      --model M     the model whose kernels to build (default: Llama-2-7B's shape: dim 4096,
                    FFN 11008, 32 layers, 32 heads, vocab 32000, context 4096):
                    "stories15M" (bundled), a llama2.c checkpoint (.bin), a directory made by
                    'tkc convert' or a Hugging Face model directory, or a JSON file holding a
                    LlamaConfig (dim, hiddenDim, nLayers, nHeads, vocabSize, contextLength, ...)
                    or a Hugging Face config.json
      --format F    weight format: q4f16_1 (default; a converted model's own format when it
                    has one), f16, f32

Contexts longer than 4096 positions are compiled for 4096 (decode attention's limit), as
--device cuda runs them.

Example:
  tkc compile --target cuda --arch sm_90 --model stories15M --out lib/stories15M-sm_90
`,
  async run(argv, io) {
    const { values } = parseFlags(NAME, argv, flags);
    const { kind, arch } = resolveTarget(values.target, values.arch);
    if (values.out === undefined) throw new UsageError(`tkc ${NAME}: missing --out DIR`);
    const format0 = choiceFlag(NAME, "format", values.format, WEIGHT_FORMATS);
    const model: ModelConfig =
      values.model === undefined
        ? { id: "llama-2-7b", from: "Llama-2-7B shape", config: LLAMA2_7B }
        : resolveModelConfig(values.model);
    const format = format0 ?? model.format ?? "q4f16_1";
    const config = gpuConfig(model.config);
    if (config.contextLength < model.config.contextLength)
      io.stderr.write(
        `tkc compile: ${model.id}'s context of ${model.config.contextLength} is compiled for ${config.contextLength} positions (decode attention's limit)\n`,
      );
    if (format === "q4f16_1" && (config.dim % 32 !== 0 || config.hiddenDim % 32 !== 0))
      throw new Error(
        `q4f16_1 needs dim and hiddenDim to be multiples of 32 (${model.id} has ${config.dim}, ${config.hiddenDim}); use --format f16`,
      );
    const C = await loadCompiler();
    const ops =
      kind === "vulkan"
        ? C.llamaOps(config, format, C.VULKAN_SCHEDULES, C.VULKAN_OP_CHOICES)
        : C.llamaOps(config, format, C.GPU_SCHEDULES, kind === "cuda" ? C.cudaOpChoices(arch!) : {});
    const specs = C.allOps(ops);
    const out = values.out;
    if (kind === "cuda" || kind === "rocm") requireLLVM(kind);
    const old = checkOut(out);
    const where = arch ? `${kind} ${arch}` : kind;
    io.stderr.write(
      `tkc compile: ${specs.length} kernels of ${model.id} (${model.from}) in ${format} for ${where}\n`,
    );
    const t0 = performance.now();
    const progress = progressPrinter(io, specs.length);
    let registersKnown: boolean;
    switch (kind) {
      case "cuda":
      case "rocm": {
        let lib = C.compileLibrary(specs, arch!, progress);
        if (kind === "rocm") lib = withAmdRegisters(lib, io);
        clearOut(out, old);
        writeLibrary(lib, out);
        registersKnown = Object.values(lib.kernels).some((k) => k.registers !== undefined);
        break;
      }
      case "vulkan":
        writeBuilt(out, old, buildVulkan(C, specs, progress));
        registersKnown = false;
        break;
      case "cpu":
        writeBuilt(out, old, buildCpu(C, specs, progress));
        registersKnown = false;
        break;
    }
    annotateManifest(out, { kind, arch, format, model: { ...model, config }, ops, specs });
    const secs = ((performance.now() - t0) / 1e3).toFixed(1);
    io.stdout.write(
      `compiled ${specs.length} kernels for ${where} in ${secs} s into ${out} (manifest.json)` +
        (kind === "cuda" && !registersKnown ? "; ptxas not found: registers not recorded" : "") +
        "\n",
    );
    return 0;
  },
};

/** --target and --arch, checked against each other; the arch is undefined for vulkan and cpu. */
export function resolveTarget(
  target: string | undefined,
  archFlag: string | undefined,
): { kind: TargetKind; arch?: string } {
  const owner = (a: string): TargetKind | undefined => TARGET_KINDS.find((k) => ARCHS[k].includes(a));
  if (target === undefined) {
    const inferred = archFlag === undefined ? undefined : owner(archFlag);
    if (!inferred) throw new UsageError(`tkc ${NAME}: missing --target (one of ${TARGET_KINDS.join(", ")})`);
    return { kind: inferred, arch: archFlag };
  }
  const kind = choiceFlag(NAME, "target", target, TARGET_KINDS)!;
  const archs = ARCHS[kind];
  if (archFlag === undefined) return archs.length ? { kind, arch: archs[0] } : { kind };
  if (archs.includes(archFlag)) return { kind, arch: archFlag };
  const other = owner(archFlag);
  if (archs.length === 0)
    throw new UsageError(
      `tkc ${NAME}: --target ${kind} takes no --arch (got '${archFlag}')` +
        (other ? `; ${archFlag} goes with --target ${other}` : ""),
    );
  throw new UsageError(
    `tkc ${NAME}: --arch ${archFlag} is not a ${kind} architecture` +
      (other ? ` (it is ${other === "cuda" ? "an NVIDIA" : "an AMD"} GPU: use --target ${other})` : "") +
      `; --target ${kind} takes ${archs.join(", ")}`,
  );
}

function requireLLVM(kind: TargetKind): void {
  try {
    llvm();
  } catch (e) {
    if (!(e instanceof LLVMUnavailableError)) throw e;
    throw new Error(`--target ${kind} compiles through LLVM 19: ${e.message}`);
  }
}

/**
 * Checks that DIR is new, empty, or holds a library written before (whose files it returns, to be
 * replaced); refuses to mix kernels into other files. Nothing is removed here.
 */
function checkOut(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  if (!fs.statSync(dir).isDirectory()) throw new Error(`--out ${dir} exists and is not a directory`);
  if (fs.readdirSync(dir).length === 0) return [];
  const manifest = path.join(dir, "manifest.json");
  if (!fs.existsSync(manifest))
    throw new Error(
      `--out ${dir} is a non-empty directory that holds no kernel library; choose an empty or new one`,
    );
  try {
    const m = JSON.parse(fs.readFileSync(manifest, "utf8")) as {
      format?: string;
      kernels?: Record<string, { file?: string }>;
    };
    if (m.format !== "tkc-library") throw new Error("not a library");
    const files = Object.values(m.kernels ?? {}).flatMap((k) => (typeof k.file === "string" ? [k.file] : []));
    // Only plain names inside DIR.
    return [...files.filter((f) => path.basename(f) === f), "manifest.json"];
  } catch {
    throw new Error(
      `--out ${dir}: its manifest.json is not a tkc kernel library's; choose another directory`,
    );
  }
}

/** Removes the previous library's files (once the new one compiled) and makes sure DIR exists. */
function clearOut(dir: string, old: readonly string[]): void {
  for (const f of old) fs.rmSync(path.join(dir, f), { force: true });
  fs.mkdirSync(dir, { recursive: true });
}

function progressPrinter(io: Io, total: number): (done: number, total: number, key: string) => void {
  let last = performance.now();
  const width = String(total).length;
  return (done, _total, key) => {
    const now = performance.now();
    io.stderr.write(`[${String(done).padStart(width)}/${total}] ${key} (${Math.round(now - last)} ms)\n`);
    last = now;
  };
}

/** VGPRs per lane from each code object's metadata, when llvm-readobj-19 is installed. */
function withAmdRegisters(lib: Library, io: Io): Library {
  const kernels: Record<string, KernelArtifact> = {};
  let missing = false;
  for (const [key, art] of Object.entries(lib.kernels)) {
    let registers: number | undefined;
    if (!missing) {
      try {
        const res = amdgpuResources(Buffer.from(art.image, "base64"));
        registers = (res.find((r) => r.name === art.entry) ?? res[0])?.registers;
      } catch (e) {
        if (!(e instanceof ResourceToolUnavailableError)) throw e;
        missing = true;
        io.stderr.write(`tkc compile: ${e.message.split(";")[0]}: registers not recorded\n`);
      }
    }
    kernels[key] = registers === undefined ? art : { ...art, registers };
  }
  return { ...lib, kernels };
}

interface ManifestKernel extends Omit<KernelArtifact, "image"> {
  readonly file: string;
  readonly [k: string]: unknown;
}

/** Kernels made in memory, written only once all of them compiled. */
interface Built {
  readonly target: string;
  readonly files: Map<string, string | Uint8Array>;
  readonly kernels: Record<string, ManifestKernel>;
  /** More top-level manifest fields. */
  readonly extra?: Readonly<Record<string, unknown>>;
}

function writeBuilt(dir: string, old: readonly string[], b: Built): void {
  clearOut(dir, old);
  for (const [file, data] of b.files) fs.writeFileSync(path.join(dir, file), data);
  fs.writeFileSync(
    path.join(dir, "manifest.json"),
    JSON.stringify(
      { format: "tkc-library", version: 1, target: b.target, ...b.extra, kernels: b.kernels },
      null,
      1,
    ),
  );
}

/**
 * SPIR-V modules (validated by spirv-val when installed), the words as little-endian bytes, for
 * devices with subgroups of TARGETS.vulkan's warp size (32: NVIDIA; the manifest says so).
 */
function buildVulkan(
  C: Compiler,
  specs: readonly OpSpec[],
  progress: (done: number, total: number, key: string) => void,
): Built {
  const files = new Map<string, Uint8Array>();
  const kernels: Record<string, ManifestKernel> = {};
  const target = C.TARGETS.vulkan;
  specs.forEach((spec, i) => {
    const device = C.lowerToDevice(C.scheduledFunc(spec, "vulkan"), target);
    const { image, text: _text, ...art } = C.buildVulkanArtifact(device, { subgroupSize: target.warpSize });
    const file = `${spec.key}.spv`;
    files.set(file, Buffer.from(image, "base64"));
    kernels[spec.key] = { ...art, file };
    progress(i + 1, specs.length, spec.key);
  });
  return { target: "vulkan", files, kernels, extra: { subgroupSize: target.warpSize } };
}

/**
 * The CPU backend's JavaScript for each op (its loop IR, specialised and unscheduled, without
 * bounds checks: what the CPU device runs) as an ES module, `export default function (args, rt)`,
 * with args as bindArgs (backends/cpu/exec.ts) makes them and rt the runtime of
 * backends/cpu/semantics.ts.
 */
function buildCpu(
  C: Compiler,
  specs: readonly OpSpec[],
  progress: (done: number, total: number, key: string) => void,
): Built {
  const files = new Map<string, string>();
  const kernels: Record<string, ManifestKernel> = {};
  specs.forEach((spec, i) => {
    const f = C.specializedFunc(spec);
    const body = C.renderJs(f, { boundsCheck: false })
      .split("\n")
      .map((l) => `  ${l}`)
      .join("\n");
    const file = `${spec.key}.js`;
    files.set(
      file,
      `// tkc cpu kernel ${spec.key}: call with (args, rt); args = { buffers, scalars, symbols }\n` +
        `export default function ${f.name}(args, rt) {\n${body}\n}\n`,
    );
    const access = C.bufferAccess(f);
    kernels[spec.key] = {
      name: f.name,
      entry: "default",
      target: "cpu",
      abi: [
        ...f.params.map((p) =>
          p.kind === "buffer"
            ? {
                name: p.buffer.name,
                kind: "buffer" as const,
                dtype: p.buffer.dtype,
                shape: JSON.parse(JSON.stringify(p.buffer.shape)) as Expr[],
                ...access.get(p.buffer.name)!,
              }
            : { name: p.v.name, kind: "scalar" as const, dtype: p.v.dtype },
        ),
        ...f.symbols.map((s) => ({ name: s.name, kind: "symbol" as const, dtype: "i32" as const })),
      ],
      launch: { grid: [], block: [] },
      sharedBytes: 0,
      file,
    };
    progress(i + 1, specs.length, spec.key);
  });
  return { target: "cpu", files, kernels };
}

/**
 * Adds what the library was built from to its manifest: the model config and weight format, which
 * op of the model each kernel is (decode/prefill roles), and per kernel its stdlib kernel, the
 * sizes it was specialised to, and its launch dimensions as readable text.
 */
function annotateManifest(
  dir: string,
  info: {
    kind: TargetKind;
    arch?: string;
    format: WeightFormat;
    model: ModelConfig;
    ops: LlamaOps;
    specs: readonly OpSpec[];
  },
): void {
  const file = path.join(dir, "manifest.json");
  const m = JSON.parse(fs.readFileSync(file, "utf8")) as {
    kernels: Record<string, Record<string, unknown> & { launch?: { grid: Expr[]; block: Expr[] } }>;
  } & Record<string, unknown>;
  const roles = (r: Readonly<Record<string, OpSpec>>) =>
    Object.fromEntries(Object.entries(r).map(([role, s]) => [role, s.key]));
  const text = (es: readonly Expr[]) => es.map((e) => printExpr(e));
  for (const s of info.specs) {
    const k = m.kernels[s.key];
    if (!k) continue;
    Object.assign(k, {
      kernel: s.kernel.name,
      ...(s.specialize ? { specialize: s.specialize } : {}),
      ...(s.retype ? { retype: s.retype } : {}),
      ...(s.scalarsInMemory?.length ? { scalarsInMemory: s.scalarsInMemory } : {}),
      ...(k.launch && k.launch.grid.length
        ? { launchText: { grid: text(k.launch.grid), block: text(k.launch.block) } }
        : {}),
    });
  }
  const { kernels: _kernels, ...top } = m;
  const annotated = {
    ...top,
    api: info.kind,
    ...(info.arch ? { arch: info.arch } : {}),
    model: { id: info.model.id, from: info.model.from, config: info.model.config },
    weightFormat: info.format,
    ops: { decode: roles(info.ops.decode), prefill: roles(info.ops.prefill) },
    kernels: m.kernels,
  };
  fs.writeFileSync(file, JSON.stringify(annotated, null, 1));
}
