"""Deterministic sample sources for the pipelines, so demos and tests run without real customer data."""
