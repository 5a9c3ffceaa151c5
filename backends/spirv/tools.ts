// SPIR-V assembly text <-> words, and validation.
//
// Assembly and disassembly use the npm `spirv-tools` package (an emscripten build of Khronos
// SPIRV-Tools). Three quirks of that build are handled here (GUIDE section 3):
//  - On Node it cannot find its own .wasm file, so we read it and instantiate it ourselves,
//    synchronously, which also makes `assemble` a plain synchronous function.
//  - It installs process-wide `uncaughtException` / `unhandledRejection` handlers (the latter
//    aborts the WASM runtime); we remove exactly the listeners it added.
//  - On bad input it returns an empty result and prints the diagnostic through `printErr`; we
//    capture those lines and throw them as an Error. Its results are views into the WASM heap
//    that the next call overwrites, so they are copied out at once.
//  - Its heap is fixed at 16 MiB (the module declares that maximum): the unrolled text of a large
//    GEMV (4 MB) aborted it with "abort(OOM)", and an aborted instance fails every later call. We
//    drop an aborted instance (the next call gets a fresh one) and assemble such a module with
//    Debian's `spirv-as` instead, which the validator's package installs beside spirv-val.
// Validation runs Debian's `spirv-val`, which (unlike this WASM build) knows vulkan1.3.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Target environments the assembler knows (it decides the SPIR-V version in the header). */
export type AssembleEnv = "vulkan1.0" | "vulkan1.1" | "vulkan1.1spv1.4" | "vulkan1.2";
/** Target environments `spirv-val` is asked to check against. */
export type ValidateEnv = "vulkan1.0" | "vulkan1.1" | "vulkan1.1spv1.4" | "vulkan1.2" | "vulkan1.3";

interface SpirvToolsModule {
  as(input: string, env: number, options: number): Uint8Array;
  dis(input: Uint8Array, env: number, options: number): string;
  [constant: string]: unknown;
}

const ENV_CONSTANT: Record<AssembleEnv, string> = {
  "vulkan1.0": "SPV_ENV_VULKAN_1_0",
  "vulkan1.1": "SPV_ENV_VULKAN_1_1",
  "vulkan1.1spv1.4": "SPV_ENV_VULKAN_1_1_SPIRV_1_4",
  "vulkan1.2": "SPV_ENV_VULKAN_1_2",
};

let tools: SpirvToolsModule | undefined;
// Lines printed by the WASM module during the current call (diagnostics go through printErr).
let printed: string[] = [];

function load(): SpirvToolsModule {
  if (tools) return tools;
  const require = createRequire(import.meta.url);
  const jsPath = require.resolve("spirv-tools");
  const wasm = readFileSync(jsPath.replace(/\.js$/, "") + ".wasm");
  const factory = require("spirv-tools") as (m: object) => Promise<unknown>;
  const uncaught = new Set(process.listeners("uncaughtException"));
  const unhandled = new Set(process.listeners("unhandledRejection"));
  const module: Record<string, unknown> = {
    print: (s: string) => printed.push(s),
    printErr: (s: string) => printed.push(s),
    // Synchronous instantiation: emscripten calls this instead of fetching the .wasm itself.
    instantiateWasm(imports: WebAssembly.Imports, done: (i: WebAssembly.Instance) => void) {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(wasm), imports);
      done(instance);
      return instance.exports;
    },
  };
  try {
    // The factory fills in `module` in place; with synchronous instantiation it is ready on return.
    factory(module).catch(() => {});
  } finally {
    for (const l of process.listeners("uncaughtException")) {
      if (!uncaught.has(l)) process.removeListener("uncaughtException", l);
    }
    for (const l of process.listeners("unhandledRejection")) {
      if (!unhandled.has(l)) process.removeListener("unhandledRejection", l);
    }
  }
  if (typeof module.as !== "function" || typeof module.dis !== "function") {
    throw new Error(`spirv-tools (${jsPath}) did not initialize: ${printed.join("\n") || "no message"}`);
  }
  tools = module as unknown as SpirvToolsModule;
  return tools;
}

function constant(m: SpirvToolsModule, name: string): number {
  const v = m[name];
  if (typeof v !== "number") throw new Error(`spirv-tools lacks constant ${name}`);
  return v;
}

// Runs one call into the WASM module, collecting whatever it prints.
function call<T>(f: (m: SpirvToolsModule) => T): { result: T; messages: string[] } {
  const m = load();
  printed = [];
  try {
    return { result: f(m), messages: printed };
  } catch (e) {
    // An emscripten abort (out of heap, say) leaves the instance unusable: start over next time.
    tools = undefined;
    throw new WasmAbort([e instanceof Error ? e.message : String(e), ...printed].join("\n"));
  } finally {
    printed = [];
  }
}

/** The WASM module aborted (its runtime is gone; `call` dropped it). */
class WasmAbort extends Error {}

/**
 * Assembles SPIR-V text into words. Throws an Error carrying the assembler's message. A module too
 * large for the WASM build's heap is assembled by Debian's spirv-as.
 */
export function assemble(text: string, env: AssembleEnv = "vulkan1.2"): Uint32Array {
  if (!(env in ENV_CONSTANT)) {
    throw new Error(`assemble: unknown env "${env}" (known: ${Object.keys(ENV_CONSTANT).join(", ")})`);
  }
  let assembled: { result: Uint8Array; messages: string[] };
  try {
    assembled = call((m) => {
      const bytes = m.as(text, constant(m, ENV_CONSTANT[env]), constant(m, "SPV_TEXT_TO_BINARY_OPTION_NONE"));
      return bytes.slice(); // copy out of the WASM heap before anything else runs
    });
  } catch (e) {
    if (!(e instanceof WasmAbort)) throw e;
    return assembleWithCli(text, env, e.message);
  }
  const { result, messages } = assembled;
  if (result.length === 0 || messages.length > 0) {
    throw new Error(`SPIR-V assembly failed: ${messages.join("\n") || "empty result"}`);
  }
  return new Uint32Array(result.buffer, result.byteOffset, result.byteLength / 4);
}

/** spirv-as on `text`, for a module the WASM assembler aborted on (`why`). */
function assembleWithCli(text: string, env: AssembleEnv, why: string): Uint32Array {
  const dir = mkdtempSync(join(tmpdir(), "tkc-spirv-as-"));
  try {
    const src = join(dir, "module.spvasm");
    const out = join(dir, "module.spv");
    writeFileSync(src, text);
    const r = spawnSync("spirv-as", ["--target-env", env, "-o", out, src], { encoding: "utf8" });
    if (r.error || r.status !== 0) {
      const cause = r.error
        ? (r.error as NodeJS.ErrnoException).code === "ENOENT"
          ? "spirv-as was not found on PATH (apt-get install spirv-tools)"
          : r.error.message
        : `${r.stdout}${r.stderr}`.trim().replaceAll(src, "<module>");
      throw new Error(
        `SPIR-V assembly failed: the WASM assembler aborted on ${(text.length / 1e6).toFixed(1)} MB of text (${why.split("\n")[0]}), and spirv-as: ${cause}`,
      );
    }
    const bytes = readFileSync(out);
    return new Uint32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface DisassembleOptions {
  /** `%float` instead of `%12` (default true). */
  friendlyNames?: boolean;
  /** Align opcodes in a column (default true). */
  indent?: boolean;
  /** Keep the `; SPIR-V / ; Version` comment header (default false). */
  header?: boolean;
}

/** Disassembles words into SPIR-V text. Throws an Error carrying the disassembler's message. */
export function disassemble(words: Uint32Array, options: DisassembleOptions = {}): string {
  const { friendlyNames = true, indent = true, header = false } = options;
  const { result, messages } = call((m) => {
    let flags = 0;
    if (friendlyNames) flags |= constant(m, "SPV_BINARY_TO_TEXT_OPTION_FRIENDLY_NAMES");
    if (indent) flags |= constant(m, "SPV_BINARY_TO_TEXT_OPTION_INDENT");
    if (!header) flags |= constant(m, "SPV_BINARY_TO_TEXT_OPTION_NO_HEADER");
    const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
    return m.dis(bytes, constant(m, "SPV_ENV_UNIVERSAL_1_5"), flags);
  });
  if (messages.length > 0) throw new Error(`SPIR-V disassembly failed: ${messages.join("\n")}`);
  return result;
}

/** Thrown by `validate`; `log` is spirv-val's full output. */
export class SpirvValidationError extends Error {
  constructor(
    message: string,
    readonly log: string,
  ) {
    super(message);
    this.name = "SpirvValidationError";
  }
}

/**
 * Validates a module with Debian's `spirv-val` for a Vulkan target. Throws SpirvValidationError
 * with the validator's message when the module is invalid, or an Error if spirv-val is missing.
 */
export function validate(words: Uint32Array, env: ValidateEnv = "vulkan1.2"): void {
  const dir = mkdtempSync(join(tmpdir(), "tkc-spirv-"));
  const file = join(dir, "module.spv");
  try {
    writeFileSync(file, new Uint8Array(words.buffer, words.byteOffset, words.byteLength));
    const r = spawnSync("spirv-val", ["--target-env", env, file], { encoding: "utf8" });
    if (r.error) {
      const code = (r.error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") {
        throw new Error(
          "spirv-val was not found on PATH: install Debian's spirv-tools (apt-get install spirv-tools)",
        );
      }
      throw r.error;
    }
    const log = `${r.stdout}${r.stderr}`.trim().replaceAll(file, "<module>");
    if (r.status !== 0) {
      throw new SpirvValidationError(`SPIR-V validation (${env}) failed: ${log || `exit ${r.status}`}`, log);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
