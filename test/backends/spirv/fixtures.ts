// The hand-written SPIR-V assembly fixtures (see backends/spirv/ABI.md for what they show).
import { readFileSync } from "node:fs";

export const FIXTURES = ["double", "tree-reduce", "subgroup-reduce", "f16", "u8-scale"] as const;
export type FixtureName = (typeof FIXTURES)[number];

export function fixture(name: FixtureName): string {
  return readFileSync(new URL(`./fixtures/${name}.spvasm`, import.meta.url), "utf8");
}
