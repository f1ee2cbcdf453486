"""Meta-training throughput: batched ``torch.func.vmap`` path vs a per-task loop.

Times full meta-training steps -- forward (inner-loop adaptation of every task
and query prediction), query loss, backward, gradient clipping and the outer
optimizer step, i.e. exactly what skorch's ``MetaNet.train_step`` runs for one
batch -- for two copies of the same learner that differ only in
``vectorize=True`` (``vmap`` over tasks) and ``vectorize=False`` (Python loop
over tasks). Both copies start from the same weights and are fed the same
batches; the two timings of each batch are taken back to back so that load from
other processes hits both paths alike. Reports tasks/s, the speedup, and as a
sanity check the largest loss difference between the two paths and the largest
meta-gradient difference at the shared starting point.

Usage::

    python benchmarks/meta_throughput.py                  # full run (~10 min, 1 thread)
    python benchmarks/meta_throughput.py --quick          # smoke run (seconds)
    python benchmarks/meta_throughput.py --learners maml-so --tasks-per-batch 32

Results go to ``benchmarks/results/meta_throughput.json`` (``--output``).
``--forward-impl FILE.py:NAME`` swaps in a candidate ``functional_forward``
(for evaluating a patch of ``sk_metalstm.networks`` before it lands).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _reporting import (
    META_FULL,
    META_QUICK,
    RESULTS,
    command_line,
    environment,
    make_net,
    make_tasks,
    parse_args,
    rotate,
    write_json,
)
from torch.utils.data import default_collate

from sk_metalstm.distribution import n_outputs
from sk_metalstm.meta import TaskDataset
from sk_metalstm.networks import LSTMNetwork

DEFAULT_OUTPUT = RESULTS / "meta_throughput.json"

#: benchmark name -> (meta_learner, first_order)
LEARNERS = {
    "metasgd": ("metasgd", True),
    "maml-fo": ("maml", True),
    "maml-so": ("maml", False),
    "lstm": ("lstm", True),
    "reptile": ("reptile", True),
}


def meta_gradient(net, batch) -> tuple[float, torch.Tensor]:
    """Training loss and flattened meta-gradient of one batch (no optimizer step)."""
    X, y = batch
    net.module_.train()
    net.optimizer_.zero_grad()
    step = net.train_step_single(batch)
    grads = torch.cat([p.grad.flatten() for p in net.module_.parameters() if p.grad is not None])
    net.optimizer_.zero_grad()
    return float(step["loss"].detach()), grads.clone()


def summarize(times: list[float], n_tasks: int) -> dict[str, Any]:
    q = np.quantile(times, [0.25, 0.75])
    med = statistics.median(times)
    return {
        "step_s_median": med,
        "step_s_min": min(times),
        "step_s_max": max(times),
        "step_s_iqr": [float(q[0]), float(q[1])],
        "tasks_per_s": n_tasks / med,
        "steps_timed": len(times),
    }


def bench_one(
    key: str, tasks: TaskDataset, cfg: dict[str, Any], tasks_per_batch: int, repeats: int, seed: int
) -> dict[str, Any]:
    learner_name, first_order = LEARNERS[key]
    torch.manual_seed(seed)
    base = LSTMNetwork(
        tasks.n_features, cfg["hidden_size"], cfg["num_layers"], n_outputs(cfg["horizon"])
    )
    nets = {
        "vmap": make_net(learner_name, first_order, True, base, cfg, tasks_per_batch, seed),
        "loop": make_net(learner_name, first_order, False, base, cfg, tasks_per_batch, seed),
    }
    rng = np.random.default_rng(seed)

    def batch():
        idx = rng.choice(len(tasks), size=tasks_per_batch, replace=False)
        return default_collate([tasks[int(i)] for i in idx])

    # Sanity at the shared starting point: same loss and meta-gradient.
    b0 = batch()
    (loss_v, grad_v), (loss_l, grad_l) = (meta_gradient(nets[k], b0) for k in ("vmap", "loop"))
    grad_diff = float((grad_v - grad_l).abs().max())
    grad_scale = float(grad_l.abs().max())

    for net in nets.values():  # warm-up step (allocator, vmap/grad setup)
        net.train_step(b0)
    times: dict[str, list[float]] = {"vmap": [], "loop": []}
    loss_diffs = []
    for r in range(repeats):
        b = batch()
        losses = {}
        for k in rotate(("vmap", "loop"), r):
            t0 = time.perf_counter()
            step = nets[k].train_step(b)
            times[k].append(time.perf_counter() - t0)
            losses[k] = float(step["loss"].detach())
        loss_diffs.append(abs(losses["vmap"] - losses["loop"]))
    ratios = [lo / vm for lo, vm in zip(times["loop"], times["vmap"], strict=True)]
    out = {
        "learner": key,
        "meta_learner": learner_name,
        "first_order": first_order,
        "tasks_per_batch": tasks_per_batch,
        "vmap": summarize(times["vmap"], tasks_per_batch),
        "loop": summarize(times["loop"], tasks_per_batch),
        "speedup": statistics.median(times["loop"]) / statistics.median(times["vmap"]),
        "speedup_per_pair": {
            "median": statistics.median(ratios),
            "min": min(ratios),
            "max": max(ratios),
        },
        "sanity": {
            "initial_loss_vmap": loss_v,
            "initial_loss_loop": loss_l,
            "initial_loss_abs_diff": abs(loss_v - loss_l),
            "initial_meta_grad_max_abs_diff": grad_diff,
            "initial_meta_grad_max_abs": grad_scale,
            "timed_steps_loss_max_abs_diff": max(loss_diffs),
        },
    }
    return out


def load_forward_impl(spec: str) -> str:
    """Replace ``functional_forward`` everywhere the library bound it."""
    path, name = spec.rsplit(":", 1)
    module_spec = importlib.util.spec_from_file_location("_candidate_forward", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    fn = getattr(module, name)
    import sk_metalstm.meta.base
    import sk_metalstm.meta.pooled
    import sk_metalstm.networks

    for mod in (sk_metalstm.networks, sk_metalstm.meta.base, sk_metalstm.meta.pooled):
        mod.functional_forward = fn
    return spec


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny configuration, 4 tasks per batch, 2 timed steps (smoke test)",
    )
    parser.add_argument("--learners", nargs="+", choices=sorted(LEARNERS), default=None)
    parser.add_argument("--tasks-per-batch", nargs="+", type=int, default=None)
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed steps per path (default: 7 at <=32 tasks, 4 above)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--forward-impl",
        default=None,
        metavar="FILE.py:NAME",
        help="benchmark a candidate functional_forward instead of the library's",
    )
    args = parse_args(parser, argv)

    torch.set_num_threads(args.threads)
    cfg = META_QUICK if args.quick else META_FULL
    learners = args.learners or list(LEARNERS)
    sizes = args.tasks_per_batch or ([4] if args.quick else [8, 32, 64])
    forward_impl = load_forward_impl(args.forward_impl) if args.forward_impl else None
    tasks = make_tasks(cfg, args.seed)
    env = environment()
    results = []
    print(f"{len(tasks)} tasks; torch {torch.__version__}; {args.threads} thread(s)")
    header = (
        f"{'learner':9} {'tasks':>5} {'vmap tasks/s':>13} {'loop tasks/s':>13} "
        f"{'speedup':>8} {'pair range':>12} {'|dloss|':>9} {'|dgrad|':>9}"
    )
    print(header)
    for n in sizes:
        if n > len(tasks):
            raise SystemExit(f"--tasks-per-batch {n} exceeds the {len(tasks)} tasks available")
        repeats = args.repeats or (2 if args.quick else (7 if n <= 32 else 4))
        for key in learners:
            r = bench_one(key, tasks, cfg, n, repeats, args.seed)
            results.append(r)
            pp = r["speedup_per_pair"]
            print(
                f"{key:9} {n:5d} {r['vmap']['tasks_per_s']:13.1f} "
                f"{r['loop']['tasks_per_s']:13.1f} {r['speedup']:7.2f}x "
                f"{pp['min']:5.2f}-{pp['max']:5.2f}x "
                f"{r['sanity']['timed_steps_loss_max_abs_diff']:9.1e} "
                f"{r['sanity']['initial_meta_grad_max_abs_diff']:9.1e}",
                flush=True,
            )
    env["load_average_end"] = list(os.getloadavg())
    report = {
        "benchmark": "meta_throughput",
        "command": command_line("meta_throughput", argv),
        "quick": args.quick,
        "forward_impl": forward_impl,
        "config": cfg,
        "environment": env,
        "results": results,
    }
    print(f"wrote {write_json(args.output, report, indent=2)}")
    return report


if __name__ == "__main__":
    main()
