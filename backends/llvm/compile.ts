// compileLLVM: textual LLVM IR -> verified module -> O3 (new pass manager) -> PTX or an AMDGPU
// object, which ld.lld turns into an HSA code object. Every LLVM object made here is disposed in
// a finally block, because a long autotuning session compiles thousands of variants.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { copyBytes, cString } from "../gpu-common/koffi.ts";
import { llvm, LLVMError, takeError, takeMessage } from "./llvm-c.ts";
import { targetMachineSpec, type LLVMTarget } from "./target.ts";

export interface CompileOptions {
  /** New-pass-manager pipeline run before codegen; default "default<O3>". "" skips it. */
  passes?: string;
  /** Codegen optimization level 0..3 (default 3). */
  codegenLevel?: 0 | 1 | 2 | 3;
  /** Set false to get the bare object without linking it (AMD only). Default true. */
  link?: boolean;
}

export interface CompileResult {
  /** PTX assembly (NVPTX). */
  ptx?: string;
  /** Relocatable ELF object (AMDGPU). */
  object?: Uint8Array;
  /** Linked HSA code object, what hipModuleLoadData takes (AMDGPU). */
  hsaco?: Uint8Array;
  /** The module after the pass pipeline, before codegen: what to read when a kernel is slow. */
  optimizedIR: string;
}

const VERIFIER_RETURN_STATUS = 2; // LLVMReturnStatusAction: report, don't abort the process
const FILE_ASSEMBLY = 0;
const FILE_OBJECT = 1;

export function compileLLVM(irText: string, target: LLVMTarget, options: CompileOptions = {}): CompileResult {
  const spec = targetMachineSpec(target);
  const a = llvm();
  const ctx = a.ContextCreate();
  let mod: unknown = null;
  let tm: unknown = null;
  try {
    mod = parse(irText, ctx);
    const verifyMsg: unknown[] = [null];
    const bad = a.VerifyModule(mod, VERIFIER_RETURN_STATUS, verifyMsg);
    const vm = takeMessage(verifyMsg[0]);
    if (bad) throw new LLVMError("verify", vm || "module is invalid");

    // The triple in the text must match the target asked for; an empty one is filled in.
    const inText = cString(a.GetTarget(mod));
    if (inText && inText !== spec.triple) {
      throw new LLVMError(
        "target",
        `module triple "${inText}" does not match target triple "${spec.triple}"`,
      );
    }
    a.SetTarget(mod, spec.triple);

    const tRef: unknown[] = [null];
    const tMsg: unknown[] = [null];
    if (a.GetTargetFromTriple(spec.triple, tRef, tMsg)) throw new LLVMError("target", takeMessage(tMsg[0]));
    takeMessage(tMsg[0]);
    // wgmma (inline assembly the renderer emits for Hopper) exists only in sm_90a, the
    // architecture-specific variant of sm_90: such kernels are compiled for it.
    const cpu = spec.cpu === "sm_90" && irText.includes("wgmma.mma_async") ? "sm_90a" : spec.cpu;
    tm = a.CreateTargetMachine(
      tRef[0],
      spec.triple,
      cpu,
      spec.features,
      options.codegenLevel ?? 3,
      spec.reloc,
      0,
    );
    if (!tm) throw new LLVMError("target", `could not create a target machine for ${spec.triple} ${cpu}`);
    // The target machine owns the data layout; a renderer need not spell it out.
    const dl = a.CreateTargetDataLayout(tm);
    a.SetModuleDataLayout(mod, dl);
    a.DisposeTargetData(dl);

    const passes = options.passes ?? "default<O3>";
    if (passes) runPasses(mod, tm, passes);
    const optimizedIR = takeMessage(a.PrintModuleToString(mod));

    if (target.kind === "nvptx") {
      const ptx = new TextDecoder().decode(emit(tm, mod, FILE_ASSEMBLY));
      return { ptx, optimizedIR };
    }
    const object = emit(tm, mod, FILE_OBJECT);
    const hsaco = options.link === false ? undefined : linkHsaco(object);
    return { object, hsaco, optimizedIR };
  } finally {
    if (tm) a.DisposeTargetMachine(tm);
    if (mod) a.DisposeModule(mod);
    a.ContextDispose(ctx);
  }
}

function parse(irText: string, ctx: unknown): unknown {
  const a = llvm();
  const bytes = Buffer.from(irText, "utf8");
  // The parser takes ownership of the buffer, even on failure.
  const buf = a.CreateMemoryBufferWithMemoryRangeCopy(bytes, bytes.length, "tkc-module");
  const out: unknown[] = [null];
  const msg: unknown[] = [null];
  if (a.ParseIRInContext(ctx, buf, out, msg)) throw new LLVMError("parse", takeMessage(msg[0]));
  takeMessage(msg[0]);
  return out[0];
}

function runPasses(mod: unknown, tm: unknown, passes: string): void {
  const a = llvm();
  const opts = a.CreatePassBuilderOptions();
  try {
    a.PassBuilderOptionsSetLoopVectorization(opts, 1);
    a.PassBuilderOptionsSetSLPVectorization(opts, 1);
    const err = takeError(a.RunPasses(mod, passes, tm, opts));
    if (err !== undefined) throw new LLVMError("passes", err);
  } finally {
    a.DisposePassBuilderOptions(opts);
  }
}

function emit(tm: unknown, mod: unknown, fileType: number): Uint8Array {
  const a = llvm();
  const msg: unknown[] = [null];
  const out: unknown[] = [null];
  if (a.TargetMachineEmitToMemoryBuffer(tm, mod, fileType, msg, out)) {
    throw new LLVMError("codegen", takeMessage(msg[0]));
  }
  takeMessage(msg[0]);
  try {
    return copyBytes(a.GetBufferStart(out[0]), Number(a.GetBufferSize(out[0])));
  } finally {
    a.DisposeMemoryBuffer(out[0]);
  }
}

/** Where ld.lld lives; TKC_LD_LLD overrides. */
export function lldPath(): string {
  return process.env.TKC_LD_LLD ?? "ld.lld-19";
}

/** Links an AMDGPU relocatable object into an HSA code object (an ELF shared object). */
export function linkHsaco(object: Uint8Array): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "tkc-lld-"));
  try {
    const inPath = join(dir, "kernel.o");
    const outPath = join(dir, "kernel.hsaco");
    writeFileSync(inPath, object);
    try {
      execFileSync(lldPath(), ["-shared", "-o", outPath, inPath], { stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
      if (err.code === "ENOENT") {
        throw new LLVMError(
          "link",
          `${lldPath()} was not found; install it with \`apt-get install lld-19\` or set TKC_LD_LLD.`,
        );
      }
      throw new LLVMError("link", err.stderr?.toString() || String(e));
    }
    return new Uint8Array(readFileSync(outPath));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
