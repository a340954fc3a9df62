"""What the DAC7 DAG files share: settings from the environment, the period of a run, the Params
form, retries, the failure message, the approval request, the deadline and watch-list checks.

Airflow puts the DAG folder on ``sys.path`` (the DAG processor, the task runner and ``airflow dags
test`` parse through ``BundleDagBag``), so the DAG files import this package by name; the
``.airflowignore`` beside it keeps the DAG processor from parsing it for DAGs.

Importing it costs no pandas, lxml, DuckDB or Great Expectations: whatever needs the ``reporting``
stages imports them inside a function, when a task runs.
"""
