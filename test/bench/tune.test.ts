/**
 * bench/tune.ts's choice of schedule parameters from a tuning run: per shape, per family (least
 * total over its shapes), and from Vulkan tuning runs (checked candidates only, host time first).
 */
import { describe, expect, it } from "vitest";
import {
  bestPerFamily,
  bestPerShape,
  bestVulkanPerShape,
  type TuneResult,
  type VulkanTuneResult,
} from "../../bench/tune.ts";

const r = (family: string, rows: number, shape: string, us: number | null): TuneResult =>
  ({ family, params: { rows, lanes: 32 }, shape, us, fractionOfCopy: 0 }) as unknown as TuneResult;

describe("the CUDA tuner's choices", () => {
  it("takes each shape's fastest, and the family's least total over the shapes it ran at all", () => {
    const results = [
      r("gemv", 1, "4096x4096", 10),
      r("gemv", 1, "12288x4096", 30),
      r("gemv", 2, "4096x4096", 8),
      r("gemv", 2, "12288x4096", 40),
      // Fastest at one shape, but failed at the other: no family candidate.
      r("gemv", 4, "4096x4096", 5),
      r("gemv", 4, "12288x4096", null),
    ];
    const shapes = bestPerShape(results);
    expect(shapes.get("gemv:4096x4096")).toEqual({ params: { rows: 4, lanes: 32 }, us: 5 });
    expect(shapes.get("gemv:12288x4096")).toEqual({ params: { rows: 1, lanes: 32 }, us: 30 });
    expect(bestPerFamily(results).get("gemv")).toEqual({ params: { rows: 1, lanes: 32 }, us: 40 });
  });
});

describe("the Vulkan tuner's choices", () => {
  const v = (
    name: string,
    rows: number,
    host: number | undefined,
    stamped: number,
    ok = true,
  ): VulkanTuneResult => ({
    name,
    params: { family: "gemvRows", n: 4096, k: 4096, rows, lanes: 32, unrollGroups: true },
    ...(host === undefined ? {} : { hostUsPerDispatch: host }),
    usPerDispatch: stamped,
    check: { ok },
  });
  it("goes by host time where there is one, and leaves out failed checks and failed timings", () => {
    const best = bestVulkanPerShape([
      v("a", 1, 9, 5), // timestamps say faster; the host time decides
      v("b", 2, 8, 20),
      v("c", 4, 1, 1, false), // fastest but wrong
      v("d", 8, Infinity, 1),
    ]);
    expect(best.get("gemvRows:4096x4096")).toEqual({
      params: { rows: 2, lanes: 32, unrollGroups: true },
      us: 8,
      name: "b",
    });
    expect(bestVulkanPerShape([v("e", 1, undefined, 7)]).get("gemvRows:4096x4096")?.us).toBe(7);
  });
});
