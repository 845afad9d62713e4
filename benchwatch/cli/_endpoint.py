"""Options shared by `bench --backend http` and `replay`: how to talk to a user's endpoint
(request template and response paths, or an adapter), its model name and version, and the
first-request check that turns "the endpoint does not take this suite" into one clear line."""

from __future__ import annotations

import argparse
from typing import Any

from benchwatch.errors import UsageError

DOC = "docs/bench.md, \"Your own endpoint\""


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(f"your own HTTP endpoint ({DOC})")
    g.add_argument("--predict-path", default="/predict", metavar="PATH",
                   help="the endpoint's path for predictions (default /predict)")
    g.add_argument("--request-template", metavar="JSON", default=None,
                   help='request body with "$inputs" where the batch goes (a list of rows) or '
                        '"$input" for one row per request, e.g. \'{"features": "$inputs"}\' '
                        '(default {"inputs": "$inputs"})')
    g.add_argument("--response-scores", metavar="PATH", default=None,
                   help="dotted path to the per-class scores (rows x classes) in the answer, "
                        "e.g. probabilities or predictions.*.proba (default outputs)")
    g.add_argument("--response-labels", metavar="PATH", default=None,
                   help="for an endpoint that answers labels only: the path to them (scores "
                        "become one-hot over the suite's classes; no confidence then)")
    g.add_argument("--adapter", metavar="MODULE:FUNCTION", default=None,
                   help="your own client code instead: FUNCTION(batch, post) -> scores, where "
                        "post(body) sends JSON and returns the decoded answer")


def options(args: argparse.Namespace, suite: Any) -> dict[str, Any]:
    """Keyword arguments for `HttpBackend` / `make_backend` from the parsed options."""
    from benchwatch.bench.http_mapping import JsonMapping, load_adapter

    mapped = args.request_template or args.response_scores or args.response_labels
    if args.adapter and mapped:
        raise UsageError("pass either --adapter or the JSON mapping options "
                         "(--request-template/--response-scores/--response-labels), not both")
    if not args.predict_path.startswith("/"):
        raise UsageError(f"--predict-path must start with /, got {args.predict_path!r}")
    classes = suite.metadata.get("class_labels") or [
        str(i) for i in range(int(suite.metadata.get("num_classes") or 0))]
    return {"path": args.predict_path,
            "adapter": load_adapter(args.adapter) if args.adapter else None,
            "mapping": JsonMapping.parse(args.request_template, args.response_scores,
                                         args.response_labels, classes) if mapped else None}


def require_identity(backend: Any, url: str) -> None:
    """A baseline must carry the model and version live traffic is labelled with: never a
    silent `unknown`/`unversioned`."""
    missing = [what for what, value in (("--name", backend.info.model),
                                        ("--version", backend.info.version))
               if value in ("", "unknown")]
    if missing:
        raise UsageError(f"{url}: the model's name and version are not known (the endpoint has "
                         f"no GET /info with \"model\" and \"version\"): pass "
                         f"{' and '.join(missing)}, the labels your probe uses "
                         "(@probe(model=..., version=...))")


def check_accepts(backend: Any, suite: Any, url: str, classes: bool = True) -> None:
    """One row of the suite, sent before anything is measured: an endpoint that refuses it
    gets one line saying why and what to pass (not a bare HTTP 500 mid-run); with `classes`,
    also one whose scores per row are not the suite's classes."""
    from benchwatch.bench.backends import BackendError

    try:
        out = backend.predict(suite.inputs[:1])
    except BackendError as e:
        if e.kind not in ("http_status", "malformed"):
            return  # unreachable, a timeout: the run itself reports it, as it always has
        default = " (the default suite, for the example model)" if suite.name == "digits" else ""
        said = (f"{url} did not take a row of suite {suite.name!r}{default}, "
                f"{suite.inputs.shape[1:]} numbers per row: {e}. Build a suite from your own "
                "data (`benchwatch suite build --from data.csv --label COLUMN ...`) and pass "
                f"--suite; if the endpoint expects another JSON shape, map it ({DOC})")
        if e.status is not None and 400 <= e.status < 500:  # refused as bad input: exit 2
            raise UsageError(said) from None
        raise BackendError(e.kind, said) from None  # a server error or an odd answer: exit 3
    k = suite.metadata.get("num_classes")
    if classes and k is not None and out.shape[1] != int(k):
        raise UsageError(f"{url} answers {out.shape[1]} scores per row but suite "
                         f"{suite.name!r} has {k} classes: pick the suite built for this "
                         "model, or point --response-scores at the per-class scores")
