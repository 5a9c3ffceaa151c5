// The resource parsers on canned tool output (so they are tested without the tools), and the
// clear errors when libLLVM or a tool is missing.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { parseAmdhsaMetadata, parsePtxasVerbose } from "../../../backends/llvm/resources.ts";

describe("parsePtxasVerbose", () => {
  it("reads the CUDA 13 format", () => {
    const text = `ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'block_sum' for 'sm_90'
ptxas info    : Function properties for block_sum
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 13 registers, used 1 barriers, 32 bytes smem
ptxas info    : Compile time = 4.898 ms`;
    expect(parsePtxasVerbose(text)).toEqual([
      { name: "block_sum", registers: 13, sharedBytes: 32, stackBytes: 0, spills: 0 },
    ]);
  });

  it("reads the older format with cmem and several kernels", () => {
    const text = `ptxas info    : Compiling entry function 'a' for 'sm_80'
ptxas info    : Function properties for a
    16 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads
ptxas info    : Used 255 registers, 49152 bytes smem, 380 bytes cmem[0]
ptxas info    : Compiling entry function 'b' for 'sm_80'
ptxas info    : Function properties for b
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 8 registers, 360 bytes cmem[0]`;
    const r = parsePtxasVerbose(text);
    expect(r.map((k) => [k.name, k.registers, k.sharedBytes, k.stackBytes, k.spills])).toEqual([
      ["a", 255, 49152, 16, 8],
      ["b", 8, 0, 0, 0],
    ]);
  });
});

describe("parseAmdhsaMetadata", () => {
  it("reads kernel-level keys and ignores the nested .args", () => {
    const text = `AMDGPU Metadata: ---
amdhsa.kernels:
  - .agpr_count:     0
    .args:
      - .name:           x
        .offset:         0
        .size:           8
        .value_kind:     global_buffer
    .group_segment_fixed_size: 1024
    .max_flat_workgroup_size: 256
    .name:           k1
    .private_segment_fixed_size: 16
    .sgpr_count:     14
    .sgpr_spill_count: 1
    .vgpr_count:     40
    .vgpr_spill_count: 2
    .wavefront_size: 32
  - .args:           []
    .name:           k2
    .vgpr_count:     3
    .wavefront_size: 64
amdhsa.target:   amdgcn-amd-amdhsa--gfx1100
amdhsa.version:
  - 1
  - 2`;
    const r = parseAmdhsaMetadata(text);
    expect(r).toHaveLength(2);
    expect(r[0]).toEqual({
      name: "k1",
      registers: 40,
      sgprs: 14,
      sharedBytes: 1024,
      stackBytes: 16,
      spills: 3,
      wavefrontSize: 32,
      maxThreadsPerBlock: 256,
    });
    expect(r[1]!.name).toBe("k2");
    expect(r[1]!.registers).toBe(3);
    expect(r[1]!.wavefrontSize).toBe(64);
  });
});

describe("missing libLLVM", () => {
  it("says what is missing and how to install it, in one sentence", () => {
    // A fresh process, because the library handle is cached per process.
    const code = `
      import { compileLLVM } from "./backends/llvm/compile.ts";
      try { compileLLVM("", { kind: "nvptx", arch: "sm_90" }); }
      catch (e) { console.log(e.name + ": " + e.message); }`;
    const r = spawnSync("npx", ["tsx", "--eval", code], {
      encoding: "utf8",
      env: { ...process.env, TKC_LIBLLVM: "/nonexistent/libLLVM.so.19.1" },
    });
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
    expect(r.stdout).toMatch(
      /^LLVMUnavailableError: libLLVM 19 was not found \(.*\); install it with `apt-get install llvm-19 lld-19`/,
    );
  });
});
