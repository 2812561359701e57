"""Search in titles and descriptions.

PostgreSQL: full-text search over Clip.search_vector (title weighs A, description
B; the "clips" configuration stems English and folds case and accents), the query
in websearch syntax ("a phrase", -word, or), the last word also a prefix for
type-ahead, matches ranked by ts_rank. SQLite: the same syntax over the text as
typed, case folded for ASCII only, no ranking.
"""

import re
from dataclasses import dataclass, field
from functools import reduce
from operator import or_

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connections
from django.db.models import F, FloatField, Q, QuerySet
from django.db.models.functions import Cast

from clips.models import Clip

# A listener's search is a few words; more would only make a slower query.
MAX_TERMS = 8
CONFIGURATION = "clips"
# What search annotates on PostgreSQL: the relevance the catalogue orders by.
RANK = "search_rank"

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+")


@dataclass
class _Terms:
    """A search as websearch_to_tsquery reads it: groups of alternatives (or),
    all groups required, and terms that must be absent."""

    groups: list[list[str]] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    # The last bare word, which type-ahead may not have finished.
    unfinished: str = ""


def _terms(text: str) -> _Terms:
    terms = _Terms()
    either = False
    for negated, phrase, bare in _TOKEN.findall(text):
        if bare.lower() == "or":
            either = bool(terms.groups)
            continue
        absent = bool(negated) or bare.startswith("-")
        term = (bare[1:] if absent else bare) if bare else phrase
        if not term or len(terms.groups) + len(terms.absent) >= MAX_TERMS:
            continue
        if absent:
            terms.absent.append(term)
        elif either:
            terms.groups[-1].append(term)
        else:
            terms.groups.append([term])
        # A bare word after "or" stays whole: its prefix would be required.
        word = bare and not absent and not either and _WORD.fullmatch(bare)
        terms.unfinished = word.group() if word else ""
        either = False
    return terms


def search(clips: QuerySet[Clip], text: str) -> QuerySet[Clip]:
    """The clips matching `text`; on PostgreSQL annotated with their RANK."""
    if not text.strip():
        return clips
    if connections[clips.db].vendor == "postgresql":
        return _full_text(clips, text)
    return _portable(clips, _terms(text))


def ranked(clips: QuerySet[Clip]) -> bool:
    """Whether `clips` came out of search() with a relevance to order by."""
    return RANK in clips.query.annotations


def _full_text(clips: QuerySet[Clip], text: str) -> QuerySet[Clip]:
    unfinished = _terms(text).unfinished
    if not unfinished:
        query = SearchQuery(text, search_type="websearch", config=CONFIGURATION)
    else:
        # "pian" finds "piano": the last word is also a prefix (and a prefix
        # matches the word itself, stemmed the same way).
        head = text[: text.rstrip().rfind(unfinished)]
        query = SearchQuery(f"{unfinished}:*", search_type="raw", config=CONFIGURATION)
        if head.strip():
            query &= SearchQuery(head, search_type="websearch", config=CONFIGURATION)
    # ts_rank is a real, whose text (how it reaches Python) is rounded: as a
    # double it comes back exact, and a cursor's rank equals the row's.
    rank = Cast(SearchRank(F("search_vector"), query), FloatField())
    return clips.filter(search_vector=query).annotate(**{RANK: rank})


def _portable(clips: QuerySet[Clip], terms: _Terms) -> QuerySet[Clip]:
    def found(term: str) -> Q:
        return Q(title__icontains=term) | Q(description__icontains=term)

    for group in terms.groups:
        clips = clips.filter(reduce(or_, map(found, group)))
    if terms.absent:
        clips = clips.exclude(reduce(or_, map(found, terms.absent)))
    return clips
