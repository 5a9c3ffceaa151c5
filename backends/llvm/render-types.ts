/** LLVM types of tkc dtypes, and the dtype predicates the LLVM renderer's modules share. */
import { DTYPES, type DType } from "../../dsl/dtypes.ts";

export const llvmType = (d: DType): string =>
  ({
    f32: "float",
    f16: "half",
    bf16: "bfloat",
    i64: "i64",
    i32: "i32",
    u32: "i32",
    i8: "i8",
    u8: "i8",
    bool: "i1",
  })[d];
export const memType = (d: DType): string => (d === "bool" ? "i8" : llvmType(d));
export const isFloatT = (d: DType): boolean => DTYPES[d].kind === "float";
export const isUnsigned = (d: DType): boolean => DTYPES[d].kind === "uint" || d === "bool";

/** The overload suffix of an intrinsic on dtype d (llvm.fabs.f16, llvm.smin.i32, ...). */
export const ovl = (d: DType): string =>
  ({ f32: "f32", f16: "f16", bf16: "bf16" })[d as "f32"] ?? llvmType(d);
export const floatBits = (d: DType): number => (d === "f32" ? 32 : 16);
export const intBits = (d: DType): number => (d === "bool" ? 1 : DTYPES[d].bits);
