"""Matching an Assignar project or worker to Pay, most certain rule first (pay-domain.md §3.4).

Pure functions over plain records, so the rules can be tested on any data without a database.
A `Match` either links (`pay_id` and the rule that matched, recorded on the link), or explains
why it cannot and lists the candidates a person chooses from. Only exact keys link: an existing
link, a code, an employee number, a unique email, a normalised name with the same client
(projects) or with the same date of birth (workers). Similar names only ever produce candidates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from assignar_pipeline.reconcile.normalize import (
    norm_code,
    norm_email,
    norm_name,
    norm_person,
    person_similarity,
    same_words,
    similarity,
)

#: Defaults (per connection in `reconcile_setting`): a similar project name is a candidate from
#: 0.85 ("Metro North Tunnel" ~ "Metro Nth Tunnel" scores 0.94; "… - Night Works" 0.70) when its
#: numbers and words agree (`same_words`); a person from 0.65 ("William Smith" ~ "Bill Smith"
#: 0.82, "Tom Smith" 0.68; "Leo Ryan" ~ "Leo Nguyen" 0.64 is not).
PROJECT_NAME_THRESHOLD = 0.85
WORKER_NAME_THRESHOLD = 0.65
MAX_CANDIDATES = 5


@dataclass(frozen=True)
class Match:
    """A link (`pay_id` set) or a conflict (`reason`, and the candidates, best first)."""

    pay_id: int | None = None
    rule: str | None = None
    reason: str = ""
    candidates: tuple[dict[str, Any], ...] = field(default=())

    @property
    def linked(self) -> bool:
        return self.pay_id is not None


# -- projects -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectFacts:
    """What Assignar says about a project, with its client resolved to Pay's where certain."""

    assignar_id: int
    name: str
    code: str | None
    client_name: str | None
    client_pay_id: int | None  # the Pay client its Assignar client is linked (or coded) to


@dataclass(frozen=True)
class PayProject:
    id: int
    name: str
    code: str | None
    client_id: int | None
    client_name: str | None
    status: str


def match_project(
    staged: ProjectFacts,
    pay_projects: Sequence[PayProject],
    threshold: float = PROJECT_NAME_THRESHOLD,
) -> Match:
    """Exact code → same normalised name and client, codes not contradicting → conflict with
    candidates (several exact, contradicting codes, similar names) → no candidate (create)."""
    code = norm_code(staged.code)
    if code:
        exact = [p for p in pay_projects if norm_code(p.code) == code]
        if len(exact) == 1:
            return Match(exact[0].id, "exact_code")
        if exact:
            return Match(
                reason=f"several Pay projects have the code {staged.code!r}",
                candidates=tuple(_project_candidate(p, 1.0, "exact_code") for p in exact),
            )
    name = norm_name(staged.name)
    same_name = [p for p in pay_projects if norm_name(p.name) == name]
    same_client = [p for p in same_name if _same_client(staged, p)]
    agreeing = [p for p in same_client if not (code and norm_code(p.code))]
    if len(same_client) == 1 and len(agreeing) == 1:
        return Match(agreeing[0].id, "normalized_name")
    scored = []
    for p in pay_projects:
        if p in same_name:
            rule = "same_name_and_client" if p in same_client else "same_name"
            scored.append((1.0, rule, p))
            continue
        other = norm_name(p.name)
        score = similarity(name, other)
        if score >= threshold and same_words(name, other):
            scored.append((score, "similar_name", p))
    scored.sort(key=lambda s: (-s[0], s[2].id))
    candidates = tuple(_project_candidate(p, s, r) for s, r, p in scored[:MAX_CANDIDATES])
    if not candidates:
        return Match()  # nothing like it in Pay: the loader creates it
    if len(same_client) > 1:
        reason = "several Pay projects have this name and client"
    elif same_client:
        other = same_client[0]
        reason = (
            f"same name and client as Pay project #{other.id} {other.name!r}, but the codes "
            f"differ ({staged.code!r} in Assignar, {other.code!r} in Pay)"
        )
    elif same_name:
        reason = "a Pay project has the same name but another client"
    else:
        reason = "Pay has projects with a similar name"
    return Match(reason=reason, candidates=candidates)


def _same_client(staged: ProjectFacts, p: PayProject) -> bool:
    """Both without a client, or the same Pay client (by link or code, else by name)."""
    staged_has = staged.client_pay_id is not None or bool(staged.client_name)
    if not staged_has or p.client_id is None:
        return not staged_has and p.client_id is None
    if staged.client_pay_id is not None:
        return staged.client_pay_id == p.client_id
    return bool(p.client_name) and norm_name(staged.client_name) == norm_name(p.client_name)


def _project_candidate(p: PayProject, score: float, rule: str) -> dict[str, Any]:
    return {
        "pay_id": p.id,
        "score": round(score, 3),
        "rule": rule,
        "name": p.name,
        "code": p.code,
        "client": p.client_name,
        "status": p.status,
    }


# -- workers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerFacts:
    assignar_id: int
    employee_id: str | None
    first_name: str
    last_name: str
    email: str | None
    dob: date | None


@dataclass(frozen=True)
class PayEmployee:
    id: int
    employee_number: str | None
    first_name: str
    last_name: str
    email: str | None
    dob: date | None
    status: str


def match_worker(
    staged: WorkerFacts,
    employees: Sequence[PayEmployee],
    staged_emails: Mapping[str, int],
    threshold: float = WORKER_NAME_THRESHOLD,
) -> Match:
    """Employee number → email unique on both sides → normalised full name with equal date of
    birth → otherwise a conflict, with the closest employees as candidates (possibly none).

    A strong key that contradicts (both sides have employee numbers and they differ) blocks
    every weaker one. `staged_emails` counts the connection's live workers per normalised email.
    """
    number = norm_code(staged.employee_id)

    def contradicts(e: PayEmployee) -> bool:
        return bool(number and e.employee_number and norm_code(e.employee_number) != number)

    by_number = [e for e in employees if number and norm_code(e.employee_number) == number]
    if len(by_number) == 1:
        return Match(by_number[0].id, "employee_number")
    email = norm_email(staged.email)
    by_email = [e for e in employees if email and norm_email(e.email) == email]
    if (
        not by_number
        and len(by_email) == 1
        and staged_emails.get(email or "", 0) == 1
        and not contradicts(by_email[0])
    ):
        return Match(by_email[0].id, "email")
    name = norm_person(staged.first_name, staged.last_name)
    by_name_dob = [
        e
        for e in employees
        if staged.dob is not None
        and e.dob == staged.dob
        and norm_person(e.first_name, e.last_name) == name
        and not contradicts(e)
    ]
    if not by_number and not by_email and len(by_name_dob) == 1:
        return Match(by_name_dob[0].id, "name_dob")

    scored: dict[int, tuple[float, str, PayEmployee]] = {}

    def offer(e: PayEmployee, score: float, rule: str) -> None:
        if e.id not in scored or scored[e.id][0] < score:
            scored[e.id] = (score, rule, e)

    for e in by_number:
        offer(e, 1.0, "employee_number")
    for e in by_email:
        offer(e, 1.0 if not contradicts(e) else 0.9, "email")
    for e in employees:
        score = person_similarity(staged.first_name, staged.last_name, e.first_name, e.last_name)
        if staged.dob is not None and e.dob == staged.dob:
            score = min(0.99, score + 0.05)  # same birthday: a little more likely the same person
        if score >= threshold:
            same = norm_person(e.first_name, e.last_name) == name
            offer(e, score, "same_name" if same else "similar_name")
    ranked = sorted(scored.values(), key=lambda s: (-s[0], s[2].id))[:MAX_CANDIDATES]
    candidates = tuple(_worker_candidate(e, s, r, contradicts(e)) for s, r, e in ranked)
    if len(by_number) > 1:
        reason = f"several Pay employees have the employee number {staged.employee_id!r}"
    elif by_email and contradicts(by_email[0]):
        e = by_email[0]
        reason = (
            f"email matches Pay employee #{e.id} but employee numbers differ "
            f"({staged.employee_id!r} in Assignar, {e.employee_number!r} in Pay)"
        )
    elif len(by_email) > 1 or (by_email and staged_emails.get(email or "", 0) > 1):
        reason = "several Pay employees or Assignar workers share this email"
    elif candidates:
        reason = "no employee number or email in common; similar names only"
    else:
        reason = "no Pay employee with this employee number, email or a similar name"
    return Match(reason=reason, candidates=candidates)


def _worker_candidate(e: PayEmployee, score: float, rule: str, contradicts: bool) -> dict[str, Any]:
    return {
        "pay_id": e.id,
        "score": round(score, 3),
        "rule": rule,
        "name": f"{e.first_name} {e.last_name}",
        "employee_number": e.employee_number,
        "email": e.email,
        "dob": e.dob.isoformat() if e.dob else None,
        "status": e.status,
        **({"note": "employee numbers differ"} if contradicts else {}),
    }
