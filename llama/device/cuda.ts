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
  kernelFunction,
  launchConfig,
  type KernelArtifact,
} from "../../backends/gpu-common/kernel.ts";
import type {
  DevicePtr,
  GpuEvent,
  GpuFunction,
  GpuGraph,
  GpuRuntime,
} from "../../backends/gpu-common/runtime.ts";
import type { Device, DeviceTensor, Op, OpArgs, OpSpec, Recording } from "./types.ts";
import type { Library } from "./library.ts";
import { cudaOpChoices } from "../op-choices.ts";

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
  /**
   * Time every launch (not inside recordings), read with profileOf(). true or "flushed": each
   * launch is also replayed PROFILE_REPS times in a graph, each after an L2 flush, so the time
   * excludes host launch overhead and any cache state the previous launches left (kernels that
   * update in place, residual adds, then hold other values than an unprofiled run's). "inOrder":
   * events around each launch as the model issues it, nothing replayed or flushed, so each time is
   * that launch's in the model's own sequence, with the L2 contents its predecessors leave (and
   * the gap an event adds between launches).
   */
  readonly profile?: boolean | "flushed" | "inOrder";
  /**
   * Launch with programmatic dependent launch (sm_90 libraries only, whose kernels wait for their
   * predecessor themselves), so that each kernel's launch overlaps the previous one's tail: true
   * (TKC_PDL=1) for every launch, false (TKC_PDL=0) for none. By default the launches of
   * recordings (the decode step's graph) use it, and eager ones where their op asks
   * (OpSpec.programmaticEager). On an H100 the 7B q4f16_1 decode with tensor-core GEMVs gained 5%
   * in its graph (bench/results/decode-h100.json, decodeGemvAB); the 512-token q4f16_1 prefill
   * (wgmma GEMMs, one block a multiprocessor), launched eagerly, 2.8% (26,904-27,029 against
   * 26,200-26,247 tok/s; bench/results/prefill-pdl-ab-h100.json). The f16 prefill (mma GEMMs,
   * several blocks a multiprocessor) is left without it: the third session measured such GEMMs
   * 20% slower with it (bench/results/decode-pdl-ab-h100.json), and this session's f16 runs
   * spread too widely to show either way (7,143-8,231 with it, 6,814-9,211 without).
   */
  readonly programmatic?: boolean;
}

/** One op's launches in profile mode: kernel time, count, and the bytes of their tensors. */
export interface ProfileEntry {
  ms: number;
  launches: number;
  bytes: number;
}

/** Milliseconds per op key, from a device made with `profile: true`. */
export function profileOf(d: Device): Map<string, ProfileEntry> {
  return (d as unknown as { profileTable?: () => Map<string, ProfileEntry> }).profileTable?.() ?? new Map();
}

/** Timed launches per launch in profile mode. */
const PROFILE_REPS = 5;
/** Bytes written before each timed launch to evict the L2 cache (50 to 60 MB on an H100/H200). */
const PROFILE_FLUSH_BYTES = 128 << 20;

export function createCudaDevice({ runtime: rt, library, profile, programmatic }: CudaDeviceOptions): Device {
  const arch = Number(/sm_(\d+)/.exec(library.target)?.[1] ?? 0);
  const env = process.env.TKC_PDL;
  const forced = programmatic ?? (env === "1" ? true : env === "0" ? false : undefined);
  const stream = rt.createStream();
  // Launches on a disposed device would reach freed modules and memory inside the driver.
  let disposed = false;
  const alive = () => {
    if (disposed) throw new Error("tkc cuda: the device was disposed");
  };
  let recording = false;
  const pdl = (spec: OpSpec) => arch >= 90 && (forced ?? (recording || spec.programmaticEager === true));
  let flush: { ptr: DevicePtr; graph: GpuGraph } | undefined;
  const timings: {
    key: string;
    events: ReturnType<GpuRuntime["createEvent"]>[];
    /** The flushed replays' graph; none in order. */
    graph?: { destroy(): void };
    bytes: number;
  }[] = [];
  const ops = new Map<string, CudaOp>();
  const allocations: DevicePtr[] = [];
  const modules: { unload(): void }[] = [];
  const asT = (t: DeviceTensor) => t as CudaTensor;
  const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
  /** The tensors' sizes (views once each): the least traffic a launch can make. */
  const tensorBytes = (args: OpArgs): number => {
    const seen = new Set<string>();
    let bytes = 0;
    for (const v of Object.values(args))
      if (typeof v !== "number") {
        const id = `${asT(v).ptr}:${count(v.shape)}`;
        if (!seen.has(id)) bytes += count(v.shape) * bytesOf(v.dtype);
        seen.add(id);
      }
    return bytes;
  };
  const device: Device & { profileTable(): Map<string, ProfileEntry> } = {
    kind: "cuda",
    name: `${rt.device.name} (CUDA)`,
    // What tkc's CUDA libraries are compiled with (tkc compile, the on-the-fly cache, bench).
    opChoices: cudaOpChoices(library.target, rt.device.computeCapability),
    tensor(dtype: DType, shape: readonly number[]): DeviceTensor {
      alive();
      const ptr = rt.alloc(Math.max(16, count(shape) * bytesOf(dtype)));
      allocations.push(ptr);
      const t: CudaTensor = { dtype, shape: [...shape], ptr, owned: true };
      return t;
    },
    view(t, shape, offset = 0) {
      alive();
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
      alive();
      const d = asT(t);
      rt.upload(d.ptr + BigInt(offset * bytesOf(d.dtype)), data, stream);
    },
    read(t) {
      alive();
      const d = asT(t);
      const out = storageFor(d.dtype, count(d.shape));
      stream.synchronize();
      rt.download(out, d.ptr, stream);
      return out;
    },
    readLater(t) {
      alive();
      const d = asT(t);
      const wait = rt.downloadLater(d.ptr, count(d.shape) * bytesOf(d.dtype), stream);
      return () => {
        const out = storageFor(d.dtype, count(d.shape));
        new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(wait());
        return out;
      };
    },
    op(spec: OpSpec) {
      alive();
      let op = ops.get(spec.key);
      if (!op) {
        const art = library.kernels[spec.key];
        if (!art)
          throw new Error(
            `tkc: kernel ${spec.key} is not in the compiled library (${library.target}); rebuild it with tkc compile for this model`,
          );
        const mod = rt.loadModule(art.image);
        modules.push(mod);
        op = { spec, art, fn: kernelFunction(mod, art) };
        ops.set(spec.key, op);
      }
      return op;
    },
    run(o, args: OpArgs) {
      alive();
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
      const { grid, block, sharedBytes } = launchConfig(op.art, symbols);
      const launchArgs = kernelArgs(op.art, ptrs, scalars, symbols);
      const inOrder = profile === "inOrder" && !recording ? [rt.createEvent(), rt.createEvent()] : undefined;
      inOrder?.[0]!.record(stream);
      rt.launch(op.fn, launchArgs, {
        grid,
        block,
        sharedBytes,
        stream,
        programmatic: pdl(op.spec),
      });
      if (inOrder) {
        inOrder[1]!.record(stream);
        timings.push({ key: op.spec.key, events: inOrder, bytes: tensorBytes(args) });
      } else if (profile && !recording) {
        // Each timed launch follows a write of more than the L2 cache holds, so it reads its
        // weights from memory as it does in a real step (where 3.7 GB pass through a 50 MB L2).
        // Events recorded inside a graph cannot be timed: the graph of flushes and launches is
        // timed whole, less a graph of the flushes alone timed beside it.
        if (!flush) {
          const ptr = rt.alloc(PROFILE_FLUSH_BYTES);
          const graph = rt.captureGraph(stream, (st) => {
            for (let i = 0; i < PROFILE_REPS; i++) rt.memset8(ptr, i, PROFILE_FLUSH_BYTES, st);
          });
          flush = { ptr, graph };
        }
        const flushPtr = flush.ptr;
        const graph = rt.captureGraph(stream, (st) => {
          for (let i = 0; i < PROFILE_REPS; i++) {
            rt.memset8(flushPtr, i, PROFILE_FLUSH_BYTES, st);
            rt.launch(op.fn, launchArgs, { grid, block, sharedBytes, stream: st });
          }
        });
        const events = Array.from({ length: 3 }, () => rt.createEvent());
        flush.graph.launch(stream);
        events[0]!.record(stream);
        flush.graph.launch(stream);
        events[1]!.record(stream);
        graph.launch(stream);
        events[2]!.record(stream);
        timings.push({ key: op.spec.key, events, graph, bytes: tensorBytes(args) });
      }
    },
    record(body): Recording {
      alive();
      recording = true;
      let graph;
      try {
        graph = rt.captureGraph(stream, () => body());
      } finally {
        recording = false;
      }
      let freed = false;
      return {
        replay: () => {
          alive();
          if (freed) throw new Error("tkc cuda: the recording was disposed");
          graph.launch(stream);
        },
        dispose: () => {
          if (freed || disposed) return;
          freed = true;
          graph.destroy();
        },
      };
    },
    sync() {
      alive();
      stream.synchronize();
    },
    profileTable() {
      alive();
      stream.synchronize();
      const table = new Map<string, ProfileEntry>();
      for (const t of timings) {
        const e = table.get(t.key) ?? { ms: 0, launches: 0, bytes: 0 };
        e.bytes += t.bytes;
        if (t.graph) {
          const [e0, e1, e2] = t.events as [GpuEvent, GpuEvent, GpuEvent];
          e.ms += Math.max(0, e2.elapsedSince(e1) - e1.elapsedSince(e0)) / PROFILE_REPS;
        } else {
          const [before, after] = t.events as [GpuEvent, GpuEvent];
          e.ms += after.elapsedSince(before);
        }
        e.launches++;
        table.set(t.key, e);
        for (const ev of t.events) ev.destroy();
        t.graph?.destroy();
      }
      timings.length = 0;
      return table;
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      stream.synchronize();
      for (const m of modules) m.unload();
      for (const p of allocations) rt.free(p);
      if (flush) {
        flush.graph.destroy();
        rt.free(flush.ptr);
      }
      stream.destroy();
    },
  };
  return device;
}
