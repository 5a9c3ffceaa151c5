/**
 * Where a KernelLlama's weights and KV cache live on its device: each uploaded once in its format
 * (q4f16_1 codes and scales, f16 or f32), a tensor of their own each, or with sharedLayerBuffers
 * each per-layer kind (a matrix's codes or scales, a norm's weights, the key or value cache) in one
 * tensor for all layers, a layer's a view at a multiple of VIEW_ALIGN_BYTES.
 */
import { bytesOf, toF16Array, type DType } from "../dsl/dtypes.ts";
import { sizeOf } from "../dsl/ndarray.ts";
import { headDim, type LlamaConfig } from "./config.ts";
import { viewAlignedBytes, type Device, type DeviceTensor } from "./device/types.ts";
import type { Layer, Matrix } from "./decode-launches.ts";
import type { WeightFormat } from "./ops.ts";
import { matrixShape, type MatrixName, type WeightSource } from "./weights/source.ts";

/** Per-layer weight matrices (the others, the LM head and the embedding, have one instance). */
const LAYER_MATRICES: readonly MatrixName[] = ["qkv", "o", "gateUp", "down"];

/** A model's weights and caches on its device. */
export interface PlacedWeights {
  readonly layers: Layer[];
  readonly finalNorm: DeviceTensor;
  readonly lmHead: Matrix;
  /** q4f16_1: the embedding table on the device (its rows dequantized by a kernel). */
  readonly embedQ4?: Matrix;
  /** f16/f32: the embedding table on the host (a row written a step). */
  readonly embedHost?: Float32Array;
}

/** Uploads `src`'s weights in `format` and allocates the KV cache (config.contextLength positions). */
export function placeWeights(
  device: Device,
  src: WeightSource,
  config: LlamaConfig,
  format: WeightFormat,
  sharedLayerBuffers: boolean,
): PlacedWeights {
  const c = config;
  const actDtype = format === "f32" ? "f32" : "f16";
  /** With sharedLayerBuffers: each per-layer tensor kind's tensor and its elements a layer. */
  const slabs = new Map<string, { t: DeviceTensor; stride: number }>();

  /** Writes `x` into `t` (an f16 or f32 tensor) and returns it. */
  const upload = (t: DeviceTensor, x: Float32Array): DeviceTensor => {
    device.write(t, t.dtype === "f16" ? toF16Array(x) : x);
    return t;
  };

  /**
   * Layer `layer`'s tensor of a per-layer kind: a tensor of its own, or with sharedLayerBuffers a
   * view of the kind's one tensor for all layers.
   */
  const layerTensor = (kind: string, dtype: DType, shape: readonly number[], layer: number): DeviceTensor => {
    if (!sharedLayerBuffers) return device.tensor(dtype, shape);
    let slab = slabs.get(kind);
    if (!slab) {
      const bytes = sizeOf(shape) * bytesOf(dtype);
      const stride = viewAlignedBytes(bytes) / bytesOf(dtype);
      const total = c.nLayers * stride;
      let t: DeviceTensor;
      try {
        t = device.tensor(dtype, [total]);
      } catch (e) {
        throw new Error(
          `tkc: sharedLayerBuffers: the ${kind} tensors of all ${c.nLayers} layers (${total * bytesOf(dtype)} bytes) do not fit one buffer on ${device.name}; build the model without sharedLayerBuffers (${(e as Error).message})`,
        );
      }
      slab = { t, stride };
      slabs.set(kind, slab);
    }
    return device.view(slab.t, shape, layer * slab.stride);
  };

  const matrix = (name: MatrixName, layer: number): Matrix => {
    const [n, k] = matrixShape(c, name);
    const tensor = (part: string, dtype: DType, shape: number[]) =>
      LAYER_MATRICES.includes(name)
        ? layerTensor(`${name}.${part}`, dtype, shape, layer)
        : device.tensor(dtype, shape);
    if (format === "q4f16_1") {
      const q = src.matrixQ4(name, layer);
      const packed = tensor("packed", "u32", [n, k / 8]);
      const scales = tensor("scales", "f16", [n, k / 32]);
      device.write(packed, q.packed);
      device.write(scales, q.scales);
      return { packed, scales, n, k };
    }
    if (format === "f16" && src.matrixF16) {
      const bits = src.matrixF16(name, layer);
      if (bits.length !== n * k)
        throw new Error(`tkc: the ${name} weight of ${bits.length} elements is not [${n}, ${k}]`);
      const t = tensor("w", "f16", [n, k]);
      device.write(t, bits);
      return { w: t, n, k };
    }
    const w = src.matrixF32(name, layer);
    if (w.length !== n * k)
      throw new Error(`tkc: the ${name} weight of ${w.length} elements is not [${n}, ${k}]`);
    return { w: upload(tensor("w", format === "f16" ? "f16" : "f32", [n, k]), w), n, k };
  };

  const layerVec = (name: "attnNorm" | "ffnNorm", i: number) => {
    const x = src.vector(name, i);
    return upload(layerTensor(name, actDtype, [x.length], i), x);
  };
  const cacheShape = [c.contextLength, c.nKvHeads, headDim(c)];
  const layers: Layer[] = [];
  for (let i = 0; i < c.nLayers; i++) {
    layers.push({
      attnNorm: layerVec("attnNorm", i),
      ffnNorm: layerVec("ffnNorm", i),
      qkv: matrix("qkv", i),
      o: matrix("o", i),
      gateUp: matrix("gateUp", i),
      down: matrix("down", i),
      kCache: layerTensor("kCache", actDtype, cacheShape, i),
      vCache: layerTensor("vCache", actDtype, cacheShape, i),
    });
  }
  const finalNormValues = src.vector("finalNorm", 0);
  return {
    layers,
    finalNorm: upload(device.tensor(actDtype, [finalNormValues.length]), finalNormValues),
    lmHead: matrix("lmHead", 0),
    ...(format === "q4f16_1" ? { embedQ4: matrix("embed", 0) } : { embedHost: src.matrixF32("embed", 0) }),
  };
}
