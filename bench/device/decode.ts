// Runs on the GPU machine: the kernel-built Llama on CUDA.
//  1. stories15M (q4f16_1, real weights): greedy 256 tokens must equal the CPU kernel model's text.
//  2. Llama-2-7B shape (q4f16_1, synthetic weights): a 1-token prompt and 512 decoded tokens: tok/s,
//     bytes read per token, fraction of the copy bandwidth (the roofline); prefill of 512 tokens.
// Writes $OUT/decode.json.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createCudaRuntime } from "../../backends/cuda/runtime.ts";
import { readLibrary } from "../../llama/device/library.ts";
import { createCudaDevice, profileOf } from "../../llama/device/cuda.ts";
import { loadConverted } from "../../llama/convert/format.ts";
import { loadModelTokenizer } from "../../llama/convert/tokenizer.ts";
import { fromConverted, syntheticF16, syntheticQ4 } from "../../llama/weights/source.ts";
import { KernelLlama } from "../../llama/model.ts";
import type { Device, Op, Recording } from "../../llama/device/types.ts";
import { CUDA_OP_CHOICES, type OpChoices } from "../../llama/op-choices.ts";
import { generateText } from "../../llama/generate.ts";
import { headDim } from "../../llama/config.ts";
import { copyBandwidth } from "./bandwidth.ts";
import {
  LLAMA2_7B,
  DECODE_CONTEXT,
  compareGreedyText,
  decodeBytesPerToken,
  greedyDecodeTokPerS,
  prefillTokPerS,
  type ExpectedText,
} from "./models.ts";

/** The 512-token prompt of the prefill measurements (token ids spread over the vocabulary). */
const PROMPT = Array.from({ length: 512 }, (_, i) => 1 + ((i * 7919) % 31999));

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      out: { type: "string", default: "bench/out" },
      steps: { type: "string", default: "512" },
      // --ab name=dir: one more 7B q4f16_1 library (under .device) for section 2c's A/B, with the
      // CUDA op choices, e.g. one built from another commit; name=dir#{"foldDecodeNorms":true}
      // adds choices the library was built with (null unsets one of CUDA's).
      ab: { type: "string", multiple: true, default: [] },
      // --sections 2,3: run only those sections (1 stories15M, 2 7B q4f16_1, 2b 7B f16, 2c the
      // decode A/B, 2p the prefill A/B (not by default), 3 the per-op profiles, 4 each op's cost
      // inside the decode graph), e.g. under a profiler.
      sections: { type: "string", default: "1,2,2b,2c,3,4" },
      // --whole-steps: section 4 times only the whole steps (no omissions), e.g. to compare many
      // --ab libraries.
      "whole-steps": { type: "boolean", default: false },
    },
  });
  const sections = new Set(values.sections!.split(","));
  const abLibraries = values.ab.map((a) => {
    const m = /^([^=]+)=([^#]+)(?:#(.*))?$/.exec(a);
    if (!m) throw new Error(`decode: --ab takes name=libdir or name=libdir#{choices as JSON}, got ${a}`);
    const extra = m[3] ? (JSON.parse(m[3]) as Record<string, unknown>) : {};
    // null unsets a choice of CUDA's (a library built without it).
    const choices: Record<string, unknown> = { ...CUDA_OP_CHOICES, ...extra };
    for (const [k, v] of Object.entries(choices)) if (v === null) delete choices[k];
    return { name: m[1]!, lib: m[2]!, choices: choices as OpChoices };
  });
  /** The CUDA library prepare.sh builds, with CUDA's op choices: section 2p's and 3's baseline. */
  const defaultLibrary = { name: "default", lib: "lib/llama2-7b-q4-sm_90", choices: CUDA_OP_CHOICES };
  const here = new URL(".", import.meta.url).pathname;
  const rt = createCudaRuntime();
  const copy = copyBandwidth(rt);
  console.log(`device: ${rt.device.name}; copy bandwidth ${(copy / 1e9).toFixed(0)} GB/s`);
  const result: Record<string, unknown> = { device: rt.device.name, copyBandwidthGBs: copy / 1e9 };
  let failed = 0;

  // 1. stories15M, real weights.
  if (sections.has("1")) {
    const dir = join(here, "models/stories15M-q4");
    const conv = loadConverted(dir);
    const src = fromConverted(conv, (n) => n in conv.manifest.tensors);
    const tok = loadModelTokenizer(conv);
    const device = createCudaDevice({
      runtime: rt,
      library: readLibrary(join(here, "lib/stories15M-q4-sm_90")),
    });
    const model = new KernelLlama(device, src, { format: "q4f16_1" });
    const r = await generateText(model, tok, { maxTokens: 256, temperature: 0, topP: 1, seed: 1 });
    const expected = JSON.parse(
      readFileSync(join(here, "models/stories15M-q4-expected.json"), "utf8"),
    ) as ExpectedText;
    const { same, firstDiff, cpuMargin, describe } = compareGreedyText(r, expected);
    // The first generation loads the kernels and records the decode graphs; three more, warm.
    const warm: number[] = [];
    let warmSame = true;
    for (let i = 0; i < 3; i++) {
      const w = await generateText(model, tok, { maxTokens: 256, temperature: 0, topP: 1, seed: 1 });
      warm.push(w.stats.decodeTokensPerSecond);
      warmSame &&= w.text === expected.text;
    }
    const warmTokPerS = [...warm].sort((a, b) => a - b)[1]!;
    if (!same || !warmSame) failed++;
    console.log(
      `${same && warmSame ? "ok" : "DIFFERENT"} stories15M q4f16_1 greedy text on the GPU vs the CPU kernel model (${describe}${warmSame ? "" : "; a warm run's text differs"}); decode ${warmTokPerS.toFixed(1)} tok/s warm (median of ${warm.map((x) => x.toFixed(1)).join(", ")}), ${r.stats.decodeTokensPerSecond.toFixed(1)} in the first call (kernels loaded, graphs recorded)`,
    );
    console.log(r.text.slice(0, 300));
    result.stories15M = {
      sameTextAsCpu: same,
      firstDifferentToken: firstDiff,
      ...(cpuMargin === undefined ? {} : { cpuMarginAtFirstDifference: cpuMargin }),
      tokens: r.tokens.length,
      decodeTokPerS: warmTokPerS,
      warmDecodePassesTokPerS: warm,
      warmTextsEqual: warmSame,
      firstCallDecodeTokPerS: r.stats.decodeTokensPerSecond,
      text: r.text,
    };
    device.dispose();
  }

  // 2. Llama-2-7B shape, synthetic q4f16_1 weights.
  if (sections.has("2")) {
    const config = { ...LLAMA2_7B, contextLength: DECODE_CONTEXT };
    const device = createCudaDevice({
      runtime: rt,
      library: readLibrary(join(here, "lib/llama2-7b-q4-sm_90")),
    });
    const t0 = performance.now();
    const model = new KernelLlama(device, syntheticQ4(config), { format: "q4f16_1" });
    console.log(`7B weights made and uploaded in ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
    const steps = Number(values.steps);
    model.decodeGreedy(1, 0, model.greedySteps + 1); // records both graphs (greedySteps steps, one step)
    // Three passes of `steps` tokens from position 1: machines differ from run to run by several
    // percent, and the passes show how much a single one can. Then the same with each call's
    // tokens read before the next call is enqueued, with one step a wait for the host, and with
    // the logits read back and argmax on the host (the seventh session's measure).
    const threePasses = (argmaxOn: "device" | "wait" | "step" | "host") => {
      const passes = [0, 1, 2].map(() => greedyDecodeTokPerS(model, steps, argmaxOn));
      return { passes, median: [...passes].sort((a, b) => a - b)[1]! };
    };
    const { passes, median: tokPerS } = threePasses("device");
    const { passes: waitPasses, median: waitTokPerS } = threePasses("wait");
    const { passes: stepPasses, median: stepTokPerS } = threePasses("step");
    model.decode(1, 0);
    const { passes: hostPasses, median: hostTokPerS } = threePasses("host");
    const bytesPerToken = decodeBytesPerToken(config, "q4f16_1", (steps + 1) / 2);
    const roofline = copy / bytesPerToken;
    console.log(
      `7B q4f16_1 decode: ${tokPerS.toFixed(1)} tok/s over ${steps} tokens (median of passes at ${passes.map((p) => p.toFixed(1)).join(", ")}); ${(bytesPerToken / 1e9).toFixed(2)} GB/token; roofline ${roofline.toFixed(0)} tok/s; ${((100 * tokPerS) / roofline).toFixed(1)}% of roofline (${model.greedySteps} greedy steps a call, each enqueued before the last one's tokens are read${model.greedyAhead ? "" : ": not on this model"}); each call's tokens read before the next: ${waitTokPerS.toFixed(1)} tok/s (${waitPasses.map((p) => p.toFixed(1)).join(", ")}); one step a wait: ${stepTokPerS.toFixed(1)} tok/s (${stepPasses.map((p) => p.toFixed(1)).join(", ")}); with the logits read back and argmax on the host: ${hostTokPerS.toFixed(1)} tok/s (${hostPasses.map((p) => p.toFixed(1)).join(", ")})`,
    );
    const decode = {
      tokPerS,
      passesTokPerS: passes,
      greedyStepsPerCall: model.greedySteps,
      callsEnqueuedAhead: model.greedyAhead,
      readBeforeNextCallTokPerS: waitTokPerS,
      readBeforeNextCallPassesTokPerS: waitPasses,
      oneStepPerWaitTokPerS: stepTokPerS,
      oneStepPerWaitPassesTokPerS: stepPasses,
      hostArgmaxTokPerS: hostTokPerS,
      hostArgmaxPassesTokPerS: hostPasses,
      steps,
      bytesPerToken,
      rooflineTokPerS: roofline,
      fractionOfRoofline: tokPerS / roofline,
    };
    // The same greedy decode with each step its own graph (greedyGraphSteps 1) against greedySteps
    // steps a graph, alternating over three rounds on a second model beside the first (on the
    // same device: disposing either model disposes the device).
    const oneGraph = new KernelLlama(device, syntheticQ4(config), { format: "q4f16_1", greedyGraphSteps: 1 });
    oneGraph.decodeGreedy(1, 0, oneGraph.greedySteps + 1);
    const graphAB = { stepsAGraph: [] as number[], oneStepAGraph: [] as number[] };
    for (let round = 0; round < 3; round++) {
      graphAB.stepsAGraph.push(greedyDecodeTokPerS(model, steps));
      graphAB.oneStepAGraph.push(greedyDecodeTokPerS(oneGraph, steps));
    }
    console.log(
      `7B q4f16_1 decode, ${model.greedySteps} steps a graph: ${graphAB.stepsAGraph.map((x) => x.toFixed(1)).join(", ")} tok/s; one step a graph: ${graphAB.oneStepAGraph.map((x) => x.toFixed(1)).join(", ")}`,
    );
    // Prefill of a 512-token prompt through the GEMM kernels.
    const prefill = prefillTokPerS(model, PROMPT);
    console.log(
      `7B q4f16_1 prefill of 512 tokens: ${prefill.warm.toFixed(1)} tok/s (the first call, loading the kernels: ${prefill.first.toFixed(1)})`,
    );
    result.llama2_7b_q4 = {
      decode,
      greedyGraphStepsAB: graphAB,
      prefillTokPerS: prefill.warm,
      prefillFirstCallTokPerS: prefill.first,
    };
    device.dispose();
  }

  // 2b. Llama-2-7B shape, synthetic f16 weights (13.5 GB): decode and a 512-token prefill.
  if (sections.has("2b")) {
    const config = { ...LLAMA2_7B, contextLength: DECODE_CONTEXT };
    const device = createCudaDevice({
      runtime: rt,
      library: readLibrary(join(here, "lib/llama2-7b-f16-sm_90")),
    });
    const t0 = performance.now();
    const model = new KernelLlama(device, syntheticF16(config), { format: "f16" });
    console.log(`7B f16 weights made and uploaded in ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
    const steps = 128;
    model.decodeGreedy(1, 0, model.greedySteps + 1);
    const tokPerS = greedyDecodeTokPerS(model, steps);
    const bytesPerToken = decodeBytesPerToken(config, "f16", (steps + 1) / 2);
    const roofline = copy / bytesPerToken;
    const prefill = prefillTokPerS(model, PROMPT);
    console.log(
      `7B f16 decode: ${tokPerS.toFixed(1)} tok/s over ${steps} tokens; ${(bytesPerToken / 1e9).toFixed(2)} GB/token; roofline ${roofline.toFixed(0)} tok/s; ${((100 * tokPerS) / roofline).toFixed(1)}% of roofline; prefill of 512 tokens ${prefill.warm.toFixed(1)} tok/s (first call ${prefill.first.toFixed(1)})`,
    );
    result.llama2_7b_f16 = {
      decode: {
        tokPerS,
        steps,
        bytesPerToken,
        rooflineTokPerS: roofline,
        fractionOfRoofline: tokPerS / roofline,
      },
      prefillTokPerS: prefill.warm,
      prefillFirstCallTokPerS: prefill.first,
    };
    device.dispose();
  }

  // 2c. Decode GEMVs on tensor cores (q4_gemv_mma.ts: the CUDA default, RMSNorm folded into QKV
  //     and gate/up, RoPE its own launch), the same with each block's weights prefetched into L2
  //     before the wait for the previous kernel, the same with each RMSNorm its own launch, and
  //     the four-rows FMA kernels (q4_gemv_rows*.ts, RMSNorm folded into QKV); each with and
  //     without programmatic dependent launch; alternating in this call: 7B q4f16_1, the same
  //     greedy decode as section 2.
  if (sections.has("2c")) {
    const config = { ...LLAMA2_7B, contextLength: DECODE_CONTEXT };
    const kernels: { name: string; lib: string; choices: OpChoices }[] = [
      { name: "mma", lib: "lib/llama2-7b-q4-sm_90", choices: CUDA_OP_CHOICES },
      {
        name: "mmaPrefetch",
        lib: "lib/llama2-7b-q4-prefetch-sm_90",
        choices: { ...CUDA_OP_CHOICES, prefetchDecodeWeights: true },
      },
      {
        name: "mmaNormLaunch",
        lib: "lib/llama2-7b-q4-normlaunch-sm_90",
        choices: { ...CUDA_OP_CHOICES, foldDecodeNorms: false },
      },
      {
        name: "rows",
        lib: "lib/llama2-7b-q4-rowsgemv-sm_90",
        choices: { ...CUDA_OP_CHOICES, decodeGemv: "rows" },
      },
      ...abLibraries,
    ];
    const variants = kernels.flatMap((k) =>
      [false, true].map((programmatic) => ({
        ...k,
        programmatic,
        name: `${k.name}${programmatic ? "+pdl" : ""}`,
      })),
    );
    const ab: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.name, []]));
    for (let round = 0; round < 2; round++)
      for (const v of variants) {
        const device = createCudaDevice({
          runtime: rt,
          library: readLibrary(join(here, v.lib)),
          programmatic: v.programmatic,
        });
        const model = new KernelLlama(device, syntheticQ4(config), {
          format: "q4f16_1",
          opChoices: v.choices,
        });
        model.decodeGreedy(1, 0, model.greedySteps + 1);
        ab[v.name]!.push(greedyDecodeTokPerS(model, Number(values.steps)));
        device.dispose();
      }
    console.log(
      `7B q4f16_1 decode A/B (tok/s): ${Object.entries(ab)
        .map(([k, xs]) => `${k} ${xs.map((x) => x.toFixed(1)).join(", ")}`)
        .join("; ")}`,
    );
    result.decodeGemvAB = ab;
  }

  // 2p. Prefill A/B: the 512-token prefill with the default library and each --ab library,
  //     alternating over three rounds (each round a fresh device and model per library).
  if (sections.has("2p")) {
    const config = { ...LLAMA2_7B, contextLength: DECODE_CONTEXT };
    const kernels = [defaultLibrary, ...abLibraries];
    const ab: Record<string, number[]> = Object.fromEntries(kernels.map((k) => [k.name, []]));
    // Each library's last-token logits against the first's (the default): the largest difference
    // over the largest logit, so that a faster variant is also seen to compute the same thing.
    let reference: Float32Array | undefined;
    const logitsVsDefault: Record<string, number> = {};
    for (let round = 0; round < 3; round++)
      for (const k of kernels) {
        const device = createCudaDevice({ runtime: rt, library: readLibrary(join(here, k.lib)) });
        const model = new KernelLlama(device, syntheticQ4(config), {
          format: "q4f16_1",
          opChoices: k.choices,
        });
        ab[k.name]!.push(prefillTokPerS(model, PROMPT).warm);
        if (round === 0) {
          model.reset();
          const logits = Float32Array.from(model.prefill(PROMPT, 0));
          reference ??= logits;
          let [diff, top] = [0, 0];
          for (let i = 0; i < logits.length; i++) {
            diff = Math.max(diff, Math.abs(logits[i]! - reference[i]!));
            top = Math.max(top, Math.abs(reference[i]!));
          }
          logitsVsDefault[k.name] = diff / top;
        }
        device.dispose();
      }
    console.log(
      `7B q4f16_1 prefill A/B, 512 tokens (tok/s): ${Object.entries(ab)
        .map(([k, xs]) => `${k} ${xs.map((x) => x.toFixed(1)).join(", ")}`)
        .join(
          "; ",
        )}; last-token logits against ${kernels[0]!.name}'s (largest difference / largest logit): ${Object.entries(
        logitsVsDefault,
      )
        .map(([k, e]) => `${k} ${e.toExponential(2)}`)
        .join(", ")}`,
    );
    result.prefillAB = ab;
    result.prefillABLogitsVsDefault = logitsVsDefault;
  }

  // 3. Where a 7B decode step's time goes: each launch timed alone (after an L2 flush), at
  //    position 256, with its bytes (its tensors' sizes; for attention the len positions it reads)
  //    over the copy bandwidth; then the same for a 512-token prefill, and the prefill with each
  //    launch timed in the model's order (no flush).
  if (sections.has("3")) {
    const config = { ...LLAMA2_7B, contextLength: DECODE_CONTEXT };
    const device = createCudaDevice({
      runtime: rt,
      library: readLibrary(join(here, "lib/llama2-7b-q4-sm_90")),
      profile: true,
    });
    const model = new KernelLlama(device, syntheticQ4(config), { format: "q4f16_1", recordDecode: false });
    const position = 256;
    model.decode(1, position);
    profileOf(device);
    model.decode(1, position);
    const kvRow = config.nKvHeads * headDim(config) * 2;
    const table = [...profileOf(device)].map(([key, v]) => {
      const op = key.split("_")[0]!;
      // The caches are passed whole; a step reads len = position + 1 of their rows.
      const bytes =
        op.startsWith("attnsplit") || op.startsWith("attnwarps")
          ? v.launches * (2 * (position + 1) * kvRow + config.nHeads * headDim(config) * 2)
          : v.bytes;
      const us = (v.ms * 1e3) / v.launches;
      return {
        op,
        msPerStep: v.ms,
        launchesPerStep: v.launches,
        usPerLaunch: us,
        bytesPerLaunch: bytes / v.launches,
        fractionOfCopy: bytes / (v.ms * 1e-3) / copy,
      };
    });
    table.sort((a, b) => b.msPerStep - a.msPerStep);
    const total = table.reduce((a, t) => a + t.msPerStep, 0);
    console.log(
      `7B decode step at position ${position}: ${total.toFixed(3)} ms of kernel time (each launch timed alone)`,
    );
    for (const t of table)
      console.log(
        `  ${t.op.padEnd(14)} ${t.msPerStep.toFixed(3)} ms  ${t.launchesPerStep} x ${t.usPerLaunch.toFixed(2)} us  ${(t.bytesPerLaunch / 1e6).toFixed(2)} MB  ${(100 * t.fractionOfCopy).toFixed(0)}% of copy`,
      );
    result.profile7b = { position, kernelMsPerStep: total, ops: table };
    // The same for a 512-token prefill (64-token chunks through the GEMMs, then the last token's
    // decode step): every op the model runs, each with its tensors' bytes over its time; then for
    // each --ab library (a fresh profiling device and model each).
    model.reset();
    result.profile7bPrefill = prefillProfile(
      model,
      device,
      "default, each launch alone after an L2 flush",
      copy,
    );
    device.dispose();
    // A library's prefill on a profiling device of its own (in order, after an untimed prefill
    // that loads the kernels, as the first launch of each would otherwise pay for it).
    const profiledPrefill = (k: (typeof abLibraries)[number], mode: "flushed" | "inOrder") => {
      const d = createCudaDevice({ runtime: rt, library: readLibrary(join(here, k.lib)), profile: mode });
      const m = new KernelLlama(d, syntheticQ4(config), {
        format: "q4f16_1",
        recordDecode: false,
        opChoices: k.choices,
      });
      if (mode === "inOrder") {
        m.prefill(PROMPT, 0);
        profileOf(d);
        m.reset();
      }
      const label = mode === "inOrder" ? "launches timed in order" : "each launch alone after an L2 flush";
      const out = prefillProfile(m, d, `${k.name}, ${label}`, copy);
      d.dispose();
      return out;
    };
    if (abLibraries.length > 0)
      result.profile7bPrefillAB = Object.fromEntries(
        abLibraries.map((k) => [k.name, profiledPrefill(k, "flushed")]),
      );
    // The prefill again with each launch timed in the order the model issues it (profile
    // "inOrder": nothing flushed or replayed, so each launch finds the L2 contents its
    // predecessors leave, as in an unprofiled prefill), for the CUDA library and each --ab one.
    result.profile7bPrefillInOrder = Object.fromEntries(
      [defaultLibrary, ...abLibraries].map((k) => [k.name, profiledPrefill(k, "inOrder")]),
    );
  }
  // 4. What each decode op costs inside the step's graph, where launches overlap (programmatic
  //    dependent launch) and nothing is flushed: the greedy step's graph replayed back to back from
  //    position 156 (each replay advances the position: 200 of them average 256; with the
  //    recordToken op left out it stays at 157) with all of that op's launches left out, against the
  //    whole graph, alternating in one process on one model (the values computed then are not the
  //    model's; the time hardly depends on them). For the CUDA library and each --ab one.
  if (sections.has("4")) {
    const config = { ...LLAMA2_7B, contextLength: DECODE_CONTEXT };
    const libraries = [
      { name: "mma", lib: "lib/llama2-7b-q4-sm_90", choices: CUDA_OP_CHOICES },
      ...abLibraries,
    ];
    const position = 156;
    const reps = 200;
    result.decodeOmissions = {};
    for (const v of libraries) {
      const inner = createCudaDevice({ runtime: rt, library: readLibrary(join(here, v.lib)) });
      const { device, skip, launches, replayed } = omittable(inner);
      const model = new KernelLlama(device, syntheticQ4(config), { format: "q4f16_1", opChoices: v.choices });
      model.decodeGreedy(1, position);
      const roles = values["whole-steps"] ? [] : [...launches.keys()];
      const time: Record<string, number[]> = Object.fromEntries(["none", ...roles].map((r) => [r, []]));
      for (let round = 0; round < 3; round++)
        for (const r of ["none", ...roles]) {
          skip.clear();
          if (r !== "none") skip.add(r);
          model.decodeGreedy(1, position); // records this omission's graph (and warms it up)
          const graph = replayed()!;
          const t0 = performance.now();
          for (let i = 0; i < reps; i++) graph.replay();
          device.sync();
          time[r]!.push(((performance.now() - t0) * 1e3) / reps);
        }
      const best = (xs: number[]) => Math.min(...xs);
      const whole = best(time.none!);
      const ops = roles
        .map((r) => ({
          op: r,
          launchesPerStep: launches.get(r)!,
          usPerStep: whole - best(time[r]!),
          usPerLaunch: (whole - best(time[r]!)) / launches.get(r)!,
          stepUsWithout: time[r]!,
        }))
        .sort((a, b) => b.usPerStep - a.usPerStep);
      console.log(
        `7B q4f16_1 decode step's graph from position ${position} (${v.name}): ${whole.toFixed(1)} us (best of 3 x ${reps} replays: ${time.none!.map((t) => t.toFixed(1)).join(", ")}); without each op:`,
      );
      for (const o of ops)
        console.log(
          `  ${o.op.padEnd(14)} ${o.usPerStep.toFixed(1).padStart(7)} us/step  ${o.launchesPerStep} x ${o.usPerLaunch.toFixed(2)} us`,
        );
      (result.decodeOmissions as Record<string, unknown>)[v.name] = {
        position,
        stepUs: whole,
        stepUsRuns: time.none,
        ops,
      };
      device.dispose();
    }
  }
  writeFileSync(
    join(values.out!, "decode.json"),
    JSON.stringify(
      { command: ["bash bench/device/run.sh decode", ...runnerArgs()].join(" "), ...result, failed },
      null,
      1,
    ),
  );
  rt.dispose();
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`decode: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(2);
  },
);

/**
 * A device whose recordings leave out the launches of the ops in `skip` (by role: an op key's part
 * before "_"), recorded again whenever `skip` changes; `launches` counts each role's launches in
 * the first recording; `replayed` is the recording last replayed.
 */
/**
 * A 512-token prefill on a profiling device: each op's kernel time, launches and bytes (over the
 * copy bandwidth, bytes/s), printed.
 */
function prefillProfile(model: KernelLlama, device: Device, label: string, copy: number) {
  model.prefill(PROMPT, 0);
  const prefillOps = [...profileOf(device)].map(([key, v]) => ({
    op: key.split("_")[0]!,
    ms: v.ms,
    launches: v.launches,
    usPerLaunch: (v.ms * 1e3) / v.launches,
    bytesPerLaunch: v.bytes / v.launches,
    fractionOfCopy: v.bytes / (v.ms * 1e-3) / copy,
  }));
  prefillOps.sort((a, b) => b.ms - a.ms);
  const prefillTotal = prefillOps.reduce((a, t) => a + t.ms, 0);
  console.log(`7B prefill of 512 tokens (${label}): ${prefillTotal.toFixed(1)} ms of kernel time`);
  for (const t of prefillOps)
    console.log(
      `  ${t.op.padEnd(14)} ${t.ms.toFixed(3)} ms  ${t.launches} x ${t.usPerLaunch.toFixed(2)} us  ${(t.bytesPerLaunch / 1e6).toFixed(2)} MB  ${(100 * t.fractionOfCopy).toFixed(0)}% of copy`,
    );
  return { tokens: 512, kernelMs: prefillTotal, ops: prefillOps };
}

function omittable(inner: Device): {
  device: Device;
  skip: Set<string>;
  launches: Map<string, number>;
  replayed: () => Recording | undefined;
} {
  const skip = new Set<string>();
  let last: Recording | undefined;
  const launches = new Map<string, number>();
  let counting = true;
  const role = (op: Op) => op.spec.key.split("_")[0]!;
  const device: Device = {
    ...inner,
    run(op, args) {
      if (counting) launches.set(role(op), (launches.get(role(op)) ?? 0) + 1);
      if (!skip.has(role(op))) inner.run(op, args);
    },
    record(body): Recording {
      const recordings = new Map<string, Recording>();
      return {
        replay() {
          const key = [...skip].sort().join(",");
          let r = recordings.get(key);
          if (!r) {
            r = inner.record(body);
            counting = false;
            recordings.set(key, r);
          }
          last = r;
          r.replay();
        },
        dispose() {
          for (const r of recordings.values()) r.dispose();
        },
      };
    },
  };
  return { device, skip, launches, replayed: () => last };
}

/** This runner's arguments but --out, for the results' command line. */
function runnerArgs(): string[] {
  const args = process.argv.slice(2);
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--out") i++;
    else if (!args[i]!.startsWith("--out="))
      out.push(/[^\w=,./:-]/.test(args[i]!) ? `'${args[i]}'` : args[i]!);
  }
  return out;
}
