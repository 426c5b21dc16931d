"""Which numbers printed in the seeds does the audit cover?

Usage: ``python -m analysis.seed_coverage [--claims figures/claims.json] [--seeds DIR]
[--list]``.

Every number printed in a seed (``../shared/seeds/NNN_*.txt``) must either be
*audited* (some row of the report's audit, ``claims.json``, whose group is that
seed states the same value) or *excluded* by one of :data:`EXCLUSIONS`, each
with its reason (page furniture, equation and line references, values that
only configure an experiment the audit recomputes, …). What is neither is
*open*: the work the audit has still to do. :data:`OPEN_BASELINE` holds the
number of open values per seed at the last count; the tests fail when a seed
has more, so coverage cannot silently fall (lower the baseline as rows are
added).

A number is matched by value, not by spelling: ``0.0016`` in a seed and
``≈ 0.0016`` or ``1.6e-3`` in a claim are the same; a percentage matches its
fraction too (``63.2 %`` and ``0.632``), and ``4,400`` in a claim states 4400.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["EXCLUSIONS", "OPEN_BASELINE", "Coverage", "SeedNumber", "coverage_response",
           "seed_numbers"]

#: a number as the seeds print it: digits with an optional decimal part or exponent, and
#: an optional percent sign; not part of a word (``FD002``, ``x1``) or of a longer number
NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(\s?%)?(?![\w.]*\w)")


#: where the number stands in an exclusion's pattern
MARK = "⟨N⟩"
#: prefixed to the context of an integer that continues a run of consecutive integers
#: (``12 13 14``: a code listing's line numbers, which the text dump runs into the code)
LINE_NUMBER = "⟦line⟧ "


def _in_line_numbering(text: str, m: re.Match) -> bool:
    if m.group(2) or not m.group(1).isdigit():
        return False
    n = int(m.group(1))
    before, after = text[max(m.start() - 6, 0):m.start()], text[m.end():m.end() + 6]
    if (re.search(rf"(?<![\d.]){n - 1}\s?$", before) is not None
            or re.match(rf"\s?{n + 1}(?![\d.])", after) is not None):
        return True
    # a listing line of its own: it starts with n, the line before with n − 1 or the one
    # after with n + 1 (a docstring or a continued call between numbered lines)
    start = text.rfind("\n", 0, m.start()) + 1
    if start != m.start():
        return False
    previous = text[text.rfind("\n", 0, max(start - 1, 0)) + 1:start] if start else ""
    end = text.find("\n", m.end())
    following = "" if end < 0 else text[end + 1:end + 12]
    return (re.match(rf"{n - 1}(?![\d.])", previous) is not None
            or re.match(rf"{n + 1}(?![\d.])", following) is not None)


@dataclass(frozen=True)
class Exclusion:
    """A class of printed numbers the audit leaves out, and why.

    ``pattern`` is searched in the number's surroundings (40 characters each side,
    whitespace collapsed) with the number itself replaced by ``⟨N⟩``, so a pattern
    says what stands next to the number. A value is excluded only when every one of
    its occurrences in the seed matches (a value printed once as a claim stays in).
    """

    reason: str
    pattern: str
    seeds: tuple[str, ...] = ()  # empty: every seed
    within: tuple[float, float] | None = None  # only values in this closed range

    def applies(self, seed: str, context: str, value: float) -> bool:
        return ((not self.seeds or seed in self.seeds)
                and (self.within is None or self.within[0] <= value <= self.within[1])
                and re.search(self.pattern, context) is not None)


_CODE = (r"(?:def |import |from |return|#|print|self|for |if |while |with |else:|out|ema|lam|"
         r"g_|torch|np\.|\"\"\"|assert|class |[A-Za-z_]\w* ?(?:=|\(|\[|\.[a-z_])|"
         r"[A-Za-z_]\w*: ?(?:int|float|str|bool|Optional|torch|np)\b|"  # an annotated argument
         r"[A-Za-z_]\w*, ?[A-Za-z_]\w* ?=)")  # a tuple assignment

#: the classes of numbers that are not claims (the first that applies gives the reason)
EXCLUSIONS = (
    Exclusion("page furniture (chapter, section, reading time, loop-trace headers, a "
              "separator's width, what a widget plots)",
              r"Chapter ⟨N⟩|⟨N⟩ min read|Section ⟨N⟩ of|Section \d+ of ⟨N⟩|LOOP TRACE · ⟨N⟩ "
              r"iterations|print\(\"-\" \* ⟨N⟩\)|plot traces ⟨N⟩ simulated training steps"),
    Exclusion("a line reference into a source file",
              r"\.(?:tex|py):(?:\d+-)?⟨N⟩|\.(?:tex|py):⟨N⟩-\d+|\.tex:\d+, ⟨N⟩|"
              r"\blines? (?:\d+-)?⟨N⟩(?:-\d+)? of|\.py lines (?:\d+-)?⟨N⟩|\b(?:code|on) line ⟨N⟩"
              r"|⟨N⟩ lines without explanation"),
    Exclusion("a citation year", r"(?:et al\.|[A-Z][a-z]+,?|\bA) ⟨N⟩(?=[\s),;.])",
              within=(1700, 2100)),
    Exclusion("an equation, algorithm, table or section number",
              r"(?i)(?:\beq\.?|\bequation|\balgorithm|\btable|\bfigure|\bsec\.?|\bsection|§)"
              r" ?\(?⟨N⟩|\bsections? (?:\d+\.\d+ \([^)]*\) and |\d+\.\d+ and )?⟨N⟩"
              r"|\bsec\. \d+\.\d+, ⟨N⟩"),
    Exclusion("the line number of a code listing",
              r"^⟦line⟧|(?:^|[\s\d]|[)\]:\"])⟨N⟩ ?(?:\d+ ?)*" + _CODE),
    Exclusion("a subscript, exponent, index or loop bound in a formula or code",
              r"[_^]\{?⟨N⟩|\{⟨N⟩\}|\[⟨N⟩\]|\[-⟨N⟩\]|\w\(⟨N⟩\)|range\(⟨N⟩|range\(\d+, ?⟨N⟩\)"),
    Exclusion("a formula's rendered copy in the text dump, its digits run together (√199 ≈ "
              "14.1 as 19914.1, 10^{-6} as 106, ½ as 12); the LaTeX source beside it is counted",
              r"⟨N⟩×\\sqrt\{|⟨N⟩\\lambda_\{\\min\} = 10\^|\[⟨N⟩,1\]\[\\sim 10\^"
              r"|⟨N⟩\(1-\\beta\) \\sim 10\^|, ⟨N⟩\+(?:\(K1\))?λmin\]|Kpei=⟨N⟩\+1gj"),
    Exclusion("an argument of a seed's experiment that the audit reruns (its synthetic "
              "source, the RUL target range, an illustrative batch)",
              r"blend \* ⟨N⟩\)|randn\(n\), ⟨N⟩\)|The floor ⟨N⟩ prevents|all ⟨N⟩ samples are easy"
              r"|(?:RUL|targets) (?:∈|in) \[0, ⟨N⟩\]|(?:uniform|values in) \[0, ⟨N⟩\)"
              r"|rand\(64, 1\) \* ⟨N⟩|\* ⟨N⟩ = Scale"),
    Exclusion("an illustrative number of an analogy from another field (cruise control, grid "
              "frequency, blood glucose)",
              r"speedometer drops to ⟨N⟩|100 - ⟨N⟩ = 4|e=⟨N⟩=4 km/h|\(50 / ⟨N⟩ Hz\)"
              r"|glucose \(e\.g\. ⟨N⟩ mmol/L\)", seeds=("004",)),
    Exclusion("the length of a code listing (not a property of the method)",
              r"lines of NumPy or ⟨N⟩ lines of PyTorch"),
)


@dataclass(frozen=True)
class SeedNumber:
    """One distinct value printed in a seed, where it first appears and its status."""

    seed: str
    text: str
    value: float
    context: str
    count: int
    status: str  # "audited", "excluded" or "open"
    why: str = ""  # the matching audit IDs, or the exclusion's reason


@dataclass
class Coverage:
    """The coverage of every seed: its numbers and their status."""

    numbers: list[SeedNumber] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for n in self.numbers:
            row = out.setdefault(n.seed, {"audited": 0, "excluded": 0, "open": 0})
            row[n.status] += 1
        return dict(sorted(out.items()))

    def open(self, seed: str | None = None) -> list[SeedNumber]:
        return [n for n in self.numbers if n.status == "open" and seed in (None, n.seed)]

    def markdown(self, *, list_open: bool = False) -> str:
        lines = ["| seed | distinct numbers | audited | excluded | open | open baseline |",
                 "| --- | --- | --- | --- | --- | --- |"]
        for seed, c in self.counts().items():
            lines.append(f"| {seed} | {sum(c.values())} | {c['audited']} | {c['excluded']} | "
                         f"{c['open']} | {OPEN_BASELINE.get(seed, '—')} |")
        if list_open:
            for n in self.open():
                lines.append(f"\n- seed {n.seed}: {n.text} (×{n.count}) … {n.context} …")
        return "\n".join(lines)


def _value(text: str, percent: bool) -> float:
    v = float(text)
    return v / 100 if percent else v


def _values_in(text: str) -> set[float]:
    """Every number in an audit row, as values (percentages also as fractions)."""
    out = set()
    for m in re.finditer(r"(?<![\w.])(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(\s?%)?", text):
        v = float(m.group(1))
        out.add(v)
        if m.group(2):
            out.add(v / 100)
    # a thousands separator: "4,400" in a claim also states 4400 (its parts stay in)
    for m in re.finditer(r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?![\w.,])", text):
        out.add(float(m.group(0).replace(",", "")))
    return out


def _same(a: float, values: set[float]) -> bool:
    return any(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15) for b in values)


def seed_numbers(text: str):
    """The distinct values printed in a seed's text.

    Returns ``(rows, contexts)``: rows ``(printed text, value, context, count)``
    in order of first appearance, and every occurrence's marked context per value.
    """
    seen: dict[float, list] = {}
    for m in NUMBER.finditer(text):
        value = _value(m.group(1), bool(m.group(2)))
        start, stop = max(m.start() - 40, 0), min(m.end() + 40, len(text))
        context = " ".join((text[start:m.start()] + MARK + text[m.end():stop]).split())
        if _in_line_numbering(text, m):
            context = LINE_NUMBER + context
        if value in seen:
            seen[value][3] += 1
            seen[value][4].append(context)
        else:
            seen[value] = [m.group(0).strip(), value, context, 1, [context]]
    return [(t, v, c, n) for t, v, c, n, _ in seen.values()], {
        v: entry[4] for v, entry in seen.items()}


#: open values per seed at the last count, ``python -m analysis.seed_coverage`` on the
#: committed ``figures/claims.json`` (lower these as audit rows are added)
OPEN_BASELINE: dict[str, int] = {"000": 0, "001": 0, "002": 0, "003": 0, "004": 0}


def coverage_response(claims_path: Path, seeds_dir: Path) -> Coverage:
    """The coverage of the seeds in ``seeds_dir`` by the audit rows in ``claims_path``."""
    rows = json.loads(Path(claims_path).read_text())
    by_group: dict[str, list[tuple[str, set[float]]]] = {}
    for r in rows:
        text = " ".join(str(r.get(k, "")) for k in ("claim", "source", "tolerance"))
        by_group.setdefault(r["group"], []).append((r["id"], _values_in(text)))
    coverage = Coverage()
    for path in sorted(Path(seeds_dir).glob("[0-9][0-9][0-9]_*.txt")):
        seed = path.name[:3]
        distinct, contexts = seed_numbers(path.read_text())
        audit = by_group.get(f"seed {seed}", [])
        for text, value, context, count in distinct:
            ids = [i for i, values in audit if _same(value, values)]
            if ids:
                coverage.numbers.append(SeedNumber(seed, text, value, context, count, "audited",
                                                   ", ".join(ids[:3])))
                continue
            reasons = [next((e.reason for e in EXCLUSIONS if e.applies(seed, c, value)), "")
                       for c in contexts[value]]
            reason = "; ".join(dict.fromkeys(reasons)) if all(reasons) else ""
            coverage.numbers.append(SeedNumber(seed, text, value, context, count,
                                               "excluded" if reason else "open", reason))
    return coverage


def main(argv=None) -> int:
    from ._common import results_dir

    parser = argparse.ArgumentParser(prog="python -m analysis.seed_coverage",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=Path,
                        default=results_dir().parent / "figures" / "claims.json")
    parser.add_argument("--seeds", type=Path,
                        default=results_dir().parents[1] / "shared" / "seeds")
    parser.add_argument("--list", action="store_true", help="list every open number")
    args = parser.parse_args(argv)
    for given, name in ((args.claims, "--claims"), (args.seeds, "--seeds")):
        if not given.exists():
            parser.error(f"{name} {given} does not exist")
    print(coverage_response(args.claims, args.seeds).markdown(list_open=args.list))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
