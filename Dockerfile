# The official extension pattern: the Airflow image of the tested version, our pinned
# requirements and package installed as the airflow user, DAGs/plugins/SQL copied in.
FROM apache/airflow:3.3.2-python3.11

USER airflow
COPY --chown=airflow:root requirements.txt constraints.txt /opt/wecom/
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -r /opt/wecom/requirements.txt

COPY --chown=airflow:root pyproject.toml /opt/wecom/
COPY --chown=airflow:root plugins /opt/wecom/plugins
RUN pip install --no-cache-dir --no-deps /opt/wecom

COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
COPY --chown=airflow:root include /opt/airflow/include
ENV WECOM_SQL_DIR=/opt/airflow/include/sql
