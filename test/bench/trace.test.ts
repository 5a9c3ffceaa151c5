/**
 * bench/device/trace.ts, the decode step's timeline from inside its kernels: the PTX rewrite that
 * makes every block write timing records, and the grouping of records into launches.
 */
import { describe, expect, it } from "vitest";
import { instrumentPtx, launchesOf } from "../../bench/device/trace.ts";
import { compileOp } from "../../llama/device/compile.ts";
import { llamaOps } from "../../llama/ops.ts";
import { CUDA_OP_CHOICES } from "../../llama/op-choices.ts";
import { LLAMA2_7B } from "../../llama/presets.ts";
import { GPU_SCHEDULES } from "../../stdlib/gpu/schedules.ts";
import { hasTool, llvmMissing, ptxasVerbose } from "../backends/llvm/helpers.ts";

const registers = (ptx: string): number => {
  const { status, log } = ptxasVerbose(ptx);
  expect(status, log).toBe(0);
  return Number(/Used (\d+) registers/.exec(log)![1]);
};

describe("the decode trace", () => {
  it.skipIf(llvmMissing !== "")(
    "adds a record at each block's start, after its wait and at each exit, keeping the kernel's registers",
    () => {
      const d = llamaOps(
        { ...LLAMA2_7B, contextLength: 1100 },
        "q4f16_1",
        GPU_SCHEDULES,
        CUDA_OP_CHOICES,
      ).decode;
      for (const op of [d.qkvRopeRms!, d.attentionSplit!, d.downRes!]) {
        const ptx = compileOp(op, "sm_90").image;
        const traced = instrumentPtx(ptx, 7, 0x7f0000001000n);
        const rets = ptx.match(/^\s*ret;/gm)!.length;
        // One atomic append a record: the start, the wait, one per exit.
        expect(traced.match(/atom\.global\.add\.u64/g), op.key).toHaveLength(2 + rets);
        expect(traced).toContain("mov.u64 %tkc_a, 139637976731648;");
        expect(traced).toContain("atom.global.add.u64 %tkc_i, [%tkc_i], 1;");
        // Kernel 7's records: its index in the key's top bits, the event in the next byte.
        expect(traced).toContain(`or.b32 %tkc_u1, %tkc_u3, ${(7 << 16) | (1 << 8)};`);
        if (hasTool("ptxas"))
          expect(Math.abs(registers(traced) - registers(ptx)), op.key).toBeLessThanOrEqual(4);
      }
      // With barriers, one more after each block-wide barrier (the epilogue's).
      const down = compileOp(d.downRes!, "sm_90").image;
      const bars = down.match(/^\s*bar\.sync/gm)!.length;
      const withBarriers = instrumentPtx(down, 2, 0n, true);
      expect(withBarriers.match(/atom\.global\.add\.u64/g)!.length).toBe(
        2 + down.match(/^\s*ret;/gm)!.length + Math.min(bars, 8),
      );
      expect(withBarriers).toContain(`or.b32 %tkc_u1, %tkc_u3, ${(2 << 16) | (3 << 8)};`);
      expect(() => instrumentPtx(".version 8.0\n", 0, 0n)).toThrow(/no kernel entry/);
      expect(() => instrumentPtx(".visible .entry k(\n)\n{\n}\n", 0, 0n)).toThrow(/no ret in the PTX/);
    },
  );

  it("groups records into launches by their exits, and takes each launch's starts and waits before its last exit", () => {
    // [kernel << 48 | event << 40 | smid << 32 | block, time in ns]; kernel 1 launched twice.
    const rec = (kernel: number, event: number, block: number, t: number) => [
      (BigInt(kernel) << 48n) | (BigInt(event) << 40n) | BigInt(block),
      BigInt(t),
    ];
    const rows = [
      ...[0, 1].flatMap((b) => [
        rec(1, 0, b, 1000 + b),
        rec(1, 1, b, 2000 + b),
        rec(1, 2, b, 5000 + 100 * b),
      ]),
      // The second launch's early starts come 30 us later; a late-wave block starts 8 us after them.
      rec(1, 0, 0, 30000),
      rec(1, 1, 0, 31000),
      rec(1, 0, 1, 38000),
      rec(1, 1, 1, 38500),
      rec(1, 2, 0, 36000),
      rec(1, 2, 1, 40000),
      // A block of a further wave, exiting 8 us after the others: the same launch.
      rec(1, 0, 2, 40100),
      rec(1, 1, 2, 40200),
      rec(1, 2, 2, 48000),
      rec(2, 0, 0, 4000),
      rec(2, 1, 0, 5300),
      rec(2, 2, 0, 6000),
    ].flat();
    const launches = launchesOf(BigUint64Array.from(rows), rows.length / 2, ["a", "gemv", "attn"]);
    expect(launches.map((l) => [l.kernel, l.blocks, l.firstStart, l.firstAfterWait, l.lastExit])).toEqual([
      ["gemv", 2, 1000, 2000, 5100],
      ["attn", 1, 4000, 5300, 6000],
      ["gemv", 3, 30000, 31000, 48000],
    ]);
    // Exits without the starts before them: records lost (a full region), said so.
    const exitsOnly = BigUint64Array.from(rec(1, 2, 0, 5000));
    expect(() => launchesOf(exitsOnly, 1, ["a", "gemv"])).toThrow(/a launch of gemv has exits but no starts/);
  });
});
