"""The re-ranking and query-expansion options of ``python -m training.evaluate``.

Kept apart from the command's other options so the command stays one screen of plumbing;
the algorithms themselves live in model/evaluation (reranking.py, query_expansion.py).
"""

from __future__ import annotations

import argparse
import math

from model.evaluation.reranking import (
    DEFAULT_K1,
    DEFAULT_K2,
    DEFAULT_LAMBDA,
    KReciprocalSettings,
)
from training.usage import positive_int

_TUNING = (
    ("--rerank-k1", "rerank_k1"),
    ("--rerank-k2", "rerank_k2"),
    ("--rerank-lambda", "rerank_lambda"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "re-ranking", "post-processing of the distances before scoring (docs/evaluation.md)"
    )
    group.add_argument(
        "--rerank",
        action="store_true",
        help="k-reciprocal re-ranking (Zhong et al., CVPR 2017), in bounded memory",
    )
    group.add_argument(
        "--rerank-k1", type=positive_int, metavar="K", help=f"with --rerank (default {DEFAULT_K1})"
    )
    group.add_argument(
        "--rerank-k2", type=positive_int, metavar="K", help=f"with --rerank (default {DEFAULT_K2})"
    )
    group.add_argument(
        "--rerank-lambda",
        type=_fraction,
        metavar="L",
        help=f"weight of the original distance, in [0, 1] (default {DEFAULT_LAMBDA})",
    )
    group.add_argument(
        "--aqe",
        type=positive_int,
        metavar="K",
        help="average query expansion with the K nearest gallery items (before --rerank)",
    )


def reranking_settings(args: argparse.Namespace) -> KReciprocalSettings | None:
    """The settings ``--rerank`` asks for; ValueError if a tuning option comes without it."""
    if not args.rerank:
        for option, name in _TUNING:
            if getattr(args, name) is not None:
                raise ValueError(f"{option} only applies with --rerank")
        return None
    return KReciprocalSettings(
        k1=DEFAULT_K1 if args.rerank_k1 is None else args.rerank_k1,
        k2=DEFAULT_K2 if args.rerank_k2 is None else args.rerank_k2,
        lambda_value=DEFAULT_LAMBDA if args.rerank_lambda is None else args.rerank_lambda,
    )


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value
