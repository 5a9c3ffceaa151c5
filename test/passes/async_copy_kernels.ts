/** Kernels with asynchronous copies (the frontend reads this file's source). */
import {
  kernel,
  commitAsync,
  copyAsync,
  idiv,
  local,
  shared,
  u32,
  waitAsync,
  type Tensor,
  type Sym,
} from "../../dsl/index.ts";

/** Ring slots: copies run this many chunks ahead of the reads. */
export const STAGES: number = 2;
/** Added to the groups a wait leaves in flight: 1 (withConsts) reads a chunk before it lands. */
const EARLY: number = 0;

/**
 * y[b][t] = the sum (u32, wrapping) over chunks c of the four words of x row b at
 * ((c * 32 + (t + 1) % 32) * 4 ..): row b's chunks of 128 words pass through a ring of STAGES
 * slots in shared memory, copied asynchronously STAGES chunks ahead of the reads, and each thread
 * reads its neighbour's words (so a barrier must follow each wait and precede each refill).
 */
export const stagedNeighbourSums = kernel(function stagedNeighbourSums(
  x: Tensor<u32, [Sym<"m">, Sym<"k">]>,
  y: Tensor<u32, [Sym<"m">, 32]>,
) {
  for (let b = 0; b < x.shape[0]; b++) {
    const ring = shared("u32", [STAGES, 32, 4]);
    const acc = local("u32", [32]);
    const chunks = idiv(x.shape[1], 128);
    for (let t0 = 0; t0 < 32; t0++) acc[t0] = u32(0);
    for (let p = 0; p < STAGES; p++) {
      if (p < chunks)
        for (let tp = 0; tp < 32; tp++)
          for (let vp = 0; vp < 4; vp++) copyAsync(ring[p][tp][vp], x[b][(p * 32 + tp) * 4 + vp]);
      commitAsync();
    }
    for (let c = 0; c < chunks; c++) {
      waitAsync(STAGES - 1 + EARLY);
      for (let t1 = 0; t1 < 32; t1++)
        for (let v1 = 0; v1 < 4; v1++) acc[t1] += ring[c % STAGES][(t1 + 1) % 32][v1];
      if (c + STAGES < chunks)
        for (let t2 = 0; t2 < 32; t2++)
          for (let v2 = 0; v2 < 4; v2++)
            copyAsync(ring[c % STAGES][t2][v2], x[b][((c + STAGES) * 32 + t2) * 4 + v2]);
      commitAsync();
    }
    for (let t3 = 0; t3 < 32; t3++) y[b][t3] = acc[t3];
  }
});
