"""The `tandem` command line (docs/design.md#command-line). Sub-commands import their package lazily,
so `tandem operator` never loads torch and `tandem local` never loads the operator."""

from __future__ import annotations

import argparse
import sys


def _crds(args: argparse.Namespace) -> int:
    from tandem.operator.crdgen import render_crds, write_crds

    if args.output:
        for path in write_crds(args.output):
            print(path)
    else:
        sys.stdout.write(render_crds())
    return 0


def _local(args: argparse.Namespace) -> int:
    from tandem.localcluster.cli import serve

    return serve(kubeconfig=args.kubeconfig, port=args.port, cluster_config=args.cluster_config,
                 install_crds=not args.no_crds)


def _operator(args: argparse.Namespace) -> int:
    from tandem.operator.main import run

    return run(namespaces=args.namespace or [], metrics_port=args.metrics_port, health_port=args.health_port,
               peering=args.peering)


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tandem.demo import run_demo

    return run_demo(Path(args.report), fast=args.fast, in_place=not args.full_restarts)


def _classify(args: argparse.Namespace) -> int:
    from tandem.classify_command import run

    return run(args.log, args.pod, args.explain)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tandem", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    crds = sub.add_parser("crds", help="print or write the generated CustomResourceDefinitions")
    crds.add_argument("--output", metavar="DIR", help="write one YAML file per CRD into DIR")
    crds.set_defaults(func=_crds)

    local = sub.add_parser("local", help="serve a local Kubernetes API on 127.0.0.1 until stopped")
    local.add_argument("--kubeconfig", metavar="PATH", required=True, help="where to write the kubeconfig")
    local.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    local.add_argument(
        "--cluster-config", metavar="FILE", help="YAML with the simulated pools and nodes (default: built in)"
    )
    local.add_argument("--no-crds", action="store_true", help="start without Tandem's CRDs installed")
    local.set_defaults(func=_local)

    op = sub.add_parser("operator", help="run the operator (in-cluster config or KUBECONFIG)")
    op.add_argument("--namespace", action="append", metavar="NS", help="watch only NS (repeatable)")
    op.add_argument("--metrics-port", type=int, default=None,
                    help="Prometheus /metrics port (default $TANDEM_METRICS_PORT or 8080; 0 turns it off)")
    op.add_argument("--health-port", type=int, default=None,
                    help="liveness /healthz port (default $TANDEM_HEALTH_PORT or 8081; 0 turns it off)")
    op.add_argument("--peering", metavar="NAME", default=None,
                    help="kopf peering object for several replicas (default: standalone)")
    op.set_defaults(func=_operator)
    demo = sub.add_parser("demo", help="watch a job survive two HCCL faults: restart on Ascend, failover to NVIDIA")
    demo.add_argument("--report", metavar="DIR", default="demo-report",
                      help="where the report goes: loss curve, timeline, recovery times, logs (default: demo-report)")
    demo.add_argument("--fast", action="store_true", help="the same story, shorter (for the tests)")
    demo.add_argument("--full-restarts", action="store_true",
                      help="faultPolicy.inPlaceRestart: false: every restart recreates the pods (to compare)")
    demo.set_defaults(func=_demo)
    classify = sub.add_parser("classify", help="why did a pod fail? classify a log or a Pod object")
    source = classify.add_mutually_exclusive_group()
    source.add_argument("--log", metavar="FILE|DIR",
                        help="a log: a tail or a whole `kubectl logs` output, or a folder of rank logs, one file per "
                             "rank (default: stdin)")
    source.add_argument("--pod", metavar="POD.json", nargs="?", const="-",
                        help="a Pod as `kubectl get pod NAME -o json` prints it (no FILE or -: stdin)")
    classify.add_argument("--explain", action="store_true",
                          help="add which source and which signature-table entry decided, and what else matched")
    classify.set_defaults(func=_classify)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
