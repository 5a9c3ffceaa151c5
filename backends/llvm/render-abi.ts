/**
 * A kernel's LLVM signature (backends/llvm/ABI.md): its buffers as global pointers, then its
 * scalars, then its symbolic sizes as i32, in this order, with the LLVM value each is named by
 * in the body.
 */
import type { DType } from "../../dsl/dtypes.ts";
import type { Buffer, PrimFunc, Var } from "../../lower/ir/nodes.ts";
import { llvmType } from "./render-types.ts";

/** One kernel parameter in ABI order. */
export interface LLVMAbiEntry {
  readonly name: string;
  readonly kind: "buffer" | "scalar" | "symbol";
  readonly dtype: DType;
}

export interface KernelSignature {
  /** The parameter list's entries, as `define` takes them. */
  readonly params: readonly string[];
  readonly abi: readonly LLVMAbiEntry[];
  /** The LLVM value naming each buffer (a global pointer) and each scalar or symbol. */
  readonly buffers: ReadonlyMap<Buffer, string>;
  readonly vars: ReadonlyMap<Var, string>;
}

const valueName = (name: string): string => name.replace(/[^A-Za-z0-9_]/g, "_");

export function kernelSignature(fn: PrimFunc): KernelSignature {
  const params: string[] = [];
  const abi: LLVMAbiEntry[] = [];
  const buffers = new Map<Buffer, string>();
  const vars = new Map<Var, string>();
  for (const p of fn.params) {
    if (p.kind === "buffer") {
      const n = `%${valueName(p.buffer.name)}`;
      params.push(`ptr addrspace(1) align 16 ${n}`);
      buffers.set(p.buffer, n);
      abi.push({ name: p.buffer.name, kind: "buffer", dtype: p.buffer.dtype });
    } else {
      const n = `%${valueName(p.v.name)}`;
      params.push(`${llvmType(p.v.dtype)} ${n}`);
      vars.set(p.v, n);
      abi.push({ name: p.v.name, kind: "scalar", dtype: p.v.dtype });
    }
  }
  for (const s of fn.symbols) {
    const n = `%sym.${valueName(s.name)}`;
    params.push(`i32 ${n}`);
    vars.set(s, n);
    abi.push({ name: s.name, kind: "symbol", dtype: "i32" });
  }
  return { params, abi, buffers, vars };
}

/** The kernel's LLVM function name. */
export const kernelName = (fn: PrimFunc): string => valueName(fn.name);
