/**
 * Pass `dependency_wait` (CUDA only): places the wait for the previous grid in the stream
 * (`waitForPreviousGrid()`, a barrier of scope "grid"). Programmatic dependent launch (sm_90)
 * starts a kernel while the one before it still runs; every thread must wait before it touches
 * global memory, which the previous kernel may still be writing (or reading, for a buffer this one
 * overwrites). What comes before the wait overlaps the previous kernel's tail: the L2 prefetches a
 * kernel issues first (`prefetchL2`, of weights no kernel writes) are why the wait can move.
 *
 * The wait goes after the leading statements that touch no global memory except by prefetch or
 * by loads of buffers no kernel writes (the schedule's INVARIANT_BUFFERS annotation: weights,
 * whose first tiles a GEMV can load into registers while the previous kernel finishes), found by
 * descending through lets, allocations and sequences only, so every thread runs it exactly once
 * (never inside a loop or a branch). A kernel with neither waits first.
 * Elsewhere (CPU, ROCm, Vulkan) kernels are launched one after another and nothing is placed.
 */
import { barrier, seq } from "../ir/build.ts";
import type { Node, PrimFunc, Stmt } from "../ir/nodes.ts";
import { someNode } from "../ir/transform.ts";
import { invariantBufferNames } from "./launch.ts";
import type { Target } from "./target.ts";

const WAIT = barrier("grid");

export function dependencyWaitPass(f: PrimFunc, target: Target): PrimFunc {
  if (target.kind !== "cuda") return f;
  const invariant = new Set(invariantBufferNames(f));
  // Whether n loads or stores global memory another kernel may write (a prefetch does neither).
  const touchesGlobal = (n: Node): boolean =>
    someNode(
      n,
      (x) =>
        (x.kind === "load" || x.kind === "store" || x.kind === "atomic") &&
        x.buffer.scope === "global" &&
        !(x.kind === "load" && invariant.has(x.buffer.name)),
    );
  const placeWait = (s: Stmt): Stmt => {
    switch (s.kind) {
      case "let":
        return touchesGlobal(s.value) ? seq([WAIT, s]) : { ...s, body: placeWait(s.body) };
      case "allocate":
        return { ...s, body: placeWait(s.body) };
      case "seq": {
        const i = s.body.findIndex(touchesGlobal);
        if (i < 0) return seq([...s.body, WAIT]);
        return seq([...s.body.slice(0, i), placeWait(s.body[i]!), ...s.body.slice(i + 1)]);
      }
      default:
        return touchesGlobal(s) ? seq([WAIT, s]) : seq([s, WAIT]);
    }
  };
  return { ...f, body: hasPrefetch(f.body) || invariant.size ? placeWait(f.body) : seq([WAIT, f.body]) };
}

const hasPrefetch = (s: Stmt): boolean => someNode(s, (x) => x.kind === "prefetch");
