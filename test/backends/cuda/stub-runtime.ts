/**
 * A GpuRuntime for the CUDA device's tests without a GPU or a driver: a device name, streams,
 * allocations at distinct addresses and frees; each test adds the members it observes (launch,
 * loadModule, events, graphs). Any other member throws when read, so a test sees what the device
 * asks of the runtime.
 */
import type { GpuRuntime } from "../../../backends/gpu-common/runtime.ts";

export function stubRuntime(members: Partial<GpuRuntime>): GpuRuntime {
  let next = 0x1000n;
  const stub: Partial<GpuRuntime> = {
    device: { name: "stub" } as GpuRuntime["device"],
    createStream: () => ({ synchronize() {}, destroy() {} }) as never,
    alloc: (bytes: number) => {
      const p = next;
      next += BigInt(bytes + 256);
      return p;
    },
    free: () => {},
    ...members,
  };
  return new Proxy(stub as GpuRuntime, {
    get: (t, k) => {
      if (!(k in t)) throw new Error(`stub runtime: ${String(k)} is not stubbed`);
      return t[k as keyof GpuRuntime];
    },
  });
}
