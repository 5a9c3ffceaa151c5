/**
 * tensorize: replaces a loop nest that does, lane by lane, what one tensor-core instruction does
 * for a whole warp, with that instruction (TVM's tensorize, matched against the intrinsic's
 * description).
 *
 * One intrinsic today, `mma_m16n8k16` (NVIDIA sm_80 and later: mma.sync.aligned.m16n8k16.row.col
 * .f32.f16.f16.f32): C[16 x 8] += A[16 x 16] B[16 x 8] for a warp, f16 operands, f32 accumulators.
 * The nest it replaces is written in the instruction's accumulator layout:
 *
 *   for (r < 4) for (kk < 16)
 *     C[c(r)] = C[c(r)] + f32(A[a0 + (lane >> 2) + 8 (r >> 1)][ak + kk]) * f32(B[b0 + 2 (lane & 3) + (r & 1)][bk + kk])
 *
 * where `lane` is a loop bound to threadIdx.x over exactly 32 lanes, C is local (four distinct
 * elements c(0..3) per lane, independent of kk) and A and B are f16 with rows along M and N (B is
 * the weight in [N, K] layout, the instruction's "col" operand). The rows and columns are checked
 * by evaluating the index expressions at every (lane, r, kk) for random values of every other
 * variable: an index that only looks right, or is right for some tiles, is refused.
 *
 * The replacement reads the four accumulators, gathers the lane's fragments (the eight elements of
 * A and four of B the instruction's register layout gives this lane, by substituting lane, r and
 * kk in the original loads) and stores the four fields of one `mma_m16n8k16` call. On the GPU that
 * is one instruction for the warp; the CPU device emulation (backends/cpu/device.ts) computes it
 * from the 32 lanes' fragments, so a wrong layout shows up as wrong numbers in the checks.
 */
import * as B from "../ir/build.ts";
import type { Buffer, Expr, For, Load, PrimFunc, Stmt, Var } from "../ir/nodes.ts";
import { sameExpr } from "../ir/equal.ts";
import { evalInt } from "../ir/eval.ts";
import { printExpr } from "../ir/printer.ts";
import { collectVars, substitute } from "../ir/transform.ts";
import { ScheduleError } from "./errors.ts";
import { registerPrimitives, type PrimitiveResult } from "./registry.ts";
import { freshName, loopPath, replaceStmt } from "./state.ts";

export const TENSOR_INTRINSICS = ["mma_m16n8k16"] as const;
export type TensorIntrinsic = (typeof TENSOR_INTRINSICS)[number];

const P = "tensorize";
const fail = (msg: string): never => {
  throw new ScheduleError(P, msg);
};

/** `for (v < extent) body`, with `body` unwrapped from a single block label. */
function loopOf(s: Stmt, extent: number, what: string): For {
  if (s.kind !== "for" || s.extent.kind !== "const" || s.extent.value !== extent || !B.isConst(s.min, 0))
    return fail(
      `${what} must be a loop from 0 to ${extent}, not ${s.kind === "for" ? `${printExpr(s.min)}..${printExpr(s.extent)}` : s.kind}`,
    );
  if (s.forKind === "thread" || s.forKind === "parallel" || s.forKind === "vectorized")
    fail(
      `${what} (${s.loopVar.name}) is ${s.forKind}; the intrinsic replaces it, so leave it serial or unrolled`,
    );
  return s;
}

const unblock = (s: Stmt): Stmt => (s.kind === "block" ? unblock(s.body) : s);

interface Update {
  readonly acc: Buffer;
  readonly accIndex: readonly Expr[];
  readonly a: Load;
  readonly b: Load;
}

/** The update `C[i] = C[i] + f32(A[..]) * f32(B[..])`, or why the statement is not one. */
function matchUpdate(s: Stmt): Update {
  const shape = "C[i] = C[i] + f32(A[row][k]) * f32(B[col][k]) with A and B f16 and C local f32";
  if (s.kind !== "store") return fail(`the nest's body must be one update ${shape}; found a ${s.kind}`);
  const v = s.value;
  const f16Load = (e: Expr): Load | undefined =>
    e.kind === "cast" &&
    e.dtype === "f32" &&
    e.value.kind === "load" &&
    e.value.dtype === "f16" &&
    e.value.indices.length === 2
      ? e.value
      : undefined;
  if (
    v.kind !== "binary" ||
    v.op !== "+" ||
    v.a.kind !== "load" ||
    v.a.buffer !== s.buffer ||
    v.b.kind !== "binary" ||
    v.b.op !== "*"
  )
    return fail(`the update must read ${shape}; found ${s.buffer.name}[...] = ${printExpr(v)}`);
  if (!v.a.indices.every((e, d) => sameExpr(e, s.indices[d]!)))
    fail(`the update must add to the element it stores (${s.buffer.name}), at the same indices`);
  const a = f16Load(v.b.a);
  const b = f16Load(v.b.b);
  if (!a || !b)
    return fail(
      `the product must be f32(A[row][k]) * f32(B[col][k]) of two 2-D f16 tensors; found ${printExpr(v.b)}`,
    );
  if (s.buffer.scope !== "local" || s.buffer.dtype !== "f32")
    fail(
      `the accumulator ${s.buffer.name} must be a local f32 tensor (it is ${s.buffer.scope} ${s.buffer.dtype}): it lives in registers`,
    );
  return { acc: s.buffer, accIndex: s.indices, a, b };
}

/** A tiny deterministic generator, so a refused schedule is refused the same way every time. */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) >>> 8) & 63;
}

/** Checks the access layout by evaluation at every (lane, r, kk) over random values of the rest. */
function checkLayout(u: Update, lane: Var, r: Var, kk: Var): void {
  const others = new Set<Var>();
  for (const e of [...u.accIndex, ...u.a.indices, ...u.b.indices])
    for (const v of collectVars(e)) others.add(v);
  for (const v of [lane, r, kk]) others.delete(v);
  const rand = lcg(0x7c3);
  const idx = (es: readonly Expr[], env: Record<string, number>) => es.map((e) => evalInt(e, env));
  for (let trial = 0; trial < 4; trial++) {
    const env: Record<string, number> = {};
    for (const v of others) env[v.name] = rand();
    const at = (l: number, rr: number, k: number) => ({ ...env, [lane.name]: l, [r.name]: rr, [kk.name]: k });
    const a0 = idx(u.a.indices, at(0, 0, 0));
    const b0 = idx(u.b.indices, at(0, 0, 0));
    for (let l = 0; l < 32; l++) {
      const cells = new Set<string>();
      for (let rr = 0; rr < 4; rr++) {
        const c = idx(u.accIndex, at(l, rr, 0)).join(",");
        cells.add(c);
        for (let k = 0; k < 16; k++) {
          const e = at(l, rr, k);
          if (idx(u.accIndex, e).join(",") !== c)
            fail(
              `the accumulator index ${u.accIndex.map(printExpr).join("][")} changes with ${kk.name}; it must not`,
            );
          const [ar, ak] = idx(u.a.indices, e) as [number, number];
          const [br, bk] = idx(u.b.indices, e) as [number, number];
          if (ar - a0[0]! !== (l >> 2) + 8 * (rr >> 1) || ak - a0[1]! !== k)
            fail(
              `${u.a.buffer.name}[${u.a.indices.map(printExpr).join("][")}] is not the A layout: row (${lane.name} >> 2) + 8 * (${r.name} >> 1) and column ${kk.name}, each plus a tile origin`,
            );
          if (br - b0[0]! !== 2 * (l & 3) + (rr & 1) || bk - b0[1]! !== k)
            fail(
              `${u.b.buffer.name}[${u.b.indices.map(printExpr).join("][")}] is not the B layout: row 2 * (${lane.name} & 3) + (${r.name} & 1) and column ${kk.name}, each plus a tile origin`,
            );
        }
      }
      if (cells.size !== 4)
        fail(
          `the accumulator index ${u.accIndex.map(printExpr).join("][")} must name four different elements for ${r.name} = 0..3`,
        );
    }
  }
}

function tensorize(f: PrimFunc, loopName: string, intrinsic: string, laneName: string): PrimitiveResult {
  if (!(TENSOR_INTRINSICS as readonly string[]).includes(intrinsic))
    fail(`unknown intrinsic ${JSON.stringify(intrinsic)}; tkc has ${TENSOR_INTRINSICS.join(", ")}`);
  const { loop: rLoop, path } = loopPath(f, loopName, P);
  const laneLoop = path.find((s): s is For => s.kind === "for" && s.loopVar.name === laneName);
  if (!laneLoop) return fail(`loop ${laneName} (the lane) does not enclose loop ${loopName}`);
  if (laneLoop.thread !== "threadIdx.x" || !B.isConst(laneLoop.min, 0) || !B.isConst(laneLoop.extent, 32))
    fail(
      `the lane loop ${laneName} must be bound to threadIdx.x over exactly 32 lanes (bind it first), so that it is the lane of the warp the instruction runs on`,
    );
  loopOf(rLoop, 4, `loop ${loopName} (the accumulator field)`);
  const kLoop = loopOf(unblock(rLoop.body), 16, `the loop inside ${loopName} (the K step)`);
  const u = matchUpdate(unblock(kLoop.body));
  const r = rLoop.loopVar;
  const kk = kLoop.loopVar;
  const lane = laneLoop.loopVar;
  checkLayout(u, lane, r, kk);

  const i32 = B.i32c;
  const t = B.binary("&", lane, i32(3));
  const at = (e: Load, l: Expr, rr: Expr, k: Expr): Expr =>
    substitute(
      e,
      new Map<Var, Expr>([
        [lane, l],
        [r, rr],
        [kk, k],
      ]),
    );
  const kOf = (off: number) => B.add(B.mul(t, i32(2)), i32(off));
  // Register order of mma.m16n8k16: a0 = A[g][2t..2t+1], a1 = A[g+8][..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..]
  // (g = lane >> 2, t = lane & 3); b0 = B[k = 2t..2t+1][n = g], b1 = B[2t+8..2t+9][g].
  const aFrag = [0, 8].flatMap((ko) =>
    [0, 2].flatMap((rr) => [0, 1].map((j) => at(u.a, lane, i32(rr), kOf(ko + j)))),
  );
  // The lane whose field (r & 1) sits in column g of the tile: lane' & 3 = g >> 1, r' = g & 1.
  const bLane = B.binary(">>", lane, i32(3));
  const bField = B.binary("&", B.binary(">>", lane, i32(2)), i32(1));
  const bFrag = [0, 8].flatMap((ko) => [0, 1].map((j) => at(u.b, bLane, bField, kOf(ko + j))));
  const used = new Set<string>();
  const cVars = [0, 1, 2, 3].map((i) => {
    let name = freshName(f, `${u.acc.name}_c${i}`);
    while (used.has(name)) name += "_";
    used.add(name);
    return B.variable(name, "f32");
  });
  const cIndex = (i: number) =>
    u.accIndex.map((e) =>
      substitute(
        e,
        new Map<Var, Expr>([
          [r, i32(i)],
          [kk, i32(0)],
        ]),
      ),
    );
  const mma = (field: number) => B.call("mma_m16n8k16", [...aFrag, ...bFrag, ...cVars, i32(field)], "f32");
  let out: Stmt = B.seq([0, 1, 2, 3].map((i) => B.store(u.acc, cIndex(i), mma(i))));
  for (let i = 3; i >= 0; i--) out = B.letStmt(cVars[i]!, B.load(u.acc, cIndex(i)), out);
  return { func: replaceStmt(f, rLoop, out) };
}

registerPrimitives({ tensorize });
