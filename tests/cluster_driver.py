"""A Ray batch driven like ``depth2mesh convert PHOTOS -o OUTDIR --ray ADDRESS``, for the tests.

Runs :func:`depth2mesh.pipeline.cluster.convert_on_ray` through the CLI's own batch runner
(``depth2mesh.apps.cli._run_batch``): the same progress, per-photo lines, summary table and exit
codes (0, 1 when a photo failed, 130 when interrupted). With ``--worker-log FILE`` it also appends
one
JSON line per outcome: the photo, its status, and the node (IP, host name, process) that made it.

Usage: python tests/cluster_driver.py PHOTO... -o OUTDIR --ray ADDRESS [--weights PATH]
       [--skip-existing | --overwrite] [--node-ip-address IP] [--expect-nodes N]
       [--worker-log FILE] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import typer

from depth2mesh.apps import cli
from depth2mesh.pipeline.batch import Outcome, WorkItem, find_photos
from depth2mesh.pipeline.cluster import ClusterError, WorkerInfo, convert_on_ray
from depth2mesh.pipeline.convert import ConvertOptions


def wait_for_nodes(address: str, count: int, init_options: dict[str, Any], timeout: float) -> None:
    """Connect to the cluster and wait until ``count`` nodes are alive (the run reuses this)."""
    import ray

    ray.init(address=address, log_to_driver=False, **init_options)
    deadline = time.monotonic() + timeout
    while sum(node["Alive"] for node in ray.nodes()) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"fewer than {count} Ray nodes alive after {timeout:.0f} s")
        time.sleep(0.5)


def main() -> None:
    """Parse the arguments, run the batch, exit like the CLI."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("photos", nargs="+")
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--ray", required=True)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--skip-existing", action="store_true")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--node-ip-address")
    parser.add_argument("--expect-nodes", type=int, default=0)
    parser.add_argument("--worker-log", type=Path)
    parser.add_argument("--workers", type=int)
    args = parser.parse_args()

    init_options: dict[str, Any] = {}
    if args.node_ip_address:
        init_options["_node_ip_address"] = args.node_ip_address
    if args.expect_nodes:
        wait_for_nodes(args.ray, args.expect_nodes, init_options, timeout=120)
    items = find_photos(args.photos)
    cli._prepare_out_dir(args.out)
    log = None if args.worker_log is None else args.worker_log.open("a", encoding="utf-8")

    def on_worker(outcome: Outcome, info: WorkerInfo) -> None:
        if log is not None:
            record = {"photo": str(outcome.item.photo), "status": outcome.status}
            record.update(vars(info))
            log.write(json.dumps(record) + "\n")
            log.flush()

    def run(batch: list[WorkItem], **callbacks: Any) -> list[Outcome]:
        callbacks.pop("step")  # workers do not report their stages
        return convert_on_ray(
            batch,
            args.out,
            ray_address=args.ray,
            options=ConvertOptions(overwrite=args.overwrite),
            weights=args.weights,
            device="cpu",
            skip_existing=args.skip_existing,
            workers=args.workers,
            ray_init_options=init_options,
            on_worker=on_worker,
            **callbacks,
        )

    try:
        cli._run_batch(items, args.out, run, "convert")
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except ClusterError as error:
        cli._fail(str(error))
        sys.exit(1)


if __name__ == "__main__":
    main()
