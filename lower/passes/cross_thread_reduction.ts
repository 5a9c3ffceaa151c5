/**
 * Pass `cross_thread_reduction`: a reduction loop bound to threadIdx becomes per-thread partials
 * combined across the threads of the block (TVM's LowerThreadAllreduce).
 *
 * The pattern: under a loop L bound to threadIdx.a, a store `acc[I] = acc[I] op e` into a buffer
 * that lives outside L, at an index I free of the thread index (and of everything bound inside
 * L). Serially L accumulates every iteration into acc[I]; with one thread per iteration each
 * thread must accumulate into a partial of its own, and the partials are then combined:
 *
 * 1. before L, `acc_partial = identity(op)`; inside L, `acc_partial = acc_partial op e`;
 * 2. a butterfly of `shfl_xor(v, mask, warpSize)` over the lanes that differ only in the reduced
 *    index (when the block's extents are powers of two): every lane ends with its warp's total;
 * 3. when the reduced axis spans several warps: one lane per warp writes its total to shared
 *    memory, a barrier, then every thread combines the warp totals (the broadcast). Non power of
 *    two extents skip step 2 and combine all partials through shared memory;
 * 4. `acc[I] = acc[I] op total`: by every thread for a local acc (each thread has its own copy
 *    and reads it later), by the thread with index 0 along the axis for shared or global memory.
 *
 * The combination is emitted in blocks marked `all_threads` (device_ops.ts): thread_guards keeps
 * thread-dependent guards (a split's tail guard around a whole row, say) off them.
 *
 * A reduction over a loop bound to blockIdx is refused: blocks cannot combine results.
 */
import type {
  Block,
  Buffer,
  Expr,
  For,
  LaunchConfig,
  Load,
  PrimFunc,
  Stmt,
  Store,
  ThreadTag,
  Var,
} from "../ir/nodes.ts";
import {
  allocate,
  barrier,
  binary,
  buffer,
  call,
  constant,
  forLoop,
  ifThen,
  load,
  seq,
  store,
  variable,
} from "../ir/build.ts";
import { sameIndices } from "../ir/equal.ts";
import { printExpr } from "../ir/printer.ts";
import { rewriteStmt, walk } from "../ir/transform.ts";
import { allocatedIn, dependsOn, letsIn, loadsIn, storesIn } from "../schedule/analysis.ts";
import {
  matchReductionUpdate,
  reductionIdentity,
  whyNotReduction,
  type ReductionUpdate,
} from "../schedule/reduction.ts";
import { namesIn } from "../schedule/state.ts";
import { LoweringError } from "./errors.ts";
import { AXIS_OF, isBlockTag, requireLaunch } from "./launch.ts";
import type { Target } from "./target.ts";
import { ALL_THREADS, threadIndex } from "./device_ops.ts";

const P = "cross_thread_reduction";
const pow2 = (x: number): boolean => x > 0 && (x & (x - 1)) === 0;
const storeText = (s: Store): string =>
  `${s.buffer.name}${s.indices.map((i) => `[${printExpr(i)}]`).join("")}`;

/** Rebuilds a statement with its children mapped. */
function mapChildren(s: Stmt, fn: (c: Stmt) => Stmt): Stmt {
  switch (s.kind) {
    case "seq":
      return seq(s.body.map(fn));
    case "if": {
      const then = fn(s.then);
      return { ...s, then, ...(s.else ? { else: fn(s.else) } : {}) };
    }
    case "for":
    case "block":
    case "allocate":
    case "let":
      return { ...s, body: fn(s.body) };
    default:
      return s;
  }
}

const allThreads = (name: string, body: Stmt): Block => ({
  kind: "block",
  name,
  body,
  annotations: { [ALL_THREADS]: true },
});

interface Slot {
  readonly acc: Buffer;
  readonly indices: readonly Expr[];
  readonly op: ReductionUpdate["op"];
  readonly updates: ReductionUpdate[];
  partial?: Buffer;
}

class Lowering {
  private readonly used: Set<string>;

  constructor(
    f: PrimFunc,
    private readonly launch: LaunchConfig,
  ) {
    this.used = namesIn(f);
  }

  private fresh(base: string): string {
    let name = base;
    for (let n = 1; this.used.has(name); n++) name = `${base}_${n}`;
    this.used.add(name);
    return name;
  }

  visit(s: Stmt, active: ReadonlySet<ThreadTag>): Stmt {
    if (s.kind === "for" && s.forKind === "thread" && s.thread && !active.has(s.thread)) {
      const loop: For = { ...s, body: this.visit(s.body, new Set([...active, s.thread])) };
      return isBlockTag(s.thread) ? refuseBlockReduction(loop) : this.lowerLoop(loop, s.thread);
    }
    return mapChildren(s, (c) => this.visit(c, active));
  }

  /** The reduction slots of a thread loop, checked; empty when it reduces nothing. */
  private slots(L: For, tag: ThreadTag): Slot[] {
    const lets = letsIn(L.body);
    const threadVars: Var[] = [L.loopVar];
    const bound: Var[] = [L.loopVar, ...lets.keys()];
    walk(L.body, (n) => {
      if (n.kind === "for") bound.push(n.loopVar);
      if (n.kind === "for" && n.thread === tag) threadVars.push(n.loopVar);
    });
    const uses = (e: Expr, vs: readonly Var[]): boolean => vs.some((v) => dependsOn(e, v, lets));
    const inner = allocatedIn(L.body);
    const slots: Slot[] = [];
    for (const st of storesIn(L.body)) {
      if (inner.has(st.buffer) || st.indices.some((i) => uses(i, threadVars))) continue;
      const upd = matchReductionUpdate(st);
      if (!upd) {
        if (uses(st.value, threadVars))
          throw new LoweringError(
            P,
            `every thread of loop ${L.loopVar.name} (${tag}) writes ${storeText(st)}, with a value that depends on the thread: ${whyNotReduction(st)}`,
          );
        continue; // the same value from every thread: harmless
      }
      if (st.indices.some((i) => uses(i, bound)))
        throw new LoweringError(
          P,
          `the reduction into ${storeText(st)} under loop ${L.loopVar.name} (${tag}) has an index that changes inside the loop; only reductions into elements fixed outside the thread loop are combined across threads`,
        );
      let slot = slots.find((x) => x.acc === st.buffer && sameIndices(x.indices, st.indices));
      if (!slot) slots.push((slot = { acc: st.buffer, indices: st.indices, op: upd.op, updates: [] }));
      if (slot.op !== upd.op)
        throw new LoweringError(
          P,
          `${storeText(st)} is reduced with both ${slot.op} and ${upd.op} under loop ${L.loopVar.name}`,
        );
      slot.updates.push(upd);
    }
    // Any other access to a reduced buffer would see a partial value.
    const ownLoads = new Set<Load>();
    for (const sl of slots)
      for (const u of sl.updates) {
        const v = u.store.value as { a: Expr; b: Expr };
        for (const side of [v.a, v.b]) if (side.kind === "load" && side.buffer === sl.acc) ownLoads.add(side);
      }
    const reduced = new Set(slots.map((x) => x.acc));
    const updateStores = new Set(slots.flatMap((x) => x.updates.map((u) => u.store)));
    for (const ld of loadsIn(L.body))
      if (reduced.has(ld.buffer) && !ownLoads.has(ld))
        throw new LoweringError(
          P,
          `loop ${L.loopVar.name} (${tag}) reduces into ${ld.buffer.name} across threads but also reads ${ld.buffer.name}${ld.indices.map((i) => `[${printExpr(i)}]`).join("")}, which would be one thread's partial value`,
        );
    for (const st of storesIn(L.body))
      if (reduced.has(st.buffer) && !updateStores.has(st))
        throw new LoweringError(
          P,
          `loop ${L.loopVar.name} (${tag}) reduces into ${st.buffer.name} but also writes ${storeText(st)}`,
        );
    return slots;
  }

  private lowerLoop(L: For, tag: ThreadTag): Stmt {
    const slots = this.slots(L, tag);
    if (!slots.length) return L;
    const axis = AXIS_OF[tag];
    const byStore = new Map<Store, { slot: Slot; upd: ReductionUpdate }>();
    for (const sl of slots) {
      sl.partial = buffer(this.fresh(`${sl.acc.name}_partial`), sl.acc.dtype, [constant(1, "i32")], "local");
      for (const u of sl.updates) byStore.set(u.store, { slot: sl, upd: u });
    }
    const body = rewriteStmt(L.body, {
      stmt: (s) => {
        const hit = s.kind === "store" ? byStore.get(s) : undefined;
        if (!hit) return s;
        const p = hit.slot.partial!;
        return store(
          p,
          [constant(0, "i32")],
          binary(hit.upd.op, load(p, [constant(0, "i32")]), hit.upd.operand),
        );
      },
    });
    const inits = slots.map((sl) =>
      store(sl.partial!, [constant(0, "i32")], reductionIdentity(sl.op, sl.acc.dtype)),
    );
    const stmts: Stmt[] = [
      allThreads(this.fresh(`${slots[0]!.acc.name}_red_init`), seq(inits)),
      { ...L, body },
    ];
    for (const sl of slots) {
      stmts.push(allThreads(this.fresh(`${sl.acc.name}_allreduce`), this.allReduce(sl, axis)));
      const total = load(sl.partial!, [constant(0, "i32")]);
      const combine = store(sl.acc, sl.indices, binary(sl.op, load(sl.acc, sl.indices), total));
      stmts.push(
        sl.acc.scope === "local"
          ? combine
          : ifThen(binary("==", threadIndex(axis), constant(0, "i32")), combine),
      );
    }
    return slots.reduceRight<Stmt>((inner, sl) => allocate(sl.partial!, inner), seq(stmts));
  }

  /** Leaves the combination of every thread's partial along `axis` in each thread's partial. */
  private allReduce(sl: Slot, axis: number): Stmt {
    const { block, warpSize: W } = this.launch;
    const E = block[axis]!;
    const stride = block.slice(0, axis).reduce((a, b) => a * b, 1);
    const dtype = sl.acc.dtype;
    const p = sl.partial!;
    const zero = constant(0, "i32");
    const pv = load(p, [zero]);
    const masks: number[] = [];
    if (pow2(E) && pow2(stride) && pow2(W))
      for (let m = stride; m < stride * E && m < W; m *= 2) masks.push(m);
    const out: Stmt[] = masks
      .reverse()
      .map((m) =>
        store(
          p,
          [zero],
          binary(sl.op, pv, call("shfl_xor", [pv, constant(m, "i32"), constant(W, "i32")], dtype)),
        ),
      );
    const group = 2 ** masks.length; // lanes along the axis already combined
    if (group >= E) return seq(out);
    const warps = E / group;
    const others = [0, 1, 2].filter((b) => b !== axis && block[b]! > 1);
    let other: Expr = zero;
    let count = 1;
    for (const b of others) {
      other =
        count === 1
          ? threadIndex(b)
          : binary("+", other, binary("*", threadIndex(b), constant(count, "i32")));
      count *= block[b]!;
    }
    const scratch = buffer(
      this.fresh(`${sl.acc.name}_shared`),
      dtype,
      count > 1 ? [constant(count, "i32"), constant(warps, "i32")] : [constant(warps, "i32")],
      "shared",
    );
    const at = (w: Expr): Expr[] => (count > 1 ? [other, w] : [w]);
    const tid = threadIndex(axis);
    const write = store(scratch, at(group > 1 ? binary("floordiv", tid, constant(group, "i32")) : tid), pv);
    out.push(
      group > 1 ? ifThen(binary("==", binary("floormod", tid, constant(group, "i32")), zero), write) : write,
    );
    out.push(barrier("shared"));
    out.push(store(p, [zero], load(scratch, at(zero))));
    const w = variable(this.fresh("w"), "i32");
    out.push(
      forLoop(
        w,
        constant(1, "i32"),
        constant(warps - 1, "i32"),
        store(p, [zero], binary(sl.op, pv, load(scratch, at(w)))),
      ),
    );
    return allocate(scratch, seq(out));
  }
}

function refuseBlockReduction(L: For): For {
  const inner = allocatedIn(L.body);
  const lets = letsIn(L.body);
  const blockVars: Var[] = [L.loopVar];
  walk(L.body, (n) => {
    if (n.kind === "for" && n.thread === L.thread) blockVars.push(n.loopVar);
  });
  for (const st of storesIn(L.body)) {
    if (inner.has(st.buffer) || st.indices.some((i) => blockVars.some((v) => dependsOn(i, v, lets))))
      continue;
    if (matchReductionUpdate(st))
      throw new LoweringError(
        P,
        `loop ${L.loopVar.name} bound to ${L.thread} carries a reduction into ${storeText(st)}: thread blocks cannot combine their results; bind the reduction loop to threadIdx, or keep it serial inside a block`,
      );
  }
  return L;
}

export function crossThreadReductionPass(f: PrimFunc, _target?: Target): PrimFunc {
  const launch = requireLaunch(f, P);
  const body = new Lowering(f, launch).visit(f.body, new Set());
  return body === f.body ? f : { ...f, body };
}
