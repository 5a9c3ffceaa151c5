// The CUDA runtime against a fake libcuda (test/backends/cuda/fake): the kernels run on the CPU
// but read their arguments through the kernelParams table, so packing, the koffi prototypes,
// memory, streams, events and graph capture/replay are all exercised without a GPU.
import koffi from "koffi";
import { beforeAll, describe, expect, it } from "vitest";
import { i32 } from "../../../backends/gpu-common/args.ts";
import type { GpuRuntime } from "../../../backends/gpu-common/runtime.ts";
import { createCudaRuntime } from "../../../backends/cuda/runtime.ts";
import { CudaError, CudaUnavailableError } from "../../../backends/cuda/errors.ts";
import { buildFakeLibcuda } from "./fake/build.ts";

const fake = buildFakeLibcuda();

describe.skipIf(!fake)("CUDA runtime on a fake libcuda", () => {
  let rt: GpuRuntime;
  beforeAll(() => {
    process.env.TKC_LIBCUDA = fake;
    rt = createCudaRuntime();
  });

  it("fails cleanly when cuInit fails (no GPU)", () => {
    process.env.FAKE_CUDA_INIT_ERROR = "100";
    try {
      expect(() => createCudaRuntime()).toThrow(CudaUnavailableError);
      expect(() => createCudaRuntime()).toThrow(
        "cuInit failed with CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected; no usable NVIDIA GPU here.",
      );
    } finally {
      delete process.env.FAKE_CUDA_INIT_ERROR;
    }
  });

  it("reads the device's attributes", () => {
    expect(rt.device).toMatchObject({
      api: "cuda",
      name: "Fake H100 (CPU)",
      arch: "sm_90",
      multiprocessors: 132,
    });
    expect(rt.device.sharedMemPerBlockOptin).toBe(232448);
    expect(rt.device.theoreticalBandwidthGBs).toBeCloseTo(3352.32, 2);
  });

  it("runs vector add with arguments passed through the address table", () => {
    const n = 1000;
    const a = Float32Array.from({ length: n }, (_, i) => i);
    const b = Float32Array.from({ length: n }, (_, i) => 0.5 * i);
    const [da, db, dc] = [rt.alloc(4 * n), rt.alloc(4 * n), rt.alloc(4 * n)];
    rt.upload(da, a);
    rt.upload(db, b);
    const fn = rt.loadModule("// ptx").getFunction("vadd");
    rt.launch(fn, [da, db, dc, i32(n - 1)], { grid: 4, block: 256 });
    const c = new Float32Array(n);
    rt.download(c, dc);
    expect(c[998]).toBe(1.5 * 998);
    expect(c[999]).toBe(0); // past n: untouched (the allocation is zeroed)
    for (const p of [da, db, dc]) rt.free(p);
  });

  it("copies device to device, sets bytes, and copies asynchronously on a stream", () => {
    const s = rt.createStream();
    const [x, y] = [rt.alloc(64), rt.alloc(64)];
    rt.upload(
      x,
      Uint32Array.from({ length: 16 }, (_, i) => i * 3),
      s,
    );
    rt.copy(y, x, 64, s);
    rt.memset8(y, 0xff, 4, s);
    const out = new Uint32Array(16);
    rt.download(out, y, s);
    s.synchronize();
    expect(out[0]).toBe(0xffffffff);
    expect(out[15]).toBe(45);
    s.destroy();
  });

  it("reads later in the stream's order, through page-locked buffers it reuses", () => {
    const hostBuffers = koffi.load(fake!).func("int fake_host_buffers(void)") as () => number;
    const before = hostBuffers();
    const s = rt.createStream();
    const x = rt.alloc(64);
    rt.upload(
      x,
      Int32Array.from({ length: 16 }, (_, i) => i + 1),
      s,
    );
    const first = rt.downloadLater(x, 64, s);
    // Written after the read was enqueued: the read still sees what came before it.
    rt.upload(x, new Int32Array(16).fill(-7), s);
    const second = rt.downloadLater(x, 16, s);
    expect(hostBuffers()).toBe(before + 2); // both copies in flight at once
    expect(Array.from(new Int32Array(first().buffer))).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(Array.from(new Int32Array(second().buffer))).toEqual([-7, -7, -7, -7]);
    expect(first()).toEqual(first()); // a second wait returns the same bytes
    const third = rt.downloadLater(x, 8, s);
    expect(hostBuffers()).toBe(before + 2); // a finished copy's buffer serves the next
    expect(Array.from(new Int32Array(third().buffer))).toEqual([-7, -7]);
    rt.free(x);
    s.destroy();
  });

  it("captures 100 launches into a graph and replays them with per-step values from device memory", () => {
    const n = 256;
    const fn = rt.loadModule("// ptx").getFunction("accum");
    const [y, x, scale] = [rt.alloc(4 * n), rt.alloc(4 * n), rt.alloc(4)];
    rt.upload(
      x,
      Float32Array.from({ length: n }, (_, i) => i),
    );
    const s = rt.createStream();
    const graph = rt.captureGraph(s, (st) => {
      for (let k = 0; k < 100; k++) rt.launch(fn, [y, x, scale, i32(n)], { grid: 1, block: n, stream: st });
    });
    const out = new Float32Array(n);
    rt.download(out, y);
    expect(out[5]).toBe(0); // capture records, it does not run
    for (const step of [1, 2]) {
      rt.upload(scale, Float32Array.of(step), s);
      graph.launch(s);
    }
    s.synchronize();
    rt.download(out, y);
    expect(out[5]).toBe(5 * 300);
    graph.destroy();
    s.destroy();
  });

  it("ends a capture whose body throws, leaving the stream usable", () => {
    const s = rt.createStream();
    expect(() =>
      rt.captureGraph(s, () => {
        throw new Error("renderer bug");
      }),
    ).toThrow("renderer bug");
    const g = rt.captureGraph(s, () => {});
    g.launch(s);
    g.destroy();
  });

  it("times with events", () => {
    const [e0, e1] = [rt.createEvent(), rt.createEvent()];
    e0.record();
    e1.record();
    e1.synchronize();
    const ms = e1.elapsedSince(e0);
    expect(ms).toBeGreaterThanOrEqual(0);
    expect(ms).toBeLessThan(1000);
  });

  it("shows the JIT's error log for PTX it rejects", () => {
    let err: unknown;
    try {
      rt.loadModule(".visible .entry k() { bogus; }");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CudaError);
    expect((err as CudaError).errorName).toBe("CUDA_ERROR_INVALID_PTX");
    expect((err as Error).message).toContain("cuModuleLoadDataEx failed: CUDA_ERROR_INVALID_PTX (218)");
    expect((err as Error).message).toContain("Not a name of any known instruction: 'bogus'");
  });

  it("keeps the JIT's info log and reports function attributes", () => {
    const mod = rt.loadModule("// ptx");
    expect(mod.log).toContain("Used 12 registers");
    expect(mod.getFunction("block_sum").attributes()).toEqual({
      registers: 13,
      staticSharedBytes: 32,
      localBytes: 0,
      maxThreadsPerBlock: 1024,
    });
    expect(() => mod.getFunction("missing")).toThrow(
      "cuModuleGetFunction failed: CUDA_ERROR_NOT_FOUND (500): named symbol not found",
    );
  });

  it("opts in to more than 48 KB of dynamic shared memory, within the device's limit", () => {
    const fn = rt.loadModule("// ptx").getFunction("reverse_tile");
    const tile = 16384; // 64 KB of floats
    const [x, y] = [rt.alloc(4 * tile), rt.alloc(4 * tile)];
    rt.upload(
      x,
      Float32Array.from({ length: tile }, (_, i) => i),
    );
    const launch = () => rt.launch(fn, [x, y, i32(tile)], { grid: 1, block: 1024, sharedBytes: 4 * tile });
    expect(launch).toThrow(/cuLaunchKernel failed: CUDA_ERROR_INVALID_VALUE/);
    fn.setMaxDynamicSharedMemory(4 * tile);
    launch();
    const out = new Float32Array(tile);
    rt.download(out, y);
    expect(out[0]).toBe(tile - 1);
    expect(() => fn.setMaxDynamicSharedMemory(300 * 1024)).toThrow(/allows at most 232448 per block/);
  });

  it("refuses bad launch geometry before calling the driver", () => {
    const fn = rt.loadModule("// ptx").getFunction("vadd");
    expect(() => rt.launch(fn, [], { grid: 0, block: 32 })).toThrow(/positive integers/);
  });
});
