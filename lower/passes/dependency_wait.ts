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
 * Then the trigger that lets the next kernel launch (`launchDependents()`, a barrier of scope
 * "dependents"): right after the wait, or (LaunchConfig.dependentsLaunch) first ("start"), before
 * the first statement that stores to global memory, found the same way ("epilogue"), or nowhere
 * ("exit").
 * Elsewhere (CPU, ROCm, Vulkan) kernels are launched one after another and nothing is placed.
 */
import { barrier, seq } from "../ir/build.ts";
import type { Node, PrimFunc, Stmt } from "../ir/nodes.ts";
import { someNode } from "../ir/transform.ts";
import { invariantBufferNames } from "./launch.ts";
import type { Target } from "./target.ts";

const WAIT = barrier("grid");
const TRIGGER = barrier("dependents");

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
  const storesGlobal = (n: Node): boolean =>
    someNode(n, (x) => (x.kind === "store" || x.kind === "atomic") && x.buffer.scope === "global");
  const mode = f.launch?.dependentsLaunch;
  // The trigger for the next kernel: right after the wait by default, first at "start", before
  // the first global store at "epilogue", none at "exit" (blocks trigger as they exit).
  const wait = mode === undefined ? seq([WAIT, TRIGGER]) : WAIT;
  const waited =
    hasPrefetch(f.body) || invariant.size ? placeBefore(f.body, wait, touchesGlobal) : seq([wait, f.body]);
  if (mode === "start") return { ...f, body: seq([TRIGGER, waited]) };
  return { ...f, body: mode === "epilogue" ? placeBefore(waited, TRIGGER, storesGlobal) : waited };
}

/**
 * `marker` before the first statement of s for which `at` holds, found by descending through lets,
 * allocations and sequences only (so that every thread runs it exactly once, never inside a loop
 * or a branch); at the end where none does.
 */
function placeBefore(s: Stmt, marker: Stmt, at: (n: Node) => boolean): Stmt {
  switch (s.kind) {
    case "let":
      return at(s.value) ? seq([marker, s]) : { ...s, body: placeBefore(s.body, marker, at) };
    case "allocate":
      return { ...s, body: placeBefore(s.body, marker, at) };
    case "seq": {
      const i = s.body.findIndex(at);
      if (i < 0) return seq([...s.body, marker]);
      return seq([...s.body.slice(0, i), placeBefore(s.body[i]!, marker, at), ...s.body.slice(i + 1)]);
    }
    default:
      return at(s) ? seq([marker, s]) : seq([s, marker]);
  }
}

const hasPrefetch = (s: Stmt): boolean => someNode(s, (x) => x.kind === "prefetch");
