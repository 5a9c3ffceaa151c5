/**
 * IR to JSON and back. Variables and buffers become tables referenced by id, so identity survives
 * the round trip. Kernels shipped as compiled JavaScript (no TypeScript source, no types) carry
 * their lowered IR in this form (see lowerKernel's `.tkc.json` lookup).
 */
import type { Buffer, Expr, PrimFunc, Var } from "./nodes.ts";
import { freshId } from "./build.ts";

interface VarJson {
  name: string;
  dtype: Var["dtype"];
}
interface BufferJson {
  name: string;
  dtype: Buffer["dtype"];
  shape: unknown[];
  scope: Buffer["scope"];
  allocShape?: unknown[];
}
export interface FuncJson {
  format: "tkc-ir";
  version: 1;
  vars: Record<string, VarJson>;
  buffers: Record<string, BufferJson>;
  func: unknown;
}

export function funcToJson(f: PrimFunc): FuncJson {
  const vars: Record<string, VarJson> = {};
  const buffers: Record<string, BufferJson> = {};
  const enc = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(enc);
    // JSON has no NaN or infinities; constants such as f32(-Infinity) need them.
    if (typeof x === "number" && !Number.isFinite(x)) return { $num: String(x) };
    if (x === null || typeof x !== "object") return x;
    const node = x as { kind?: string };
    if (node.kind === "var" && "id" in node) {
      const v = x as Var;
      vars[v.id] ??= { name: v.name, dtype: v.dtype };
      return { $var: v.id };
    }
    if (node.kind === "buffer" && "scope" in node) {
      const b = x as Buffer;
      if (!buffers[b.id]) {
        buffers[b.id] = { name: b.name, dtype: b.dtype, shape: [], scope: b.scope };
        buffers[b.id]!.shape = b.shape.map(enc);
        if (b.allocShape) buffers[b.id]!.allocShape = b.allocShape.map(enc);
      }
      return { $buffer: b.id };
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) out[k] = enc(v);
    return out;
  };
  return { format: "tkc-ir", version: 1, vars, buffers, func: enc(f) };
}

export function funcFromJson(json: FuncJson): PrimFunc {
  if (json?.format !== "tkc-ir" || json.version !== 1)
    throw new Error("tkc: not a tkc IR file (format tkc-ir, version 1)");
  const vars = new Map<string, Var>();
  const buffers = new Map<string, Buffer>();
  const dec = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(dec);
    if (x === null || typeof x !== "object") return x;
    const o = x as Record<string, unknown>;
    if ("$num" in o) return Number(o.$num);
    if ("$var" in o) {
      const id = String(o.$var);
      let v = vars.get(id);
      if (!v) {
        const j = json.vars[id];
        if (!j) throw new Error(`tkc: IR file refers to an unknown variable ${id}`);
        vars.set(id, (v = { kind: "var", name: j.name, dtype: j.dtype, id: freshId() }));
      }
      return v;
    }
    if ("$buffer" in o) {
      const id = String(o.$buffer);
      let b = buffers.get(id);
      if (!b) {
        const j = json.buffers[id];
        if (!j) throw new Error(`tkc: IR file refers to an unknown buffer ${id}`);
        b = {
          kind: "buffer",
          name: j.name,
          dtype: j.dtype,
          shape: j.shape.map(dec) as Expr[],
          scope: j.scope,
          id: freshId(),
          ...(j.allocShape ? { allocShape: j.allocShape.map(dec) as Expr[] } : {}),
        };
        buffers.set(id, b);
      }
      return b;
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) out[k] = dec(v);
    return out;
  };
  return dec(json.func) as PrimFunc;
}
