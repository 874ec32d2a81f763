"""Bibliographies in and out: BibTeX and RIS files read as a table (one row per entry) and tables
written back as either.

Reading keeps each entry's original text in a column (``bibtex`` or ``ris``), so a map built from a
bibliography exports its entries exactly as they were; any other table gets entries built from its
columns (title, authors, year, DOI, ...). The parsers are bibtexparser (v2) and rispy; LaTeX accents
and commands become Unicode with pylatexenc.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import pandas as pd

from .errors import InputError, shown_lines

log = logging.getLogger(__name__)
# bibtexparser logs every malformed block as a multi-line warning (read_bibtex reports them in one note),
# pylatexenc every command it cannot expand (such as \frac with a missing argument, which stays as text).
logging.getLogger("bibtexparser.splitter").setLevel(logging.ERROR)
logging.getLogger("pylatexenc.latex2text").setLevel(logging.ERROR)

ENTRY_COLUMNS = ("title", "abstract", "authors", "year", "venue", "doi", "keywords", "key", "entry_type")
BIBTEX_COLUMN, RIS_COLUMN = "bibtex", "ris"
# A bibliography's default text: what a paper is about, not its metadata or its raw entry.
TEXT_COLUMNS = ["title", "abstract"]
LIST_SEPARATOR = "; "

# BibTeX entry types and their RIS reference types, both ways (the first RIS type is the one written).
_BIB_TO_RIS = {
    "article": "JOUR", "inproceedings": "CPAPER", "conference": "CPAPER", "book": "BOOK", "inbook": "CHAP",
    "incollection": "CHAP", "phdthesis": "THES", "mastersthesis": "THES", "thesis": "THES",
    "techreport": "RPRT", "report": "RPRT", "unpublished": "UNPB", "online": "ELEC", "misc": "GEN",
    "manual": "GEN", "booklet": "PAMP", "proceedings": "CONF", "dataset": "DATA", "software": "COMP",
}
_RIS_TO_BIB = {
    "JOUR": "article", "JFULL": "article", "MGZN": "article", "NEWS": "article", "EJOUR": "article",
    "CPAPER": "inproceedings", "CONF": "inproceedings", "BOOK": "book", "EBOOK": "book", "CHAP": "incollection",
    "ECHAP": "incollection", "THES": "phdthesis", "RPRT": "techreport", "UNPB": "unpublished",
    "ELEC": "online", "WEB": "online", "PAMP": "booklet", "DATA": "dataset", "COMP": "software",
}
# Columns of any table that mean a bibliographic field, by lower-cased name, in order of preference.
_ALIASES = {
    "title": ("title", "primary_title"),
    "authors": ("authors", "author", "creators", "creator"),
    "year": ("year", "date", "published", "publication_year"),
    "venue": ("venue", "journal", "journaltitle", "booktitle", "journal_name", "container_title"),
    "doi": ("doi",),
    "url": ("url", "link"),
    "abstract": ("abstract", "summary"),
    "keywords": ("keywords", "keyword", "tags"),
    "key": ("key", "citation_key", "citekey", "bibtex_key"),
    "entry_type": ("entry_type",),
}
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_DOI_PREFIX = re.compile(r"^\s*(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
# A BibTeX key: what bibtexparser, BibTeX and biber all accept.
_VALID_KEY = re.compile(r"^[^\s,{}()=\"#%'\\~]+$")
# One RIS tag line; exporters differ in the spaces around the dash and leave "ER  -" bare.
_RIS_TAG = re.compile(r"^([A-Z][A-Z0-9])\s{1,2}-(?:\s(.*))?\s*$")


@dataclass
class Bibliography:
    """The entries of a BibTeX or RIS file as a table, and what the reader had to tell the user."""

    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    skipped_lines: list[int] = field(default_factory=list)


# --- LaTeX to Unicode -------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _latex_decoder():
    from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

    context = get_default_latex_context_db()
    # Logos and \url, which pylatexenc drops or wraps in <>, read as their text.
    context.add_context_category("explorer", prepend=True, macros=[
        MacroTextSpec("TeX", simplify_repl="TeX"), MacroTextSpec("LaTeX", simplify_repl="LaTeX"),
        MacroTextSpec("BibTeX", simplify_repl="BibTeX"), MacroTextSpec("url", simplify_repl="%s"),
        MacroTextSpec("textasciicircum", simplify_repl="^"),
    ])
    return LatexNodes2Text(math_mode="text", latex_context=context)


@lru_cache(maxsize=65_536)
def _decode_segment(segment: str) -> str:
    # A bare % starts a LaTeX comment, which would eat the rest of the field: in a field it means percent.
    try:
        return _latex_decoder().latex_to_text(re.sub(r"(?<!\\)%", r"\\%", segment))
    except Exception:  # pylatexenc raises KeyError, IndexError... on some malformed commands
        return _without_commands(segment)


def _without_commands(segment: str) -> str:
    return _plain(re.sub(r"\\(?:[A-Za-z]+\*?|.)", "", segment))


def _plain(segment: str) -> str:
    # Dashes before braces: "-{}-" is how a literal "--" is written.
    return (segment.replace("---", "\u2014").replace("--", "\u2013").replace("{", "").replace("}", "")
            .replace("``", "\u201c").replace("''", "\u201d").replace("~", " "))


def latex_to_unicode(value: str) -> str:
    """A BibTeX field's text as Unicode: accents and commands decoded ({\\"o} → ö, \\'e → é,
    --- → —), braces removed, whitespace collapsed."""
    if "\\" not in value and "$" not in value:
        return " ".join(_plain(value).split())
    # pylatexenc reads ~300 characters a millisecond: only the words holding a command or math go
    # through it (a word being what lies between spaces outside braces and math).
    words = [_decode_word(w) if ("\\" in w or "$" in w) else _plain(w) for w in _latex_words(value)]
    return " ".join(" ".join(words).split())


# Longer than this, a word is one brace group round a whole field ({{...}}) or hostile input.
_LONGEST_WORD = 2_000


def _decode_word(word: str) -> str:
    if len(word) <= _LONGEST_WORD:
        return _decode_segment(word)
    if word.startswith("{") and word.endswith("}"):
        return latex_to_unicode(word[1:-1])
    # No spaces to split at: commands are dropped rather than parsed (minutes of pylatexenc per megabyte).
    return _without_commands(word)


def _latex_words(value: str) -> list[str]:
    words, start, depth, math, i = [], 0, 0, False, 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
        elif ch == "$":
            math = not math
        elif ch.isspace() and depth == 0 and not math:
            if i > start:
                words.append(value[start:i])
            start = i + 1
        i += 1
    if start < len(value):
        words.append(value[start:])
    return words


def _verbatim(value: str | None) -> str | None:
    """A DOI or URL: kept as written (its dashes are not typography), but an escaped \\_ is decoded."""
    if not value:
        return None
    return latex_to_unicode(value) if "\\" in value else "".join(value.replace("{", "").replace("}", "").split())


def _split_names(value: str) -> list[str]:
    """BibTeX names split on "and" outside braces ({Barnes and Noble} stays one name)."""
    names, depth, start = [], 0, 0
    for match in re.finditer(r"[{}]|\s+and\s+", value, flags=re.IGNORECASE):
        token = match.group()
        if token == "{":
            depth += 1
        elif token == "}":
            depth = max(0, depth - 1)
        elif depth == 0:
            names.append(value[start:match.start()])
            start = match.end()
    names.append(value[start:])
    return [n for n in (latex_to_unicode(n) for n in names) if n]


def year_values(values: pd.Series) -> pd.Series:
    """The year in each value (a year, a date, "Spring 2019"), as Int64 with <NA> where none is found."""
    found = values.astype("string").str.extract(_YEAR.pattern, expand=False)
    return pd.to_numeric(found, errors="coerce").astype("Int64")


def _year(value) -> int | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    found = _YEAR.search(str(value))
    return int(found.group(1)) if found else None


def _doi(value: str | None) -> str | None:
    return _DOI_PREFIX.sub("", value).strip() or None if value else None


def _frame(rows: list[dict], raw_column: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[*ENTRY_COLUMNS, raw_column])
    for column in frame.columns:
        frame[column] = frame[column].astype("Int64" if column == "year" else "string")
    return frame


# --- BibTeX in --------------------------------------------------------------------------------------------


def read_bibtex(text: str, name: str) -> Bibliography:
    """The entries of a BibTeX file: malformed entries are skipped (their lines in a note), the
    entries after them kept; @string macros are resolved, comments and @preamble left out."""
    import bibtexparser
    from bibtexparser.model import DuplicateBlockKeyBlock, Entry

    library = bibtexparser.parse_string(text)
    entries: list[Entry] = list(library.entries)
    skipped: list[int] = []
    reasons: list[str] = []
    duplicates: list[str] = []
    for block in library.failed_blocks:
        if isinstance(block, DuplicateBlockKeyBlock) and isinstance(block.ignore_error_block, Entry):
            # The same key twice is two entries to the reader: both are kept.
            entries.append(block.ignore_error_block)
            duplicates.append(block.key)
            continue
        skipped.append((block.start_line or 0) + 1)
        error = getattr(block, "error", None)
        reasons.append(" ".join(str(getattr(error, "abort_reason", None) or error or "").split()))
    entries.sort(key=lambda e: e.start_line or 0)
    strings = {s.key.lower(): s.raw for s in library.strings if s.raw}
    rows = [_bibtex_row(entry, strings) for entry in entries]
    notes = []
    if skipped:
        reason = f": {reasons[0][:160]}" if reasons and reasons[0] else ""
        notes.append(f"Skipped {len(skipped):,} malformed BibTeX entr{'y' if len(skipped) == 1 else 'ies'} "
                     f"(line {shown_lines(sorted(skipped))}{reason}); the entries after "
                     f"{'it' if len(skipped) == 1 else 'them'} were kept. Fix the file to include "
                     f"{'it' if len(skipped) == 1 else 'them'}.")
    if duplicates:
        notes.append(f"{len(duplicates):,} entry key(s) appear more than once ({', '.join(duplicates[:5])}): "
                     "every entry was kept.")
    if not rows:
        raise InputError(f"{name}: no BibTeX entry could be read"
                         + (f" ({len(skipped):,} malformed, line {shown_lines(sorted(skipped))})." if skipped
                            else ". Entries look like @article{key, title = {...}}."))
    return Bibliography(frame=_frame(rows, BIBTEX_COLUMN), notes=notes, skipped_lines=sorted(skipped))


def _bibtex_row(entry, strings: dict[str, str]) -> dict:
    fields = {f.key.lower(): f.value for f in entry.fields if isinstance(f.value, str)}

    def text(*names: str) -> str | None:
        for n in names:
            if fields.get(n, "").strip():
                return latex_to_unicode(fields[n]) or None
        return None

    names = _split_names(fields.get("author") or fields.get("editor") or "")
    keywords = [k.strip() for k in re.split(r"[;,]", text("keywords", "keyword") or "") if k.strip()]
    return {
        "title": text("title"), "abstract": text("abstract"),
        "authors": LIST_SEPARATOR.join(names) or None,
        "year": _year(fields.get("year")) or _year(fields.get("date")),
        "venue": text("journal", "journaltitle", "booktitle"), "doi": _doi(_verbatim(fields.get("doi"))),
        "keywords": LIST_SEPARATOR.join(keywords) or None, "key": entry.key or None,
        "entry_type": (entry.entry_type or "").lower() or None,
        BIBTEX_COLUMN: _with_strings(entry.raw, strings),
    }


# A bare name after = or # in an entry: a macro, if an @string defines it. One pattern for every macro (one
# per macro and entry took 202 s for 2,000 macros): names are looked up, in the order they were defined.
_MACRO_USE = re.compile(r"[=#]\s*([^\s\"#%'(),={}\\]+)\s*(?=[,#})\s]|$)")


def _with_strings(raw: str, strings: dict[str, str]) -> str:
    """The entry's text, after the @string definitions it uses, so it stands on its own when exported."""
    if not strings:
        return raw
    used = sorted({name.lower() for name in _MACRO_USE.findall(raw)} & strings.keys(), key=list(strings).index)
    return "\n".join([*(strings[key] for key in used), raw])


# --- RIS in -----------------------------------------------------------------------------------------------


def read_ris(text: str, name: str) -> Bibliography:
    """The entries of a RIS file (TY ... ER): tags outside an entry (one whose TY line is missing or
    broken) are skipped with their line in a note; an entry missing its ER ends at the next TY."""
    import rispy

    lines = text.splitlines()
    chunks, orphans, unended = _ris_chunks(lines)
    rows, unreadable = [], []
    for start, end, tagged in chunks:
        try:
            record = rispy.loads("\n".join([*tagged, "ER  - "]))
        except Exception:  # rispy raises KeyError... on some malformed entries: that entry is skipped
            unreadable.append(start + 1)
            continue
        if record:
            rows.append(_ris_row(record[0], "\n".join(lines[start:end]).strip()))
    notes = []
    if unreadable:
        notes.append(f"Skipped {len(unreadable):,} RIS entr{'y' if len(unreadable) == 1 else 'ies'} that could not be "
                     f"read (line {shown_lines(unreadable)}); the others were kept.")
    if orphans:
        notes.append(f"Skipped {len(orphans):,} malformed RIS entr{'y' if len(orphans) == 1 else 'ies'} "
                     f"(line {shown_lines(orphans)}: tags outside a TY ... ER entry); the entries after "
                     f"{'it' if len(orphans) == 1 else 'them'} were kept. Fix the TY line to include "
                     f"{'it' if len(orphans) == 1 else 'them'}.")
    if unended:
        notes.append(f"{len(unended):,} RIS entr{'y' if len(unended) == 1 else 'ies'} (line {shown_lines(unended)}) "
                     "had no ER line: each was read up to the next TY or the end of the file.")
    if not rows:
        raise InputError(f"{name}: no RIS entry could be read. Entries start with a 'TY  - ' line and end "
                         "with 'ER  - '.")
    return Bibliography(frame=_frame(rows, RIS_COLUMN), notes=notes, skipped_lines=sorted(orphans + unreadable))


def _ris_chunks(lines: list[str]) -> tuple[list[tuple[int, int, list[str]]], list[int], list[int]]:
    """(first line, line after it, normalised tag lines) per entry, and the line numbers of the entries
    without a TY (skipped) and of those without an ER (kept)."""
    chunks: list[tuple[int, int, list[str]]] = []
    orphans: list[int] = []
    unended: list[int] = []
    current: list[str] | None = None
    start = 0
    in_orphan = False
    for i, line in enumerate(lines):
        match = _RIS_TAG.match(line.lstrip("\ufeff"))
        tag, value = (match.group(1), (match.group(2) or "").strip()) if match else (None, line.strip())
        if tag == "TY":
            if current is not None:
                unended.append(start + 1)
                chunks.append((start, i, current))
            current, start, in_orphan = [f"TY  - {value}"], i, False
        elif tag == "ER":
            if current is not None:
                chunks.append((start, i + 1, current))
            current, in_orphan = None, False
        elif current is not None and (tag or value):
            current.append(f"{tag}  - {value}" if tag else value)
        elif tag and not in_orphan:
            orphans.append(i + 1)
            in_orphan = True
    if current is not None:
        unended.append(start + 1)
        chunks.append((start, len(lines), current))
    return chunks, orphans, unended


def _ris_row(record: dict, raw: str) -> dict:
    def first(*names: str) -> str | None:
        for n in names:
            value = record.get(n)
            if isinstance(value, list):
                value = " ".join(value)
            if value and str(value).strip():
                return " ".join(str(value).split())
        return None

    authors = [*record.get("authors", []), *record.get("first_authors", [])]
    keywords = [k.strip() for k in record.get("keywords", []) if k.strip()]
    return {
        "title": first("title", "primary_title"), "abstract": first("abstract", "notes_abstract"),
        "authors": LIST_SEPARATOR.join(" ".join(a.split()) for a in authors) or None,
        "year": _year(first("year", "publication_year", "date")),
        "venue": first("secondary_title", "journal_name", "alternate_title3", "alternate_title2",
                       "alternate_title1"),
        "doi": _doi(first("doi")), "keywords": LIST_SEPARATOR.join(keywords) or None,
        "key": first("id"), "entry_type": first("type_of_reference"), RIS_COLUMN: raw,
    }


# --- out ----------------------------------------------------------------------------------------------------


def to_bibtex(frame: pd.DataFrame) -> str:
    """BibTeX for each row: its original entry when the table came from a .bib file, else an entry
    built from its columns (a key made up from the first author and the year when it has none)."""
    import bibtexparser

    strings: dict[str, str] = {}
    entries: list[str] = []
    fields = _field_columns(frame)
    if not fields.get("title") and BIBTEX_COLUMN not in frame.columns:
        raise InputError("The table has no title column (nor the entries of a .bib file) to write BibTeX from.")
    keys: set[str] = set()
    for row in _records(frame):
        raw = row.get(BIBTEX_COLUMN)
        if isinstance(raw, str) and raw.strip():
            parsed = bibtexparser.parse_string(raw, parse_stack=[])
            for string in parsed.strings:
                strings.setdefault(string.key.lower(), string.raw)
            for entry in parsed.entries:
                keys.add(entry.key)
            body = "\n".join(e.raw for e in parsed.entries) if parsed.entries else raw
            entries.append(body.strip())
            continue
        entries.append(_built_bibtex(row, fields, keys))
    return "\n\n".join([*strings.values(), *entries]) + "\n"


def _built_bibtex(row: dict, fields: dict[str, str], keys: set[str]) -> str:
    value = {name: row.get(column) for name, column in fields.items()}
    authors = _names(value.get("authors"))
    year = _year(value.get("year"))
    venue = _text(value.get("venue"))
    entry_type = _bib_type(_text(value.get("entry_type")), venue)
    key = _text(value.get("key"))
    key = key if key and _VALID_KEY.match(key) and key not in keys else _made_up_key(authors, year,
                                                                                  _text(value.get("title")), keys)
    keys.add(key)
    venue_field = "booktitle" if entry_type in ("inproceedings", "incollection", "inbook") else (
        "journal" if entry_type == "article" else "howpublished")
    items = [("title", _text(value.get("title"))), ("author", " and ".join(authors) or None),
             ("year", str(year) if year else None), (venue_field, venue), ("doi", _doi(_text(value.get("doi")))),
             ("url", _text(value.get("url"))), ("keywords", _list_text(value.get("keywords"))),
             ("abstract", _text(value.get("abstract")))]
    lines = [f"@{entry_type}{{{key},"]
    lines += [f"  {name} = {{{_bibtex_value(name, v, authors)}}}," for name, v in items if v]
    return "\n".join([*lines, "}"])


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "&": r"\&", "%": r"\%", "$": r"\$",
                   "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_SPECIAL = re.compile(r"[\\{}&%$#_~^]|--")


def escape_latex(value: str) -> str:
    """Text as a BibTeX field value that LaTeX prints as it is (Unicode stays: BibTeX 0.99d, bibtex8 and
    biber read UTF-8 files)."""
    return _LATEX_SPECIAL.sub(lambda m: "-{}-" if m.group() == "--" else _LATEX_SPECIALS[m.group()],
                              " ".join(value.split()))


def _bibtex_value(name: str, value: str, authors: list[str]) -> str:
    if name == "author":
        # A name holding "and" (an organisation) is braced, or it would read as two names.
        return " and ".join(f"{{{escape_latex(a)}}}" if re.search(r"\sand\s", a, flags=re.I) else escape_latex(a)
                            for a in authors)
    if name in ("doi", "url"):
        # Verbatim fields in biblatex: only the braces that would end the value are encoded.
        return value.replace("{", "%7B").replace("}", "%7D")
    return escape_latex(value)


def to_ris(frame: pd.DataFrame) -> str:
    """RIS for each row: its original entry when the table came from a .ris file, else one built from
    its columns."""
    import rispy

    class _Writer(rispy.RisWriter):
        def set_header(self, count: int) -> str:  # no "1." line before each entry: not every reader skips it
            return ""

    fields = _field_columns(frame)
    if not fields.get("title") and RIS_COLUMN not in frame.columns:
        raise InputError("The table has no title column (nor the entries of a .ris file) to write RIS from.")
    parts = []
    for row in _records(frame):
        raw = row.get(RIS_COLUMN)
        if isinstance(raw, str) and raw.strip():
            parts.append(raw.strip() + ("" if re.search(r"^ER\s{1,2}-", raw, flags=re.M) else "\nER  - "))
            continue
        value = {name: row.get(column) for name, column in fields.items()}
        entry_type = _text(value.get("entry_type"))
        record = {
            "type_of_reference": entry_type if entry_type in _RIS_TO_BIB else _BIB_TO_RIS.get(
                (entry_type or "").lower(), "JOUR" if _text(value.get("venue")) else "GEN"),
            "id": _text(value.get("key")), "title": _text(value.get("title")),
            "authors": _names(value.get("authors")) or None,
            "year": str(_year(value.get("year"))) if _year(value.get("year")) else None,
            "secondary_title": _text(value.get("venue")), "doi": _doi(_text(value.get("doi"))),
            "urls": [_text(value.get("url"))] if _text(value.get("url")) else None,
            "keywords": _split_list(value.get("keywords")) or None, "abstract": _text(value.get("abstract")),
        }
        # RIS is one field a line: a value holding a line break would end it early (or forge an "ER  -").
        parts.append(rispy.dumps([{k: v for k, v in record.items() if v}], implementation=_Writer).strip())
    return "\n\n".join(parts) + "\n"


def _field_columns(frame: pd.DataFrame) -> dict[str, str]:
    """The table's column for each bibliographic field, matched by name (case-insensitive)."""
    by_name = {str(c).strip().lower(): c for c in frame.columns}
    found = {}
    for name, aliases in _ALIASES.items():
        column = next((by_name[a] for a in aliases if a in by_name), None)
        if column is not None:
            found[name] = column
    return found


def _records(frame: pd.DataFrame) -> Iterable[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def _text(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = " ".join(str(value).split())
    return text or None


def _split_list(value) -> list[str]:
    text = _text(value)
    if not text:
        return []
    separator = ";" if ";" in text else ","
    return [part.strip() for part in text.split(separator) if part.strip()]


def _list_text(value) -> str | None:
    return ", ".join(_split_list(value)) or None


def _names(value) -> list[str]:
    """Authors from a cell: "A; B" (as read here), "A and B" (BibTeX) or a JSON-like list."""
    text = _text(value)
    if not text:
        return []
    text = text.strip("[]") if text.startswith("[") else text
    for separator in (";", " and "):
        if separator in text:
            return [n.strip(" '\"") for n in text.split(separator) if n.strip(" '\"")]
    return [text.strip(" '\"")]


def _bib_type(entry_type: str | None, venue: str | None) -> str:
    if entry_type:
        if entry_type.upper() in _RIS_TO_BIB:
            return _RIS_TO_BIB[entry_type.upper()]
        if re.fullmatch(r"[A-Za-z]+", entry_type):
            return entry_type.lower()
    return "article" if venue else "misc"


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]", "", folded).lower()


def _made_up_key(authors: list[str], year: int | None, title: str | None, taken: set[str]) -> str:
    """A key such as "goedel1931" (the first author's surname and the year), "a", "b", ... added until
    it is unique."""
    surname = ""
    if authors:
        first = authors[0]
        surname = first.split(",")[0] if "," in first else (first.split() or [""])[-1]
    stem = _ascii_word(surname)
    if not stem and title:
        stem = next((w for w in (_ascii_word(t) for t in title.split()) if len(w) > 3), "")
    stem = (stem or "entry") + (str(year) if year else "")
    key, suffix = stem, 0
    while key in taken:
        suffix += 1
        key = stem + _letters(suffix)
    return key


def _letters(n: int) -> str:
    out = ""
    while n:
        n, rest = divmod(n - 1, 26)
        out = chr(ord("a") + rest) + out
    return out
