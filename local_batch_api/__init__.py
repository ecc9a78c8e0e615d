"""A local server implementing the OpenAI Files + Batches API contract, and its other dialects.

It lets the pipeline, its tests, the demo and CI run offline against the same HTTP contract as
production: the unmodified ``openai`` SDK and Airflow's ``OpenAIHook`` talk to it by base URL.
The same process answers Azure OpenAI's data plane (``/openai/...``) and Anthropic's Message
Batches and Messages (``/v1/messages...``) from the same store and engine; see ``app.py``.
"""
