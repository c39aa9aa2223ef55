from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.services import connector_set_access, connector_update
from policies.cache import current_rules
from policies.engine import CallContext, ConnectorRules, Principal, RuleSet, decide, may_see
from tests.factories import ConnectorFactory, GroupFactory

C = "c-1"


def rules(**kw) -> RuleSet:
    base = dict(connector_id=C, name="Demo", active=True)
    base.update(kw)
    return RuleSet(version=1, connectors={C: ConnectorRules(**base)})


def ctx(user_id=1, groups=(), connector=C, name=None) -> CallContext:
    return CallContext(
        principal=Principal(user_id=user_id, group_ids=frozenset(groups)),
        connector_id=connector,
        method="tools/call",
        name=name,
    )


def test_direct_and_group_assignment_allow():
    assert decide(rules(user_ids=frozenset({1})), ctx()).allowed
    assert decide(rules(group_ids=frozenset({7})), ctx(user_id=2, groups={7})).allowed


def test_no_assignment_denies_with_reason():
    decision = decide(rules(user_ids=frozenset({1})), ctx(user_id=2))
    assert not decision and decision.rule == "no-assignment" and "Demo" in decision.reason


def test_inactive_and_unknown_connectors_deny():
    assert decide(rules(user_ids=frozenset({1}), active=False), ctx()).rule == "connector-inactive"
    assert decide(rules(user_ids=frozenset({1})), ctx(connector="other")).rule == "unknown-connector"


@given(
    users=st.frozensets(st.integers(0, 20)),
    groups=st.frozensets(st.integers(0, 20)),
    user=st.integers(0, 20),
    user_groups=st.frozensets(st.integers(0, 20)),
    active=st.booleans(),
)
def test_allowed_exactly_when_active_and_assigned(users, groups, user, user_groups, active):
    decision = decide(rules(user_ids=users, group_ids=groups, active=active), ctx(user_id=user, groups=user_groups))
    assert decision.allowed == (active and (user in users or bool(groups & user_groups)))


def test_may_see_filters_names():
    assert may_see(rules(user_ids=frozenset({1})), ctx(), ["a", "b"]) == ["a", "b"]
    assert may_see(rules(), ctx(), ["a", "b"]) == []


@pytest.mark.django_db(transaction=True)
def test_cached_rules_follow_changes(admin_user, user):
    connector = ConnectorFactory()
    principal = Principal(user_id=user.pk, group_ids=frozenset(user.groups.values_list("id", flat=True)))

    def check():
        return decide(
            current_rules(), CallContext(principal=principal, connector_id=str(connector.id), method="tools/call")
        )

    assert not check()
    connector_set_access(connector=connector, actor=admin_user, users=[user.username])
    assert check()
    connector_update(connector=connector, actor=admin_user, status="disabled")
    assert check().rule == "connector-inactive"
    connector_update(connector=connector, actor=admin_user, status="active")
    team = GroupFactory(name="team")
    connector_set_access(connector=connector, actor=admin_user, users=[], groups=["team"])
    assert not check()
    principal = Principal(user_id=user.pk, group_ids=frozenset({team.pk}))
    assert check()
