"""Structured log lines, carrying the modification number wherever there is one."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from temporalio import activity, workflow

# Set by the API for a request on a modification; Temporal sets workflow/activity info itself.
modification_courante: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "modification", default=None
)

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
            for k, v in (("modification", _modification(record)), *_extras(record).items())
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
