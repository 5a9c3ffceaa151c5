export { LLAMA2_7B } from "../../llama/presets.ts";

/** The KV cache length the decode benchmark allocates: a 512-token prompt plus 512 generated. */
export const DECODE_CONTEXT = 1100;
