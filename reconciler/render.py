"""Render resolved objects to libvirt XML with the jinja2 templates in templates/ (escaped)."""
from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from . import __version__
from .identity import OWNER_NS


def _templates() -> Path:
    """templates/: installed as the package reconciler.templates (wheel, pipx, editable), or next
    to the package in a checkout used without installing it."""
    spec = importlib.util.find_spec("reconciler.templates")
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(__file__).resolve().parent.parent / "templates"


TEMPLATES = _templates()


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs (keyed by each template's source, so an edited or
    upgraded template is compiled again): a run no longer spends ~0.15 s compiling. None when the
    user's cache directory cannot be written."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "virt-reconcile" / "jinja2"
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(base)) if os.access(base, os.W_OK) else None


def _indent(text, width: int = 4, first: bool = False) -> Markup:
    """jinja2's `indent` filter (blank lines left alone) on rendered, already escaped XML, as plain
    text: the same output without escaping each line again (a fifth of a guest's rendering)."""
    pad = " " * width
    lines = (str(text) + "\n").splitlines()
    out = lines[0] + "".join("\n" + (pad + line if line else line) for line in lines[1:])
    return Markup(pad + out if first else out)


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        bytecode_cache=_bytecode_cache(),
        autoescape=True,  # every value is XML-escaped: names cannot inject elements
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["indent"] = _indent
    return env


def render(template: str, **context) -> str:
    """Render one template (e.g. 'domain.xml.j2') with the owner namespace and tool version."""
    return _env().get_template(template).render(owner_ns=OWNER_NS, version=__version__, **context)
