/**
 * The kernels CUDA's choices (llama/op-choices.ts CUDA_OP_CHOICES) add to a model, compiled for sm_90 at
 * Llama-2-7B's shapes: the split decode attention, whose loop over chunks is bounded by the
 * length read from device memory (uniform: a never-written buffer read at a uniform index, so its
 * shuffles and barriers may sit in that loop), the tensor-core prefill GEMMs (one mma.sync per
 * product; f16GemmMma asks ptxas for two blocks per multiprocessor) and prefill attention.
 */
import { describe, expect, it } from "vitest";
import { compileOp } from "../../../llama/device/compile.ts";
import { llamaOps } from "../../../llama/ops.ts";
import { CUDA_OP_CHOICES, cudaOpChoices } from "../../../llama/op-choices.ts";
import { LLAMA2_7B } from "../../../llama/presets.ts";
import { GPU_SCHEDULES } from "../../../stdlib/gpu/schedules.ts";
import { llvmMissing } from "./helpers.ts";

const config = { ...LLAMA2_7B, contextLength: 1100 };

describe.skipIf(llvmMissing !== "")(
  "CUDA's kernel choices at Llama-2-7B's shapes, compiled for sm_90",
  () => {
    it("split decode attention: shuffles in a loop bounded by the length in memory", () => {
      const ops = llamaOps(config, "q4f16_1", GPU_SCHEDULES, CUDA_OP_CHOICES);
      expect(ops.decode.attention).toBeUndefined();
      expect(ops.decode.attentionCombine).toBeDefined();
      const ptx = compileOp(ops.decode.attentionSplit!, "sm_90").image;
      expect(ptx).toMatch(/shfl\.sync\.bfly/);
      expect(ptx).toMatch(/bar\.sync/);
    });

    it("decode: RMSNorm, QKV, RoPE and the append in one GEMV; it and the down projection let the next kernel launch only at their epilogue", () => {
      const d = llamaOps(config, "q4f16_1", GPU_SCHEDULES, CUDA_OP_CHOICES).decode;
      expect(d.qkvRopeRms!.kernel.name).toBe("q4QkvRopeAppendRmsMma");
      const late = Object.entries(d).flatMap(([name, o]) =>
        o.dependentsLaunch ? [[name, o.dependentsLaunch]] : [],
      );
      expect(late).toEqual([
        ["attentionCombine", "start"],
        ["qkvRopeRms", "epilogue"],
        ["downRes", "epilogue"],
      ]);
      // The trigger after the wait, or after the last block barrier (before the epilogue's
      // stores): a line index relative to the wait's and the first global store's.
      const trigger = (o: (typeof d)[string]) => {
        const lines = (compileOp(o, "sm_90").image as string)
          .split("\n")
          .filter((l) => !l.trim().startsWith("//"));
        const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
        const [wait, launch, store] = [at(/griddepcontrol\.wait/), at(/launch_dependents/), at(/st\.global/)];
        return launch < 0
          ? "none"
          : launch < wait
            ? "start"
            : launch === wait + 1
              ? "wait"
              : launch < store
                ? "epilogue"
                : "late";
      };
      expect([
        trigger(d.qkvRopeRms!),
        trigger(d.downRes!),
        trigger(d.oRes!),
        trigger(d.attentionSplit!),
        trigger(d.attentionCombine!),
      ]).toEqual(["epilogue", "epilogue", "wait", "wait", "start"]);
      const atExit = llamaOps(config, "q4f16_1", GPU_SCHEDULES, {
        ...CUDA_OP_CHOICES,
        decodeDependentsLaunch: { downRes: "exit" },
      }).decode;
      expect([trigger(atExit.downRes!), trigger(atExit.qkvRopeRms!)]).toEqual(["none", "wait"]);
      // 768 blocks of 16 rows (8 rotation pairs), as the plain QKV GEMV's tuned variant.
      const grid = compileOp(d.qkvRopeRms!, "sm_90").launch.grid;
      expect(grid.map((e) => (e.kind === "const" ? e.value : undefined))).toEqual([768, 1, 1]);
      expect(() =>
        llamaOps(config, "q4f16_1", {}, { decodeDependentsLaunch: { downRes: "later" as never } }),
      ).toThrow(
        /decodeDependentsLaunch maps decode ops to "start", "epilogue", "exit", got "later" for downRes/,
      );
    });

    it("decode: the fused QKV GEMV's blocks prefetch the attention's cache rows into L2 after their stores; only the O projection prefetches its weights where a list names it", () => {
      const ptxOf = (choices: object, op: string) =>
        compileOp(
          llamaOps(config, "q4f16_1", GPU_SCHEDULES, { ...CUDA_OP_CHOICES, ...choices }).decode[op]!,
          "sm_90",
        ).image;
      const bulk = /cp\.async\.bulk\.prefetch\.L2\.global/g;
      const ptx = ptxOf({}, "qkvRopeRms");
      // One range for the keys and one for the values of each of a block's two position slots.
      expect(ptx.match(bulk)).toHaveLength(4);
      expect(ptx.lastIndexOf("st.global")).toBeLessThan(ptx.search(bulk));
      expect(ptxOf({ prefetchDecodeKv: false }, "qkvRopeRms")).not.toMatch(bulk);
      const listed = { prefetchDecodeWeights: ["oRes"] };
      expect(ptxOf(listed, "oRes")).toMatch(bulk);
      expect(ptxOf(listed, "downRes")).not.toMatch(bulk);
    });

    it("prefill GEMMs on tensor cores; f16GemmMma capped for two blocks per multiprocessor", () => {
      const q4 = llamaOps(config, "q4f16_1", GPU_SCHEDULES, CUDA_OP_CHOICES).prefill.gemmQkvRope!;
      const f16 = llamaOps(config, "f16", GPU_SCHEDULES, CUDA_OP_CHOICES).prefill.gemmQ!;
      // Hopper's q4f16_1 GEMMs on wgmma (sm_90a); sm_80's on mma.m16n8k16, as f16's everywhere.
      expect(q4.kernel.name).toBe("q4QkvRopeAppendGemmWgmma");
      expect(f16.kernel.name).toBe("f16GemmMma");
      const ampere = llamaOps(config, "q4f16_1", GPU_SCHEDULES, cudaOpChoices("sm_80")).prefill.gemmQkvRope!;
      expect(ampere.kernel.name).toBe("q4QkvRopeAppendGemmMma");
      expect(cudaOpChoices("sm_90", [10, 0]).prefillGemm).toBe("mma");
      const q4Ptx = compileOp(q4, "sm_90").image;
      const f16Ptx = compileOp(f16, "sm_90").image;
      expect(q4Ptx).toMatch(/^\.target sm_90a/m);
      expect(q4Ptx).toMatch(/wgmma\.mma_async\.sync\.aligned\.m64n128k16\.f32\.f16\.f16/);
      expect(f16Ptx).toMatch(/mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.f16\.f16\.f32/);
      expect(f16Ptx).toMatch(/\.minnctapersm 2/);
      // f16GemmMma copies K in 16-byte runs: a hidden size not a multiple of 8 keeps the tiled GEMMs.
      const odd = llamaOps({ ...config, hiddenDim: 11004 }, "f16", GPU_SCHEDULES, CUDA_OP_CHOICES).prefill;
      expect(odd.gemmDown!.kernel.name).toBe("f16GemmTiled");
      expect(q4Ptx).not.toMatch(/\.minnctapersm/);
    });

    it("prefill element-wise kernels take 16 bytes a thread: the residual add and the SwiGLU gate (11008 = 1376 runs of 8)", () => {
      // (f16 models; q4f16_1 on CUDA adds and gates in the GEMMs' epilogues.)
      const ops = llamaOps(config, "f16", GPU_SCHEDULES, CUDA_OP_CHOICES).prefill;
      expect(llamaOps(config, "q4f16_1", GPU_SCHEDULES, CUDA_OP_CHOICES).prefill.residual).toBeUndefined();
      for (const op of [ops.residual!, ops.siluMul!]) {
        const ptx = compileOp(op, "sm_90").image;
        // The output may alias an input: every lane's loads come before the lanes' stores.
        expect(ptx, op.key).toMatch(/ld\.global(\.nc)?\.v4\.b32/);
        expect(ptx, op.key).toMatch(/st\.global\.v4\.b32/);
        expect(ptx, op.key).not.toMatch(/ld\.global(\.nc)?\.b16/);
      }
    });

    it("prefill attention on tensor cores for f16 activations; f32 models and other head sizes keep chunks", () => {
      const attention = (format: "q4f16_1" | "f16" | "f32", c = config) =>
        llamaOps(c, format, GPU_SCHEDULES, CUDA_OP_CHOICES).prefill.attention!;
      expect(attention("q4f16_1").kernel.name).toBe("attentionPrefillMma");
      expect(attention("f16").kernel.name).toBe("attentionPrefillMma");
      expect(attention("f32").kernel.name).toBe("attentionPrefillWarps");
      // Head dimension 160: not at most 128 (the kernel's fragments), a multiple of 32 (chunks').
      expect(attention("q4f16_1", { ...config, dim: 5120 }).kernel.name).toBe("attentionPrefillWarps");
      const ptx = compileOp(attention("q4f16_1"), "sm_90").image;
      // Per chunk of 64 positions and warp: 8 x 8 products for the scores, 4 x 16 for the output.
      expect(ptx.match(/mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.f16\.f16\.f32/g)?.length).toBe(128);
    });
  },
);
