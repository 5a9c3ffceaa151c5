import type { GpuRuntime } from "../../backends/gpu-common/runtime.ts";

/** Device-to-device copy bandwidth (bytes read + written per second), timed with events. */
export function copyBandwidth(rt: GpuRuntime, bytes = 1 << 30): number {
  const a = rt.alloc(bytes);
  const b = rt.alloc(bytes);
  const s = rt.createStream();
  rt.copy(b, a, bytes, s);
  const e0 = rt.createEvent();
  const e1 = rt.createEvent();
  const reps = 10;
  e0.record(s);
  for (let i = 0; i < reps; i++) rt.copy(b, a, bytes, s);
  e1.record(s);
  e1.synchronize();
  const ms = e1.elapsedSince(e0) / reps;
  rt.free(a);
  rt.free(b);
  return (2 * bytes) / (ms * 1e-3); // bytes read + written per second
}
