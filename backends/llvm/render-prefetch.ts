/**
 * NVIDIA's L2 prefetch for the LLVM renderer (the device IR's `prefetch` statement): one line
 * with `prefetch.global.L2`; a range on sm_90 with one `cp.async.bulk.prefetch.L2`, which the
 * copy engine works through (its start and size must be multiples of 16 bytes: the range is
 * widened to them); below sm_90 a loop issuing one line prefetch per 128 bytes. Inline PTX: LLVM 19
 * has no intrinsics for them. AMD targets emit nothing (render.ts does not call this).
 */
import type { MathBuilder } from "./render-math.ts";

/** What the prefetch needs from the renderer, beyond fresh values and emitted lines. */
export interface PrefetchBuilder extends MathBuilder {
  /** The basic block being emitted. */
  readonly label: string;
  newLabel(hint: string): string;
  startBlock(label: string): void;
}

/**
 * Prefetches the line at `at` (a pointer in address space `space`), or with `count` (an i64
 * value) the count elements of `elementBytes` each from there on.
 */
export function prefetchL2(
  b: PrefetchBuilder,
  at: { readonly ptr: string; readonly space: number },
  count: string | undefined,
  elementBytes: number,
): void {
  const line = (addr: string, ty: string) =>
    b.emit(`call void asm sideeffect "prefetch.global.L2 [$0];", "l"(${ty} ${addr})`);
  if (count === undefined) return line(at.ptr, `ptr addrspace(${at.space})`);
  const [start, bytes, end] = [b.tmp(), b.tmp(), b.tmp()];
  b.emit(`${bytes} = mul i64 ${count}, ${elementBytes}`);
  b.emit(`${start} = ptrtoint ptr addrspace(${at.space}) ${at.ptr} to i64`);
  b.emit(`${end} = add i64 ${start}, ${bytes}`);
  if (b.fl.target.arch === "sm_90") {
    const [from, up, to, diff, size] = [b.tmp(), b.tmp(), b.tmp(), b.tmp(), b.tmp()];
    b.emit(`${from} = and i64 ${start}, -16`);
    b.emit(`${up} = add i64 ${end}, 15`);
    b.emit(`${to} = and i64 ${up}, -16`);
    b.emit(`${diff} = sub i64 ${to}, ${from}`);
    b.emit(`${size} = trunc i64 ${diff} to i32`);
    b.emit(
      `call void asm sideeffect "cp.async.bulk.prefetch.L2.global [$0], $1;", "l,r"(i64 ${from}, i32 ${size})`,
    );
    return;
  }
  const first = b.tmp();
  b.emit(`${first} = and i64 ${start}, -128`);
  const pre = b.label;
  const [loop, exit] = [b.newLabel("prefetch"), b.newLabel("prefetch.end")];
  const [at2, next, more, any] = [b.tmp(), b.tmp(), b.tmp(), b.tmp()];
  b.emit(`${any} = icmp ult i64 ${first}, ${end}`);
  b.emit(`br i1 ${any}, label %${loop}, label %${exit}`);
  b.startBlock(loop);
  b.emit(`${at2} = phi i64 [ ${first}, %${pre} ], [ ${next}, %${loop} ]`);
  line(at2, "i64");
  b.emit(`${next} = add i64 ${at2}, 128`);
  b.emit(`${more} = icmp ult i64 ${next}, ${end}`);
  b.emit(`br i1 ${more}, label %${loop}, label %${exit}`);
  b.startBlock(exit);
}
