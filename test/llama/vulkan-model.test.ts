/**
 * The kernel-built Llama on the Vulkan device (lavapipe here; skipped with a message where there is
 * no Vulkan device) against the same model on the CPU device: stories15M in f32 and in q4f16_1,
 * logits position by position, prefill through the GEMM kernels, greedy text; and the device's own
 * contract (views as descriptor offsets or staging copies, batching, recordings); and the CLI's
 * --device vulkan against its --device cpu (the f32 reference model).
 */
import { describe, expect, test } from "vitest";
import { optionalVulkanRuntime } from "../helpers/vulkan.ts";
import { loadBundledStories15M } from "../../llama/bundled.ts";
import { createCpuDevice } from "../../llama/device/cpu.ts";
import { createVulkanDevice } from "../../llama/device/vulkan.ts";
import { createVulkanRuntime } from "../../backends/vulkan/runtime.ts";
import { generateText } from "../../llama/generate.ts";
import { KernelLlama } from "../../llama/model.ts";
import { llamaOps, type WeightFormat } from "../../llama/ops.ts";
import { runBin } from "../cli/run.ts";

const rt = optionalVulkanRuntime("the Vulkan model tests");

const { weights, tokenizer } = loadBundledStories15M();
const TOKENS = [1, 9038, 2501, 263, 931, 29892];

function relErr(expected: Float32Array, got: Float32Array): number {
  let scale = 0;
  let err = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]!));
    err = Math.max(err, Math.abs(expected[i]! - got[i]!));
  }
  return err / scale;
}

const argmax = (x: Float32Array): number => x.indexOf(Math.max(...x));

/** The same model on the Vulkan device and on the CPU device. */
function pair(format: WeightFormat, prefillChunk?: number) {
  const device = createVulkanDevice({ runtime: rt! });
  const opts = { format, schedules: device.schedules, ...(prefillChunk ? { prefillChunk } : {}) };
  return {
    gpu: new KernelLlama(device, weights, opts),
    cpu: new KernelLlama(createCpuDevice(), weights, opts),
  };
}

describe.skipIf(!rt)("the Vulkan device", () => {
  test("views bind sub-ranges, misaligned ones through copies; launches wait for sync or read", () => {
    const d = createVulkanDevice({ runtime: rt! });
    try {
      const residual = d.op(llamaOps(weights.config, "f32").prefill.residual!);
      const dim = weights.config.dim;
      const a = d.tensor("f32", [4, dim]);
      const b = d.tensor("f32", [4, dim]);
      const av = Float32Array.from({ length: 4 * dim }, (_, i) => i);
      d.write(a, av);
      d.write(b, new Float32Array(4 * dim).fill(0.5));
      // Rows 1 and 2 only, in place: a view at byte 4 * dim (aligned) of both tensors.
      const rows = (t: typeof a) => d.view(t, [2, dim], dim);
      d.run(residual, { a: rows(a), b: rows(b), y: rows(a) });
      // A view's contents after a launch: read() submits what is pending first.
      const got = d.read(d.view(a, [4 * dim])) as Float32Array;
      for (let i = 0; i < 4 * dim; i++) {
        const row = Math.floor(i / dim);
        expect(got[i], `element ${i}`).toBe(row === 1 || row === 2 ? i + 0.5 : i);
      }
      // A write at an element offset, read through a view.
      d.write(a, new Float32Array([7, 8]), 3 * dim + 1);
      expect(Array.from(d.read(d.view(a, [3], 3 * dim)))).toEqual([3 * dim, 7, 8]);
      // One f32 element in: not a multiple of lavapipe's 16-byte alignment, so the launch goes
      // through staging copies (in, and back out for the output), in place as well.
      const before = d.read(a) as Float32Array;
      const odd = d.view(a, [1, dim], 1);
      d.run(residual, { a: odd, b: d.view(b, [1, dim]), y: odd });
      const after = d.read(a) as Float32Array;
      for (let i = 0; i < 4 * dim; i++)
        expect(after[i], `element ${i}`).toBe(i >= 1 && i < dim + 1 ? before[i]! + 0.5 : before[i]);
    } finally {
      d.dispose();
    }
  });

  test("a recording replays its launches with the values in device memory at replay time", () => {
    const d = createVulkanDevice({ runtime: rt! });
    try {
      const dim = weights.config.dim;
      const residual = d.op(llamaOps(weights.config, "f32").prefill.residual!);
      const acc = d.tensor("f32", [1, dim]);
      const one = d.tensor("f32", [1, dim]);
      d.write(acc, new Float32Array(dim));
      d.write(one, new Float32Array(dim).fill(1));
      const rec = d.record(() => d.run(residual, { a: acc, b: one, y: acc }));
      d.sync();
      expect((d.read(acc) as Float32Array)[0]).toBe(0); // recorded, not run
      rec.replay();
      rec.replay();
      d.write(one, new Float32Array(dim).fill(10));
      rec.replay();
      expect(Array.from(d.read(acc) as Float32Array).slice(0, 3)).toEqual([12, 12, 12]);
      rec.dispose();
    } finally {
      d.dispose();
    }
  });

  test("a decode step binds the token, position and length in place: no launch reads them through a copy", () => {
    const device = createVulkanDevice({ runtime: rt!, timestamps: true });
    try {
      const model = new KernelLlama(device, weights, { format: "q4f16_1", schedules: device.schedules });
      const [token, next] = model.decodeGreedy(TOKENS[0]!, 0, 2);
      expect(token).toBeGreaterThanOrEqual(0);
      expect(next).toBeGreaterThanOrEqual(0);
      const keys = device.lastReplay!.launches.map((l) => l.key);
      expect(keys.some((k) => k.startsWith("attnsplit1"))).toBe(true);
      // lavapipe's subgroups of 8 still stage the in-place residual GEMVs' reads (the aliasing
      // rule in llama/device/vulkan.ts); the attention and the cache append read the step's words.
      expect(keys.filter((k) => /^copy:(ropeappend|attn|embed|recordtoken)/.test(k))).toEqual([]);
    } finally {
      device.dispose();
    }
  });

  test("per-layer tensors in shared buffers (sharedLayerBuffers): the same logits, bound in place", () => {
    const run = (sharedLayerBuffers: boolean) => {
      const device = createVulkanDevice({ runtime: rt!, timestamps: true });
      try {
        const model = new KernelLlama(device, weights, {
          format: "q4f16_1",
          schedules: device.schedules,
          sharedLayerBuffers,
        });
        const logits = [model.decode(TOKENS[0]!, 0), model.decode(TOKENS[1]!, 1)].map((x) => Array.from(x));
        const copies = device.lastReplay!.launches.filter((l) => l.key.startsWith("copy:")).length;
        return { logits, copies };
      } finally {
        device.dispose();
      }
    };
    const separate = run(false);
    const shared = run(true);
    expect(shared.logits).toEqual(separate.logits);
    expect(shared.copies).toBe(separate.copies);
  });

  test("shared layer buffers bound with dynamic offsets: the same logits, a set an op kind", () => {
    const dyn = createVulkanRuntime({ dynamicOffsets: true });
    const device = createVulkanDevice({ runtime: dyn });
    try {
      const run = (sharedLayerBuffers: boolean) => {
        const model = new KernelLlama(device, weights, {
          format: "q4f16_1",
          schedules: device.schedules,
          sharedLayerBuffers,
        });
        const before = dyn.descriptorSets;
        const logits = [model.decode(TOKENS[0]!, 0), model.decode(TOKENS[1]!, 1)].map((x) => Array.from(x));
        return { logits, sets: dyn.descriptorSets - before };
      };
      const separate = run(false);
      const shared = run(true);
      expect(shared.logits).toEqual(separate.logits);
      // stories15M's 6 layers: a set a layer per op kind apart, one per op kind shared.
      if (dyn.device.limits.maxDescriptorSetStorageBuffersDynamic >= 8)
        expect(shared.sets).toBeLessThan(separate.sets / 3);
    } finally {
      device.dispose();
    }
  });
});

describe.skipIf(!rt)("stories15M on the Vulkan device against the CPU device", () => {
  test("f32: decode logits within 1e-4 of the CPU's, prefill through GEMMs, same greedy text", async () => {
    const { gpu, cpu } = pair("f32", 3);
    for (let p = 0; p < TOKENS.length; p++) {
      const a = cpu.decode(TOKENS[p]!, p).slice();
      const b = gpu.decode(TOKENS[p]!, p);
      expect(relErr(a, b), `position ${p}`).toBeLessThan(1e-4);
      expect(argmax(b), `position ${p}`).toBe(argmax(a));
    }
    // Chunks of 3 through the prefill GEMMs, then decode of the last token.
    const a = cpu.prefill(TOKENS, 0).slice();
    expect(relErr(a, gpu.prefill(TOKENS, 0))).toBeLessThan(1e-4);

    const opts = { maxTokens: 32, temperature: 0, topP: 1, seed: 1 };
    const expected = await generateText(cpu, tokenizer, opts);
    const got = await generateText(gpu, tokenizer, opts);
    expect(got.tokens).toEqual(expected.tokens);
    expect(got.text).toMatch(/^Once upon a time/);
    gpu.dispose();
  });

  test("q4f16_1: logits within 1% of the CPU's, same greedy text", async () => {
    const { gpu, cpu } = pair("q4f16_1", 4);
    for (let p = 0; p < TOKENS.length; p++) {
      const a = cpu.decode(TOKENS[p]!, p).slice();
      const b = gpu.decode(TOKENS[p]!, p);
      // f16 activations: the GPU's reductions add in another order, each sum rounded to f16.
      expect(relErr(a, b), `position ${p}`).toBeLessThan(1e-2);
      expect(argmax(b), `position ${p}`).toBe(argmax(a));
    }
    const a = cpu.prefill(TOKENS, 0).slice();
    expect(relErr(a, gpu.prefill(TOKENS, 0))).toBeLessThan(1e-2);

    const opts = { maxTokens: 32, temperature: 0, topP: 1, seed: 1 };
    const expected = await generateText(cpu, tokenizer, opts);
    const got = await generateText(gpu, tokenizer, opts);
    expect(got.text).toBe(expected.text);
    gpu.dispose();
  });
});

describe.skipIf(!rt)("tkc on the Vulkan device", () => {
  test("generate --device vulkan --format f32 prints what --device cpu prints (greedy, 32 tokens)", async () => {
    const args = ["generate", "--temperature", "0", "--max-tokens", "32"];
    const vk = await runBin([...args, "--device", "vulkan", "--format", "f32"], "", 90_000);
    expect(vk.code, vk.stderr).toBe(0);
    expect(vk.stderr).toMatch(/generated 32 tokens/);
    const cpu = await runBin([...args, "--device", "cpu"]);
    expect(cpu.code, cpu.stderr).toBe(0);
    expect(vk.stdout).toBe(cpu.stdout);
  });
});
