/**
 * Runs loop IR on the CPU: binds arguments (checking dtypes and shapes, binding symbolic
 * dimensions), then calls the rendered JavaScript.
 */
import type { NDArray } from "../../dsl/ndarray.ts";
import { storageFor } from "../../dsl/ndarray.ts";
import type { PrimFunc } from "../../lower/ir/nodes.ts";
import { renderJs, type RenderOptions } from "./render.ts";
import { runtime } from "./semantics.ts";

export type KernelArgs = Readonly<Record<string, NDArray | number>>;

export interface CpuKernel {
  (args: KernelArgs): void;
  readonly func: PrimFunc;
  readonly source: string;
}

interface BoundArgs {
  buffers: Record<string, unknown>;
  scalars: Record<string, number>;
  symbols: Record<string, number>;
}

export function bindArgs(f: PrimFunc, args: KernelArgs): BoundArgs {
  const bound: BoundArgs = { buffers: {}, scalars: {}, symbols: {} };
  const symbolSource: Record<string, string> = {};
  for (const p of f.params) {
    const name = p.kind === "buffer" ? p.buffer.name : p.v.name;
    if (!(name in args)) throw new TypeError(`tkc: ${f.name}: missing argument ${name}`);
    const a = args[name]!;
    if (p.kind === "scalar") {
      if (typeof a !== "number")
        throw new TypeError(`tkc: ${f.name}: argument ${name} must be a number (${p.v.dtype})`);
      bound.scalars[name] = a;
      continue;
    }
    const buf = p.buffer;
    if (typeof a === "number" || !a.data)
      throw new TypeError(`tkc: ${f.name}: argument ${name} must be an NDArray`);
    if (a.dtype !== buf.dtype)
      throw new TypeError(
        `tkc: ${f.name}: argument ${name} has dtype ${a.dtype}, the kernel wants ${buf.dtype}`,
      );
    if (a.data.constructor !== storageFor(buf.dtype, 0).constructor)
      throw new TypeError(`tkc: ${f.name}: argument ${name}'s storage is a ${a.data.constructor.name}`);
    if (a.shape.length !== buf.shape.length)
      throw new TypeError(
        `tkc: ${f.name}: argument ${name} has rank ${a.shape.length}, the kernel wants ${buf.shape.length}`,
      );
    buf.shape.forEach((d, k) => {
      const actual = a.shape[k]!;
      if (d.kind === "const") {
        if (d.value !== actual)
          throw new TypeError(
            `tkc: ${f.name}: ${name}.shape[${k}] is ${actual}, the kernel wants ${d.value}`,
          );
      } else if (d.kind === "var") {
        const prev = bound.symbols[d.name];
        if (prev === undefined) {
          bound.symbols[d.name] = actual;
          symbolSource[d.name] = `${name}.shape[${k}]`;
        } else if (prev !== actual)
          throw new TypeError(
            `tkc: ${f.name}: ${name}.shape[${k}] is ${actual} but ${d.name} is ${prev} (from ${symbolSource[d.name]})`,
          );
      }
    });
    const expected = a.shape.reduce((x, y) => x * y, 1);
    if (a.data.length !== expected)
      throw new TypeError(
        `tkc: ${f.name}: argument ${name} holds ${a.data.length} elements, its shape needs ${expected}`,
      );
    bound.buffers[name] = a.data;
  }
  return bound;
}

/** Compiles IR for the CPU; needs no frontend (so GPU-machine runners can bundle it small). */
export function compileCpu(f: PrimFunc, opts: RenderOptions = {}): CpuKernel {
  const source = renderJs(f, opts);
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const body = new Function("args", "rt", source) as (args: BoundArgs, rt: typeof runtime) => void;
  const run = (args: KernelArgs) => body(bindArgs(f, args), runtime);
  return Object.assign(run, { func: f, source });
}
