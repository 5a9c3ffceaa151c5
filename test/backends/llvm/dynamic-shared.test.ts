/**
 * Shared memory over 48 KB on NVIDIA: ptxas refuses larger static declarations, so the renderer
 * places such a block's shared buffers at aligned offsets of one dynamic shared array, the
 * artifact records the bytes every launch must request, and the CUDA device opts the kernel in
 * when it loads it and passes them at each launch. Blocks that fit stay static, and AMD's LDS is
 * always static.
 */
import { describe, expect, it } from "vitest";
import { f16, f32, kernel, shared, type Tensor } from "../../../dsl/index.ts";
import type { LaunchOptions } from "../../../backends/gpu-common/runtime.ts";
import { buildArtifact } from "../../../backends/llvm/artifact.ts";
import { compileLLVM } from "../../../backends/llvm/compile.ts";
import { renderLLVM } from "../../../backends/llvm/render.ts";
import { NVIDIA_STATIC_SHARED_BYTES } from "../../../backends/llvm/render-shared.ts";
import { createCudaDevice } from "../../../llama/device/cuda.ts";
import type { OpSpec } from "../../../llama/device/types.ts";
import { lowerKernel } from "../../../lower/frontend/lower.ts";
import { lowerToDevice } from "../../../lower/passes/pipeline.ts";
import { TARGETS } from "../../../lower/passes/target.ts";
import { hasTool, llvmMissing, ptxasVerbose } from "./helpers.ts";
import { stubRuntime } from "../cuda/stub-runtime.ts";

/** 40 KB, 6 bytes and 16 KB of shared buffers: over NVIDIA's static limit, within AMD's LDS. */
const threeTiles = kernel(function threeTiles(x: Tensor<f32, [10240]>, y: Tensor<f32, [10240]>) {
  const a = shared("f32", [10240]);
  const b = shared("f16", [3]);
  const c = shared("f32", [4096]);
  for (let i = 0; i < 10240; i++) a[i] = x[i];
  b[0] = f16(a[1]);
  for (let j = 0; j < 4096; j++) c[j] = a[10239 - j] + f32(b[0]);
  for (let k = 0; k < 4096; k++) y[k] = c[k];
});

/** 8 KB: static. */
const smallTile = kernel(function smallTile(x: Tensor<f32, [2048]>, y: Tensor<f32, [2048]>) {
  const t = shared("f32", [2048]);
  for (let i = 0; i < 2048; i++) t[i] = x[i];
  for (let j = 0; j < 2048; j++) y[j] = t[2047 - j];
});

const nvptx = { kind: "nvptx", arch: "sm_90" } as const;

describe("shared memory over 48 KB on NVIDIA", () => {
  const big = lowerToDevice(lowerKernel(threeTiles), TARGETS.sm_90);

  it("places the buffers at aligned offsets of one dynamic shared array and records its bytes", () => {
    const r = renderLLVM(big, nvptx);
    expect(r.text).toContain("@tkc_dynamic_shared = external addrspace(3) global [0 x i8], align 1024");
    expect(r.text).not.toMatch(/internal addrspace\(3\) global/);
    // a at 0, b after a's 40,960 bytes, c on the next 16 bytes after b's 6.
    expect(r.text).toContain("getelementptr inbounds (i8, ptr addrspace(3) @tkc_dynamic_shared, i32 40960)");
    expect(r.text).toContain("getelementptr inbounds (i8, ptr addrspace(3) @tkc_dynamic_shared, i32 40976)");
    expect(r.dynamicSharedBytes).toBe(40976 + 4096 * 4);
    expect(r.sharedBytes).toBe(r.dynamicSharedBytes);
    expect(r.dynamicSharedBytes).toBeGreaterThan(NVIDIA_STATIC_SHARED_BYTES);
  });

  it("keeps blocks that fit, and AMD's LDS, static", () => {
    const small = renderLLVM(lowerToDevice(lowerKernel(smallTile), TARGETS.sm_90), nvptx);
    expect(small.dynamicSharedBytes).toBe(0);
    expect(small.sharedBytes).toBe(8192);
    expect(small.text).toMatch(/internal addrspace\(3\) global \[2048 x float\]/);
    const amd = renderLLVM(lowerToDevice(lowerKernel(threeTiles), TARGETS.gfx942), {
      kind: "amdgcn",
      arch: "gfx942",
      wave64: true,
    });
    expect(amd.dynamicSharedBytes).toBe(0);
    expect(amd.text).not.toContain("tkc_dynamic_shared");
  });

  it.skipIf(llvmMissing !== "")("compiles to PTX with an extern shared array that ptxas accepts", () => {
    const art = buildArtifact(big, nvptx);
    expect(art.dynamicSharedBytes).toBe(57360);
    expect(art.image).toMatch(/\.extern \.shared \.align 1024 \.b8 tkc_dynamic_shared\[\];/);
    expect(art.image).not.toMatch(/^\s*\.shared /m);
    if (hasTool("ptxas")) {
      const { status, log } = ptxasVerbose(art.image);
      expect(status, log).toBe(0);
      // The dynamic array is not counted as static shared memory.
      expect(log).toMatch(/Used \d+ registers/);
      expect(log).not.toMatch(/[1-9]\d* bytes smem/);
      // A small block's artifact has no dynamic shared memory at all.
      const small = buildArtifact(lowerToDevice(lowerKernel(smallTile), TARGETS.sm_90), nvptx);
      expect(small.dynamicSharedBytes).toBeUndefined();
    }
  });

  it.skipIf(llvmMissing !== "")(
    "the CUDA device opts the kernel in once when it loads it and requests the bytes at every launch",
    () => {
      const art = buildArtifact(big, nvptx);
      const optIns: number[] = [];
      const launches: LaunchOptions[] = [];
      const runtime = stubRuntime({
        loadModule: () =>
          ({
            getFunction: () => ({ setMaxDynamicSharedMemory: (b: number) => optIns.push(b) }) as never,
            unload() {},
          }) as never,
        launch: (_fn, _args, o) => void launches.push(o),
      });
      const spec = { key: "threeTiles" } as OpSpec;
      const d = createCudaDevice({
        runtime,
        library: { target: "sm_90", kernels: { threeTiles: art } },
      });
      const args = { x: d.tensor("f32", [10240]), y: d.tensor("f32", [10240]) };
      d.run(d.op(spec), args);
      d.run(d.op(spec), args);
      expect(optIns).toEqual([57360]);
      expect(launches.map((o) => o.sharedBytes)).toEqual([57360, 57360]);
    },
  );
});
