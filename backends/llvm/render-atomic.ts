/**
 * Atomic additions for the LLVM renderer (the device IR's `atomic` statement, nodes.ts Atomic): a
 * monotonic `atomicrmw` (`fadd` for f32). On global memory it sits between two device-scope
 * fences: a release before (the block's earlier writes, ordered before it by a barrier, are
 * visible to whoever sees the update) and, when the old value is kept, an acquire after (what
 * other blocks published before their updates is visible to this thread's later reads, and
 * through the next barrier to the block's). In shared memory it is relaxed at block scope,
 * barriers ordering the rest. The flavour names the fences and scopes (flavor.ts).
 */
import type { DType } from "../../dsl/dtypes.ts";
import type { MathBuilder } from "./render-math.ts";
import { memType } from "./render-types.ts";

/**
 * Adds `value` (of dtype d) to the element at `at` in address space `at.space` and returns the old
 * value; `global` for a global buffer's element, `keepsOld` where the caller uses the result.
 */
export function atomicAdd(
  b: MathBuilder,
  at: { readonly ptr: string; readonly space: number },
  d: DType,
  value: string,
  {
    global,
    keepsOld,
    align,
  }: { readonly global: boolean; readonly keepsOld: boolean; readonly align: number },
): string {
  const op = d === "f32" ? "fadd" : "add";
  if (global) b.emit(b.fl.deviceFence("release"));
  const old = b.tmp("old");
  b.emit(
    `${old} = atomicrmw ${op} ptr addrspace(${at.space}) ${at.ptr}, ${memType(d)} ${value}${b.fl.atomicScope(global)} monotonic, align ${align}`,
  );
  // The acquire matters only to a thread that goes on by the value it read.
  if (global && keepsOld) b.emit(b.fl.deviceFence("acquire"));
  return old;
}
