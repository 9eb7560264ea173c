"""Untrusted YAML text to plain data, built from parser events with bounded work.

Manifests come from pull requests, so the loader is an attack surface. Nothing here recurses on
input (deep nesting cannot exhaust the stack), documents are bounded in depth, in size after
aliases are expanded ("billion laughs"), in integer length and in file size; only the standard
YAML 1.2 tags are accepted; strings may not hold characters that libvirt's XML cannot keep
(control characters, line separators, surrogates, U+FFFE/U+FFFF). Every problem carries its line.

Mappings and sequences come back as Map and Seq: a dict and a list that remember the line of
each key and item, so any later error can name its line without parsing the file again.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (AliasEvent, CollectionStartEvent, DocumentStartEvent, MappingEndEvent,
                                MappingStartEvent, ScalarEvent, SequenceEndEvent)
from ruamel.yaml.reader import ReaderError

MAX_BYTES = 8 * 1024 * 1024     # one manifest file
MAX_DEPTH = 64                  # nested mappings and sequences
MAX_NODES = 100_000             # values in one document, aliases expanded
MAX_INT_DIGITS = 40             # libvirt's largest numbers have 20 digits

# Characters no string may hold: C0 controls (tab and newline included: attributes turn them into
# spaces), DEL, C1 controls, Unicode line/paragraph separators, surrogates and XML's non-characters.
BAD_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
# Values that are text of several lines, never written into libvirt XML: a cloud-init seed's
# documents (a Volume's spec.cloud_init, written into its ISO). They may hold newlines and tabs.
TEXT_PATHS = (("spec", "cloud_init"),)
TEXT_BAD_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")

_STD = "tag:yaml.org,2002:"
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?(?:0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*)$")
_FLOAT = re.compile(r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                        |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                        |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                        |[-+]?\.(?:inf|Inf|INF)
                        |\.(?:nan|NaN|NAN))$""", re.X)


class Map(dict):
    """A YAML mapping: a dict that knows the line (1-based) of each key (and, for values merged
    from another file, that file: `files`)."""

    __slots__ = ("lines", "files")


class Seq(list):
    """A YAML sequence: a list that knows the line (1-based) of each item."""

    __slots__ = ("lines", "files")


@dataclass
class Problem(Exception):
    """Something in the text that cannot be loaded: its line (1-based) and field path."""

    line: int | None
    path: tuple
    message: str


@dataclass
class Document:
    """One non-empty document: its data and the line it starts on."""

    line: int
    data: Any


def char_name(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def bad_chars_message(text: str, lines: bool = False) -> str | None:
    """Why `text` cannot be a value (the first forbidden character), or None; `lines`: a text
    value (TEXT_PATHS), which may hold newlines and tabs."""
    found = (TEXT_BAD_CHARS if lines else BAD_CHARS).search(text)
    if not found:
        return None
    return (f"character {char_name(found.group())} is not allowed in a value (control characters, "
            "line breaks and tabs would be changed or refused by libvirt)")


def decode(raw: bytes) -> str:
    """UTF-8 text of a manifest file, or Problem naming why and where not."""
    if len(raw) > MAX_BYTES:
        raise Problem(None, (), f"the file is over {MAX_BYTES} bytes, the limit for one manifest file "
                                "(split it into several files)")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or raw[:4] in (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00") \
            or (len(raw) >= 2 and (raw[0] == 0 or raw[1] == 0)):
        raise Problem(1, (), "the file is UTF-16 or UTF-32 encoded: save it as UTF-8")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise Problem(raw.count(b"\n", 0, nul) + 1, (), "the file holds a NUL byte: it is not a text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Problem(raw.count(b"\n", 0, exc.start) + 1, (),
                      f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}): save the file as UTF-8") from None


def _int(text: str, line: int, path: tuple) -> int:
    digits = text.replace("_", "").lstrip("+-")
    if len(digits) > MAX_INT_DIGITS:
        raise Problem(line, path, f"the number has {len(digits)} digits; no field takes more than 20")
    sign = -1 if text.startswith("-") else 1
    for prefix, base in (("0b", 2), ("0o", 8), ("0x", 16)):
        if digits.startswith(prefix):
            return sign * int(digits[2:], base)
    return sign * int(digits)


def _float(text: str, line: int, path: tuple) -> float:
    if len(text) > 100:
        raise Problem(line, path, "the number is too long")
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if lowered.endswith(".nan"):
        return float("nan")
    return float(text.replace("_", ""))


# what a plain scalar that is not a string starts with: null, bool, number (else it is a string)
_NULL_FIRST, _BOOL_FIRST, _NUMBER_FIRST = "~nN", "tTfF", "-+0123456789."
_SPECIAL_FIRST = _NULL_FIRST + _BOOL_FIRST + _NUMBER_FIRST


def _implicit(text: str, line: int, path: tuple) -> Any:
    """A plain scalar's value under the YAML 1.2 core schema (dates stay strings)."""
    if not text:
        return None
    first = text[0]
    if first in _NULL_FIRST and _NULL.match(text):
        return None
    if first in _BOOL_FIRST and text in _BOOL:
        return _BOOL[text]
    if first in _NUMBER_FIRST:
        if _INT.match(text):
            return _int(text, line, path)
        if _FLOAT.match(text):
            return _float(text, line, path)
    return text


def _tagged(tag: str, text: str, line: int, path: tuple) -> Any:
    """A scalar with an explicit standard tag (!!str, !!int, !!float, !!bool, !!null)."""
    kind = tag[len(_STD):]
    if kind == "str":
        return text
    if kind == "null" and _NULL.match(text):
        return None
    if kind == "bool" and text in _BOOL:
        return _BOOL[text]
    if kind == "int" and _INT.match(text):
        return _int(text, line, path)
    if kind == "float" and (_INT.match(text) or _FLOAT.match(text)):
        return _float(text, line, path)
    raise Problem(line, path, f"{text[:40]!r} is not a valid !!{kind}")


_SCALAR_TAGS = {_STD + t for t in ("str", "int", "float", "bool", "null")}
_ALLOWED = "!!str, !!int, !!float, !!bool, !!null, !!map, !!seq"


def _parse_events(text: str, pure: bool) -> Iterator:
    return YAML(typ="safe", pure=pure).parse(text)


@dataclass
class _Frame:
    container: Any          # Map or Seq
    anchor: str | None
    start: int              # node count when the collection started (its size is the difference)
    key: Any = None         # mapping: the key waiting for its value
    key_line: int = 0
    merges: list | None = None


class _Builder:
    """Turns one stream of parser events into Documents (iteratively, with the limits above)."""

    def __init__(self):
        self.docs: list[Document] = []
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.nodes = 0
        self.doc_line = 1

    def path(self) -> tuple:
        out = []
        for frame in self.stack:
            if isinstance(frame.container, Map):
                if frame.key is not None:
                    out.append("<<" if frame.key is _MERGE else frame.key)
            else:
                out.append(len(frame.container))
        return tuple(out)

    def count(self, n: int, line: int) -> None:
        self.nodes += n
        if self.nodes > MAX_NODES:
            raise Problem(line, self.path(), f"the document holds more than {MAX_NODES} values once its "
                                             "aliases are expanded (an alias bomb?)")

    def feed(self, ev) -> None:
        line = ev.start_mark.line + 1 if ev.start_mark is not None else None
        if isinstance(ev, DocumentStartEvent):
            self.anchors, self.nodes, self.doc_line = {}, 0, line or 1
        elif isinstance(ev, ScalarEvent):
            if not self.stack:
                self.doc_line = line
            self.count(1, line)
            value = self.scalar(ev, line)
            if ev.anchor:
                self.anchors[ev.anchor] = (value, 1)
            self.attach(value, line, ev.implicit[0] and ev.tag is None, ev.value)
        elif isinstance(ev, AliasEvent):
            if any(f.anchor == ev.anchor for f in self.stack):
                raise Problem(line, self.path(), f"alias *{ev.anchor} refers to a node that contains it")
            if ev.anchor not in self.anchors:
                raise Problem(line, self.path(), f"alias *{ev.anchor} has no anchor &{ev.anchor} before it")
            value, size = self.anchors[ev.anchor]
            self.count(size, line)
            self.attach(value, line, False, None)
        elif isinstance(ev, CollectionStartEvent):
            tag = str(ev.tag) if ev.tag is not None else None
            mapping = isinstance(ev, MappingStartEvent)
            if tag not in (None, "!", _STD + ("map" if mapping else "seq")):
                raise Problem(line, self.path(), f"YAML tag {tag} is not allowed here (allowed: {_ALLOWED})")
            if not self.stack:
                self.doc_line = line
            elif len(self.stack) >= MAX_DEPTH:
                raise Problem(line, self.path(), f"nested deeper than {MAX_DEPTH} levels")
            self.count(1, line)
            container = Map() if mapping else Seq()
            container.lines = {} if mapping else []
            self.stack.append(_Frame(container, ev.anchor, self.nodes - 1))
        elif isinstance(ev, (MappingEndEvent, SequenceEndEvent)):
            frame = self.stack.pop()
            if frame.merges:
                for merged in frame.merges:
                    for key, value in merged.items():
                        if key not in frame.container:
                            frame.container[key] = value
                            frame.container.lines[key] = merged.lines.get(key, line)
            if frame.anchor:
                self.anchors[frame.anchor] = (frame.container, self.nodes - frame.start)
            self.attach(frame.container, line, False, None)

    def scalar(self, ev, line: int) -> Any:
        tag = str(ev.tag) if ev.tag is not None else None
        text = ev.value
        if tag is None and not BAD_CHARS.search(text) and \
                (not ev.implicit[0] or (text and text[0] not in _SPECIAL_FIRST)):
            return text         # a quoted or plain string (the common case): no path needed
        path = self.path()
        bad = bad_chars_message(text, any(path[:len(p)] == p for p in TEXT_PATHS))
        if bad:
            raise Problem(line, path, bad)
        if tag is None:
            return _implicit(text, line, path) if ev.implicit[0] else text
        if tag == "!":
            return text
        if tag in _SCALAR_TAGS:
            return _tagged(tag, text, line, path)
        raise Problem(line, path, f"YAML tag {tag} is not allowed (allowed: {_ALLOWED})")

    def attach(self, value: Any, line: int, plain: bool, raw: str | None) -> None:
        if not self.stack:
            if value is not None:
                self.docs.append(Document(self.doc_line, value))
            return
        frame = self.stack[-1]
        container = frame.container
        if isinstance(container, Seq):
            container.append(value)
            container.lines.append(line)
            return
        if frame.key is None:
            if raw is None or isinstance(value, (Map, Seq)):
                raise Problem(line, self.path(), "a mapping key must be a plain value, not a mapping, "
                                                 "sequence or alias")
            frame.key, frame.key_line = (_MERGE if plain and raw == "<<" else raw), line
            return
        key, frame.key = frame.key, None
        if key is _MERGE:
            merged = list(value) if isinstance(value, Seq) else [value]
            if not all(isinstance(m, Map) for m in merged):
                raise Problem(line, self.path(), "a merge key (<<) takes a mapping or a list of mappings")
            frame.merges = (frame.merges or []) + merged
            return
        if key in container:
            raise Problem(frame.key_line, self.path() + (key,),
                          f"duplicate key {key!r} (first at line {container.lines[key]})")
        container[key] = value
        container.lines[key] = frame.key_line


_MERGE = object()


def load_text(text: str) -> list[Document]:
    """Every non-empty document of `text`; Problem on the first thing that cannot be loaded.

    libyaml parses first (fast); what it rejects but YAML 1.2 allows (a ':' inside a plain scalar
    in a flow mapping, as in {mac: 52:54:00:...}) is parsed again by ruamel's own parser."""
    for pure in (False, True):
        builder = _Builder()
        try:
            for ev in _parse_events(text, pure):
                builder.feed(ev)
            return builder.docs
        except MarkedYAMLError as exc:
            error: YAMLError = exc
        except ReaderError as exc:
            line = text.count("\n", 0, exc.position) + 1
            ch = exc.character if isinstance(exc.character, str) else chr(exc.character)
            raise Problem(line, (), f"character {char_name(ch)} is not allowed in YAML text") from None
    mark = error.problem_mark or error.context_mark
    problem = error.problem or error.context or "invalid YAML"
    raise Problem(mark.line + 1 if mark else None, (), f"YAML syntax: {problem}")


def where(data: Any, path: tuple, file: str, line: int) -> tuple[str, int]:
    """File and line of the deepest part of `path` found in `data` (built by load_text; a value
    merged from another file names it), else `file` and `line`."""
    node = data
    for part in path:
        if isinstance(node, Map) and part in node:
            line = node.lines.get(part, line)
            file = (getattr(node, "files", None) or {}).get(part, file)
            node = node[part]
        elif isinstance(node, Seq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lines[part]
            files = getattr(node, "files", None)
            file = files[part] if files and files[part] else file
            node = node[part]
        else:
            break
    return file, line


def line_of(data: Any, path: tuple, default: int) -> int:
    """Line of the deepest part of `path` found in `data` (built by load_text), else `default`."""
    return where(data, path, "", default)[1]
