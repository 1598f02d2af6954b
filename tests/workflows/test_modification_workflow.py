"""Every path of the modification cycle on the time-skipping test server, with the real
activities, the real databases and a real SMTP server."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutDemande, StatutModification
from modif_solde.models.tables import Courriel, Demande, Modification
from modif_solde.services import modifications as svc
from modif_solde.workflows.contrat import (
    ActionOperateur,
    EtatModification,
    ModificationEntree,
    ModificationResultat,
    Prolongation,
    Retrait,
)
from modif_solde.workflows.modification import ModificationWorkflow
from tests.constructeurs import entree_modification
from tests.workflows.conftest import GESTIONNAIRES, Banc, ServeurSmtp

NUMERO = "FINMSS009266M1"
RELANCE = timedelta(days=10)
EXPIRATION = timedelta(days=20)


def entree(numero: str = NUMERO) -> ModificationEntree:
    return entree_modification(modification_numero=numero, relance_apres=RELANCE, expiration_apres=EXPIRATION)


async def ouvrir(banc: Banc, numero: str = NUMERO) -> WorkflowHandle[Any, ModificationResultat]:
    etat = await banc.demarrer(entree(numero))
    assert etat.statut == StatutModification.OUVERTE
    return banc.client.get_workflow_handle_for(ModificationWorkflow.run, numero)


async def lire(factory: SessionFactory, numero: str = NUMERO) -> tuple[Demande, Modification, list[Courriel]]:
    async with factory() as session:
        modification = await svc.charger_modification(session, numero)
        demande = await session.get_one(Demande, modification.demande_id)
        courriels = (await session.exec(select(Courriel).order_by(col(Courriel.id)))).all()
        return demande, modification, list(courriels)


async def confirmer(handle: WorkflowHandle[Any, Any]) -> EtatModification:
    return await handle.execute_update(ModificationWorkflow.confirmer, ActionOperateur(par="operateur"))


async def test_ouverture_met_a_modifier_et_invite(
    banc: Banc, factory: SessionFactory, demande: Demande, smtp: ServeurSmtp
) -> None:
    handle = await ouvrir(banc)
    demande_apres, modification, _ = await lire(factory)
    assert demande_apres.statut == StatutDemande.A_MODIFIER
    assert modification.expire_le - modification.ouverte_le == EXPIRATION
    assert modification.relance_le - modification.ouverte_le == RELANCE
    description = await handle.describe()
    attributs = {k.name: v for k, v in ((p.key, p.value) for p in description.typed_search_attributes)}
    assert attributs["DemandeNumero"] == "FINMSS009266"
    assert attributs["OperateurSiret"] == "50961588600025"
    assert attributs["ModificationStatut"] == "ouverte"
    assert attributs["ExpireLe"] == modification.expire_le
    await _attendre(lambda: smtp.boite.types() == ["invitation"])
    message = smtp.boite.messages[0]
    assert message["To"] == "operateur@sci-voiture.example"
    assert NUMERO in message["Subject"]


async def test_confirmation_avant_la_relance(
    banc: Banc, factory: SessionFactory, demande: Demande, smtp: ServeurSmtp
) -> None:
    handle = await ouvrir(banc)
    async with unit_of_work(factory) as session:
        await svc.mettre_a_jour_brouillon(session, NUMERO, {"contact_support_telephone": "0612345678"})
    etat = await confirmer(handle)
    # The answer comes once the outcome is persisted.
    demande_apres, modification, _ = await lire(factory)
    assert etat.statut == StatutModification.CONFIRMEE and etat.version_appliquee == 2
    assert (demande_apres.statut, demande_apres.version) == (StatutDemande.EN_COURS, 2)
    assert demande_apres.contact_support_telephone == "06 12 34 56 78"
    assert modification.statut == StatutModification.CONFIRMEE
    resultat = await handle.result()
    assert resultat.statut == StatutModification.CONFIRMEE
    _, _, courriels = await lire(factory)
    assert [c.type for c in courriels] == ["invitation", "confirmation", "confirmation_gestionnaires"]
    assert all(c.envoye_le is not None for c in courriels)
    assert smtp.boite.types() == ["invitation", "confirmation", "confirmation_gestionnaires"]
    assert smtp.boite.messages[2]["To"] == GESTIONNAIRES
    assert modification.relance_envoyee_le is None


async def test_relance_puis_confirmation(
    banc: Banc, factory: SessionFactory, demande: Demande, smtp: ServeurSmtp
) -> None:
    handle = await ouvrir(banc)
    await banc.env.sleep(RELANCE + timedelta(hours=1))
    await _attendre(lambda: "relance" in smtp.boite.types())
    _, modification, _ = await lire(factory)
    assert modification.relance_envoyee_le is not None
    assert modification.relance_envoyee_le - modification.ouverte_le >= RELANCE
    etat = await confirmer(handle)
    assert etat.relance_envoyee and etat.statut == StatutModification.CONFIRMEE
    await handle.result()
    assert smtp.boite.types() == ["invitation", "relance", "confirmation", "confirmation_gestionnaires"]


async def test_renonciation(banc: Banc, factory: SessionFactory, demande: Demande, smtp: ServeurSmtp) -> None:
    handle = await ouvrir(banc)
    async with unit_of_work(factory) as session:
        await svc.mettre_a_jour_brouillon(session, NUMERO, {"contact_support_nom": "Autre Nom"})
    etat = await handle.execute_update(ModificationWorkflow.renoncer, ActionOperateur(par="operateur"))
    assert etat.statut == StatutModification.RENONCEE
    demande_apres, modification, _ = await lire(factory)
    assert (demande_apres.statut, demande_apres.version, demande_apres.contact_support_nom) == (
        "en_cours",
        1,
        "NOM Prénom",
    )
    assert (modification.statut, modification.brouillon) == ("renoncee", {})
    await handle.result()
    assert smtp.boite.types() == ["invitation", "renonciation"]


async def test_expiration_a_20_jours_avec_relance_a_10(
    banc: Banc, factory: SessionFactory, demande: Demande, smtp: ServeurSmtp
) -> None:
    handle = await ouvrir(banc)
    resultat = await jusqu_au_bout(banc, handle)
    assert resultat.statut == StatutModification.EXPIREE
    demande_apres, modification, courriels = await lire(factory)
    assert demande_apres.statut == StatutDemande.EN_COURS
    assert modification.statut == StatutModification.EXPIREE
    assert modification.cloturee_le is not None and modification.relance_envoyee_le is not None
    assert environ(modification.relance_envoyee_le - modification.ouverte_le, RELANCE)
    assert environ(modification.cloturee_le - modification.ouverte_le, EXPIRATION)
    assert [c.type for c in courriels] == ["invitation", "relance", "expiration"]
    assert smtp.boite.types() == ["invitation", "relance", "expiration"]
    description = await handle.describe()
    statut = [p.value for p in description.typed_search_attributes if p.key.name == "ModificationStatut"]
    assert statut == ["expiree"]


async def test_confirmation_refusee_apres_expiration(
    banc: Banc, factory: SessionFactory, demande: Demande, smtp: ServeurSmtp
) -> None:
    handle = await ouvrir(banc)
    await jusqu_au_bout(banc, handle)
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await confirmer(handle)
    demande_apres, modification, _ = await lire(factory)
    assert (demande_apres.statut, demande_apres.version, modification.statut) == ("en_cours", 1, "expiree")


async def test_retrait(banc: Banc, factory: SessionFactory, demande: Demande, smtp: ServeurSmtp) -> None:
    handle = await ouvrir(banc)
    etat = await handle.execute_update(
        ModificationWorkflow.retirer, Retrait(par="gestionnaire-1", motif="Erreur d'aiguillage")
    )
    assert etat.statut == StatutModification.RETIREE
    await handle.result()
    demande_apres, modification, _ = await lire(factory)
    assert demande_apres.statut == StatutDemande.EN_COURS
    assert modification.issue == "Retirée par gestionnaire-1 : Erreur d'aiguillage"
    assert smtp.boite.types() == ["invitation", "retrait"]


async def test_prolongation_avant_la_relance_deplace_la_relance(
    banc: Banc, factory: SessionFactory, demande: Demande, smtp: ServeurSmtp
) -> None:
    handle = await ouvrir(banc)
    await banc.env.sleep(timedelta(days=2))
    _, modification, _ = await lire(factory)
    nouvelle = modification.expire_le + timedelta(days=5)
    etat = await handle.execute_update(
        ModificationWorkflow.prolonger, Prolongation(expire_le=nouvelle, par="g")
    )
    assert etat.expire_le == nouvelle and etat.relance_le == modification.relance_le + timedelta(days=5)
    resultat = await jusqu_au_bout(banc, handle)
    assert resultat.statut == StatutModification.EXPIREE
    _, modification, _ = await lire(factory)
    assert modification.relance_envoyee_le is not None and modification.cloturee_le is not None
    assert environ(modification.relance_envoyee_le - modification.ouverte_le, RELANCE + timedelta(days=5))
    assert environ(modification.cloturee_le - modification.ouverte_le, EXPIRATION + timedelta(days=5))
    assert smtp.boite.types() == ["invitation", "prolongation", "relance", "expiration"]


async def test_prolongation_apres_la_relance(
    banc: Banc, factory: SessionFactory, demande: Demande, smtp: ServeurSmtp
) -> None:
    handle = await ouvrir(banc)
    await banc.env.sleep(RELANCE + timedelta(days=1))
    await _attendre(lambda: "relance" in smtp.boite.types())
    _, modification, _ = await lire(factory)
    nouvelle = modification.expire_le + timedelta(days=7)
    etat = await handle.execute_update(
        ModificationWorkflow.prolonger, Prolongation(expire_le=nouvelle, par="g")
    )
    assert etat.relance_envoyee and etat.relance_le == modification.relance_le
    description = await handle.describe()
    assert [p.value for p in description.typed_search_attributes if p.key.name == "ExpireLe"] == [nouvelle]
    await jusqu_au_bout(banc, handle)
    _, modification, _ = await lire(factory)
    assert modification.cloturee_le is not None
    assert environ(modification.cloturee_le - modification.ouverte_le, EXPIRATION + timedelta(days=7))
    assert smtp.boite.types() == ["invitation", "relance", "prolongation", "expiration"]


async def test_prolongation_vers_le_passe_refusee(
    banc: Banc, factory: SessionFactory, demande: Demande, smtp: ServeurSmtp
) -> None:
    handle = await ouvrir(banc)
    _, modification, _ = await lire(factory)
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await handle.execute_update(
            ModificationWorkflow.prolonger, Prolongation(expire_le=modification.expire_le - timedelta(days=1))
        )
    assert isinstance(exc.value.cause, ApplicationError) and exc.value.cause.type == "Conflit"
    assert (await handle.query(ModificationWorkflow.etat)).expire_le == modification.expire_le


async def test_confirmer_deux_fois(
    banc: Banc, factory: SessionFactory, demande: Demande, smtp: ServeurSmtp
) -> None:
    handle = await ouvrir(banc)
    await confirmer(handle)
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await confirmer(handle)
    await handle.result()
    assert smtp.boite.types().count("confirmation") == 1


async def test_dix_confirmations_simultanees_une_seule_passe(
    banc: Banc, factory: SessionFactory, demande: Demande, smtp: ServeurSmtp
) -> None:
    handle = await ouvrir(banc)
    resultats = await asyncio.gather(*(confirmer(handle) for _ in range(10)), return_exceptions=True)
    reussies = [r for r in resultats if isinstance(r, EtatModification)]
    refusees = [r for r in resultats if isinstance(r, WorkflowUpdateFailedError | RPCError)]
    assert (len(reussies), len(refusees)) == (1, 9)
    await handle.result()
    assert smtp.boite.types().count("confirmation") == 1
    demande_apres, _, _ = await lire(factory)
    assert demande_apres.version == 1  # nothing in the draft: no new version


async def test_confirmation_refusee_tant_que_le_brouillon_est_invalide(
    banc: Banc, factory: SessionFactory, demande: Demande, smtp: ServeurSmtp
) -> None:
    handle = await ouvrir(banc)
    async with unit_of_work(factory) as session:
        modification = await svc.charger_modification(session, NUMERO)
        modification.brouillon = {"contact_support_courriel": "plus-valide"}
        session.add(modification)
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await confirmer(handle)
    cause = exc.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "DonneesInvalides"
    assert cause.details[0][0]["champ"] == "informations.contact_support_courriel"
    # Still open: the operator fixes the draft and confirms.
    assert (await handle.query(ModificationWorkflow.etat)).statut == StatutModification.OUVERTE
    async with unit_of_work(factory) as session:
        await svc.mettre_a_jour_brouillon(
            session, NUMERO, {"contact_support_courriel": "support@sci-voiture.fr"}
        )
    etat = await confirmer(handle)
    assert etat.statut == StatutModification.CONFIRMEE
    demande_apres, _, _ = await lire(factory)
    assert demande_apres.contact_support_courriel == "support@sci-voiture.fr"


async def test_ouverture_refusee_si_une_modification_est_ouverte(
    banc: Banc, factory: SessionFactory, demande: Demande, smtp: ServeurSmtp
) -> None:
    await ouvrir(banc)
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await banc.demarrer(entree("FINMSS009266M2"))
    assert (
        isinstance(exc.value.cause, ApplicationError)
        and "déjà une modification ouverte" in exc.value.cause.message
    )
    resultat = await banc.client.get_workflow_handle_for(ModificationWorkflow.run, "FINMSS009266M2").result()
    assert resultat.statut is None and resultat.motif is not None


def environ(ecart: timedelta, attendu: timedelta) -> bool:
    """The timer fires at its time, give or take the workflow task's milliseconds."""
    return attendu <= ecart < attendu + timedelta(seconds=1)


async def jusqu_au_bout(
    banc: Banc, handle: WorkflowHandle[Any, ModificationResultat]
) -> ModificationResultat:
    """Skip past any deadline, then fetch the result. (The test server stops skipping time
    on its own once an update has been sent, so the skip is explicit.)"""
    await banc.env.sleep(EXPIRATION + timedelta(days=15))
    return await handle.result()


async def _attendre(condition: Any, delai: float = 10.0) -> None:
    """Poll a condition on real time (e-mails are sent by activities after the update answers)."""
    for _ in range(int(delai / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    assert condition()
