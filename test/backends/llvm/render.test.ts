// Every stdlib kernel, scheduled by its GPU schedule (stdlib/gpu/schedules.ts) and lowered for each
// LLVM target, renders to LLVM IR that LLVM's verifier accepts and that compiles: PTX that ptxas
// assembles for sm_90, and gfx1100 (wave32) / gfx942 (wave64) code objects whose disassembly holds
// the kernel. Sizes come from the ops of the stories15M model (llamaOps in q4f16_1 and f16);
// kernels no model op uses get small sizes (SIZES), token counts staying symbolic. Golden LLVM IR of
// three small kernels pins the renderer's text (test/golden/*.ll).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { KernelDef } from "../../../dsl/kernel.ts";
import { compileLLVM } from "../../../backends/llvm/compile.ts";
import { renderLLVM } from "../../../backends/llvm/render.ts";
import type { LlamaConfig } from "../../../llama/config.ts";
import { GPU_TARGETS } from "../../../llama/device/library.ts";
import { scheduledFunc } from "../../../llama/device/prepare.ts";
import type { OpSpec } from "../../../llama/device/types.ts";
import { allOps, llamaOps } from "../../../llama/ops.ts";
import { lowerKernel } from "../../../lower/frontend/lower.ts";
import type { PrimFunc } from "../../../lower/ir/nodes.ts";
import { walk } from "../../../lower/ir/transform.ts";
import { lowerToDevice } from "../../../lower/passes/pipeline.ts";
import * as stdlib from "../../../stdlib/index.ts";
import { GPU_SCHEDULES } from "../../../stdlib/gpu/schedules.ts";
import { hasTool, llvmMissing } from "./helpers.ts";

/** stories15M's shape (llama2.c: interleaved rotary, shared classifier). */
const STORIES15M: LlamaConfig = {
  dim: 288,
  hiddenDim: 768,
  nLayers: 6,
  nHeads: 6,
  nKvHeads: 6,
  vocabSize: 32000,
  normEps: 1e-5,
  ropeTheta: 10000,
  contextLength: 256,
  ropeLayout: "interleaved",
  sharedClassifier: true,
  bosId: 1,
  eosId: 2,
};

/**
 * Sizes for the kernels no stories15M op uses (which kernels the model picks changes as the stdlib
 * grows), by symbol name; q4 weights: kw = k/8, kg = k/32. Token counts (m, t) and the sampling
 * kernels' vocabulary (v) stay symbolic: the ABI passes them as arguments.
 */
const SIZES: Readonly<Record<string, number>> = {
  k: 256,
  kw: 32,
  kg: 8,
  n: 64,
  n2: 128,
  i: 64,
  qd: 256,
  kvd: 64,
  h: 4,
  d: 32,
  ctx: 64,
  kvh: 2,
  vocab: 100,
  dim: 256,
  dw: 32,
  dg: 8,
};

/**
 * Where a kernel needs other sizes: q4QkvRopeAppendGemmMma's heads hold a block's 32 rotation
 * pairs, q4QkvRopeAppendGemmWgmma's 64; split K's splits (a run-time count would let ptxas
 * serialize the wgmma products); the split attention's splits.
 */
const KERNEL_SIZES: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  q4QkvRopeAppendGemmMma: { d: 64, n: 512 },
  q4QkvRopeAppendGemmWgmma: { d: 128, n: 1024 },
  // Split K as the model specializes it: 2 splits of 4 stages, the last 64 outputs.
  q4GateUpSplitKGemmWgmma: { s: 2, p: 64 },
  gateUpSiluSplitReduce: { s: 2, p: 64 },
  // Splits as the model specializes them (its combination unrolls over them).
  attentionDecodeSplitLast: { splits: 4 },
};

const kernels = Object.entries(stdlib).filter(
  (e): e is [string, KernelDef] =>
    typeof e[1] === "object" && e[1] !== null && (e[1] as { kind?: unknown }).kind === "kernel",
);

/** One case per distinct (kernel, sizes, retyping): the model's ops, then the remaining kernels. */
function cases(): OpSpec[] {
  const fromModel = [
    ...(["q4f16_1", "f16"] as const).flatMap((f) => allOps(llamaOps(STORIES15M, f, GPU_SCHEDULES))),
    // The Hugging Face rotary layout, which llama2.c models do not use.
    ...allOps(llamaOps({ ...STORIES15M, ropeLayout: "half" }, "f16", GPU_SCHEDULES)).filter(
      (o) => o.kernel === stdlib.ropeHalf,
    ),
  ];
  const seen = new Map<string, OpSpec>();
  for (const o of fromModel) {
    const id = JSON.stringify([o.kernel.name, o.specialize, o.retype, o.scalarsInMemory]);
    if (!seen.has(id)) seen.set(id, o);
  }
  const covered = new Set([...seen.values()].map((o) => o.kernel.name));
  for (const [name, k] of kernels) {
    if (covered.has(name)) continue;
    const own = KERNEL_SIZES[name] ?? {};
    const sizes = Object.fromEntries(
      lowerKernel(k).symbols.flatMap((v) => {
        const size = own[v.name] ?? SIZES[v.name];
        return size ? [[v.name, size]] : [];
      }),
    );
    seen.set(name, {
      key: name,
      kernel: k,
      ...(Object.keys(sizes).length ? { specialize: sizes } : {}),
      ...(GPU_SCHEDULES[name] ? { schedule: GPU_SCHEDULES[name] } : {}),
    });
  }
  return [...seen.values()];
}

const CASES = cases();

const ptxas = hasTool("ptxas");
const lld = hasTool(process.env.TKC_LD_LLD ?? "ld.lld-19");
const objdump = hasTool("llvm-objdump-19");
const note = (missing: boolean, what: string) => (missing ? ` [skipped: ${what}]` : "");

const work = mkdtempSync(join(tmpdir(), "tkc-render-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs a tool on bytes written to a file; returns stdout + stderr and the status. */
function tool(cmd: string, args: (file: string) => string[], input: string | Uint8Array, name: string) {
  const file = join(work, name);
  writeFileSync(file, input);
  const r = spawnSync(cmd, args(file), { encoding: "utf8" });
  if (r.error) throw r.error;
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/**
 * The tensor-core GEMVs (stdlib/q4_gemv_mma.ts), the q4 GEMM and prefill attention: NVIDIA only,
 * their schedules refuse AMD targets.
 */
const needsMma = (spec: OpSpec): boolean =>
  /^(q4(Gemv|GateUp|QkvRope|Qkv|Gemm)\w*|attentionPrefill)(Mma|Wgmma)$/.test(spec.kernel.name);

const device = (spec: OpSpec, target: string): PrimFunc =>
  lowerToDevice(scheduledFunc(spec, target), GPU_TARGETS[target]!.lowering);

describe("the cases", () => {
  it("cover every stdlib kernel, each with its GPU schedule where it has one", () => {
    const names = new Set(CASES.map((c) => c.kernel.name));
    for (const [name] of kernels) expect(names, name).toContain(name);
    for (const c of CASES)
      expect(c.schedule !== undefined, c.key).toBe(GPU_SCHEDULES[c.kernel.name] !== undefined);
  });
});

describe.skipIf(llvmMissing !== "")(
  `stdlib kernels through LLVM 19${note(llvmMissing !== "", llvmMissing)}`,
  () => {
    it.each(CASES.map((c) => [c.key, c] as const))(
      `%s: nvptx sm_90 verifies, compiles, and ptxas -arch=sm_90 accepts it${note(!ptxas, "ptxas not found")}`,
      (_key, spec) => {
        const f = device(spec, "sm_90");
        const r = renderLLVM(f, GPU_TARGETS.sm_90!.llvm);
        const c = compileLLVM(r.text, GPU_TARGETS.sm_90!.llvm); // runs LLVM's verifier first
        expect(c.ptx).toContain(`.visible .entry ${r.name}(`);
        if (!ptxas) return;
        // Kernels with wgmma are compiled for sm_90a (its architecture-specific features).
        const arch = /^\.target sm_90a/m.test(c.ptx!) ? "sm_90a" : "sm_90";
        expect(arch === "sm_90a").toBe(spec.kernel.name.endsWith("Wgmma"));
        const p = tool(
          "ptxas",
          (file) => [`-arch=${arch}`, file, "-o", "/dev/null"],
          c.ptx!,
          `${r.name}.ptx`,
        );
        expect(p.out).toBe("");
        expect(p.status).toBe(0);
      },
    );

    it("renders the q4 dequantizations' mask-and-bias (x & C1) | C2 as one lop3 on NVIDIA, plain and/or elsewhere", () => {
      // q4Gemv's codes: masked into the f32 2^23's mantissa, its exponent OR-ed in (q4_common.ts).
      const spec = CASES.find((c) => c.kernel.name === "q4Gemv")!;
      const ptx = renderLLVM(device(spec, "sm_90"), GPU_TARGETS.sm_90!.llvm).text;
      expect(ptx).toMatch(
        /asm "lop3\.b32 \$0, \$1, \$2, \$3, 0xEA;", "=r,r,r,r"\(i32 %\w+, i32 (-?\d+), i32 1258291200\)/,
      );
      const amd = renderLLVM(device(spec, "gfx1100"), GPU_TARGETS.gfx1100!.llvm).text;
      expect(amd).not.toContain("lop3");
      expect(amd).toMatch(/or i32 %\w+, 1258291200/);
      // The asm touches no memory and returns, so the loads around it still merge: each lane's
      // words and x come in 16-byte loads (one word and one x at a time was 5x slower on an H100).
      const sm90 = compileLLVM(
        renderLLVM(device(spec, "sm_90"), GPU_TARGETS.sm_90!.llvm).text,
        GPU_TARGETS.sm_90!.llvm,
      ).ptx!;
      expect(sm90).toMatch(/lop3\.b32/);
      expect(sm90).toMatch(/ld\.global(\.nc)?\.v4\.(u|b)32/);
      expect(sm90).not.toMatch(/ld\.global(\.nc)?\.u32/);
    });

    it("refuses the q4 tensor-core GEMVs and GEMM and prefill attention for AMD targets, naming the kernels to use", () => {
      const mma = CASES.filter(needsMma);
      expect(mma.length).toBe(20);
      for (const spec of mma)
        expect(() => device(spec, "gfx1100")).toThrow(
          /gfx1100 has none: use (the four-rows kernels|q4GemmTiled|q4GemmResidual|q4GateUpSiluGemm|q4QkvGemm|attentionPrefillWarps|q4\w*Mma)/,
        );
    });

    for (const arch of ["gfx1100", "gfx942"] as const) {
      const missing = !lld ? "ld.lld-19 not found: checking the unlinked object" : "";
      it.each(CASES.filter((c) => !needsMma(c)).map((c) => [c.key, c] as const))(
        `%s: amdgcn ${arch} verifies, compiles, and llvm-objdump-19 -d shows the kernel${note(!objdump, "llvm-objdump-19 not found")}${note(!lld, missing)}`,
        (_key, spec) => {
          const target = GPU_TARGETS[arch]!.llvm;
          const f = device(spec, arch);
          const r = renderLLVM(f, target);
          expect(r.text).toContain("amdgpu_kernel");
          const c = compileLLVM(r.text, target, { link: lld });
          const image = c.hsaco ?? c.object!;
          expect(image.length).toBeGreaterThan(0);
          if (!objdump) return;
          const d = tool(
            "llvm-objdump-19",
            (file) => ["-d", `--mcpu=${arch}`, file],
            image,
            `${r.name}-${arch}.o`,
          );
          expect(d.status).toBe(0);
          expect(d.out).toContain(`<${r.name}>:`);
          expect(d.out).toContain("s_endpgm");
        },
      );
    }
  },
);

/**
 * The renderer names allocated buffers `<name>_<id>`, with ids from a process-wide counter; golden
 * text numbers them by first appearance instead, so it does not depend on what ran before.
 */
function normalizedIR(f: PrimFunc, text: string): string {
  const names: string[] = [];
  walk(f.body, (n) => {
    if (n.kind === "allocate") names.push(`${n.buffer.name.replace(/[^A-Za-z0-9_]/g, "_")}_${n.buffer.id}`);
  });
  let out = text;
  names.forEach((name, i) => {
    out = out.replace(new RegExp(`([%@])${name}\\b`, "g"), `$1${name.replace(/_\d+$/, "")}_buf${i}`);
  });
  return out;
}

/**
 * Golden text for three small kernels, each with a schedule written here (so tuning the stdlib's
 * schedules does not move them): what the renderer itself emits is what these pin down.
 */
describe("golden LLVM IR", () => {
  const golden: [string, OpSpec, string][] = [
    // Elementwise: one thread per element with a bounds guard; rows on blockIdx.y.
    [
      "residualAdd.sm_90",
      {
        key: "residualAdd",
        kernel: stdlib.residualAdd,
        specialize: { m: 2, d: 288 },
        schedule: (s) => {
          s.bind("m", "blockIdx.y");
          const [bo, ti] = s.split("i", [null, 128]);
          s.bind(bo!, "blockIdx.x");
          s.bind(ti!, "threadIdx.x");
        },
      },
      "sm_90",
    ],
    // A row reduction across 64 threads: warp shuffles, then shared memory, then a broadcast.
    [
      "rmsNorm.sm_90",
      {
        key: "rmsNorm",
        kernel: stdlib.rmsNorm,
        specialize: { m: 1, d: 288 },
        schedule: (s) => {
          s.bind("m", "blockIdx.x");
          const [kt] = s.split("i", [64, null]);
          s.bind(kt!, "threadIdx.x");
          const [, ot] = s.split("i_1", [null, 64]);
          s.bind(ot!, "threadIdx.x");
        },
      },
      "sm_90",
    ],
    // AMD's flavour (gfx942, wave64): the position read from memory, sin and cos.
    [
      "ropeInterleaved.gfx942",
      {
        key: "ropeInterleaved",
        kernel: stdlib.ropeInterleaved,
        specialize: { t: 1, h: 6, d: 48 },
        scalarsInMemory: ["offset"],
        schedule: (s) => s.bind(s.fuse("t", "h"), "blockIdx.x"),
      },
      "gfx942",
    ],
  ];
  it.each(golden)("%s", async (file, spec, target) => {
    const f = device(spec, target);
    const text = renderLLVM(f, GPU_TARGETS[target]!.llvm).text;
    if (!llvmMissing) compileLLVM(text, GPU_TARGETS[target]!.llvm, { link: false });
    await expect(normalizedIR(f, text)).toMatchFileSnapshot(`../../golden/${file}.ll`);
  });
});
