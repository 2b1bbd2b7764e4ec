"""Plot bench/results/layers_<device>.json (written by bench_layers.py) as bench/layers_<device>.png.

    python bench/plot_results.py [--device cpu]
"""
import argparse
import json
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    here = Path(__file__).parent
    results = json.loads((here / "results" / f"layers_{args.device.replace(':', '')}.json").read_text())
    steps = results["train_step"]
    widths = [r["width"] for r in steps]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name in steps[0]["variants"]:
        if name.startswith("deterministic"): continue
        axes[0].plot(widths, [r["variants"][name]["median_ratio"] for r in steps], "o-", label=name)
    axes[0].axhline(1.3, color="k", ls="--", lw=1, label="target 1.3x")
    axes[0].axhline(1.0, color="gray", lw=0.8)
    axes[0].set(xscale="log", xlabel="hidden width", ylabel="step time / deterministic nn.Sequential",
                title=f"training step, batch 32 ({results['info']['device']})")
    axes[0].set_xticks(widths, [str(w) for w in widths]); axes[0].minorticks_off()
    axes[0].legend(fontsize=7)
    pred = results.get("predictive")
    if pred:
        names = list(pred["variants"])
        axes[1].bar(range(len(names)), [pred["variants"][n]["median_s"] for n in names], color=["gray", "C0"])
        axes[1].set_xticks(range(len(names)), names, fontsize=8)
        axes[1].set(ylabel="seconds", title=f"predictive: {pred['points']:,} points x {pred['samples']} samples")
        mem = pred.get("memory", {}).get("peak_bytes_above_start")
        if mem is not None:
            axes[1].text(1, pred["variants"][names[1]]["median_s"] * 0.5, f"peak memory\n{mem / 2**20:.0f} MiB",
                         ha="center", color="white", fontsize=9)
    else:
        axes[1].axis("off")
    fig.tight_layout()
    out = here / f"layers_{args.device.replace(':', '')}.png"
    fig.savefig(out, dpi=120)
    print("wrote", out)


if __name__ == "__main__":
    main()
