// IEEE half precision <-> number, for kernel arguments and for checking f16 results on the host
// (Node 20 has no Float16Array): dsl/dtypes.ts's conversions, which round straight from the double
// to the nearest half, ties to even, as hardware does (going through f32 first would round twice
// and sometimes differ).
export { f16Bits as toF16Bits, f16FromBits as f16BitsToNumber } from "../../dsl/dtypes.ts";
