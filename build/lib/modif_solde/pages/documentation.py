"""The API's interactive documentation, in development only: Swagger UI from the project's own
npm files (swagger-ui-dist, copied by `make install`), under the portal's CSP like any page.
Production serves the OpenAPI document alone (/openapi.json)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from modif_solde.pages.rendu import environnement

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def documentation() -> HTMLResponse:
    return HTMLResponse(environnement.get_template("documentation.html").render())
