/**
 * Pass `flatten`: every buffer access gets one index, the row-major offset into the buffer's
 * storage (honouring storageAlign's padded `allocShape`); allocations become one-dimensional with
 * their element count; blocks, which only name stages for schedules, are dropped.
 *
 * Parameter buffers keep their declared N-D shape: it is the host's contract (argument checks,
 * binding symbolic dimensions). Their accesses carry the flat offset like every other buffer.
 *
 * An ldmatrix call's tile must have rows of a multiple of 8 halves (16 bytes), and a wgmma call's B
 * tile rows of exactly 64 (the 128-byte swizzle's), checked here while the rows are still visible. Device allocations need constant sizes (registers and static shared memory); the shared memory
 * a block allocates is summed (no reuse between buffers) into `launch.sharedBytes` and checked
 * against the target's limit.
 */
import { bytesOf } from "../../dsl/dtypes.ts";
import type { Buffer, Expr, PrimFunc, Stmt } from "../ir/nodes.ts";
import { add, buffer, constant, mul } from "../ir/build.ts";
import { printExpr } from "../ir/printer.ts";
import { rewriteStmt, usesBuffer, walk } from "../ir/transform.ts";
import { LoweringError } from "./errors.ts";
import type { Target } from "./target.ts";

const P = "flatten";

/** The row-major offset of `indices` in a buffer laid out with `dims` (allocShape or shape). */
export function flatIndex(indices: readonly Expr[], dims: readonly Expr[]): Expr {
  let offset: Expr = constant(0, "i32");
  indices.forEach((idx, k) => {
    offset = k === 0 ? idx : add(mul(offset, dims[k]!), idx);
  });
  return offset;
}

export const storageDims = (b: Buffer): readonly Expr[] => b.allocShape ?? b.shape;
export const elementCount = (b: Buffer): Expr =>
  storageDims(b).reduce<Expr>((a, d) => mul(a, d), constant(1, "i32"));

export function flattenPass(input: PrimFunc, target: Target): PrimFunc {
  // A buffer nothing accesses (a variant's unused scratch) takes no shared memory.
  const f = {
    ...input,
    body: rewriteStmt(input.body, {
      stmt: (s) => (s.kind === "allocate" && !usesBuffer(s.body, s.buffer) ? s.body : s),
    }),
  };
  const flat = new Map<Buffer, Buffer>();
  const shared: { name: string; bytes: number }[] = [];
  walk(f.body, (n) => {
    if (n.kind !== "allocate") return;
    const b = n.buffer;
    const size = elementCount(b);
    if (size.kind !== "const") {
      if (target.kind !== "cpu")
        throw new LoweringError(
          P,
          `${b.scope} buffer ${b.name} has the symbolic size ${printExpr(size)}; device allocations need constant sizes`,
        );
    } else if (b.scope === "shared") shared.push({ name: b.name, bytes: size.value * bytesOf(b.dtype) });
    flat.set(b, buffer(b.name, b.dtype, [size], b.scope));
  });
  const total = shared.reduce((a, s) => a + s.bytes, 0);
  if (total > target.maxSharedMemoryBytes)
    throw new LoweringError(
      P,
      `the block allocates ${total} bytes of shared memory (${shared.map((s) => `${s.name} ${s.bytes}`).join(", ")}), over ${target.name}'s limit of ${target.maxSharedMemoryBytes} bytes per block`,
    );
  const access = (b: Buffer, indices: readonly Expr[]): { buffer: Buffer; indices: Expr[] } => ({
    buffer: flat.get(b) ?? b,
    indices: [flatIndex(indices, storageDims(b))],
  });
  // ldmatrix reads 16-byte rows: the row it names must start on 16 bytes in every lane, so the
  // tile's rows (its allocated inner extent) must be a multiple of 8 halves.
  // wgmma reads its B tile through a descriptor of 128-byte rows (the swizzle's): a tile padded
  // after tensorize checked it (storageAlign, in a schedule that ran later) would be read wrong.
  walk(f.body, (n) => {
    if (n.kind !== "call" || n.name !== "wgmma_m64n128k16") return;
    const tile = n.args[8]!;
    if (tile.kind !== "load") return;
    const inner = storageDims(tile.buffer).at(-1)!;
    if (inner.kind !== "const" || inner.value !== 64)
      throw new LoweringError(
        P,
        `wgmma reads ${tile.buffer.name} as rows of 64 halves (128 bytes, 128-byte swizzled), but its rows are ${printExpr(inner)} halves: do not pad a wgmma tile with storageAlign`,
      );
  });
  walk(f.body, (n) => {
    if (n.kind !== "call" || n.name !== "ldmatrix") return;
    const row = n.args[0]!;
    if (row.kind !== "load") return;
    const inner = storageDims(row.buffer).at(-1)!;
    if (storageDims(row.buffer).length > 1 && (inner.kind !== "const" || inner.value % 8 !== 0))
      throw new LoweringError(
        P,
        `ldmatrix reads 16-byte rows, so the rows of ${row.buffer.name} (${printExpr(inner)} halves) must be a multiple of 8 halves long: pad them with storageAlign`,
      );
  });
  const body = rewriteStmt(f.body, {
    expr: (e) => (e.kind === "load" ? { ...e, ...access(e.buffer, e.indices) } : e),
    stmt: (s): Stmt => {
      if (s.kind === "block") return s.body;
      if (s.kind === "store" || s.kind === "prefetch") return { ...s, ...access(s.buffer, s.indices) };
      if (s.kind === "atomic")
        return {
          ...s,
          ...access(s.buffer, s.indices),
          ...(s.result ? { result: access(s.result.buffer, s.result.indices) } : {}),
        };
      if (s.kind === "allocate") return { ...s, buffer: flat.get(s.buffer)! };
      return s;
    },
  });
  const launch = f.launch && { ...f.launch, sharedBytes: total };
  return { ...f, body, ...(launch ? { launch } : {}) };
}
