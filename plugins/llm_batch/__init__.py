"""Reusable pieces of nightly LLM batch pipelines on Airflow."""
