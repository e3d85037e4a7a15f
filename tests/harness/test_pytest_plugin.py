"""The pytest plugin, exercised the way a detection-as-code repository uses it: inner pytest
sessions (``pytester``) with a passing and a failing detector, checking the outcomes and the
figures in the failure messages."""

from __future__ import annotations

import pytest

from harness import pytest_plugin
from harness.registry import DETECTORS, SCENARIOS

pytest_plugins = ["pytester"]

# Inner sessions run in this process, and pytester drops the modules they import when they end;
# NumPy cannot be imported twice in one process, so import every plugin (and NumPy) up front.
SCENARIOS.load_all()
DETECTORS.load_all()

RULES = '''
from harness.alerts import Alert, Entity
from harness.analytics import analytic_id, technique_id
from harness.detector import Detector
from harness.events import EventKind
from harness.fields import Field


class DeafRule(Detector):
    """Looks at DNS and never alerts: must fail assert_detects."""

    id = "deaf-rule"
    analytic = analytic_id("AN1225")
    techniques = (technique_id("T1071.004"),)
    required_fields = frozenset({Field.DNS_QUERY})
    consumes = frozenset({EventKind.DNS_QUERY})

    def observe(self, event):
        return ()


class BigUploadRule(Detector):
    """Alerts on every flow that sends more than a threshold: noisy on a backup agent."""

    id = "big-upload-rule"
    analytic = analytic_id("AN0030")
    techniques = (technique_id("T1001.001"),)
    required_fields = frozenset({Field.FLOW_BYTES})
    consumes = frozenset({EventKind.NETWORK_FLOW})

    def observe(self, event):
        if event.kind is EventKind.NETWORK_FLOW and event.bytes_out > 1_000_000:
            return [
                Alert(
                    analytic=self.analytic,
                    detector=self.id,
                    ts_ns=event.ts_ns,
                    score=1.0,
                    entity=Entity(host=event.host, dst_ip=event.dst_ip),
                    evidence=(event.event_id,),
                    reason=f"flow sent {event.bytes_out} bytes to {event.dst_ip}",
                )
            ]
        return ()


class BrokenRule(DeafRule):
    id = "broken-rule"

    def observe(self, event):
        raise RuntimeError("parser fell over")
'''

TESTS = """
from rules import BigUploadRule, BrokenRule, DeafRule

ONE_DAY = {"baseline_days": 1}


def test_reference_rule_catches_dns_tunnel(egress):
    result = egress.run(
        "an1225-abnormal-app-protocol", scenario="dns-tunnels", seeds=1, params=ONE_DAY
    )
    result.assert_detects("iodine-tunnel", max_latency_s=3600)
    assert result.parameters["workstations"] == 6  # the small office by default
    assert result.parameters["baseline_days"] == 1  # overridden


def test_reference_rule_quiet_on_backup_agent(egress):
    egress.run("an1225-abnormal-app-protocol", scenario="office-baseline", seeds=1).assert_quiet_on(
        "backup-agent"
    )


def test_deaf_rule_catches_dns_tunnel(egress):
    egress.run(DeafRule, scenario="dns-tunnels", seeds=1, params=ONE_DAY).assert_detects(
        "iodine-tunnel"
    )


def test_big_upload_rule_quiet_on_backup_agent(egress):
    egress.run(BigUploadRule, scenario="office-baseline", seeds=1).assert_quiet_on("backup-agent")


def test_broken_rule(egress):
    egress.run(BrokenRule, scenario="office-baseline", seeds=1).assert_quiet()
"""


def test_passing_and_failing_rules(pytester: pytest.Pytester) -> None:
    """One inner session (a few scenario runs), checked for outcomes and message contents."""
    pytester.makepyfile(rules=RULES, test_rules=TESTS)
    outcome = pytester.runpytest("-p", "no:cacheprovider", "-rf")
    outcome.assert_outcomes(passed=2, failed=3)
    text = outcome.stdout.str()

    # a missed detection: rate with interval, the seeds that missed, bytes left unalerted, and
    # the analytic's figures over the run
    assert "deaf-rule (AN1225) on dns-tunnels: 'iodine-tunnel' not detected as required" in text
    assert "detected in 0 of 1 seeds, below the required 100.0%; missed seeds: 0" in text
    assert "detection rate over seeds: 0.0% (95% CI 0.0% to 79.3%)" in text
    assert "seed 0: MISSED," in text
    assert "left unalerted" in text
    assert "AN1225 over this run: detection rate 0.0% (95% CI" in text
    assert "false alerts per 100 host-days" in text
    assert "run: seeds 0, profile edr, parameters {" in text

    # false alerts on a benign trap: how many, per seed, and each alert's reason
    assert "big-upload-rule (AN0030) on office-baseline:" in text
    assert "false alerts on 'backup-agent' over 1 seeds (allowed 0)" in text
    assert "citing backup-agent: flow sent" in text
    assert "AN0030 over this run:" in text

    # a detector that raises is an error, never a quiet pass or a miss
    assert "broken-rule (AN1225) on office-baseline: the detector could not be judged" in text
    assert "ERROR, the detector raised" in text
    assert "parser fell over" in text

    # the passing tests stay passing and the harness's frames are hidden from tracebacks
    assert "test_reference_rule_catches_dns_tunnel" not in text.split("short test summary")[-1]
    assert "def assert_detects(" not in text


def test_seeds_option_and_overrides(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(rules=RULES)
    pytester.makepyfile(
        test_seeds="""
from rules import DeafRule


def test_default_seeds_follow_the_option(egress):
    result = egress.run(DeafRule, scenario="office-baseline", params={"workstations": 3})
    assert result.seeds == (3, 4)
    assert result.parameters["workstations"] == 3
    assert result.parameters["baseline_days"] == 2
    assert result.actor("backup-agent").kind == "benign"
    assert [r.seed for r in result.records] == [3, 4]
    assert egress.run(DeafRule, scenario="office-baseline", params={"workstations": 3}) is result


def test_explicit_seeds_win(egress):
    result = egress.run(DeafRule, scenario="office-baseline", seeds=[7], params={"workstations": 3})
    assert result.seeds == (7,)
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--egress-seeds", "3-4")
    result.assert_outcomes(passed=2)


def test_unknown_actor_suggests_the_close_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(rules=RULES)
    pytester.makepyfile(
        test_unknown="""
import pytest
from harness.errors import UnknownPluginError
from rules import DeafRule


def test_typo(egress):
    result = egress.run(DeafRule, scenario="office-baseline", seeds=1, params={"workstations": 3})
    with pytest.raises(UnknownPluginError, match="did you mean 'backup-agent'"):
        result.assert_quiet_on("backup-agnet")
"""
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_plugin_is_registered(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.has_plugin("egress_harness")
    assert pytest_plugin.SMALL_OFFICE["workstations"] == 6
