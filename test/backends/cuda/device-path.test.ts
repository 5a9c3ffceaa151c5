// The GPU-machine path end to end, minus the GPU: PTX built by bench/device/build-kernels.ts, the
// selftest runner bundled by esbuild exactly as prepare.sh does, run under plain `node` with
// koffi resolved next to the bundle. Without libcuda it must stop with the one-sentence message;
// on the fake libcuda every check must pass.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildFakeLibcuda } from "./fake/build.ts";

const root = resolve(import.meta.dirname, "../../..");
const dir = mkdtempSync(join(tmpdir(), "tkc-device-"));

function node(args: string[], env: Record<string, string | undefined>) {
  const e = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete e[k];
  return spawnSync(process.execPath, args, { encoding: "utf8", env: e, cwd: dir });
}

describe("bench/device selftest bundle", () => {
  beforeAll(() => {
    const kernels = spawnSync("npx", ["tsx", "bench/device/build-kernels.ts", join(dir, "kernels")], {
      cwd: root,
      encoding: "utf8",
    });
    expect(kernels.stderr).toBe("");
    const bundle = spawnSync(
      "npx",
      [
        "esbuild",
        "bench/device/selftest.ts",
        "--bundle",
        "--platform=node",
        "--format=esm",
        "--target=node20",
      ].concat(["--external:koffi", "--log-level=warning", `--outfile=${join(dir, "selftest.mjs")}`]),
      { cwd: root, encoding: "utf8" },
    );
    expect(bundle.status).toBe(0);
    // koffi beside the bundle, as .device/node_modules/koffi is on the GPU machine.
    mkdirSync(join(dir, "node_modules"));
    symlinkSync(join(root, "node_modules/koffi"), join(dir, "node_modules/koffi"));
  });

  it("carries compiled PTX for every kernel", () => {
    const b = JSON.parse(readFileSync(join(dir, "kernels/selftest.json"), "utf8"));
    expect(Object.keys(b.kernels).sort()).toEqual([
      "accum",
      "block_sum",
      "hfma_relu",
      "reverse_tile",
      "vadd",
    ]);
    for (const [name, k] of Object.entries<{ ptx: string }>(b.kernels))
      expect(k.ptx).toContain(`.entry ${name}(`);
  });

  it("stops with the clear libcuda message where there is no driver", () => {
    const r = node(["selftest.mjs", "--out", join(dir, "out-none")], {
      TKC_LIBCUDA: "/nonexistent/libcuda.so.1",
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^selftest: libcuda\.so\.1 \(the NVIDIA driver's CUDA library\) could not be loaded/,
    );
    expect(r.stderr).not.toContain("    at "); // no stack trace
    const json = JSON.parse(readFileSync(join(dir, "out-none/selftest.json"), "utf8"));
    expect(json.error).toContain("libcuda.so.1");
  });

  const fake = buildFakeLibcuda();
  it.skipIf(!fake)("passes every check on the fake driver", () => {
    const r = node(["selftest.mjs", "--out", join(dir, "out-fake"), "--copy-mib", "16"], {
      TKC_LIBCUDA: fake,
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const json = JSON.parse(readFileSync(join(dir, "out-fake/selftest.json"), "utf8"));
    expect(json.ok).toBe(true);
    expect(json.checks.map((c: { name: string }) => c.name)).toEqual([
      "load 5 PTX modules",
      "vadd",
      "block_sum (shared memory + shuffles)",
      "hfma_relu (f16x2 fma, max, widening)",
      "reverse_tile (64 KB dynamic shared memory)",
      "copy 16 MiB device to device",
      "graph of 100 launches",
    ]);
    expect(json.device.name).toBe("Fake H100 (CPU)");
    expect(json.copyBandwidthGBs).toBeGreaterThan(0);
    expect(json.graph.launches).toBe(100);
  });
});
