"""A plan is data: ordered actions with before, after, reason, impact and the ops apply runs."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from . import __version__
from .errors import PlanFileError

FORMAT_VERSION = "1.0"

# Impact of a change, from mildest to worst.
IMPACTS = ("live", "restart", "disruptive", "destructive")
IMPACT_HELP = {
    "live": "takes effect now, nothing restarts",
    "restart": "the guest must restart for it to take effect (apply --restart does it)",
    "disruptive": "apply restarts or stops a running object (network, pool, guest)",
    "destructive": "data is lost: apply needs --allow-destroy",
}
SYMBOLS = {"create": "+", "update": "~", "recreate": "-/+", "delete": "-", "start": ">", "stop": "#",
           "pause": "||", "resume": ">>",
           "restart": "@", "move": "=>"}


def worst(impacts) -> str:
    return max(impacts, key=IMPACTS.index, default="live")


@dataclass
class Change:
    """One field: path, live value, desired value, and what changing it costs."""

    path: str
    before: Any
    after: Any
    impact: str


class OpName(str, Enum):
    """Every operation a plan may hold; apply carries each out through steps.STEPS."""

    DEFINE_DOMAIN = "define_domain"
    DEFINE_NETWORK = "define_network"
    DEFINE_POOL = "define_pool"
    BUILD_POOL = "build_pool"
    START = "start"
    STOP = "stop"
    SUSPEND = "suspend"
    RESUME = "resume"
    SET_AUTOSTART = "set_autostart"
    SET_MEMORY = "set_memory"
    SET_VCPUS = "set_vcpus"
    ATTACH_DEVICE = "attach_device"
    DETACH_DEVICE = "detach_device"
    UPDATE_DEVICE = "update_device"
    SET_LIVE_OWNER = "set_live_owner"
    UNDEFINE = "undefine"
    ADOPT_OWNER = "adopt_owner"
    DROP_OWNER = "drop_owner"
    RECORD = "record"
    FORGET = "forget"
    SHUTDOWN = "shutdown"
    RESTART = "restart"
    NETWORK_UPDATE = "network_update"
    REPLUG_GUESTS = "replug_guests"
    CREATE_VOLUME = "create_volume"
    DELETE_VOLUME = "delete_volume"
    RESIZE_VOLUME = "resize_volume"
    EDIT = "edit"
    SET_GRAPHICS_PASSWORD = "set_graphics_password"
    DEFINE_SECRET = "define_secret"
    SET_SECRET_VALUE = "set_secret_value"
    SET_VOLUME_PERMISSIONS = "set_volume_permissions"
    BRIDGE_APPLY = "bridge_apply"
    BRIDGE_PERSIST = "bridge_persist"
    BRIDGE_DELETE = "bridge_delete"
    MIGRATE = "migrate"            # a guest from another host of the run (args name it: source)
    FORGET_ON = "forget_on"        # an ownership record removed from another host of the run
    FIND_VOLUME = "find_volume"    # a volume's file, on storage this host shares with another, is there
    COPY_VOLUME = "copy_volume"    # a volume's data, streamed from another host of the run
    COPY_FILE = "copy_file"        # a guest's NVRAM or TPM state file, from another host of the run


# ops whose "source" names another host of the run (apply hands them its connection)
PEER_OPS = (OpName.MIGRATE, OpName.FORGET_ON, OpName.COPY_VOLUME, OpName.COPY_FILE)


@dataclass
class Op:
    """One libvirt step of an action, run by apply in order."""

    name: OpName
    args: dict = field(default_factory=dict)


@dataclass
class Action:
    """What to do to one object, and why."""

    host: str
    kind: str
    name: str
    action: str
    impact: str
    reason: str
    changes: list[Change] = field(default_factory=list)
    before: dict | None = None
    after: dict | None = None
    ops: list[Op] = field(default_factory=list)
    deps: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{self.host}/{self.kind}/{self.name}"


@dataclass
class Plan:
    """Every action for every host, in the order apply runs them."""

    hosts: dict[str, str]
    actions: list[Action] = field(default_factory=list)
    instances: dict[str, str] = field(default_factory=dict)     # host -> instance
    git: dict = field(default_factory=dict)                     # {"commit": ..., "dirty": ...}
    fingerprints: dict[str, str] = field(default_factory=dict)  # address -> hash of what was read
    problems: list[str] = field(default_factory=list)   # hosts or objects that could not be planned
    warnings: list[str] = field(default_factory=list)   # what was noticed and left alone
    unmanaged: dict[str, list[str]] = field(default_factory=dict)   # plan --show-unmanaged
    kept: list[dict] = field(default_factory=list)     # owned objects that left the manifests, not pruned
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    tool_version: str = __version__
    format_version: str = FORMAT_VERSION

    @property
    def empty(self) -> bool:
        return not self.actions

    def sources(self) -> dict[str, str]:
        """The other hosts moves take objects from: address on them -> the moving action's address."""
        return {f"{op.args['source']}/{a.kind}/{a.name}": a.address for a in self.actions for op in a.ops
                if op.name in PEER_OPS}

    def touched_hosts(self) -> list[str]:
        """The hosts apply connects to and locks: those with actions, and those moves take from."""
        return sorted({a.host for a in self.actions} | {address.split("/")[0] for address in self.sources()})

    def summary(self) -> dict:
        counts = {a: 0 for a in SYMBOLS}
        impacts = {i: 0 for i in IMPACTS}
        for action in self.actions:
            counts[action.action] += 1
            impacts[action.impact] += 1
        return {"actions": counts, "impacts": impacts}

    def to_json(self, with_ops: bool = True) -> dict:
        doc = {"format_version": self.format_version, "tool_version": self.tool_version,
               "created_at": self.created_at, "hosts": self.hosts, "instances": self.instances,
               "git": self.git, "summary": self.summary(), "problems": self.problems, "warnings": self.warnings,
               **({"unmanaged": self.unmanaged} if self.unmanaged else {}), "kept": self.kept,
               "changes": [_action_json(a, with_ops) for a in self.actions]}
        if with_ops:
            doc["fingerprints"] = self.fingerprints
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> "Plan":
        major = str(doc.get("format_version", "")).split(".")[0]
        if major != FORMAT_VERSION.split(".")[0]:
            raise PlanFileError(f"plan format_version {doc.get('format_version')!r} is not {FORMAT_VERSION}")
        actions = []
        for a in doc["changes"]:
            a = dict(a)
            a.pop("address", None)
            a["changes"] = [Change(**c) for c in a.get("changes", [])]
            a["ops"] = [Op(OpName(o["name"]), o.get("args", {})) for o in a.get("ops", [])]
            actions.append(Action(**a))
        return cls(hosts=doc["hosts"], actions=actions, created_at=doc["created_at"],
                   tool_version=doc["tool_version"], format_version=doc["format_version"],
                   instances=doc.get("instances", {}), git=doc.get("git", {}),
                   fingerprints=doc.get("fingerprints", {}), problems=doc.get("problems", []),
                   warnings=doc.get("warnings", []), kept=doc.get("kept", []))

    def save(self, path) -> None:
        try:
            with open(path, "w", encoding="utf-8") as out:
                json.dump(self.to_json(), out, indent=1, default=str)
        except OSError as exc:
            raise PlanFileError(f"cannot write the plan to {path}: {exc.strerror or exc}") from None

    @classmethod
    def load(cls, path) -> "Plan":
        try:
            with open(path, encoding="utf-8") as src:
                return cls.from_json(json.load(src))
        except OSError as exc:
            raise PlanFileError(f"cannot read plan {path}: {exc.strerror or exc}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PlanFileError(f"{path} is not a plan saved by 'virt-reconcile plan --out' ({exc!r})") from None


def _action_json(action: Action, with_ops: bool) -> dict:
    doc = {"address": action.address, **asdict(action)}
    if not with_ops:
        doc.pop("ops")
    return doc
