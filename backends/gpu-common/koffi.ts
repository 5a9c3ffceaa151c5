// Lazy access to koffi and to native libraries.
//
// Nothing here runs at import time: importing a backend must never fail on a machine without a
// GPU, LLVM or even koffi's native module. Errors are one sentence saying what is missing and how
// to get it, because the usual reader is someone who just ran a command on a fresh machine.
import { createRequire } from "node:module";
import type * as KoffiNs from "koffi";

export type Koffi = typeof KoffiNs;
export type KoffiLib = ReturnType<Koffi["load"]>;
export type KoffiFn = ReturnType<KoffiLib["func"]>;

/** A native library (or koffi itself) could not be loaded. `what` names it. */
export class NativeLibraryUnavailableError extends Error {
  constructor(
    readonly what: string,
    message: string,
  ) {
    super(message);
    this.name = "NativeLibraryUnavailableError";
  }
}

let koffiCache: Koffi | undefined;

/** koffi, loaded on first use (createRequire so that an esbuild bundle resolves it at run time). */
export function koffi(): Koffi {
  if (koffiCache) return koffiCache;
  const nodeRequire = createRequire(import.meta.url);
  try {
    koffiCache = nodeRequire("koffi") as Koffi;
  } catch (e) {
    throw new NativeLibraryUnavailableError(
      "koffi",
      `koffi (the FFI module every native backend uses) could not be loaded: ${firstLine(e)}; ` +
        `run \`npm install koffi@2\` (or copy koffi's package folder next to the bundle).`,
    );
  }
  return koffiCache;
}

/**
 * Loads the first library of `candidates` that opens. Throws `makeError(detail)` when none does,
 * detail naming what was tried and the loader's last complaint, so each backend words its own
 * install hint around it.
 */
export function loadFirst(candidates: readonly string[], makeError: (detail: string) => Error): KoffiLib {
  const k = koffi();
  let last = "no candidates";
  for (const path of candidates) {
    try {
      return k.load(path);
    } catch (e) {
      last = firstLine(e).replace(/^Failed to load shared library: /, "");
    }
  }
  throw makeError(`tried ${candidates.join(", ")}: ${last}`);
}

/** Binds the first of several symbol names that exists (for `_v2` entry points). */
export function bindFirst(lib: KoffiLib, prototypes: readonly string[]): KoffiFn {
  let err: unknown;
  for (const p of prototypes) {
    try {
      return lib.func(p);
    } catch (e) {
      err = e;
    }
  }
  throw new Error(`none of these symbols is exported: ${prototypes.join(" | ")} (${firstLine(err)})`);
}

/** Reads a NUL-terminated C string at a native pointer (null gives ""; a string passes through). */
export function cString(ptr: unknown): string {
  if (ptr === null || ptr === undefined) return "";
  if (typeof ptr === "string") return ptr;
  return koffi().decode(ptr, "char", -1) as string;
}

/** Copies `size` bytes at a native pointer into a fresh Uint8Array owned by JS. */
export function copyBytes(ptr: unknown, size: number): Uint8Array {
  if (size === 0) return new Uint8Array(0);
  return new Uint8Array(koffi().view(ptr, size)).slice();
}

export function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n")[0] ?? msg;
}
