"""JSON Schema of the manifests, generated from the pydantic models."""
from __future__ import annotations

import json

from pydantic import TypeAdapter

from typing import Annotated, Union

from pydantic import Field

from .models import (BridgeDoc, GuestClassDoc, GuestDoc, GuestSetDoc, HostDoc, NetworkDoc, SecretDoc, StoragePoolDoc,
                     VolumeDoc)

# Every document a manifest may hold: the kinds of objects, and the fleet kinds expanded into Guests.
AnyDocument = Annotated[Union[HostDoc, BridgeDoc, SecretDoc, NetworkDoc, StoragePoolDoc, VolumeDoc, GuestDoc, GuestClassDoc, GuestSetDoc],
                        Field(discriminator="kind")]


def manifest_schema() -> dict:
    schema = TypeAdapter(AnyDocument).json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "virt-reconcile manifest document"
    return schema


def schema_text() -> str:
    return json.dumps(manifest_schema(), indent=2, sort_keys=True) + "\n"
