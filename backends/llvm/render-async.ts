/**
 * Asynchronous copies from global to shared memory for the LLVM renderer (device IR stores marked
 * `async`, and the barriers "async_commit" / "async_wait"): on NVIDIA sm_80+ `cp.async` through
 * LLVM's intrinsics, which tell it that the copy writes shared memory and that a wait orders it
 * before later loads. 16 bytes go with `.cg` (cached in L2 only: streamed weights have no reuse in
 * L1), 4 and 8 with `.ca`, the only forms PTX has. Elsewhere (AMD, NVIDIA before sm_80) the
 * renderer loads and stores at once and the commits and waits are nothing.
 */
import { DTYPES } from "../../dsl/dtypes.ts";
import type { Barrier, Buffer, Expr, For, Stmt } from "../../lower/ir/nodes.ts";
import { printExpr } from "../../lower/ir/printer.ts";
import { isStmt, someNode, walk } from "../../lower/ir/transform.ts";
import { classifyVectorAccess } from "../../lower/passes/vectorize.ts";
import { letsIn } from "../../lower/schedule/analysis.ts";
import type { LLVMTarget } from "./target.ts";

/** What the copies need from the renderer: lines, declarations, addresses, its target. */
export interface AsyncCopyBuilder {
  readonly fl: { readonly target: LLVMTarget };
  emit(line: string): void;
  declare(text: string): void;
  address(buf: Buffer, indices: readonly Expr[]): { readonly ptr: string; readonly space: number };
}

/** Whether the target copies asynchronously (cp.async: sm_80 and later). */
export const hasAsyncCopy = (t: LLVMTarget): boolean =>
  t.kind === "nvptx" && Number(t.arch.replace(/\D/g, "")) >= 80;

/** The sizes one cp.async moves. */
export const ASYNC_COPY_BYTES: readonly number[] = [4, 8, 16];

/** An asynchronous store (a copy of `lanes` consecutive elements where a vectorized loop makes it). */
export function asyncStore(b: AsyncCopyBuilder, s: Extract<Stmt, { kind: "store" }>, lanes: number): void {
  const from = s.value as Extract<Expr, { kind: "load" }>;
  const dst = b.address(s.buffer, s.indices);
  const src = b.address(from.buffer, from.indices);
  asyncCopy(b, dst.ptr, src.ptr, (DTYPES[s.buffer.dtype].bits / 8) * lanes);
}

/** A commit or a wait: nothing where copies are plain loads and stores. */
export function asyncBarrier(b: AsyncCopyBuilder, s: Barrier): void {
  if (!hasAsyncCopy(b.fl.target)) return;
  if (s.scope === "async_commit") commitAsyncGroup(b);
  else waitAsyncGroups(b, s.pending ?? 0);
}

/** One thread's copy of `bytes` from `src` (global, address space 1) to `dst` (shared, 3). */
function asyncCopy(b: AsyncCopyBuilder, dst: string, src: string, bytes: number): void {
  if (!ASYNC_COPY_BYTES.includes(bytes))
    throw new Error(
      `tkc llvm: a thread's cp.async copies 4, 8 or 16 bytes, not ${bytes}: ${bytes < 4 ? "vectorize the copy's loop over consecutive elements (s.vectorize) to make 4 to 16 bytes" : "split its vectorized loop so that a lane group copies at most 16 bytes"}`,
    );
  const name = `llvm.nvvm.cp.async.${bytes === 16 ? "cg" : "ca"}.shared.global.${bytes}`;
  b.declare(`declare void @${name}(ptr addrspace(3), ptr addrspace(1))`);
  b.emit(`call void @${name}(ptr addrspace(3) ${dst}, ptr addrspace(1) ${src})`);
}

/** Closes this thread's copies since the last commit into a group. */
function commitAsyncGroup(b: AsyncCopyBuilder): void {
  b.declare("declare void @llvm.nvvm.cp.async.commit.group()");
  b.emit("call void @llvm.nvvm.cp.async.commit.group()");
}

/** Waits until at most `pending` of this thread's latest groups are in flight. */
function waitAsyncGroups(b: AsyncCopyBuilder, pending: number): void {
  b.declare("declare void @llvm.nvvm.cp.async.wait.group(i32)");
  b.emit(`call void @llvm.nvvm.cp.async.wait.group(i32 ${pending})`);
}

/**
 * The lane count of a vectorized loop of asynchronous copies, rendered as one cp.async of all its
 * lanes: it holds lets and one copyAsync only, and both sides step one element a lane from a
 * multiple of the lane count (vectorize.ts classifyVectorAccess), so the copy is contiguous and
 * aligned. Throws, naming the loop, where it is not so.
 */
export function asyncCopyLoopLanes(s: For): number {
  const lanes = (s.extent as { value: number }).value;
  let store: Extract<Stmt, { kind: "store" }> | undefined;
  let stores = 0;
  walk(s.body, (x) => {
    if (!isStmt(x)) return;
    if (x.kind === "store") {
      store = x;
      stores++;
    }
    if (
      (x.kind !== "let" && x.kind !== "seq" && x.kind !== "store") ||
      (x.kind === "store" && !x.async) ||
      stores > 1
    )
      throw new Error(
        `tkc llvm: vectorized loop ${s.loopVar.name} copies asynchronously (one cp.async for all its lanes), so it may hold that copyAsync and lets only: put its other statements in a loop of their own`,
      );
  });
  const from = store!.value as Extract<Expr, { kind: "load" }>;
  const lets = letsIn(s.body);
  for (const [what, index] of [
    [store!.buffer.name, store!.indices[0]!],
    [from.buffer.name, from.indices[0]!],
  ] as const) {
    const access = classifyVectorAccess(index, s.loopVar, lanes, lets);
    if (access.kind !== "contiguous" || !access.aligned)
      throw new Error(
        `tkc llvm: copyAsync over vectorized loop ${s.loopVar.name} needs ${what}'s elements consecutive from a multiple of ${lanes} (one cp.async of ${lanes} elements), got [${printExpr(index)}]: where a symbolic dimension leaves the start unknown, give the tensor a static inner dimension that is a multiple of ${lanes} (x: Tensor<f32, [Sym<"m">, Sym<"tiles">, 128]>) or specialize it`,
      );
  }
  return lanes;
}

/** Whether s holds an asynchronous copy. */
export const asyncStoreIn = (s: Stmt): boolean => someNode(s, (x) => x.kind === "store" && x.async === true);
