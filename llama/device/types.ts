/**
 * The device a model runs on: tensors, compiled operations, launches, and recorded launch
 * sequences (CUDA graphs, Vulkan command buffers, a closure list on the CPU). The model code is
 * written once against this interface.
 */
import type { DType } from "../../dsl/dtypes.ts";
import type { KernelDef } from "../../dsl/kernel.ts";
import type { Storage } from "../../dsl/ndarray.ts";
import type { Schedule } from "../../lower/schedule/schedule.ts";
import type { DependentsLaunch } from "../../lower/ir/nodes.ts";
import type { OpChoices } from "../op-choices.ts";

/**
 * Byte offsets at which a view binds in place on every device: a multiple of Vulkan's largest
 * minStorageBufferOffsetAlignment (256); at other offsets a Vulkan launch reads it through a copy.
 */
export const VIEW_ALIGN_BYTES = 256;

/** `bytes` rounded up to a multiple of VIEW_ALIGN_BYTES: the stride of views laid out in turn. */
export const viewAlignedBytes = (bytes: number): number =>
  Math.ceil(bytes / VIEW_ALIGN_BYTES) * VIEW_ALIGN_BYTES;

export interface DeviceTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/** A GPU schedule: applies primitives for one target's parameters. */
export type ScheduleFn = (s: Schedule, target: string) => void;

/**
 * One compiled operation a model needs: a kernel, specialised (symbolic dimensions bound, f16
 * activations retyped) and scheduled. `key` names it in compiled libraries.
 */
export interface OpSpec {
  readonly key: string;
  readonly kernel: KernelDef;
  readonly specialize?: Readonly<Record<string, number>>;
  readonly retype?: { readonly from: DType; readonly to: DType };
  readonly schedule?: ScheduleFn;
  /**
   * Scalar parameters read from one-element device tensors instead (see scalarsFromMemory): the
   * decode step's position and length, which only the host or the step's last op (recordToken)
   * writes, so kernels read them before waiting for the previous kernel (INVARIANT_BUFFERS).
   */
  readonly scalarsInMemory?: readonly string[];
  /**
   * Launched eagerly (outside recordings) with programmatic dependent launch where the device has
   * it (CUDA, sm_90): a measured choice per op (llama/ops.ts sets it for the prefill's ops where
   * its q4 GEMMs run on wgmma). Recordings use it for every op.
   */
  readonly programmaticEager?: boolean;
  /**
   * With programmatic dependent launch (CUDA, sm_90): the next kernel launches only once this
   * one's blocks reach their epilogue (first global store) or exit (LaunchConfig.dependentsLaunch),
   * not as soon as they pass their wait for the previous kernel: a measured choice per op
   * (llama/op-choices.ts decodeDependentsLaunch).
   */
  readonly dependentsLaunch?: DependentsLaunch;
  /**
   * Blocks of this kernel that must fit on a multiprocessor at once (LaunchConfig.minBlocksPerSM:
   * ptxas caps registers to fit them): a measured choice per op (llama/op-choices.ts decodeMinBlocksPerSM).
   */
  readonly minBlocksPerSM?: number;
}

export interface Op {
  readonly spec: OpSpec;
}

export type OpArgs = Readonly<Record<string, DeviceTensor | number>>;

export interface Recording {
  replay(): void;
  dispose(): void;
}

export interface Device {
  readonly kind: "cpu" | "cuda" | "vulkan";
  readonly name: string;
  /** Kernel choices the device's kernels were built with (llama/op-choices.ts OpChoices); the model's default. */
  readonly opChoices?: OpChoices;
  tensor(dtype: DType, shape: readonly number[]): DeviceTensor;
  /** The same memory seen with another shape, from an element offset (no copy). */
  view(t: DeviceTensor, shape: readonly number[], elementOffset?: number): DeviceTensor;
  /** Copies host data into a tensor (f16 as bit patterns), optionally at an element offset. */
  write(t: DeviceTensor, data: Storage, elementOffset?: number): void;
  read(t: DeviceTensor): Storage;
  /**
   * t as the work enqueued so far leaves it, read without holding back what is enqueued after:
   * the returned function waits for this read alone (CUDA: a copy in the stream's order into
   * page-locked memory), so the host can enqueue more work before it waits. The CPU and Vulkan
   * devices read at once. The storage is the caller's (a copy no later work changes).
   */
  readLater(t: DeviceTensor): () => Storage;
  op(spec: OpSpec): Op;
  /** Enqueues a launch; results are visible to later launches and after sync(). */
  run(op: Op, args: OpArgs): void;
  /** Records the launches `body` makes, without running them, for replay. */
  record(body: () => void): Recording;
  sync(): void;
  dispose(): void;
}
