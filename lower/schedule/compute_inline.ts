/**
 * Inlining stages: computeInline folds an elementwise producer into the loads of its consumers;
 * reverseComputeInline folds an elementwise consumer into the store of its producer. Both drop
 * the intermediate buffer (registered by compute_at.ts, the family's file).
 *
 * Moving an expression in time is safe when nothing it reads changes in between: no store to
 * those buffers may lie between the two places in their shared sequence, and when a loop around
 * both repeats them, the intermediate buffer must be private to one iteration of it (allocated
 * inside) or the loop must not write what the expression reads.
 */
import * as B from "../ir/build.ts";
import type { Block, Buffer, Expr, Load, PrimFunc, Stmt, Store, Var } from "../ir/nodes.ts";
import { printExpr } from "../ir/printer.ts";
import { collectVars, rewriteExpr, rewriteStmt, substitute } from "../ir/transform.ts";
import { sameExpr } from "../ir/equal.ts";
import { accessesIn, loadsIn, storesIn } from "./analysis.ts";
import { siblings, whoAccesses, type Siblings } from "./stage.ts";
import { ScheduleError } from "./errors.ts";
import { blockPath, type Path } from "./state.ts";

const isParam = (f: PrimFunc, b: Buffer): boolean =>
  f.params.some((p) => p.kind === "buffer" && p.buffer === b);

function singleStore(P: string, block: Block): Store {
  if (block.body.kind === "store") return block.body;
  const n = storesIn(block.body).length;
  throw new ScheduleError(
    P,
    `block ${block.name} holds ${n === 1 ? "a store under other statements" : `${n} stores`}; only a block that is a single store can be inlined`,
  );
}

/** The variables an index tuple consists of, when each index is a distinct loop variable around `path`. */
function indexVars(indices: readonly Expr[], path: Path): Var[] | undefined {
  const loopVars = new Set(path.flatMap((s) => (s.kind === "for" ? [s.loopVar] : [])));
  const vars = indices.map((i) => (i.kind === "var" && loopVars.has(i) ? i : undefined));
  if (vars.some((v) => !v) || new Set(vars).size !== vars.length) return undefined;
  return vars as Var[];
}

/** The statements (with their ancestors) whose own expressions load `buf`. */
function loadSites(root: Stmt, buf: Buffer): Stmt[][] {
  const out: Stmt[][] = [];
  const path: Stmt[] = [];
  const visit = (s: Stmt): void => {
    path.push(s);
    const own: Expr[] =
      s.kind === "for"
        ? [s.min, s.extent]
        : s.kind === "store"
          ? [...s.indices, s.value]
          : s.kind === "if"
            ? [s.cond]
            : s.kind === "let"
              ? [s.value]
              : [];
    if (own.some((e) => loadsIn(e).some((l) => l.buffer === buf))) out.push([...path]);
    if (s.kind === "seq") s.body.forEach(visit);
    else if (s.kind === "if") [s.then, ...(s.else ? [s.else] : [])].forEach(visit);
    else if ("body" in s) visit(s.body as Stmt);
    path.pop();
  };
  visit(root);
  return out;
}

/**
 * Checks that `value`, evaluated at the producer's place in sib.body[a] (as `store`), can be
 * evaluated at sib.body[b] instead, or the other way round: its variables and buffers are in
 * scope at both places and nothing between them writes what it reads.
 */
function checkMovable(
  P: string,
  f: PrimFunc,
  value: Expr,
  bound: readonly Var[],
  own: Store,
  sib: Siblings,
  inter: Buffer,
): void {
  const common = new Set<Var | Buffer>(f.symbols);
  for (const p of f.params) common.add(p.kind === "buffer" ? p.buffer : p.v);
  for (const s of sib.common) {
    if (s.kind === "for") common.add(s.loopVar);
    if (s.kind === "let") common.add(s.v);
    if (s.kind === "allocate") common.add(s.buffer);
  }
  for (const v of collectVars(value))
    if (!bound.includes(v) && !common.has(v))
      throw new ScheduleError(P, `${printExpr(value)} uses ${v.name}, which is not in scope at both places`);
  const reads = new Set(loadsIn(value).map((l) => l.buffer));
  const span = sib.body.slice(sib.a, sib.b + 1);
  const interAlloc = sib.common.findIndex((s) => s.kind === "allocate" && s.buffer === inter);
  for (const x of reads) {
    if (!common.has(x))
      throw new ScheduleError(P, `${printExpr(value)} reads ${x.name}, which is not in scope at both places`);
    const writer = span.flatMap((s) => storesIn(s)).find((s) => s.buffer === x && s !== own);
    if (writer)
      throw new ScheduleError(
        P,
        `${printExpr(value)} reads ${x.name}, which is written (${x.name}[...] = ${printExpr(writer.value)}) in between`,
      );
    // A loop around both that rewrites x: values of `inter` from an earlier iteration would change.
    sib.common.forEach((s, k) => {
      if (s.kind === "for" && k > interAlloc && storesIn(s).some((st) => st.buffer === x && st !== own))
        throw new ScheduleError(
          P,
          `${printExpr(value)} reads ${x.name}, which loop ${s.loopVar.name} around both rewrites while ${inter.name} outlives its iterations`,
        );
    });
  }
}

/** Drops loops and blocks left empty and allocations of `buf`. */
function cleanup(f: PrimFunc, buf: Buffer): PrimFunc {
  const body = rewriteStmt(f.body, {
    stmt: (s) => {
      if (s.kind === "seq") return B.seq(s.body);
      if ((s.kind === "for" || s.kind === "let" || s.kind === "block") && B.isNop(s.body)) return B.nop();
      if (s.kind === "allocate" && s.buffer === buf) return s.body;
      return s;
    },
  });
  return { ...f, body };
}

export function computeInline(f: PrimFunc, blockName: string): { func: PrimFunc } {
  const P = "computeInline";
  const { block, path: bp } = blockPath(f, blockName, P);
  const st = singleStore(P, block);
  const buf = st.buffer;
  if (isParam(f, buf))
    throw new ScheduleError(
      P,
      `block ${blockName} writes parameter ${buf.name}: a global output cannot be inlined away`,
    );
  if (loadsIn(st.value).some((l) => l.buffer === buf))
    throw new ScheduleError(P, `block ${blockName} is a reduction: ${buf.name} is read in its own value`);
  const writers = accessesIn(f.body).filter((a) => a.kind === "store" && a.buffer === buf && a.node !== st);
  if (writers.length)
    throw new ScheduleError(
      P,
      `${buf.name} is also written by block ${writers[0]!.block ?? "(none)"}; inlining block ${blockName} would drop that`,
    );
  const vars = indexVars(st.indices, bp);
  if (!vars)
    throw new ScheduleError(
      P,
      `block ${blockName} stores ${buf.name} at [${st.indices.map((i) => printExpr(i)).join(", ")}], not at distinct loop variables`,
    );
  for (const site of loadSites(f.body, buf)) {
    const sib = siblings(P, bp, site, `block ${blockName} and a reader of ${buf.name}`);
    if (sib.a > sib.b)
      throw new ScheduleError(
        P,
        `${buf.name} is read before block ${blockName} writes it, at ${whoAccesses(sib.body[sib.b]!, buf, "load") ?? "?"}`,
      );
    checkMovable(P, f, st.value, vars, st, sib, buf);
  }
  const inline = (l: Load): Expr =>
    B.cast(buf.dtype, substitute(st.value, new Map(vars.map((v, d) => [v, l.indices[d]!]))));
  const body = rewriteStmt(f.body, {
    preStmt: (s) => (s === block ? B.nop() : undefined),
    expr: (e) => (e.kind === "load" && e.buffer === buf ? inline(e) : e),
  });
  return { func: cleanup({ ...f, body }, buf) };
}

export function reverseComputeInline(f: PrimFunc, blockName: string): { func: PrimFunc } {
  const P = "reverseComputeInline";
  const { block, path: cp } = blockPath(f, blockName, P);
  const cst = singleStore(P, block);
  const computed = new Set(storesIn(f.body).map((s) => s.buffer));
  const inputs = [...new Set(loadsIn(cst.value).map((l) => l.buffer))].filter(
    (b) => computed.has(b) && b !== cst.buffer,
  );
  if (inputs.length !== 1)
    throw new ScheduleError(
      P,
      inputs.length === 0
        ? `block ${blockName} reads no buffer computed in ${f.name}`
        : `block ${blockName} reads several computed buffers (${inputs.map((b) => b.name).join(", ")}); it can fold into one producer only`,
    );
  const buf = inputs[0]!;
  if (isParam(f, buf))
    throw new ScheduleError(P, `${buf.name} is a parameter: its values must still be written`);
  const writes = accessesIn(f.body).filter((a) => a.kind === "store" && a.buffer === buf);
  if (writes.length > 1)
    throw new ScheduleError(
      P,
      `${buf.name} is written by ${writes.map((w) => `block ${w.block ?? "(none)"}`).join(" and ")} (a reduction's init and update?); the producer cannot absorb block ${blockName}`,
    );
  const producerName = writes[0]!.block;
  if (producerName === undefined) throw new ScheduleError(P, `${buf.name} is written outside any block`);
  const { block: pblock, path: pp } = blockPath(f, producerName, P);
  const pst = singleStore(P, pblock);
  if (loadsIn(pst.value).some((l) => l.buffer === buf))
    throw new ScheduleError(
      P,
      `the producer ${producerName} is a reduction (it reads ${buf.name} in its own value); it cannot absorb block ${blockName}`,
    );
  if (loadsIn(cst.value).some((l) => l.buffer === cst.buffer) || cst.indices.some((i) => loadsIn(i).length))
    throw new ScheduleError(P, `block ${blockName} reads its own output or indexes through loads`);
  const others = accessesIn(f.body).filter(
    (a) => a.kind === "load" && a.buffer === buf && a.block !== blockName,
  );
  if (others.length)
    throw new ScheduleError(
      P,
      `${buf.name} is also read by block ${others[0]!.block ?? "(none)"}, which needs it kept`,
    );
  const reads = loadsIn(cst.value).filter((l) => l.buffer === buf);
  const uvars = indexVars(reads[0]!.indices, cp);
  if (!uvars || reads.some((l) => !l.indices.every((x, d) => x === uvars[d])))
    throw new ScheduleError(
      P,
      `block ${blockName} reads ${buf.name} at indices that are not a bijection of its loop variables`,
    );
  const pvars = indexVars(pst.indices, pp);
  if (!pvars)
    throw new ScheduleError(
      P,
      `the producer ${producerName} does not store ${buf.name} at distinct loop variables`,
    );
  const sib = siblings(P, pp, cp, `blocks ${producerName} and ${blockName}`);
  if (sib.a > sib.b)
    throw new ScheduleError(P, `block ${blockName} runs before its producer ${producerName}`);
  // The consumer's nest must be exactly its loops over buf's indices, with the producer's ranges.
  let nest: Stmt = sib.body[sib.b]!;
  const seen: Var[] = [];
  while (nest.kind === "for") {
    const d = uvars.indexOf(nest.loopVar);
    const ploop = pp.find((s) => s.kind === "for" && s.loopVar === pvars[d]);
    if (
      d < 0 ||
      !ploop ||
      ploop.kind !== "for" ||
      !sameExpr(ploop.min, nest.min) ||
      !sameExpr(ploop.extent, nest.extent)
    )
      throw new ScheduleError(
        P,
        `block ${blockName}'s loop ${nest.loopVar.name} does not run over ${buf.name}'s index as the producer's loop does`,
      );
    seen.push(nest.loopVar);
    nest = nest.body;
  }
  if (nest !== block || seen.length !== uvars.length)
    throw new ScheduleError(
      P,
      `block ${blockName} must sit alone in a nest over exactly ${buf.name}'s indices`,
    );
  const toP = new Map<Var, Expr>(uvars.map((u, d) => [u, pvars[d]!]));
  // What moves is the consumer's own arithmetic: its reads of buf become the producer's value.
  const moving = rewriteExpr(substitute(cst.value, toP), {
    expr: (e) => (e.kind === "load" && e.buffer === buf ? B.constant(0, buf.dtype) : e),
  });
  checkMovable(P, f, moving, pvars, pst, sib, buf);
  const out = cst.buffer;
  const user = sib.body
    .slice(sib.a, sib.b)
    .map((s) => whoAccesses(s, out, "any"))
    .find((x) => x);
  if (user)
    throw new ScheduleError(
      P,
      `${out.name} is also used between the producer and block ${blockName}, at ${user}`,
    );
  const value = rewriteExpr(substitute(cst.value, toP), {
    expr: (e) => (e.kind === "load" && e.buffer === buf ? B.cast(buf.dtype, pst.value) : e),
  });
  const merged: Block = {
    ...pblock,
    body: B.store(
      out,
      cst.indices.map((i) => substitute(i, toP)),
      value,
    ),
  };
  const body = rewriteStmt(f.body, {
    preStmt: (s) => (s === pblock ? merged : s === sib.body[sib.b] ? B.nop() : undefined),
  });
  return { func: cleanup({ ...f, body }, buf) };
}
