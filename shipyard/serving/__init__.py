"""Model serving: an HTTP model server, traffic splitting, a prediction log, batch inference.

* :mod:`.traffic`: the deployment spec (arms, weights, shadows, sticky key) and the traffic table;
* :mod:`.endpoint`: loaded versions, warm-up, registry polling, atomic switches;
* :mod:`.batching`: adaptive micro-batching counted in rows;
* :mod:`.codec`: MLflow scoring formats and Open Inference Protocol V2 bodies;
* :mod:`.app`: the ASGI app; :mod:`.runner`: uvicorn;
* :mod:`.predlog`: the prediction log and feedback, and :func:`read_predictions`;
* :mod:`.metrics`: Prometheus metrics; :mod:`.batch`: :func:`batch_predict`.

The web stack is imported only by :mod:`.app` and :mod:`.runner`.
"""

from shipyard.monitoring.predictions import read_predictions
from shipyard.serving.batch import batch_predict
from shipyard.serving.predlog import PredictionLog, log_folder
from shipyard.serving.traffic import Arm, DeploymentSpec, TrafficTable

__all__ = [
    "Arm",
    "DeploymentSpec",
    "PredictionLog",
    "TrafficTable",
    "batch_predict",
    "log_folder",
    "read_predictions",
]
