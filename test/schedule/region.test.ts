import { describe, expect, it } from "vitest";
import * as B from "../../lower/ir/build.ts";
import type { Expr, Var } from "../../lower/ir/nodes.ts";
import { printExpr } from "../../lower/ir/printer.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { blockPath, loopPath } from "../../lower/schedule/state.ts";
import {
  accessRegion,
  bounds,
  fromAffine,
  loopRanges,
  provablyLE,
  simplifyIndex,
  threadLoops,
  toAffine,
  type Range,
  type Region,
} from "../../lower/schedule/region.ts";
import { matmul, tiledMatmul, gpuMatmul } from "./kernels_compute.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { isGapFree } from "../../lower/schedule/cache_read_write.ts";

const show = (r: Region | undefined): string[] | undefined =>
  r?.map((d) => `[${printExpr(d.min)}, ${printExpr(d.extent)})`);
const range = (extent: number | Expr, min: number | Expr = 0): Range => ({
  min: typeof min === "number" ? B.i32c(min) : min,
  extent: typeof extent === "number" ? B.i32c(extent) : extent,
});

describe("affine forms", () => {
  const io = B.variable("io");
  const ii = B.variable("ii");
  it("collects terms and folds what cancels", () => {
    const e = B.sub(B.add(B.add(ii, B.mul(io, B.i32c(3))), B.i32c(2)), B.mul(B.i32c(3), io));
    expect(printExpr(simplifyIndex(e))).toBe("ii + 2");
    expect(printExpr(fromAffine(toAffine(B.sub(B.i32c(1), B.mul(io, B.i32c(4))))!))).toBe("io * -4 + 1");
  });
  it("leaves non-affine expressions alone", () => {
    expect(toAffine(B.mul(io, ii))).toBeUndefined();
    expect(toAffine(B.binary("floordiv", io, B.i32c(2)))).toBeUndefined();
    const e = B.mul(io, ii);
    expect(simplifyIndex(e)).toBe(e);
  });
});

describe("interval bounds", () => {
  const io = B.variable("io");
  const ii = B.variable("ii");
  const n = B.variable("n");
  const fmt = (e: Expr, relax: Map<Var, Range>): string | undefined => {
    const iv = bounds(e, { relax });
    return iv && `${printExpr(fromAffine(iv.lo))} .. ${printExpr(fromAffine(iv.hi))}`;
  };
  it("relaxes only the loops asked for, keeping the others symbolic", () => {
    const e = B.add(B.mul(io, B.i32c(3)), ii);
    expect(fmt(e, new Map([[ii, range(3)]]))).toBe("io * 3 .. io * 3 + 2");
    expect(
      fmt(
        e,
        new Map([
          [ii, range(3)],
          [io, range(4)],
        ]),
      ),
    ).toBe("0 .. 11");
    expect(fmt(B.sub(B.i32c(10), ii), new Map([[ii, range(3)]]))).toBe("8 .. 10");
  });
  it("bounds symbolic extents and nested loop ranges", () => {
    expect(fmt(ii, new Map([[ii, range(n)]]))).toBe("0 .. n - 1");
    // ii ranges over [io, io + 2): its range depends on io, which ranges over [0, 4).
    expect(
      fmt(
        ii,
        new Map([
          [ii, range(2, io)],
          [io, range(4)],
        ]),
      ),
    ).toBe("0 .. 4");
  });
  it("bounds floordiv, floormod, min and max by constants", () => {
    const f = B.variable("f");
    const relax = new Map([[f, range(12)]]);
    expect(fmt(B.binary("floordiv", f, B.i32c(4)), relax)).toBe("0 .. 2");
    expect(fmt(B.binary("floormod", f, B.i32c(4)), relax)).toBe("0 .. 3");
    expect(fmt(B.binary("floormod", ii, B.i32c(8)), new Map([[ii, range(3, 8)]]))).toBe("0 .. 2");
    expect(fmt(B.binary("min", f, B.i32c(5)), relax)).toBe("0 .. 5");
    expect(fmt(B.binary("max", f, B.i32c(5)), relax)).toBe("5 .. 11");
    expect(fmt(B.mul(f, ii), relax)).toBeUndefined();
  });
  it("bounds shifts of non-negative values and masks by non-negative constants", () => {
    const l = B.variable("l");
    const relax = new Map([[l, range(32)]]);
    expect(fmt(B.binary(">>", l, B.i32c(2)), relax)).toBe("0 .. 7");
    expect(fmt(B.binary("<<", l, B.i32c(2)), relax)).toBe("0 .. 124");
    expect(fmt(B.binary("&", l, B.i32c(3)), relax)).toBe("0 .. 3");
    // A mask bounds even what is unbounded; a shift of a possibly negative value is not bounded.
    expect(fmt(B.binary("&", n, B.i32c(7)), new Map())).toBe("0 .. 7");
    expect(fmt(B.binary(">>", B.sub(l, B.i32c(4)), B.i32c(1)), relax)).toBeUndefined();
    expect(fmt(B.binary(">>", l, n), relax)).toBeUndefined();
  });
  it("proves inequalities over loop ranges", () => {
    const env = { relax: new Map([[io, range(3)]]) };
    expect(provablyLE(B.add(B.mul(io, B.i32c(3)), B.i32c(3)), B.i32c(9), env)).toBe(true);
    expect(provablyLE(B.add(B.mul(io, B.i32c(3)), B.i32c(4)), B.i32c(9), env)).toBe(false);
    expect(provablyLE(n, B.i32c(9), env)).toBe(false);
  });
  it("tells gap-free indices from strided ones", () => {
    const relax = new Map([
      [io, range(3)],
      [ii, range(3)],
    ]);
    expect(isGapFree(B.add(B.mul(io, B.i32c(3)), ii), relax)).toBe(true);
    expect(isGapFree(B.add(B.mul(io, B.i32c(4)), ii), relax)).toBe(false);
    expect(isGapFree(B.mul(ii, B.i32c(2)), relax)).toBe(false);
    expect(isGapFree(B.add(ii, n), relax)).toBe(true);
  });
});

describe("access regions of lowered kernels", () => {
  it("per iteration of the k-outer loop a tiled matmul reads one tile of each input", () => {
    const f = lowerKernel(tiledMatmul);
    const { loop } = loopPath(f, "ko", "test");
    const a = f.params[0]!.kind === "buffer" ? f.params[0].buffer : undefined;
    const b = f.params[1]!.kind === "buffer" ? f.params[1].buffer : undefined;
    expect(show(accessRegion(loop.body, a!, "read"))).toEqual(["[io * 3, 3)", "[ko * 5, 5)"]);
    expect(show(accessRegion(loop.body, b!, "read"))).toEqual(["[ko * 5, 5)", "[jo * 2, 2)"]);
    // The whole function reads all of a; c is written over its whole extent.
    expect(show(accessRegion(f.body, a!, "read"))).toEqual(["[0, 9)", "[0, 15)"]);
    const c = f.params[2]!.kind === "buffer" ? f.params[2].buffer : undefined;
    expect(show(accessRegion(f.body, c!, "write"))).toEqual(["[0, 9)", "[0, 4)"]);
    expect(accessRegion(loop.body, c!, "read")).toBeDefined();
  });
  it("keeps symbolic extents symbolic", () => {
    const f = lowerKernel(matmul);
    const a = f.params[0]!.kind === "buffer" ? f.params[0].buffer : undefined;
    expect(show(accessRegion(f.body, a!, "read"))).toEqual(["[0, m)", "[0, k)"]);
    const { loop } = loopPath(f, "j", "test");
    expect(show(accessRegion(loop.body, a!, "read"))).toEqual(["[i, 1)", "[0, k)"]);
  });
  it("falls back to the whole dimension where an index is not analysable", () => {
    const i = B.variable("i");
    const j = B.variable("j");
    const n = B.variable("n");
    const x = B.buffer("x", "f32", [n, B.i32c(5)]);
    const idx = B.buffer("idx", "i32", [B.i32c(3)]);
    const s = B.forLoop(
      i,
      B.i32c(0),
      B.i32c(2),
      B.forLoop(j, B.i32c(0), B.i32c(3), B.store(x, [B.mul(i, n), B.load(idx, [j])], B.constant(0, "f32"))),
    );
    // i * n has no affine bounds; a gathered index has none at all.
    expect(show(accessRegion(s, x, "write"))).toEqual(["[0, n)", "[0, 5)"]);
    // Both bounded by constants, i * j is bounded numerically.
    const t = B.forLoop(
      i,
      B.i32c(0),
      B.i32c(2),
      B.forLoop(j, B.i32c(0), B.i32c(3), B.store(x, [B.mul(i, j), j], B.constant(0, "f32"))),
    );
    expect(show(accessRegion(t, x, "write"))).toEqual(["[0, 3)", "[0, 3)"]);
    expect(accessRegion(s, x, "read")).toBeUndefined();
  });
  it("relaxes threadIdx loops for shared buffers only", () => {
    const s = Schedule.of(gpuMatmul);
    s.bind("ty", "threadIdx.y");
    s.bind("tx", "threadIdx.x");
    const f = s.func;
    const { path } = blockPath(f, "acc_1", "test");
    const { loop: ko } = loopPath(f, "ko", "test");
    const loops = path.filter((x) => x.kind === "for");
    const a = f.params[0]!.kind === "buffer" ? f.params[0].buffer : undefined;
    expect(threadLoops(loops, "local")).toEqual([]);
    const shared = { ...a!, scope: "shared" as const };
    const relax = loopRanges(threadLoops(loops, shared.scope));
    expect(show(accessRegion(ko.body, a!, "read", relax))).toEqual(["[by * 4, 4)", "[ko * 5, 5)"]);
    expect(show(accessRegion(ko.body, a!, "read"))).toEqual(["[by * 4 + ty, 1)", "[ko * 5, 5)"]);
  });
});
