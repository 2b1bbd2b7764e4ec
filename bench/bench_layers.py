"""Speed and memory of vnn_nbdev's variational layers against plain torch, measured side by side in one process.

    python bench/bench_layers.py                 # CPU, one thread, widths 64 and 512, the tutorial's predictive
    python bench/bench_layers.py --device cuda   # the same on a GPU (synchronised timing, CUDA peak memory)
    python bench/bench_layers.py --quick         # a fast smoke run (fewer repeats, smaller predictive)

Two benchmarks:

* train step: the two-moons tutorial's model (2 -> width x 3 -> 1, SiLU, full-rank factorized covariance on the
  first and last layer, muP, SGD with momentum 0.9 and the model's per-parameter learning rates, batch 32) against
  the same-size deterministic `nn.Sequential` MLP with `torch.optim.SGD(momentum=0.9)`. Also timed: the same bnn
  model without covariances (module overhead only), a rank-32 `LowRankCovariance` variant, and a hand-written
  "floor": the Bayesian step written with raw tensor ops (no modules), the same parameters and parameter groups.
* predictive: the tutorial's decision boundary, 40,000 points x 256 weight samples (width 64) with
  `model(x, sample_shape=(256,))` under `torch.no_grad()`, against the deterministic network called 256 times;
  peak memory of the bnn predictive (CPU: growth of the peak resident set size, CUDA: peak allocated memory).

Timing: every repeat runs each variant once, in rotating order (interleaved), and we report the median over repeats
of the time per step and of the ratio to the deterministic baseline. On CPU the clock is the CPU time of the
benchmark thread (`time.thread_time`, robust to other processes on a shared machine; wall time is recorded too);
on CUDA it is wall time after `torch.cuda.synchronize()`. Results go to bench/results/layers_<device>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vnn_nbdev import bnn, models


# ----------------------------------------------------------------------------- models
def bnn_model(width: int, cov: str = "factorized", device="cpu") -> nn.Module:
    "The tutorial's model; `cov` in {'factorized', 'lowrank32', 'none'} for the first and last layer."
    make = {"factorized": lambda: bnn.params.FactorizedCovariance(), "lowrank32": lambda: bnn.params.LowRankCovariance(32),
            "none": lambda: None}[cov]
    model = bnn.Sequential(
        models.MLP(in_size=2, hidden_sizes=[width] * 3, out_size=1, activation_layer=nn.SiLU,
                   cov=[make()] + [None] * 2 + [make()], bias=True),
        nn.Flatten(-2, -1), parametrization=bnn.params.MUP())
    return model.to(device)


def det_model(width: int, device="cpu") -> nn.Module:
    return nn.Sequential(nn.Linear(2, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width),
                         nn.SiLU(), nn.Linear(width, 1), nn.Flatten(-2, -1)).to(device)


def floor_forward(model: nn.Module):
    "The Bayesian forward of `model` written with raw tensor ops (no module calls): the eager-PyTorch floor."
    layers = [m for m in model.modules() if isinstance(m, bnn.Linear)]
    specs = []
    for lay in layers:
        factors = lay.cov.factor_parameters_by_name() if lay.cov is not None else None
        specs.append((lay.weight, lay.bias, factors and factors["weight"][0], factors and factors["bias"][0],
                      lay.cov.rank if lay.cov is not None else 0))
    last = len(specs) - 1

    def forward(x):
        h = x
        for i, (w, b, fw, fb, rank) in enumerate(specs):
            if fw is not None:
                z = torch.randn(1, rank, dtype=w.dtype, device=w.device)
                w = torch.addmm(w.view(1, -1), z, fw).view(w.shape)
                b = torch.addmm(b.view(1, -1), z, fb).view(b.shape)
            h = F.linear(h, w, b)
            if i < last: h = F.silu(h)
        return h.view(-1)
    return forward


# ----------------------------------------------------------------------------- timing helpers
class Clock:
    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")

    def sync(self):
        if self.cuda: torch.cuda.synchronize()

    def now(self) -> tuple[float, float]:
        self.sync()
        return time.perf_counter(), time.thread_time()

    def elapsed(self, start) -> tuple[float, float]:
        wall, cpu = self.now()
        return wall - start[0], cpu - start[1]

    def primary(self, wall: float, cpu: float) -> float:
        return wall if self.cuda else cpu


def interleaved(variants: dict, repeats: int, clock: Clock, per_call: int = 1) -> dict:
    "Run every variant once per repeat, rotating the order; per-call time (primary clock, wall) per repeat."
    names = list(variants)
    times = {n: {"primary": [], "wall": []} for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            start = clock.now()
            variants[n]()
            wall, cpu = clock.elapsed(start)
            times[n]["primary"].append(clock.primary(wall, cpu) / per_call)
            times[n]["wall"].append(wall / per_call)
    return times


def summarize(times: dict, baseline: str) -> dict:
    out = {}
    for n, t in times.items():
        ratios = [a / b for a, b in zip(t["primary"], times[baseline]["primary"])]
        out[n] = {"median_s": statistics.median(t["primary"]), "median_wall_s": statistics.median(t["wall"]),
                  "ratio_of_medians": statistics.median(t["primary"]) / statistics.median(times[baseline]["primary"]),
                  "median_ratio": statistics.median(ratios), "min_ratio": min(ratios), "max_ratio": max(ratios)}
    return out


# ----------------------------------------------------------------------------- train step
def make_trainer(model, params, forward, x, y):
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    loss_fn = nn.BCEWithLogitsLoss()

    def step():
        optimizer.zero_grad()
        loss_fn(forward(x), y).backward()
        optimizer.step()
    return step


def bench_train_step(width: int, device: str, repeats: int, steps: int, clock: Clock, batch: int = 32) -> dict:
    torch.manual_seed(0)
    x = torch.randn(batch, 2, device=device)
    y = (torch.rand(batch, device=device) > 0.5).float()
    lr = 0.01
    det = det_model(width, device)
    seed = bnn_model(width, "factorized", device)
    nocov = bnn_model(width, "none", device)
    lowrank = bnn_model(width, "lowrank32", device)
    floor_model = bnn_model(width, "factorized", device)
    trainers = {
        "deterministic nn.Sequential": make_trainer(det, det.parameters(), det, x, y),
        "bnn, factorized first+last (tutorial)": make_trainer(seed, seed.parameters_and_lrs(lr=lr), seed, x, y),
        "bnn, no covariance": make_trainer(nocov, nocov.parameters_and_lrs(lr=lr), nocov, x, y),
        "bnn, low-rank 32 first+last": make_trainer(lowrank, lowrank.parameters_and_lrs(lr=lr), lowrank, x, y),
        "floor: raw ops, factorized first+last": make_trainer(floor_model, floor_model.parameters_and_lrs(lr=lr),
                                                              floor_forward(floor_model), x, y),
    }
    for step in trainers.values():          # warm up (allocations, momentum buffers)
        for _ in range(10): step()

    def block(step):
        def run():
            for _ in range(steps): step()
        return run
    times = interleaved({n: block(s) for n, s in trainers.items()}, repeats, clock, per_call=steps)
    result = summarize(times, "deterministic nn.Sequential")
    n_det = sum(p.numel() for p in det.parameters())
    n_cov = sum(p.numel() for n, p in seed.named_parameters() if ".cov." in n)
    return {"width": width, "batch": batch, "steps_per_repeat": steps, "repeats": repeats, "deterministic_parameters": n_det,
            "covariance_parameters": n_cov, "variants": result}


# ----------------------------------------------------------------------------- predictive
def peak_rss_reset():
    "Reset the kernel's peak-RSS counter of this process (Linux); return the current RSS in bytes, or None."
    try:
        with open("/proc/self/clear_refs", "w") as f: f.write("5")
        return _status_kib("VmRSS") * 1024
    except OSError:
        return None


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"): return int(line.split()[1])
    raise KeyError(key)


def bench_predictive(width: int, n_points: int, n_samples: int, device: str, repeats: int, clock: Clock) -> dict:
    torch.manual_seed(0)
    side = int(round(n_points ** 0.5))
    g = torch.linspace(-2.5, 3.5, side, device=device)
    grid = torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)
    model, det = bnn_model(width, "factorized", device).eval(), det_model(width, device).eval()
    gen = torch.Generator(device=device)

    def bayes():
        gen.manual_seed(0)
        with torch.no_grad(): return model(grid, sample_shape=(n_samples,), generator=gen)

    det_out = torch.empty(n_samples, grid.shape[0], device=device)

    def looped():  # the strongest plain baseline: one forward per sample into a preallocated output
        with torch.no_grad():
            for s in range(n_samples): det_out[s] = det(grid)
        return det_out
    out = bayes()
    assert out.shape == (n_samples, grid.shape[0]), out.shape
    looped()
    times = interleaved({"deterministic x 256 loop": looped, "bnn sample_shape=(256,)": bayes}, repeats, clock)
    result = summarize(times, "deterministic x 256 loop")
    memory = predictive_memory(width, n_points, n_samples, device)
    chunk = model._samples_per_chunk(grid, torch.Size([n_samples]), False)
    return {"width": width, "points": grid.shape[0], "samples": n_samples, "samples_per_chunk": chunk,
            "unchunked_activation_bytes": n_samples * grid.shape[0] * width * 4, "repeats": repeats,
            "variants": result, "memory": memory}


def predictive_memory(width: int, n_points: int, n_samples: int, device: str) -> dict:
    "Peak memory of one bnn predictive, measured in a fresh process (so earlier runs' freed memory does not hide it)."
    import subprocess
    cmd = [sys.executable, __file__, "--memory-probe", f"{width},{n_points},{n_samples}", "--device", device]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_probe(spec: str, device: str):
    "Child process of `predictive_memory`: print the peak memory of one predictive as JSON."
    width, n_points, n_samples = map(int, spec.split(","))
    side = int(round(n_points ** 0.5))
    g = torch.linspace(-2.5, 3.5, side, device=device)
    grid = torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)
    model = bnn_model(width, "factorized", device).eval()
    with torch.no_grad(): model(grid[:10], sample_shape=(2,))           # warm up torch itself
    if device.startswith("cuda"):
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.no_grad(): out = model(grid, sample_shape=(n_samples,))
        torch.cuda.synchronize()
        memory = {"peak_bytes_above_start": torch.cuda.max_memory_allocated() - base,
                  "how": "torch.cuda.max_memory_allocated() - memory_allocated() before the call, fresh process"}
    else:
        rss = peak_rss_reset()
        with torch.no_grad(): out = model(grid, sample_shape=(n_samples,))
        memory = {"peak_bytes_above_start": _status_kib("VmHWM") * 1024 - rss,
                  "how": "growth of the peak resident set size (VmHWM reset via /proc/self/clear_refs), fresh process"}
    memory["output_bytes"] = out.numel() * out.element_size()
    print(json.dumps(memory))


# ----------------------------------------------------------------------------- main
def print_table(title: str, rows: dict):
    print(f"\n{title}")
    print(f"  {'variant':42s} {'time':>12s} {'ratio':>7s} {'(min-max)':>13s}")
    for n, r in rows.items():
        print(f"  {n:42s} {r['median_s'] * 1e6:10.0f}us {r['median_ratio']:7.2f} "
              f"({r['min_ratio']:.2f}-{r['max_ratio']:.2f})")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    p.add_argument("--widths", type=int, nargs="+", default=[64, 512])
    p.add_argument("--batch", type=int, default=32, help="training batch size")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads on CPU")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--quick", action="store_true", help="smoke run: 3 repeats, 4,096-point predictive")
    p.add_argument("--skip-predictive", action="store_true")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--out", default=None, help="JSON path (default bench/results/layers_<device>.json)")
    p.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_probe:
        torch.set_num_threads(args.threads)
        return memory_probe(args.memory_probe, args.device)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("--device cuda requested but torch.cuda.is_available() is False")
    torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else args.repeats
    clock = Clock(args.device)
    info = {"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "platform": platform.platform(), "processor": platform.processor(),
            "gpu": torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else None,
            "clock": "wall after cuda.synchronize" if clock.cuda else "thread CPU time (time.thread_time)",
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    print(json.dumps(info, indent=1))
    results = {"info": info, "train_step": [], "predictive": None}
    for width in [] if args.skip_train else args.widths:
        steps = max(5, 6_400 // width) if not clock.cuda else 50
        r = bench_train_step(width, args.device, repeats, steps, clock, args.batch)
        results["train_step"].append(r)
        print_table(f"train step (time per step), width {width} (batch {args.batch}; {r['covariance_parameters']:,} covariance vs "
                    f"{r['deterministic_parameters']:,} deterministic parameters)", r["variants"])
    if not args.skip_predictive:
        n_points = 4_096 if args.quick else 40_000
        r = bench_predictive(64, n_points, 256, args.device, 3 if args.quick else 5, clock)
        results["predictive"] = r
        print_table(f"predictive (time per call), {r['points']:,} points x {r['samples']} samples, width 64 "
                    f"({r['samples_per_chunk']} samples per chunk)", r["variants"])
        if r["memory"]:
            print(f"  peak memory of the bnn predictive: {r['memory']['peak_bytes_above_start'] / 2**20:.0f} MiB "
                  f"(unchunked activations would be {r['unchunked_activation_bytes'] / 2**30:.2f} GiB each)")
    out = Path(args.out or Path(__file__).parent / "results" / f"layers_{args.device.replace(':', '')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
