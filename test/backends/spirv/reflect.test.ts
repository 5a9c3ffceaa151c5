import { describe, expect, it } from "vitest";
import { reflect } from "../../../backends/spirv/reflect.ts";
import { assemble } from "../../../backends/spirv/tools.ts";
import { fixture } from "./fixtures.ts";

describe("reflect", () => {
  it("reads entry point, workgroup size, bindings and push constants", () => {
    const r = reflect(assemble(fixture("double")));
    expect(r.version).toEqual({ major: 1, minor: 5 });
    expect(r.entryPoints).toEqual([
      { name: "main", model: 5, id: expect.any(Number), localSize: [64, 1, 1] },
    ]);
    expect(r.bindings).toEqual([
      { set: 0, binding: 0 },
      { set: 0, binding: 1 },
    ]);
    expect(r.hasPushConstants).toBe(true);
    expect(r.capabilities).toEqual(["Shader"]);
  });

  it("reads capabilities", () => {
    expect(reflect(assemble(fixture("f16"))).capabilities).toEqual([
      "Shader",
      "Float16",
      "StorageBuffer16BitAccess",
    ]);
    const sg = reflect(assemble(fixture("subgroup-reduce")));
    expect(sg.capabilities).toContain("GroupNonUniformArithmetic");
    expect(sg.hasPushConstants).toBe(false);
    expect(sg.entryPoints[0]!.localSize).toEqual([64, 1, 1]);
  });

  it("rejects what is not SPIR-V", () => {
    expect(() => reflect(new Uint32Array([1, 2, 3, 4, 5]))).toThrow(/not a SPIR-V module: magic 0x1/);
    expect(() => reflect(new Uint32Array(2))).toThrow(/not a SPIR-V module: 2 words/);
    const words = assemble(fixture("double"));
    words[words.length - 1] = (3 << 16) | 56; // OpFunctionEnd claiming 3 words at the very end
    expect(() => reflect(words)).toThrow(/bad instruction at word \d+/);
  });
});
