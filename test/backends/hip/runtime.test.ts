// The HIP runtime: a clear error without ROCm (what this machine has), and the bindings' names
// and prototypes exercised against a fake libamdhip64 built from the fake libcuda.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { i32 } from "../../../backends/gpu-common/args.ts";
import { createHipRuntime, HipError } from "../../../backends/hip/runtime.ts";
import { buildFakeLibamdhip } from "../cuda/fake/build.ts";

describe("HIP unavailable", () => {
  it("says libamdhip64 is missing and how to get it, in one sentence", () => {
    // A child process, since this file also loads the fake library.
    const code = `
      import { createHipRuntime } from "./backends/hip/runtime.ts";
      try { createHipRuntime(); } catch (e) { console.log(e.name + ": " + e.message); }`;
    const r = spawnSync("npx", ["tsx", "--eval", code], {
      encoding: "utf8",
      env: { ...process.env, TKC_LIBAMDHIP: "/nonexistent/libamdhip64.so" },
    });
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
    expect(r.stdout).toMatch(
      /^HipUnavailableError: libamdhip64 \(the ROCm HIP runtime\) could not be loaded \(/,
    );
    expect(r.stdout).toContain("AMD GPU and ROCm 6 installed");
  });
});

const fake = buildFakeLibamdhip();

describe.skipIf(!fake)("HIP runtime on a fake libamdhip64", () => {
  it("loads a code object, launches, captures and replays a graph", () => {
    process.env.TKC_LIBAMDHIP = fake;
    const rt = createHipRuntime();
    expect(rt.device).toMatchObject({
      api: "hip",
      name: "Fake MI300X (CPU)",
      warpSize: 64,
      multiprocessors: 304,
    });
    const fn = rt.loadModule(new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 0])).getFunction("vadd");
    const n = 300;
    const [x, y] = [rt.alloc(4 * n), rt.alloc(4 * n)];
    rt.upload(
      x,
      Float32Array.from({ length: n }, (_, i) => i),
    );
    const s = rt.createStream();
    const g = rt.captureGraph(s, (st) => {
      for (let k = 0; k < 4; k++) rt.launch(fn, [x, y, y, i32(n)], { grid: 2, block: 256, stream: st });
    });
    g.launch(s);
    s.synchronize();
    const out = new Float32Array(n);
    rt.download(out, y);
    expect(out[299]).toBe(4 * 299);
    // A read in the stream's order through page-locked memory (hipHostMalloc, hipMemcpyDtoHAsync).
    const later = rt.downloadLater(y, 4 * n, s);
    expect(new Float32Array(later().buffer)[299]).toBe(4 * 299);
    expect(() => rt.loadModule("text")).toThrow(/HIP loads code objects/);
    expect(() => rt.loadModule(new TextEncoder().encode("bogus\0"))).toThrow(HipError);
    expect(() => rt.loadModule(new TextEncoder().encode("bogus\0"))).toThrow(/^hipModuleLoadData failed: /);
    rt.dispose();
    expect(() => rt.alloc(4)).toThrow(/hipMalloc: the hip runtime was disposed/);
  });
});
