"""The decision engine with policies: pure tests, property tests, and the cached rules from the database."""

from __future__ import annotations

import time

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from policies.cache import current_rules
from policies.engine import (
    CallContext,
    CompiledPolicy,
    ConnectorRules,
    PolicyError,
    Principal,
    RuleSet,
    decide,
    may_see,
)
from policies.services import policy_create, policy_delete, policy_update
from tests.factories import ConnectorFactory, GroupFactory, UserFactory

C = "conn"
ALICE = Principal(user_id=1, group_ids=frozenset({10}))
BOB = Principal(user_id=2)


def policy(effect="deny", connector=C, **kw) -> CompiledPolicy:
    return CompiledPolicy.compile(
        id=kw.pop("id", "p1"), name=kw.pop("name", "rule"), effect=effect, connector_id=connector, **kw
    )


def rules(*policies, users=(1,), groups=(), active=True) -> RuleSet:
    local = tuple(p for p in policies if p.connector_id == C)
    global_ = tuple(p for p in policies if p.connector_id is None)
    connector = ConnectorRules(C, "Files", active, frozenset(users), frozenset(groups), local)
    return RuleSet(version=1, connectors={C: connector}, global_denies=global_)


def call(principal=ALICE, name="read_file", arguments=None, method="tools/call", client="cursor", ip="10.0.0.5"):
    return CallContext(
        principal=principal,
        connector_id=C,
        method=method,
        name=name,
        arguments=arguments or {},
        client_name=client,
        ip=ip,
    )


def test_any_matching_deny_wins_over_assignment_and_allow():
    deny = policy(tools=["delete_*"], everyone=True, description="no deletes")
    allow = policy("allow", id="p2", tools=["*"], user_ids=[2])
    r = rules(deny, allow)
    decision = decide(r, call(name="delete_file"))
    assert not decision and decision.rule == "policy:p1" and "no deletes" in decision.reason
    assert decide(r, call(name="read_file")).rule == "assignment"
    assert not decide(r, call(principal=BOB, name="delete_file"))
    assert decide(r, call(principal=BOB, name="read_file")).rule == "policy:p2"


def test_global_denies_apply_everywhere():
    r = rules(policy(connector=None, everyone=True, client_names=["evil-*"]))
    assert not decide(r, call(client="Evil-Client"))
    assert decide(r, call(client="cursor"))
    with pytest.raises(PolicyError):
        policy("allow", connector=None, everyone=True)


def test_allow_without_assignment_is_scoped_to_its_targets():
    r = rules(policy("allow", tools=["read_*"], group_ids=[20]), users=())
    carol = Principal(user_id=3, group_ids=frozenset({20}))
    assert decide(r, call(principal=carol, name="read_file"))
    assert not decide(r, call(principal=carol, name="write_file"))
    # the connector opens (initialize, lists) and the list shows only what the allow covers
    assert decide(r, CallContext(principal=carol, connector_id=C, method="initialize"))
    assert may_see(r, call(principal=carol), ["read_file", "write_file"]) == ["read_file"]
    assert not decide(r, CallContext(principal=BOB, connector_id=C, method="initialize"))


@pytest.mark.parametrize(
    "condition,arguments,denied",
    [
        ({"path": "path", "op": "begins_with", "value": "/etc/"}, {"path": "/etc/passwd"}, True),
        ({"path": "path", "op": "begins_with", "value": "/etc/"}, {"path": "/home/a"}, False),
        ({"path": "opts.depth", "op": "gt", "value": 3}, {"opts": {"depth": 5}}, True),
        ({"path": "opts.depth", "op": "gt", "value": 3}, {"opts": {"depth": "5"}}, False),
        ({"path": "opts.depth", "op": "lte", "value": 3}, {"opts": {"depth": 3}}, True),
        ({"path": "mode", "op": "in", "value": ["w", "a"]}, {"mode": "w"}, True),
        ({"path": "mode", "op": "not_in", "value": ["r"]}, {"mode": "w"}, True),
        ({"path": "mode", "op": "not_in", "value": ["r"]}, {}, True),
        ({"path": "mode", "op": "equals", "value": "r"}, {}, False),
        ({"path": "mode", "op": "not_equals", "value": "r"}, {"mode": "r"}, False),
        ({"path": "query", "op": "contains", "value": "DROP"}, {"query": "x; DROP TABLE"}, True),
        ({"path": "tags", "op": "contains", "value": "prod"}, {"tags": ["dev", "prod"]}, True),
        ({"path": "items.1", "op": "equals", "value": "b"}, {"items": ["a", "b"]}, True),
        ({"path": "url", "op": "matches", "value": r"^https?://(10|192\.168)\."}, {"url": "http://10.1.2.3/"}, True),
        (
            {"path": "url", "op": "matches", "value": r"^https?://(10|192\.168)\."},
            {"url": "https://example.com"},
            False,
        ),
    ],
)
def test_argument_conditions(condition, arguments, denied):
    r = rules(policy(tools=["*"], everyone=True, conditions=[condition]))
    assert decide(r, call(arguments=arguments)).allowed is not denied


def test_conditions_cannot_hide_items_from_lists():
    r = rules(
        policy(tools=["write_file"], everyone=True, conditions=[{"path": "path", "op": "begins_with", "value": "/etc"}])
    )
    assert may_see(r, call(), ["read_file", "write_file"]) == ["read_file", "write_file"]
    assert not decide(r, call(name="write_file", arguments={"path": "/etc/x"}))


def test_client_and_ip_conditions():
    r = rules(policy(everyone=True, ip_ranges=["10.0.0.0/8"], client_names=["cursor"]))
    assert not decide(r, call(ip="10.9.9.9", client="Cursor"))
    assert decide(r, call(ip="192.168.1.1", client="cursor"))
    assert decide(r, call(ip="10.9.9.9", client="claude-code"))
    assert decide(r, call(ip=None, client="cursor"))


def test_resources_and_prompts_targets():
    r = rules(policy(resources=["file:///secret/*"], prompts=["admin_*"], everyone=True))
    assert not decide(r, call(method="resources/read", name="file:///secret/key"))
    assert decide(r, call(method="resources/read", name="file:///public/readme"))
    assert not decide(r, call(method="prompts/get", name="admin_reset"))
    assert decide(r, call(name="admin_reset"))  # a tool of that name is not a prompt


@pytest.mark.parametrize(
    "bad",
    [
        {"conditions": [{"path": "x", "op": "like", "value": 1}]},
        {"conditions": [{"path": "", "op": "equals", "value": 1}]},
        {"conditions": [{"path": "x", "op": "matches", "value": "(unclosed"}]},
        {"conditions": [{"path": "x", "op": "gt", "value": "three"}]},
        {"conditions": [{"path": "x", "op": "in", "value": "abc"}]},
        {"ip_ranges": ["10.0.0.0/33"]},
        {"tools": "delete_*"},
        {"client_names": [""]},
    ],
)
def test_bad_policies_are_refused_with_a_reason(bad):
    with pytest.raises(PolicyError) as info:
        policy(everyone=True, **bad)
    assert str(info.value)


def test_regex_conditions_are_linear_on_hostile_input():
    r = rules(policy(tools=["*"], everyone=True, conditions=[{"path": "q", "op": "matches", "value": "(a+)+$"}]))
    start = time.perf_counter()
    decide(r, call(arguments={"q": "a" * 200_000 + "!"}))
    assert time.perf_counter() - start < 0.5


names = st.sampled_from(["read_file", "write_file", "delete_file", "list", "admin_x"])
globs = st.lists(st.sampled_from(["*", "read_*", "delete_*", "write_file", "admin_?", "nothing"]), max_size=3)


@settings(max_examples=300, deadline=None)
@given(
    deny_tools=globs,
    allow_tools=globs,
    assigned=st.booleans(),
    name=names,
    deny_everyone=st.booleans(),
    allow_for_user=st.booleans(),
)
def test_resolution_properties(deny_tools, allow_tools, assigned, name, deny_everyone, allow_for_user):
    import fnmatch

    deny = policy(tools=deny_tools, everyone=deny_everyone, user_ids=[] if deny_everyone else [99])
    allow = policy("allow", id="p2", tools=allow_tools, user_ids=[1] if allow_for_user else [])
    r = rules(deny, allow, users=(1,) if assigned else ())
    decision = decide(r, call(name=name))

    def covers(patterns):
        return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)

    denied = deny_everyone and covers(deny_tools)
    allowed = assigned or (allow_for_user and covers(allow_tools))
    assert decision.allowed == (allowed and not denied)
    if decision.allowed is False and denied:
        assert decision.rule == "policy:p1"


@pytest.mark.django_db(transaction=True)
def test_policies_from_the_database_take_effect_at_once(admin_user):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    GroupFactory(name="eng").user_set.add(bob)
    connector = ConnectorFactory()
    connector.users.add(alice)

    def check(principal_user, name="drop_table", arguments=None):
        principal = Principal(
            user_id=principal_user.pk, group_ids=frozenset(principal_user.groups.values_list("id", flat=True))
        )
        ctx = CallContext(
            principal=principal,
            connector_id=str(connector.id),
            method="tools/call",
            name=name,
            arguments=arguments or {},
        )
        return decide(current_rules(), ctx)

    assert check(alice) and not check(bob)
    deny = policy_create(
        actor=admin_user, name="No drops", effect="deny", connector=connector, everyone=True, tools=["drop_*"]
    )
    assert check(alice).rule == f"policy:{deny.id}"
    allow = policy_create(
        actor=admin_user, name="Eng reads", effect="allow", connector=connector, groups=["eng"], tools=["select_*"]
    )
    assert check(bob, "select_rows") and not check(bob, "insert_rows")
    policy_update(policy=deny, actor=admin_user, enabled=False)
    assert check(alice)
    policy_delete(policy=allow, actor=admin_user)
    assert not check(bob, "select_rows")
    actions = list(
        AuditEvent.objects.filter(resource_type="policy").order_by("id").values_list("action_type", flat=True)
    )
    assert actions == ["policy_created", "policy_created", "policy_updated", "policy_deleted"]


@pytest.mark.django_db
def test_service_validation(admin_user):
    with pytest.raises(ValidationError, match="can only deny"):
        policy_create(actor=admin_user, name="x", effect="allow", connector=None, everyone=True)
    with pytest.raises(ValidationError, match="unknown operator"):
        policy_create(
            actor=admin_user,
            name="x",
            effect="deny",
            connector=None,
            everyone=True,
            conditions=[{"path": "a", "op": "nope", "value": 1}],
        )
    with pytest.raises(ValidationError, match="ghost"):
        policy_create(actor=admin_user, name="x", effect="deny", connector=None, users=["ghost"])


@settings(max_examples=200, deadline=None)
@given(
    globs=st.lists(
        st.lists(st.sampled_from(["cursor", "claude*", "*code", "*evil*", "v?code", "x"]), max_size=2), max_size=6
    ),
    client=st.sampled_from(["cursor", "claude-code", "vscode", "my-evil-bot", "Claude", "", "x"]),
)
def test_client_index_agrees_with_checking_every_global_deny(globs, client):
    denies = [policy(connector=None, id=f"g{i}", everyone=True, client_names=names) for i, names in enumerate(globs)]
    r = rules(*denies)
    ctx = call(client=client)
    naive = next((p for p in denies if p.matches(ctx)), None)
    decision = decide(r, ctx)
    assert decision.allowed == (naive is None)
    if naive is not None:
        assert decision.rule == f"policy:{naive.id}"
