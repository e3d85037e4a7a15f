"""Reference detectors, one module per analytic, and the feature code they share.

Detectors depend on :mod:`harness` (events, alerts, the detector contract) only; they never
import :mod:`scenarios` and never see ground truth.
"""
