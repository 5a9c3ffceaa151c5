/** The device-level operations passes introduce (thread and block indices), and shared markers. */
import type { Expr } from "../ir/nodes.ts";
import { binary, call, constant } from "../ir/build.ts";

export const threadIndex = (axis: number): Expr => call("thread_id", [constant(axis, "i32")], "i32");
export const blockIndex = (axis: number): Expr => call("block_id", [constant(axis, "i32")], "i32");

/** `thread_id(a) == 0 && ...` for each of `axes` (non-empty): the single-writer guard. */
export const firstThreadOf = (axes: readonly number[]): Expr =>
  axes.map((a) => binary("==", threadIndex(a), constant(0, "i32"))).reduce((x, y) => binary("&&", x, y));

/** The axis of a threadIndex(axis) call; undefined for any other expression. */
export const threadAxisOf = (e: Expr): number | undefined =>
  e.kind === "call" && e.name === "thread_id" && e.args[0]?.kind === "const" ? e.args[0].value : undefined;

/**
 * Annotation on the blocks cross_thread_reduction emits for the combination (partial init,
 * shuffles, shared memory, barrier): every thread of the block must run them, even one that a
 * guard excludes from the reduction itself; thread_guards keeps them out of thread-dependent
 * guards. (Blocks, and with them this mark, are gone after flatten.)
 */
export const ALL_THREADS = "all_threads";
