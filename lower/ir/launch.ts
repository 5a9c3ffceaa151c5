/**
 * The launch configuration of a device-IR function: for each of blockIdx.x/y/z and threadIdx.x/y/z,
 * the extent of the loops bound to it (the largest when several loops bind one tag with constant
 * extents; symbolic extents must agree). Unbound axes have extent 1.
 */
import * as B from "./build.ts";
import type { Expr, PrimFunc, Stmt } from "./nodes.ts";
import { printExpr } from "./printer.ts";
import { someNode, walk } from "./transform.ts";

export interface LaunchDims {
  readonly grid: readonly [Expr, Expr, Expr];
  readonly block: readonly [Expr, Expr, Expr];
}

/**
 * Why scheduled loop IR (threadIdx-bound loops, no launch yet) cannot be rendered as it is, or
 * undefined: its threads share memory, and only the lowering (lower/passes/pipeline.ts lowerToDevice) puts the barriers
 * that order their accesses; rendered directly they would race.
 */
export function unloweredSharing(f: PrimFunc): string | undefined {
  if (f.launch) return undefined;
  let shared: string | undefined;
  walk(f.body, (n) => {
    if (n.kind === "allocate" && n.buffer.scope === "shared") shared ??= n.buffer.name;
  });
  const threads = someNode(f.body, (n) => n.kind === "for" && n.thread?.startsWith("threadIdx") === true);
  return shared === undefined || !threads
    ? undefined
    : `kernel ${f.name} is scheduled loop IR whose threads share ${shared}: lower it first (lowerToDevice), whose barriers pass orders their shared-memory accesses`;
}

export function launchDims(f: PrimFunc): LaunchDims {
  const found = new Map<string, Expr>();
  const visit = (s: Stmt): void => {
    if (s.kind === "for" && s.forKind === "thread" && s.thread) {
      const prev = found.get(s.thread);
      if (!prev) found.set(s.thread, s.extent);
      else if (prev.kind === "const" && s.extent.kind === "const") {
        if (s.extent.value > prev.value) found.set(s.thread, s.extent);
      } else if (printExpr(prev) !== printExpr(s.extent))
        throw new Error(
          `tkc: ${s.thread} is bound to loops of different extents (${printExpr(prev)} and ${printExpr(s.extent)}) in ${f.name}`,
        );
    }
    if (s.kind === "seq") s.body.forEach(visit);
    else if (s.kind === "if") {
      visit(s.then);
      if (s.else) visit(s.else);
    } else if ("body" in s) visit(s.body as Stmt);
  };
  visit(f.body);
  const get = (tag: string): Expr => found.get(tag) ?? B.i32c(1);
  return {
    grid: [get("blockIdx.x"), get("blockIdx.y"), get("blockIdx.z")],
    block: [get("threadIdx.x"), get("threadIdx.y"), get("threadIdx.z")],
  };
}
