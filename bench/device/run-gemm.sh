#!/usr/bin/env bash
# Run on the GPU machine (after bash bench/device/prepare.sh here; carry .device):
#   bash bench/device/run-gemm.sh [gemm.ts options: --reps N, --only TEXT]
# 1. PyTorch's dense f16 matmul at the same shapes (torch.nn.functional.linear: x [M, K] times
#    W [N, K] transposed, cuBLAS tensor cores), timed with CUDA events over a captured graph of
#    launches, into $OUT/torch-gemm.json: the reference tkc's GEMMs are compared with.
# 2. bench/device/gemm.ts (through run.sh): each tkc GEMM checked against the CPU, then timed;
#    $OUT/gemm.json holds TFLOP/s and the fraction of PyTorch's f16 TFLOP/s for each.
# Shapes: Llama-2-7B prefill, M = 512 tokens, (N, K) = (4096, 4096), (11008, 4096), (4096, 11008).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-bench/out}
mkdir -p "$OUT"

python3 - > "$OUT/torch-gemm.json" 2> "$OUT/torch-gemm.log" << 'PY'
import json
try:
    import torch
    import torch.nn.functional as F
    if not torch.cuda.is_available():
        raise RuntimeError("torch sees no CUDA device")
    shapes = [(512, 4096, 4096), (512, 11008, 4096), (512, 4096, 11008)]
    reps = 50
    results = []
    for m, n, k in shapes:
        x = torch.randn(m, k, device="cuda", dtype=torch.float16)
        w = torch.randn(n, k, device="cuda", dtype=torch.float16)
        y = torch.empty(m, n, device="cuda", dtype=torch.float16)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm up (cuBLAS picks its kernel) off the capture stream
            for _ in range(5):
                torch.matmul(x, w.t(), out=y)
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        graphed = True
        try:
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                for _ in range(reps):
                    torch.matmul(x, w.t(), out=y)
            run = g.replay
        except Exception:  # graphs unavailable: back-to-back launches instead
            graphed = False
            def run():
                for _ in range(reps):
                    torch.matmul(x, w.t(), out=y)
        run()
        torch.cuda.synchronize()
        e0 = torch.cuda.Event(enable_timing=True)
        e1 = torch.cuda.Event(enable_timing=True)
        best = float("inf")
        for _ in range(3):
            e0.record()
            run()
            e1.record()
            e1.synchronize()
            best = min(best, e0.elapsed_time(e1) * 1e3 / reps)
        ref = F.linear(x[:4].float(), w.float())
        err = (y[:4].float() - ref).abs().max().item() / max(ref.abs().max().item(), 1e-30)
        results.append(dict(m=m, n=n, k=k, us=best, tflops=2 * m * n * k / (best * 1e-6) / 1e12,
                            graphed=graphed, relErr=err))
    print(json.dumps(dict(device=torch.cuda.get_device_name(), torch=torch.__version__,
                          cuda=torch.version.cuda, results=results)))
except Exception as e:  # the tkc runner still runs, without the comparison
    print(json.dumps(dict(error=f"{type(e).__name__}: {e}")))
PY
echo "run-gemm: torch reference: $(head -c 400 "$OUT/torch-gemm.json")"

OUT="$OUT" bash bench/device/run.sh gemm --torch "$OUT/torch-gemm.json" "$@"
