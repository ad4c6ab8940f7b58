"""The count the vote log implies: a vote adds one, a replacement moves one. Pure.

Anyone holding an export can run it and compare the figures with the published results.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from gateway.audit import Entry

Choice = tuple[str, int]  # (circuit code, option number)


@dataclass
class Recount:
    """Standing votes per (circuit, option), built entry by entry.

    The order of entries does not matter: a worker writes a batch's votes in a shuffled order, so
    a replacement may come before the vote it replaces. A vote stands unless some replacement
    names its receipt.
    """

    _choices: dict[str, Choice] = field(default_factory=dict)  # every receipt logged
    _replaced: dict[str, int] = field(default_factory=dict)  # receipt -> seq that replaced it
    _found: list[str] = field(default_factory=list)

    def add(self, entry: Entry) -> None:
        if entry.kind not in ("vote", "replace"):
            return
        try:  # counted before it is checked: a damaged entry must not stop the check
            payload = json.loads(entry.payload)
            receipt, replaces = str(payload["receipt"]), payload.get("replaces")
            choice = (str(payload["circuit"]), int(payload["option"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            self._found.append(f"seq {entry.seq}: a {entry.kind} entry that cannot be read")
            return
        if receipt in self._choices:
            self._found.append(f"seq {entry.seq}: receipt {receipt} was already logged")
            return
        self._choices[receipt] = choice
        if entry.kind == "replace":
            self._replace(entry.seq, str(replaces))

    def _replace(self, seq: int, replaced: str) -> None:
        if replaced in self._replaced:
            earlier = self._replaced[replaced]
            self._found.append(f"seq {seq}: replaces {replaced}, which seq {earlier} replaced")
            return
        self._replaced[replaced] = seq

    @property
    def votes(self) -> Counter[Choice]:
        return Counter(c for r, c in self._choices.items() if r not in self._replaced)

    @property
    def anomalies(self) -> list[str]:
        """What no correct writer logs: the chain can be intact and still say these."""
        unknown = [
            f"seq {seq}: replaces {receipt}, which no vote in the log carries"
            for receipt, seq in self._replaced.items()
            if receipt not in self._choices
        ]
        return self._found + unknown

    def counting(self, entries: Iterable[Entry]) -> Iterator[Entry]:
        """The same entries, counted as they pass: one read serves the check and the count."""
        for entry in entries:
            self.add(entry)
            yield entry

    def table(self) -> list[str]:
        """`circuit option votes` lines, sorted, for people to compare with the results."""
        return [f"{c}\t{o}\t{n}" for (c, o), n in sorted(self.votes.items())]
