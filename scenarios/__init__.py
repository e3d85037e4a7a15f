"""Scenario generators: a synthetic organisation (hosts, users, software, time), benign actors
with false-positive traps, malicious actors with their ATT&CK techniques, and named suites.

Modules: ``world`` (environment and event recorder), ``inventory`` (software and prevalence),
``benign`` and ``malicious`` (actors), ``encodings`` (DNS tunnel tool encodings), ``office``,
``https_exfil`` and ``attacks`` (the scenarios), ``knobs`` (parameter declarations),
``strategies`` (public Hypothesis strategies over every knob), ``catalogue`` (the generated
``CATALOGUE.md``) and ``suites``.

Scenarios depend on :mod:`harness` (the event model, ground truth and the scenario contract)
and never on :mod:`detectors`.
"""
