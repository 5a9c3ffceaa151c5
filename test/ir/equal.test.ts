/** Structural equality up to renaming: what counts as the same function and what does not. */
import { describe, expect, test } from "vitest";
import * as E from "../../examples/kernels.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import {
  allocate,
  binary,
  block,
  buffer,
  constant,
  forLoop,
  i32c,
  load,
  seq,
  store,
  variable,
} from "../../lower/ir/build.ts";
import { exprEqual, funcDifference, funcEqual, sameExpr, stmtEqual } from "../../lower/ir/equal.ts";
import type { Expr, PrimFunc, Stmt } from "../../lower/ir/nodes.ts";

/** `for (i < 8) y[i] = x[i] <op> k` with fresh variables and buffers of the given names. */
function tiny(names = { i: "i", x: "x", y: "y" }, body?: (i: Expr, x: Expr) => Expr): PrimFunc {
  const i = variable(names.i);
  const x = buffer(names.x, "f32", [i32c(8)]);
  const y = buffer(names.y, "f32", [i32c(8)]);
  const value = body ? body(i, load(x, [i])) : binary("+", load(x, [i]), constant(1, "f32"));
  return {
    kind: "func",
    name: "tiny",
    params: [
      { kind: "buffer", buffer: x },
      { kind: "buffer", buffer: y },
    ],
    symbols: [],
    body: forLoop(i, i32c(0), i32c(8), block("y", store(y, [i], value))),
    attrs: {},
  };
}

describe("funcEqual", () => {
  test("two lowerings of one kernel are equal, though every id differs", () => {
    for (const k of [E.softmax, E.matmulF16, E.argmax, E.int4Dequant]) {
      const [a, b] = [lowerKernel(k), lowerKernel(k)];
      expect(funcEqual(a, b)).toBe(true);
      expect(funcEqual(a, b, { names: true })).toBe(true);
    }
  });

  test("renamed variables and buffers are equal, unless names are asked for", () => {
    const a = tiny();
    const b = tiny({ i: "q", x: "input", y: "output" });
    expect(funcEqual(a, b)).toBe(true);
    expect(funcDifference(a, b, { names: true })).toBe("buffer named x vs input");
  });

  test("the pairing is a bijection: x + y is not x + x", () => {
    const i = variable("i");
    const j = variable("j");
    const k = variable("k");
    const y = buffer("y", "i32", [i32c(4), i32c(4)]);
    const nest = (useSecond: boolean): Stmt =>
      forLoop(
        i,
        i32c(0),
        i32c(4),
        forLoop(
          useSecond ? j : k,
          i32c(0),
          i32c(4),
          store(y, [i, useSecond ? j : k], binary("+", i, useSecond ? j : i)),
        ),
      );
    expect(stmtEqual(nest(true), nest(true))).toBe(true);
    expect(stmtEqual(nest(true), nest(false))).toBe(false);
    expect(exprEqual(binary("+", i, j), binary("+", k, k))).toBe(false);
    expect(exprEqual(binary("+", i, j), binary("+", k, i))).toBe(true);
  });

  test("differences are described with where they are", () => {
    const a = tiny();
    expect(
      funcDifference(
        a,
        tiny(undefined, (i, x) => binary("-", x, constant(1, "f32"))),
      ),
    ).toBe('for i > block "y": x[i] + f32(1) vs x[i] - f32(1)');
    expect(
      funcDifference(
        a,
        tiny(undefined, (i, x) => binary("+", x, constant(2, "f32"))),
      ),
    ).toBe('for i > block "y": f32(1) vs f32(2)');
    expect(funcDifference(a, { ...a, name: "other" })).toBe("function tiny vs other");
    expect(funcDifference(a, { ...a, attrs: { target: "cuda" } })).toBe("function attributes differ");
    const l = a.body as Extract<Stmt, { kind: "for" }>;
    expect(funcDifference(a, { ...a, body: { ...l, forKind: "unrolled" } })).toBe(
      "for i: serial vs unrolled",
    );
    expect(funcDifference(a, { ...a, body: { ...l, annotations: { k: 1 } } })).toBe(
      "for i: annotations differ",
    );
    expect(
      funcDifference(a, {
        ...a,
        body: { ...l, body: { ...(l.body as Extract<Stmt, { kind: "block" }>), name: "z" } },
      }),
    ).toBe('for i: block "y" vs "z"');
    const x2 = buffer("x", "f32", [i32c(9)]);
    expect(funcDifference(a, { ...a, params: [{ kind: "buffer", buffer: x2 }, a.params[1]!] })).toBe(
      "buffer x: 8 vs 9",
    );
  });

  test("buffers must be used consistently, and allocations pair up", () => {
    const t = buffer("t", "f32", [i32c(2)], "local");
    const u = buffer("u", "f32", [i32c(2)], "local");
    const s1 = allocate(
      t,
      seq([store(t, [i32c(0)], constant(1, "f32")), store(t, [i32c(1)], load(t, [i32c(0)]))]),
    );
    const s2 = allocate(
      u,
      seq([store(u, [i32c(0)], constant(1, "f32")), store(u, [i32c(1)], load(u, [i32c(0)]))]),
    );
    expect(stmtEqual(s1, s2)).toBe(true);
    const shared = buffer("u", "f32", [i32c(2)], "shared");
    expect(stmtEqual(s1, allocate(shared, store(shared, [i32c(0)], constant(1, "f32"))))).toBe(false);
  });

  test("constants compare exactly: NaN equals NaN, -0 is not 0", () => {
    expect(exprEqual(constant(NaN, "f32"), constant(NaN, "f32"))).toBe(true);
    expect(exprEqual(constant(-0, "f32"), constant(0, "f32"))).toBe(false);
    expect(exprEqual(constant(1, "f32"), constant(1, "f16"))).toBe(false);
  });
});

describe("sameExpr", () => {
  test("compares variables by identity, not by name", () => {
    const i = variable("i");
    const other = variable("i");
    expect(sameExpr(binary("*", i, i32c(4)), binary("*", i, i32c(4)))).toBe(true);
    expect(sameExpr(binary("*", i, i32c(4)), binary("*", other, i32c(4)))).toBe(false);
  });
});
