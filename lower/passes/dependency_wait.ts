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
 * whose first tiles a GEMV can load into registers while the previous kernel finishes) or whose
 * elements the previous kernel writes the kernel reads again after the wait (PRELOADED_BUFFERS:
 * the decode attention's KV cache), found by
 * descending through lets, allocations and sequences only, so every thread runs it exactly once
 * (never inside a loop or a branch). A kernel with neither waits first.
 * Elsewhere (CPU, ROCm, Vulkan) kernels are launched one after another and nothing is placed.
 */
import { barrier, seq } from "../ir/build.ts";
import type { Node, PrimFunc, Stmt } from "../ir/nodes.ts";
import { someNode } from "../ir/transform.ts";
import { earlyLoadBufferNames } from "./launch.ts";
import type { Target } from "./target.ts";

const WAIT = barrier("grid");

export function dependencyWaitPass(f: PrimFunc, target: Target): PrimFunc {
  if (target.kind !== "cuda") return f;
  const invariant = new Set(earlyLoadBufferNames(f));
  // Whether n loads or stores global memory another kernel may write (a prefetch does neither).
  const touchesGlobal = (n: Node): boolean =>
    someNode(
      n,
      (x) =>
        (x.kind === "load" || x.kind === "store") &&
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
  const waited = hasPrefetch(f.body) || invariant.size ? placeWait(f.body) : seq([WAIT, f.body]);
  return { ...f, body: placeTrigger(waited, invariant, f.name) };
}

/**
 * Where a kernel lets the next one launch (TKC_TRIGGER, read when kernels are lowered):
 * "wait" (the default) right after its wait; "loads" after the last statement of its spine that
 * loads a buffer no kernel writes (a GEMV's last weights), when that comes after the wait; "exit"
 * nowhere (the next kernel launches once every block has exited). TKC_TRIGGER_FIRST and
 * TKC_TRIGGER_EXIT name kernels (name prefixes, comma-separated) that trigger before their wait or
 * at exit. Experiments of the seventeenth session: every placement but the default measured slower
 * in the 7B decode step (bench/results/decode-session17-experiments-h100.json).
 */
function placeTrigger(body: Stmt, invariant: ReadonlySet<string>, name: string): Stmt {
  const first = (process.env.TKC_TRIGGER_FIRST ?? "").split(",").filter(Boolean);
  if (first.some((p) => name.startsWith(p))) return seq([TRIGGER, body]);
  const atExit = (process.env.TKC_TRIGGER_EXIT ?? "").split(",").filter(Boolean);
  const policy = atExit.some((p) => name.startsWith(p)) ? "exit" : (process.env.TKC_TRIGGER ?? "wait");
  if (policy === "exit") return body;
  const isWait = (n: Node) => n.kind === "barrier" && n.scope === "grid";
  const marks = (n: Node): boolean =>
    someNode(
      n,
      (x) =>
        isWait(x) ||
        (policy === "loads" &&
          x.kind === "load" &&
          x.buffer.scope === "global" &&
          invariant.has(x.buffer.name)),
    );
  const after = (s: Stmt): Stmt => {
    switch (s.kind) {
      case "let":
        return { ...s, body: marks(s.body) ? after(s.body) : seq([TRIGGER, s.body]) };
      case "allocate":
        return { ...s, body: after(s.body) };
      case "seq": {
        let i = s.body.length - 1;
        while (i >= 0 && !marks(s.body[i]!)) i--;
        if (i < 0) return s;
        return seq([...s.body.slice(0, i), after(s.body[i]!), ...s.body.slice(i + 1)]);
      }
      default:
        return seq([s, TRIGGER]);
    }
  };
  return after(body);
}

const TRIGGER = barrier("dependents");

const hasPrefetch = (s: Stmt): boolean => someNode(s, (x) => x.kind === "prefetch");
