/**
 * A compiled kernel as the GPU runtimes launch it: the image (PTX or a code object), its ABI (the
 * parameter order the renderer chose), launch dimensions as expressions over the symbolic
 * dimensions, and which buffers it reads and writes. Artifacts are JSON, so they can be compiled
 * on one machine and run on another.
 */
import type { DType } from "../../dsl/dtypes.ts";
import { bytesOf } from "../../dsl/dtypes.ts";
import { storageFor, type NDArray } from "../../dsl/ndarray.ts";
import type { Expr, PrimFunc } from "../../lower/ir/nodes.ts";
import { evalInt } from "../../lower/ir/eval.ts";
import { walk } from "../../lower/ir/transform.ts";
import { f16 as f16Arg, f32 as f32Arg, i32 as i32Arg, u32 as u32Arg, type KernelArg } from "./args.ts";
import type { DevicePtr, GpuFunction, GpuModule, GpuRuntime, GpuStream } from "./runtime.ts";

export interface AbiEntry {
  readonly name: string;
  readonly kind: "buffer" | "scalar" | "symbol";
  readonly dtype: DType;
  /** Buffers: their shape (expressions over symbols, plain JSON). */
  readonly shape?: readonly Expr[];
  readonly reads?: boolean;
  readonly writes?: boolean;
}

export interface KernelArtifact {
  readonly name: string;
  readonly entry: string;
  readonly target: string;
  /** PTX text, or a base64 code object. */
  readonly image: string;
  readonly abi: readonly AbiEntry[];
  readonly launch: { readonly grid: readonly Expr[]; readonly block: readonly Expr[] };
  readonly sharedBytes: number;
  /**
   * Dynamic shared memory every launch requests (NVIDIA kernels whose shared buffers exceed 48 KB:
   * backends/llvm/render-shared.ts places them there); absent where all of it is static.
   */
  readonly dynamicSharedBytes?: number;
  readonly registers?: number;
}

/** Which parameter buffers a function reads and writes. */
export function bufferAccess(f: PrimFunc): Map<string, { reads: boolean; writes: boolean }> {
  const out = new Map<string, { reads: boolean; writes: boolean }>();
  for (const p of f.params) if (p.kind === "buffer") out.set(p.buffer.name, { reads: false, writes: false });
  walk(f.body, (n) => {
    if (n.kind === "load" && out.has(n.buffer.name)) out.get(n.buffer.name)!.reads = true;
    if (n.kind === "store" && out.has(n.buffer.name)) out.get(n.buffer.name)!.writes = true;
    if (n.kind === "atomic" && out.has(n.buffer.name)) out.set(n.buffer.name, { reads: true, writes: true });
  });
  return out;
}

/** Binds symbolic dimensions from argument shapes, checking dtypes and static dimensions. */
export function bindSymbols(
  art: KernelArtifact,
  shapes: Readonly<Record<string, { dtype: DType; shape: readonly number[] }>>,
): Record<string, number> {
  const symbols: Record<string, number> = {};
  for (const a of art.abi) {
    if (a.kind !== "buffer") continue;
    const arg = shapes[a.name];
    if (!arg) throw new TypeError(`tkc: ${art.name}: missing argument ${a.name}`);
    if (arg.dtype !== a.dtype)
      throw new TypeError(`tkc: ${art.name}: ${a.name} has dtype ${arg.dtype}, the kernel wants ${a.dtype}`);
    const dims = a.shape ?? [];
    if (dims.length !== arg.shape.length)
      throw new TypeError(
        `tkc: ${art.name}: ${a.name} has rank ${arg.shape.length}, the kernel wants ${dims.length}`,
      );
    dims.forEach((d, k) => {
      const actual = arg.shape[k]!;
      if (d.kind === "const") {
        if (d.value !== actual)
          throw new TypeError(
            `tkc: ${art.name}: ${a.name}.shape[${k}] is ${actual}, the kernel wants ${d.value}`,
          );
      } else if (d.kind === "var") {
        if (symbols[d.name] !== undefined && symbols[d.name] !== actual)
          throw new TypeError(
            `tkc: ${art.name}: ${a.name}.shape[${k}] is ${actual} but ${d.name} is ${symbols[d.name]}`,
          );
        symbols[d.name] = actual;
      }
    });
  }
  return symbols;
}

/**
 * The kernel's entry in a loaded module, opted in to the dynamic shared memory its launches
 * request (CUDA allows 48 KB without).
 */
export function kernelFunction(mod: GpuModule, art: KernelArtifact): GpuFunction {
  const fn = mod.getFunction(art.entry);
  if (art.dynamicSharedBytes) fn.setMaxDynamicSharedMemory(art.dynamicSharedBytes);
  return fn;
}

/** Grid, block and dynamic shared memory of a launch, for the symbols' values. */
export function launchConfig(art: KernelArtifact, symbols: Readonly<Record<string, number>>) {
  const ev = (e: Expr) => Math.max(1, evalInt(e, symbols));
  return {
    sharedBytes: art.dynamicSharedBytes ?? 0,
    grid: [ev(art.launch.grid[0]!), ev(art.launch.grid[1]!), ev(art.launch.grid[2]!)] as [
      number,
      number,
      number,
    ],
    block: [ev(art.launch.block[0]!), ev(art.launch.block[1]!), ev(art.launch.block[2]!)] as [
      number,
      number,
      number,
    ],
  };
}

export function scalarArg(dtype: DType, v: number): KernelArg {
  switch (dtype) {
    case "f32":
      return f32Arg(v);
    case "f16":
      return f16Arg(v);
    case "u32":
      return u32Arg(v);
    case "i32":
      return i32Arg(v);
    default:
      throw new TypeError(`tkc: scalar kernel arguments of dtype ${dtype} are not supported yet`);
  }
}

/** The kernel argument list in ABI order. */
export function kernelArgs(
  art: KernelArtifact,
  buffers: Readonly<Record<string, DevicePtr>>,
  scalars: Readonly<Record<string, number>>,
  symbols: Readonly<Record<string, number>>,
): KernelArg[] {
  return art.abi.map((a) => {
    if (a.kind === "buffer") {
      const p = buffers[a.name];
      if (p === undefined) throw new TypeError(`tkc: ${art.name}: no device buffer for ${a.name}`);
      return p;
    }
    if (a.kind === "symbol") return i32Arg(symbols[a.name]!);
    const v = scalars[a.name];
    if (v === undefined) throw new TypeError(`tkc: ${art.name}: missing scalar ${a.name}`);
    return scalarArg(a.dtype, v);
  });
}

/**
 * Runs a kernel once on host arrays: uploads what it reads, fills what it only writes with 0xFF
 * bytes (NaN for floats) so an element the kernel forgets shows up, launches, and downloads every
 * buffer into fresh arrays.
 */
export function runOnce(
  rt: GpuRuntime,
  fn: GpuFunction,
  art: KernelArtifact,
  args: Readonly<Record<string, NDArray | number>>,
  stream?: GpuStream,
): Record<string, NDArray | number> {
  const shapes: Record<string, NDArray> = {};
  const scalars: Record<string, number> = {};
  for (const [k, v] of Object.entries(args)) {
    if (typeof v === "number") scalars[k] = v;
    else shapes[k] = v;
  }
  const symbols = bindSymbols(art, shapes);
  const ptrs: Record<string, DevicePtr> = {};
  try {
    for (const a of art.abi) {
      if (a.kind !== "buffer") continue;
      const arr = shapes[a.name]!;
      const bytes = Math.max(16, arr.data.length * bytesOf(a.dtype));
      const p = rt.alloc(bytes);
      ptrs[a.name] = p;
      if (a.reads || !a.writes) rt.upload(p, arr.data);
      else rt.memset8(p, 0xff, bytes);
    }
    rt.launch(fn, kernelArgs(art, ptrs, scalars, symbols), { ...launchConfig(art, symbols), stream });
    rt.synchronize();
    const out: Record<string, NDArray | number> = { ...scalars };
    for (const a of art.abi) {
      if (a.kind !== "buffer") continue;
      const arr = shapes[a.name]!;
      const data = storageFor(a.dtype, arr.data.length);
      rt.download(data, ptrs[a.name]!);
      out[a.name] = { dtype: a.dtype, shape: [...arr.shape], data };
    }
    return out;
  } finally {
    for (const p of Object.values(ptrs)) rt.free(p);
  }
}
