"""Speed and memory of vnn_nbdev's variational convolutions (LeNet5) against plain torch, side by side in one process.

    python bench/bench_conv.py                 # CPU, one thread, batch 64, 8x8 and 28x28 inputs, the 10,000 x 64 predictive
    python bench/bench_conv.py --device cuda   # the same on a GPU (synchronised timing, CUDA peak memory)
    python bench/bench_conv.py --quick         # a fast smoke run

Two benchmarks:

* train step: `models.LeNet5` (muP, a covariance on the first and the last layer: full-rank factorized, low-rank 32,
  Kronecker, diagonal; and none) against the same deterministic LeNet-5 of `nn.Conv2d`/`nn.Linear` with
  `torch.optim.SGD(momentum=0.9)`, one weight draw per step, cross-entropy, batch 64, for 8x8 inputs (`in_size=8`)
  and 28x28 inputs. The "floor" is the factorized step written with raw tensor ops (no modules).
* predictive: 10,000 images x 64 weight samples (28x28, factorized first+last) under `torch.no_grad()`, in batches of
  `--image-batch` images, each batch `model(x, sample_shape=(64,))` (bnn.Sequential chunks the samples); peak memory
  measured in a fresh process (CPU: growth of the peak RSS; CUDA: peak allocated), against the deterministic
  network called 64 times per batch.

Timing as in bench_layers.py: interleaved repeats, median; CPU clock = thread CPU time. Results: bench/results/conv_<device>.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from bench_layers import Clock, interleaved, summarize, print_table, peak_rss_reset, _status_kib  # noqa: E402
from vnn_nbdev import bnn, models  # noqa: E402

COVS = {"factorized": lambda: bnn.params.FactorizedCovariance(), "lowrank32": lambda: bnn.params.LowRankCovariance(32),
        "kronecker": lambda: bnn.params.KroneckerCovariance(), "diagonal": lambda: bnn.params.DiagonalCovariance(),
        "none": lambda: None}


def bnn_lenet(in_size: int, cov: str = "factorized", device="cpu") -> nn.Module:
    return models.LeNet5(cov=COVS[cov](), in_size=in_size, parametrization=bnn.params.MUP()).to(device)


def det_lenet(in_size: int, device="cpu") -> nn.Module:
    "The same network with torch's layers (LeNet5's layout for `in_size`)."
    ref = models.LeNet5(in_size=in_size)
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5, padding=ref.conv2.padding), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(ref.fc1.in_features, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10)).to(device)


def floor_forward(model):
    "The factorized Bayesian forward of `model` with raw tensor ops: one draw of conv1 and fc3, then the network."
    c1, c2, f1, f2, f3 = model.conv1, model.conv2, model.fc1, model.fc2, model.fc3

    def draw(layer):
        fw, fb = (layer.cov.factor_parameters_by_name()[n][0] for n in ("weight", "bias"))
        z = torch.randn(1, layer.cov.rank, dtype=fw.dtype, device=fw.device)
        return (torch.addmm(layer.weight.view(1, -1), z, fw).view(layer.weight.shape),
                torch.addmm(layer.bias.view(1, -1), z, fb).view(layer.bias.shape))

    def forward(x):
        w1, b1 = draw(c1)
        h = F.max_pool2d(F.relu(F.conv2d(x, w1, b1, padding=2)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, c2.weight, c2.bias, padding=c2.padding)), 2).flatten(1)
        h = F.relu(F.linear(F.relu(F.linear(h, f1.weight, f1.bias)), f2.weight, f2.bias))
        w3, b3 = draw(f3)
        return F.linear(h, w3, b3)
    return forward


def make_trainer(params, forward, x, y):
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)

    def step():
        optimizer.zero_grad()
        F.cross_entropy(forward(x), y).backward()
        optimizer.step()
    return step


def bench_train_step(in_size: int, device: str, repeats: int, steps: int, clock: Clock, batch: int = 64) -> dict:
    torch.manual_seed(0)
    x, y = torch.randn(batch, 1, in_size, in_size, device=device), torch.randint(0, 10, (batch,), device=device)
    det = det_lenet(in_size, device)
    trainers = {"deterministic nn.Sequential LeNet-5": make_trainer(det.parameters(), det, x, y)}
    for cov in ("factorized", "lowrank32", "kronecker", "diagonal", "none"):
        m = bnn_lenet(in_size, cov, device)
        trainers[f"bnn LeNet5, {cov} first+last"] = make_trainer(m.parameters_and_lrs(lr=0.01), m, x, y)
    floor = bnn_lenet(in_size, "factorized", device)
    trainers["floor: raw ops, factorized first+last"] = make_trainer(floor.parameters_and_lrs(lr=0.01), floor_forward(floor), x, y)
    for step in trainers.values():
        for _ in range(5): step()

    def block(step):
        def run():
            for _ in range(steps): step()
        return run
    times = interleaved({n: block(s) for n, s in trainers.items()}, repeats, clock, per_call=steps)
    return {"in_size": in_size, "batch": batch, "steps_per_repeat": steps, "repeats": repeats,
            "variants": summarize(times, "deterministic nn.Sequential LeNet-5")}


def predict(model, images, n_samples, image_batch, sample_shape=True):
    "The predictive logits (n_samples, N, 10), computed `image_batch` images at a time into one output tensor."
    out = torch.empty(n_samples, len(images), 10, device=images.device)
    with torch.no_grad():
        for start in range(0, len(images), image_batch):
            x = images[start:start + image_batch]
            if sample_shape: out[:, start:start + image_batch] = model(x, sample_shape=(n_samples,))
            else:
                for s in range(n_samples): out[s, start:start + image_batch] = model(x)
    return out


def bench_predictive(n_images, n_samples, image_batch, device, repeats, clock) -> dict:
    torch.manual_seed(0)
    images = torch.randn(n_images, 1, 28, 28, device=device)
    model, det = bnn_lenet(28, "factorized", device).eval(), det_lenet(28, device).eval()
    times = interleaved({f"deterministic x {n_samples} loop": lambda: predict(det, images, n_samples, image_batch, False),
                         f"bnn sample_shape=({n_samples},)": lambda: predict(model, images, n_samples, image_batch)},
                        repeats, clock)
    import subprocess
    cmd = [sys.executable, __file__, "--memory-probe", f"{n_images},{n_samples},{image_batch}", "--device", device]
    memory = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    return {"images": n_images, "samples": n_samples, "image_batch": image_batch, "repeats": repeats,
            "unchunked_conv1_activation_bytes": n_samples * n_images * 6 * 28 * 28 * 4,
            "variants": summarize(times, f"deterministic x {n_samples} loop"), "memory": memory}


def memory_probe(spec: str, device: str):
    "Child process: print the peak memory of one predictive as JSON."
    n_images, n_samples, image_batch = map(int, spec.split(","))
    torch.manual_seed(0)
    images = torch.randn(n_images, 1, 28, 28, device=device)
    model = bnn_lenet(28, "factorized", device).eval()
    predict(model, images[:8], 2, 8)                                      # warm up torch itself
    if device.startswith("cuda"):
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
        out = predict(model, images, n_samples, image_batch); torch.cuda.synchronize()
        memory = {"peak_bytes_above_start": torch.cuda.max_memory_allocated() - base, "how": "CUDA peak allocated"}
    else:
        rss = peak_rss_reset()
        out = predict(model, images, n_samples, image_batch)
        memory = {"peak_bytes_above_start": _status_kib("VmHWM") * 1024 - rss, "how": "growth of peak RSS, fresh process"}
    memory["output_bytes"] = out.numel() * out.element_size()
    print(json.dumps(memory))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--image-batch", type=int, default=500)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--skip-predictive", action="store_true")
    p.add_argument("--out", default=None)
    p.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.memory_probe: return memory_probe(args.memory_probe, args.device)
    clock, repeats = Clock(args.device), 2 if args.quick else args.repeats
    info = {"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else None,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    print(json.dumps(info))
    results = {"info": info, "train_step": []}
    for in_size in (8, 28):
        steps = 50 if clock.cuda else (20 if in_size == 8 else 5)
        r = bench_train_step(in_size, args.device, repeats, steps, clock)
        results["train_step"].append(r)
        print_table(f"train step (time per step), LeNet5 {in_size}x{in_size}, batch 64", r["variants"])
    if args.skip_predictive: n_images = 0
    else: n_images = 1_000 if args.quick else 10_000
    if not n_images:
        out = Path(args.out or Path(__file__).parent / "results" / f"conv_{args.device.replace(':', '')}_train.json")
        out.parent.mkdir(parents=True, exist_ok=True); out.write_text(json.dumps(results, indent=1)); return
    r = bench_predictive(n_images, 64, args.image_batch, args.device, 1, clock)
    results["predictive"] = r
    print_table(f"predictive (time per call), {n_images:,} images x 64 samples, batches of {args.image_batch}", r["variants"])
    print(f"  peak memory: {r['memory']['peak_bytes_above_start'] / 2**20:.0f} MiB (output {r['memory']['output_bytes'] / 2**20:.0f} MiB; "
          f"unchunked conv1 activations would be {r['unchunked_conv1_activation_bytes'] / 2**30:.1f} GiB)")
    out = Path(args.out or Path(__file__).parent / "results" / f"conv_{args.device.replace(':', '')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
