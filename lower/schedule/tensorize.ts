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
 * A and B may instead be fragments: `f32(unpackF16x2(F[..., lane', j], e))` with F a local u32
 * tensor whose last two indices are a lane and a register, holding the operand pairs each lane
 * passes to the instruction (values formed in registers, such as decoded 4-bit weights). The
 * layout check then asks that element (i, k) of the operand be read from the lane, register and
 * element where mma.m16n8k16 keeps it, and the replacement passes F[..., lane, j] as they are.
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
import { compileInt, evalInt } from "../ir/eval.ts";
import { printExpr } from "../ir/printer.ts";
import { collectVars, substitute } from "../ir/transform.ts";
import { ScheduleError } from "./errors.ts";
import { registerPrimitives, type PrimitiveResult } from "./registry.ts";
import { freshName, loopPath, replaceStmt } from "./state.ts";

export const TENSOR_INTRINSICS = ["mma_m16n8k16", "wgmma_m64n128k16"] as const;
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

/** The update inside `let`s that name parts of its indices (row, column), with the lets substituted. */
function unlet(s: Stmt): Stmt {
  s = unblock(s);
  return s.kind === "let" ? unlet(substitute(s.body, new Map([[s.v, s.value]]))) : s;
}

/**
 * An f16 operand of the product: a 2-D f16 tensor read at (row, k) plus a tile origin, or a
 * fragment, `unpackF16x2(F[..., lane, register], element)` of a local u32 tensor F that already
 * holds each lane's operand registers in the instruction's layout (values formed in registers,
 * such as decoded 4-bit weights, which never pass through memory).
 */
type Operand =
  | { readonly kind: "tensor"; readonly load: Load }
  | { readonly kind: "fragment"; readonly load: Load; readonly element: Expr };

interface Update {
  readonly acc: Buffer;
  readonly accIndex: readonly Expr[];
  readonly a: Operand;
  readonly b: Operand;
}

const FRAGMENT = "f32(unpackF16x2(F[..., lane, register], element)) with F a local u32 tensor";

/** The operand f32(A[row][k]) or f32(unpackF16x2(F[..., lane, register], element)), if e is one. */
function matchOperand(e: Expr): Operand | undefined {
  if (e.kind !== "cast" || e.dtype !== "f32") return undefined;
  const v = e.value;
  if (v.kind === "load" && v.dtype === "f16" && v.indices.length === 2) return { kind: "tensor", load: v };
  if (v.kind === "call" && v.name === "unpack_f16x2") {
    const f = v.args[0]!;
    if (f.kind === "load" && f.buffer.scope === "local" && f.dtype === "u32" && f.indices.length >= 2)
      return { kind: "fragment", load: f, element: v.args[1]! };
  }
  return undefined;
}

/** The update `C[i] = C[i] + A * B` with operands as matchOperand reads them, or why the statement is not one. */
function matchUpdate(s: Stmt): Update {
  const shape = `C[i] = C[i] + f32(A[row][k]) * f32(B[col][k]) with A and B f16 (or fragments, ${FRAGMENT}) and C local f32`;
  if (s.kind !== "store") return fail(`the nest's body must be one update ${shape}; found a ${s.kind}`);
  const v = s.value;
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
  const a = matchOperand(v.b.a);
  const b = matchOperand(v.b.b);
  if (!a || !b)
    return fail(
      `the product must be f32(A[row][k]) * f32(B[col][k]) of two 2-D f16 tensors or fragments (${FRAGMENT}); found ${printExpr(v.b)}`,
    );
  if (s.buffer.scope !== "local" || s.buffer.dtype !== "f32")
    fail(
      `the accumulator ${s.buffer.name} must be a local f32 tensor (it is ${s.buffer.scope} ${s.buffer.dtype}): it lives in registers`,
    );
  return { acc: s.buffer, accIndex: s.indices, a, b };
}

/**
 * The replacement of an update nest: each of the `count` accumulator fields read into a fresh f32
 * variable (`fieldAt(i)` gives the loop values that name field i), then each stored from field i
 * of the instruction `product(fields, i)` computes from them.
 */
function storeFields(
  f: PrimFunc,
  u: Update,
  count: number,
  fieldAt: (i: number) => ReadonlyMap<Var, Expr>,
  product: (fields: readonly Var[], i: number) => Expr,
): Stmt {
  const used = new Set<string>();
  const fields = Array.from({ length: count }, (_, i) => {
    let name = freshName(f, `${u.acc.name}_c${i}`);
    while (used.has(name)) name += "_";
    used.add(name);
    return B.variable(name, "f32");
  });
  const index = (i: number) => u.accIndex.map((e) => substitute(e, new Map(fieldAt(i))));
  let out: Stmt = B.seq(fields.map((_, i) => B.store(u.acc, index(i), product(fields, i))));
  for (let i = count - 1; i >= 0; i--) out = B.letStmt(fields[i]!, B.load(u.acc, index(i)), out);
  return out;
}

/** A tiny deterministic generator, so a refused schedule is refused the same way every time. */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) >>> 8) & 63;
}

const operandExprs = (o: Operand): Expr[] =>
  o.kind === "tensor" ? [...o.load.indices] : [...o.load.indices, o.element];

/**
 * Where mma.m16n8k16 keeps element (i, k) of an operand: A (i = row, 16 x 16) or B (i = column n,
 * 8 columns of 16): the lane, the 32-bit register of that lane and the f16 element in it.
 */
function fragmentSlot(which: "A" | "B", i: number, k: number): [number, number, number] {
  const lane = (which === "A" ? (i & 7) * 4 : i * 4) + ((k & 7) >> 1);
  const reg = which === "A" ? (i >> 3) + 2 * (k >> 3) : k >> 3;
  return [lane, reg, k & 1];
}

/**
 * `trials` environments giving every variable of the update's indices but lane, r and kk a random
 * value (the same ones for a seed), for the checks that evaluate the indices.
 */
function randomEnvs(
  u: Update,
  lane: Var,
  r: Var,
  kk: Var,
  seed: number,
  trials: number,
  ...fixed: Var[]
): Record<string, number>[] {
  const others = new Set<Var>();
  for (const e of [...u.accIndex, ...operandExprs(u.a), ...operandExprs(u.b)])
    for (const v of collectVars(e)) others.add(v);
  for (const v of [lane, r, kk, ...fixed]) others.delete(v);
  const rand = lcg(seed);
  return Array.from({ length: trials }, () => {
    const env: Record<string, number> = {};
    for (const v of others) env[v.name] = rand();
    return env;
  });
}

/** Checks the access layout by evaluation at every (lane, r, kk) over random values of the rest. */
function checkLayout(u: Update, lane: Var, r: Var, kk: Var): void {
  const idx = (es: readonly Expr[], env: Record<string, number>) => es.map((e) => evalInt(e, env));
  /** Checks one operand's access at (l, rr, k) against element (i, k) of the instruction's operand. */
  const checkOperand = (
    o: Operand,
    which: "A" | "B",
    i: number,
    k: number,
    env: Record<string, number>,
    origin: readonly number[],
  ) => {
    const name = o.load.buffer.name;
    const access = `${name}[${o.load.indices.map(printExpr).join("][")}]`;
    if (o.kind === "tensor") {
      const [row, col] = idx(o.load.indices, env) as [number, number];
      if (row - origin[0]! !== i || col - origin[1]! !== k)
        fail(
          which === "A"
            ? `${access} is not the A layout: row (${lane.name} >> 2) + 8 * (${r.name} >> 1) and column ${kk.name}, each plus a tile origin`
            : `${access} is not the B layout: row 2 * (${lane.name} & 3) + (${r.name} & 1) and column ${kk.name}, each plus a tile origin`,
        );
      return;
    }
    const at = idx(operandExprs(o), env);
    const n = at.length;
    const want = fragmentSlot(which, i, k);
    if (at.slice(0, n - 3).some((x, d) => x !== origin[d]) || want.some((x, d) => at[n - 3 + d] !== x))
      fail(
        `${access}, element ${printExpr(o.element)}, is not the ${which} fragment layout of mma.m16n8k16: ` +
          `element (${i}, ${k}) of ${which} is lane ${want[0]}, register ${want[1]}, element ${want[2]} ` +
          `(the indices before the lane must not change with ${lane.name}, ${r.name} or ${kk.name})`,
      );
  };
  for (const env of randomEnvs(u, lane, r, kk, 0x7c3, 4)) {
    const at = (l: number, rr: number, k: number) => ({ ...env, [lane.name]: l, [r.name]: rr, [kk.name]: k });
    const a0 = idx(operandExprs(u.a), at(0, 0, 0));
    const b0 = idx(operandExprs(u.b), at(0, 0, 0));
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
          checkOperand(u.a, "A", (l >> 2) + 8 * (rr >> 1), k, e, a0);
          checkOperand(u.b, "B", 2 * (l & 3) + (rr & 1), k, e, b0);
        }
      }
      if (cells.size !== 4)
        fail(
          `the accumulator index ${u.accIndex.map(printExpr).join("][")} must name four different elements for ${r.name} = 0..3`,
        );
    }
  }
}

/**
 * Whether a tensor operand is read with ldmatrix: it lives in shared memory, and its tile's first
 * column is a multiple of 8 at random values of the other variables (so each 8-half row of an 8 x 8
 * matrix starts on 16 bytes, given rows a multiple of 8 halves long, which the flatten pass checks).
 */
function viaLdmatrix(o: Operand, u: Update, lane: Var, r: Var, kk: Var): boolean {
  if (o.kind !== "tensor" || o.load.buffer.scope !== "shared") return false;
  const column = o.load.indices[1]!;
  return randomEnvs(u, lane, r, kk, 0x1d3, 8).every(
    (env) => evalInt(column, { ...env, [lane.name]: 0, [r.name]: 0, [kk.name]: 0 }) % 8 === 0,
  );
}

/** Halves in a row of a wgmma B tile: 128 bytes, one row of the 128-byte swizzle. */
export const WGMMA_ROW_HALVES = 64;
/** Columns (N) of wgmma_m64n128k16. */
const WGMMA_N = 128;

/**
 * Where the 128-byte swizzle keeps element (n, c) of a tile of rows of 64 halves, as a column of
 * the same row: the 16-byte chunk c >> 3 is exchanged with chunk (c >> 3) ^ (n & 7) (address bits
 * 4..6 XOR bits 7..9, for a tile that starts on 1024 bytes).
 */
export const swizzle128 = (n: number, c: number): number => (((c >> 3) ^ (n & 7)) << 3) | (c & 7);

/**
 * wgmma_m64n128k16 (NVIDIA sm_90a: wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16, A from
 * registers): D[64 x 128] += A[64 x 16] B[16 x 128] for a warpgroup (four consecutive warps).
 * Warp w of the group holds rows 16 (w & 3) .. + 15 of A and D, each in mma.m16n8k16's layout
 * for 16 rows; D's 128 columns are 16 tiles of 8, field 4 nt + r of a lane the accumulator layout
 * of tile nt. The nest it replaces:
 *
 *   for (nt < 16) for (r < 4) for (kk < 16)
 *     C[c(nt, r)] = C[c(nt, r)] + f32(unpackF16x2(F[..., lane', register], element)) * f32(S[b0 + n][swizzled(b0 + n, bk + kk)])
 *
 * with A a fragment (the mma.m16n8k16 A layout for row (lane >> 2) + 8 (r >> 1) and column kk; the
 * indices before the lane may depend on the warp, not on the lane, nt, r or kk) and B read from a
 * shared f16 tile S of rows of 64 halves (128 bytes), row n = 8 nt + 2 (lane & 3) + (r & 1) of the
 * tile, column bk + kk stored 128-byte swizzled (swizzle128), b0 a multiple of 8 and bk of 16, the
 * same for the four warps of a group: the layout the instruction reads through a matrix descriptor.
 */
function tensorizeWgmma(f: PrimFunc, ntLoop: For, path: readonly Stmt[], laneLoop: For): PrimitiveResult {
  const warpLoop = path.find((s): s is For => s.kind === "for" && s.thread === "threadIdx.y");
  if (
    !warpLoop ||
    !B.isConst(warpLoop.min, 0) ||
    warpLoop.extent.kind !== "const" ||
    warpLoop.extent.value % 4 !== 0
  )
    return fail(
      `wgmma_m64n128k16 runs on warpgroups of four warps: bind a loop over the warps, a multiple of 4 of them, to threadIdx.y around loop ${ntLoop.loopVar.name}`,
    );
  const warps = warpLoop.extent.value;
  loopOf(ntLoop, WGMMA_N / 8, `loop ${ntLoop.loopVar.name} (the 8-column tile of the 128 columns)`);
  const rLoop = loopOf(
    unblock(ntLoop.body),
    4,
    `the loop inside ${ntLoop.loopVar.name} (the accumulator field)`,
  );
  const kLoop = loopOf(unblock(rLoop.body), 16, `the loop inside ${rLoop.loopVar.name} (the K step)`);
  const u = matchUpdate(unlet(kLoop.body));
  const [lane, warp, nt, r, kk] = [
    laneLoop.loopVar,
    warpLoop.loopVar,
    ntLoop.loopVar,
    rLoop.loopVar,
    kLoop.loopVar,
  ];
  if (u.a.kind !== "fragment")
    fail(`wgmma_m64n128k16 takes A from registers: A must be a fragment, ${FRAGMENT}`);
  const bLoad = u.b.load;
  if (u.b.kind !== "tensor" || bLoad.buffer.scope !== "shared")
    fail(`wgmma_m64n128k16 reads B from shared memory: B must be a 2-D f16 shared tensor`);
  const row = bLoad.buffer.allocShape?.[1] ?? bLoad.buffer.shape[1]!;
  if (row.kind !== "const" || row.value !== WGMMA_ROW_HALVES)
    fail(
      `wgmma_m64n128k16's B tile ${bLoad.buffer.name} must have rows of exactly ${WGMMA_ROW_HALVES} halves (128 bytes, the swizzle's row), not ${printExpr(row)}; do not pad it`,
    );
  const compiled = new Map<Expr, (env: Record<string, number>) => number>();
  const idx = (es: readonly Expr[], env: Record<string, number>) =>
    es.map((e) => {
      let c = compiled.get(e);
      if (!c) compiled.set(e, (c = compileInt(e)));
      return c(env);
    });
  const access = (o: Operand) => `${o.load.buffer.name}[${o.load.indices.map(printExpr).join("][")}]`;
  // Two environments (not mma's four): the nest is 64 times larger. One object, updated in place.
  const aExprs = operandExprs(u.a);
  for (const [trial, env] of randomEnvs(u, lane, r, kk, 0x9e1, 2, nt, warp).entries()) {
    const wg = (trial * 4) % warps;
    const at = (ww: number, l: number, t: number, rr: number, k: number) => {
      env[warp.name] = ww;
      env[lane.name] = l;
      env[nt.name] = t;
      env[r.name] = rr;
      env[kk.name] = k;
      return env;
    };
    const [or, oc] = idx(bLoad.indices, at(wg, 0, 0, 0, 0)) as [number, number];
    if (or % 8 !== 0 || oc % 16 !== 0)
      fail(
        `${access(u.b)} must start its tile on a row that is a multiple of 8 and a column that is a multiple of 16 (found row ${or}, column ${oc})`,
      );
    for (let ww = wg; ww < wg + 4; ww++) {
      const prefix = idx(aExprs.slice(0, -3), at(ww, 0, 0, 0, 0));
      for (let l = 0; l < 32; l++) {
        const cells = new Set<string>();
        for (let t = 0; t < WGMMA_N / 8; t++) {
          for (let rr = 0; rr < 4; rr++) {
            const c = idx(u.accIndex, at(ww, l, t, rr, 0)).join(",");
            cells.add(c);
            const n = 8 * t + 2 * (l & 3) + (rr & 1);
            for (let k = 0; k < 16; k++) {
              const e = at(ww, l, t, rr, k);
              if (idx(u.accIndex, e).join(",") !== c)
                fail(
                  `the accumulator index ${u.accIndex.map(printExpr).join("][")} changes with ${kk.name}; it must not`,
                );
              const [br, bc] = idx(bLoad.indices, e) as [number, number];
              if (br !== or + n || bc !== swizzle128(n, oc + k))
                fail(
                  `${access(u.b)} is not the B layout of wgmma_m64n128k16 shared by a warpgroup's four warps: row 8 * ${nt.name} + 2 * (${lane.name} & 3) + (${r.name} & 1) and column bk + ${kk.name} 128-byte swizzled ((column >> 3) ^ (row & 7)) << 3 | (column & 7), plus a tile origin`,
                );
              const at2 = idx(aExprs, e);
              const m = at2.length;
              const want = fragmentSlot("A", (l >> 2) + 8 * (rr >> 1), k);
              if (
                at2.slice(0, m - 3).some((x, d) => x !== prefix[d]) ||
                want.some((x, d) => at2[m - 3 + d] !== x)
              )
                fail(
                  `${access(u.a)}, element ${printExpr((u.a as Operand & { kind: "fragment" }).element)}, is not the A fragment layout of wgmma_m64n128k16 (each warp's 16 rows as mma.m16n8k16's A): element (${(l >> 2) + 8 * (rr >> 1)}, ${k}) is lane ${want[0]}, register ${want[1]}, element ${want[2]} (the indices before the lane must not change with ${lane.name}, ${nt.name}, ${r.name} or ${kk.name})`,
                );
            }
          }
        }
        if (cells.size !== 4 * (WGMMA_N / 8))
          fail(
            `the accumulator index ${u.accIndex.map(printExpr).join("][")} must name ${4 * (WGMMA_N / 8)} different elements for ${nt.name} and ${r.name}`,
          );
      }
    }
  }
  const i32 = B.i32c;
  const zero = (e: Expr, keepWarp: boolean) =>
    substitute(
      e,
      new Map<Var, Expr>([
        [lane, i32(0)],
        [nt, i32(0)],
        [r, i32(0)],
        [kk, i32(0)],
        ...(keepWarp ? [] : [[warp, B.binary("&", warp, i32(~3))] as [Var, Expr]]),
      ]),
    );
  const aLoad = u.a.load;
  const prefix = aLoad.indices.slice(0, -2).map((e) => zero(e, true));
  const aFrag = [0, 1, 2, 3].flatMap((j) =>
    [0, 1].map((h) =>
      B.call("unpack_f16x2", [B.load(aLoad.buffer, [...prefix, lane, i32(j)]), i32(h)], "f16"),
    ),
  );
  // The tile's origin, as the first warp of the group names it (the same for all four: checked).
  const origin = B.load(
    bLoad.buffer,
    bLoad.indices.map((e) => zero(e, false)),
  );
  const out = storeFields(
    f,
    u,
    4 * (WGMMA_N / 8),
    (i) =>
      new Map<Var, Expr>([
        [nt, i32(i >> 2)],
        [r, i32(i & 3)],
        [kk, i32(0)],
      ]),
    (fields, i) => B.call("wgmma_m64n128k16", [...aFrag, origin, ...fields, i32(i)], "f32"),
  );
  return { func: replaceStmt(f, ntLoop, out) };
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
  if (intrinsic === "wgmma_m64n128k16") return tensorizeWgmma(f, rLoop, path, laneLoop);
  loopOf(rLoop, 4, `loop ${loopName} (the accumulator field)`);
  const kLoop = loopOf(unblock(rLoop.body), 16, `the loop inside ${loopName} (the K step)`);
  const u = matchUpdate(unlet(kLoop.body));
  const r = rLoop.loopVar;
  const kk = kLoop.loopVar;
  const lane = laneLoop.loopVar;
  checkLayout(u, lane, r, kk);

  const i32 = B.i32c;
  const t = B.binary("&", lane, i32(3));
  const at = (e: Expr, l: Expr, rr: Expr, k: Expr): Expr =>
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
  // A fragment operand is read in place: register j of this lane, both elements (the indices
  // before the lane do not depend on lane, r or kk: checkLayout).
  const fragment = (o: Operand & { kind: "fragment" }, regs: number): Expr[] => {
    const prefix = o.load.indices.slice(0, -2).map((e) => at(e, i32(0), i32(0), i32(0)));
    return Array.from({ length: regs }, (_, j) =>
      [0, 1].map((h) =>
        B.call("unpack_f16x2", [B.load(o.load.buffer, [...prefix, lane, i32(j)]), i32(h)], "f16"),
      ),
    ).flat();
  };
  // An operand tile in shared memory whose rows start on 16 bytes is read with ldmatrix: lane
  // 8j + i names row i of 8 x 8 matrix j, and the lanes receive the instruction's registers (one
  // shared-memory instruction for A's four registers, where lane-by-lane loads take four).
  // Matrix j of A is rows 8 (j & 1), columns 8 (j >> 1) (register order a0..a3); of B, columns 8j.
  const ldmatrix = (o: Operand, rowOf: (m: Expr) => Expr[], count: number): Expr[] => {
    const m = count === 4 ? lane : B.binary("&", lane, i32(15));
    const rowLoad = at(o.load, ...(rowOf(m) as [Expr, Expr, Expr]));
    return Array.from({ length: count }, (_, j) =>
      [0, 1].map((h) =>
        B.call("unpack_f16x2", [B.call("ldmatrix", [rowLoad, i32(count), i32(j)], "u32"), i32(h)], "f16"),
      ),
    ).flat();
  };
  const row8 = (m: Expr) => B.binary("&", m, i32(7));
  const aFrag =
    u.a.kind === "fragment"
      ? fragment(u.a, 4)
      : viaLdmatrix(u.a, u, lane, r, kk)
        ? // Row 8 ((m >> 3) & 1) + (m & 7) of A is lane' = 4 (m & 7), r' = 2 ((m >> 3) & 1); column 8 (m >> 4).
          ldmatrix(
            u.a,
            (m) => [
              B.mul(row8(m), i32(4)),
              B.mul(B.binary("&", B.binary(">>", m, i32(3)), i32(1)), i32(2)),
              B.mul(B.binary(">>", m, i32(4)), i32(8)),
            ],
            4,
          )
        : [0, 8].flatMap((ko) =>
            [0, 2].flatMap((rr) => [0, 1].map((j) => at(u.a.load, lane, i32(rr), kOf(ko + j)))),
          );
  // The lane whose field (r & 1) sits in column g of the tile: lane' & 3 = g >> 1, r' = g & 1.
  const bLane = B.binary(">>", lane, i32(3));
  const bField = B.binary("&", B.binary(">>", lane, i32(2)), i32(1));
  const bFrag =
    u.b.kind === "fragment"
      ? fragment(u.b, 2)
      : viaLdmatrix(u.b, u, lane, r, kk)
        ? // Column n = m & 7 of B is lane' = n >> 1, r' = n & 1; k from 8 ((m >> 3) & 1).
          ldmatrix(
            u.b,
            (m) => [
              B.binary(">>", row8(m), i32(1)),
              B.binary("&", m, i32(1)),
              B.mul(B.binary("&", B.binary(">>", m, i32(3)), i32(1)), i32(8)),
            ],
            2,
          )
        : [0, 8].flatMap((ko) => [0, 1].map((j) => at(u.b.load, bLane, bField, kOf(ko + j))));
  const out = storeFields(
    f,
    u,
    4,
    (i) =>
      new Map<Var, Expr>([
        [r, i32(i)],
        [kk, i32(0)],
      ]),
    (fields, i) => B.call("mma_m16n8k16", [...aFrag, ...bFrag, ...fields, i32(i)], "f32"),
  );
  return { func: replaceStmt(f, rLoop, out) };
}

registerPrimitives({ tensorize });
