"""A local server implementing the OpenAI Files + Batches API contract.

It lets the pipeline, its tests, the demo and CI run offline against the same HTTP contract as
production: the unmodified ``openai`` SDK and Airflow's ``OpenAIHook`` talk to it by base URL.
"""
