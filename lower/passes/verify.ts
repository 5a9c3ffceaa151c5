/**
 * Pass `verify`: checks the device IR contract (DEVICE_IR.md) that renderers rely on, so a pass
 * that breaks it fails here, with the offending node named, rather than in a renderer.
 */
import type { PrimFunc, Stmt } from "../ir/nodes.ts";
import { printExpr } from "../ir/printer.ts";
import { atomicAccesses, walk } from "../ir/transform.ts";
import { LoweringError } from "./errors.ts";

const fail = (why: string): never => {
  throw new LoweringError("verify", why);
};

function straightLine(s: Stmt): boolean {
  if (s.kind === "seq") return s.body.every(straightLine);
  if (s.kind === "let") return straightLine(s.body);
  return s.kind === "store";
}

export function verifyDeviceIR(f: PrimFunc): void {
  if (!f.launch) fail(`${f.name} has no launch configuration`);
  walk(f.body, (n) => {
    switch (n.kind) {
      case "block":
        return fail(`block ${JSON.stringify(n.name)} survived lowering`);
      case "for":
        if (n.forKind === "thread" || n.forKind === "unrolled")
          fail(
            `loop ${n.loopVar.name} is still ${n.forKind === "thread" ? `bound to ${n.thread}` : "unrolled"}`,
          );
        if (n.forKind === "vectorized") {
          const lanes = n.extent.kind === "const" ? n.extent.value : 0;
          if (!(lanes > 0 && (lanes & (lanes - 1)) === 0 && lanes <= 16))
            fail(`vectorized loop ${n.loopVar.name} has extent ${printExpr(n.extent)}`);
          if (!straightLine(n.body)) fail(`vectorized loop ${n.loopVar.name} is not straight-line code`);
        }
        return;
      case "load":
      case "store":
      case "prefetch":
        if (n.indices.length !== 1)
          fail(`an access to ${n.buffer.name} has ${n.indices.length} indices, not one flat index`);
        return;
      case "atomic":
        for (const a of atomicAccesses(n))
          if (a.indices.length !== 1)
            fail(
              `an atomic's access to ${a.buffer.name} has ${a.indices.length} indices, not one flat index`,
            );
        return;
      case "allocate":
        if (n.buffer.shape.length !== 1) fail(`allocation ${n.buffer.name} is not one-dimensional`);
        return;
      case "call":
        if ((n.name === "thread_id" || n.name === "block_id") && n.args[0]?.kind !== "const")
          fail(`${n.name} needs a constant axis, got ${printExpr(n.args[0]!)}`);
        return;
      default:
        return;
    }
  });
}
