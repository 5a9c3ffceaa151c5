/**
 * Compile-time constants passed with kernel(fn, { consts }) or withConsts: they take precedence
 * over module-level consts of the same name everywhere the kernel reads them, in shapes of local
 * tensors and in the constants those are built from included (a variant of a kernel is then one
 * consistent kernel, not a mix of two).
 */
import { describe, expect, it } from "vitest";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { f32, kernel, local, select, shared, withConsts, type Tensor } from "../../dsl/index.ts";
import { ndarray, zeros } from "../../dsl/ndarray.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { printFunc } from "../../lower/ir/printer.ts";

const TILE = 4;
const TWICE = TILE * 2;

/** y[0] = the sum of x[0 .. TWICE), staged through a local tensor of TWICE elements. */
const staged = kernel(function staged(x: Tensor<f32, [16]>, y: Tensor<f32, [1]>) {
  const t = local("f32", [TWICE]);
  for (let i = 0; i < TWICE; i++) t[i] = x[i];
  let s = f32(0);
  for (let j = 0; j < TWICE; j++) s += t[j];
  y[0] = s;
});

const MODE: number = 0;

/** y[i] = x[2 i] or x[i + 1], by a select on a compile-time constant. */
const picked = kernel(function picked(x: Tensor<f32, [16]>, y: Tensor<f32, [4]>) {
  for (let i = 0; i < 4; i++) y[i] = x[select(MODE === 1, i + 1, 2 * i)];
});

/** y[i] = x[i] + 1, or (MODE 1) x[i] staged through shared memory first: an if on a constant. */
const branched = kernel(function branched(x: Tensor<f32, [16]>, y: Tensor<f32, [4]>) {
  for (let i = 0; i < 4; i++) {
    if (MODE === 1) {
      const t = shared("f32", [1]);
      t[0] = x[i];
      y[i] = t[0];
    } else y[i] = x[i] + f32(1);
  }
});

describe("kernel consts", () => {
  it("keep only the branch an if on compile-time constants takes (the other is never lowered)", () => {
    const text = printFunc(lowerKernel(branched));
    expect(text).toContain("y[i] = x[i] + f32(1);");
    expect(text).not.toMatch(/if \(|shared/);
    const other = printFunc(lowerKernel(withConsts(branched, { MODE: 1 })));
    expect(other).toContain("const t = shared(f32, [1]);");
    expect(other).not.toMatch(/if \(|f32\(1\)/);
  });

  it("pick a select's branch when its condition is known at compile time (no select left in the IR)", () => {
    const x = ndarray(
      "f32",
      [16],
      Array.from({ length: 16 }, (_, i) => i),
    );
    const y = zeros("f32", [4]);
    expect(printFunc(lowerKernel(picked))).toContain("y[i] = x[2 * i];");
    cpuKernel(picked)({ x, y });
    expect(Array.from(y.data)).toEqual([0, 2, 4, 6]);
    const other = withConsts(picked, { MODE: 1 });
    expect(printFunc(lowerKernel(other))).toContain("y[i] = x[i + 1];");
    cpuKernel(other)({ x, y });
    expect(Array.from(y.data)).toEqual([1, 2, 3, 4]);
  });

  const x = ndarray(
    "f32",
    [16],
    Array.from({ length: 16 }, (_, i) => i + 1),
  );
  it("override module consts in local shapes and in the consts built from them", () => {
    const y = zeros("f32", [1]);
    cpuKernel(staged)({ x, y });
    expect(y.data[0]).toBe(36); // 1 + ... + 8
    const wide = withConsts(staged, { TILE: 8 });
    expect(printFunc(lowerKernel(wide))).toContain("const t = local(f32, [16]);");
    cpuKernel(wide)({ x, y });
    expect(y.data[0]).toBe(136); // 1 + ... + 16
  });

  it("give values to a factory's closure, shapes included", () => {
    const make = (n: number) =>
      kernel(
        function prefix(x: Tensor<f32, [16]>, y: Tensor<f32, [1]>) {
          const t = local("f32", [n]);
          for (let i = 0; i < n; i++) t[i] = x[i];
          let s = f32(0);
          for (let j = 0; j < n; j++) s += t[j];
          y[0] = s;
        },
        { consts: { n } },
      );
    const y = zeros("f32", [1]);
    cpuKernel(make(3))({ x, y });
    expect(y.data[0]).toBe(6);
  });
});
