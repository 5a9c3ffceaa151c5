/** LLVM IR text for constants. */
import { bf16Bits, f16Bits, type DType } from "../../dsl/dtypes.ts";

export function floatLiteral(v: number, d: DType): string {
  // LLVM takes float constants as the hex of the double that holds the exact value.
  const x = d === "f32" ? Math.fround(v) : v;
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, x);
  const hex = buf.getBigUint64(0).toString(16).toUpperCase().padStart(16, "0");
  if (d === "f16" || d === "bf16") {
    // half/bfloat constants are written as their own bit patterns with 0xH / 0xR.
    return d === "f16" ? `0xH${f16Hex(x)}` : `0xR${bf16Hex(x)}`;
  }
  return `0x${hex}`;
}

const f16Hex = (x: number) => f16Bits(x).toString(16).toUpperCase().padStart(4, "0");
const bf16Hex = (x: number) => bf16Bits(x).toString(16).toUpperCase().padStart(4, "0");
