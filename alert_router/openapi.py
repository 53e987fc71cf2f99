"""The OpenAPI 3 document of the router's HTTP API (hand-written; fuzzed by the tests)."""

from __future__ import annotations

from typing import Any

_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_ERROR = {
    "description": "Invalid request; the message names what is wrong",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_AUTH_ERROR = {
    "description": "Missing or invalid bearer token",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_OK = {"description": "Accepted, stored durably"}


def _json(ref: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


_TRACE_ID = {"name": "trace_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _list(ref: str) -> dict[str, Any]:
    return {
        "content": {
            "application/json": {
                "schema": {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}}
            }
        }
    }


def _post(summary: str, body_ref: str, ok: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": [{"bearer": []}],
            "requestBody": {"required": True, **_json(body_ref)},
            "responses": {
                "200": ok or _OK,
                "400": _ERROR,
                "401": _AUTH_ERROR,
                "413": {"description": "Request too large (a documented limit)"},
                "415": {"description": "Not application/json (unauthenticated writes)"},
                "503": {"description": "The store cannot be written (disk full)"},
            },
        }
    }


_INCIDENT_ID = {
    "name": "incident_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer"},
}
_SILENCE_ID = {"name": "silence_id", "in": "path", "required": True, "schema": {"type": "string"}}
_FILTER = {
    "name": "filter",
    "in": "query",
    "required": False,
    "schema": {"type": "array", "items": {"type": "string"}},
    "style": "form",
    "explode": True,
}
# Reads are paged (docs/alert-router.md, "Limits"); a Link header names the next page.
_PAGE = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 5000},
    },
    {
        "name": "offset",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 0},
    },
]

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {
            "status": {"type": "string"},
            "code": {"type": "integer"},
            "error": {"type": "string"},
        },
    },
    "PostableAlert": {
        "type": "object",
        "required": ["labels"],
        "properties": {
            "labels": _STR_MAP,
            "annotations": _STR_MAP,
            "startsAt": {"type": "string", "format": "date-time"},
            "endsAt": {"type": "string", "format": "date-time"},
            "generatorURL": {"type": "string"},
        },
    },
    "PostableAlerts": {"type": "array", "items": {"$ref": "#/components/schemas/PostableAlert"}},
    "WebhookAlert": {
        "type": "object",
        "required": ["labels"],
        "properties": {
            "status": {"type": "string", "enum": ["firing", "resolved"]},
            "labels": _STR_MAP,
            "annotations": _STR_MAP,
            "startsAt": {"type": "string", "format": "date-time"},
            "endsAt": {"type": "string", "format": "date-time"},
            "generatorURL": {"type": "string"},
            "fingerprint": {"type": "string"},
        },
    },
    "AlertmanagerWebhook": {
        "type": "object",
        "required": ["version", "alerts"],
        "properties": {
            "version": {"type": "string", "enum": ["4"]},
            "receiver": {"type": "string"},
            "status": {"type": "string"},
            "groupKey": {"type": "string"},
            "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/WebhookAlert"}},
            "groupLabels": _STR_MAP,
            "commonLabels": _STR_MAP,
            "commonAnnotations": _STR_MAP,
            "externalURL": {"type": "string"},
            "truncatedAlerts": {"type": "integer"},
        },
    },
    "GrafanaWebhook": {
        "type": "object",
        "required": ["alerts"],
        "properties": {
            "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/WebhookAlert"}},
            "title": {"type": "string"},
            "message": {"type": "string"},
            "state": {"type": "string"},
            "orgId": {"type": "integer"},
        },
    },
    "GenericAlert": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "server": {"type": "string"},
            "severity": {"type": "string"},
            "status": {"type": "string", "enum": ["firing", "resolved"]},
            "summary": {"type": "string"},
            "description": {"type": "string"},
            "labels": _STR_MAP,
            "annotations": _STR_MAP,
            "starts_at": {"type": "string", "format": "date-time"},
            "ends_at": {"type": "string", "format": "date-time"},
            "url": {"type": "string"},
        },
    },
    "GenericAlerts": {
        "type": "object",
        "required": ["alerts"],
        "additionalProperties": False,
        "properties": {
            "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/GenericAlert"}}
        },
    },
    "GettableAlert": {
        "type": "object",
        "required": [
            "labels",
            "annotations",
            "startsAt",
            "endsAt",
            "updatedAt",
            "fingerprint",
            "receivers",
            "status",
        ],
        "properties": {
            "labels": _STR_MAP,
            "annotations": _STR_MAP,
            "startsAt": {"type": "string"},
            "endsAt": {"type": "string"},
            "updatedAt": {"type": "string"},
            "generatorURL": {"type": "string"},
            "fingerprint": {"type": "string"},
            "receivers": {
                "type": "array",
                "items": {"type": "object", "properties": {"name": {"type": "string"}}},
            },
            "status": {
                "type": "object",
                "properties": {
                    "state": {"type": "string", "enum": ["active", "suppressed", "unprocessed"]},
                    "silencedBy": {"type": "array", "items": {"type": "string"}},
                    "inhibitedBy": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
    "Matcher": {
        "type": "object",
        "required": ["name", "value", "isRegex"],
        "properties": {
            "name": {"type": "string"},
            "value": {"type": "string"},
            "isRegex": {"type": "boolean"},
            "isEqual": {"type": "boolean"},
        },
    },
    "PostableSilence": {
        "type": "object",
        "required": ["matchers", "startsAt", "endsAt", "createdBy", "comment"],
        "properties": {
            "id": {"type": "string"},
            "matchers": {"type": "array", "items": {"$ref": "#/components/schemas/Matcher"}},
            "startsAt": {"type": "string", "format": "date-time"},
            "endsAt": {"type": "string", "format": "date-time"},
            "createdBy": {"type": "string"},
            "comment": {"type": "string"},
        },
    },
    "GettableSilence": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "status": {
                "type": "object",
                "properties": {
                    "state": {"type": "string", "enum": ["active", "pending", "expired"]}
                },
            },
            "updatedAt": {"type": "string"},
            "matchers": {"type": "array", "items": {"$ref": "#/components/schemas/Matcher"}},
            "startsAt": {"type": "string"},
            "endsAt": {"type": "string"},
            "createdBy": {"type": "string"},
            "comment": {"type": "string"},
        },
    },
    "Incident": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "key": {"type": "string"},
            "state": {"type": "string"},
            "title": {"type": "string"},
            "server": {"type": "string"},
            "severity": {"type": "string"},
            "opened_at": {"type": "number"},
            "updated_at": {"type": "number"},
        },
    },
    "Transition": {
        "type": "object",
        "required": ["by"],
        "additionalProperties": False,
        "properties": {"by": {"type": "string"}, "reason": {"type": "string"}},
    },
    "HistoryEvent": {
        "type": "object",
        "properties": {
            "ts": {"type": "number"},
            "kind": {"type": "string"},
            "subject": {"type": "string"},
            "server": {"type": "string"},
            "transition": {"type": "string"},
            "actor": {"type": "string"},
            "reason": {"type": "string"},
            "details": {"type": "string"},
        },
    },
}


def openapi_document() -> dict[str, Any]:
    """The whole document (a fresh dict on every call)."""
    transition = {
        "post": {
            "summary": "",
            "security": [{"bearer": []}],
            "parameters": [_INCIDENT_ID],
            "requestBody": {"required": True, **_json("Transition")},
            "responses": {
                "200": {"description": "The incident after the transition", **_json("Incident")},
                "400": _ERROR,
                "401": _AUTH_ERROR,
                "404": {"description": "No such incident"},
                "409": {"description": "Transition not allowed from its state"},
            },
        }
    }
    ack = {"post": {**transition["post"], "summary": "Acknowledge an incident"}}
    close = {"post": {**transition["post"], "summary": "Close an incident"}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "StackSense alert router",
            "version": "1.0.0",
            "description": "Alertmanager-compatible alert ingest, silences, incidents.",
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/api/v2/alerts": {
                **_post("Post alerts (Alertmanager v2 postableAlerts)", "PostableAlerts"),
                "get": {
                    "summary": "List alerts",
                    "parameters": [
                        _FILTER,
                        *(
                            {
                                "name": n,
                                "in": "query",
                                "required": False,
                                "schema": {"type": "boolean"},
                            }
                            for n in ("active", "silenced", "inhibited", "unprocessed")
                        ),
                        {
                            "name": "receiver",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                        *_PAGE,
                    ],
                    "responses": {
                        "200": {"description": "Alerts", **_list("GettableAlert")},
                        "400": _ERROR,
                    },
                },
            },
            "/api/v1/webhook/alertmanager": _post(
                "Alertmanager webhook (version 4)", "AlertmanagerWebhook"
            ),
            "/api/v1/webhook/grafana": _post("Grafana webhook contact point", "GrafanaWebhook"),
            "/api/v1/alerts": _post("Generic JSON alerts", "GenericAlerts"),
            "/api/v2/silences": {
                **_post(
                    "Create or update a silence",
                    "PostableSilence",
                    {
                        "description": "The silence id",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"silenceID": {"type": "string"}},
                                }
                            }
                        },
                    },
                ),
                "get": {
                    "summary": "List silences",
                    "parameters": [_FILTER, *_PAGE],
                    "responses": {
                        "200": {"description": "Silences", **_list("GettableSilence")},
                        "400": _ERROR,
                    },
                },
            },
            "/api/v2/silence/{silence_id}": {
                "get": {
                    "summary": "Get a silence",
                    "parameters": [_SILENCE_ID],
                    "responses": {
                        "200": {"description": "The silence", **_json("GettableSilence")},
                        "404": {"description": "No such silence"},
                    },
                },
                "delete": {
                    "summary": "Expire a silence",
                    "parameters": [_SILENCE_ID],
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": {"description": "Expired"},
                        "400": _ERROR,
                        "401": _AUTH_ERROR,
                        "404": {"description": "No such silence"},
                    },
                },
            },
            "/api/v1/incidents": {
                "get": {
                    "summary": "List incidents",
                    "parameters": [
                        {
                            "name": "state",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "string",
                                "enum": ["open", "acknowledged", "resolved", "closed"],
                            },
                        },
                        {
                            "name": "server",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": {"description": "Incidents", **_list("Incident")},
                        "400": _ERROR,
                    },
                }
            },
            "/api/v1/incidents/{incident_id}": {
                "get": {
                    "summary": "Get an incident",
                    "parameters": [_INCIDENT_ID],
                    "responses": {
                        "200": {"description": "The incident", **_json("Incident")},
                        "404": {"description": "No such incident"},
                    },
                }
            },
            "/api/v1/incidents/{incident_id}/acknowledge": ack,
            "/api/v1/incidents/{incident_id}/close": close,
            "/api/v1/history": {
                "get": {
                    "summary": "The audit trail",
                    "parameters": [
                        *(
                            {
                                "name": n,
                                "in": "query",
                                "required": False,
                                "schema": {"type": "string"},
                            }
                            for n in ("server", "kind", "subject", "since", "until")
                        ),
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer"},
                        },
                    ],
                    "responses": {
                        "200": {"description": "Events", **_list("HistoryEvent")},
                        "400": _ERROR,
                    },
                }
            },
            "/api/v1/trace/{trace_id}": {
                "get": {
                    "summary": "What happened to one alert occurrence, stage by stage",
                    "parameters": [_TRACE_ID],
                    "responses": {
                        "200": {"description": "The stages in time order"},
                        "400": _ERROR,
                        "404": {"description": "No such trace"},
                    },
                }
            },
            "/api/v1/trace/{trace_id}/retry": {
                "post": {
                    "summary": "Queue the trace's failed notifications again",
                    "parameters": [_TRACE_ID],
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": {"description": "What was queued again"},
                        "400": _ERROR,
                        "401": _AUTH_ERROR,
                        "404": {"description": "No such trace"},
                    },
                }
            },
            "/api/v2/status": {
                "get": {"summary": "Status", "responses": {"200": {"description": "Status"}}}
            },
            "/api/v2/receivers": {
                "get": {
                    "summary": "Receivers",
                    "responses": {"200": {"description": "Receiver names"}},
                }
            },
            "/-/healthy": {
                "get": {"summary": "Liveness", "responses": {"200": {"description": "OK"}}}
            },
            "/-/ready": {
                "get": {
                    "summary": "Readiness",
                    "responses": {
                        "200": {"description": "OK"},
                        "503": {"description": "Store unavailable"},
                    },
                }
            },
        },
    }
