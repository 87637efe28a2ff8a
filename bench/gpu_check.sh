#!/usr/bin/env bash
# One short run on a lent GPU machine (the `device` tool): GPU inference checks, then the GPU
# forward and the end-to-end pipeline measured, everything written under $OUT (or ./gpu-check).
#
#   bash bench/gpu_check.sh            # about 5 minutes; needs the venv (.venv) or torch+timm+open_clip
#
# 1. predict on cuda: the zoo's logits on the GPU (bf16 autocast, as the store records them) agree
#    with the CPU's fp32 record to bf16 precision, and a second call is a store hit;
#    the tensor cache on a JPEG folder gives the same logits as decoding per model.
# 2. bench_throughput --jpeg on cuda: bare forward against the full pipeline (decode in
#    DataLoader workers, or the tensor cache) for ViT-B-32 and RN50 at random weights.
# 3. the matmul peak in bf16 and the forward of ViT-B-32 in images/s: the measured figure that
#    replaces bench_ray's ASSUMED --gpu-tflops (printed as the number to pass).
set -u
OUT=${OUT:-$PWD/gpu-check}
mkdir -p "$OUT"
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONPATH=$PWD/lib${PYTHONPATH:+:$PYTHONPATH}
export NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR"
export CLIPSAFETY_CACHE=$OUT/cache CLIPSAFETY_STORE=$OUT/store
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }

log "device: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
log "1. GPU inference checks"
timeout 240 "$PY" - <<'EOF' 2>&1 | tee -a "$OUT/summary.txt"
import tempfile, numpy as np, torch
from pathlib import Path
assert torch.cuda.is_available(), "no CUDA GPU"
from clipsafety.infer import predict
with tempfile.TemporaryDirectory() as t:
    for mid in ["zoo:clip-vit-wit-10k", "zoo:sup-resnet-s-labelled-30k"]:
        cpu = predict(mid, "synth:id-test", store=Path(t) / "cpu", device="cpu", progress=False)
        gpu = predict(mid, "synth:id-test", store=Path(t) / "gpu", device="cuda", progress=False)
        hit = predict(mid, "synth:id-test", store=Path(t) / "gpu", device="cuda", progress=False)
        err = float(np.abs(gpu.logits - cpu.logits).max() / (np.abs(cpu.logits).max() + 1e-9))
        agree = float((gpu.logits.argmax(1) == cpu.logits.argmax(1)).mean())
        print(f"{mid}: precision {gpu.manifest['precision']}, max relative error {err:.4f}, "
              f"top-1 agreement {agree:.4f}, second call a hit: {hit.cache_hit}, "
              f"{gpu.manifest['images_per_second']} images/s")
        assert gpu.manifest["precision"] == "bf16-autocast" and hit.cache_hit and agree > 0.97
    import sys; sys.path.insert(0, "bench")
    from bench_throughput import make_jpegs
    make_jpegs(Path(t) / "jpegs", 64)
    a = predict("timm:resnet18@random", f"folder:{Path(t) / 'jpegs'}", store=Path(t) / "a",
                device="cuda", progress=False)
    b = predict("timm:resnet18@random", f"folder:{Path(t) / 'jpegs'}", store=Path(t) / "b",
                device="cuda", progress=False, tensor_cache=False)
    print(f"tensor cache on cuda: logits equal to per-model decoding: {np.array_equal(a.logits, b.logits)}")
print("GPU inference checks passed")
EOF
log "2. pipeline against the bare forward (bench_throughput --jpeg, cuda)"
for m in openclip:ViT-B-32@random openclip:RN50@random; do
  timeout 150 "$PY" bench/bench_throughput.py --jpeg --device cuda --model "$m" --n 2048 \
      --batch-size 256 --rounds 2 --no-offline-check 2>&1 | tail -6 | tee -a "$OUT/summary.txt"
done
log "3. bf16 matmul peak and the ViT-B-32 forward (for bench_ray --gpu-tflops)"
timeout 90 "$PY" - <<'EOF' 2>&1 | tee -a "$OUT/summary.txt"
import time, torch
from torch.utils.flop_counter import FlopCounterMode
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
torch.mm(a, a); torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(20):
    torch.mm(a, a)
torch.cuda.synchronize()
print(f"bf16 matmul peak: {2 * 8192 ** 3 * 20 / (time.perf_counter() - t) / 1e12:.0f} TFLOP/s")
import clipsafety
m = clipsafety.load("openclip:ViT-B-32@random", device="cuda").module.eval()
x = torch.randn(512, 3, 224, 224, device="cuda")
with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16), FlopCounterMode(display=False) as fc:
    m(x[:8])
flops = fc.get_total_flops() / 8
with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
    m(x); torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(10):
        m(x)
    torch.cuda.synchronize()
ips = 10 * len(x) / (time.perf_counter() - t)
print(f"ViT-B-32 forward: {ips:.0f} images/s, {flops / 1e9:.2f} GFLOP/image -> effective "
      f"{ips * flops / 1e12:.1f} TFLOP/s: pass --gpu-tflops {ips * flops / 1e12:.0f} to bench/bench_ray.py")
EOF
log "done; summary in $OUT/summary.txt"
