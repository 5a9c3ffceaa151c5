// Bad input gives LLVM's own message, with the stage that rejected it.
import { describe, expect, it } from "vitest";
import { compileLLVM } from "../../../backends/llvm/compile.ts";
import { LLVMError } from "../../../backends/llvm/llvm-c.ts";
import { fixture } from "./helpers.ts";

const sm90 = { kind: "nvptx", arch: "sm_90" } as const;

function errorOf(f: () => unknown): LLVMError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(LLVMError);
    return e as LLVMError;
  }
  throw new Error("expected an LLVMError");
}

describe("LLVM errors", () => {
  it("reports a syntax error with LLVM's line:column and caret", () => {
    const e = errorOf(() => compileLLVM("define void @f( {", sm90));
    expect(e.stage).toBe("parse");
    expect(e.message).toContain("tkc-module:1:18: error: expected type");
    expect(e.message).toContain("^");
  });

  it("reports a type error from the parser", () => {
    const e = errorOf(() => compileLLVM("define i32 @f() {\nentry:\n  ret void\n}\n", sm90));
    expect(e.message).toContain("value doesn't match function result type 'i32'");
  });

  it("reports the verifier's message for structurally invalid IR", () => {
    const ir = "define void @f() {\nentry:\n  %x = add i32 %y, 1\n  %y = add i32 %x, 1\n  ret void\n}\n";
    const e = errorOf(() => compileLLVM(ir, sm90));
    expect(e.stage).toBe("verify");
    expect(e.message).toContain("Instruction does not dominate all uses!");
  });

  it("reports an intrinsic used with the wrong signature", () => {
    const ir = fixture("nvptx-vadd").replace(
      "declare i32 @llvm.nvvm.read.ptx.sreg.tid.x()",
      "declare i64 @llvm.nvvm.read.ptx.sreg.tid.x()",
    );
    expect(() => compileLLVM(ir, sm90)).toThrow(LLVMError);
  });

  it("refuses a module written for another target", () => {
    const e = errorOf(() => compileLLVM(fixture("amdgcn-vadd"), sm90));
    expect(e.stage).toBe("target");
    expect(e.message).toContain(
      'module triple "amdgcn-amd-amdhsa" does not match target triple "nvptx64-nvidia-cuda"',
    );
  });

  it("reports a bad pass pipeline", () => {
    const e = errorOf(() => compileLLVM(fixture("nvptx-vadd"), sm90, { passes: "no-such-pass" }));
    expect(e.stage).toBe("passes");
    expect(e.message).toContain("no-such-pass");
  });

  it("keeps working after errors (nothing leaked into a broken state)", () => {
    for (let i = 0; i < 3; i++) expect(() => compileLLVM("garbage", sm90)).toThrow(LLVMError);
    expect(compileLLVM(fixture("nvptx-vadd"), sm90).ptx).toContain(".entry vadd");
  });
});
