/**
 * A compiled kernel library: every op a model needs, compiled ahead of time for one GPU target
 * (tkc's counterpart of MLC's compiled model library). A directory holds manifest.json and one
 * image per kernel (.ptx for NVIDIA, .hsaco for AMD), so a GPU machine without LLVM runs them.
 */
import fs from "node:fs";
import path from "node:path";
import type { KernelArtifact } from "../../backends/gpu-common/kernel.ts";
import type { LLVMTarget } from "../../backends/llvm/target.ts";
import { TARGETS, type Target } from "../../lower/passes/target.ts";

export interface GpuTargetSpec {
  readonly name: string;
  readonly lowering: Target;
  readonly llvm: LLVMTarget;
}

export const GPU_TARGETS: Readonly<Record<string, GpuTargetSpec>> = {
  sm_90: { name: "sm_90", lowering: TARGETS.sm_90, llvm: { kind: "nvptx", arch: "sm_90" } },
  sm_80: {
    name: "sm_80",
    lowering: TARGETS.sm_80,
    llvm: { kind: "nvptx", arch: "sm_80" },
  },
  gfx1100: { name: "gfx1100", lowering: TARGETS.gfx1100, llvm: { kind: "amdgcn", arch: "gfx1100" } },
  gfx942: {
    name: "gfx942",
    lowering: TARGETS.gfx942,
    llvm: { kind: "amdgcn", arch: "gfx942", wave64: true },
  },
  gfx90a: {
    name: "gfx90a",
    lowering: { ...TARGETS.gfx942, name: "gfx90a" },
    llvm: { kind: "amdgcn", arch: "gfx90a", wave64: true },
  },
};

export function gpuTarget(name: string): GpuTargetSpec {
  const t = GPU_TARGETS[name];
  if (!t) throw new Error(`tkc: unknown GPU target ${name}; known: ${Object.keys(GPU_TARGETS).join(", ")}`);
  return t;
}

export interface Library {
  readonly target: string;
  readonly kernels: Readonly<Record<string, KernelArtifact>>;
}

export function writeLibrary(lib: Library, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const manifest: Record<string, unknown> = {};
  for (const [key, art] of Object.entries(lib.kernels)) {
    const ext = art.target.startsWith("nvptx") ? "ptx" : "hsaco";
    const file = `${key}.${ext}`;
    fs.writeFileSync(path.join(dir, file), ext === "ptx" ? art.image : Buffer.from(art.image, "base64"));
    const { image: _image, ...meta } = art;
    manifest[key] = { ...meta, file };
  }
  fs.writeFileSync(
    path.join(dir, "manifest.json"),
    JSON.stringify({ format: "tkc-library", version: 1, target: lib.target, kernels: manifest }, null, 1),
  );
}

export function readLibrary(dir: string): Library {
  const file = path.join(dir, "manifest.json");
  if (!fs.existsSync(file))
    throw new Error(
      `tkc: ${dir} is not a compiled kernel library (no manifest.json); make one with tkc compile`,
    );
  const m = JSON.parse(fs.readFileSync(file, "utf8")) as {
    format: string;
    version: number;
    target: string;
    kernels: Record<string, KernelArtifact & { file: string }>;
  };
  if (m.format !== "tkc-library" || m.version !== 1)
    throw new Error(`tkc: ${file} is not a tkc library manifest (version 1)`);
  const kernels: Record<string, KernelArtifact> = {};
  for (const [key, meta] of Object.entries(m.kernels)) {
    const p = path.join(dir, meta.file);
    if (!fs.existsSync(p)) throw new Error(`tkc: ${dir}: kernel ${key}'s image ${meta.file} is missing`);
    const image = meta.file.endsWith(".ptx")
      ? fs.readFileSync(p, "utf8")
      : fs.readFileSync(p).toString("base64");
    kernels[key] = { ...meta, image };
  }
  return { target: m.target, kernels };
}
