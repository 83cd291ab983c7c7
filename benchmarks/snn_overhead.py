"""How much does simulating a converted network cost beyond T forward passes of its ANN?

Measures, in one process, the evaluation time of a converted network (naive conversion of
the default architecture, 3x32x32 inputs, batch 64) at T = 4 and T = 32, against T times
the ANN's forward time on the same batch. Stateless layers run once on the folded [T*B]
batch, so the ratio should stay close to 1; the neurons' loop over T is the overhead.

    python benchmarks/snn_overhead.py [--arch resnet20] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from snnbench_suite import ArchitectureRequest
from snnbench_suite.matrix import DEFAULT_ARCHITECTURE
from snnbench_suite.plugins import load_plugins
from snnbench_suite.snn import IFNeuron, direct, prepare_conversion


def best_of(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default=DEFAULT_ARCHITECTURE)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    spec = load_plugins().architectures.get(args.arch)
    ann = spec.build(ArchitectureRequest(num_classes=10, input_shape=(3, 32, 32),
                                         width=spec.default_width)).eval()
    x = torch.rand(args.batch, 3, 32, 32)
    with torch.no_grad():
        ann(x)  # BN statistics are irrelevant to timing; thresholds of 1 keep neurons busy
    graph = prepare_conversion(ann)
    snn = graph.to_spiking(lambda site: IFNeuron(0.5, amplitude="threshold")).eval()
    print(f"architecture {args.arch} (width {spec.default_width}), batch {args.batch}, "
          f"threads {torch.get_num_threads()}")
    with torch.inference_mode():
        ann_min, ann_med = best_of(lambda: ann(x), args.repeats)
        print(f"ANN forward: {ann_min * 1e3:.1f} ms (median {ann_med * 1e3:.1f} ms)")
        for steps in (4, 32):
            snn_min, snn_med = best_of(lambda s=steps: snn(direct(x, s)), args.repeats)
            ratio = snn_min / (steps * ann_min)
            print(f"T = {steps:2d}: SNN {snn_min * 1e3:.1f} ms (median {snn_med * 1e3:.1f}), "
                  f"T x ANN {steps * ann_min * 1e3:.1f} ms, ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
