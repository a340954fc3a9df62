"""One module per stage of the filing flow, named after the stage.

source -> :mod:`~reporting.stages.extract` -> :mod:`~reporting.stages.aggregate` ->
:mod:`~reporting.stages.rules` -> :mod:`~reporting.stages.audit` -> :mod:`~reporting.stages.plan` ->
:mod:`~reporting.stages.render` -> :mod:`~reporting.stages.validate` ->
:mod:`~reporting.stages.publish` (publish, then finalize) -> ledger.

Each stage reads its inputs from the run's staging directory and writes its outputs there;
:mod:`reporting.pipeline` calls them in order (the CLI and the Airflow tasks call the pipeline).
"""
