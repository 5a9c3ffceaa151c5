/** The IR verifier: valid functions pass; each kind of broken IR is named where it happens. */
import { describe, expect, test } from "vitest";
import * as E from "../../examples/kernels.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import {
  allocate,
  binary,
  block,
  buffer,
  cast,
  constant,
  forLoop,
  i32c,
  ifThen,
  letStmt,
  load,
  select,
  seq,
  store,
  variable,
} from "../../lower/ir/build.ts";
import type { Buffer, PrimFunc, Stmt, Var } from "../../lower/ir/nodes.ts";
import { VerifyError, assertValid, verifyFunc } from "../../lower/ir/verify.ts";
import * as K from "../schedule/loop_kernels.ts";

const x = buffer("x", "f32", [i32c(8)]);
const y = buffer("y", "f32", [i32c(8)]);
const n = variable("n");
const func = (body: Stmt, params: PrimFunc["params"] = [], symbols: Var[] = []): PrimFunc => ({
  kind: "func",
  name: "f",
  params: [{ kind: "buffer", buffer: x }, { kind: "buffer", buffer: y }, ...params],
  symbols,
  body,
  attrs: {},
});
const loopOver = (body: (i: Var) => Stmt, name = "i"): Stmt => {
  const i = variable(name);
  return forLoop(i, i32c(0), i32c(8), body(i));
};
const copy = (i: Var, into: Buffer = y): Stmt => block("y", store(into, [i], load(x, [i])));

describe("valid IR passes", () => {
  test("every example kernel and test kernel as lowered", () => {
    for (const k of [...Object.values(E), ...Object.values(K)])
      if (typeof k === "object" && k.kind === "kernel")
        expect(verifyFunc(lowerKernel(k)), k.name).toEqual([]);
  });

  test("sibling loops may bind the same thread axis; a symbol may size a loop", () => {
    const i = variable("i");
    const j = variable("j");
    const body = seq([
      forLoop(i, i32c(0), n, copy(i), "thread", "threadIdx.x"),
      forLoop(j, i32c(0), i32c(8), copy(j), "thread", "threadIdx.x"),
    ]);
    expect(verifyFunc(func(body, [], [n]))).toEqual([]);
  });
});

describe("broken IR is reported where it is", () => {
  test("a variable used outside its loop", () => {
    const i = variable("i");
    const body = seq([forLoop(i, i32c(0), i32c(8), copy(i)), block("y", store(y, [i], constant(0, "f32")))]);
    expect(verifyFunc(func(body))).toEqual([
      'block "y": variable i is used outside any loop or let that binds it',
    ]);
  });

  test("a buffer used outside its allocation, and one allocated twice", () => {
    const t = buffer("t", "f32", [i32c(8)], "local");
    const body = seq([
      allocate(
        t,
        loopOver((i) => store(t, [i], load(x, [i]))),
      ),
      loopOver((i) => store(y, [i], load(t, [i])), "j"),
      allocate(
        t,
        allocate(
          t,
          loopOver((i) => store(t, [i], load(x, [i])), "k"),
        ),
      ),
    ]);
    expect(verifyFunc(func(body))).toEqual([
      "for j: load t[j]: buffer t is neither a parameter nor allocated around this use",
      "buffer t is allocated again while it is already live",
    ]);
  });

  test("store dtypes, index counts and index dtypes", () => {
    const body = loopOver((i) =>
      seq([
        block("a", store(y, [i], cast("f16", load(x, [i])))),
        block("b", store(y, [i, i], load(x, [i]))),
        block("c", store(y, [cast("f32", i)], load(x, [i]))),
      ]),
    );
    expect(verifyFunc(func(body))).toEqual([
      'for i > block "a": store to y[i]: the value is f16 but y holds f32',
      'for i > block "b": store to y[i][i]: 2 indices for a buffer of rank 1',
      'for i > block "c": store to y[f32(i)]: index f32(i) is f32, not an integer',
    ]);
  });

  test("binary operands that disagree, and conditions that are not bool", () => {
    const body = loopOver((i) =>
      seq([
        store(y, [i], binary("+", load(x, [i]), i32c(1))),
        ifThen(i, copy(i)),
        store(y, [i], select(load(x, [i]), load(x, [i]), load(x, [i]))),
        ifThen(binary("&&", i, i), copy(i)),
      ]),
    );
    expect(verifyFunc(func(body))).toEqual([
      "for i: x[i] + 1: operands of + are f32 and i32",
      "for i: if (i): the condition is i32, not bool",
      "for i: select(x[i], x[i], x[i]): the condition is f32, not bool",
      "for i: i && i: operands of && must be bool, not i32",
    ]);
  });

  test("a thread axis bound twice on one path, and a thread loop without its tag", () => {
    const i = variable("i");
    const j = variable("j");
    const k = variable("k");
    const nested = forLoop(
      i,
      i32c(0),
      i32c(2),
      forLoop(j, i32c(0), i32c(4), copy(j), "thread", "threadIdx.x"),
      "thread",
      "threadIdx.x",
    );
    const untagged = forLoop(k, i32c(0), i32c(8), copy(k), "thread");
    expect(verifyFunc(func(seq([nested, untagged])))).toEqual([
      "for i: for j: threadIdx.x is bound again inside a loop already bound to it",
      'for k: a thread tag goes with the "thread" loop kind (kind thread, tag none)',
    ]);
  });

  test("let dtypes and rebinding a variable in scope", () => {
    const v = variable("v", "f32");
    const i = variable("i");
    const body = forLoop(i, i32c(0), i32c(8), letStmt(v, i, forLoop(i, i32c(0), i32c(2), store(y, [i], v))));
    expect(verifyFunc(func(body))).toEqual([
      "for i: const v = i: the value is i32 but v is f32",
      "for i: for i binds i again while it is already bound",
    ]);
  });

  test("assertValid throws one error listing every problem", () => {
    const i = variable("i");
    const f = func(block("y", store(y, [i], constant(1, "f16"))));
    expect(() => assertValid(f)).toThrow(VerifyError);
    expect(() => assertValid(f)).toThrow(
      /tkc verify: f: 2 problem\(s\):\n {2}block "y": variable i is used .*\n {2}block "y": store to y\[i\]: the value is f16 but y holds f32/,
    );
    expect(() => assertValid(lowerKernel(E.softmax))).not.toThrow();
  });
});
