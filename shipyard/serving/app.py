"""The model server's ASGI app: MLflow scoring, Open Inference Protocol V2, Shipyard's own API.

``create_app(endpoint, prediction_log)`` builds a Starlette app. Routes:

* MLflow-compatible: ``GET /ping``, ``GET /health``, ``GET /version``, ``POST /invocations``;
* Open Inference Protocol V2 REST: ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``,
  ``/v2/models/{name}[/versions/{v}]``, ``.../ready``, ``POST .../infer``;
* Shipyard: ``POST /predict`` (predictions with the model version, the arm and a request id),
  ``POST /feedback`` (labels for earlier request ids), ``GET /metrics`` (Prometheus).

Handlers parse, ask the :class:`~shipyard.serving.endpoint.Endpoint` which version serves the
call, predict, and queue one prediction-log row. A user mistake is a 4xx with the one JSON error
shape (``{"error_code", "message"}``; V2 routes answer ``{"error": message}`` as the protocol
says), never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import anyio.to_thread
import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard._version import __version__
from shipyard.errors import (
    EndpointNotFound,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ShipyardError,
)
from shipyard.serving import codec
from shipyard.serving.endpoint import Endpoint, Version
from shipyard.serving.predlog import PredictionLog

log = logging.getLogger("shipyard.serving")
IGNORED_PARAMS_HEADER = "x-shipyard-ignored-params"

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_SHADOW_IN_FLIGHT = 64
"""Shadow copies queued or running at once; past it a copy is dropped (and counted), so a slow
shadow arm can never hold up the answers or grow the server's memory."""
REQUEST_ID_HEADER = "x-request-id"
SHADOW_FAILED = "SHADOW_FAILED"
"""The error code of a shadow arm's failed prediction (in ``/metrics`` and the prediction log;
the caller never sees it)."""
_JSON = "application/json"


async def _unbatched(version: Version, fn: Callable[[Any], Any], data: Any) -> Any:
    """One unbatched prediction: on the event loop while the version's calls are cheap, in a
    worker thread (one at a time per version) once they are not (see
    :class:`~shipyard.serving.endpoint.CallCost`)."""
    cost = version.cost
    rows = codec.rows_of(data)
    if cost.inline(rows):
        return cost.timed(fn, data, rows)
    if cost.limiter is None:
        cost.limiter = anyio.CapacityLimiter(1)
    return await anyio.to_thread.run_sync(cost.timed, fn, data, rows, limiter=cost.limiter)


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        codec.dumps(content),
        status_code=status,
        media_type=_JSON,
        headers=headers,
    )


async def _body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(int(declared), max_bytes)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(size, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is {size} bytes, over the server's limit of {limit}; split the rows "
        "into several requests, score the file with `shipyard predict`, or restart the server "
        "with a larger --max-body-mb.",
        details={"size": size, "limit": limit},
    )


class ServingApp:
    """The route handlers over one endpoint and one prediction log."""

    def __init__(
        self,
        endpoint: Endpoint,
        prediction_log: PredictionLog | None,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_shadow_in_flight: int = DEFAULT_MAX_SHADOW_IN_FLIGHT,
    ) -> None:
        self.endpoint = endpoint
        self.log = prediction_log
        self.metrics = endpoint.metrics
        self.max_body_bytes = max_body_bytes
        self._background: set[asyncio.Task[None]] = set()
        self.max_shadow_in_flight = max_shadow_in_flight
        # Shadows run on a thread of their own, never on the threads that answer requests.
        self.shadow_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipyard-shadow")
        self._features: Any = None
        self._ignored_params: set[tuple[str, str]] = set()

    # ---------------------------------------------------------------- health

    async def ping(self, request: Request) -> Response:
        self.endpoint.state()
        return Response(b"\n", media_type=_JSON)

    async def version(self, request: Request) -> Response:
        return Response(__version__.encode(), media_type="text/plain")

    async def metrics_text(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

    # ---------------------------------------------------------------- predicting

    def _ignore_params(self, version: Version, params: dict[str, Any]) -> None:
        """Shipyard's flavors take no inference params, so ``params`` are ignored, as MLflow's
        scoring server ignores them for a model without a params schema: a warning once per
        version (the names a client sends are its own, so they are not what is remembered),
        and each answer names them in ``x-shipyard-ignored-params``."""
        seen = (version.model_name, version.version)
        if seen not in self._ignored_params:
            self._ignored_params.add(seen)
            log.warning(
                "model %s version %s takes no params; ignoring them (first request: %s)",
                version.model_name,
                version.version,
                ", ".join(sorted(params)),
            )

    async def _predict(
        self,
        request: Request,
        version: Version | None,
        data: Any,
        params: dict[str, Any] | None,
        request_id: str,
        started: float,
        key: str | None = None,
        matrix_of: tuple[str, ...] | None = None,
    ) -> tuple[Version, Any]:
        """Pick the version (unless given), predict, count, log, and copy to the shadows.
        ``matrix_of`` names the columns when ``data`` is a float64 matrix (the fast path)."""
        state = self.endpoint.state()
        if version is None:
            if key is None:
                key = request.headers.get(state.spec.sticky_header)
            version = state.pick(key)
        if params:
            self._ignore_params(version, params)
        if matrix_of is not None and matrix_of != version.fast_columns:
            data, matrix_of = pd.DataFrame(data, columns=list(matrix_of)), None
        try:
            if matrix_of is not None:
                if version.batcher is not None:
                    predictions = await version.batcher.submit(data)
                else:
                    predictions = await _unbatched(version, version.predict_matrix, data)
            elif version.batcher is not None and version.fast_columns is None:
                predictions = await version.batcher.submit(data)
            else:
                predictions = await _unbatched(version, version.model.predict, data)
        except Exception as exc:
            error = (
                exc
                if isinstance(exc, ShipyardError)
                else InvalidInput(
                    f"The model could not predict on this input: {type(exc).__name__}: {exc}. Check "
                    "the values (missing values, out-of-range numbers) against the model's "
                    "signature at /v2/models/{name}.",
                    details={"error_type": type(exc).__name__},
                )
            )
            self.metrics.errors.inc((*version.labels, ("code", error.code)))
            error.counted = True  # type: ignore[attr-defined]
            if self.log is not None:  # failed requests feed monitoring's error rate
                latency = time.perf_counter() - started
                self.log.record(
                    _row(request_id, version, False, latency, data, None, matrix_of, error.code)
                )
            raise error from None
        latency = time.perf_counter() - started
        self.metrics.requests.inc(version.labels)
        self.metrics.latency.observe(latency, version.labels)
        if self.log is not None:
            self.log.record(_row(request_id, version, False, latency, data, predictions, matrix_of))
        shadows = state.shadows()
        if shadows:
            frame = pd.DataFrame(data, columns=list(matrix_of)) if matrix_of else data
            for shadow in shadows:
                if len(self._background) >= self.max_shadow_in_flight:
                    self.metrics.shadow_dropped.inc(shadow.labels)
                    continue
                task = asyncio.get_running_loop().create_task(
                    self._shadow(shadow, frame, request_id)
                )
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        return version, predictions

    async def _shadow(self, version: Version, data: Any, request_id: str) -> None:
        started = time.perf_counter()
        try:
            loop = asyncio.get_running_loop()
            predictions = await loop.run_in_executor(self.shadow_pool, version.model.predict, data)
        except Exception as exc:
            self.metrics.errors.inc((*version.labels, ("code", SHADOW_FAILED)))
            log.warning("shadow arm %s failed on request %s: %s", version.arm, request_id, exc)
            if self.log is not None:  # the rollout's shadow error rate reads these rows
                latency = time.perf_counter() - started
                self.log.record(
                    _row(request_id, version, True, latency, data, None, error=SHADOW_FAILED)
                )
            return
        self.metrics.shadow.inc(version.labels)
        if self.log is not None:
            latency = time.perf_counter() - started
            self.log.record(_row(request_id, version, True, latency, data, predictions))

    def _primary(self) -> Version:
        state = self.endpoint.state()
        return state.versions[state.table.arms[0]]

    def _parse(self, body: Any) -> tuple[Any, dict[str, Any] | None, tuple[str, ...] | None]:
        """``(data, params, matrix columns)`` of a parsed MLflow-format body: a float matrix
        when the primary arm takes one and the body is a plain numeric table."""
        primary = self._primary()
        names = primary.fast_columns
        if names is not None:
            matrix = codec.numeric_matrix(body, names)
            if matrix is not None:
                return matrix, None, names
        data, params = codec.parse_invocations_body(body, primary.schema)
        return data, params, None

    def _entity_request(
        self, request: Request, body: dict[str, Any], key: str | None
    ) -> tuple[Version, Any]:
        """``(version, model input)`` of a request that carries only entity keys (and request
        data): the version's feature service is read from the online store
        (:mod:`shipyard.features`), then parsed exactly like a ``dataframe_split`` body."""
        state = self.endpoint.state()
        version = state.pick(
            key if key is not None else request.headers.get(state.spec.sticky_header)
        )
        entities = body.pop("entities")
        if version.feature_service is None:
            raise InvalidInput(
                f"The model {version.model_name!r} declares no feature service, so the server "
                "can't look its features up from entity keys; send the feature values "
                "(dataframe_records), or log the model with log_model(..., feature_service=...)."
            )
        if (
            not isinstance(entities, list)
            or not entities
            or not all(isinstance(e, dict) for e in entities)
        ):
            raise InvalidInput(
                '"entities" must be a non-empty list of objects such as {"customer_id": 7}.'
            )
        if body:
            raise InvalidInput(
                f'A request with "entities" takes no other fields (got {sorted(body)}); put '
                "request data for on-demand features inside each entity object."
            )
        if self._features is None:
            from shipyard.features.service import FeatureStore

            self._features = FeatureStore(self.endpoint.workspace)
        answer = self._features.get_online_features(version.feature_service, entities).to_dict()
        schema = version.schema
        if schema is not None and schema.columns:
            columns = [c.name for c in schema.columns]
        else:
            given = set(entities[0])
            columns = [c for c in answer if c not in given]
        missing = [c for c in columns if c not in answer]
        if missing:
            raise InvalidInput(
                f"The model {version.model_name!r} takes {missing}, which neither its feature "
                f"service {version.feature_service!r} nor the entity objects provide."
            )
        split = {
            "columns": columns,
            "data": [list(r) for r in zip(*(answer[c] for c in columns), strict=True)],
        }
        data, _ = codec.parse_invocations_body({"dataframe_split": split}, schema)
        return version, data

    async def invocations(self, request: Request) -> Response:
        started = time.perf_counter()
        raw = await _body(request, self.max_body_bytes)
        content_type = request.headers.get("content-type")
        names: tuple[str, ...] | None = None
        pinned: Version | None = None
        if codec.media_type(content_type) == _JSON:
            body = codec.parse_json(raw)
            if isinstance(body, dict) and "entities" in body:
                pinned, data = self._entity_request(request, body, None)
                params = None
            else:
                data, params, names = self._parse(body)
        else:
            data, params = codec.parse_invocations(raw, content_type, self._primary().schema)
        request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        version, predictions = await self._predict(
            request, pinned, data, params, request_id, started, matrix_of=names
        )
        headers = {"x-request-id": request_id, "x-shipyard-model-version": version.version}
        if params:
            headers[IGNORED_PARAMS_HEADER] = ",".join(sorted(params))
        return _json({"predictions": codec.encode_predictions(predictions)}, headers=headers)

    async def predict(self, request: Request) -> Response:
        started = time.perf_counter()
        raw = await _body(request, self.max_body_bytes)
        body = codec.parse_json(raw)
        if not isinstance(body, dict):
            raise InvalidInput(
                "The /predict body must be a JSON object such as "
                '{"dataframe_records": [{...}], "key": "customer-7"}.'
            )
        key = body.pop("key", None)
        request_id = body.pop("request_id", None) or request.headers.get(REQUEST_ID_HEADER)
        if key is not None and not isinstance(key, str):
            raise InvalidInput("`key` must be a string (the sticky-routing key).")
        if request_id is not None and not isinstance(request_id, str):
            raise InvalidInput("`request_id` must be a string.")
        request_id = request_id or uuid.uuid4().hex
        params: dict[str, Any] | None = None
        if "entities" in body:
            pinned, data = self._entity_request(request, body, key)
            version, predictions = await self._predict(
                request, pinned, data, None, request_id, started, key
            )
        else:
            data, params, names = self._parse(body)
            version, predictions = await self._predict(
                request, None, data, params, request_id, started, key, names
            )
        answer = {
            "predictions": codec.encode_predictions(predictions),
            "model_name": version.model_name,
            "model_version": version.version,
            "arm": version.arm,
            "request_id": request_id,
        }
        if params:
            answer["ignored_params"] = sorted(params)
        return _json(answer)

    async def feedback(self, request: Request) -> Response:
        body = codec.parse_json(await _body(request, self.max_body_bytes))
        items = body.get("feedback") if isinstance(body, dict) and "feedback" in body else [body]
        if not isinstance(items, list) or not items:
            raise InvalidInput(
                'Send {"request_id": "...", "label": ...} or {"feedback": [{...}, ...]}.'
            )
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("request_id"), str):
                raise InvalidInput(f"feedback[{i}] needs a string `request_id`.")
            if "label" not in item:
                raise InvalidInput(f"feedback[{i}] ({item['request_id']}) needs a `label`.")
        if self.log is None:
            raise InvalidInput(
                "This server keeps no prediction log (started with --no-log), so there is "
                "nothing to attach feedback to; restart it without --no-log."
            )
        count = self.log.record_feedback(items)
        return _json({"accepted": count})

    # ---------------------------------------------------------------- V2

    async def v2_server(self, request: Request) -> Response:
        return _json({"name": "shipyard", "version": __version__, "extensions": []})

    async def v2_live(self, request: Request) -> Response:
        return _json({"live": True})

    async def v2_ready(self, request: Request) -> Response:
        ready = self.endpoint.ready
        return _json({"ready": ready}, 200 if ready else 503)

    def _v2_versions(self, request: Request) -> tuple[str, list[Version]]:
        name = request.path_params["name"]
        wanted = request.path_params.get("version")
        state = self.endpoint.state()
        served = [v for a, v in state.versions.items() if a in state.table.arms]
        matching = [v for v in served if v.model_name == name]
        if not matching:
            names = sorted({v.model_name for v in served})
            raise NotFound(
                f"This server does not serve a model named {name!r}; it serves {names}.",
                details={"model": name},
            )
        if wanted is not None:
            matching = [v for v in matching if v.version == wanted]
            if not matching:
                raise NotFound(
                    f"Model {name!r} has no served version {wanted!r}; served versions: "
                    f"{sorted({v.version for v in served if v.model_name == name})}.",
                    details={"model": name, "version": wanted},
                )
        return name, matching

    async def v2_model(self, request: Request) -> Response:
        name, versions = self._v2_versions(request)
        first = versions[0]
        sig = first.model.signature
        return _json(
            {
                "name": name,
                "versions": sorted({v.version for v in versions}),
                "platform": first.model.manifest.predict_flavor,
                "inputs": codec.v2_tensor_meta(sig.inputs if sig else None),
                "outputs": codec.v2_tensor_meta(sig.outputs if sig else None),
            }
        )

    async def v2_model_ready(self, request: Request) -> Response:
        name, _ = self._v2_versions(request)
        return _json({"name": name, "ready": True})

    async def v2_infer(self, request: Request) -> Response:
        started = time.perf_counter()
        name, versions = self._v2_versions(request)
        body = codec.parse_json(await _body(request, self.max_body_bytes))
        pinned = versions[0] if "version" in request.path_params else None
        schema = (pinned or versions[0]).schema
        data = codec.parse_v2(body, schema)
        request_id = body.get("id") if isinstance(body.get("id"), str) else None
        request_id = request_id or request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        params = body.get("parameters") if isinstance(body.get("parameters"), dict) else None
        key = params.get("key") if params and isinstance(params.get("key"), str) else None
        version, predictions = await self._predict(
            request, pinned, data, None, request_id, started, key
        )
        return _json(
            {
                "model_name": name,
                "model_version": version.version,
                "id": request_id,
                "parameters": {"arm": version.arm},
                "outputs": codec.v2_outputs(predictions),
            }
        )


def _row(
    request_id: str,
    version: Version,
    shadow: bool,
    latency: float,
    data: Any,
    predictions: Any,
    names: tuple[str, ...] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """One prediction-log row: the answer, or (with ``error``, its code) no predictions."""
    return {
        "request_id": request_id,
        "timestamp_ms": int(time.time() * 1000),
        "model_name": version.model_name,
        "model_version": version.version,
        "arm": version.arm,
        "shadow": shadow,
        "latency_ms": latency * 1000,
        "features": codec.features_json(data, names),
        "predictions": (
            None if error else codec.dumps(codec.encode_predictions(predictions)).decode()
        ),
        "error": error,
    }


def create_app(
    endpoint: Endpoint,
    prediction_log: PredictionLog | None = None,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    load_on_startup: bool = True,
    max_shadow_in_flight: int = DEFAULT_MAX_SHADOW_IN_FLIGHT,
) -> Starlette:
    """The ASGI app serving ``endpoint``. With ``load_on_startup`` the endpoint loads in a
    background thread when the app starts (``/v2/health/live`` answers at once, ``/ping`` and
    ``/v2/health/ready`` once the model is warm); the log is flushed on shutdown."""
    h = ServingApp(
        endpoint,
        prediction_log,
        max_body_bytes=max_body_bytes,
        max_shadow_in_flight=max_shadow_in_flight,
    )
    if prediction_log is not None and prediction_log.on_failure is None:
        prediction_log.on_failure = endpoint.metrics.log_dropped.inc
    v2 = "/v2/models/{name}"
    routes = [
        Route("/ping", h.ping, methods=["GET"]),
        Route("/health", h.ping, methods=["GET"]),
        Route("/version", h.version, methods=["GET"]),
        Route("/invocations", h.invocations, methods=["POST"]),
        Route("/predict", h.predict, methods=["POST"]),
        Route("/feedback", h.feedback, methods=["POST"]),
        Route("/metrics", h.metrics_text, methods=["GET"]),
        Route("/v2", h.v2_server, methods=["GET"]),
        Route("/v2/health/live", h.v2_live, methods=["GET"]),
        Route("/v2/health/ready", h.v2_ready, methods=["GET"]),
        Route(v2, h.v2_model, methods=["GET"]),
        Route(v2 + "/versions/{version}", h.v2_model, methods=["GET"]),
        Route(v2 + "/ready", h.v2_model_ready, methods=["GET"]),
        Route(v2 + "/versions/{version}/ready", h.v2_model_ready, methods=["GET"]),
        Route(v2 + "/infer", h.v2_infer, methods=["POST"]),
        Route(v2 + "/versions/{version}/infer", h.v2_infer, methods=["POST"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if prediction_log is not None:
            prediction_log.start()
        if load_on_startup:
            endpoint.start(background=True)
        try:
            yield
        finally:
            await asyncio.to_thread(endpoint.close)  # may wait for a registry check
            h.shadow_pool.shutdown(wait=False, cancel_futures=True)
            if prediction_log is not None:
                await asyncio.to_thread(prediction_log.close)

    async def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ShipyardError):
            error = exc
        else:
            from starlette.exceptions import HTTPException

            if isinstance(exc, HTTPException) and exc.status_code == 404:
                error = EndpointNotFound(
                    f"No route {request.method} {request.url.path}; the model server answers "
                    "/invocations, /predict, /feedback, /ping, /health, /version, /metrics and "
                    "/v2/... (Open Inference Protocol)."
                )
            elif isinstance(exc, HTTPException) and exc.status_code == 405:
                error = MethodNotAllowed(
                    f"{request.url.path} does not answer {request.method}.",
                    details={"allow": exc.headers.get("allow", "") if exc.headers else ""},
                )
            else:
                log.error("unexpected error on %s", request.url.path, exc_info=exc)
                error = ShipyardError("The model server failed unexpectedly; see its log.")
        if not getattr(error, "counted", False):  # refused before an arm was chosen
            h.metrics.errors.inc((("code", error.code),))
        if request.url.path.startswith("/v2"):
            return _json({"error": error.message}, error.http_status)
        return _json(error.to_dict(), error.http_status)

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            Exception: on_error,
            ShipyardError: on_error,
            404: on_error,
            405: on_error,
        },
    )
