"""How apply orders one host's actions when it runs several at once (apply.groups, waits_for)."""
from __future__ import annotations

import pytest

from reconciler.apply import groups, waits_for
from reconciler.plan import Action


def _action(kind: str, name: str, action: str = "create", deps=()) -> Action:
    return Action("h", kind, name, action, "live", "", deps=list(deps))


def test_kinds_run_one_group_after_another_and_deletions_apart():
    actions = [_action("Bridge", "br0"), _action("Network", "n"), _action("Volume", "p/a"), _action("Volume", "p/b"),
               _action("Guest", "g1"), _action("Guest", "g2"), _action("Guest", "old", "delete"),
               _action("Volume", "p/old", "delete"), _action("Network", "n-old", "delete")]
    # networks, pools and volumes are made in one group; deletions stay a group per kind
    assert groups(actions) == [[0], [1, 2, 3], [4, 5], [6], [7], [8]]


def test_networks_start_while_local_storage_is_made_and_network_storage_waits_for_them():
    actions = [_action("Network", "n1"), _action("Network", "n2"), _action("StoragePool", "local"),
               _action("Volume", "local/v", deps=["h/StoragePool/local"]), _action("StoragePool", "nfs"),
               _action("Volume", "nfs/v", deps=["h/StoragePool/nfs"])]
    actions[2].after, actions[4].after = {"type": "dir"}, {"type": "netfs"}
    [group] = groups(actions)
    assert waits_for(actions, group) == {0: set(), 1: {0}, 2: set(), 3: {2}, 4: {0, 1}, 5: {4}}


def test_within_a_group_only_dependencies_and_the_same_object_wait():
    actions = [_action("Volume", "p/base"), _action("Volume", "p/clone", deps=["h/Volume/p/base"]),
               _action("Volume", "p/other"), _action("Volume", "p/base", "update")]
    [group] = groups(actions)
    assert waits_for(actions, group) == {0: set(), 1: {0}, 2: set(), 3: {0}}


@pytest.mark.parametrize("kind", ["Bridge", "Network"])
def test_bridges_and_networks_change_one_at_a_time(kind):
    actions = [_action(kind, "br0"), _action(kind, "br1"), _action(kind, "br2")]
    [group] = groups(actions)
    assert waits_for(actions, group) == {0: set(), 1: {0}, 2: {0, 1}}


def test_the_summary_of_several_hosts_counts_each_host():
    from reconciler.apply import Result
    from reconciler.report import results_summary
    results = [Result("one/Guest/a", "done"), Result("two/Guest/b", "failed", "no"), Result("two/Guest/c", "done")]
    lines = results_summary(results).splitlines()
    assert lines[0] == "Apply: 2 done, 1 failed, 0 skipped."
    assert lines[1:] == ["  one: 1 done, 0 failed, 0 skipped", "  two: 1 done, 1 failed, 0 skipped"]
    assert results_summary(results[:1]) == "Apply: 1 done, 0 failed, 0 skipped."
