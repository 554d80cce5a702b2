"""The pieces a report is made of; :mod:`.html` and :mod:`.markdown` each render them their way."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass
class Para:
    """Plain text (escaped by the renderers); ``kind`` is ``""``, ``"note"`` or ``"warn"``."""

    text: str
    kind: str = ""


@dataclass
class KeyValues:
    """A two-column list of facts, e.g. the protocol of a run."""

    items: list[tuple[str, str]]


@dataclass
class Table:
    """Cells already formatted as text; ``bold`` marks the best values of a column."""

    columns: list[str]
    rows: list[list[str]]
    bold: list[list[bool]] | None = None
    numeric: list[bool] | None = None
    caption: str = ""
    note: str = ""
    kind: str = ""

    def is_bold(self, i: int, j: int) -> bool:
        return bool(self.bold and self.bold[i][j])

    def is_numeric(self, j: int) -> bool:
        return bool(self.numeric and self.numeric[j])


@dataclass
class Figure:
    """A PNG; ``name`` is its file stem when the Markdown writes it to an assets folder."""

    name: str
    png: bytes
    caption: str = ""


@dataclass
class Thumb:
    jpeg: bytes | None
    lines: list[str]
    missing: str = ""


@dataclass
class Gallery:
    title: str
    thumbs: list[Thumb] = field(default_factory=list)
    note: str = ""


@dataclass
class Details:
    """Long preformatted text, folded away in HTML (e.g. the whole run.json)."""

    summary: str
    text: str


Block = Heading | Para | KeyValues | Table | Figure | Gallery | Details
