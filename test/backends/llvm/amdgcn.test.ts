// AMDGPU: the fixtures compile for gfx1100 (wave32 and wave64) and gfx942/gfx90a (wave64), link
// into HSA code objects, and llvm-objdump disassembles them with the kernel symbols present.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { i32, packArgs } from "../../../backends/gpu-common/args.ts";
import { compileLLVM } from "../../../backends/llvm/compile.ts";
import { amdgpuResources } from "../../../backends/llvm/resources.ts";
import type { LLVMTarget } from "../../../backends/llvm/target.ts";
import { fixture, hasTool, run } from "./helpers.ts";

const objdump = hasTool("llvm-objdump-19");
const readobj = hasTool("llvm-readobj-19");

function disassemble(hsaco: Uint8Array): string {
  const file = join(mkdtempSync(join(tmpdir(), "tkc-amd-")), "k.hsaco");
  writeFileSync(file, hsaco);
  const r = run("llvm-objdump-19", ["-d", file]);
  expect(r.status).toBe(0);
  return r.out;
}

const targets: [LLVMTarget, number][] = [
  [{ kind: "amdgcn", arch: "gfx1100" }, 32],
  [{ kind: "amdgcn", arch: "gfx1100", wave64: true }, 64],
  [{ kind: "amdgcn", arch: "gfx942" }, 64],
  [{ kind: "amdgcn", arch: "gfx90a" }, 64],
];

describe.each(targets)("amdgcn %o", (target, wave) => {
  const arch = (target as { arch: string }).arch;

  it("compiles and links vector add into a code object", () => {
    const r = compileLLVM(fixture("amdgcn-vadd"), target);
    expect(r.ptx).toBeUndefined();
    // ELF magic, for both the relocatable object and the linked shared object.
    expect([...r.object!.slice(0, 4)]).toEqual([0x7f, 0x45, 0x4c, 0x46]);
    expect([...r.hsaco!.slice(0, 4)]).toEqual([0x7f, 0x45, 0x4c, 0x46]);
    expect(r.optimizedIR).toContain("define amdgpu_kernel void @vadd");
    if (objdump) {
      const dis = disassemble(r.hsaco!);
      expect(dis).toContain(`file format elf64-amdgpu`);
      expect(dis).toMatch(/^[0-9a-f]+ <vadd>:$/m);
      expect(dis).toContain("global_load");
    }
  });

  it("compiles the LDS + ds_bpermute reduction for its wave size", () => {
    const r = compileLLVM(fixture("amdgcn-reduce"), target);
    if (objdump) {
      const dis = disassemble(r.hsaco!);
      expect(dis).toMatch(/<block_sum>:/);
      expect(dis).toContain("ds_bpermute_b32");
      expect(dis).toContain("s_barrier");
    }
    if (readobj) {
      const [k] = amdgpuResources(r.hsaco!);
      expect(k!.name).toBe("block_sum");
      expect(k!.wavefrontSize).toBe(wave);
      expect(k!.sharedBytes).toBe(32);
      expect(k!.maxThreadsPerBlock).toBe(256);
      expect(k!.registers).toBeGreaterThan(0);
      expect(k!.sgprs).toBeGreaterThan(0);
    }
  });

  it("compiles packed f16 math", () => {
    const r = compileLLVM(fixture("amdgcn-f16"), target);
    if (objdump) expect(disassemble(r.hsaco!)).toContain("v_pk_fma_f16");
  });

  it("links a kernel with dynamic LDS", () => {
    const r = compileLLVM(fixture("amdgcn-dynsmem"), target);
    if (readobj) expect(amdgpuResources(r.hsaco!)[0]!.name).toBe("reverse_tile");
    expect(arch).toMatch(/^gfx/);
  });
});

describe("amdgcn kernel arguments", () => {
  // The runtime packs arguments with natural alignment; the kernarg layout LLVM records in the
  // code object's metadata must be the same, or HIP would read arguments from the wrong offsets.
  it.skipIf(!readobj)("lay out in the code object exactly as packArgs packs them", () => {
    const cases: [string, Parameters<typeof packArgs>[0]][] = [
      ["amdgcn-vadd", [1n, 2n, 3n, i32(4)]],
      ["amdgcn-f16", [1n, 2n, 3n, 4n, 5n, i32(6)]],
      ["amdgcn-reduce", [1n, 2n, i32(3)]],
    ];
    for (const [name, args] of cases) {
      const r = compileLLVM(fixture(name), { kind: "amdgcn", arch: "gfx942" });
      const file = join(mkdtempSync(join(tmpdir(), "tkc-amd-")), "k.hsaco");
      writeFileSync(file, r.hsaco!);
      const notes = run("llvm-readobj-19", ["--notes", file]).out;
      const offsets = [...notes.matchAll(/^\s+\.offset:\s+(\d+)$/gm)].map((m) => Number(m[1]));
      const packed = packArgs(args);
      // Hidden arguments (if any) come after the explicit ones.
      expect(offsets.slice(0, args.length)).toEqual(packed.offsets);
      expect(notes).toMatch(new RegExp(`\\.kernarg_segment_size:\\s+${packed.size}\\b`));
    }
  });
});

describe("amdgcn options", () => {
  it("returns the bare object without linking when asked", () => {
    const r = compileLLVM(fixture("amdgcn-vadd"), { kind: "amdgcn", arch: "gfx942" }, { link: false });
    expect(r.object!.length).toBeGreaterThan(0);
    expect(r.hsaco).toBeUndefined();
  });

  it("refuses wave32 on a wave64-only part", () => {
    expect(() =>
      compileLLVM(fixture("amdgcn-vadd"), { kind: "amdgcn", arch: "gfx942", wave64: false }),
    ).toThrow(/gfx942 runs wave64 only/);
  });
});
