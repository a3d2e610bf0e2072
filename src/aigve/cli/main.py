"""The ``aigve`` command: parser assembly and ``main()``; each command group lives in its own module.

==========================  ===============================  ==========================================
command                     module                           what it does
==========================  ===============================  ==========================================
``run``, ``prepare``        :mod:`aigve.cli.run`             evaluate a dataset; pair a folder first
``list-metrics``            :mod:`aigve.cli.list_metrics`    the metric catalogue
``check``                   :mod:`aigve.cli.check`           integrity of video files
``weights``                 :mod:`aigve.cli.weights`         list, fetch, verify, import model weights
``datasets``                :mod:`aigve.cli.datasets`        built-in datasets: list, fetch
``cache``                   :mod:`aigve.cli.cache`           feature-cache size, prune, clear
``stats``                   :mod:`aigve.cli.stats`           reference statistics for FID/FVD
``compare``, ``correlate``  :mod:`aigve.cli.compare`         compare runs; agreement with human scores
``report``                  :mod:`aigve.cli.report`          the HTML report of one or more runs
``serve``, ``client``       :mod:`aigve.cli.server`          the REST server and its client
==========================  ===============================  ==========================================

The original AIGVE toolkit's flags are mapped in :mod:`aigve.cli.legacy` (shared with the server).
Exit codes: 0 success; 2 usage or input-description errors, a missing optional extra (the message gives
the ``pip install`` line) and ``aigve client`` finding no server at ``--base-url``; 3 when any video or
metric failed.
"""

from __future__ import annotations

import argparse
import logging
import sys

from aigve import __version__
from aigve.cli import cache, check, compare, datasets, list_metrics, report, run, server, stats, weights
from aigve.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, log_handler
from aigve.errors import AigveError, DatasetError, MissingDependencyError, UsageError

log = logging.getLogger("aigve")

#: the command modules, in the order ``aigve --help`` lists their commands
COMMAND_MODULES = (run, list_metrics, check, weights, datasets, cache, stats, compare, report, server)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aigve", description="Evaluate AI-generated video.")
    p.add_argument("--version", action="version", version=f"aigve {__version__}")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    sub = p.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.add_commands(sub)
    return p


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(message)s",
        handlers=[log_handler()],
        force=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 for usage errors, 0 for --help
        return int(exc.code or 0)
    setup_logging(args.log_level)
    try:
        return int(args.func(args))
    except (UsageError, DatasetError, MissingDependencyError) as exc:  # nothing ran: fix the command
        log.error("%s", exc)
        return EXIT_USAGE
    except AigveError as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    except BrokenPipeError:  # `aigve ... | head`: the reader left; not an error of the command
        import contextlib
        import os

        with contextlib.suppress(OSError, ValueError):  # no flush error at exit on the closed pipe
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        log.error("interrupted; rerun with --resume to continue")
        return 130


if __name__ == "__main__":
    sys.exit(main())
