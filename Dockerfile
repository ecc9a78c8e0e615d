# The image every service of docker-compose.yaml runs: the official Airflow image plus this
# project's pinned requirements and the local Batch API server (`python -m local_batch_api`).
# dags/, plugins/ and include/ are not baked in: docker-compose.yaml mounts them, so an edit is
# picked up by the dag-processor without a rebuild.
FROM apache/airflow:3.3.2-python3.11

# The official image's pattern: install as the airflow user, not root, and pin apache-airflow to
# the image's own version so no requirement can move it. requirements.txt is the uv lock of
# requirements.in (every package pinned), so it needs no constraints file.
USER airflow
COPY --chown=airflow:0 requirements.txt /requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /requirements.txt

# The project itself: only the local_batch_api package (see pyproject.toml), for the batch-api
# service; the pipeline library never imports it. Its dependencies are already in requirements.txt.
COPY --chown=airflow:0 pyproject.toml /tmp/airflow-llm-batch/pyproject.toml
COPY --chown=airflow:0 local_batch_api /tmp/airflow-llm-batch/local_batch_api
RUN pip install --no-cache-dir --no-deps /tmp/airflow-llm-batch \
    && rm -rf /tmp/airflow-llm-batch

# Mount points of the named volumes. A new named volume takes the owner and mode of the image's
# directory, so creating them here (group 0, group-writable, as the image does for AIRFLOW_UID
# other than 50000) lets the services write there without running anything as root.
RUN mkdir -p /opt/airflow/llm_batch_files /opt/airflow/batch-api-data /opt/airflow/auth \
    && chmod 775 /opt/airflow/llm_batch_files /opt/airflow/batch-api-data /opt/airflow/auth
