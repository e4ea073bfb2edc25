"""Pipelines: ``@step`` and ``@pipeline`` functions, run with caching, retries and resume.

    from shipyard import pipeline, step

    @step
    def double(x: int) -> int:
        return 2 * x

    @pipeline
    def demo(x: int = 21):
        double(x)

    run = shipyard.pipelines.run(demo, {"x": 4})

See ``docs/pipelines.md``.
"""

from shipyard.pipelines.dsl import (
    Condition,
    Pipeline,
    Step,
    StepOutput,
    load_pipeline,
    pipeline,
    step,
    when,
)
from shipyard.pipelines.executors import EXECUTORS, StepContext, current
from shipyard.pipelines.fingerprint import Query
from shipyard.pipelines.service import cache_why, fire_event, parse_params, resume, run

__all__ = [
    "EXECUTORS",
    "Condition",
    "Pipeline",
    "Query",
    "Step",
    "StepContext",
    "StepOutput",
    "cache_why",
    "current",
    "fire_event",
    "load_pipeline",
    "parse_params",
    "pipeline",
    "resume",
    "run",
    "step",
    "when",
]
