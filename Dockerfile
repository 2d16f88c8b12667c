# The official extension pattern: the Airflow image of the tested version, our pinned runtime
# requirements and the package installed as the airflow user, the DAGs copied in. The wheel
# carries the SQL files of include/sql and registers the `wecom` connection type and the plugin
# (receiver, status page) through its entry points, so nothing goes into the plugins folder.
FROM apache/airflow:3.3.2-python3.11

ARG AIRFLOW_VERSION=3.3.2
# 50000 is the airflow user of the official image; numeric so Kubernetes can check runAsNonRoot.
USER 50000
COPY --chown=50000:0 requirements.txt constraints.txt /opt/wecom/
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/wecom/requirements.txt

# What the wheel is built from (setup.py maps include/sql into it).
COPY --chown=50000:0 pyproject.toml setup.py /opt/wecom/
COPY --chown=50000:0 plugins/wecom /opt/wecom/plugins/wecom
COPY --chown=50000:0 include/sql /opt/wecom/include/sql
RUN pip install --no-cache-dir --no-deps /opt/wecom

COPY --chown=50000:0 dags /opt/airflow/dags
