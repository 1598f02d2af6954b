"""The metrics settings: a token too short, or the worker's port opened without a token in
production, is refused with the setting named."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from modif_solde.config import Settings, decrire_erreurs

SECRET = "secret-de-test-0123456789-0123456789-abcdef"


def erreurs(**reglages: object) -> list[str]:
    with pytest.raises(ValidationError) as exc:
        Settings(JWT_SECRET=SECRET, **reglages)  # type: ignore[arg-type]
    return decrire_erreurs(exc.value)


def test_un_jeton_trop_court_est_refuse() -> None:
    assert erreurs(ENVIRONNEMENT="developpement", METRIQUES_JETON="court") == [
        "MODIF_SOLDE_METRIQUES_JETON : le jeton des métriques doit compter 32 caractères au moins"
    ]


def test_en_production_le_port_du_worker_exige_le_jeton() -> None:
    (message,) = erreurs(ENVIRONNEMENT="production", METRIQUES_PORT=9464)
    assert "MODIF_SOLDE_METRIQUES_JETON doit être défini" in message
    assert Settings(
        JWT_SECRET=SECRET, ENVIRONNEMENT="production", METRIQUES_PORT=9464, METRIQUES_JETON="j" * 32
    )
    # In development the port may stay open on loopback without a token.
    assert (
        Settings(JWT_SECRET=SECRET, ENVIRONNEMENT="developpement", METRIQUES_PORT=9464).METRIQUES_JETON
        is None
    )


def test_un_port_hors_limites_est_refuse() -> None:
    (message,) = erreurs(ENVIRONNEMENT="developpement", METRIQUES_PORT=70000)
    assert message.startswith("MODIF_SOLDE_METRIQUES_PORT")
