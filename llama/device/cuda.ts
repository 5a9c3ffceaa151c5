/**
 * The CUDA device: tensors in device memory, ops from a compiled library (PTX loaded through the
 * driver), launches on one stream, and recordings as CUDA graphs.
 */
import type { DType } from "../../dsl/dtypes.ts";
import { bytesOf } from "../../dsl/dtypes.ts";
import { storageFor, type Storage } from "../../dsl/ndarray.ts";
import {
  bindSymbols,
  kernelArgs,
  launchConfig,
  type KernelArtifact,
} from "../../backends/gpu-common/kernel.ts";
import type { DevicePtr, GpuFunction, GpuRuntime } from "../../backends/gpu-common/runtime.ts";
import type { Device, DeviceTensor, Op, OpArgs, OpSpec, Recording } from "./types.ts";
import type { Library } from "./library.ts";

interface CudaTensor extends DeviceTensor {
  readonly ptr: DevicePtr;
  readonly owned: boolean;
}

interface CudaOp extends Op {
  readonly art: KernelArtifact;
  readonly fn: GpuFunction;
}

export interface CudaDeviceOptions {
  readonly runtime: GpuRuntime;
  readonly library: Library;
  /** Time every launch with events (not inside recordings); read with profile(). */
  readonly profile?: boolean;
}

/** Milliseconds per op key, from a device made with `profile: true`. */
export function profileOf(d: Device): Map<string, { ms: number; launches: number }> {
  return (
    (
      d as unknown as { profileTable?: () => Map<string, { ms: number; launches: number }> }
    ).profileTable?.() ?? new Map()
  );
}

export function createCudaDevice({ runtime: rt, library, profile }: CudaDeviceOptions): Device {
  const stream = rt.createStream();
  let recording = false;
  const timings: {
    key: string;
    start: ReturnType<GpuRuntime["createEvent"]>;
    end: ReturnType<GpuRuntime["createEvent"]>;
  }[] = [];
  const ops = new Map<string, CudaOp>();
  const allocations: DevicePtr[] = [];
  const modules: { unload(): void }[] = [];
  const asT = (t: DeviceTensor) => t as CudaTensor;
  const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
  const device: Device & { profileTable(): Map<string, { ms: number; launches: number }> } = {
    kind: "cuda",
    name: `${rt.device.name} (CUDA)`,
    tensor(dtype: DType, shape: readonly number[]): DeviceTensor {
      const ptr = rt.alloc(Math.max(16, count(shape) * bytesOf(dtype)));
      allocations.push(ptr);
      const t: CudaTensor = { dtype, shape: [...shape], ptr, owned: true };
      return t;
    },
    view(t, shape, offset = 0) {
      const base = asT(t);
      if (offset < 0 || offset + count(shape) > count(base.shape))
        throw new RangeError(
          `tkc: a view of ${count(shape)} elements at ${offset} exceeds a tensor of ${count(base.shape)}`,
        );
      const v: CudaTensor = {
        dtype: base.dtype,
        shape: [...shape],
        ptr: base.ptr + BigInt(offset * bytesOf(base.dtype)),
        owned: false,
      };
      return v;
    },
    write(t, data: Storage, offset = 0) {
      const d = asT(t);
      rt.upload(d.ptr + BigInt(offset * bytesOf(d.dtype)), data, stream);
    },
    read(t) {
      const d = asT(t);
      const out = storageFor(d.dtype, count(d.shape));
      stream.synchronize();
      rt.download(out, d.ptr, stream);
      return out;
    },
    op(spec: OpSpec) {
      let op = ops.get(spec.key);
      if (!op) {
        const art = library.kernels[spec.key];
        if (!art)
          throw new Error(
            `tkc: kernel ${spec.key} is not in the compiled library (${library.target}); rebuild it with tkc compile for this model`,
          );
        const mod = rt.loadModule(art.image);
        modules.push(mod);
        op = { spec, art, fn: mod.getFunction(art.entry) };
        ops.set(spec.key, op);
      }
      return op;
    },
    run(o, args: OpArgs) {
      const op = o as CudaOp;
      const shapes: Record<string, { dtype: DType; shape: readonly number[] }> = {};
      const ptrs: Record<string, DevicePtr> = {};
      const scalars: Record<string, number> = {};
      for (const [k, v] of Object.entries(args)) {
        if (typeof v === "number") scalars[k] = v;
        else {
          shapes[k] = v;
          ptrs[k] = asT(v).ptr;
        }
      }
      const symbols = bindSymbols(op.art, shapes);
      const { grid, block } = launchConfig(op.art, symbols);
      const timed = profile && !recording;
      const start = timed ? rt.createEvent() : undefined;
      start?.record(stream);
      rt.launch(op.fn, kernelArgs(op.art, ptrs, scalars, symbols), { grid, block, stream });
      if (start) {
        const end = rt.createEvent();
        end.record(stream);
        timings.push({ key: op.spec.key, start, end });
      }
    },
    record(body): Recording {
      recording = true;
      let graph;
      try {
        graph = rt.captureGraph(stream, () => body());
      } finally {
        recording = false;
      }
      return { replay: () => graph.launch(stream), dispose: () => graph.destroy() };
    },
    sync() {
      stream.synchronize();
    },
    profileTable() {
      stream.synchronize();
      const table = new Map<string, { ms: number; launches: number }>();
      for (const t of timings) {
        const e = table.get(t.key) ?? { ms: 0, launches: 0 };
        e.ms += t.end.elapsedSince(t.start);
        e.launches++;
        table.set(t.key, e);
        t.start.destroy();
        t.end.destroy();
      }
      timings.length = 0;
      return table;
    },
    dispose() {
      stream.synchronize();
      for (const m of modules) m.unload();
      for (const p of allocations) rt.free(p);
      stream.destroy();
    },
  };
  return device;
}
