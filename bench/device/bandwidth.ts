import type { KernelArg } from "../../backends/gpu-common/args.ts";
import type { DevicePtr, GpuFunction, GpuRuntime } from "../../backends/gpu-common/runtime.ts";

/**
 * Copies of a kernel's buffers (bytes by name) that together exceed the L2 cache (50 to 60 MB on an
 * H100/H200; at most 16 copies), for timeKernel to take in turn so that each launch reads from
 * memory as in a model. Each buffer is filled by `fill` (default: the byte 0x22 throughout).
 */
export function bufferCopies(
  rt: GpuRuntime,
  bytes: Readonly<Record<string, number>>,
  fill: (name: string, ptr: DevicePtr, bytes: number) => void = (_, p, n) => rt.memset8(p, 0x22, n),
): Record<string, DevicePtr>[] {
  const total = Object.values(bytes).reduce((a, b) => a + b, 0);
  const copies = Math.max(1, Math.min(16, Math.ceil((256 << 20) / total)));
  return Array.from({ length: copies }, () =>
    Object.fromEntries(
      Object.entries(bytes).map(([name, n]) => {
        const p = rt.alloc(n);
        fill(name, p, n);
        return [name, p];
      }),
    ),
  );
}

export function freeCopies(rt: GpuRuntime, sets: readonly Record<string, DevicePtr>[]): void {
  for (const ptr of sets) for (const p of Object.values(ptr)) rt.free(p);
}

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

/**
 * Microseconds per launch of one kernel, from a captured graph of `reps` launches timed with
 * events (so host launch overhead does not count), after `warmup` plain launches. Several argument
 * lists are taken in turn (copies of the inputs that together exceed the L2 cache keep a small
 * kernel reading from memory, as it does in a model).
 */
export function timeKernel(
  rt: GpuRuntime,
  fn: GpuFunction,
  argSets: readonly KernelArg[] | readonly (readonly KernelArg[])[],
  launch: { grid: [number, number, number]; block: [number, number, number]; sharedBytes?: number },
  opts: { reps: number; warmup: number; programmatic?: boolean },
): number {
  const sets = (Array.isArray(argSets[0]) ? argSets : [argSets]) as readonly (readonly KernelArg[])[];
  const args = (i: number) => sets[i % sets.length]!;
  const s = rt.createStream();
  for (let i = 0; i < opts.warmup; i++) rt.launch(fn, args(i), { ...launch, stream: s });
  const graph = rt.captureGraph(s, (st) => {
    for (let i = 0; i < opts.reps; i++)
      rt.launch(fn, args(i), { ...launch, stream: st, programmatic: opts.programmatic === true && i > 0 });
  });
  graph.launch(s);
  const e0 = rt.createEvent();
  const e1 = rt.createEvent();
  e0.record(s);
  graph.launch(s);
  e1.record(s);
  e1.synchronize();
  const us = (e1.elapsedSince(e0) * 1e3) / opts.reps;
  graph.destroy();
  e0.destroy();
  e1.destroy();
  s.destroy();
  return us;
}
