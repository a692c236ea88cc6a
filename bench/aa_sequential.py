"""A/A check of the sequential test: how often does it call a winner when there is none?

Simulates many A/A experiments (both arms with the same conversion rate), looks after every batch
of visitors, and counts experiments that were ever declared significant. Prints, per seed, the
false-positive rate of liftlog's mSPRT next to a fixed-horizon z test read at every look (the
"peeking" baseline measured in the same run) and the ratio between them. Bounded in time: stops
starting new seeds after ``--budget`` seconds.

    .venv/bin/python bench/aa_sequential.py --seeds 10 --experiments 1000 --looks 50
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from liftlog.stats import Comparison, MetricKind, SequentialConfig, SuffStats, fixed_horizon, msprt


def run_seed(
    seed: int, experiments: int, looks: int, batch: int, rate: float, level: float
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    config = SequentialConfig(level=level)
    sequential = peeking = 0
    for _ in range(experiments):
        conversions = np.cumsum(rng.binomial(batch, rate, size=(looks, 2)), axis=0)
        previous: Comparison | None = None
        hit_seq = hit_peek = False
        for i, (ca, cb) in enumerate(conversions):
            n = batch * (i + 1)
            a, b = SuffStats(n, int(ca), int(ca)), SuffStats(n, int(cb), int(cb))
            previous = msprt(a, b, kind=MetricKind.UNIQUE, config=config, previous=previous)
            hit_seq = hit_seq or previous.is_significant
            hit_peek = (
                hit_peek or fixed_horizon(a, b, kind=MetricKind.UNIQUE, level=level).is_significant
            )
        sequential += hit_seq
        peeking += hit_peek
    return sequential / experiments, peeking / experiments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--looks", type=int, default=50)
    parser.add_argument("--batch", type=int, default=200, help="visitors per arm between looks")
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--level", type=float, default=0.90)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds")
    args = parser.parse_args()
    alpha = 1 - args.level
    print(
        f"A/A: {args.experiments} experiments/seed, {args.looks} looks of {args.batch} "
        f"visitors/arm, rate {args.rate}, alpha {alpha:.2f}"
    )
    print(f"{'seed':>6} {'msprt FPR':>10} {'peeking FPR':>12} {'ratio':>7}")
    started = time.monotonic()
    rates = []
    for seed in range(args.seeds):
        if time.monotonic() - started > args.budget:
            print(f"budget of {args.budget:.0f} s reached after {seed} seeds")
            break
        seq, peek = run_seed(seed, args.experiments, args.looks, args.batch, args.rate, args.level)
        rates.append((seq, peek))
        print(f"{seed:>6} {seq:>10.4f} {peek:>12.4f} {seq / peek if peek else float('nan'):>7.3f}")
    seq_all = float(np.mean([r[0] for r in rates]))
    peek_all = float(np.mean([r[1] for r in rates]))
    worst = max(r[0] for r in rates)
    print(f"{'all':>6} {seq_all:>10.4f} {peek_all:>12.4f} {seq_all / peek_all:>7.3f}")
    print(
        f"worst seed msprt FPR {worst:.4f} (alpha {alpha:.2f}); {time.monotonic() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
