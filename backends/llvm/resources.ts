// What a compiled kernel costs in registers and shared memory, read from the tools that know:
// `ptxas -v` for PTX (LLVM's PTX is virtual-register code; only ptxas allocates real registers),
// and the HSA metadata note of an AMD code object (`llvm-readobj --notes`), which LLVM itself
// fills with the final register counts.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface KernelResources {
  name: string;
  /** Registers per thread (NVIDIA) or VGPRs per lane (AMD: .vgpr_count, which on gfx90a/gfx942
   *  already covers the unified VGPR+AGPR file that limits occupancy). */
  registers: number;
  /** Static shared memory (NVIDIA smem) or LDS (AMD group segment) in bytes. */
  sharedBytes: number;
  /** Per-thread stack / private segment in bytes. */
  stackBytes: number;
  /** Bytes (NVIDIA) or registers (AMD) spilled; 0 is what a tuned kernel wants. */
  spills: number;
  /** AMD only: scalar registers, and the wave size the kernel was built for. */
  sgprs?: number;
  wavefrontSize?: number;
  maxThreadsPerBlock?: number;
}

/** Thrown when the tool that reports resources is not installed. */
export class ResourceToolUnavailableError extends Error {
  override name = "ResourceToolUnavailableError";
}

export function ptxasPath(): string {
  return process.env.TKC_PTXAS ?? "ptxas";
}

/** Runs `ptxas -v` on PTX text and parses its report; throws if ptxas is missing or rejects it. */
export function ptxResources(ptx: string, arch = "sm_90"): KernelResources[] {
  // PTX for an architecture-specific target (sm_90a: kernels with wgmma) compiles only for it.
  const specific = /^\.target\s+(sm_\d+a)\b/m.exec(ptx)?.[1];
  if (specific && specific.startsWith(arch)) arch = specific;
  return parsePtxasVerbose(
    runTool(ptxasPath(), (f) => [`-arch=${arch}`, "-v", f, "-o", "/dev/null"], ptx, "ptx"),
  );
}

/** Parses `ptxas -v` output (the report is on stderr). Formats of CUDA 11 to 13 are accepted. */
export function parsePtxasVerbose(text: string): KernelResources[] {
  const out: KernelResources[] = [];
  let cur: KernelResources | undefined;
  for (const line of text.split("\n")) {
    const fn = /Function properties for (\S+)/.exec(line) ?? /Compiling entry function '([^']+)'/.exec(line);
    if (fn) {
      const name = fn[1]!;
      if (cur?.name !== name) {
        cur = { name, registers: 0, sharedBytes: 0, stackBytes: 0, spills: 0 };
        out.push(cur);
      }
      continue;
    }
    if (!cur) continue;
    const frame = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (frame) {
      cur.stackBytes = Number(frame[1]);
      cur.spills = Number(frame[2]);
    }
    const regs = /Used (\d+) registers/.exec(line);
    if (regs) cur.registers = Number(regs[1]);
    const smem = /(\d+) bytes smem/.exec(line);
    if (smem) cur.sharedBytes = Number(smem[1]);
  }
  return out;
}

export function readobjPath(): string {
  return process.env.TKC_LLVM_READOBJ ?? "llvm-readobj-19";
}

/** Reads the amdhsa metadata note of a linked code object (or an object file). */
export function amdgpuResources(codeObject: Uint8Array): KernelResources[] {
  return parseAmdhsaMetadata(runTool(readobjPath(), (f) => ["--notes", f], codeObject, "hsaco"));
}

/**
 * Parses the YAML of the amdhsa.kernels metadata: the same text appears in `llvm-readobj --notes`
 * and between .amdgpu_metadata/.end_amdgpu_metadata in AMDGPU assembly.
 */
export function parseAmdhsaMetadata(text: string): KernelResources[] {
  const out: KernelResources[] = [];
  // Each kernel is a YAML list item "  - .agpr_count: ..." at the kernels' indentation; args are
  // nested deeper, so only keys at the kernel's own indentation are read.
  const start = text.indexOf("amdhsa.kernels:");
  if (start < 0) return out;
  let indent = -1;
  let fields: Record<string, string> = {};
  const flush = () => {
    if (fields[".name"] === undefined) return;
    const n = (k: string) => Number(fields[k] ?? 0);
    out.push({
      name: fields[".name"],
      registers: n(".vgpr_count"),
      sgprs: n(".sgpr_count"),
      sharedBytes: n(".group_segment_fixed_size"),
      stackBytes: n(".private_segment_fixed_size"),
      spills: n(".vgpr_spill_count") + n(".sgpr_spill_count"),
      wavefrontSize: n(".wavefront_size"),
      maxThreadsPerBlock: n(".max_flat_workgroup_size"),
    });
  };
  for (const line of text.slice(start).split("\n").slice(1)) {
    const item = /^(\s*)- (\.[\w]+):\s*(.*)$/.exec(line);
    if (item && (indent < 0 || item[1]!.length === indent)) {
      flush();
      indent = item[1]!.length;
      fields = { [item[2]!]: item[3]!.trim() };
      continue;
    }
    if (indent >= 0 && /^\S/.test(line)) break; // amdhsa.target: ends the list
    const kv = /^(\s*)(\.[\w]+):\s*(.*)$/.exec(line);
    if (kv && kv[1]!.length === indent + 2) fields[kv[2]!] = kv[3]!.replace(/^!str\s+/, "").trim();
  }
  flush();
  return out;
}

/** Runs a tool on `input` written to a temp file; returns stdout and stderr together. */
function runTool(
  cmd: string,
  args: (file: string) => string[],
  input: string | Uint8Array,
  ext: string,
): string {
  const dir = mkdtempSync(join(tmpdir(), "tkc-res-"));
  try {
    const file = join(dir, `kernel.${ext}`);
    writeFileSync(file, input);
    const r = spawnSync(cmd, args(file), { encoding: "utf8" });
    if ((r.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") {
      throw new ResourceToolUnavailableError(
        `${cmd} was not found; install it (ptxas comes with the CUDA toolkit, llvm-readobj-19 with ` +
          `\`apt-get install llvm-19\`) or set TKC_PTXAS / TKC_LLVM_READOBJ.`,
      );
    }
    if (r.error) throw r.error;
    if (r.status !== 0) throw new Error(`${cmd} failed: ${(r.stderr || r.stdout).trim()}`);
    return `${r.stdout}\n${r.stderr}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
