"""Normalisation and similarity shared by every matching rule (pay-domain.md §3.4).

Codes compare exactly after folding; names are folded harder (accents, punctuation, company
suffixes) and may only ever produce *candidates* through `similarity`, never a link on their own.
Standard library only: difflib's ratio on folded names separates the demo's near-duplicates from
unrelated names as well as rapidfuzz would at these sizes (see tests/test_reconcile_matching.py).
"""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher

#: Trailing words that do not distinguish one project or company from another.
NAME_SUFFIXES = ("pty ltd", "pty", "ltd", "limited", "inc", "llc", "co", "project", "job", "site")
#: Letters NFKD does not decompose into a base letter plus accents.
_FOLD = str.maketrans(
    {"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"}
)
_PUNCTUATION = re.compile(r"[^\w]+")
_SUFFIX = re.compile(r"(?:\s+(?:" + "|".join(re.escape(s) for s in NAME_SUFFIXES) + r"))+$")


def fold(value: str | None) -> str:
    """Unicode-compatible, case-free, accent-free text (é → e, ß → ss)."""
    text = unicodedata.normalize("NFKC", value or "").casefold().translate(_FOLD)
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def norm_code(value: str | None) -> str | None:
    """Codes compare exactly after Unicode, case and whitespace folding; nothing fuzzier
    (`P-1001` and `P1001` stay different: at most candidates)."""
    if value is None:
        return None
    folded = " ".join(unicodedata.normalize("NFKC", value).split()).casefold()
    return folded or None


def norm_email(value: str | None) -> str | None:
    return value.strip().casefold() or None if value else None


def norm_name(value: str | None) -> str:
    """A project or client name: folded, `&` as `and`, punctuation as space, no trailing
    company or site suffix ("Westfield Parramatta - Stage 2" = "westfield parramatta stage 2")."""
    text = _PUNCTUATION.sub(" ", fold(value).replace("&", " and ").replace("'", ""))
    text = " ".join(text.replace("_", " ").split())
    stripped = _SUFFIX.sub("", text)
    return stripped or text


def norm_person(first: str | None, last: str | None) -> str:
    """A person's full name: folded, apostrophes and hyphens dropped ("O'Brien" = "obrien")."""
    return " ".join(_name_part(first).split() + _name_part(last).split())


def _name_part(value: str | None) -> str:
    text = fold(value).replace("'", "").replace("’", "").replace("-", " ")
    return " ".join(_PUNCTUATION.sub(" ", text).replace("_", " ").split())


def similarity(a: str, b: str) -> float:
    """0..1: difflib's ratio on the texts, or on their sorted words if that is higher (so that
    reordered words still score)."""
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    direct = SequenceMatcher(None, a, b, autojunk=False)
    if direct.real_quick_ratio() < 0.5:
        return 0.0  # cheap upper bound: cannot reach any threshold we use
    best = direct.ratio()
    sa, sb = " ".join(sorted(a.split())), " ".join(sorted(b.split()))
    if (sa, sb) != (a, b):
        best = max(best, SequenceMatcher(None, sa, sb, autojunk=False).ratio())
    return best


def same_words(a: str, b: str, floor: float = 0.75) -> bool:
    """Could two normalised names be the same thing written two ways? Their numbers agree
    ("Stage 2" is not "Stage 3", nor the project without a stage) and every word of each has a
    counterpart in the other: a word close to it ("Nth" ~ "North") or inside the other's letters
    ("Northwest" ~ "North West"). Different places with the same kind of work ("Karratha Data
    Centre", "Parramatta Data Centre") score high on characters but fail here."""
    words_a, words_b = a.split(), b.split()
    if {w for w in words_a if w.isdigit()} != {w for w in words_b if w.isdigit()}:
        return False

    def covered(words: list[str], others: list[str]) -> bool:
        joined = "".join(others)
        return all(
            w in joined
            or any(SequenceMatcher(None, w, o, autojunk=False).ratio() >= floor for o in others)
            for w in words
            if not w.isdigit()
        )

    return covered(words_a, words_b) and covered(words_b, words_a)


def person_similarity(first_a: str, last_a: str, first_b: str, last_b: str) -> float:
    """0..1 for two people: the family name weighs more than the given name ("William Smith"
    is nearer "Bill Smith" than "William Jones"); given and family names swapped also count."""
    fa, la, fb, lb = (_name_part(x) for x in (first_a, last_a, first_b, last_b))

    def part(x: str, y: str) -> float:
        return 1.0 if x == y and x else SequenceMatcher(None, x, y, autojunk=False).ratio()

    straight = 0.4 * part(fa, fb) + 0.6 * part(la, lb)
    swapped = 0.4 * part(fa, lb) + 0.6 * part(la, fb)
    return round(max(straight, swapped), 4)
