"""Agent accounts in the decision engine: as principals of policies, and on behalf of users (intersection)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from policies.engine import CallContext, CompiledPolicy, ConnectorRules, Principal, RuleSet, decide

C = "c-1"
AGENT = "agent-1"


def policy(effect: str, *, agents=(), users=(), everyone=False, tools=(), pid="p") -> CompiledPolicy:
    return CompiledPolicy.compile(
        id=pid, name=pid, effect=effect, connector_id=C, everyone=everyone, agent_ids=agents, user_ids=users,
        tools=tools,
    )  # fmt: skip


def rules(*policies: CompiledPolicy, users=frozenset()) -> RuleSet:
    connector = ConnectorRules(connector_id=C, name="Demo", active=True, user_ids=users, policies=policies)
    return RuleSet(version=1, connectors={C: connector})


def call(principal: Principal, name: str = "search") -> CallContext:
    return CallContext(principal=principal, connector_id=C, method="tools/call", name=name)


AS_AGENT = Principal(user_id=None, agent_id=AGENT)
ON_BEHALF = Principal(user_id=1, agent_id=AGENT)


def test_an_agent_needs_an_allow_naming_it():
    assert not decide(rules(users=frozenset({1})), call(AS_AGENT))  # user assignments are not the agent's
    assert decide(rules(policy("allow", agents=[AGENT])), call(AS_AGENT))
    assert not decide(rules(policy("allow", agents=["other"])), call(AS_AGENT))
    assert decide(rules(policy("allow", everyone=True)), call(AS_AGENT))
    denied = decide(rules(policy("allow", agents=[AGENT]), policy("deny", agents=[AGENT], tools=["del*"], pid="d")),
                    call(AS_AGENT, "delete_all"))  # fmt: skip
    assert not denied and denied.rule == "policy:d"
    assert not decide(rules(policy("allow", users=[1])), call(AS_AGENT))  # a user policy does not cover agents


def test_on_behalf_of_needs_both():
    agent_only = rules(policy("allow", agents=[AGENT]))
    user_only = rules(users=frozenset({1}))
    both = rules(policy("allow", agents=[AGENT]), users=frozenset({1}))
    refused = decide(agent_only, call(ON_BEHALF))
    assert not refused and "(for the user)" in refused.reason
    refused = decide(user_only, call(ON_BEHALF))
    assert not refused and "(for the agent account)" in refused.reason
    allowed = decide(both, call(ON_BEHALF))
    assert allowed and allowed.rule == "on-behalf-of"
    deny_user_tool = rules(policy("allow", agents=[AGENT]), policy("deny", users=[1], tools=["search"], pid="d"),
                           users=frozenset({1}))  # fmt: skip
    assert not decide(deny_user_tool, call(ON_BEHALF))


@given(
    agent_allowed=st.booleans(),
    agent_denied_tool=st.booleans(),
    user_assigned=st.booleans(),
    user_denied_tool=st.booleans(),
    tool=st.sampled_from(["search", "delete"]),
)
def test_on_behalf_of_is_the_intersection(agent_allowed, agent_denied_tool, user_assigned, user_denied_tool, tool):
    policies = []
    if agent_allowed:
        policies.append(policy("allow", agents=[AGENT], pid="a"))
    if agent_denied_tool:
        policies.append(policy("deny", agents=[AGENT], tools=["delete"], pid="ad"))
    if user_denied_tool:
        policies.append(policy("deny", users=[1], tools=["delete"], pid="ud"))
    ruleset = rules(*policies, users=frozenset({1}) if user_assigned else frozenset())
    as_user = Principal(user_id=1)
    expected = decide(ruleset, call(AS_AGENT, tool)).allowed and decide(ruleset, call(as_user, tool)).allowed
    assert decide(ruleset, call(ON_BEHALF, tool)).allowed == expected
