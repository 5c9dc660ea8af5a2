"""`/tasks/{taskId}/pay-rate-groups`: each task's pay-rate group over HTTP, as a list."""

from __future__ import annotations

from decimal import Decimal

from assignar_pipeline.pay.seed import ASSIGNAR_ORD_RATE_BY_PAY_LEVEL
from assignar_pipeline.simulator import catalog as cat


def _ord(group: dict) -> Decimal:
    item = next(i for i in group["pay_rates"] if i["pay_code"]["code"] == "ORD")
    return Decimal(str(item["rate"]))


def test_each_task_lists_its_pay_rate_group_with_the_level_rates(demo_api):
    """Each task lists one group: ORD at its pay level's rate, OT15 and OT20 at 1.5x and 2x."""
    tasks = demo_api.rows("/tasks")
    assert tasks
    for task in tasks:
        groups = demo_api.rows(f"/tasks/{task['id']}/pay-rate-groups")
        assert len(groups) == 1, task
        group = groups[0]
        assert group["task_id"] == task["id"]
        assert group["name"].startswith(task["pay_level"])
        base = Decimal(cat.PAY_RATE_BY_LEVEL[task["pay_level"]])
        rates = {i["pay_code"]["code"]: Decimal(str(i["rate"])) for i in group["pay_rates"]}
        assert rates == {"ORD": base, "OT15": base * Decimal("1.5"), "OT20": base * 2}
        assert all(isinstance(i["rate"], float | int) for i in group["pay_rates"])


def test_the_simulator_rates_are_the_ones_the_demo_pay_team_assumed(demo_api):
    """The served rates are those the demo Pay team's seed assumed (only Jun's rise differs)."""
    assumed = {level: str(rate) for level, rate in ASSIGNAR_ORD_RATE_BY_PAY_LEVEL.items()}
    assert assumed == cat.PAY_RATE_BY_LEVEL
    levels = {t["id"]: t["pay_level"] for t in demo_api.rows("/tasks")}
    carpenter = next(t for t in demo_api.rows("/tasks") if t["name"] == "Carpenter")
    group = demo_api.rows(f"/tasks/{carpenter['id']}/pay-rate-groups")[0]
    assert _ord(group) == ASSIGNAR_ORD_RATE_BY_PAY_LEVEL[levels[carpenter["id"]]] == Decimal("44.8")


def test_list_contract_applies_and_unknown_task_is_a_404(demo_api):
    """The sub-list pages, selects and filters like any list; an unknown task is the spec's 404."""
    rows = demo_api.rows("/tasks/2/pay-rate-groups", fields="id,name", sort="id", id__gt=0)
    assert rows == [{"id": cat.PAY_RATE_GROUP_BASE + 1, "name": "L3 Carpenter"}]
    assert demo_api.rows("/tasks/2/pay-rate-groups", name="L1 General Labourer") == []
    missing = demo_api.get("/tasks/999/pay-rate-groups")
    assert missing.status_code == 404
    assert "Task (id:999)" in missing.json()["errorMessage"]
    assert demo_api.get("/tasks/abc/pay-rate-groups").status_code == 404
    bad = demo_api.get("/tasks/2/pay-rate-groups", nope="1")
    assert bad.status_code == 400


def test_a_changed_group_rate_is_served_and_stamped(api, server):
    """A group rate changed through the control plane is served, with a new modified_time."""
    group_id = cat.PAY_RATE_GROUP_BASE + 1
    before = api.rows("/tasks/2/pay-rate-groups")[0]
    items = [
        dict(i, rate=46.1) if i["pay_code"]["code"] == "ORD" else i for i in before["pay_rates"]
    ]
    server.simulator.update("pay-rate-groups", group_id, {"pay_rates": items})
    after = api.rows("/tasks/2/pay-rate-groups")[0]
    assert _ord(after) == Decimal("46.1")
    assert after["modified_time"] > before["modified_time"]


def test_stats_name_the_route_template_not_the_task_id(api, server):
    """Request statistics group sub-resource calls by their template."""
    api.rows("/tasks/3/pay-rate-groups")
    routes = server.simulator.stats()["requests"]
    assert "GET /v2/tasks/{taskId}/pay-rate-groups" in routes
