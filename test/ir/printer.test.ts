/** Golden printed IR: the frontend's output for example kernels, as readable text. */
import { describe, expect, test } from "vitest";
import * as K from "../../examples/kernels.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { printFunc } from "../../lower/ir/printer.ts";

const GOLDEN = ["rmsNorm", "softmax", "matmulF16", "int4Dequant", "argmax", "siluMul"] as const;

describe("printed loop IR matches the golden files", () => {
  for (const name of GOLDEN) {
    test(name, async () => {
      await expect(printFunc(lowerKernel(K[name]))).toMatchFileSnapshot(`../golden/${name}.ir.txt`);
    });
  }

  test("printing is deterministic and names distinct variables apart", () => {
    const text = printFunc(lowerKernel(K.softmax));
    expect(printFunc(lowerKernel(K.softmax))).toBe(text);
    // Three loops over j in the source get three distinct names in the IR.
    expect(text).toMatch(/let j = 0[\s\S]*let j_1 = 0[\s\S]*let j_2 = 0/);
  });
});
