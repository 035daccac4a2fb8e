"""``sieveopt validate``: run every cross-check (DRAM timing oracles, command-log checker, PIM
command counts, interconnect closed forms, CP-SAT vs brute force, energy vs IDD closed forms,
parity with other simulators where fixtures exist) and print one table."""

from __future__ import annotations

import argparse

from sieveopt.cli.common import add_json
from sieveopt.cli.output import emit, print_table


def register(sub: argparse._SubParsersAction) -> None:
    from sieveopt.validation.checks import CHECKS

    p = sub.add_parser("validate", help="run every cross-check against its reference, one table")
    p.add_argument("--only", action="append", choices=sorted(CHECKS), default=None,
                   help="run only this group (repeatable)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown (docs/validation.md)")
    add_json(p)
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import datetime

    from sieveopt import __version__
    from sieveopt.validation.checks import run_checks

    rows, wall = run_checks(args.only)
    data = {"date": datetime.date.today().isoformat(), "version": __version__,
            "rows": [r.to_dict() for r in rows], "wall_s": wall,
            "passed": sum(r.passed is True for r in rows), "failed": sum(r.passed is False for r in rows),
            "not_run": sum(r.passed is None for r in rows)}

    def render(d: dict) -> None:
        def f(v):
            return "-" if v is None else f"{v:.6g}"

        print_table("sieveopt validate", ["group", "check", "reference", "expected", "sieveopt",
                                          "error %", "tol %", "pass"],
                    [(r["group"], r["check"], r["reference"], f(r["expected"]), f(r["measured"]),
                      f(r["error_pct"]), f(r["tolerance_pct"]),
                      {True: "yes", False: "NO", None: "n/a: " + r["note"]}[r["passed"]])
                     for r in d["rows"]])
        print(f"{d['passed']} passed, {d['failed']} failed, {d['not_run']} not run; "
              + ", ".join(f"{k} {v:.1f}s" for k, v in d["wall_s"].items()))

    if args.markdown and not args.json:
        print(markdown(data))
    else:
        emit(args, data, render)
    return 1 if data["failed"] else 0


def markdown(d: dict) -> str:
    """The validate table as Markdown (what docs/validation.md records)."""
    def f(v):
        return "-" if v is None else f"{v:.6g}"

    lines = ["| group | check | reference | expected | sieveopt | error % | tol % | pass |",
             "|---|---|---|---|---|---|---|---|"]
    for r in d["rows"]:
        ok = {True: "yes", False: "**NO**", None: f"not run: {r['note']}"}[r["passed"]]
        lines.append(f"| {r['group']} | {r['check']} | {r['reference']} | {f(r['expected'])} | "
                     f"{f(r['measured'])} | {f(r['error_pct'])} | {f(r['tolerance_pct'])} | {ok} |")
    lines.append("")
    lines.append(f"{d['passed']} passed, {d['failed']} failed, {d['not_run']} not run "
                 f"(sieveopt {d['version']}, {d['date']}); wall s per group: "
                 + ", ".join(f"{k} {v:.1f}" for k, v in d["wall_s"].items()))
    return "\n".join(lines)
