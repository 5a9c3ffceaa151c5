import { describe, expect, it, vi } from "vitest";
import { fixture, FIXTURES } from "./fixtures.ts";

const SPIRV_MAGIC = 0x07230203;
const tiny = "OpCapability Shader\nOpMemoryModel Logical GLSL450\n";

describe("spirv tools (npm WASM build)", () => {
  it("loads lazily and leaves no process-wide handlers behind", async () => {
    vi.resetModules(); // a fresh copy of tools.ts, not yet initialised
    const counts = () => [
      process.listeners("uncaughtException").length,
      process.listeners("unhandledRejection").length,
    ];
    const before = counts();
    const { assemble } = await import("../../../backends/spirv/tools.ts");
    expect(counts()).toEqual(before);
    assemble(tiny); // first use instantiates the WASM module
    expect(counts()).toEqual(before);
  });

  it("assembles to words with the version the env asks for", async () => {
    const { assemble } = await import("../../../backends/spirv/tools.ts");
    const w12 = assemble(tiny);
    expect(w12).toBeInstanceOf(Uint32Array);
    expect(w12[0]).toBe(SPIRV_MAGIC);
    expect(w12[1]).toBe(0x00010500); // vulkan1.2 -> SPIR-V 1.5
    expect(assemble(tiny, "vulkan1.0")[1]).toBe(0x00010000);
    // Results are copies, not views into the WASM heap that a later call overwrites.
    const again = assemble(fixture("double"));
    expect(w12[0]).toBe(SPIRV_MAGIC);
    expect(again.length).toBeGreaterThan(w12.length);
  });

  it("throws the assembler's message instead of returning nothing", async () => {
    const { assemble } = await import("../../../backends/spirv/tools.ts");
    expect(() => assemble("OpCapability Shadr\n")).toThrow(/Invalid capability 'Shadr'/);
    expect(() => assemble("%1 = OpTypeInt 32\n")).toThrow(/SPIR-V assembly failed/);
    // @ts-expect-error an env the assembler does not know
    expect(() => assemble(tiny, "vulkan9")).toThrow(/unknown env "vulkan9"/);
    expect(assemble(tiny)[0]).toBe(SPIRV_MAGIC); // still usable after errors
  });

  it("assembles a module too large for the WASM heap (through spirv-as) and keeps working", async () => {
    const { assemble, disassemble } = await import("../../../backends/spirv/tools.ts");
    // 12 MB of text: the WASM build's fixed 16 MiB heap aborts on it ("abort(OOM)").
    const lines = Array.from({ length: 300_000 }, (_, i) => `OpSourceExtension "tkc-test-line-${i}"`);
    const big = tiny.replace("OpMemoryModel", `${lines.join("\n")}\nOpMemoryModel`);
    const words = assemble(big);
    expect(words[0]).toBe(SPIRV_MAGIC);
    const text = disassemble(
      assemble(tiny.replace("OpMemoryModel", `${lines.slice(0, 3).join("\n")}\nOpMemoryModel`)),
    );
    expect(text).toContain('OpSourceExtension "tkc-test-line-2"');
    // A line is an opcode word and its string, NUL-terminated and padded to words: 6 or 7 words.
    expect(words.length).toBeGreaterThan(300_000 * 6);
    expect(assemble(tiny)[0]).toBe(SPIRV_MAGIC); // the WASM assembler still answers
  });

  it("disassembles, and the text reassembles to a fixpoint", async () => {
    const { assemble, disassemble } = await import("../../../backends/spirv/tools.ts");
    const words = assemble(fixture("tree-reduce"));
    const text = disassemble(words);
    expect(text).toContain("OpControlBarrier");
    expect(text).toContain("OpExecutionMode %1 LocalSize 256 1 1");
    expect(text).not.toContain("; Version");
    expect(disassemble(words, { header: true })).toContain("; Version: 1.5");
    expect(disassemble(assemble(text))).toBe(text);
    expect(() => disassemble(new Uint32Array([1, 2, 3, 4, 5]))).toThrow(/Invalid SPIR-V magic number/);
  });
});

describe("spirv-val", () => {
  it.each(FIXTURES)("accepts fixture %s for vulkan1.2 and vulkan1.3", async (name) => {
    const { assemble, validate } = await import("../../../backends/spirv/tools.ts");
    const words = assemble(fixture(name));
    expect(() => validate(words)).not.toThrow();
    expect(() => validate(words, "vulkan1.3")).not.toThrow();
  });

  it("shows the validator's message for an invalid module", async () => {
    const { assemble, validate, SpirvValidationError } = await import("../../../backends/spirv/tools.ts");
    // Without ArrayStride the storage buffer has no explicit layout, which Vulkan requires.
    const bad = assemble(fixture("double").replace("OpDecorate %f32arr ArrayStride 4", ""));
    let err: unknown;
    try {
      validate(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpirvValidationError);
    expect((err as Error).message).toMatch(
      /SPIR-V validation \(vulkan1.2\) failed: error: .*storage buffer layout rules.*stride 0/s,
    );
    expect((err as InstanceType<typeof SpirvValidationError>).log).not.toContain("/tmp/");
    // f16 constants and arithmetic without the Float16 capability
    const noF16 = assemble(fixture("f16").replace("OpCapability Float16", ""));
    expect(() => validate(noF16)).toThrow(/Cannot form constants of 8- or 16-bit types/);
  });

  it("says what to install when spirv-val is missing", async () => {
    const { assemble, validate } = await import("../../../backends/spirv/tools.ts");
    const words = assemble(tiny);
    const path = process.env.PATH;
    process.env.PATH = "/nonexistent";
    try {
      expect(() => validate(words)).toThrow(/spirv-val was not found on PATH: install Debian's spirv-tools/);
    } finally {
      process.env.PATH = path;
    }
  });
});
