/**
 * The runners' --variant name={op choices}: parsed with a clear error for what is not that shape,
 * and merged over a device's choices with null unsetting one; and their count flags
 * (bench/device/models.ts).
 */
import { describe, expect, test } from "vitest";
import { parseChoicesVariant, positiveInteger, withChoices } from "../../bench/device/models.ts";

describe("op-choice variants of the benchmark runners", () => {
  test("name={json} parses; other shapes and bad JSON are refused saying what to write", () => {
    expect(parseChoicesVariant('fold-s4={"foldRowsGateUpNorm":true,"decodeSplits":4}')).toEqual({
      name: "fold-s4",
      choices: { foldRowsGateUpNorm: true, decodeSplits: 4 },
    });
    expect(() => parseChoicesVariant('a b={"x":1}')).toThrow(
      '--variant takes name={op choices as JSON}, got a b={"x":1}',
    );
    expect(() => parseChoicesVariant("s4=decodeSplits:4", "build-model: --variant")).toThrow(
      "build-model: --variant takes name={op choices as JSON}",
    );
    expect(() => parseChoicesVariant("s4={decodeSplits:4}")).toThrow("the op choices after = are not JSON");
  });

  test("choices merge over the base; null unsets one", () => {
    const base = { decodeSplits: 4, foldDecodeNorms: true, prefillGemm: "wgmma" };
    const v = parseChoicesVariant('x={"decodeSplits":8,"foldDecodeNorms":null}');
    expect(withChoices(base, v)).toEqual({ decodeSplits: 8, prefillGemm: "wgmma" });
    expect(withChoices(base, undefined)).toEqual(base);
    expect(base.decodeSplits).toBe(4);
  });

  test("a count flag takes a whole number of at least 1 and says which flag otherwise", () => {
    expect(positiveInteger("3", "--decode-runs")).toBe(3);
    for (const bad of ["x", "0", "1.5", "-2"])
      expect(() => positiveInteger(bad, "--decode-runs")).toThrow(
        `--decode-runs takes a whole number of at least 1, got ${bad}`,
      );
  });
});
