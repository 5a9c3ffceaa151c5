// LLVM 19's C API through koffi: just the calls that take textual LLVM IR to PTX or an AMDGPU
// object. Handles are `void *`. Everything is lazy: the library loads on the first call to
// `llvm()`, so importing this module never fails on a machine without LLVM.
import { existsSync } from "node:fs";
import { bindFirst, cString, loadFirst, type KoffiFn, type KoffiLib } from "../gpu-common/koffi.ts";

/** libLLVM (version 19) is not installed or does not export what we need. */
export class LLVMUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LLVMUnavailableError";
  }
}

/** LLVM rejected the input: a parse error, a verifier error, a pass or codegen failure. */
export class LLVMError extends Error {
  constructor(
    readonly stage: "parse" | "verify" | "target" | "passes" | "codegen" | "link",
    readonly llvmMessage: string,
  ) {
    super(`LLVM ${stage} error: ${llvmMessage.trim()}`);
    this.name = "LLVMError";
  }
}

/** Where to look for libLLVM 19; TKC_LIBLLVM, when set, is the only place looked at. */
export function libLLVMCandidates(): string[] {
  const env = process.env.TKC_LIBLLVM;
  if (env) return [env];
  const absolute = [
    "/usr/lib/llvm-19/lib/libLLVM.so.19.1",
    "/usr/lib/x86_64-linux-gnu/libLLVM.so.19.1",
    "/usr/lib/aarch64-linux-gnu/libLLVM.so.19.1",
  ].filter((p) => existsSync(p));
  // Bare names go through the dynamic loader's search path (LD_LIBRARY_PATH, ldconfig).
  return [...absolute, "libLLVM.so.19.1", "libLLVM-19.so"];
}

type Fn = KoffiFn;

/** The bound functions; names follow the C API without the LLVM prefix. */
export interface LLVMApi {
  lib: KoffiLib;
  ContextCreate: Fn;
  ContextDispose: Fn;
  CreateMemoryBufferWithMemoryRangeCopy: Fn;
  ParseIRInContext: Fn;
  VerifyModule: Fn;
  DisposeModule: Fn;
  GetTarget: Fn;
  SetTarget: Fn;
  SetModuleDataLayout: Fn;
  GetTargetFromTriple: Fn;
  CreateTargetMachine: Fn;
  DisposeTargetMachine: Fn;
  CreateTargetDataLayout: Fn;
  DisposeTargetData: Fn;
  CreatePassBuilderOptions: Fn;
  PassBuilderOptionsSetLoopVectorization: Fn;
  PassBuilderOptionsSetSLPVectorization: Fn;
  DisposePassBuilderOptions: Fn;
  RunPasses: Fn;
  GetErrorMessage: Fn;
  DisposeErrorMessage: Fn;
  TargetMachineEmitToMemoryBuffer: Fn;
  GetBufferStart: Fn;
  GetBufferSize: Fn;
  DisposeMemoryBuffer: Fn;
  PrintModuleToString: Fn;
  DisposeMessage: Fn;
}

let api: LLVMApi | undefined;

/** The bound API, with the NVPTX and AMDGPU targets initialized (once per process). */
export function llvm(): LLVMApi {
  if (api) return api;
  const lib = loadFirst(
    libLLVMCandidates(),
    (detail) =>
      new LLVMUnavailableError(
        `libLLVM 19 was not found (${detail}); install it with \`apt-get install llvm-19 lld-19\` ` +
          `or point TKC_LIBLLVM at libLLVM.so.19.1.`,
      ),
  );
  const f = (proto: string): Fn => {
    try {
      return bindFirst(lib, [proto]);
    } catch (e) {
      throw new LLVMUnavailableError(
        `the loaded libLLVM lacks a function tkc needs (is it LLVM 19?): ${(e as Error).message}`,
      );
    }
  };
  const a: LLVMApi = {
    lib,
    ContextCreate: f("void *LLVMContextCreate(void)"),
    ContextDispose: f("void LLVMContextDispose(void *C)"),
    CreateMemoryBufferWithMemoryRangeCopy: f(
      "void *LLVMCreateMemoryBufferWithMemoryRangeCopy(const char *data, size_t len, const char *name)",
    ),
    // Takes ownership of the memory buffer, whatever the outcome.
    ParseIRInContext: f("int LLVMParseIRInContext(void *C, void *buf, _Out_ void **M, _Out_ void **msg)"),
    VerifyModule: f("int LLVMVerifyModule(void *M, int action, _Out_ void **msg)"),
    DisposeModule: f("void LLVMDisposeModule(void *M)"),
    GetTarget: f("const char *LLVMGetTarget(void *M)"),
    SetTarget: f("void LLVMSetTarget(void *M, const char *triple)"),
    SetModuleDataLayout: f("void LLVMSetModuleDataLayout(void *M, void *DL)"),
    GetTargetFromTriple: f(
      "int LLVMGetTargetFromTriple(const char *triple, _Out_ void **T, _Out_ void **msg)",
    ),
    CreateTargetMachine: f(
      "void *LLVMCreateTargetMachine(void *T, const char *triple, const char *cpu, const char *features, int level, int reloc, int codeModel)",
    ),
    DisposeTargetMachine: f("void LLVMDisposeTargetMachine(void *TM)"),
    CreateTargetDataLayout: f("void *LLVMCreateTargetDataLayout(void *TM)"),
    DisposeTargetData: f("void LLVMDisposeTargetData(void *TD)"),
    CreatePassBuilderOptions: f("void *LLVMCreatePassBuilderOptions(void)"),
    PassBuilderOptionsSetLoopVectorization: f(
      "void LLVMPassBuilderOptionsSetLoopVectorization(void *O, int on)",
    ),
    PassBuilderOptionsSetSLPVectorization: f(
      "void LLVMPassBuilderOptionsSetSLPVectorization(void *O, int on)",
    ),
    DisposePassBuilderOptions: f("void LLVMDisposePassBuilderOptions(void *O)"),
    RunPasses: f("void *LLVMRunPasses(void *M, const char *passes, void *TM, void *O)"),
    GetErrorMessage: f("void *LLVMGetErrorMessage(void *err)"),
    DisposeErrorMessage: f("void LLVMDisposeErrorMessage(void *msg)"),
    TargetMachineEmitToMemoryBuffer: f(
      "int LLVMTargetMachineEmitToMemoryBuffer(void *TM, void *M, int fileType, _Out_ void **msg, _Out_ void **buf)",
    ),
    GetBufferStart: f("void *LLVMGetBufferStart(void *buf)"),
    GetBufferSize: f("size_t LLVMGetBufferSize(void *buf)"),
    DisposeMemoryBuffer: f("void LLVMDisposeMemoryBuffer(void *buf)"),
    PrintModuleToString: f("void *LLVMPrintModuleToString(void *M)"),
    DisposeMessage: f("void LLVMDisposeMessage(void *msg)"),
  };
  // Each target registers itself in LLVM's global registry; only the pieces codegen needs.
  for (const t of ["NVPTX", "AMDGPU"]) {
    for (const part of ["TargetInfo", "Target", "TargetMC", "AsmPrinter"])
      f(`void LLVMInitialize${t}${part}(void)`)();
  }
  api = a;
  return a;
}

/** Reads and frees an LLVM-owned message (`char *` from an out parameter). */
export function takeMessage(ptr: unknown): string {
  if (!ptr) return "";
  const s = cString(ptr);
  llvm().DisposeMessage(ptr);
  return s;
}

/** Reads and frees an LLVMErrorRef's message; null means success. */
export function takeError(err: unknown): string | undefined {
  if (!err) return undefined;
  const a = llvm();
  const msg = a.GetErrorMessage(err);
  const s = cString(msg);
  a.DisposeErrorMessage(msg);
  return s;
}
