/**
 * `kernel(fn)` declares a kernel. It records where it was called, so the frontend can find the
 * function's typed source (ts-morph) in the user's own file; the function itself never runs.
 */
import { fileURLToPath } from "node:url";

export interface SourceSite {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

export interface KernelOptions {
  /**
   * Compile-time constants the kernel reads by name, for values known only at run time of the
   * host program (a closure over a factory's argument, say). Module-level `const`s with literal
   * initialisers need no entry here: the frontend evaluates them from source.
   */
  readonly consts?: Readonly<Record<string, number>>;
  /** The kernel's name in IR and artifacts; defaults to the function's name. */
  readonly name?: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type KernelFunction = (...args: any[]) => void;

export interface KernelDef<F extends KernelFunction = KernelFunction> {
  readonly kind: "kernel";
  readonly name: string;
  readonly fn: F;
  readonly site: SourceSite;
  readonly consts: Readonly<Record<string, number>>;
  /** The how-manieth kernel() call from its file: matches shipped IR when a bundler renamed the function. */
  readonly ordinal: number;
}

const callsPerFile = new Map<string, number>();

export function kernel<F extends KernelFunction>(fn: F, options: KernelOptions = {}): KernelDef<F> {
  if (typeof fn !== "function") throw new TypeError("tkc: kernel() takes a function");
  const site = callerSite(new Error().stack ?? "");
  const ordinal = callsPerFile.get(site.file) ?? 0;
  callsPerFile.set(site.file, ordinal + 1);
  return {
    ordinal,
    kind: "kernel",
    name: options.name ?? (fn.name || "kernel"),
    fn,
    site,
    consts: { ...(options.consts ?? {}) },
  };
}

/**
 * The same kernel source with other compile-time constants (a variant: tile sizes, warps per
 * block): `consts` take precedence over the module-level consts of the same names wherever the
 * kernel and its helpers read them, shapes of local and shared tensors included.
 */
export function withConsts<F extends KernelFunction>(
  def: KernelDef<F>,
  consts: Readonly<Record<string, number>>,
): KernelDef<F> {
  return { ...def, consts: { ...def.consts, ...consts } };
}

/**
 * Where kernel() was called: the frame after kernel's own. Bundled code (one file for everything)
 * has kernel() and its caller in the same file, so frames are told apart by function name too.
 * An unreadable stack gives an unknown site: lowering from source then says so, while kernels run
 * from shipped IR or compiled libraries never need the source.
 */
export function callerSite(stack: string): SourceSite {
  const frames = stack.split("\n").slice(1);
  const here = fileURLToPath(import.meta.url);
  let sawKernel = false;
  for (const frame of frames) {
    const m = /\(?((?:file:\/\/)?[^()\s]+?):(\d+):(\d+)\)?\s*$/.exec(frame.trim());
    if (!m) continue;
    let file = m[1]!;
    if (file.startsWith("file://")) file = fileURLToPath(file);
    if (/^at (kernel|callerSite) /.test(frame.trim())) {
      sawKernel = true;
      continue;
    }
    if ((!sawKernel && file === here) || file.startsWith("node:")) continue;
    return { file, line: Number(m[2]), column: Number(m[3]) };
  }
  return { file: "<unknown>", line: 0, column: 0 };
}
