/** What a kernel author imports. */
export * from "./types.ts";
export * from "./intrinsics.ts";
export { kernel, withConsts, type KernelDef, type KernelOptions } from "./kernel.ts";
export { type DType } from "./dtypes.ts";
export * from "./ndarray.ts";
