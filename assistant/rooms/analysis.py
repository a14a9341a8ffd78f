"""What the contributions say as a group, read by the program (no model): who proposed what, where
participants agree, who objects to what, and which questions are open.

These sections are built from the contributions alone, so they are right whatever the model writes:
an objection is matched to the contribution it shares most words with, agreement is two or more
participants raising the same point, and a question mark makes an open question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.citations import content_words
from assistant.rooms.models import Contribution

MIN_SHARED_WORDS = 2
ACTOR = re.compile(
    r"\b((?:the )?(?:ministr(?:y|ies) of (?:culture|foreign affairs)|cultural ministries|governments?|funders?|"
    r"funding bodies|foundations?|cultural institutes?|municipalit(?:y|ies)|cities|festivals?|ASEF|UNESCO|"
    r"(?:the )?European Union|the EU|ASEAN|embassies|residenc(?:y|ies)|arts councils?)(?: in [A-Z][\w ]+?)?)\b",
    re.I,
)


def short(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rsplit(" ", 1)[0] + "…"


def names(people: Sequence[str]) -> str:
    people = list(dict.fromkeys(people))
    if len(people) <= 1:
        return "".join(people)
    return ", ".join(people[:-1]) + " and " + people[-1]


@dataclass
class Disagreement:
    point: Contribution | None
    objections: list[Contribution]

    def bullet(self) -> str:
        against = names([o.author for o in self.objections])
        reasons = "; ".join(f"{o.author}: “{short(o.text, 120)}”" for o in self.objections)
        if self.point is None:
            return f"- Objections raised by {against}: {reasons}."
        return (f"- On “{short(self.point.text, 120)}” ({self.point.kind} by {self.point.author}): "
                f"for — {self.point.author}; against — {against} ({reasons}).")


@dataclass
class Analysis:
    proposals: list[Contribution]
    agreements: list[list[Contribution]]
    disagreements: list[Disagreement]
    questions: list[Contribution]
    contributors: list[str]
    actor: str | None

    def agreement_lines(self) -> list[str]:
        lines = []
        for group in self.agreements:
            lead = group[0]
            others = [c.author for c in group[1:]]
            lines.append(f"- “{short(lead.text, 140)}” ({lead.kind} by {lead.author}), shared by {names(others)}.")
        return lines

    def disagreement_lines(self) -> list[str]:
        return [d.bullet() for d in self.disagreements]

    def question_lines(self) -> list[str]:
        return [f"- {short(q.text, 200)} (asked by {q.author})" for q in self.questions]

    def proposal_lines(self) -> list[str]:
        return [f"- {short(p.text, 240)} (proposed by {p.author})" for p in self.proposals]


def _overlap(a: Contribution, b: Contribution) -> int:
    return len(content_words(a.text) & content_words(b.text))


def analyse(contributions: Sequence[Contribution]) -> Analysis:
    """Group the contributions into proposals, agreements, disagreements and open questions."""
    points = [c for c in contributions if c.kind != "objection"]
    objections = [c for c in contributions if c.kind == "objection"]

    agreements: list[list[Contribution]] = []
    grouped: set[int] = set()
    for i, lead in enumerate(points):
        if lead.id in grouped:
            continue
        group = [lead] + [c for c in points[i + 1:] if c.author != lead.author and c.id not in grouped
                          and _overlap(lead, c) >= MIN_SHARED_WORDS]
        authors = {c.author for c in group}
        if len(authors) >= 2:
            agreements.append(group)
            grouped.update(c.id for c in group)

    by_point: dict[int, Disagreement] = {}
    loose: list[Contribution] = []
    for objection in objections:
        candidates = [(p, _overlap(objection, p)) for p in points if p.author != objection.author]
        best = max(candidates, key=lambda item: (item[1], item[0].id), default=None)
        if best is None or best[1] == 0:
            earlier = [p for p in points if p.author != objection.author and p.id < objection.id and p.kind == "proposal"]
            best = (earlier[-1], 0) if earlier else None
        if best is None:
            loose.append(objection)
            continue
        by_point.setdefault(best[0].id, Disagreement(best[0], [])).objections.append(objection)
    disagreements = sorted(by_point.values(), key=lambda d: d.point.id if d.point else 0)
    if loose:
        disagreements.append(Disagreement(None, loose))

    questions = [c for c in contributions if "?" in c.text]
    proposals = [c for c in contributions if c.kind == "proposal"]
    actor_match = next((m for p in proposals + points for m in [ACTOR.search(p.text)] if m), None)
    actor = actor_match.group(1) if actor_match else None
    return Analysis(proposals, agreements, disagreements, questions,
                    list(dict.fromkeys(c.author for c in contributions)), actor)
