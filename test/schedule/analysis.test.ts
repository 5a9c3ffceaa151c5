/** The shared analyses: reduction loops, accesses, and the dependence test's boundaries. */
import { describe, expect, test } from "vitest";
import * as E from "../../examples/kernels.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import type { For, PrimFunc } from "../../lower/ir/nodes.ts";
import {
  accessesIn,
  affineCoefficient,
  blocksUnder,
  isReductionLoop,
  isUpdate,
  linearize,
  loadsIn,
  loopsUnder,
  reductionStores,
  storesIn,
} from "../../lower/schedule/analysis.ts";
import { carriedDependences } from "../../lower/schedule/dependence.ts";
import "../../lower/schedule/loop_transformation.ts";
import "../../lower/schedule/for_kind.ts";
import { Schedule } from "../../lower/schedule/schedule.ts";
import { loopPath, replaceStmt } from "../../lower/schedule/state.ts";
import { add, constant, sub, variable } from "../../lower/ir/build.ts";
import { substitute } from "../../lower/ir/transform.ts";
import { expectSameResults } from "../helpers/random.ts";
import * as K from "./loop_kernels.ts";

const loop = (f: PrimFunc, name: string): For => loopPath(f, name, "test").loop;
const messages = (f: PrimFunc, name: string): string[] =>
  carriedDependences(loop(f, name)).map((d) => d.message);

describe("reductions", () => {
  test("a loop is a reduction loop for a store whose indices do not use it", () => {
    const mm = lowerKernel(K.matmulInt);
    const [c] = storesIn(mm.body);
    expect(isReductionLoop(loop(mm, "k"), c)).toBe(true);
    expect(isReductionLoop(loop(mm, "j"), c)).toBe(false);
    expect(isReductionLoop(loop(mm, "i"))).toBe(false);
    expect(isUpdate(c!)).toBe(true);
  });

  test("a buffer allocated inside the loop is not reduced across it", () => {
    const sm = lowerKernel(E.softmax);
    expect(isReductionLoop(loop(sm, "i"))).toBe(false); // m and s live inside i
    expect(reductionStores(loop(sm, "j")).map((s) => s.buffer.name)).toEqual(["m"]);
    expect(reductionStores(loop(sm, "j_1")).map((s) => s.buffer.name)).toEqual(["s"]);
    expect(isReductionLoop(loop(sm, "j_2"))).toBe(false);
  });

  test("an overwrite is a reduction loop by the definition, but not an update", () => {
    const f = lowerKernel(K.lastWins);
    const [st] = storesIn(f.body);
    expect(isReductionLoop(loop(f, "i"), st)).toBe(true);
    expect(isUpdate(st!)).toBe(false);
  });
});

describe("accesses", () => {
  test("stores, loads, blocks and accesses in program order", () => {
    const f = lowerKernel(K.twoStage);
    expect(storesIn(f.body).map((s) => s.buffer.name)).toEqual(["t", "y"]);
    expect(loadsIn(f.body).map((l) => l.buffer.name)).toEqual(["x", "t", "t"]);
    expect(blocksUnder(f.body).map((b) => b.name)).toEqual(["t", "y"]);
    expect(accessesIn(f.body).map((a) => `${a.kind} ${a.buffer.name} in ${a.block}`)).toEqual([
      "load x in t",
      "store t in t",
      "load t in y",
      "load t in y",
      "store y in y",
    ]);
  });

  test("affine coefficients see through lets and refuse what is not affine", () => {
    const f = lowerKernel(E.int4Dequant);
    const c = loop(f, "c").loopVar;
    const [word, out] = [loadsIn(f.body)[0]!, storesIn(f.body)[0]!];
    expect(affineCoefficient(out.indices[1]!, c)).toBe(1);
    expect(affineCoefficient(word.indices[1]!, c)).toBeUndefined(); // idiv(c, 8)
    expect(linearize(out.indices[0]!).terms).toHaveLength(1);
  });
});

describe("the dependence test", () => {
  test("mixed-radix digits: rows of 4 every 4 are disjoint, rows of 5 every 4 overlap", () => {
    expect(messages(lowerKernel(K.packed), "i")).toEqual([]);
    expect(messages(lowerKernel(K.overlapped), "i")).toEqual([
      'different iterations of i may write the same element of y through y[4 * i + j] (block "y")',
    ]);
  });

  test("bit fields taken apart by shifts and masks pin their source when every bit is read once", () => {
    expect(messages(lowerKernel(K.digitsPermuted), "c")).toEqual([]);
    expect(messages(lowerKernel(K.digitsRepeated), "c")).toHaveLength(1);
  });

  test("a swizzle (column chunk XOR a function of the row) pins the chunk once the row is pinned", () => {
    expect(messages(lowerKernel(K.swizzledRows), "c")).toEqual([]);
    expect(messages(lowerKernel(K.swizzledSelf), "c")).toHaveLength(1);
  });

  test("a swizzle whose row is known only once another index (tile and row) is taken apart", () => {
    expect(messages(lowerKernel(K.swizzledTiles), "c")).toEqual([]);
    expect(messages(lowerKernel(K.swizzledTilesSame), "c")).toHaveLength(1);
  });

  test("two nests writing tiles of their own (c t + a rest in [0, c)) do not meet across t", () => {
    expect(messages(lowerKernel(K.tilesTwoNests), "t")).toEqual([]);
    expect(messages(lowerKernel(K.tilesTwoNestsOverlap), "t")).toHaveLength(1);
    // Tiles further along by the same offset in both nests (rests in one window of 16) never meet;
    // by an offset in one nest only (rests spanning 21), they do.
    expect(messages(lowerKernel(K.tilesTwoNestsOffset), "t")).toEqual([]);
    expect(messages(lowerKernel(K.tilesTwoNestsShifted), "t")).toHaveLength(1);
    const s = Schedule.of(K.tilesTwoNests);
    s.parallel("t");
    expectSameResults(s.original, s.func, { n: 37 });
  });

  test("floordiv alone does not pin its argument; floordiv with floormod does", () => {
    expect(messages(lowerKernel(K.pick), "i")).toHaveLength(1);
    const s = Schedule.of(K.scale3);
    const fused = s.fuse("i", "j", "k");
    expect(messages(s.func, fused)).toEqual([]);
    const sym = Schedule.of(E.addBroadcast);
    sym.split("j", [null, 4]);
    const f = sym.fuse("i", "j_0"); // symbolic divisor, scaled digit: 4 * floormod(f, e) + j_1
    expect(messages(sym.func, f)).toEqual([]);
    expect(messages(sym.func, "j_1")).toEqual([]);
  });

  test("a split loop's outer digit is independent, even with a tail", () => {
    const s = Schedule.of(K.matmulInt);
    s.split("i", [null, 3]);
    expect(messages(s.func, "i_0")).toEqual([]);
    expect(messages(s.func, "i_1")).toEqual([]);
    expect(messages(s.func, "k")).toEqual([
      'every iteration of k writes c[i_0 * 3 + i_1][j] (block "c"): k carries a reduction into c',
    ]);
  });
});

describe("soundness: a loop that carries no dependence can run backwards", () => {
  // Reversing a loop's iteration order keeps the results of any loop whose iterations are
  // independent; it is a cheap, strong check of what carriedDependences accepts.
  const reversed = (f: PrimFunc, l: For): PrimFunc => {
    const v = variable(l.loopVar.name, l.loopVar.dtype);
    const back = sub(sub(add(l.min, l.extent), constant(1, v.dtype)), v);
    const body = substitute(l.body, new Map([[l.loopVar, back]]));
    return replaceStmt(f, l, { ...l, loopVar: v, min: constant(0, v.dtype), body });
  };
  const cases: [string, PrimFunc, Record<string, number>][] = [
    ...Object.entries(K).map(
      ([n, k]) => [n, lowerKernel(k), { m: 3, n: 5, p: 4 }] as [string, PrimFunc, Record<string, number>],
    ),
    ["softmax", lowerKernel(E.softmax), { m: 3, n: 6 }],
    ["argmax", lowerKernel(E.argmax), { m: 3, n: 6 }],
    ["transpose", lowerKernel(E.transpose), { m: 3, n: 6 }],
  ];
  const fused = Schedule.of(E.addBroadcast);
  fused.split("j", [null, 4]);
  fused.fuse("i", "j_0");
  cases.push(["addBroadcast fused", fused.func, { m: 3, n: 7 }]);
  let checked = 0;
  for (const [name, f, symbols] of cases)
    test(name, () => {
      for (const l of loopsUnder(f.body)) {
        if (carriedDependences(l).length) continue;
        checked++;
        expectSameResults(f, reversed(f, l), symbols, { tol: 1e-6, scalars: { eps: 1e-5 } });
      }
    });
  test("the check itself catches a dependence, and ran on many loops", () => {
    const f = lowerKernel(K.prefix);
    expect(() => expectSameResults(f, reversed(f, loop(f, "i")), {})).toThrow();
    expect(checked).toBeGreaterThanOrEqual(25);
  });
});
