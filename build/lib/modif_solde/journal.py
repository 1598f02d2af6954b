"""Structured log lines, carrying the modification number wherever there is one, and the
request id and caller's `sub` of the action that caused them (API, workflow, activities)."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio import activity, workflow

# Set by the API for a request on a modification; Temporal sets workflow/activity info itself.
modification_courante: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "modification", default=None
)


@dataclass(slots=True)
class Appel:
    """Who asked for what is being done: the request id (X-Request-ID) and the caller's `sub`.
    Set per request by the API (the `sub` once the caller is known), carried to the workflow and
    its activities in Temporal headers (modif_solde/propagation.py)."""

    requete_id: str | None = None
    sub: str | None = None


appel_courant: contextvars.ContextVar[Appel | None] = contextvars.ContextVar("appel", default=None)


def noter_appelant(sub: str) -> None:
    """The caller is known (token or portal session): its `sub` joins the request's lines."""
    appel = appel_courant.get()
    if appel is not None:
        appel.sub = sub


def _appel(record: logging.LogRecord) -> dict[str, str]:
    appel = appel_courant.get()
    if appel is None:
        return {}
    return {k: v for k, v in (("requete_id", appel.requete_id), ("sub", appel.sub)) if v}


_CHAMPS_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def _modification(record: logging.LogRecord) -> str | None:
    for attribut in ("temporal_workflow", "temporal_activity"):
        info = getattr(record, attribut, None)
        if isinstance(info, dict) and info.get("workflow_id"):
            return str(info["workflow_id"])
    return getattr(record, "modification", None) or modification_courante.get()


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v
        for k, v in record.__dict__.items()
        if k not in _CHAMPS_STANDARD
        and k not in ("temporal_workflow", "temporal_activity", "modification", "color_message")
    }


class FormatJson(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ligne: dict[str, Any] = {
            "horodatage": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "niveau": record.levelname,
            "journal": record.name,
            "message": record.getMessage(),
        }
        if (numero := _modification(record)) is not None:
            ligne["modification"] = numero
        ligne.update(_appel(record))
        ligne.update(
            {
                k: v if isinstance(v, str | int | float | bool | None) else str(v)
                for k, v in _extras(record).items()
            }
        )
        if record.exc_info:
            ligne["exception"] = self.formatException(record.exc_info)
        return json.dumps(ligne, ensure_ascii=False)


class FormatTexte(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        debut = f"{datetime.fromtimestamp(record.created).strftime('%H:%M:%S')} {record.levelname:<7} {record.name}"
        contexte = " ".join(
            f"{k}={v}"
            for k, v in (
                ("modification", _modification(record)),
                *_appel(record).items(),
                *_extras(record).items(),
            )
            if v is not None
        )
        ligne = f"{debut} {record.getMessage()}" + (f" [{contexte}]" if contexte else "")
        if record.exc_info:
            ligne += "\n" + self.formatException(record.exc_info)
        return ligne


def configurer(format_: str = "texte", niveau: int = logging.INFO, prefixe: str = "") -> None:
    gestionnaire = logging.StreamHandler(sys.stderr)
    gestionnaire.setFormatter(FormatJson() if format_ == "json" else FormatTexte())
    racine = logging.getLogger()
    racine.handlers[:] = [gestionnaire]
    racine.setLevel(niveau)
    # The modification number is already a field of the line: keep Temporal's messages plain.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
    for bavard in ("aiosmtpd", "mail.log", "httpx", "temporalio.worker._workflow_instance"):
        logging.getLogger(bavard).setLevel(logging.WARNING)
