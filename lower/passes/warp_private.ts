/**
 * Which shared buffers are private to each warp, for the barriers pass: with one warp per
 * threadIdx.y row (threadIdx.x spanning exactly the warp, no threadIdx.z), a buffer whose every
 * access is at `ty * S + e` with the same S and 0 <= e < S for every thread and iteration (e free
 * of ty) is cut into one slice per warp, so threads of different warps never touch the same
 * element and a warp barrier orders its accesses. Per-warp scratch (a row's scores, a warp's
 * partial results) is written this way.
 *
 * Only for targets whose warp is the hardware's (CUDA, ROCm): a Vulkan device's subgroups may be
 * narrower than the warp the kernel was lowered for.
 */
import type { Buffer, Expr, PrimFunc, Var } from "../ir/nodes.ts";
import * as B from "../ir/build.ts";
import { collectVars, substitute, walk } from "../ir/transform.ts";
import { accessesOf, bounds, isIndexType, loopRanges, toAffine, type Range } from "../schedule/region.ts";
import type { Target } from "./target.ts";
import { threadAxisOf } from "./device_ops.ts";

/** Expands lets (not thread indices) into e, a few levels deep. */
function expand(e: Expr, lets: ReadonlyMap<Var, Expr>): Expr {
  let out = e;
  for (let depth = 0; depth < 8; depth++) {
    const map = new Map<Var, Expr>();
    for (const v of collectVars(out)) {
      const value = lets.get(v);
      if (value !== undefined && threadAxisOf(value) === undefined) map.set(v, value);
    }
    if (!map.size) return out;
    out = substitute(out, map);
  }
  return out;
}

export function warpPrivateBuffers(f: PrimFunc, target: Target): Set<Buffer> {
  const out = new Set<Buffer>();
  const launch = f.launch;
  if (!launch || (target.kind !== "cuda" && target.kind !== "rocm")) return out;
  if (launch.block[0] !== launch.warpSize || launch.block[2] !== 1 || launch.block[1] < 2) return out;
  const shared: Buffer[] = [];
  walk(f.body, (n) => {
    if (n.kind === "allocate" && n.buffer.scope === "shared") shared.push(n.buffer);
  });
  for (const buf of shared) if (isWarpPrivate(f, buf, launch.block)) out.add(buf);
  return out;
}

function isWarpPrivate(f: PrimFunc, buf: Buffer, block: readonly number[]): boolean {
  const sites = accessesOf(f.body, buf, "any");
  if (!sites.length) return false;
  let stride: number | undefined;
  for (const site of sites) {
    if (site.indices.length !== 1) return false;
    const relax = new Map<Var, Range>(loopRanges(site.loops));
    const tys: Var[] = [];
    const lets = new Map<Var, Expr>();
    for (const [v, value] of site.lets) {
      const axis = threadAxisOf(value);
      if (axis === undefined) lets.set(v, value);
      else if (axis === 1) tys.push(v);
      else relax.set(v, { min: B.i32c(0), extent: B.i32c(block[axis]!) });
    }
    const index = expand(site.indices[0]!, lets);
    // ty must appear only as one variable with a constant coefficient, nowhere else.
    let direct = false;
    walk(index, (n) => {
      if (threadAxisOf(n as Expr) === 1) direct = true;
    });
    if (direct) return false;
    const used = tys.filter((v) => collectVars(index).has(v));
    if (used.length !== 1) return false;
    const ty = used[0]!;
    const s = coefficientOf(index, ty);
    if (s === undefined || !Number.isInteger(s) || s <= 0 || (stride !== undefined && stride !== s))
      return false;
    stride = s;
    const rest = substitute(index, new Map<Var, Expr>([[ty, B.i32c(0)]]));
    if (collectVars(rest).has(ty)) return false;
    const iv = bounds(rest, { relax, lets: new Map() });
    const lo = iv?.lo && iv.lo.terms.size === 0 ? iv.lo.c : undefined;
    const hi = iv?.hi && iv.hi.terms.size === 0 ? iv.hi.c : undefined;
    if (lo === undefined || hi === undefined || lo < 0 || hi > s - 1) return false;
  }
  return true;
}

/**
 * k where e = k * v + (terms free of v), undefined where v enters otherwise (under a shift, a
 * mask, a product of two variables): the rest of the index may be anything that is bounded.
 */
function coefficientOf(e: Expr, v: Var): number | undefined {
  if (!collectVars(e).has(v)) return 0;
  if (e === v) return 1;
  if (e.kind === "cast") return isIndexType(e.value) ? coefficientOf(e.value, v) : undefined;
  if (e.kind === "unary" && e.op === "neg") {
    const k = coefficientOf(e.a, v);
    return k === undefined ? undefined : -k;
  }
  if (e.kind !== "binary") return undefined;
  const a = coefficientOf(e.a, v);
  const b = coefficientOf(e.b, v);
  if (a === undefined || b === undefined) return undefined;
  if (e.op === "+") return a + b;
  if (e.op === "-") return a - b;
  if (e.op === "*") {
    const ka = toAffine(e.a);
    const kb = toAffine(e.b);
    if (b === 0 && kb && kb.terms.size === 0) return a * kb.c;
    if (a === 0 && ka && ka.terms.size === 0) return b * ka.c;
  }
  return undefined;
}
