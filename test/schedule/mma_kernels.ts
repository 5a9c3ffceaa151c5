/** One warp's 16 x 8 x 16 product written lane by lane, and variants tensorize must refuse. */
import {
  kernel,
  f32,
  local,
  packF16x2,
  select,
  shared,
  unpackF16x2,
  withConsts,
  type f16,
  type i32,
  type Tensor,
} from "../../dsl/index.ts";
import * as L from "../../stdlib/mma_layout.ts";

/** c = a b^T for a [16, 16], b [8, 16]: the mma.m16n8k16 accumulator layout. */
export const mmaTile = kernel(function mmaTile(
  a: Tensor<f16, [16, 16]>,
  b: Tensor<f16, [8, 16]>,
  c: Tensor<f32, [16, 8]>,
) {
  for (let lane = 0; lane < 32; lane++) {
    const acc = local("f32", [32, 4]);
    for (let rz = 0; rz < 4; rz++) acc[lane][rz] = f32(0);
    for (let r = 0; r < 4; r++)
      for (let kk = 0; kk < 16; kk++)
        acc[lane][r] += f32(a[(lane >> 2) + 8 * (r >> 1)][kk]) * f32(b[(lane & 3) * 2 + (r & 1)][kk]);
    for (let ry = 0; ry < 4; ry++) c[(lane >> 2) + 8 * (ry >> 1)][(lane & 3) * 2 + (ry & 1)] = acc[lane][ry];
  }
});

/** The B rows of the accumulator fields swapped: a correct product, but not the instruction's layout. */
export const mmaTileWrongLayout = kernel(function mmaTileWrongLayout(
  a: Tensor<f16, [16, 16]>,
  b: Tensor<f16, [8, 16]>,
  c: Tensor<f32, [16, 8]>,
) {
  for (let lane = 0; lane < 32; lane++) {
    const acc = local("f32", [32, 4]);
    for (let rz = 0; rz < 4; rz++) acc[lane][rz] = f32(0);
    for (let r = 0; r < 4; r++)
      for (let kk = 0; kk < 16; kk++)
        acc[lane][r] += f32(a[(lane >> 2) + 8 * (r >> 1)][kk]) * f32(b[(lane & 3) + 4 * (r & 1)][kk]);
    for (let ry = 0; ry < 4; ry++) c[(lane >> 2) + 8 * (ry >> 1)][(lane & 3) + 4 * (ry & 1)] = acc[lane][ry];
  }
});

/** f32 operands: the instruction takes f16. */
export const mmaTileF32 = kernel(function mmaTileF32(
  a: Tensor<f32, [16, 16]>,
  b: Tensor<f32, [8, 16]>,
  c: Tensor<f32, [16, 8]>,
) {
  for (let lane = 0; lane < 32; lane++) {
    const acc = local("f32", [32, 4]);
    for (let rz = 0; rz < 4; rz++) acc[lane][rz] = f32(0);
    for (let r = 0; r < 4; r++)
      for (let kk = 0; kk < 16; kk++)
        acc[lane][r] += a[(lane >> 2) + 8 * (r >> 1)][kk] * b[(lane & 3) * 2 + (r & 1)][kk];
    for (let ry = 0; ry < 4; ry++) c[(lane >> 2) + 8 * (ry >> 1)][(lane & 3) * 2 + (ry & 1)] = acc[lane][ry];
  }
});

/** 1: mmaTileFragments reads A's registers 1 and 2 swapped (mmaTileFragmentsWrong). */
const SWAP_A: number = 0;

/** mmaTile with both operands packed into per-lane fragment registers first (tensorize's fragment form). */
export const mmaTileFragments = kernel(function mmaTileFragments(
  a: Tensor<f16, [16, 16]>,
  b: Tensor<f16, [8, 16]>,
  c: Tensor<f32, [16, 8]>,
) {
  const af = local("u32", [32, 4]);
  const bf = local("u32", [32, 2]);
  const acc = local("f32", [32, 4]);
  for (let lf = 0; lf < 32; lf++) {
    for (let j = 0; j < 4; j++)
      af[lf][j] = packF16x2(a[L.mmaARow(lf, j)][L.mmaAK(lf, j, 0)], a[L.mmaARow(lf, j)][L.mmaAK(lf, j, 1)]);
    for (let jb = 0; jb < 2; jb++)
      bf[lf][jb] = packF16x2(b[L.mmaBN(lf)][L.mmaBK(lf, jb, 0)], b[L.mmaBN(lf)][L.mmaBK(lf, jb, 1)]);
  }
  for (let lane = 0; lane < 32; lane++) {
    for (let rz = 0; rz < 4; rz++) acc[lane][rz] = f32(0);
    for (let r = 0; r < 4; r++)
      for (let kk = 0; kk < 16; kk++) {
        const row = L.mmaCRow(lane, r);
        const n = L.mmaCCol(lane, r);
        acc[lane][r] +=
          f32(
            unpackF16x2(
              af[L.mmaALane(row, kk)][SWAP_A === 1 ? (row >> 3) * 2 + (kk >> 3) : L.mmaAReg(row, kk)],
              kk & 1,
            ),
          ) * f32(unpackF16x2(bf[L.mmaBLane(n, kk)][L.mmaBReg(kk)], kk & 1));
      }
    for (let ry = 0; ry < 4; ry++) c[L.mmaCRow(lane, ry)][L.mmaCCol(lane, ry)] = acc[lane][ry];
  }
});

/** As mmaTileFragments with A's registers 1 and 2 swapped in the reads: not the instruction's layout. */
export const mmaTileFragmentsWrong = withConsts(mmaTileFragments, { SWAP_A: 1 });

/** Rows of mmaTileShared's staged copy of a, in halves (ROW_HALVES). */
const ROW_HALVES: number = 16;

/** mmaTile with a staged in shared memory first (tensorize reads it with ldmatrix). */
export const mmaTileShared = kernel(function mmaTileShared(
  a: Tensor<f16, [16, 16]>,
  b: Tensor<f16, [8, 16]>,
  c: Tensor<f32, [16, 8]>,
) {
  const as = shared("f16", [16, ROW_HALVES]);
  for (let lc = 0; lc < 32; lc++)
    for (let e = 0; e < 8; e++) as[lc >> 1][(lc & 1) * 8 + e] = a[lc >> 1][(lc & 1) * 8 + e];
  for (let lane = 0; lane < 32; lane++) {
    const acc = local("f32", [32, 4]);
    for (let rz = 0; rz < 4; rz++) acc[lane][rz] = f32(0);
    for (let r = 0; r < 4; r++)
      for (let kk = 0; kk < 16; kk++)
        acc[lane][r] += f32(as[(lane >> 2) + 8 * (r >> 1)][kk]) * f32(b[(lane & 3) * 2 + (r & 1)][kk]);
    for (let ry = 0; ry < 4; ry++) c[(lane >> 2) + 8 * (ry >> 1)][(lane & 3) * 2 + (ry & 1)] = acc[lane][ry];
  }
});

/** Rows of 20 halves: ldmatrix's 16-byte rows would be misaligned, which the renderer refuses. */
export const mmaTileSharedOddRows = withConsts(mmaTileShared, { ROW_HALVES: 20 });

/** 1: wgmmaTile stages b 128-byte swizzled (wgmma's layout); 0: row by row (wgmmaTilePlain). */
const SWIZZLE: number = 1;

/** Column c of row n of wgmmaTile's staged tile. */
function stagedColumn(n: i32, c: i32): i32 {
  return select(SWIZZLE === 1, ((c >> 3) ^ (n & 7)) * 8 + (c & 7), c);
}

/**
 * c = a b^T for a [64, 16] (four warps' 16 rows as mma.m16n8k16 A fragments), b [128, 16] staged
 * in a shared tile of rows of 64 halves: one warpgroup's wgmma_m64n128k16 written lane by lane.
 */
export const wgmmaTile = kernel(function wgmmaTile(
  a: Tensor<f16, [64, 16]>,
  b: Tensor<f16, [128, 16]>,
  c: Tensor<f32, [64, 128]>,
) {
  const bs = shared("f16", [128, 64]);
  const af = local("u32", [4, 32, 4]);
  const acc = local("f32", [4, 32, 16, 4]);
  for (let wc = 0; wc < 4; wc++)
    for (let lc = 0; lc < 32; lc++)
      for (let e = 0; e < 16; e++) {
        const n = wc * 32 + lc;
        bs[n][stagedColumn(n, e)] = b[n][e];
      }
  for (let wf = 0; wf < 4; wf++)
    for (let lf = 0; lf < 32; lf++)
      for (let j = 0; j < 4; j++)
        af[wf][lf][j] = packF16x2(
          a[wf * 16 + L.mmaARow(lf, j)][L.mmaAK(lf, j, 0)],
          a[wf * 16 + L.mmaARow(lf, j)][L.mmaAK(lf, j, 1)],
        );
  for (let wp = 0; wp < 4; wp++)
    for (let lane = 0; lane < 32; lane++) {
      for (let nz = 0; nz < 16; nz++) for (let rz = 0; rz < 4; rz++) acc[wp][lane][nz][rz] = f32(0);
      for (let nt = 0; nt < 16; nt++)
        for (let r = 0; r < 4; r++)
          for (let kk = 0; kk < 16; kk++) {
            const row = L.mmaCRow(lane, r);
            const n = nt * 8 + L.mmaCCol(lane, r);
            acc[wp][lane][nt][r] +=
              f32(unpackF16x2(af[wp][L.mmaALane(row, kk)][L.mmaAReg(row, kk)], kk & 1)) *
              f32(bs[n][stagedColumn(n, kk)]);
          }
      for (let ny = 0; ny < 16; ny++)
        for (let ry = 0; ry < 4; ry++)
          c[wp * 16 + L.mmaCRow(lane, ry)][ny * 8 + L.mmaCCol(lane, ry)] = acc[wp][lane][ny][ry];
    }
});

/** wgmmaTile with b staged row by row: a correct product, not the layout wgmma reads. */
export const wgmmaTilePlain = withConsts(wgmmaTile, { SWIZZLE: 0 });
