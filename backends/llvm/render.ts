/**
 * Device IR to LLVM IR text (LLVM 19, opaque pointers), one renderer for NVPTX and AMDGPU: the
 * flavour (flavor.ts) supplies intrinsics, address spaces and the kernel ABI.
 *
 * Kernel ABI: one parameter per IR parameter in order — buffers as `ptr addrspace(1) align 16`,
 * scalars by value — then one i32 per symbolic dimension. Thread-bound loops read the hardware
 * indices; a loop whose extent is smaller than the launch dimension of its tag gets a guard.
 */
import { DTYPES, type DType } from "../../dsl/dtypes.ts";
import type { Atomic, Buffer, Expr, For, Prefetch, PrimFunc, Stmt, Var } from "../../lower/ir/nodes.ts";
import { hasLoad } from "../../lower/ir/transform.ts";
import { loadsBeforeStores } from "../../lower/passes/vectorize.ts";
import * as B from "../../lower/ir/build.ts";
import { launchDims, unloweredSharing, type LaunchDims } from "../../lower/ir/launch.ts";
import { printExpr } from "../../lower/ir/printer.ts";
import { flavorFor, type Flavor } from "./flavor.ts";
import { binaryValue, castValue, wrapInt } from "./render-arith.ts";
import { f16x2Op, mathOf } from "./render-math.ts";
import { prefetchL2 } from "./render-prefetch.ts";
import { atomicAdd } from "./render-atomic.ts";
import { asyncBarrier, asyncCopyLoopLanes, asyncStore, asyncStoreIn, hasAsyncCopy } from "./render-async.ts";
import { barrier } from "./render-barrier.ts";
import { kernelName, kernelSignature, type LLVMAbiEntry } from "./render-abi.ts";
import { SharedMemoryLayout } from "./render-shared.ts";
import { isFloatT, llvmType, memType } from "./render-types.ts";
import { MmaIssuer, shuffleXor } from "./render-warp.ts";
import { WgmmaPipeline } from "./render-wgmma.ts";
import { floatLiteral } from "./render-text.ts";
import type { LLVMTarget } from "./target.ts";

interface BufferRef {
  ptr: string;
  space: number;
}

export interface RenderedKernel {
  readonly name: string;
  readonly text: string;
  readonly launch: LaunchDims;
  /** Kernel parameters in ABI order (render-abi.ts). */
  readonly abi: readonly LLVMAbiEntry[];
  /** Bytes of shared memory a block allocates (static and dynamic together). */
  readonly sharedBytes: number;
  /**
   * NVIDIA, blocks over NVIDIA_STATIC_SHARED_BYTES: the shared buffers live in dynamic shared
   * memory, this many bytes of it, which every launch must request (render-shared.ts); 0 where all
   * of it is static.
   */
  readonly dynamicSharedBytes: number;
}

class Emitter {
  private readonly body: string[] = [];
  private readonly allocas: string[] = [];
  private readonly globals: string[] = [];
  private readonly declares = new Set<string>();
  private readonly vars = new Map<Var, string>();
  private readonly buffers = new Map<Buffer, BufferRef>();
  private n = 0;
  private currentLabel = "entry";
  /** Tensor-core products issued in this basic block (render-warp.ts). */
  private readonly mmas = new MmaIssuer();
  /** Where the shared buffers live: static globals or one dynamic array (render-shared.ts). */
  private readonly shared: SharedMemoryLayout;
  /**
   * Fast-math flags on float add/sub/mul: `contract` lets LLVM fuse a * b + c into one fma (as
   * nvcc and hipcc do by default), which rounds once instead of twice: GPU results may then differ
   * from the CPU backend's in the last bit, and tests compare floats with a tolerance.
   */
  fm = " contract";

  /** Hopper's asynchronous products: the lines that commit or wait for them (render-wgmma.ts). */
  private readonly wgmma: WgmmaPipeline;

  constructor(
    readonly fl: Flavor,
    private readonly fn: PrimFunc,
    readonly launch: LaunchDims,
  ) {
    this.wgmma = new WgmmaPipeline(fn.body);
    this.shared = new SharedMemoryLayout(fn.body, fl.target);
  }

  tmp(hint = "t"): string {
    return `%${hint}${this.n++}`;
  }
  newLabel(hint: string): string {
    return `${hint}${this.n++}`;
  }
  emit(line: string): void {
    this.body.push(`  ${line}`);
  }
  private emitAll(lines: readonly string[]): void {
    for (const l of lines) this.body.push(`  ${l}`);
  }
  startBlock(label: string): void {
    this.body.push(`${label}:`);
    this.currentLabel = label;
  }
  declare(text: string): void {
    this.declares.add(text);
  }
  callIntrinsic(ret: string, name: string, args: string[], argTys: string[]): string {
    this.declare(`declare ${ret} @${name}(${argTys.join(", ")})`);
    const t = this.tmp();
    this.emit(`${t} = call ${ret} @${name}(${args.map((a, i) => `${argTys[i]} ${a}`).join(", ")})`);
    return t;
  }

  // ---- expressions ----

  expr(e: Expr): string {
    switch (e.kind) {
      case "const":
        if (isFloatT(e.dtype)) return floatLiteral(e.value, e.dtype);
        if (e.dtype === "bool") return e.value ? "true" : "false";
        return String(wrapInt(e.value, e.dtype));
      case "var": {
        const v = this.vars.get(e);
        if (!v) throw new Error(`tkc llvm: variable ${e.name} used before it is defined`);
        return v;
      }
      case "binary":
        return this.binary(e);
      case "unary": {
        const a = this.expr(e.a);
        const t = this.tmp();
        const ty = llvmType(e.dtype);
        if (e.op === "not") this.emit(`${t} = xor i1 ${a}, true`);
        else if (e.op === "bitnot") this.emit(`${t} = xor ${ty} ${a}, -1`);
        else if (isFloatT(e.dtype)) this.emit(`${t} = fneg ${ty} ${a}`);
        else this.emit(`${t} = sub ${ty} 0, ${a}`);
        return t;
      }
      case "cast":
        return this.cast(this.expr(e.value), e.value.dtype, e.dtype);
      case "load": {
        const p = this.address(e.buffer, e.indices);
        const t = this.tmp();
        const mt = memType(e.dtype);
        this.emit(`${t} = load ${mt}, ptr addrspace(${p.space}) ${p.ptr}, align ${alignOf(e.dtype)}`);
        if (e.dtype !== "bool") return t;
        const b = this.tmp();
        this.emit(`${b} = trunc i8 ${t} to i1`);
        return b;
      }
      case "call":
        return this.call(e.name, e.args, e.dtype);
      case "select":
        return this.lazySelect(e.cond, e.t, e.f, e.dtype);
    }
  }

  /** `c ? t : f` evaluating only the chosen side when a side reads memory (it may be out of bounds). */
  private lazySelect(cond: Expr, t: Expr, f: Expr, d: DType): string {
    const c = this.expr(cond);
    const ty = llvmType(d);
    if (!hasLoad(t) && !hasLoad(f)) {
      const a = this.expr(t);
      const b = this.expr(f);
      const r = this.tmp();
      this.emit(`${r} = select i1 ${c}, ${ty} ${a}, ${ty} ${b}`);
      return r;
    }
    const lt = this.newLabel("sel.t");
    const lf = this.newLabel("sel.f");
    const le = this.newLabel("sel.end");
    this.emit(`br i1 ${c}, label %${lt}, label %${lf}`);
    this.startBlock(lt);
    const a = this.expr(t);
    const endT = this.label;
    this.emit(`br label %${le}`);
    this.startBlock(lf);
    const b = this.expr(f);
    const endF = this.label;
    this.emit(`br label %${le}`);
    this.startBlock(le);
    const r = this.tmp();
    this.emit(`${r} = phi ${ty} [ ${a}, %${endT} ], [ ${b}, %${endF} ]`);
    return r;
  }

  private binary(e: Extract<Expr, { kind: "binary" }>): string {
    const d = e.a.dtype;
    if (e.op === "&&") return this.lazySelect(e.a, e.b, { kind: "const", dtype: "bool", value: 0 }, "bool");
    if (e.op === "||") return this.lazySelect(e.a, { kind: "const", dtype: "bool", value: 1 }, e.b, "bool");
    const lop3 = this.maskOrConstant(e);
    if (lop3) return lop3;
    return binaryValue(this, e.op, this.expr(e.a), this.expr(e.b), d, this.fm);
  }

  /**
   * (x & C1) | C2 on NVIDIA as one lop3.b32: ptxas fuses an AND and an OR into one LOP3 only when
   * at most one operand is an immediate, so the q4 dequantizations' mask-and-bias (the code
   * masked into an f16 or f32 mantissa, then the exponent OR-ed in: q4_common.ts) would take two.
   */
  private maskOrConstant(e: Extract<Expr, { kind: "binary" }>): string | undefined {
    if (this.fl.target.kind !== "nvptx" || e.op !== "|" || (e.dtype !== "u32" && e.dtype !== "i32")) return;
    const [mask, bias] = e.a.kind === "binary" && e.a.op === "&" ? [e.a, e.b] : [e.b, e.a];
    if (mask.kind !== "binary" || mask.op !== "&" || bias.kind !== "const") return;
    if (mask.b.kind !== "const" || mask.a.kind === "const") return;
    const x = this.expr(mask.a);
    const t = this.tmp();
    // LUT 0xEA: (a & b) | c over the operand patterns a = 0xF0, b = 0xCC, c = 0xAA. An asm call is
    // otherwise taken to touch memory and perhaps not to return, and LLVM would not merge the loads
    // around it into vector loads (the FMA GEMVs decode each word between its loads: 5x slower so).
    this.emit(
      `${t} = call i32 asm "lop3.b32 $0, $1, $2, $3, 0xEA;", "=r,r,r,r"(i32 ${x}, i32 ${wrapInt(mask.b.value, "i32")}, i32 ${wrapInt(bias.value, "i32")}) nounwind willreturn memory(none)`,
    );
    return t;
  }

  cast(v: string, from: DType, to: DType): string {
    return castValue(this, v, from, to);
  }

  /** The last tmp() went unused: the next one takes its number. */
  releaseTmp(): void {
    this.n--;
  }

  private call(name: string, args: readonly Expr[], d: DType): string {
    if (name === "thread_id" || name === "block_id") {
      const axis = (args[0] as { value: number }).value;
      const r = name === "thread_id" ? this.fl.threadId(axis) : this.fl.blockId(axis);
      return this.callIntrinsic("i32", r.intrinsic, [], []);
    }
    if (name === "shfl_xor") return shuffleXor(this, args, d);
    if (name === "mma_m16n8k16") return this.mmas.field(this, args);
    if (name === "wgmma_m64n128k16") return this.mmas.wgmma(this, args, this.wgmma);
    if (name === "ldmatrix") return this.mmas.ldmatrix(this, args);
    if (name === "bitcast") {
      const a = args[0]!;
      return this.bitcast(this.expr(a), llvmType(a.dtype), llvmType(d));
    }
    const vals = args.map((a) => this.expr(a));
    if (name === "pack_f16x2" || name === "unpack_f16x2" || name === "fma_f16x2")
      return f16x2Op(this, name, vals);
    return mathOf(this, name, vals, d);
  }

  /** The basic block being emitted. */
  get label(): string {
    return this.currentLabel;
  }

  bitcast(v: string, from: string, to: string): string {
    const t = this.tmp();
    this.emit(`${t} = bitcast ${from} ${v} to ${to}`);
    return t;
  }

  /** NVIDIA's L2 prefetch of a line or a range (render-prefetch.ts). */
  private prefetch(s: Prefetch): void {
    const p = this.address(s.buffer, s.indices);
    const one = s.count.kind === "const" && s.count.value === 1;
    prefetchL2(this, p, one ? undefined : this.index(s.count), alignOf(s.buffer.dtype));
  }

  /** An atomic addition (render-atomic.ts), its old value stored where the statement keeps it. */
  private atomic(s: Atomic): void {
    if (s.result) this.emitAll(this.wgmma.beforeStore(s.result.buffer, s.result.indices));
    this.mmas.forget();
    const v = this.expr(s.value);
    const d = s.buffer.dtype;
    const opts = { global: s.buffer.scope === "global", keepsOld: s.result !== undefined, align: alignOf(d) };
    const old = atomicAdd(this, this.address(s.buffer, s.indices), d, v, opts);
    if (!s.result) return;
    const r = this.address(s.result.buffer, s.result.indices);
    this.emit(`store ${memType(d)} ${old}, ptr addrspace(${r.space}) ${r.ptr}, align ${alignOf(d)}`);
  }

  /** A pointer to buffer[indices] (device IR buffers are flat: one index). */
  address(buf: Buffer, indices: readonly Expr[]): BufferRef {
    const ref = this.buffers.get(buf);
    if (!ref) throw new Error(`tkc llvm: buffer ${buf.name} used outside its allocation`);
    const i64 = this.flatIndex(buf, indices);
    const p = this.tmp("p");
    this.emit(
      `${p} = getelementptr inbounds ${memType(buf.dtype)}, ptr addrspace(${ref.space}) ${ref.ptr}, i64 ${i64}`,
    );
    return { ptr: p, space: ref.space };
  }

  /** The element offset of buffer[indices], as an i64. */
  private flatIndex(buf: Buffer, indices: readonly Expr[]): string {
    const dims = buf.allocShape ?? buf.shape;
    let acc: string | undefined;
    indices.forEach((ix, k) => {
      const v = this.index(ix);
      if (acc === undefined) acc = v;
      else {
        const m = this.tmp();
        this.emit(`${m} = mul nsw i64 ${acc}, ${this.index(dims[k]!)}`);
        const s = this.tmp();
        this.emit(`${s} = add nsw i64 ${m}, ${v}`);
        acc = s;
      }
    });
    return acc ?? "0";
  }

  /**
   * An i32 index expression evaluated in i64: its sums, differences and products without
   * wrapping (nsw: an in-bounds index never needs i32 wraparound), every other term sign-extended.
   * LLVM then sees that a[i + 1] is next to a[i] (a sign extension of a wrapping i32 sum hides
   * that), so the load-store vectorizer merges adjacent loads: a q4 GEMV's four words of a group
   * become one 16-byte load instead of three loads.
   */
  private index(e: Expr): string {
    if (e.kind === "const") return String(wrapInt(e.value, "i32"));
    if (e.kind === "binary" && e.dtype === "i32" && (e.op === "+" || e.op === "-" || e.op === "*")) {
      const a = this.index(e.a);
      const b = this.index(e.b);
      const t = this.tmp();
      this.emit(`${t} = ${{ "+": "add", "-": "sub", "*": "mul" }[e.op]} nsw i64 ${a}, ${b}`);
      return t;
    }
    return this.cast(this.expr(e), "i32", "i64");
  }

  // ---- statements ----

  stmt(s: Stmt): void {
    switch (s.kind) {
      case "seq":
        s.body.forEach((b) => this.stmt(b));
        return;
      case "block":
        this.stmt(s.body);
        return;
      case "let":
        this.vars.set(s.v, this.expr(s.value));
        this.stmt(s.body);
        return;
      case "store": {
        this.emitAll(this.wgmma.beforeStore(s.buffer, s.indices));
        if (s.buffer.scope !== "local") this.mmas.forget();
        if (s.async && hasAsyncCopy(this.fl.target)) return asyncStore(this, s, this.asyncLanes);
        let v = this.expr(s.value);
        if (s.buffer.dtype === "bool") {
          const z = this.tmp();
          this.emit(`${z} = zext i1 ${v} to i8`);
          v = z;
        }
        const p = this.address(s.buffer, s.indices);
        const line = `store ${memType(s.buffer.dtype)} ${v}, ptr addrspace(${p.space}) ${p.ptr}, align ${alignOf(s.buffer.dtype)}`;
        if (this.deferredStores) this.deferredStores.push(line);
        else this.emit(line);
        return;
      }
      case "allocate":
        this.allocate(s.buffer);
        this.stmt(s.body);
        return;
      case "atomic":
        this.atomic(s);
        return;
      case "if": {
        const c = this.expr(s.cond);
        const lt = this.newLabel("then");
        const le = this.newLabel("else");
        const lend = this.newLabel("endif");
        this.emit(`br i1 ${c}, label %${lt}, label %${s.else ? le : lend}`);
        // Asynchronous products after the if: as at the end of either path.
        const before = this.wgmma.flow();
        this.startBlock(lt);
        this.stmt(s.then);
        this.emit(`br label %${lend}`);
        const afterThen = this.wgmma.flow();
        this.wgmma.restore(before);
        if (s.else) {
          this.startBlock(le);
          this.stmt(s.else);
          this.emit(`br label %${lend}`);
        }
        this.wgmma.merge(afterThen, this.wgmma.flow());
        this.startBlock(lend);
        return;
      }
      case "prefetch":
        if (this.fl.target.kind === "nvptx") this.prefetch(s);
        return;
      case "barrier":
        if (B.isAsyncScope(s.scope)) return asyncBarrier(this, s);
        // Letting the next grid launch orders nothing here.
        if (s.scope !== "dependents") {
          this.emitAll(this.wgmma.beforeBarrier(s.scope));
          this.mmas.forget();
        }
        return barrier(this, s.scope);
      case "for":
        if (s.forKind === "thread") this.threadLoop(s);
        else if (s.forKind === "vectorized" && hasAsyncCopy(this.fl.target) && asyncStoreIn(s.body))
          this.asyncCopyLanes(s);
        else if (s.forKind === "vectorized" && !this.deferredStores && loadsBeforeStores(s)) this.lanes(s);
        else this.serialLoop(s);
        return;
    }
  }

  /** The lanes of the vectorized loop whose asynchronous copy is being rendered (asyncCopyLanes). */
  private asyncLanes = 1;

  /** A vectorized loop of asynchronous copies as one cp.async of all its lanes (render-async.ts). */
  private asyncCopyLanes(s: For): void {
    const lanes = asyncCopyLoopLanes(s);
    this.vars.set(s.loopVar, this.expr(s.min));
    this.asyncLanes = lanes;
    this.stmt(s.body);
    this.asyncLanes = 1;
  }

  /** Stores of a vectorized loop's lanes held back until every lane's loads are emitted (lanes()). */
  private deferredStores: string[] | undefined;

  /**
   * A vectorized loop (lower/passes/vectorize.ts: straight-line, lanes independent) as its lanes
   * one after another, every lane's stores after every lane's loads: the order of a vector
   * instruction, which lets LLVM's load/store vectorizer merge the lanes' loads of a buffer that
   * the loop also stores to (an output that may alias an input, as an in-place residual add's does)
   * into one wide load. Lanes touch different elements of what they store, so holding the stores
   * back reorders no dependent accesses.
   */
  private lanes(s: For): void {
    const min = this.expr(s.min);
    const extent = (s.extent as { value: number }).value;
    this.deferredStores = [];
    for (let lane = 0; lane < extent; lane++) {
      this.vars.set(s.loopVar, lane === 0 ? min : this.addI32(min, String(lane)));
      this.stmt(s.body);
    }
    const stores = this.deferredStores;
    this.deferredStores = undefined;
    stores.forEach((l) => this.emit(l));
  }

  private threadLoop(s: For): void {
    const tag = s.thread!;
    const axis = "xyz".indexOf(tag[tag.length - 1]!);
    const r = tag.startsWith("threadIdx") ? this.fl.threadId(axis) : this.fl.blockId(axis);
    const id = this.callIntrinsic("i32", r.intrinsic, [], []);
    const idx = isZero(s.min) ? id : this.addI32(id, this.expr(s.min));
    this.vars.set(s.loopVar, idx);
    const launched = (tag.startsWith("threadIdx") ? this.launch.block : this.launch.grid)[axis]!;
    if (printExpr(launched) === printExpr(s.extent)) {
      this.stmt(s.body);
      return;
    }
    const inb = this.tmp();
    this.emit(`${inb} = icmp slt i32 ${id}, ${this.expr(s.extent)}`);
    const lb = this.newLabel("tguard");
    const le = this.newLabel("tguard.end");
    this.emit(`br i1 ${inb}, label %${lb}, label %${le}`);
    this.startBlock(lb);
    this.stmt(s.body);
    this.emit(`br label %${le}`);
    this.startBlock(le);
  }

  private addI32(a: string, b: string): string {
    const t = this.tmp();
    this.emit(`${t} = add nsw i32 ${a}, ${b}`);
    return t;
  }

  private serialLoop(s: For): void {
    const min = this.expr(s.min);
    const end = this.addI32(min, this.expr(s.extent));
    const pre = this.label;
    const head = this.newLabel("loop");
    const body = this.newLabel("body");
    const latch = this.newLabel("latch");
    const exit = this.newLabel("exit");
    const iv = this.tmp(`${s.loopVar.name.replace(/[^A-Za-z0-9_]/g, "_")}.`);
    const next = this.tmp("next");
    this.emit(`br label %${head}`);
    this.startBlock(head);
    this.emit(`${iv} = phi i32 [ ${min}, %${pre} ], [ ${next}, %${latch} ]`);
    const c = this.tmp();
    this.emit(`${c} = icmp slt i32 ${iv}, ${end}`);
    this.emit(`br i1 ${c}, label %${body}, label %${exit}`);
    this.startBlock(body);
    this.vars.set(s.loopVar, iv);
    const products = this.wgmma.enterLoopBody(s.body);
    this.stmt(s.body);
    this.emit(`br label %${latch}`);
    this.startBlock(latch);
    this.emit(`${next} = add nsw i32 ${iv}, 1`);
    // Vectorized loops become straight-line code, which LLVM's load/store vectorizer merges.
    const md =
      s.forKind === "unrolled" || s.forKind === "vectorized" || s.annotations.unroll === true
        ? ", !llvm.loop !0"
        : "";
    this.emit(`br label %${head}${md}`);
    this.startBlock(exit);
    this.emitAll(this.wgmma.afterLoop(products));
  }

  private allocate(buf: Buffer): void {
    const dims = (buf.allocShape ?? buf.shape).map((d) => {
      if (d.kind !== "const")
        throw new Error(`tkc llvm: ${buf.scope} buffer ${buf.name} needs a constant size`);
      return d.value;
    });
    const count = dims.reduce((a, b) => a * b, 1);
    const ty = `[${count} x ${memType(buf.dtype)}]`;
    const name = `${buf.name.replace(/[^A-Za-z0-9_]/g, "_")}_${buf.id}`;
    if (buf.scope === "shared") {
      // A wgmma operand tile is 128-byte swizzled by address bits, from a 1024-byte boundary.
      const align = this.wgmma.isTile(buf) ? 1024 : 16;
      const placed = this.shared.place(buf, name, ty, align);
      if (placed.global) this.globals.push(placed.global);
      this.buffers.set(buf, { ptr: placed.ptr, space: 3 });
    } else if (buf.scope === "local") {
      const sp = this.fl.allocaSpace;
      this.allocas.push(`  %${name} = alloca ${ty}, align 16${sp ? `, addrspace(${sp})` : ""}`);
      this.buffers.set(buf, { ptr: `%${name}`, space: sp });
    } else throw new Error(`tkc llvm: cannot allocate a global buffer ${buf.name} inside a kernel`);
  }

  render(maxThreads: number): RenderedKernel {
    const { params, abi, buffers, vars } = kernelSignature(this.fn);
    for (const [buf, ptr] of buffers) this.buffers.set(buf, { ptr, space: 1 });
    for (const [v, n] of vars) this.vars.set(v, n);
    this.stmt(this.fn.body);
    this.emitAll(this.wgmma.end());
    const name = kernelName(this.fn);
    const attrs = this.fl.kernelAttributes(maxThreads);
    const md = this.fl.kernelMetadata(name, maxThreads, this.fn.launch?.minBlocksPerSM);
    const lines = [
      `; tkc kernel ${this.fn.name}`,
      `target triple = "${this.fl.triple}"`,
      "",
      ...this.shared.declarations(),
      ...this.globals,
      "",
      `define ${this.fl.kernelPrefix}void @${name}(${params.join(", ")})${attrs ? " #0" : ""} {`,
      "entry:",
      ...this.allocas,
      ...this.body,
      "  ret void",
      "}",
      "",
      ...[...this.declares].sort(),
      "",
      ...(attrs ? [`attributes #0 = { ${attrs} }`] : []),
      // !0/!1: the loop metadata that asks LLVM to unroll a loop fully (forKind "unrolled").
      "!0 = distinct !{!0, !1}",
      '!1 = !{!"llvm.loop.unroll.full"}',
      ...(md.length
        ? [
            `!nvvm.annotations = !{${md.map((_, i) => `!${i + 2}`).join(", ")}}`,
            ...md.map((m, i) => `!${i + 2} = ${m}`),
          ]
        : []),
    ];
    return {
      name,
      text: lines.join("\n") + "\n",
      launch: this.launch,
      abi,
      sharedBytes: this.shared.bytes,
      dynamicSharedBytes: this.shared.dynamicBytes,
    };
  }
}

const alignOf = (d: DType): number => (d === "bool" ? 1 : DTYPES[d].bits / 8);
const isZero = (e: Expr): boolean => e.kind === "const" && e.value === 0;

/** Renders a device-IR function (flat buffers, thread-bound loops) for an LLVM target. */
export function renderLLVM(f: PrimFunc, target: LLVMTarget): RenderedKernel {
  const unlowered = unloweredSharing(f);
  if (unlowered) throw new Error(`tkc llvm: ${unlowered}`);
  const fl = flavorFor(target);
  // Device IR from the lowering pipeline carries its launch; scheduled loop IR has thread loops.
  const launch: LaunchDims = f.launch
    ? {
        grid: [f.launch.grid[0], f.launch.grid[1], f.launch.grid[2]],
        block: [B.i32c(f.launch.block[0]), B.i32c(f.launch.block[1]), B.i32c(f.launch.block[2])],
      }
    : launchDims(f);
  const threads = launch.block.reduce((a, d) => a * (d.kind === "const" ? d.value : 1024), 1);
  return new Emitter(fl, f, launch).render(Math.max(1, Math.min(1024, threads)));
}
