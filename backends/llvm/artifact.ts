/** Device IR to a KernelArtifact: render, compile (PTX or an AMD code object), record the ABI. */
import type { PrimFunc } from "../../lower/ir/nodes.ts";
import { bufferAccess, type KernelArtifact } from "../gpu-common/kernel.ts";
import { compileLLVM } from "./compile.ts";
import { renderLLVM } from "./render.ts";
import { ptxResources, ResourceToolUnavailableError } from "./resources.ts";
import { waveSize, type LLVMTarget } from "./target.ts";

const describeTarget = (t: LLVMTarget): string =>
  t.kind === "nvptx" ? `nvptx ${t.arch}` : `amdgcn ${t.arch} wave${waveSize(t)}`;

/** Strips variable identities from launch expressions so they travel as plain JSON. */
const plain = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

export function buildArtifact(
  f: PrimFunc,
  target: LLVMTarget,
  opts: { resources?: boolean } = {},
): KernelArtifact & { llvm: string } {
  const r = renderLLVM(f, target);
  const c = compileLLVM(r.text, target);
  const access = bufferAccess(f);
  const shapes = new Map(
    f.params.flatMap((p) => (p.kind === "buffer" ? [[p.buffer.name, p.buffer.shape] as const] : [])),
  );
  let registers: number | undefined;
  if (opts.resources && c.ptx) {
    try {
      registers = ptxResources(c.ptx, target.arch).find((k) => k.name === r.name)?.registers;
    } catch (e) {
      if (!(e instanceof ResourceToolUnavailableError)) throw e;
    }
  }
  return {
    name: f.name,
    entry: r.name,
    target: describeTarget(target),
    image: c.ptx ?? Buffer.from(c.hsaco!).toString("base64"),
    abi: r.abi.map((a) => ({
      ...a,
      ...(a.kind === "buffer" ? { shape: plain(shapes.get(a.name)!), ...access.get(a.name)! } : {}),
    })),
    launch: plain({ grid: r.launch.grid, block: r.launch.block }),
    sharedBytes: r.sharedBytes,
    ...(r.dynamicSharedBytes > 0 ? { dynamicSharedBytes: r.dynamicSharedBytes } : {}),
    ...(registers !== undefined ? { registers } : {}),
    llvm: r.text,
  };
}
