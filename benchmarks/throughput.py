"""Throughput of the two loops that dominate a run: ANN training and SNN evaluation.

- ANN training: images per second through snnbench's shared training loop
  (`train_model`, the dataset's real training loader with its augmentation), over whole
  epochs after one warm-up epoch; the loop's own data / compute split is printed too.
- SNN evaluation: images per second of a converted network (IF neurons, reset by
  subtraction) simulated for T steps on the test split, forward passes only, no grad.

Defaults: the default architecture (vgg11 at its default width) on the embedded digits.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/throughput.py
    python benchmarks/throughput.py --device cuda --precision bf16 --epochs 3

Numbers depend on the machine and its load; report them with the command that gave them.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

from snnbench_suite import ArchitectureRequest, DatasetRequest
from snnbench_suite.devices import device_name, resolve_device
from snnbench_suite.loading import (
    LoaderOptions,
    evaluation_loader,
    resolve_loader_settings,
    training_loader,
)
from snnbench_suite.matrix import DEFAULT_ARCHITECTURE, DEFAULT_DATASET
from snnbench_suite.plugins import load_plugins
from snnbench_suite.precision import autocast
from snnbench_suite.snn import IFNeuron, direct, prepare_conversion
from snnbench_suite.train import train_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    device = resolve_device(args.device)
    plugins = load_plugins()
    dataset = plugins.datasets.get(args.dataset)
    arch = plugins.architectures.get(args.arch)
    data = dataset.load(DatasetRequest(params=dict(dataset.params), data_root=None,
                                       cache_dir=Path(args.cache) / "datasets"))
    info = data.info
    request = ArchitectureRequest(
        num_classes=info.num_classes, input_shape=tuple(info.input_shape),
        width=args.width if args.width is not None else arch.default_width,
        normalization=(info.mean, info.std) if info.mean and info.std else None)
    settings = resolve_loader_settings(LoaderOptions(workers=args.workers),
                                       embedded=dataset.embedded, declared=None, device=device)
    config = dataset.ann_training
    torch.manual_seed(0)
    model = arch.build(request).to(device)

    # ANN training: one warm-up epoch, then `epochs` timed epochs through the shared loop.
    loader = training_loader(data.train, batch_size=config.batch_size, seed=0,
                             settings=settings)
    warm = type(config)(**{**config.__dict__, "epochs": 1})
    train_model(model, loader, warm, device=device, precision=args.precision)
    timed = type(config)(**{**config.__dict__, "epochs": args.epochs})
    summary = train_model(model, loader, timed, device=device, precision=args.precision)
    images = len(data.train) * args.epochs  # type: ignore[arg-type]

    # SNN evaluation at T: the converted network on the test split, `repeats` passes.
    network = prepare_conversion(model.eval()).to_spiking(
        lambda site: IFNeuron(1.0, reset="subtract")).to(device).eval()
    test = evaluation_loader(data.test, batch_size=args.eval_batch, settings=settings)
    batches = [x.to(device) for x, _ in test]
    with torch.no_grad(), autocast(device, args.precision):
        for x in batches[:1]:
            network(direct(x, args.T))  # warm-up
        _sync(device)
        start = time.perf_counter()
        for _ in range(args.repeats):
            for x in batches:
                network(direct(x, args.T))
        _sync(device)
        eval_s = time.perf_counter() - start
    eval_images = args.repeats * sum(len(x) for x in batches)
    return {
        "architecture": args.arch, "width": request.width, "dataset": args.dataset,
        "device": str(device), "device_name": device_name(device),
        "precision": args.precision, "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(),
        "ann_training": {
            "images_per_s": round(images / summary.seconds, 1), "batch": config.batch_size,
            "epochs": args.epochs, "seconds": round(summary.seconds, 3),
            "data_s": round(summary.data_seconds, 3),
            "compute_s": round(summary.compute_seconds, 3), "workers": settings.workers,
        },
        "snn_evaluation": {
            "T": args.T, "images_per_s": round(eval_images / eval_s, 1),
            "batch": args.eval_batch, "images": eval_images, "seconds": round(eval_s, 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default=DEFAULT_ARCHITECTURE)
    parser.add_argument("--width", type=float, default=None, help="default: the arch's")
    parser.add_argument("--dataset", default=DEFAULT_DATASET)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--epochs", type=int, default=2, help="timed training epochs")
    parser.add_argument("--T", type=int, default=4)
    parser.add_argument("--eval-batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the test split")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--cache", default="snnbench-cache")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = measure(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    ann, snn = result["ann_training"], result["snn_evaluation"]
    print(f"{result['architecture']} (width {result['width']:g}) on {result['dataset']}, "
          f"{result['device']} ({result['device_name']}), {result['precision']}, "
          f"{result['torch_threads']} torch thread(s)")
    print(f"  ANN training:       {ann['images_per_s']:10.1f} images/s  (batch {ann['batch']}, "
          f"{ann['epochs']} epochs in {ann['seconds']:.2f} s: data {ann['data_s']:.2f} s, "
          f"compute {ann['compute_s']:.2f} s)")
    print(f"  SNN evaluation T={snn['T']}: {snn['images_per_s']:10.1f} images/s  (batch "
          f"{snn['batch']}, {snn['images']} images in {snn['seconds']:.2f} s)")


if __name__ == "__main__":
    main()
