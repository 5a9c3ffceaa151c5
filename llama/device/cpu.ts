/** The CPU device: NDArrays and kernels compiled to JavaScript, run as they are launched. */
import type { DType } from "../../dsl/dtypes.ts";
import { zeros, type NDArray, type Storage } from "../../dsl/ndarray.ts";
import { compileCpu, type CpuKernel } from "../../backends/cpu/exec.ts";
import { specializedFunc } from "./prepare.ts";
import type { Device, DeviceTensor, Op, OpArgs, OpSpec, Recording } from "./types.ts";

interface CpuOp extends Op {
  readonly run: CpuKernel;
}

export function createCpuDevice(opts: { boundsCheck?: boolean } = {}): Device {
  const ops = new Map<string, CpuOp>();
  let recording: (() => void)[] | undefined;
  const asArray = (t: DeviceTensor): NDArray => t as NDArray;
  return {
    kind: "cpu",
    name: "cpu (JavaScript)",
    tensor: (dtype: DType, shape: readonly number[]) => zeros(dtype, shape),
    view(t, shape, offset = 0) {
      const a = asArray(t);
      const n = shape.reduce((x, y) => x * y, 1);
      if (offset < 0 || offset + n > a.data.length)
        throw new RangeError(
          `tkc: a view of ${n} elements at ${offset} exceeds a tensor of ${a.data.length}`,
        );
      return { dtype: a.dtype, shape: [...shape], data: a.data.subarray(offset, offset + n) as Storage };
    },
    write(t, data, offset = 0) {
      const a = asArray(t);
      if (offset + data.length > a.data.length)
        throw new RangeError(
          `tkc: writing ${data.length} elements at ${offset} into a tensor of ${a.data.length}`,
        );
      (a.data as Storage).set(data as never, offset);
    },
    read: (t) => asArray(t).data,
    readLater(t) {
      const data = asArray(t).data.slice();
      return () => data;
    },
    op(spec: OpSpec) {
      let op = ops.get(spec.key);
      if (!op) {
        op = { spec, run: compileCpu(specializedFunc(spec), { boundsCheck: opts.boundsCheck ?? false }) };
        ops.set(spec.key, op);
      }
      return op;
    },
    run(op, args: OpArgs) {
      const launch = () => (op as CpuOp).run(args as Record<string, NDArray | number>);
      if (recording) recording.push(launch);
      else launch();
    },
    record(body): Recording {
      const list: (() => void)[] = [];
      recording = list;
      try {
        body();
      } finally {
        recording = undefined;
      }
      return { replay: () => list.forEach((f) => f()), dispose: () => void (list.length = 0) };
    },
    sync() {},
    dispose() {
      ops.clear();
    },
  };
}
