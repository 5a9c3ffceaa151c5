/**
 * Reduction primitives: rfactor and decomposeReduction, and the reduction-update recogniser that
 * the cross-thread reduction pass (lower/passes/cross_thread_reduction.ts) shares.
 *
 * A reduction here is a store `acc[I] = acc[I] op e` (or `e op acc[I]`) with op one of
 * + * min max & | ^ and e not reading acc: the loops around it whose variables I does not use are
 * its reduction loops. The frontend writes a reduction's init as a block of its own
 * (`let s = f32(0)` gives block "s"), so a reduction block normally holds only the update.
 *
 * A block that initialises itself (what rfactor makes) holds the init first, guarded by the
 * first iteration of its reduction loops, then the update — TVM's lowered form of a block init:
 *
 *     block "s_rf" {
 *       if (k_0 == 0) { s_rf[k_1][0] = f32(0); }
 *       if (k_0 * 4 + k_1 < 37) { s_rf[k_1][0] = s_rf[k_1][0] + x[k_0 * 4 + k_1]; }
 *     }
 *
 * decomposeReduction(block, loop) moves that init out, before `loop`, in copies of the spatial
 * loops between `loop` and the block.
 */
import { DTYPES, type DType } from "../../dsl/dtypes.ts";
import type {
  Block,
  Buffer,
  Expr,
  For,
  IfThenElse,
  LetStmt,
  PrimFunc,
  Stmt,
  Store,
  Var,
} from "../ir/nodes.ts";
import {
  allocate,
  binary,
  block,
  buffer,
  constant,
  ifThen,
  load,
  seq,
  store,
  sub,
  variable,
} from "../ir/build.ts";
import { sameIndices } from "../ir/equal.ts";
import { printExpr } from "../ir/printer.ts";
import { substitute, walk } from "../ir/transform.ts";
import { blocksUnder, dependsOn, letsIn, loadsIn, storesIn } from "./analysis.ts";
import { ScheduleError } from "./errors.ts";
import { freshNames } from "./loop_transformation.ts";
import { registerPrimitives, type PrimitiveResult } from "./registry.ts";
import { blockPath, loopPath, replaceStmt } from "./state.ts";

export type ReduceOp = "+" | "*" | "min" | "max" | "&" | "|" | "^";
const REDUCE_OPS: ReadonlySet<string> = new Set(["+", "*", "min", "max", "&", "|", "^"]);

export interface ReductionUpdate {
  readonly store: Store;
  readonly op: ReduceOp;
  /** The side that is not the accumulator. */
  readonly operand: Expr;
}

const readsBuffer = (e: Expr, b: Buffer): boolean => loadsIn(e).some((l) => l.buffer === b);

/** `acc[I] = acc[I] op e` or `acc[I] = e op acc[I]`, with e free of acc; else undefined. */
export function matchReductionUpdate(st: Store): ReductionUpdate | undefined {
  const v = st.value;
  if (v.kind !== "binary" || !REDUCE_OPS.has(v.op)) return undefined;
  const isAcc = (e: Expr): boolean =>
    e.kind === "load" && e.buffer === st.buffer && sameIndices(e.indices, st.indices);
  const op = v.op as ReduceOp;
  if (isAcc(v.a) && !readsBuffer(v.b, st.buffer)) return { store: st, op, operand: v.b };
  if (isAcc(v.b) && !readsBuffer(v.a, st.buffer)) return { store: st, op, operand: v.a };
  return undefined;
}

/** Why a store is not a reduction update, for refusals. */
export function whyNotReduction(st: Store): string {
  const text = `${st.buffer.name}${st.indices.map((i) => `[${printExpr(i)}]`).join("")} = ${printExpr(st.value)}`;
  const v = st.value;
  if (!readsBuffer(v, st.buffer)) return `${text} does not read ${st.buffer.name}: it is not an update`;
  if (v.kind === "binary" && !REDUCE_OPS.has(v.op))
    return `${text} combines with ${v.op}, which is not associative and commutative (reductions use +, *, min, max, &, |, ^)`;
  return `${text} is not of the form acc = acc op e with e free of ${st.buffer.name} (op one of +, *, min, max, &, |, ^)`;
}

/** The value x with x op y === y for every y of the dtype. */
export function reductionIdentity(op: ReduceOp, dtype: DType): Expr {
  const kind = DTYPES[dtype].kind;
  const bits = DTYPES[dtype].bits;
  const [lo, hi] =
    kind === "float"
      ? [-Infinity, Infinity]
      : kind === "bool"
        ? [0, 1]
        : kind === "uint"
          ? [0, 2 ** bits - 1]
          : [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1];
  const allOnes = kind === "uint" || kind === "bool" ? hi : -1;
  const value = { "+": 0, "*": 1, min: hi, max: lo, "&": allOnes, "|": 0, "^": 0 }[op];
  return constant(value, dtype);
}

/** The single store of a block with no loops inside, or a refusal. */
function onlyStore(b: Block, primitive: string): Store {
  const stores = storesIn(b.body);
  let loops = 0;
  walk(b.body, (n) => {
    if (n.kind === "for") loops++;
  });
  if (stores.length !== 1 || loops > 0)
    throw new ScheduleError(
      primitive,
      `block ${JSON.stringify(b.name)} holds ${stores.length} stores${loops ? ` and ${loops} loops` : ""}; it needs exactly one store (the reduction update)`,
    );
  return stores[0]!;
}

const conj = (cs: readonly Expr[]): Expr | undefined =>
  cs.length === 0 ? undefined : cs.slice(1).reduce((a, c) => binary("&&", a, c), cs[0]!);

function rfactor(f: PrimFunc, loopName: string): PrimitiveResult {
  const P = "rfactor";
  const { loop: r } = loopPath(f, loopName, P);
  const blocks = blocksUnder(r.body);
  if (blocks.length !== 1)
    throw new ScheduleError(
      P,
      `loop ${loopName} holds ${blocks.length} blocks; rfactor needs the loop of exactly one reduction block`,
    );
  const B = blocks[0]!;
  if (B.body.kind === "seq" && storesIn(B.body).some((s) => !matchReductionUpdate(s)))
    throw new ScheduleError(
      P,
      `block ${JSON.stringify(B.name)} initialises itself; decomposeReduction it first`,
    );
  const S = onlyStore(B, P);
  const upd = matchReductionUpdate(S);
  if (!upd)
    throw new ScheduleError(P, `block ${JSON.stringify(B.name)} is not a reduction: ${whyNotReduction(S)}`);
  const acc = S.buffer;
  const path = blockPath(f, B.name, P).path;
  // The reduction's scope starts below acc's allocation (or at the function body for a param).
  const allocAt = path.findIndex((s) => s.kind === "allocate" && s.buffer === acc);
  const scope = path.slice(allocAt + 1, -1);
  if (!scope.includes(r))
    throw new ScheduleError(
      P,
      `${acc.name} is allocated inside loop ${loopName}, so every iteration has its own: nothing to factor`,
    );
  const lets = letsIn(f.body);
  const indexUses = (v: Var): boolean => S.indices.some((i) => dependsOn(i, v, lets));
  if (indexUses(r.loopVar))
    throw new ScheduleError(
      P,
      `loop ${loopName} indexes ${acc.name}${S.indices.map((i) => `[${printExpr(i)}]`).join("")}: it is a spatial loop of block ${JSON.stringify(B.name)}, not a reduction loop`,
    );
  const top = scope.findIndex((s) => s.kind === "for" && !indexUses(s.loopVar));
  const nest = scope.slice(top);
  nest.forEach((s, k) => {
    const next = nest[k + 1] ?? B;
    const onlyChild =
      (s.kind === "for" || s.kind === "let" || (s.kind === "if" && !s.else)) &&
      (s.kind === "if" ? s.then : s.body) === next;
    if (!onlyChild)
      throw new ScheduleError(
        P,
        `the loops from ${(nest[0] as For).loopVar.name} down to block ${JSON.stringify(B.name)} are not one perfect nest (a ${s.kind} holds other statements); rfactor needs the block alone in its reduction loops`,
      );
  });
  const loops = nest.filter((s): s is For => s.kind === "for");
  const spatial = loops.filter((l) => indexUses(l.loopVar));
  const kept = loops.filter((l) => l === r || spatial.includes(l));
  const dropped = loops.filter((l) => !kept.includes(l));
  for (const l of kept)
    for (const d of dropped)
      if (dependsOn(l.min, d.loopVar) || dependsOn(l.extent, d.loopVar))
        throw new ScheduleError(
          P,
          `the range of loop ${l.loopVar.name} depends on reduction loop ${d.loopVar.name}`,
        );

  const names = freshNames(f, [`${acc.name}_rf`, `${B.name}_rf`, ...kept.map((l) => l.loopVar.name)]);
  const rfAxes = [r, ...spatial];
  const rf = buffer(
    names[0]!,
    acc.dtype,
    rfAxes.map((l) => l.extent),
    "local",
  );
  const rfIdx = rfAxes.map((l) => sub(l.loopVar, l.min));
  // The rf block: init at the first iteration of the other reduction loops, then the update under
  // the guards the nest had (moved inside, so the init never sits under a guard).
  const first = conj(dropped.map((l) => binary("==", l.loopVar, l.min)));
  const init = store(rf, rfIdx, reductionIdentity(upd.op, acc.dtype));
  const update = store(rf, rfIdx, binary(upd.op, load(rf, rfIdx), upd.operand));
  let guarded: Stmt = replaceStmt({ ...f, body: B.body }, S, update).body;
  for (const s of [...nest].reverse()) if (s.kind === "if") guarded = ifThen(s.cond, guarded);
  let rfNest: Stmt = block(names[1]!, seq([first ? ifThen(first, init) : init, guarded]));
  for (const s of [...nest].reverse())
    if (s.kind === "for" || s.kind === "let") rfNest = { ...(s as For | LetStmt), body: rfNest };
  // The write-back: B reduces over rf in copies of the kept loops.
  const fresh = new Map<Var, Expr>(kept.map((l, k) => [l.loopVar, variable(names[k + 2]!, l.loopVar.dtype)]));
  const I = S.indices.map((i) => substitute(substitute(i, lets), fresh));
  const wbIdx = rfIdx.map((i) => substitute(i, fresh));
  let wb: Stmt = { ...B, body: store(acc, I, binary(upd.op, load(acc, I), load(rf, wbIdx))) };
  for (const l of [...kept].reverse())
    wb = {
      ...l,
      loopVar: fresh.get(l.loopVar) as Var,
      min: substitute(l.min, fresh),
      extent: substitute(l.extent, fresh),
      body: wb,
    };
  const replaced = allocate(rf, seq([rfNest, wb]));
  return { func: replaceStmt(f, nest[0]!, replaced), result: names[1]! };
}

/** The conjuncts `v == e` of an init guard, or undefined when it has another shape. */
function firstIterationVars(cond: Expr): Map<Var, Expr> | undefined {
  if (cond.kind === "binary" && cond.op === "&&") {
    const a = firstIterationVars(cond.a);
    const b = firstIterationVars(cond.b);
    return a && b ? new Map([...a, ...b]) : undefined;
  }
  if (cond.kind === "binary" && cond.op === "==" && cond.a.kind === "var") return new Map([[cond.a, cond.b]]);
  return undefined;
}

function decomposeReduction(f: PrimFunc, blockName: string, loopName: string): PrimitiveResult {
  const P = "decomposeReduction";
  const { block: B, path } = blockPath(f, blockName, P);
  const { loop: L } = loopPath(f, loopName, P);
  const at = path.indexOf(L);
  if (at < 0)
    throw new ScheduleError(P, `loop ${loopName} does not enclose block ${JSON.stringify(blockName)}`);
  const parts = B.body.kind === "seq" ? B.body.body : [B.body];
  const head = parts[0]!;
  const initStore =
    head.kind === "store"
      ? head
      : head.kind === "if" && !head.else && head.then.kind === "store"
        ? head.then
        : undefined;
  const rest = parts.slice(1);
  const updates = storesIn(seq(rest)).filter((s) => initStore && s.buffer === initStore.buffer);
  if (
    !initStore ||
    readsBuffer(initStore.value, initStore.buffer) ||
    !updates.some((u) => sameIndices(u.indices, initStore.indices) && matchReductionUpdate(u))
  )
    throw new ScheduleError(
      P,
      `block ${JSON.stringify(blockName)} does not initialise itself (its first statement is not an init store followed by the update); the frontend writes inits as blocks of their own, so there is nothing to decompose`,
    );
  const cond = (head as IfThenElse).cond;
  const firsts = head.kind === "if" ? firstIterationVars(cond) : new Map<Var, Expr>();
  if (!firsts)
    throw new ScheduleError(
      P,
      `the init of block ${JSON.stringify(blockName)} runs under ${printExpr(cond)}, not a first-iteration test (v == min && ...)`,
    );
  const loops = path.filter((s): s is For => s.kind === "for");
  for (const [v, e] of firsts) {
    const l = loops.find((x) => x.loopVar === v);
    if (!l || printExpr(l.min) !== printExpr(e))
      throw new ScheduleError(
        P,
        `the init runs when ${v.name} == ${printExpr(e)}, which is not the first iteration of an enclosing loop`,
      );
    if (path.indexOf(l) < at)
      throw new ScheduleError(
        P,
        `the init runs on the first iteration of loop ${v.name}, which encloses ${loopName}: decompose at ${v.name} or further out`,
      );
  }
  const lets = letsIn(f.body);
  const I = initStore.indices.map((i) => substitute(i, lets));
  const below = path.slice(at, -1);
  const spatial: For[] = [];
  for (const s of below) {
    if (s.kind === "if")
      throw new ScheduleError(
        P,
        `block ${JSON.stringify(blockName)} runs under the condition ${printExpr(s.cond)} inside ${loopName}; its init cannot move out of it`,
      );
    if (s.kind !== "for" || firsts.has(s.loopVar)) continue;
    if (!I.some((i) => dependsOn(i, s.loopVar)))
      throw new ScheduleError(
        P,
        `loop ${s.loopVar.name} lies between ${loopName} and block ${JSON.stringify(blockName)} but neither indexes ${initStore.buffer.name} nor is a reduction loop of the init: the init runs on each of its iterations`,
      );
    spatial.push(s);
  }
  const v0 = substitute(initStore.value, lets);
  if ([...firsts.keys()].some((v) => dependsOn(v0, v)))
    throw new ScheduleError(P, `the init value ${printExpr(initStore.value)} depends on a reduction loop`);
  const names = freshNames(f, [`${blockName}_init`, ...spatial.map((l) => `${l.loopVar.name}_init`)]);
  const fresh = new Map<Var, Expr>(
    spatial.map((l, k) => [l.loopVar, variable(names[k + 1]!, l.loopVar.dtype)]),
  );
  let initNest: Stmt = block(
    names[0]!,
    store(
      initStore.buffer,
      I.map((i) => substitute(i, fresh)),
      substitute(v0, fresh),
    ),
  );
  for (const l of [...spatial].reverse())
    initNest = {
      ...l,
      loopVar: fresh.get(l.loopVar) as Var,
      min: substitute(l.min, fresh),
      extent: substitute(l.extent, fresh),
      body: initNest,
    };
  const g = replaceStmt(f, B, { ...B, body: seq(rest) });
  const L2 = loopPath(g, loopName, P).loop;
  return { func: replaceStmt(g, L2, seq([initNest, L2])), result: names[0]! };
}

registerPrimitives({ rfactor, decomposeReduction });
export { rfactor, decomposeReduction };
