"""The work queue in a spreadsheet (`/demandes.csv`, `/demandes.ods`), for gestionnaires: what
the queue's filters select (pages/file.py), every page, streamed (services/export.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from modif_solde.pages import etat, file
from modif_solde.pages import session as sess
from modif_solde.pages.rendu import STATUTS_DEMANDE, STATUTS_MODIFICATION
from modif_solde.services import export
from modif_solde.web.problemes import Probleme

router = APIRouter(include_in_schema=False)


@router.get("/demandes.csv")
async def exporter_csv(request: Request, _gestionnaire: sess.GestionnairePortailDep) -> Response:
    return _export(request, "csv")


@router.get("/demandes.ods")
async def exporter_ods(request: Request, _gestionnaire: sess.GestionnairePortailDep) -> Response:
    return _export(request, "ods")


def _export(request: Request, format_: str) -> Response:
    """What the queue's filters select (the same query string), every page, streamed. A filter
    that is wrong is named, with 422, before anything is written."""
    filtres, _, erreurs = file.filtres(dict(request.query_params))
    if erreurs:
        raise Probleme(422, " ".join(e["message"] for e in erreurs), titre="Filtres invalides")
    libelles = export.Libelles(STATUTS_DEMANDE, STATUTS_MODIFICATION)
    parties = export.lignes(etat.lecture_seule(request), filtres, libelles)
    if format_ == "csv":
        corps, type_ = export.csv_flux(parties), "text/csv; charset=utf-8"
    else:
        corps, type_ = export.ods_flux(parties), "application/vnd.oasis.opendocument.spreadsheet"
    return StreamingResponse(
        corps,
        media_type=type_,
        headers={"Content-Disposition": f'attachment; filename="{export.nom_fichier(format_)}"'},
    )
