import { expect, test } from "vitest";
import * as K from "../../examples/kernels.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { funcFromJson, funcToJson } from "../../lower/ir/serialize.ts";
import { walk } from "../../lower/ir/transform.ts";
import type { Var } from "../../lower/ir/nodes.ts";

test("IR survives JSON for every example kernel, variable identity included", () => {
  for (const k of Object.values(K)) {
    if (typeof k !== "object") continue;
    const f = lowerKernel(k);
    const back = funcFromJson(JSON.parse(JSON.stringify(funcToJson(f))));
    expect(printFunc(back)).toBe(printFunc(f));
    // Each distinct variable of the original maps to one distinct object after the round trip.
    const count = (fn: typeof f) => {
      const vars = new Set<Var>();
      walk(fn.body, (n) => void (n.kind === "var" && vars.add(n)));
      return vars.size;
    };
    expect(count(back)).toBe(count(f));
  }
});

test("a file that is not tkc IR is refused", () => {
  expect(() => funcFromJson({ format: "other" } as never)).toThrow(/not a tkc IR file/);
});
