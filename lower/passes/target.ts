/**
 * What the lowering passes need to know about a device: its kind, warp width and the limits a
 * launch must respect. Renderers and runtimes know the rest (ISA, address spaces, ABI).
 */
export interface Target {
  /** How the target is named in messages ("sm_90", "gfx1100", ...). */
  readonly name: string;
  readonly kind: "cpu" | "cuda" | "rocm" | "vulkan";
  /** Lanes per warp (NVIDIA, RDNA wave32: 32; CDNA/gfx9 wave64: 64; the CPU: 1, no shuffles). */
  readonly warpSize: number;
  readonly maxThreadsPerBlock: number;
  /** Static shared memory one block may allocate, in bytes. */
  readonly maxSharedMemoryBytes: number;
}

const KB = 1024;

export const TARGETS = {
  /**
   * H100 (sm_90): up to 227 KB of shared memory per block (of 228 KB per SM). A kernel may declare
   * 48 KB statically; the LLVM renderer places a block's shared buffers in dynamic shared memory
   * when they need more, and the runtimes opt each such kernel in when they load it.
   */
  sm_90: {
    name: "sm_90",
    kind: "cuda",
    warpSize: 32,
    maxThreadsPerBlock: 1024,
    maxSharedMemoryBytes: 227 * KB,
  },
  /** A100 (sm_80): up to 163 KB per block, over 48 KB as on sm_90. */
  sm_80: {
    name: "sm_80",
    kind: "cuda",
    warpSize: 32,
    maxThreadsPerBlock: 1024,
    maxSharedMemoryBytes: 163 * KB,
  },
  /** RDNA3 (wave32 by default in LLVM 19), 64 KB of LDS per workgroup. */
  gfx1100: {
    name: "gfx1100",
    kind: "rocm",
    warpSize: 32,
    maxThreadsPerBlock: 1024,
    maxSharedMemoryBytes: 64 * KB,
  },
  /** CDNA3 (MI300, wave64), 64 KB of LDS per workgroup. */
  gfx942: {
    name: "gfx942",
    kind: "rocm",
    warpSize: 64,
    maxThreadsPerBlock: 1024,
    maxSharedMemoryBytes: 64 * KB,
  },
  /**
   * Vulkan: subgroup size 32 (NVIDIA, lavapipe's default), 32 KB of shared memory (the limit
   * most desktop drivers report; the spec guarantees 16 KB).
   */
  vulkan: {
    name: "vulkan",
    kind: "vulkan",
    warpSize: 32,
    maxThreadsPerBlock: 1024,
    maxSharedMemoryBytes: 32 * KB,
  },
  /** The CPU emulation of the device model: one-lane warps, so reductions go through shared memory. */
  cpu: { name: "cpu", kind: "cpu", warpSize: 1, maxThreadsPerBlock: 1024, maxSharedMemoryBytes: 48 * KB },
} as const satisfies Record<string, Target>;

export type TargetName = keyof typeof TARGETS;
