/**
 * Loop IR / device IR to SPIR-V assembly for Vulkan compute (ABI.md is the contract with
 * backends/vulkan). It takes exactly the input backends/llvm/render.ts takes — scheduled IR with
 * thread-bound loops, blocks and multi-dimensional indices, or device IR after lower/passes (lets
 * of thread_id/block_id, flat indices, func.launch) — and follows its design: thread-bound loops
 * read the hardware index (guarded when narrower than the launch), serial loops carry their
 * variable in an OpPhi, `let` binds an SSA value, shared buffers become Workgroup variables and
 * local ones Function variables. SPIR-V adds structured control flow: every loop has a header
 * with OpLoopMerge and a continue block, every conditional an OpSelectionMerge.
 *
 * ABI: buffer parameters are storage buffers at set 0, binding i in parameter order; scalar
 * parameters, then symbolic dimensions (i32), are members of one push-constant block at std430
 * offsets. Push constants are 32-bit (64-bit for i64): f16/bf16 scalars travel as f32 holding the
 * value, i8/u8/bool as i32/u32, so no 8/16-bit push-constant capability is needed.
 *
 * Element types in storage buffers (module.ts BUFFER_ELEM): f16 natively (Float16 +
 * StorageBuffer16BitAccess), bf16 as its u16 bits, i8/u8 natively (StorageBuffer8BitAccess; their
 * arithmetic needs Int8, which lavapipe and desktop drivers have), bool as one byte.
 */
import { DTYPES, type DType } from "../../dsl/dtypes.ts";
import { isAsyncScope } from "../../lower/ir/build.ts";
import { launchDims, unloweredSharing, type LaunchDims } from "../../lower/ir/launch.ts";
import type { Atomic, Buffer, Expr, For, PrimFunc, Stmt, Var } from "../../lower/ir/nodes.ts";
import { printExpr } from "../../lower/ir/printer.ts";
import { bufferAccess, type AbiEntry } from "../gpu-common/kernel.ts";
import { BUFFER_ELEM, BYTES, REG_TYPE, SpirvModule, type ScalarName } from "./module.ts";
import { ExprEmitter, type BufferRef, type ExprContext } from "./render-expr.ts";
import { assemble, type ValidateEnv } from "./tools.ts";

export interface SpirvRenderOptions {
  /** Merge loads of read-only buffers into 16-byte vector loads (default true). */
  readonly vectorLoads?: boolean;
  /** The Vulkan version to validate against; the module is SPIR-V 1.5 either way (ABI.md). */
  readonly env: "vulkan1.2" | "vulkan1.3";
  /** The device's subgroup size, when known: shuffles wider than it are refused. */
  readonly subgroupSize?: number;
}

/** An ABI entry with where it travels: a binding (buffers) or a push-constant member. */
export interface SpirvAbiEntry extends AbiEntry {
  readonly binding?: number;
  /** Byte offset in the push-constant block, and the type written there. */
  readonly offset?: number;
  readonly pushType?: "f32" | "i32" | "u32" | "i64";
}

export interface RenderedSpirv {
  readonly name: string;
  readonly entry: "main";
  readonly env: ValidateEnv;
  readonly text: string;
  readonly words: Uint32Array;
  /** Buffers, then scalars, then symbols (the LLVM renderer's order). */
  readonly abi: readonly SpirvAbiEntry[];
  readonly launch: LaunchDims;
  readonly localSize: readonly [number, number, number];
  readonly pushConstantBytes: number;
  readonly sharedBytes: number;
}

export class SpirvRenderError extends Error {
  override readonly name = "SpirvRenderError";
}

/** Push-constant member type and size for a scalar dtype (32-bit, i64 64-bit). */
const PUSH_TYPE: Record<DType, "f32" | "i32" | "u32" | "i64"> = {
  f32: "f32",
  f16: "f32",
  bf16: "f32",
  i64: "i64",
  i32: "i32",
  u32: "u32",
  i8: "i32",
  u8: "u32",
  bool: "u32",
};
const PUSH_SCALAR: Record<string, ScalarName> = { f32: "float", i32: "int", u32: "uint", i64: "long" };
const AXES = "xyz";
/** Workgroup (2) execution and memory scope; AcquireRelease (0x8) | WorkgroupMemory (0x100). */
const BARRIER_SEMANTICS = 0x108;

/**
 * An atomic's scope and memory semantics: a storage buffer's at device scope, acquire and release
 * of uniform (storage buffer) memory, as the LLVM renderer's fences; a workgroup buffer's relaxed.
 */
const ATOMIC_DEVICE = { scope: 1, semantics: 0x8 | 0x40 };
const ATOMIC_WORKGROUP = { scope: 2, semantics: 0 };

class Renderer extends ExprEmitter {
  private readonly builtins = new Map<string, string>();
  sharedBytes = 0;

  private atomic(s: Atomic): void {
    const m = this.m;
    if (s.buffer.dtype === "f32")
      this.cx.fail(
        `atomicAdd on ${s.buffer.name} adds f32, which Vulkan's core SPIR-V cannot (SPV_EXT_shader_atomic_float_add): count in i32 or u32, or reduce through shared memory`,
      );
    const v = this.expr(s.value);
    const { ptr } = this.address(s.buffer, s.indices);
    const { scope, semantics } = s.buffer.scope === "global" ? ATOMIC_DEVICE : ATOMIC_WORKGROUP;
    const old = m.op(
      `OpAtomicIAdd ${this.ty(s.buffer.dtype)} ${ptr} ${m.uintConst(scope)} ${m.uintConst(semantics)} ${v}`,
    );
    if (s.result) this.storeValue(s.result.buffer, s.result.indices, old);
  }

  constructor(
    cx: ExprContext,
    private readonly fn: PrimFunc,
    private readonly launch: LaunchDims,
  ) {
    super(cx);
  }

  /** Builtins are loaded once, in the prologue, on first use (one load per vector). */
  builtin(which: "LocalInvocationId" | "WorkgroupId", axis: number): string {
    const key = `${which}.${axis}`;
    const hit = this.builtins.get(key);
    if (hit) return hit;
    const m = this.m;
    const r = m.inPrologue(() => {
      let vec = this.builtins.get(which);
      if (!vec) {
        const name = which === "LocalInvocationId" ? "lid" : "wgid";
        const v = m.variable(name, m.pointer("Input", m.vec3uint()), "Input", true);
        m.decorate(`OpDecorate ${v} BuiltIn ${which}`);
        vec = m.op(`OpLoad %v3uint ${v}`, `${name}_`);
        this.builtins.set(which, vec);
      }
      const u = m.op(`OpCompositeExtract %uint ${vec} ${axis}`);
      return m.op(
        `OpBitcast ${this.ty("i32")} ${u}`,
        `${which === "WorkgroupId" ? "bid" : "tid"}_${AXES[axis]}_`,
      );
    });
    this.builtins.set(key, r);
    return r;
  }

  stmt(s: Stmt): void {
    const m = this.m;
    switch (s.kind) {
      case "seq":
        s.body.forEach((b) => this.stmt(b));
        return;
      case "block":
        this.stmt(s.body);
        return;
      case "let":
        this.cx.vars.set(s.v, this.expr(s.value));
        if (s.v.dtype === "i32") this.letValues.set(s.v, s.value);
        this.stmt(s.body);
        return;
      case "store":
        this.storeValue(s.buffer, s.indices, this.expr(s.value));
        return;
      case "allocate":
        this.allocate(s.buffer);
        this.stmt(s.body);
        return;
      case "if": {
        const c = this.expr(s.cond);
        const [lt, le, lend] = [m.id("then"), m.id("else"), m.id("endif")];
        m.emit(`OpSelectionMerge ${lend} None`);
        m.emit(`OpBranchConditional ${c} ${lt} ${s.else ? le : lend}`);
        m.startBlock(lt);
        this.stmt(s.then);
        m.emit(`OpBranch ${lend}`);
        if (s.else) {
          m.startBlock(le);
          this.stmt(s.else);
          m.emit(`OpBranch ${lend}`);
        }
        m.startBlock(lend);
        return;
      }
      // No Vulkan counterpart: kernels run one after another, and SPIR-V has no L2 prefetch.
      case "prefetch":
        return;
      case "atomic":
        this.atomic(s);
        return;
      case "barrier": {
        // Copies are ordinary loads and stores here (they land at once): nothing to group or wait for.
        if (s.scope === "grid" || s.scope === "dependents" || isAsyncScope(s.scope)) return;
        // "warp" waits for the subgroup (scope 3), "shared" for the workgroup (scope 2).
        const scope = m.uintConst(s.scope === "shared" ? 2 : 3);
        m.emit(`OpControlBarrier ${scope} ${scope} ${m.uintConst(BARRIER_SEMANTICS)}`);
        return;
      }
      case "for":
        if (s.forKind === "thread") this.threadLoop(s);
        else this.serialLoop(s);
        return;
    }
  }

  private threadLoop(s: For): void {
    const tag = s.thread!;
    const axis = AXES.indexOf(tag[tag.length - 1]!);
    const isThread = tag.startsWith("threadIdx");
    const id = this.builtin(isThread ? "LocalInvocationId" : "WorkgroupId", axis);
    const idx =
      s.min.kind === "const" && s.min.value === 0
        ? id
        : this.m.op(`OpIAdd ${this.ty("i32")} ${id} ${this.expr(s.min)}`);
    this.cx.vars.set(s.loopVar, idx);
    const launched = (isThread ? this.launch.block : this.launch.grid)[axis]!;
    if (printExpr(launched) === printExpr(s.extent)) {
      this.stmt(s.body);
      return;
    }
    // Fewer iterations than launched threads/blocks along this axis: the rest skip the body.
    const m = this.m;
    const inb = m.op(`OpSLessThan ${m.scalar("bool")} ${id} ${this.expr(s.extent)}`);
    const [lb, le] = [m.id("tguard"), m.id("tguard_end")];
    m.emit(`OpSelectionMerge ${le} None`);
    m.emit(`OpBranchConditional ${inb} ${lb} ${le}`);
    m.startBlock(lb);
    this.stmt(s.body);
    m.emit(`OpBranch ${le}`);
    m.startBlock(le);
  }

  /**
   * header: phi, compare, OpLoopMerge, branch to body or merge; body; continue: increment, back
   * to the header. The bound is computed before the loop (spirv-val allows nothing between
   * OpLoopMerge and the branch).
   */
  private serialLoop(s: For): void {
    const m = this.m;
    const d = s.loopVar.dtype;
    const ty = this.ty(d);
    const min = this.expr(s.min);
    const end = m.op(`OpIAdd ${ty} ${min} ${this.expr(s.extent)}`);
    const pre = m.label;
    const [head, body, cont, merge] = [m.id("loop"), m.id("body"), m.id("continue"), m.id("merge")];
    const iv = m.named(`${s.loopVar.name}_${s.loopVar.id}`);
    const next = m.id("next");
    m.emit(`OpBranch ${head}`);
    m.startBlock(head);
    m.emit(`${iv} = OpPhi ${ty} ${min} ${pre} ${next} ${cont}`);
    const lt = DTYPES[d].kind === "uint" ? "OpULessThan" : "OpSLessThan";
    const c = m.op(`${lt} ${m.scalar("bool")} ${iv} ${end}`);
    m.emit(`OpLoopMerge ${merge} ${cont} ${s.forKind === "unrolled" ? "Unroll" : "None"}`);
    m.emit(`OpBranchConditional ${c} ${body} ${merge}`);
    m.startBlock(body);
    this.cx.vars.set(s.loopVar, iv);
    this.stmt(s.body);
    m.emit(`OpBranch ${cont}`);
    m.startBlock(cont);
    m.emit(`${next} = OpIAdd ${ty} ${iv} ${this.konst(1, d)}`);
    m.emit(`OpBranch ${head}`);
    m.startBlock(merge);
  }

  private allocate(buf: Buffer): void {
    const dims = (buf.allocShape ?? buf.shape).map((d) =>
      d.kind === "const" ? d.value : this.cx.fail(`${buf.scope} buffer ${buf.name} with a non-constant size`),
    );
    const count = dims.reduce((a, b) => a * b, 1);
    const m = this.m;
    const elemTy = this.ty(buf.dtype);
    const elem = REG_TYPE[buf.dtype];
    let ref: BufferRef;
    if (buf.scope === "shared") {
      const v = m.variable(
        `${buf.name}_${buf.id}`,
        m.pointer("Workgroup", m.array(elemTy, count)),
        "Workgroup",
      );
      ref = { id: v, sc: "Workgroup", elem, inStruct: false, scalar: false };
      this.sharedBytes += count * BYTES[elem];
    } else if (buf.scope === "local") {
      // Function variables open the first block, like LLVM's allocas.
      const v = m.named(`${buf.name}_${buf.id}`);
      const ptr = count === 1 ? m.pointer("Function", elemTy) : m.pointer("Function", m.array(elemTy, count));
      m.fnVars.push(`${v} = OpVariable ${ptr} Function`);
      ref = { id: v, sc: "Function", elem, inStruct: false, scalar: count === 1 };
    } else this.cx.fail(`allocation of the global buffer ${buf.name} inside the kernel`);
    this.cx.buffers.set(buf, ref);
  }
}

/** Launch dimensions: func.launch on device IR, else the thread-bound loops (launchDims). */
function launchOf(f: PrimFunc): LaunchDims {
  if (!f.launch) return launchDims(f);
  const c = (v: number): Expr => ({ kind: "const", dtype: "i32", value: v });
  const [x, y, z] = f.launch.block;
  return { grid: f.launch.grid, block: [c(x), c(y), c(z)] };
}

/** Renders a kernel for Vulkan: SPIR-V assembly, its words, the ABI and the launch shape. */
export function renderSpirv(f: PrimFunc, opts: SpirvRenderOptions): RenderedSpirv {
  const fail = (what: string): never => {
    throw new SpirvRenderError(`tkc spirv: kernel ${f.name}: ${what}`);
  };
  const unlowered = unloweredSharing(f);
  if (unlowered) fail(unlowered.replace(/^kernel \S+ /, ""));
  const launch = launchOf(f);
  const localSize = launch.block.map((d, k) =>
    d.kind === "const"
      ? d.value
      : fail(
          `threadIdx.${AXES[k]} extent ${printExpr(d)} is symbolic; the workgroup size (LocalSize) must be constant`,
        ),
  ) as [number, number, number];
  if (f.launch && opts.subgroupSize !== undefined && f.launch.warpSize > opts.subgroupSize && usesShuffles(f))
    fail(`lowered for warps of ${f.launch.warpSize} lanes; the device's subgroups have ${opts.subgroupSize}`);
  const m = new SpirvModule();
  const cx: ExprContext = {
    m,
    vars: new Map(),
    lazyVars: new Map(),
    buffers: new Map(),
    ...(opts.subgroupSize !== undefined ? { subgroupSize: opts.subgroupSize } : {}),
    builtin: (which, axis) => r.builtin(which, axis),
    ...(opts.vectorLoads === false ? {} : { vectorView: (b: Buffer) => vectorViews.get(b)?.() }),
    fail,
  };
  const r = new Renderer(cx, f, launch);
  const abi: SpirvAbiEntry[] = [];
  const header = [`tkc kernel ${f.name}: SPIR-V for Vulkan (${opts.env}), backends/spirv/ABI.md`];
  const access = bufferAccess(f);
  const vectorViews = new Map<Buffer, () => string>();
  let binding = 0;
  for (const p of f.params) {
    if (p.kind !== "buffer") continue;
    const b = p.buffer;
    const elem = BUFFER_ELEM[b.dtype];
    if (BYTES[elem] === 2) m.need("StorageBuffer16BitAccess");
    if (BYTES[elem] === 1) m.need("StorageBuffer8BitAccess");
    const v = m.variable(b.name, m.pointer("StorageBuffer", m.bufferStruct(elem)), "StorageBuffer");
    m.decorate(`OpDecorate ${v} DescriptorSet 0`);
    m.decorate(`OpDecorate ${v} Binding ${binding}`);
    const acc = access.get(b.name)!;
    if (!acc.writes) m.decorate(`OpDecorate ${v} NonWritable`);
    cx.buffers.set(b, { id: v, sc: "StorageBuffer", elem, inStruct: true, scalar: false });
    // A read-only buffer of a whole number of 16-byte vectors gets a uvec4 view of the same
    // binding (descriptor aliasing), declared on first use by a merged load (render-expr.ts).
    const size = b.shape.reduce((n, d) => n * (d.kind === "const" ? d.value : NaN), BYTES[elem]);
    if (
      !acc.writes &&
      size % 16 === 0 &&
      (elem === "uint" || elem === "int" || elem === "float" || elem === "half")
    ) {
      const slot = binding;
      let view: string | undefined;
      vectorViews.set(b, () => {
        if (view === undefined) {
          view = m.variable(
            `${b.name}_v4`,
            m.pointer("StorageBuffer", m.vectorBufferStruct()),
            "StorageBuffer",
          );
          m.decorate(`OpDecorate ${view} DescriptorSet 0`);
          m.decorate(`OpDecorate ${view} Binding ${slot}`);
          m.decorate(`OpDecorate ${view} NonWritable`);
        }
        return view;
      });
    }
    abi.push({ name: b.name, kind: "buffer", dtype: b.dtype, shape: plain(b.shape), ...acc, binding });
    header.push(`binding ${binding}: ${b.name} ${b.dtype}[] (${elem})${acc.writes ? "" : " read-only"}`);
    binding++;
  }
  const members: { v: Var; kind: "scalar" | "symbol" }[] = [
    ...f.params.flatMap((p) => (p.kind === "scalar" ? [{ v: p.v, kind: "scalar" as const }] : [])),
    ...f.symbols.map((v) => ({ v, kind: "symbol" as const })),
  ];
  let offset = 0;
  const memberTypes: string[] = [];
  let push: string | undefined;
  members.forEach(({ v, kind }, k) => {
    const pt = kind === "symbol" ? "i32" : PUSH_TYPE[v.dtype];
    const size = pt === "i64" ? 8 : 4;
    offset = Math.ceil(offset / size) * size;
    const ty = m.scalar(PUSH_SCALAR[pt]!);
    memberTypes.push(ty);
    m.decorate(`OpMemberDecorate %Push ${k} Offset ${offset}`);
    abi.push({ name: v.name, kind, dtype: kind === "symbol" ? "i32" : v.dtype, offset, pushType: pt });
    header.push(
      `push constant +${offset}: ${kind} ${v.name} ${v.dtype}${pt !== v.dtype ? ` (as ${pt})` : ""}`,
    );
    const from: DType = pt;
    cx.lazyVars.set(v, () => {
      const ptr = m.op(`OpAccessChain ${m.pointer("PushConstant", ty)} ${push} ${m.uintConst(k)}`);
      return r.cast(m.op(`OpLoad ${ty} ${ptr}`), from, kind === "symbol" ? "i32" : v.dtype);
    });
    offset += size;
  });
  const pushConstantBytes = Math.ceil(offset / 4) * 4;
  if (pushConstantBytes > 128)
    fail(
      `${pushConstantBytes} bytes of scalar parameters exceed the 128 bytes of push constants Vulkan guarantees`,
    );
  if (members.length) {
    const st = m.global("Push", `OpTypeStruct ${memberTypes.join(" ")}`);
    m.decorate(`OpDecorate ${st} Block`);
    push = m.variable("pc", m.pointer("PushConstant", st), "PushConstant", true);
  }
  header.push(`launch: grid [${launch.grid.map(printExpr).join(", ")}], workgroup ${localSize.join("x")}`);
  r.stmt(f.body);
  const text = m.text({ localSize, header });
  let words: Uint32Array;
  try {
    words = assemble(text, "vulkan1.2");
  } catch (e) {
    throw new SpirvRenderError(`tkc spirv: kernel ${f.name}: ${(e as Error).message}\n${text}`);
  }
  return {
    name: f.name,
    entry: "main",
    env: opts.env,
    text,
    words,
    abi,
    launch,
    localSize,
    pushConstantBytes,
    sharedBytes: r.sharedBytes,
  };
}

function usesShuffles(f: PrimFunc): boolean {
  return JSON.stringify(f.body).includes('"shfl_xor"');
}

/** Strips variable identities from shape expressions so the ABI travels as plain JSON. */
const plain = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;
