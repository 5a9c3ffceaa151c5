/**
 * `tkc dump`: a kernel at any point of the pipeline, as text: the loop IR after the frontend,
 * after its GPU schedule (and the schedule's trace), after each lowering pass, and what each
 * backend renders (LLVM IR before and after LLVM's optimizer, PTX, AMD GPU assembly, SPIR-V
 * assembly, JavaScript).
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { KernelDef } from "../../dsl/kernel.ts";
import type { LLVMTarget } from "../../backends/llvm/target.ts";
import type { PrimFunc } from "../../lower/ir/nodes.ts";
import type { Target } from "../../lower/passes/target.ts";
import type { Schedule } from "../../lower/schedule/schedule.ts";
import { parseFlags, UsageError } from "../args.ts";
import type { Command } from "../command.ts";

const NAME = "dump";

type Flavor = "nvptx" | "amdgcn" | "vulkan" | "cpu";

/** What each target renders, in pipeline order (after the IR stages). */
const RENDERED: Readonly<Record<Flavor, readonly string[]>> = {
  nvptx: ["llvm", "llvm-opt", "ptx"],
  amdgcn: ["llvm", "llvm-opt", "amdgcn"],
  vulkan: ["spirv"],
  cpu: ["device-js", "js"],
};
/** The stage --target alone prints: the code that target's runtime loads (LLVM IR for AMD). */
const TARGET_CODE: Readonly<Record<Flavor, string>> = {
  nvptx: "ptx",
  amdgcn: "llvm",
  vulkan: "spirv",
  cpu: "js",
};
/** What is dumped besides the lowering passes (whose names come from lower/passes/pipeline.ts). */
const BEFORE_LOWERING = ["frontend", "schedule"];
const RENDERINGS = ["llvm", "llvm-opt", "ptx", "amdgcn", "spirv", "js", "device-js"];

const TARGET_NAMES = ["sm_90", "sm_80", "gfx1100", "gfx942", "gfx90a", "vulkan", "cpu"] as const;
const ALIASES: Readonly<Record<string, string>> = { cuda: "sm_90", rocm: "gfx1100" };

const flavorOf = (t: string): Flavor =>
  t.startsWith("sm_") ? "nvptx" : t.startsWith("gfx") ? "amdgcn" : (t as Flavor);

/** The target a stage implies when --target is not given. */
const impliedTarget = (stage: string): string =>
  stage === "amdgcn" ? "gfx1100" : stage === "spirv" ? "vulkan" : stage.endsWith("js") ? "cpu" : "sm_90";

const flags = {
  stage: { type: "string" },
  target: { type: "string" },
  schedule: { type: "boolean" },
  specialize: { type: "string", multiple: true },
} as const;

export const dumpCommand: Command = {
  name: NAME,
  summary: "print a kernel's IR after any stage, or the code a target gets",
  help: `Usage: tkc dump KERNEL [--stage NAME|all] [--target T] [--schedule] [--specialize S=N,...]

Prints a kernel at one point of the pipeline (or every point, with --stage all):

  frontend         the loop IR the frontend made from the TypeScript source
  schedule         after the kernel's GPU schedule (stdlib/gpu/schedules.ts; for vulkan, the
                   Vulkan device's) for the target
  launch, cross_thread_reduction, thread_guards, ..., verify
                   after that lowering pass (lower/passes/pipeline.ts PASSES; a wrong --stage
                   lists them all)
  llvm, llvm-opt   the LLVM IR tkc renders, and after LLVM's optimizer (NVIDIA and AMD targets)
  ptx              the PTX the CUDA driver loads (NVIDIA targets)
  amdgcn           the AMD GPU assembly of the code object (llvm-objdump-19 -d)
  spirv            the SPIR-V assembly (vulkan)
  js               the JavaScript the CPU runs (the unscheduled loop IR)
  device-js        the CPU device emulation of the scheduled, lowered kernel (cpu)

KERNEL is a stdlib kernel's name (rmsNorm, q4GemvF32, ...) or path/to/file.ts:exportName for a
kernel of your own (lowered unscheduled: schedules come with the stdlib's kernels).

Flags:
  --stage NAME      one of the above, or all (default: frontend; with --target, that target's
                    code: ptx, llvm, spirv or js)
  --target T        ${TARGET_NAMES.join(", ")} (cuda means sm_90, rocm gfx1100);
                    default: what the stage implies, else sm_90
  --schedule        print the schedule's trace too (the primitives applied, as replayable JSON)
  --specialize S=N  bind symbolic sizes to constants, e.g. d=64,kvh=6 (repeatable); GPU schedules
                    that bind a loop of symbolic extent to threads need it

Examples:
  tkc dump rmsNorm --stage cross_thread_reduction
  tkc dump q4GemvF32 --target sm_90 --stage ptx
  tkc dump attentionDecodeShared --specialize d=48 --target gfx942 --stage all
  tkc dump examples/kernels.ts:addBroadcast --target vulkan
`,
  async run(argv, io) {
    const { values, positionals } = parseFlags(NAME, argv, flags, { min: 1, max: 1, name: "KERNEL" });
    const targetFlag = values.target === undefined ? undefined : (ALIASES[values.target] ?? values.target);
    if (targetFlag !== undefined && !(TARGET_NAMES as readonly string[]).includes(targetFlag))
      throw new UsageError(
        `tkc ${NAME}: --target must be one of ${TARGET_NAMES.join(", ")}, cuda, rocm; got '${values.target}'`,
      );
    const P = await loadPipeline();
    const irStages = [...BEFORE_LOWERING, ...P.STAGE_NAMES];
    const stageFlag = values.stage;
    if (stageFlag !== undefined && stageFlag !== "all" && ![...irStages, ...RENDERINGS].includes(stageFlag))
      throw new UsageError(
        `tkc ${NAME}: --stage must be one of ${[...irStages, ...RENDERINGS].join(", ")}, all; got '${stageFlag}'`,
      );
    const target =
      targetFlag ?? (stageFlag === undefined || stageFlag === "all" ? "sm_90" : impliedTarget(stageFlag));
    const flavor = flavorOf(target);
    const rendered = RENDERED[flavor];
    const stage =
      stageFlag ??
      (targetFlag !== undefined ? TARGET_CODE[flavor] : values.schedule ? "schedule" : "frontend");
    if (stage !== "all" && !irStages.includes(stage) && !rendered.includes(stage))
      throw new UsageError(
        `tkc ${NAME}: --stage ${stage} is not made for --target ${target}; it renders ${rendered.join(", ")}`,
      );
    const specialization = parseSpecialize(values.specialize ?? []);

    const { def, schedule, label } = await resolveKernel(positionals[0]!, target);
    const stages = stage === "all" ? [...irStages, ...rendered] : [stage];
    const want = (s: string) => stages.includes(s);
    const out: [string, string][] = [];
    const emit = (name: string, text: string) => out.push([name, text.endsWith("\n") ? text : `${text}\n`]);

    let f: PrimFunc = P.lowerKernel(def);
    if (Object.keys(specialization).length) f = P.specialize(f, specialization);
    if (want("frontend")) emit("frontend", P.printFunc(f));
    const needsSchedule = stages.some((s) => s !== "frontend" && s !== "js") || values.schedule;
    let scheduled = f;
    if (needsSchedule) {
      const s = new P.Schedule(f);
      try {
        schedule?.(s, target);
      } catch (e) {
        throw withHint(e, f);
      }
      scheduled = s.func;
      if (values.schedule)
        emit(
          "schedule trace",
          schedule ? traceText(s.trace) : `// ${label} has no GPU schedule: the IR is unscheduled`,
        );
      if (want("schedule")) emit("schedule", P.printFunc(scheduled));
    }
    const needsLowering = stages.some((s) => !["frontend", "schedule", "js"].includes(s));
    if (needsLowering) {
      let lowered: { name: string; func: PrimFunc }[];
      try {
        lowered = P.lowerStages(scheduled, loweringTarget(target, P));
      } catch (e) {
        throw withHint(e, f);
      }
      for (const { name, func } of lowered.slice(1)) if (want(name)) emit(name, P.printFunc(func));
      const device = lowered[lowered.length - 1]!.func;
      if (flavor === "nvptx" || flavor === "amdgcn") {
        const llvmTarget = P.GPU_TARGETS[target]!.llvm;
        const text = P.renderLLVM(device, llvmTarget).text;
        if (want("llvm")) emit("llvm", text);
        if (want("llvm-opt") || want("ptx") || want("amdgcn")) {
          // AMD: the relocatable object is disassembled, so no linker (ld.lld) is needed here.
          const c = P.compileLLVM(text, llvmTarget, { link: false });
          if (want("llvm-opt")) emit("llvm-opt", c.optimizedIR);
          if (want("ptx")) emit("ptx", c.ptx!);
          if (want("amdgcn")) emit("amdgcn", disassemble(c.object!, llvmTarget));
        }
      }
      if (want("spirv"))
        emit(
          "spirv",
          P.renderSpirv(device, { env: "vulkan1.2", subgroupSize: P.TARGETS.vulkan.warpSize }).text,
        );
      if (want("device-js")) emit("device-js", P.renderDeviceJs(device));
    }
    if (want("js")) emit("js", P.renderJs(f));

    if (out.length === 1 && stage !== "all") io.stdout.write(out[0]![1]);
    else for (const [name, text] of out) io.stdout.write(`// ---- ${label}: ${name} (${target})\n${text}\n`);
    return 0;
  },
};

/** The pieces of the pipeline a dump needs, loaded when it runs (ts-morph takes half a second). */
async function loadPipeline() {
  const [
    lower,
    spec,
    printer,
    sched,
    pipeline,
    targets,
    library,
    llvmRender,
    llvmCompile,
    spirv,
    cpu,
    cpuDevice,
  ] = await Promise.all([
    import("../../lower/frontend/lower.ts"),
    import("../../lower/ir/specialize.ts"),
    import("../../lower/ir/printer.ts"),
    import("../../lower/schedule/index.ts"),
    import("../../lower/passes/pipeline.ts"),
    import("../../lower/passes/target.ts"),
    import("../../llama/device/library.ts"),
    import("../../backends/llvm/render.ts"),
    import("../../backends/llvm/compile.ts"),
    import("../../backends/spirv/render.ts"),
    import("../../backends/cpu/render.ts"),
    import("../../backends/cpu/device.ts"),
  ]);
  return {
    lowerKernel: lower.lowerKernel,
    specialize: spec.specialize,
    printFunc: printer.printFunc,
    Schedule: sched.Schedule,
    lowerStages: pipeline.lowerStages,
    STAGE_NAMES: pipeline.STAGE_NAMES,
    TARGETS: targets.TARGETS,
    GPU_TARGETS: library.GPU_TARGETS,
    renderLLVM: llvmRender.renderLLVM,
    compileLLVM: llvmCompile.compileLLVM,
    renderSpirv: spirv.renderSpirv,
    renderJs: cpu.renderJs,
    renderDeviceJs: cpuDevice.renderDeviceJs,
  };
}
type Pipeline = Awaited<ReturnType<typeof loadPipeline>>;

function loweringTarget(target: string, P: Pipeline): Target {
  if (target === "vulkan") return P.TARGETS.vulkan;
  if (target === "cpu") return P.TARGETS.cpu;
  return P.GPU_TARGETS[target]!.lowering;
}

/** "d=64,kvh=6" (and repeated flags) to { d: 64, kvh: 6 }. */
function parseSpecialize(items: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of items.flatMap((i) => i.split(","))) {
    if (part.trim() === "") continue;
    const m = /^\s*([A-Za-z_]\w*)\s*=\s*(\d+)\s*$/.exec(part);
    if (!m || Number(m[2]) <= 0)
      throw new UsageError(
        `tkc ${NAME}: --specialize takes NAME=N with N a positive integer (e.g. d=64,m=1), got '${part}'`,
      );
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** A kernel by stdlib name, or file.ts:exportName (file.ts alone when it exports one kernel). */
async function resolveKernel(
  arg: string,
  target: string,
): Promise<{ def: KernelDef; schedule?: (s: Schedule, target: string) => void; label: string }> {
  const [stdlib, { GPU_SCHEDULES }] = await Promise.all([
    import("../../stdlib/index.ts"),
    import("../../stdlib/gpu/schedules.ts"),
  ]);
  // Vulkan's device schedules its ops with more than GPU_SCHEDULES (llama/device/vulkan.ts).
  const schedules =
    target === "vulkan" ? (await import("../../llama/device/vulkan.ts")).VULKAN_SCHEDULES : GPU_SCHEDULES;
  const kernelsOf = (mod: Record<string, unknown>) =>
    Object.entries(mod).filter(
      (e): e is [string, KernelDef] =>
        typeof e[1] === "object" && e[1] !== null && (e[1] as { kind?: unknown }).kind === "kernel",
    );
  const m = /^(.*\.(?:[cm]?ts|[cm]?js))(?::([A-Za-z_$][\w$]*))?$/.exec(arg);
  if (!m) {
    const found = kernelsOf(stdlib as unknown as Record<string, unknown>).find(([n]) => n === arg);
    if (!found) {
      const names = kernelsOf(stdlib as unknown as Record<string, unknown>).map(([n]) => n);
      const near = names.filter((n) => n.toLowerCase().includes(arg.toLowerCase()));
      throw new UsageError(
        `tkc ${NAME}: no stdlib kernel named '${arg}'` +
          (near.length ? ` (did you mean ${near.join(", ")}?)` : "") +
          `; the stdlib has ${names.join(", ")}; a kernel of your own is path/to/file.ts:exportName`,
      );
    }
    const def = found[1];
    return { def, schedule: schedules[def.name], label: def.name };
  }
  const file = path.resolve(m[1]!.replace(/^~(?=\/)/, os.homedir()));
  if (!fs.existsSync(file)) throw new Error(`${m[1]}: no such file`);
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const kernels = kernelsOf(mod);
  const list = kernels.map(([n]) => n).join(", ") || "none";
  if (m[2] === undefined) {
    if (kernels.length !== 1)
      throw new UsageError(
        `tkc ${NAME}: ${m[1]} exports ${kernels.length} kernels (${list}); name one: ${m[1]}:NAME`,
      );
    return { def: kernels[0]![1], label: kernels[0]![0] };
  }
  const def = kernels.find(([n]) => n === m[2])?.[1];
  if (!def)
    throw new Error(
      `${m[1]} has no exported kernel ${m[2]}` +
        (m[2] in mod ? ` (${m[2]} is not made by kernel(...))` : "") +
        `; its kernels: ${list}`,
    );
  return { def, label: m[2]! };
}

/** Adds what to do to the passes' and schedules' complaints about symbolic sizes. */
function withHint(e: unknown, f: PrimFunc): unknown {
  if (!(e instanceof Error) || !/symbolic/.test(e.message) || f.symbols.length === 0) return e;
  const names = f.symbols.map((s) => s.name).join(", ");
  return new Error(
    `${e.message}\n  hint: bind its symbolic sizes (${names}) with --specialize, e.g. --specialize ${f.symbols.map((s) => `${s.name}=64`).join(",")}`,
  );
}

/** The object's instructions, by llvm-objdump-19 (TKC_LLVM_OBJDUMP overrides). */
function disassemble(object: Uint8Array, t: LLVMTarget): string {
  const tool = process.env.TKC_LLVM_OBJDUMP ?? "llvm-objdump-19";
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tkc-dump-"));
  try {
    const file = path.join(dir, "kernel.o");
    fs.writeFileSync(file, object);
    const r = spawnSync(tool, ["-d", `--mcpu=${t.arch}`, file], { encoding: "utf8" });
    if ((r.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT")
      throw new Error(
        `${tool} was not found (apt-get install llvm-19, or set TKC_LLVM_OBJDUMP); --stage llvm-opt shows the optimized LLVM IR`,
      );
    if (r.error) throw r.error;
    if (r.status !== 0) throw new Error(`${tool} failed: ${(r.stderr || r.stdout).trim()}`);
    return r.stdout.replace(`${file}:`, "kernel.o:").replace(/^\n+/, "");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A trace as JSON with one step per line (what traceFromJson reads back). */
function traceText(t: Schedule["trace"]): string {
  const steps = t.steps.map((st) => `    ${JSON.stringify(st)}`).join(",\n");
  return `{\n  "version": ${t.version},\n  "func": ${JSON.stringify(t.func)},\n  "steps": [\n${steps}\n  ]\n}`;
}
