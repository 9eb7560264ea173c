"""JSON Schema of the manifests, generated from the pydantic models."""
from __future__ import annotations

import json

from pydantic import TypeAdapter

from .models import Document


def manifest_schema() -> dict:
    schema = TypeAdapter(Document).json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "virt-reconcile manifest document"
    return schema


def schema_text() -> str:
    return json.dumps(manifest_schema(), indent=2, sort_keys=True) + "\n"
