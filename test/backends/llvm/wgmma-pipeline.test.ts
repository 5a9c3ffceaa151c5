// The wgmma pipeline's waits (backends/llvm/render-wgmma.ts) on hand-built IR: products reading a
// tile of three copies run past one barrier and are retired before the second, also when the
// barriers come from a loop without products (its iterations each pass one) or when that loop
// may run no iteration.
import { describe, expect, it } from "vitest";
import * as B from "../../../lower/ir/build.ts";
import type { Stmt } from "../../../lower/ir/nodes.ts";
import { WgmmaPipeline } from "../../../backends/llvm/render-wgmma.ts";

const tile = B.buffer("xs", "f16", [B.i32c(3), B.i32c(128), B.i32c(64)], "shared");
const af = B.buffer("af", "u32", [B.i32c(4)], "local");
const acc = B.buffer("acc", "f32", [B.i32c(64)], "local");
const g = B.variable("g");

/** One product's 64 field stores, A from af, B from the copy g % 3 of the tile. */
function product(): Stmt {
  const a = [0, 1, 2, 3].flatMap((r) =>
    [0, 1].map((h) => B.call("unpack_f16x2", [B.load(af, [B.i32c(r)]), B.i32c(h)], "f16")),
  );
  const origin = B.load(tile, [B.binary("%", g, B.i32c(3)), B.i32c(0), B.i32c(0)]);
  const c = Array.from({ length: 64 }, (_, i) => B.load(acc, [B.i32c(i)]));
  return B.seq(
    Array.from({ length: 64 }, (_, f) =>
      B.store(acc, [B.i32c(f)], B.call("wgmma_m64n128k16", [...a, origin, ...c, B.i32c(f)], "f32")),
    ),
  );
}

/** The stage's A registers written (dequantized, in the kernels): a rewrite of the previous product's. */
const aRegisters = (): Stmt =>
  B.seq([0, 1, 2, 3].map((r) => B.store(af, [B.i32c(r)], B.cast("u32", B.binary("+", g, B.i32c(r))))));

/** A K loop: a barrier, the stage's A registers, its product (the tile in three copies along g). */
const kLoop = (rest: Stmt[] = []): Stmt =>
  B.forLoop(
    g,
    B.i32c(0),
    B.i32c(8),
    B.seq([B.barrier(), aRegisters(), product(), ...rest]),
    "serial",
    undefined,
    { "double_buffer:xs": 3 },
  );

/** Runs the pipeline the way the renderer walks a loop, with products committed as issued. */
function loopWaits(p: WgmmaPipeline, loop: Stmt): string[] {
  if (loop.kind !== "for") throw new Error("a loop");
  p.enterLoopBody(loop.body);
  return p.flow().map((f) => `${f.newer}:${f.crossed}`);
}

describe("wgmma pipeline", () => {
  it("lets a stage's product run past the next barrier with three tile copies, not the one after", () => {
    const loop = kLoop();
    const p = new WgmmaPipeline(loop);
    // At the loop's head the previous stage's product may run, having crossed no barrier yet.
    expect(loopWaits(p, loop)).toEqual(["0:0"]);
    // The stage's barrier keeps it running (crossed becomes 1)...
    expect(p.beforeBarrier("shared").some((l) => l.includes("wait_group"))).toBe(false);
    // ...and the next one retires it.
    expect(p.beforeBarrier("shared").find((l) => l.includes("wait_group"))).toContain(
      "wait_group.sync.aligned 0",
    );
  });

  it("waits at a product-free loop's barrier when a product is running: its second iteration's is the second barrier", () => {
    const loop = kLoop();
    const p = new WgmmaPipeline(loop);
    expect(loopWaits(p, loop)).toEqual(["0:0"]);
    // A loop of barriers entered with the product running (crossed 0): the barrier is rendered
    // once for every iteration, so it must wait as the second one would.
    p.enterLoopBody(B.barrier());
    expect(p.beforeBarrier("shared").find((l) => l.includes("wait_group"))).toContain(
      "wait_group.sync.aligned 0",
    );
  });

  it("counts a product-free loop's barriers once an iteration, and its possible zero iterations", () => {
    const j = B.variable("j");
    const inner = B.forLoop(j, B.i32c(0), B.i32c(4), B.barrier());
    const loop = kLoop([inner]);
    const p = new WgmmaPipeline(loop);
    // The inner loop's barriers retire the product by its second iteration: at the K loop's head
    // the product of the previous stage may still run only if the inner loop ran once or not at
    // all, having crossed at most one barrier.
    const head = loopWaits(p, loop);
    expect(head).toEqual(["0:1"]);
    // Inside the inner loop, its head state has the product crossed once: its barrier waits.
    p.beforeBarrier("shared"); // the K loop's own barrier (waits: crossed 1 >= slack 1)
    expect(p.flow()).toEqual([]);
  });
});
