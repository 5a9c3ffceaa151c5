import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SafetensorsFile, SafetensorsModel } from "../../llama/convert/safetensors.ts";
import { encode, type StEntry, removeTmpDirs, tmpDir, writeSafetensors } from "./fixtures.ts";

afterAll(removeTmpDirs);

const entry = (name: string, dtype: StEntry["dtype"], shape: number[], bytes: Buffer): StEntry => ({
  name,
  dtype,
  shape,
  bytes,
});

describe("safetensors reader", () => {
  const dir = tmpDir("st");
  const file = path.join(dir, "a.safetensors");
  // Bit patterns chosen by hand: f16 0x3c00 = 1, 0xc000 = -2, 0x3555 = 1365/4096,
  // 0x0001 = 2^-24 (smallest subnormal); bf16 0x3f80 = 1, 0x4049 = 3.140625, 0xbf00 = -0.5.
  const f16 = Buffer.from(Uint16Array.from([0x3c00, 0xc000, 0x3555, 0x0001]).buffer);
  const bf16 = Buffer.from(Uint16Array.from([0x3f80, 0x4049, 0xbf00]).buffer);
  const f32 = Buffer.from(Float32Array.from([1.5, -2.25, 1e-3, 7, 8, 9]).buffer);
  writeSafetensors(file, [
    entry("half", "F16", [2, 2], f16),
    entry("brain", "BF16", [3], bf16),
    entry("full", "F32", [2, 3], f32),
    entry("ids", "I64", [2], encode(Float32Array.from([3, 4]), "I64")),
  ]);

  it("reads F16, BF16 and F32 tensors as float32, exactly", () => {
    const st = new SafetensorsFile(file);
    try {
      expect(Array.from(st.readF32("half"))).toEqual([1, -2, 0.333251953125, 2 ** -24]);
      expect(Array.from(st.readF32("brain"))).toEqual([1, 3.140625, -0.5]);
      expect(Array.from(st.readF32("full"))).toEqual(
        Array.from(Float32Array.from([1.5, -2.25, 1e-3, 7, 8, 9])),
      );
      expect(st.info("full").shape).toEqual([2, 3]);
      expect(st.metadata).toEqual({ format: "pt" });
      expect(st.readRaw("half").equals(f16)).toBe(true);
    } finally {
      st.close();
    }
  });

  it("refuses to read an unsupported dtype as weights, naming it", () => {
    const st = new SafetensorsFile(file);
    try {
      expect(() => st.readF32("ids")).toThrow(
        /a\.safetensors: tensor ids has dtype I64; only F32, F16, BF16/,
      );
      expect(() => st.readF32("nope")).toThrow(/no tensor named nope/);
    } finally {
      st.close();
    }
  });

  it("reports a truncated file, naming the tensor past the end", () => {
    const bytes = fs.readFileSync(file);
    const cut = path.join(dir, "cut.safetensors");
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 10));
    expect(() => new SafetensorsFile(cut)).toThrow(
      /cut\.safetensors: tensor ids: data ends at byte \d+ .* truncated/,
    );
    fs.writeFileSync(cut, bytes.subarray(0, 5));
    expect(() => new SafetensorsFile(cut)).toThrow(/cut\.safetensors: not a safetensors file: 5 bytes/);
    fs.writeFileSync(cut, bytes.subarray(0, 40));
    expect(() => new SafetensorsFile(cut)).toThrow(
      /cut\.safetensors: truncated: the header says it is \d+ bytes/,
    );
  });

  it("reports a header that lies about sizes or overlaps", () => {
    const lie = path.join(dir, "lie.safetensors");
    writeSafetensors(lie, [entry("w", "F32", [2, 3], f32)], (h) => {
      (h.w as { shape: number[] }).shape = [2, 4];
    });
    expect(() => new SafetensorsFile(lie)).toThrow(
      /tensor w: data_offsets \[0, 24\] span 24 bytes but F32 \[2,4\] needs 32/,
    );
    writeSafetensors(lie, [entry("a", "F16", [4], f16), entry("b", "F16", [4], f16)], (h) => {
      (h.b as { data_offsets: number[] }).data_offsets = [4, 12];
    });
    expect(() => new SafetensorsFile(lie)).toThrow(/tensors a and b overlap/);
    writeSafetensors(lie, [entry("w", "F32", [2, 3], f32)], (h) => {
      (h.w as { dtype: string }).dtype = "F12";
    });
    expect(() => new SafetensorsFile(lie)).toThrow(/tensor w: unknown dtype "F12"/);
    const junk = path.join(dir, "junk.safetensors");
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(4n);
    fs.writeFileSync(junk, Buffer.concat([len, Buffer.from("{oop")]));
    expect(() => new SafetensorsFile(junk)).toThrow(/junk\.safetensors: the header is not valid JSON/);
    len.writeBigUInt64LE(1n << 40n);
    fs.writeFileSync(junk, Buffer.concat([len, Buffer.from("{}")]));
    expect(() => new SafetensorsFile(junk)).toThrow(/header length \d+ is outside/);
  });

  it("opens shards through model.safetensors.index.json", () => {
    const d = tmpDir("st-idx");
    writeSafetensors(path.join(d, "s1.safetensors"), [entry("x", "F16", [4], f16)]);
    writeSafetensors(path.join(d, "s2.safetensors"), [entry("y", "BF16", [3], bf16)]);
    const index = { weight_map: { x: "s1.safetensors", y: "s2.safetensors" } };
    fs.writeFileSync(path.join(d, "model.safetensors.index.json"), JSON.stringify(index));
    const m = new SafetensorsModel(d);
    try {
      expect(m.names().sort()).toEqual(["x", "y"]);
      expect(Array.from(m.readF32("y"))).toEqual([1, 3.140625, -0.5]);
      expect(m.info("x").file).toBe(path.join(d, "s1.safetensors"));
    } finally {
      m.close();
    }
    fs.writeFileSync(
      path.join(d, "model.safetensors.index.json"),
      JSON.stringify({ weight_map: { x: "s3.safetensors" } }),
    );
    expect(() => new SafetensorsModel(d)).toThrow(/shard s3\.safetensors \(holding x\) is missing/);
    fs.writeFileSync(
      path.join(d, "model.safetensors.index.json"),
      JSON.stringify({ weight_map: { z: "s1.safetensors" } }),
    );
    expect(() => new SafetensorsModel(d)).toThrow(
      /says z is in s1\.safetensors, but that file has no such tensor/,
    );
    expect(() => new SafetensorsModel(tmpDir("empty"))).toThrow(
      /neither model\.safetensors\.index\.json nor model\.safetensors/,
    );
  });
});
