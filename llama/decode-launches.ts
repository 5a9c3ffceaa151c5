/**
 * The Llama model's launch sequences on its device (llama/model.ts KernelLlama): one decode step
 * (recorded once as a CUDA graph on NVIDIA; per-step values read from ids/pos/len in device
 * memory) and the final norm and LM head on one row. Which kernels run is the ops' choice
 * (llama/ops.ts): fused RMSNorm/RoPE/cache-append GEMVs, split or single attention, tensor-core or
 * four-rows GEMVs, f16 weights.
 */
import { headDim, kvDim, type LlamaConfig } from "./config.ts";
import type { Device, DeviceTensor, OpSpec } from "./device/types.ts";
import type { LlamaOps } from "./ops.ts";

/** A weight matrix on the device. */
export interface Matrix {
  /** q4f16_1: packed [N, K/8] u32 and scales [N, K/32] f16; f16/f32: w [N, K]. */
  readonly packed?: DeviceTensor;
  readonly scales?: DeviceTensor;
  readonly w?: DeviceTensor;
  readonly n: number;
  readonly k: number;
}

/** One transformer layer's weights and KV cache on the device. */
export interface Layer {
  readonly attnNorm: DeviceTensor;
  readonly ffnNorm: DeviceTensor;
  readonly qkv: Matrix; // [Wq; Wk; Wv]
  readonly o: Matrix;
  readonly gateUp: Matrix; // [Wgate; Wup]
  readonly down: Matrix;
  readonly kCache: DeviceTensor;
  readonly vCache: DeviceTensor;
}

/** What the launch sequences read of the model. */
export interface LaunchContext {
  readonly config: LlamaConfig;
  readonly ops: LlamaOps;
  readonly device: Device;
  readonly act: Readonly<Record<string, DeviceTensor>>;
  readonly layers: readonly Layer[];
  readonly embedQ4?: Matrix;
  readonly finalNorm: DeviceTensor;
  readonly lmHead: Matrix;
  run(spec: OpSpec, args: Record<string, DeviceTensor | number>): void;
}

/** The launches of one decode step; per-step values are read from ids/pos/len in device memory. */
export function decodeLaunches(m: LaunchContext): void {
  const c = m.config;
  const o = m.ops.decode;
  const A = m.act;
  const d = m.device;
  const hd = headDim(c);
  const kv = kvDim(c);
  const x = A.x!;
  const flat = (t: DeviceTensor, n: number) => d.view(t, [n]);
  if (m.embedQ4)
    m.run(o.embed!, { ids: A.ids!, packed: m.embedQ4.packed!, scales: m.embedQ4.scales!, out: x });
  for (const L of m.layers) {
    const xn = flat(A.xn!, c.dim);
    // Where RoPE and the cache append run in the QKV GEMV's epilogue (q4QkvRopeAppend*Mma).
    const rotated = {
      qr: d.view(A.qr!, [c.nHeads, hd]),
      kCache: L.kCache,
      vCache: L.vCache,
      pos_mem: A.pos!,
      theta: c.ropeTheta,
    };
    if (L.qkv.packed && o.qkvRopeRms) {
      // RMSNorm, the projection, RoPE and the cache append in one launch.
      m.run(o.qkvRopeRms, {
        x: flat(x, c.dim),
        wn: L.attnNorm,
        eps: c.normEps,
        packed: L.qkv.packed,
        scales: L.qkv.scales!,
        ...rotated,
      });
    } else if (L.qkv.packed && o.qkvRope) {
      m.run(o.rmsNorm!, { x, w: L.attnNorm, y: A.xn!, eps: c.normEps });
      m.run(o.qkvRope, { x: xn, packed: L.qkv.packed, scales: L.qkv.scales!, ...rotated });
    } else if (L.qkv.packed && o.qkvNormed) {
      m.run(o.rmsNorm!, { x, w: L.attnNorm, y: A.xn!, eps: c.normEps });
      m.run(o.qkvNormed, { x: xn, packed: L.qkv.packed, scales: L.qkv.scales!, y: A.qkv! });
    } else if (L.qkv.packed) {
      // RMSNorm runs inside the GEMV (q4_gemv_rms.ts).
      const xr = flat(x, c.dim);
      m.run(o.qkv!, {
        x: xr,
        wn: L.attnNorm,
        eps: c.normEps,
        packed: L.qkv.packed!,
        scales: L.qkv.scales!,
        y: A.qkv!,
      });
    } else {
      m.run(o.rmsNorm!, { x, w: L.attnNorm, y: A.xn!, eps: c.normEps });
      m.run(o.gemvQKV!, { x: xn, w: L.qkv.w!, y: A.qkv! });
    }
    if (o.ropeAppend)
      m.run(o.ropeAppend, {
        qk: d.view(A.qkv!, [c.nHeads + c.nKvHeads, hd], 0),
        v: d.view(A.qkv!, [c.nKvHeads, hd], c.dim + kv),
        qr: d.view(A.qr!, [c.nHeads, hd]),
        kCache: L.kCache,
        vCache: L.vCache,
        pos_mem: A.pos!,
        theta: c.ropeTheta,
      });
    const attnIn = {
      q: d.view(A.qr!, [c.nHeads, hd]),
      kCache: L.kCache,
      vCache: L.vCache,
      len_mem: A.len!,
    };
    const parts = { partAcc: A.partAcc!, partMax: A.partMax!, partSum: A.partSum! };
    if (o.attention) m.run(o.attention, { ...attnIn, out: A.attn! });
    else if (o.attentionSplitLast)
      m.run(o.attentionSplitLast, { ...attnIn, ...parts, count: A.splitCount!, out: A.attn! });
    else {
      m.run(o.attentionSplit!, { ...attnIn, ...parts });
      m.run(o.attentionCombine!, { ...parts, out: A.attn! });
    }
    const attn = flat(A.attn!, c.dim);
    const xv = flat(x, c.dim);
    if (L.o.packed) {
      m.run(o.oRes!, { x: attn, packed: L.o.packed!, scales: L.o.scales!, residual: xv, y: xv });
      // Measured on an H200, folding this norm into the four-rows gate/up (q4GateUpSiluRms) was
      // slower: each of its 11008 row-warps would recompute the sum of squares. The tensor-core
      // kernel (gateUpRms) has 688 blocks of 16 outputs, each staging x̂ once.
      if (o.gateUpRms)
        m.run(o.gateUpRms, {
          x: xv,
          wn: L.ffnNorm,
          eps: c.normEps,
          packed: L.gateUp.packed!,
          scales: L.gateUp.scales!,
          out: A.h!,
        });
      else {
        m.run(o.rmsNorm!, { x, w: L.ffnNorm, y: A.xn!, eps: c.normEps });
        m.run(o.gateUp!, { x: xn, packed: L.gateUp.packed!, scales: L.gateUp.scales!, out: A.h! });
      }
      m.run(o.downRes!, {
        x: A.h!,
        packed: L.down.packed!,
        scales: L.down.scales!,
        residual: xv,
        y: xv,
      });
    } else {
      m.run(o.gemvORes!, { x: attn, w: L.o.w!, residual: xv, y: xv });
      m.run(o.rmsNorm!, { x, w: L.ffnNorm, y: A.xn!, eps: c.normEps });
      m.run(o.gemvGateUpSilu!, { x: xn, w: L.gateUp.w!, out: A.h! });
      m.run(o.gemvDownRes!, { x: A.h!, w: L.down.w!, residual: xv, y: xv });
    }
  }
  logitsLaunches(m, x);
}

/** The final RMSNorm of one row x [1, dim] and the LM head on it, into act.logits. */
export function logitsLaunches(m: LaunchContext, x: DeviceTensor): void {
  const c = m.config;
  const o = m.ops.decode;
  const A = m.act;
  m.run(o.rmsNorm!, { x, w: m.finalNorm, y: A.xn!, eps: c.normEps });
  const xn = m.device.view(A.xn!, [c.dim]);
  if (m.lmHead.packed)
    m.run(o.lmHead!, { x: xn, packed: m.lmHead.packed, scales: m.lmHead.scales!, y: A.logits! });
  else m.run(o.lmHead!, { x: xn, w: m.lmHead.w!, y: A.logits! });
}
