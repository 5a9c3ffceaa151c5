/**
 * Runs kernels rendered by backends/spirv/render.ts on the Vulkan runtime.
 *
 *   const k = vulkanKernel(rt, scheduledOrDeviceIR);      // render, assemble, validate, pipeline
 *   const out = k({ x, b, y });                           // NDArrays in, fresh NDArrays out
 *
 *   // Many dispatches recorded once, submitted as often as needed (buffers stay on the device):
 *   const x = toDevice(rt, xs); const y = emptyTensor(rt, "f32", [n, m]);
 *   const rec = rt.record([k.dispatch({ x, y }), k2.dispatch({ x: y, y: z })]);
 *   rt.submit(rec); fromDevice(rt, z);
 *
 * The ABI description is the GPU backends' (gpu-common/kernel.ts KernelArtifact: bindSymbols,
 * launchConfig), extended with where each entry travels (binding or push-constant offset).
 * Push constants are recorded into the command buffer: a recording keeps the scalar values it was
 * recorded with, so a value that changes per submission belongs in a buffer.
 */
import { bf16Bits, bf16FromBits, bytesOf, f16Bits, f16FromBits, type DType } from "../../dsl/dtypes.ts";
import { sizeOf, storageFor, type NDArray, type Storage } from "../../dsl/ndarray.ts";
import type { PrimFunc } from "../../lower/ir/nodes.ts";
import { bindSymbols, launchConfig, type KernelArtifact } from "../gpu-common/kernel.ts";
import { renderSpirv, type SpirvAbiEntry, type SpirvRenderOptions } from "../spirv/render.ts";
import { validate as spirvVal } from "../spirv/tools.ts";
import type { Dispatch, GpuBuffer, Pipeline, VulkanRuntime } from "./runtime.ts";

/** A kernel compiled for Vulkan: the SPIR-V words (base64 in `image`) and how to call it. */
export interface VulkanArtifact extends KernelArtifact {
  readonly abi: readonly SpirvAbiEntry[];
  readonly localSize: readonly [number, number, number];
  readonly pushConstantBytes: number;
  /** The SPIR-V assembly the words were assembled from (for dumps). */
  readonly text: string;
}

export interface VulkanBuildOptions extends Partial<SpirvRenderOptions> {
  /** Run spirv-val on the module: true, false, or "if-available" (default) when it is installed. */
  readonly validate?: boolean | "if-available";
}

/** A tensor living in a Vulkan buffer (what `dispatch` binds). */
export interface DeviceTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly buffer: GpuBuffer;
  /** Byte offset of element 0 in `buffer` (a view; default 0): bound as a descriptor offset, so it
   *  must be a multiple of the device's minStorageBufferOffsetAlignment. */
  readonly offset?: number;
}

export interface VulkanKernel {
  /** Runs once on host arrays: uploads what the kernel reads, poisons outputs, downloads all. */
  (args: Readonly<Record<string, NDArray | number>>): Record<string, NDArray | number>;
  readonly artifact: VulkanArtifact;
  readonly pipeline: Pipeline;
  /** One dispatch over device tensors, for `rt.record([...])`; numbers are scalars or symbols. */
  dispatch(args: Readonly<Record<string, DeviceTensor | number>>): Dispatch;
}

/** Renders (and validates) a device function into a VulkanArtifact. */
export function buildVulkanArtifact(f: PrimFunc, opts: VulkanBuildOptions = {}): VulkanArtifact {
  const r = renderSpirv(f, {
    env: opts.env ?? "vulkan1.2",
    ...(opts.subgroupSize ? { subgroupSize: opts.subgroupSize } : {}),
  });
  const check = opts.validate ?? "if-available";
  if (check) {
    try {
      spirvVal(r.words, r.env);
    } catch (e) {
      const missing = (e as Error).message.startsWith("spirv-val was not found");
      if (!(missing && check === "if-available"))
        throw new Error(`tkc vulkan: kernel ${f.name}: ${(e as Error).message}`);
    }
  }
  return {
    name: f.name,
    entry: r.entry,
    target: "vulkan",
    image: Buffer.from(r.words.buffer, r.words.byteOffset, r.words.byteLength).toString("base64"),
    abi: r.abi,
    launch: JSON.parse(JSON.stringify(r.launch)) as KernelArtifact["launch"],
    sharedBytes: r.sharedBytes,
    localSize: r.localSize,
    pushConstantBytes: r.pushConstantBytes,
    text: r.text,
  };
}

export function artifactWords(art: VulkanArtifact): Uint32Array {
  const b = Buffer.from(art.image, "base64");
  const words = new Uint32Array(b.byteLength / 4);
  new Uint8Array(words.buffer).set(b);
  return words;
}

// ---- host <-> device tensors ----

/** Device bytes of a host array: i64 as two's complement (the host holds it in a Float64Array). */
function deviceBytes(a: NDArray): ArrayBufferView {
  if (a.dtype !== "i64") return a.data;
  return BigInt64Array.from(a.data as Float64Array, (v) => BigInt(Math.trunc(v)));
}

/** A storage buffer for n elements: at least 16 bytes, a multiple of 4 (8-bit and 16-bit arrays). */
const bufferBytes = (dtype: DType, n: number): number =>
  Math.max(16, Math.ceil((n * bytesOf(dtype)) / 4) * 4);

export function toDevice(rt: VulkanRuntime, a: NDArray): DeviceTensor {
  const buffer = rt.buffer(bufferBytes(a.dtype, a.data.length));
  rt.upload(buffer, deviceBytes(a));
  return { dtype: a.dtype, shape: [...a.shape], buffer };
}

/** A device tensor filled with 0xFF bytes (NaN for floats), so elements a kernel misses show. */
export function emptyTensor(rt: VulkanRuntime, dtype: DType, shape: readonly number[]): DeviceTensor {
  const bytes = bufferBytes(
    dtype,
    shape.reduce((a, b) => a * b, 1),
  );
  const buffer = rt.buffer(bytes);
  rt.upload(buffer, new Uint8Array(bytes).fill(0xff));
  return { dtype, shape: [...shape], buffer };
}

export function fromDevice(rt: VulkanRuntime, t: DeviceTensor): NDArray {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const raw = rt.download(t.buffer, n * bytesOf(t.dtype));
  let data: Storage;
  if (t.dtype === "i64") data = Float64Array.from(new BigInt64Array(raw.buffer, 0, n), Number);
  else {
    data = storageFor(t.dtype, n);
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(raw);
  }
  return { dtype: t.dtype, shape: [...t.shape], data };
}

// ---- push constants ----

/** The push-constant block: scalars and symbols at their offsets, converted as render.ts expects. */
export function pushConstants(
  art: VulkanArtifact,
  scalars: Readonly<Record<string, number>>,
  symbols: Readonly<Record<string, number>>,
): Uint8Array | undefined {
  if (art.pushConstantBytes === 0) return undefined;
  const bytes = new Uint8Array(art.pushConstantBytes);
  const dv = new DataView(bytes.buffer);
  for (const a of art.abi) {
    if (a.kind === "buffer") continue;
    const v = a.kind === "symbol" ? symbols[a.name] : scalars[a.name];
    if (v === undefined) throw new TypeError(`tkc vulkan: ${art.name}: missing ${a.kind} ${a.name}`);
    const o = a.offset!;
    switch (a.pushType) {
      case "f32":
        // f16/bf16 scalars travel as f32 holding the value rounded to their type.
        dv.setFloat32(
          o,
          a.dtype === "f16" ? f16FromBits(f16Bits(v)) : a.dtype === "bf16" ? bf16FromBits(bf16Bits(v)) : v,
          true,
        );
        break;
      case "i64":
        dv.setBigInt64(o, BigInt(Math.trunc(v)), true);
        break;
      case "u32":
        dv.setUint32(o, a.dtype === "bool" ? (v ? 1 : 0) : a.dtype === "u8" ? v & 255 : v >>> 0, true);
        break;
      default:
        dv.setInt32(o, a.dtype === "i8" ? (v << 24) >> 24 : v | 0, true);
    }
  }
  return bytes;
}

// ---- the kernel ----

const optionsFor = (rt: VulkanRuntime): VulkanBuildOptions => ({
  env: rt.device.apiVersion.startsWith("1.3") ? "vulkan1.3" : "vulkan1.2",
  subgroupSize: rt.device.subgroup.size,
});

/** Checks the kernel's workgroup against the device before Vulkan sees it. */
function checkLimits(rt: VulkanRuntime, art: VulkanArtifact): void {
  const lim = rt.device.limits;
  const [x, y, z] = art.localSize;
  const fail = (msg: string) => {
    throw new Error(`tkc vulkan: kernel ${art.name}: ${msg} on ${rt.device.name}`);
  };
  if (x * y * z > lim.maxComputeWorkGroupInvocations)
    fail(
      `workgroup ${x}x${y}x${z} exceeds maxComputeWorkGroupInvocations (${lim.maxComputeWorkGroupInvocations})`,
    );
  art.localSize.forEach((d, k) => {
    if (d > lim.maxComputeWorkGroupSize[k]!)
      fail(`workgroup size ${d} along ${"xyz"[k]} exceeds ${lim.maxComputeWorkGroupSize[k]}`);
  });
  if (art.sharedBytes > lim.maxComputeSharedMemorySize)
    fail(
      `${art.sharedBytes} bytes of shared memory exceed maxComputeSharedMemorySize (${lim.maxComputeSharedMemorySize})`,
    );
}

/**
 * A callable kernel on `rt`: from IR (rendered for this device: its Vulkan version and subgroup
 * size) or from a ready artifact. The pipeline is built once (the runtime caches it too).
 */
export function vulkanKernel(
  rt: VulkanRuntime,
  k: PrimFunc | VulkanArtifact,
  opts: VulkanBuildOptions = {},
): VulkanKernel {
  const art =
    "kind" in k && k.kind === "func"
      ? buildVulkanArtifact(k, { ...optionsFor(rt), ...opts })
      : (k as VulkanArtifact);
  checkLimits(rt, art);
  const bufferAbi = art.abi.filter((a) => a.kind === "buffer");
  const pipeline = rt.pipeline({
    spirv: artifactWords(art),
    bindings: bufferAbi.length,
    pushConstantBytes: art.pushConstantBytes,
    localSize: art.localSize,
    name: art.name,
  });

  const split = <T>(args: Readonly<Record<string, T | number>>) => {
    const tensors: Record<string, T> = {};
    const numbers: Record<string, number> = {};
    for (const [name, v] of Object.entries(args)) {
      if (typeof v === "number") numbers[name] = v;
      else tensors[name] = v;
    }
    return { tensors, numbers };
  };

  const dispatch = (args: Readonly<Record<string, DeviceTensor | number>>): Dispatch => {
    const { tensors, numbers } = split(args);
    // Symbols come from the tensors' shapes; a number argument may give one no shape mentions.
    const symbols = { ...numbers, ...bindSymbols(art, tensors) };
    const { grid, block } = launchConfig(art, symbols);
    if (block.join() !== art.localSize.join())
      throw new Error(`tkc vulkan: ${art.name}: launch block ${block.join("x")} differs from LocalSize`);
    const push = pushConstants(art, numbers, symbols);
    const bound = bufferAbi.map((a) => {
      const t = tensors[a.name];
      if (!t) throw new TypeError(`tkc vulkan: ${art.name}: missing argument ${a.name}`);
      return t;
    });
    const offsets = bound.some((t) => t.offset) ? bound.map((t) => t.offset ?? 0) : undefined;
    // Whole 16-byte words: kernels read read-only buffers through a uvec4 view.
    const ranges = pipeline.dynamic
      ? bound.map((t) => Math.max(16, Math.ceil((sizeOf(t.shape) * bytesOf(t.dtype)) / 16) * 16))
      : undefined;
    return {
      pipeline,
      buffers: bound.map((t) => t.buffer),
      ...(offsets ? { offsets } : {}),
      ...(ranges ? { ranges } : {}),
      ...(push ? { push } : {}),
      groups: grid,
    };
  };

  const run = (args: Readonly<Record<string, NDArray | number>>): Record<string, NDArray | number> => {
    const { tensors, numbers } = split(args);
    const dev: Record<string, DeviceTensor> = {};
    try {
      for (const a of bufferAbi) {
        const arr = tensors[a.name];
        if (!arr) throw new TypeError(`tkc vulkan: ${art.name}: missing argument ${a.name}`);
        // Outputs the kernel only writes start as 0xFF bytes, so an element it forgets shows.
        dev[a.name] = a.reads || !a.writes ? toDevice(rt, arr) : emptyTensor(rt, arr.dtype, arr.shape);
      }
      rt.run([dispatch({ ...numbers, ...dev })]);
      const out: Record<string, NDArray | number> = { ...numbers };
      for (const a of bufferAbi) out[a.name] = fromDevice(rt, dev[a.name]!);
      return out;
    } finally {
      for (const t of Object.values(dev)) rt.free(t.buffer);
    }
  };
  return Object.assign(run, { artifact: art, pipeline, dispatch });
}
