/**
 * Traces of chained primitives: every call is recorded with its result, the trace survives JSON,
 * and replaying it on the unscheduled function gives the same IR (structurally and as text).
 */
import { describe, expect, test } from "vitest";
import * as E from "../../examples/kernels.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { funcDifference, funcEqual } from "../../lower/ir/equal.ts";
import { printFunc } from "../../lower/ir/printer.ts";
// The schedule modules this file tests, imported directly so other families' work cannot break it.
import "../../lower/schedule/loop_transformation.ts";
import "../../lower/schedule/for_kind.ts";
import { ScheduleError } from "../../lower/schedule/errors.ts";
import { Schedule, replay, traceFromJson, traceToJson } from "../../lower/schedule/schedule.ts";
import { expectSameResults } from "../helpers/random.ts";
import * as K from "./loop_kernels.ts";
import { expectTraceRoundTrip, expectValid } from "./roundtrip.ts";

/** A GPU-style tiling of a matmul: tiles over blocks and threads, k outside the register tile. */
function tileMatmul(s: Schedule, p = { tile: 4, vec: 2 }): void {
  const [i0, i1] = s.split("i", [null, p.tile]);
  const [j0, j1, j2] = s.split("j", [null, p.tile, p.vec]);
  s.reorder(i0!, j0!, j1!, "k", i1!, j2!);
  s.bind(i0!, "blockIdx.x");
  s.bind(j0!, "blockIdx.y");
  s.bind(j1!, "threadIdx.x");
  s.unroll(i1!);
  s.vectorize(j2!);
  s.annotate("k", "software_pipeline", 2);
}

describe("trace round trips", () => {
  test("split + reorder + bind + unroll + vectorize on a matmul", () => {
    const s = Schedule.of(K.matmulInt);
    tileMatmul(s);
    expect(JSON.parse(traceToJson(s.trace))).toEqual({
      version: 1,
      func: "matmulInt",
      steps: [
        { op: "split", args: ["i", [null, 4]], result: ["i_0", "i_1"] },
        { op: "split", args: ["j", [null, 4, 2]], result: ["j_0", "j_1", "j_2"] },
        { op: "reorder", args: ["i_0", "j_0", "j_1", "k", "i_1", "j_2"], result: null },
        { op: "bind", args: ["i_0", "blockIdx.x"], result: null },
        { op: "bind", args: ["j_0", "blockIdx.y"], result: null },
        { op: "bind", args: ["j_1", "threadIdx.x"], result: null },
        { op: "unroll", args: ["i_1"], result: null },
        { op: "vectorize", args: ["j_2"], result: null },
        { op: "annotate", args: ["k", "software_pipeline", 2], result: null },
      ],
    });
    expectTraceRoundTrip(s);
    expectValid(s);
    expectSameResults(s.original, s.func, {});
    expect(printFunc(s.func)).toMatchInlineSnapshot(`
      "function matmulInt(a: Tensor<i32, [7, 5]>, b: Tensor<i32, [5, 9]>, c: Tensor<i32, [7, 9]>) {
        for (let i_0 = 0; i_0 < 2; i_0++) { // blockIdx.x
          for (let j_0 = 0; j_0 < 2; j_0++) { // blockIdx.y
            for (let j_1 = 0; j_1 < 4; j_1++) { // threadIdx.x
              for (let k = 0; k < 5; k++) { // software_pipeline=2
                for (let i_1 = 0; i_1 < 4; i_1++) { // unrolled
                  for (let j_2 = 0; j_2 < 2; j_2++) { // vectorized
                    if ((j_0 * 4 + j_1) * 2 + j_2 < 9) {
                      if (i_0 * 4 + i_1 < 7) {
                        block "c" {
                          c[i_0 * 4 + i_1][(j_0 * 4 + j_1) * 2 + j_2] = c[i_0 * 4 + i_1][(j_0 * 4 + j_1) * 2 + j_2] + a[i_0 * 4 + i_1][k] * b[k][(j_0 * 4 + j_1) * 2 + j_2];
                        }
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
      "
    `);
  });

  test("the same schedule on a symbolic f32 matmul, replayed on a fresh lowering", () => {
    const s = Schedule.of(K.matmulSym);
    tileMatmul(s, { tile: 2, vec: 4 });
    // A fresh lowering has new variable and buffer objects: replay is by name, not identity.
    const fresh = lowerKernel(K.matmulSym);
    const r = replay(fresh, traceFromJson(traceToJson(s.trace)));
    expect(funcEqual(r.func, s.func, { names: true })).toBe(true);
    expect(printFunc(r.func)).toBe(printFunc(s.func));
    for (const symbols of [
      { m: 5, p: 3, n: 11 },
      { m: 2, p: 1, n: 8 },
    ])
      expectSameResults(s.original, s.func, symbols); // k stays in order per element: exact
  });

  test("a CPU schedule: fuse + split + parallel + vectorize", () => {
    const s = Schedule.of(E.addBroadcast);
    const [, j1] = s.split("j", [null, 4]);
    s.vectorize(j1!);
    s.parallel(s.fuse("i", "j_0"));
    expectTraceRoundTrip(s);
    expectSameResults(s.original, s.func, { m: 3, n: 10 });
  });

  test("a row-per-block softmax with cross-thread reductions", () => {
    const s = Schedule.of(E.softmax);
    s.bind("i", "blockIdx.x");
    for (const j of ["j", "j_1", "j_2"]) {
      const [, inner] = s.split(j, [null, 32]);
      s.bind(inner!, "threadIdx.x");
    }
    expectTraceRoundTrip(s);
    expectValid(s);
    expectSameResults(s.original, s.func, { m: 2, n: 45 });
  });

  test("a refused step is not recorded, and the schedule goes on from where it was", () => {
    const s = Schedule.of(K.matmulInt);
    s.split("i", [null, 2]);
    const before = printFunc(s.func);
    expect(() => s.vectorize("k")).toThrow(ScheduleError);
    expect(printFunc(s.func)).toBe(before);
    expect(s.trace.steps).toHaveLength(1);
    expectTraceRoundTrip(s);
  });

  test("replay refuses a trace for another function, and a trace that does not fit", () => {
    const s = Schedule.of(K.matmulInt);
    s.split("j", [null, 4]);
    expect(() => replay(lowerKernel(K.matmulSym), s.trace)).toThrow(
      /the trace is for matmulInt, not matmulSym/,
    );
    const bad = { ...s.trace, steps: [{ op: "split" as const, args: ["zz", [null, 2]], result: null }] };
    expect(() => replay(s.original, bad)).toThrow(/no loop named zz/);
  });

  test("structural equality sees what differs between two schedules", () => {
    const a = Schedule.of(K.matmulInt);
    const b = Schedule.of(K.matmulInt);
    a.split("i", [null, 4]);
    b.split("i", [null, 2]);
    expect(funcDifference(a.func, b.func)).toBe("for i_0: 2 vs 4");
  });
});
