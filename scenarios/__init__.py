"""Scenario generators: a synthetic organisation (hosts, users, software, time), benign actors
with false-positive traps, malicious actors with their ATT&CK techniques, and named suites.

Scenarios depend on :mod:`harness` (the event model, ground truth and the scenario contract)
and never on :mod:`detectors`.
"""
