/**
 * Where the LLVM renderer puts a block's shared buffers: each a static global of its own, or on
 * NVIDIA, when together they exceed what ptxas takes statically (NVIDIA_STATIC_SHARED_BYTES), at
 * aligned offsets of one dynamic shared array, whose bytes every launch then requests (the
 * artifact's dynamicSharedBytes; the runtimes opt the kernel in beyond 48 KB). AMD's LDS is
 * always static.
 */
import { DTYPES } from "../../dsl/dtypes.ts";
import type { Buffer, Stmt } from "../../lower/ir/nodes.ts";
import { walk } from "../../lower/ir/transform.ts";
import { memType } from "./render-types.ts";
import type { LLVMTarget } from "./target.ts";

/** The most static shared memory a CUDA kernel may declare (ptxas refuses more). */
export const NVIDIA_STATIC_SHARED_BYTES = 48 * 1024;

/** The dynamic shared memory array that buffers are placed in when they do not fit statically. */
const DYNAMIC_SHARED = "@tkc_dynamic_shared";

/** Bytes of one allocation of a shared buffer. */
function sharedBufferBytes(buf: Buffer): number {
  const count = (buf.allocShape ?? buf.shape).reduce((a, d) => a * (d.kind === "const" ? d.value : 0), 1);
  return count * (memType(buf.dtype) === "i8" ? 1 : DTYPES[buf.dtype].bits / 8);
}

export class SharedMemoryLayout {
  /** Bytes of shared memory the block allocates (static and dynamic together). */
  bytes = 0;
  /** Whether the buffers go to the dynamic array (decided from the whole body, before any is placed). */
  readonly dynamic: boolean;

  constructor(body: Stmt, target: LLVMTarget) {
    let total = 0;
    walk(body, (n) => {
      if (n.kind === "allocate" && n.buffer.scope === "shared") total += sharedBufferBytes(n.buffer);
    });
    this.dynamic = target.kind === "nvptx" && total > NVIDIA_STATIC_SHARED_BYTES;
  }

  /**
   * Places `buf` (LLVM type `ty`, global name `name`, aligned to `align` bytes): its pointer, and
   * the global to declare where it is static.
   */
  place(buf: Buffer, name: string, ty: string, align: number): { ptr: string; global?: string } {
    const bytes = sharedBufferBytes(buf);
    if (!this.dynamic) {
      this.bytes += bytes;
      return {
        ptr: `@${name}`,
        global: `@${name} = internal addrspace(3) global ${ty} poison, align ${align}`,
      };
    }
    // Each buffer at its own aligned offset of the dynamic array (which starts on 1024 bytes).
    const at = Math.ceil(this.bytes / align) * align;
    this.bytes = at + bytes;
    return { ptr: `getelementptr inbounds (i8, ptr addrspace(3) ${DYNAMIC_SHARED}, i32 ${at})` };
  }

  /** The declaration of the dynamic array, where used. */
  declarations(): string[] {
    return this.dynamic ? [`${DYNAMIC_SHARED} = external addrspace(3) global [0 x i8], align 1024`] : [];
  }

  /** Bytes of dynamic shared memory each launch requests: 0 where all of it is static. */
  get dynamicBytes(): number {
    return this.dynamic ? this.bytes : 0;
  }
}
