"""A real cycle (time-skipping Temporal server, real SMTP server, real databases), with the worker
run as the service runs it (`executer`, its /metrics on a port) and the API over ASGI: both
/metrics scraped before and after, and what moved is what happened."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from modif_solde.api import metriques as m
from modif_solde.api.app import create_app
from modif_solde.config import Settings
from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.tables import Demande, Modification
from modif_solde.models.types import maintenant
from modif_solde.services import modifications as svc
from modif_solde.services.stockage import Stockage
from modif_solde.worker import executer
from tests.api.conftest import GESTIONNAIRE, OPERATEUR, SECRET
from tests.fautes.conftest import attendre
from tests.metriques.lecture import Echantillons, etiquettes_avec_un_numero, lire, valeur
from tests.processus import port_libre
from tests.workflows.conftest import ServeurSmtp

JETON = "jeton-des-metriques-0123456789-abcdef"


@dataclass
class Service:
    http: httpx.AsyncClient
    port_worker: int

    async def api(self) -> Echantillons:
        r = await self.http.get("/metrics", headers={"Authorization": f"Bearer {JETON}"})
        assert r.status_code == 200, r.text
        return lire(r.text)

    def _lire_worker(self, jeton: str | None = JETON) -> tuple[int, str]:
        requete = urllib.request.Request(f"http://127.0.0.1:{self.port_worker}/metrics")
        if jeton:
            requete.add_header("Authorization", f"Bearer {jeton}")
        try:
            with urllib.request.urlopen(requete, timeout=10) as reponse:  # noqa: S310
                return reponse.status, reponse.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except OSError:
            return 0, ""

    async def worker(self, jeton: str | None = JETON) -> tuple[int, str]:
        return await asyncio.to_thread(self._lire_worker, jeton)


@pytest.fixture
async def service(
    engine: AsyncEngine,
    factory: SessionFactory,
    stockage: Stockage,
    smtp: ServeurSmtp,
    env: WorkflowEnvironment,
) -> AsyncIterator[Service]:
    settings = Settings(
        ENVIRONNEMENT="developpement",
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        TEMPORAL_ADDRESS=env.client.service_client.config.target_host,
        TASK_QUEUE=f"tq-{uuid.uuid4()}",
        SMTP_URL=smtp.url,
        JWT_SECRET=SECRET,
        STORAGE_DIR=stockage.racine,
        PORTAIL_URL="https://portail.example",
        METRIQUES_JETON=JETON,
        METRIQUES_PORT=port_libre(),
    )
    arret = asyncio.Event()
    worker = asyncio.create_task(executer(settings, arret))
    app = create_app(settings, client=env.client)
    # Every scrape reads the database (the service caches it a few seconds).
    app.state.metriques_echeances.duree = 0
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                service = Service(http, settings.METRIQUES_PORT or 0)

                async def worker_pret() -> bool:
                    assert not worker.done(), worker
                    return (await service.worker())[0] == 200

                await attendre(worker_pret, 60, "le worker sert /metrics")
                yield service
    finally:
        arret.set()
        await asyncio.wait_for(worker, timeout=60)


async def test_un_cycle_confirme_se_lit_dans_les_metriques(
    service: Service, demande: Demande, smtp: ServeurSmtp, factory: SessionFactory
) -> None:
    statut, texte = await service.worker()
    assert statut == 200
    worker_avant = lire(texte)
    api_avant = await service.api()
    assert valeur(api_avant, "modif_solde_modifications_ouvertes") == 0

    r = await service.http.post(
        "/api/v1/demandes/FINMSS009266/modifications",
        json={
            "commentaire": "Le téléphone du contact support ne correspond pas.",
            "champs": ["contact_support_telephone"],
        },
        headers=GESTIONNAIRE,
    )
    assert r.status_code == 201, r.text
    await attendre(lambda: "invitation" in smtp.boite.types(), 60, "l'invitation est envoyée")
    api_ouverte = await service.api()
    assert valeur(api_ouverte, "modif_solde_modifications_ouvertes") == 1
    # Its deadline is 20 days away.
    assert valeur(api_ouverte, "modif_solde_modifications_echeance_48h") == 0

    r = await service.http.patch(
        "/api/v1/modifications/FINMSS009266M1/brouillon",
        json={"contact_support_telephone": "+33 6 12 34 56 78"},
        headers=OPERATEUR,
    )
    assert r.status_code == 200, r.text
    r = await service.http.post("/api/v1/modifications/FINMSS009266M1/confirmer", headers=OPERATEUR)
    assert r.status_code == 200, r.text
    courriels = ("invitation", "confirmation", "confirmation_gestionnaires")
    worker_apres: Echantillons = {}

    async def courriels_notes() -> bool:
        """Counted once the worker wrote the SMTP server's acceptance (just after the message)."""
        nonlocal worker_apres
        statut, texte = await service.worker()
        assert statut == 200
        worker_apres = lire(texte)
        return all(
            valeur(worker_apres, "modif_solde_courriels_total", type=t, resultat="envoye")
            > valeur(worker_avant, "modif_solde_courriels_total", type=t, resultat="envoye")
            for t in courriels
        )

    await attendre(courriels_notes, 60, "les courriels du cycle sont notés envoyés")
    assert sorted(smtp.boite.types()) == sorted(courriels)
    api_apres = await service.api()

    def delta(nom: str, **etiquettes: str) -> float:
        return valeur(worker_apres, nom, **etiquettes) - valeur(worker_avant, nom, **etiquettes)

    assert delta("modif_solde_modifications_total", evenement="ouverte") == 1
    assert delta("modif_solde_modifications_total", evenement="confirmee") == 1
    for evenement in ("renoncee", "expiree", "retiree", "prolongee"):
        assert delta("modif_solde_modifications_total", evenement=evenement) == 0, evenement
    for type_ in courriels:
        assert delta("modif_solde_courriels_total", type=type_, resultat="envoye") == 1, type_
        assert delta("modif_solde_courriels_total", type=type_, resultat="echec") == 0, type_
    assert delta("modif_solde_courriels_total", type="relance", resultat="envoye") == 0
    assert delta("modif_solde_delai_reponse_secondes_count", issue="confirmee") == 1
    assert delta("modif_solde_delai_reponse_secondes_count", issue="renoncee") == 0
    assert valeur(api_apres, "modif_solde_modifications_ouvertes") == 0
    # The requests of the cycle, each under its route's template.
    cle = {"methode": "POST", "route": "/api/v1/modifications/{numero}/confirmer", "statut": "200"}
    assert valeur(api_apres, "modif_solde_http_requetes_total", **cle) >= 1

    # The Temporal SDK's own metrics come with the worker's.
    assert valeur(worker_apres, "modif_solde_temporal_sdk_lisible") == 1
    assert any(nom.startswith("temporal_") for nom, _ in worker_apres)
    assert (
        valeur(worker_apres, "temporal_num_pollers", **_etiquettes_de(worker_apres, "temporal_num_pollers"))
        > 0
    )

    for echantillons in (worker_apres, api_apres):
        assert etiquettes_avec_un_numero(echantillons) == []

    # Without the token, the worker's /metrics gives nothing.
    statut, texte = await service.worker(jeton=None)
    assert statut == 401 and "modif_solde" not in texte
    statut, texte = await service.worker(jeton="un-autre-jeton-de-plus-de-32-caracteres")
    assert statut == 401 and "modif_solde" not in texte


def _etiquettes_de(echantillons: Echantillons, nom: str) -> dict[str, str]:
    return dict(next(etiquettes for n, etiquettes in echantillons if n == nom))


async def test_les_jauges_comptent_les_echeances_proches_et_depassees(
    service: Service, demande: Demande, factory: SessionFactory
) -> None:
    """A modification written without its workflow (what the overdue gauge exists to reveal)."""
    maintenant_ = maintenant()
    async with unit_of_work(factory) as session:
        await svc.ouvrir(
            session,
            svc.Ouverture(
                demande_numero="FINMSS009266",
                numero="FINMSS009266M1",
                commentaire="Le site de documentation ne répond pas.",
                champs=["site_documentation_url"],
                ouverte_par="gestionnaire.test",
                ouverte_le=maintenant_ - timedelta(days=2),
                relance_le=maintenant_ - timedelta(days=1),
                expire_le=maintenant_ + timedelta(hours=1),
            ),
        )
    api = await service.api()
    assert valeur(api, "modif_solde_modifications_ouvertes") == 1
    assert valeur(api, "modif_solde_modifications_echeance_48h") == 1
    assert valeur(api, "modif_solde_modifications_echeance_depassee") == 0

    # Past its deadline by less than the margin: not yet counted as overdue.
    await _echeance(factory, maintenant_ - m.MARGE_ECHEANCE + timedelta(minutes=5))
    api = await service.api()
    assert valeur(api, "modif_solde_modifications_echeance_48h") == 0
    assert valeur(api, "modif_solde_modifications_echeance_depassee") == 0

    await _echeance(factory, maintenant_ - timedelta(hours=1))
    api = await service.api()
    assert valeur(api, "modif_solde_modifications_ouvertes") == 1
    assert valeur(api, "modif_solde_modifications_echeance_48h") == 0
    assert valeur(api, "modif_solde_modifications_echeance_depassee") == 1


async def _echeance(factory: SessionFactory, expire_le: datetime) -> None:
    async with unit_of_work(factory) as session:
        modification = (await session.exec(select(Modification))).one()
        modification.expire_le = expire_le
        session.add(modification)


async def test_chaque_issue_compte_sous_son_nom(
    service: Service, demande: Demande, env: WorkflowEnvironment
) -> None:
    """Renounced after an extension, withdrawn, expired: one count each, and their e-mails."""
    statut, texte = await service.worker()
    assert statut == 200
    avant = lire(texte)

    async def ouvrir(numero: str) -> None:
        r = await service.http.post(
            "/api/v1/demandes/FINMSS009266/modifications",
            json={
                "commentaire": "Le site de documentation ne répond pas.",
                "champs": ["site_documentation_url"],
            },
            headers=GESTIONNAIRE,
        )
        assert r.status_code == 201 and r.json()["numero"] == numero, r.text

    await ouvrir("FINMSS009266M1")
    nouvelle = (datetime.now(UTC) + timedelta(days=25)).isoformat()
    r = await service.http.post(
        "/api/v1/modifications/FINMSS009266M1/prolonger", json={"expire_le": nouvelle}, headers=GESTIONNAIRE
    )
    assert r.status_code == 200, r.text
    r = await service.http.post("/api/v1/modifications/FINMSS009266M1/renoncer", headers=OPERATEUR)
    assert r.status_code == 200 and r.json()["statut"] == "renoncee", r.text
    await ouvrir("FINMSS009266M2")
    r = await service.http.post(
        "/api/v1/modifications/FINMSS009266M2/retirer",
        json={"motif": "Ouverte par erreur."},
        headers=GESTIONNAIRE,
    )
    assert r.status_code == 200 and r.json()["statut"] == "retiree", r.text
    await ouvrir("FINMSS009266M3")
    # The test server's clock jumps past the reminder and the deadline.
    await env.sleep(timedelta(days=21))

    attendus = {
        ("modif_solde_modifications_total", "evenement", "ouverte"): 3,
        ("modif_solde_modifications_total", "evenement", "prolongee"): 1,
        ("modif_solde_modifications_total", "evenement", "renoncee"): 1,
        ("modif_solde_modifications_total", "evenement", "retiree"): 1,
        ("modif_solde_modifications_total", "evenement", "expiree"): 1,
        ("modif_solde_modifications_total", "evenement", "confirmee"): 0,
        ("modif_solde_delai_reponse_secondes_count", "issue", "renoncee"): 1,
        ("modif_solde_delai_reponse_secondes_count", "issue", "confirmee"): 0,
    }
    apres: Echantillons = {}

    def deltas() -> dict[tuple[str, str, str], float]:
        return {
            (nom, cle, v): valeur(apres, nom, **{cle: v}) - valeur(avant, nom, **{cle: v})
            for nom, cle, v in attendus
        }

    async def tout_compte() -> bool:
        nonlocal apres
        statut, texte = await service.worker()
        assert statut == 200
        apres = lire(texte)
        envoyes = valeur(apres, "modif_solde_courriels_total", type="expiration", resultat="envoye") - valeur(
            avant, "modif_solde_courriels_total", type="expiration", resultat="envoye"
        )
        return deltas() == attendus and envoyes == 1

    await attendre(tout_compte, 60, "les trois issues et le courriel d'expiration sont comptés")
    assert deltas() == attendus
    for type_, nombre in {
        "invitation": 3,
        "prolongation": 1,
        "renonciation": 1,
        "retrait": 1,
        "expiration": 1,
    }.items():
        envoyes = valeur(apres, "modif_solde_courriels_total", type=type_, resultat="envoye") - valeur(
            avant, "modif_solde_courriels_total", type=type_, resultat="envoye"
        )
        assert envoyes == nombre, type_
    assert etiquettes_avec_un_numero(apres) == []
