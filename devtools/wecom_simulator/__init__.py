"""A faithful, real-HTTP WeCom simulator for tests and benchmarks (no Airflow imports).

Entry points: ``wecom_simulator.org.generate_org`` (deterministic directories),
``wecom_simulator.testing.running_simulator`` (a server in a background thread),
``python -m wecom_simulator`` (a server in the foreground) and the ``/_sim/``
admin API. See ``config.SimulatorConfig`` for every behaviour knob and
``rights`` for the permission regimes.
"""
