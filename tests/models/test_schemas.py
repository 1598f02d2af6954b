"""Payload helpers shared by the read models, the e-mails and the history."""

from __future__ import annotations

import pytest

from modif_solde.models.schemas import type_affiche


@pytest.mark.parametrize(
    ("type_piece", "attendu"),
    [
        ("MSS_RESU_TEST_TECH", "MSS_RESU_TEST_TECH_FINMSS009266"),
        ("MSS_GUIDE_PDF_API", "MSS_GUIDE_PDF_API_FINMSS009266"),
        ("decision_attribution", "decision_attribution_FINMSS009266"),
        ("AUTRE_S", "AUTRE_S"),
    ],
)
def test_type_affiche_comme_le_guide(type_piece: str, attendu: str) -> None:
    assert type_affiche(type_piece, "FINMSS009266") == attendu
