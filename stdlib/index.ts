/** tkc's standard library: every kernel a Llama needs (see README.md for shapes and layouts). */
export * from "./q4_common.ts";
export * from "./q4_gemv.ts";
export * from "./q4_fused.ts";
export * from "./q4_fused_gemm.ts";
export * from "./f16_gemv.ts";
export * from "./rmsnorm.ts";
export * from "./rope.ts";
export * from "./kv_cache.ts";
export * from "./attention.ts";
export * from "./softmax.ts";
export * from "./elementwise.ts";
export * from "./embedding.ts";
export * from "./sampling.ts";
export * from "./params.ts";
export * from "./attention_decode_shared.ts";
export * from "./q4_gemv_rows.ts";
export * from "./q4_gemv_rows_fused.ts";
export * from "./q4_gemm_tiled.ts";
export * from "./q4_gemv_rms.ts";
export * from "./q4_gemv_mma.ts";
export * from "./q4_qkv_rope_mma.ts";
export * from "./mma_layout.ts";
export * from "./attention_decode_split.ts";
export * from "./gemm_mma.ts";
// The kernels and WGMMA_BT; the block helpers the gate/up file shares stay inside the library.
export {
  WGMMA_BT,
  q4GemmWgmma,
  q4GemmResidualWgmma,
  q4QkvGemmWgmma,
  q4QkvRopeAppendGemmWgmma,
} from "./gemm_wgmma.ts";
export * from "./gemm_wgmma_gateup.ts";
export * from "./attention_decode_warps.ts";
export * from "./attention_prefill_warps.ts";
export * from "./attention_prefill_mma.ts";
