"""Sensitive values by reference: a manifest names where a password is (`{env: NAME}` or
`{file: path}`), never the password itself.

The value is read when the manifest is validated (a missing variable or file is an error at its
line) and again where apply writes it. Everywhere in between it travels as a token naming the
reference (`vr-secret:env:NAME`) in rendered XML, plan ops and saved plans, and as a keyed hash
(`Sensitive`, HMAC with a key made for this process) in compared values: equal hashes mean equal
values, and nothing printed or saved holds the value or a hash that could be attacked offline."""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets

from .errors import ReconcilerError

_KEY = secrets.token_bytes(32)          # this process's key: hashes are compared, never kept
_TOKEN = re.compile(r"vr-secret:(env|file):([A-Za-z0-9_=-]+)")
_ATTRIBUTE = re.compile(r"""(?<=\=["'])vr-secret:(env|file):([A-Za-z0-9_=-]+)(?=["'])""")   # a whole attribute value
MAX_BYTES = 64 * 1024


class Sensitive(str):
    """A keyed hash standing for a sensitive value (compared as a string); `token` names the
    reference it came from (None for a value read from a host)."""

    token: str | None = None

    @classmethod
    def of(cls, value: str, token: str | None = None) -> "Sensitive":
        digest = hmac.new(_KEY, value.encode(), hashlib.sha256).hexdigest()[:16]
        out = cls(f"(sensitive:{digest})")
        out.token = token
        return out


def is_sensitive(value) -> bool:
    return isinstance(value, str) and value.startswith("(sensitive")


def stable(values):
    """`values` with each Sensitive replaced by the reference it came from (what a record may
    keep: it does not change from run to run, holds no value, and is no token reveal replaces)."""
    if isinstance(values, dict):
        return {k: stable(v) for k, v in values.items()}
    if isinstance(values, Sensitive):
        match = _TOKEN.fullmatch(values.token or "")
        return f"(sensitive {' '.join(_parse_token(match)) if match else 'value'})"
    return values


def as_applied(recorded, desired, live):
    """Recorded values (a record keeps `stable` ones) with each sensitive one taken as what it
    stands for: the desired value when it names the same reference, else the live value (what
    was applied from another reference is not known, so it is not called drift)."""
    if isinstance(recorded, dict):
        return {k: as_applied(v, desired.get(k) if isinstance(desired, dict) else None,
                              live.get(k) if isinstance(live, dict) else None) for k, v in recorded.items()}
    if isinstance(recorded, str) and recorded.startswith("(sensitive "):
        return desired if isinstance(desired, Sensitive) and stable(desired) == recorded else live
    return recorded


def read_file(path: str) -> str:
    """The value a `{file: path}` reference names: the file's text without its last newline."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read the secret file {path}: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise ValueError(f"the secret file {path} is over {MAX_BYTES} bytes")
    try:
        return data.decode().removesuffix("\n")
    except UnicodeDecodeError:
        raise ValueError(f"the secret file {path} is not UTF-8 text") from None


def resolve(source: str, name: str) -> str:
    """The value of a reference (ValueError saying what is missing)."""
    if source == "env":
        if name not in os.environ:
            raise ValueError(f"the environment variable {name} is not set")
        return os.environ[name]
    return read_file(name)


def token(source: str, name: str) -> str:
    encoded = base64.urlsafe_b64encode(name.encode()).decode() if source == "file" else name
    return f"vr-secret:{source}:{encoded}"


def _parse_token(match: re.Match) -> tuple[str, str]:
    source, name = match.group(1), match.group(2)
    return source, base64.urlsafe_b64decode(name.encode()).decode() if source == "file" else name


def digest(text: str) -> Sensitive:
    """A value read from XML, as compared: a token is resolved first (the desired side)."""
    match = _TOKEN.fullmatch(text)
    if match is None:
        return Sensitive.of(text)
    try:
        return Sensitive.of(resolve(*_parse_token(match)), text)
    except ValueError as exc:
        raise ReconcilerError(str(exc)) from None


def value_of(text: str) -> str:
    """The value a token names, read now (a Secret's value, set through the secret API)."""
    match = _TOKEN.fullmatch(text)
    if match is None:
        raise ReconcilerError("a secret value must come from a reference ({env: NAME} or {file: path})")
    try:
        return resolve(*_parse_token(match))
    except ValueError as exc:
        raise ReconcilerError(f"{exc} (needed to set a secret's value)") from None


def reveal(xml: str) -> str:
    """`xml` with every token that is an attribute's whole value replaced by the value it names,
    read now; only the libvirt call that takes the XML sees it (text elsewhere, such as the owner
    record, is never replaced)."""
    def value(match: re.Match) -> str:
        try:
            return _xml_escape(resolve(*_parse_token(match)))
        except ValueError as exc:
            raise ReconcilerError(f"{exc} (needed to write a password)") from None
    return _ATTRIBUTE.sub(value, xml)


def _xml_escape(text: str) -> str:
    """`text` safe in XML text and attribute values."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;"))
