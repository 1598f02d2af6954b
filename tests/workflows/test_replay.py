"""Replay of recorded histories: a change to ModificationWorkflow that would break the
workflows already running (another command order, an activity added or removed, a timer
moved) fails here. The histories are recorded by `python -m tests.workflows.enregistrer_historiques`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from modif_solde.worker import executeur_de_workflows
from modif_solde.workflows.contrat import (
    CLOTURER,
    CONFIRMER,
    ENVOYER_COURRIEL,
    NOTER_ECHEC_COURRIEL,
    NOTER_RELANCE,
    OUVRIR,
    PROLONGER,
    CourrielActivite,
    ModificationResultat,
)
from modif_solde.workflows.modification import (
    PATCH_COURRIELS_A_COTE,
    PATCH_OUVERTURE_LOCALE,
    ModificationWorkflow,
)
from tests.workflows import enregistrer_historiques

HISTORIQUES = Path(__file__).resolve().parent / "historiques"
NUMERO = "FINMSS009266M1"


def courriel(type_courriel: str) -> str:
    return f"{ENVOYER_COURRIEL}:{type_courriel}"


# Each path, the activities its history must show (e-mails with their kind) and the outcome.
CHEMINS: dict[str, tuple[list[str], str]] = {
    "confirmation_avant_relance": (
        [
            OUVRIR,
            courriel("invitation"),
            CONFIRMER,
            courriel("confirmation"),
            courriel("confirmation_gestionnaires"),
        ],
        "confirmee",
    ),
    "relance_puis_confirmation": (
        [
            OUVRIR,
            courriel("invitation"),
            NOTER_RELANCE,
            courriel("relance"),
            CONFIRMER,
            courriel("confirmation"),
            courriel("confirmation_gestionnaires"),
        ],
        "confirmee",
    ),
    "renonciation": ([OUVRIR, courriel("invitation"), CLOTURER, courriel("renonciation")], "renoncee"),
    "expiration_avec_relance": (
        [
            OUVRIR,
            courriel("invitation"),
            NOTER_RELANCE,
            courriel("relance"),
            CLOTURER,
            courriel("expiration"),
        ],
        "expiree",
    ),
    "retrait": ([OUVRIR, courriel("invitation"), CLOTURER, courriel("retrait")], "retiree"),
    "prolongation_avant_relance": (
        [
            OUVRIR,
            courriel("invitation"),
            PROLONGER,
            courriel("prolongation"),
            NOTER_RELANCE,
            courriel("relance"),
            CLOTURER,
            courriel("expiration"),
        ],
        "expiree",
    ),
}

# Since the patch "courriels-a-cote-des-minuteries": e-mails sent beside the timers, a final
# refusal marked failed, an unreachable server's e-mails given up (NOTER_ECHEC_COURRIEL).
CHEMINS_A_COTE: dict[str, tuple[list[str], str]] = {
    "courriels_a_cote_confirmation": CHEMINS["confirmation_avant_relance"],
    "courriels_a_cote_expiration": CHEMINS["expiration_avec_relance"],
    "courriels_a_cote_prolongation": CHEMINS["prolongation_avant_relance"],
    "courriels_a_cote_refus_definitif": CHEMINS["expiration_avec_relance"],
    "courriels_a_cote_serveur_injoignable": (
        [
            OUVRIR,
            courriel("invitation"),
            NOTER_ECHEC_COURRIEL,
            NOTER_RELANCE,
            courriel("relance"),
            NOTER_ECHEC_COURRIEL,
            CLOTURER,
            courriel("expiration"),
            NOTER_ECHEC_COURRIEL,
        ],
        "expiree",
    ),
}
# Since the patch "ouverture-en-activite-locale": the opening is a local activity (a marker in
# the first workflow task, no ACTIVITY_TASK_SCHEDULED), the update answered in that same task.
CHEMINS_OUVERTURE_LOCALE: dict[str, tuple[list[str], str]] = {
    f"ouverture_locale_{nom}": ([a for a in activites if a != OUVRIR], statut)
    for nom, (activites, statut) in {
        "confirmation": CHEMINS["confirmation_avant_relance"],
        "relance_puis_confirmation": CHEMINS["relance_puis_confirmation"],
        "renonciation": CHEMINS["renonciation"],
        "retrait": CHEMINS["retrait"],
        "expiration": CHEMINS["expiration_avec_relance"],
        "prolongation": CHEMINS["prolongation_avant_relance"],
        "refus_definitif": CHEMINS["expiration_avec_relance"],
        "serveur_injoignable": CHEMINS_A_COTE["courriels_a_cote_serveur_injoignable"],
        "demarrage_puis_update": CHEMINS["confirmation_avant_relance"],
    }.items()
}
# The patches each history's markers name, in order.
PATCHS: dict[str, list[str]] = {
    **{chemin: [] for chemin in CHEMINS},
    **{chemin: [PATCH_COURRIELS_A_COTE] for chemin in CHEMINS_A_COTE},
    **{chemin: [PATCH_OUVERTURE_LOCALE] for chemin in CHEMINS_OUVERTURE_LOCALE},
}
CHEMINS.update(CHEMINS_A_COTE)
CHEMINS.update(CHEMINS_OUVERTURE_LOCALE)


def charger(chemin: str) -> WorkflowHistory:
    fichier = HISTORIQUES / f"{chemin}.json"
    assert fichier.is_file(), (
        f"historique manquant : {fichier} (python -m tests.workflows.enregistrer_historiques)"
    )
    texte = fichier.read_text()
    assert texte.strip(), f"historique vide : {fichier}"
    historique = WorkflowHistory.from_json(NUMERO, texte)
    assert historique.events, f"historique sans événement : {fichier}"
    return historique


def activites(historique: WorkflowHistory) -> list[str]:
    noms = []
    convertisseur = pydantic_data_converter.payload_converter
    for event in historique.events:
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        attributs = event.activity_task_scheduled_event_attributes
        nom = attributs.activity_type.name
        if nom == ENVOYER_COURRIEL:
            (entree,) = convertisseur.from_payloads(list(attributs.input.payloads), [CourrielActivite])
            nom = courriel(entree.type.value)
        noms.append(nom)
    return noms


def test_un_historique_par_chemin() -> None:
    """Every path listed is recorded (a deleted file fails), and the recorder knows them all."""
    assert set(enregistrer_historiques.CHEMINS) == set(CHEMINS)
    for chemin in CHEMINS:
        charger(chemin)
    assert {f.stem for f in HISTORIQUES.glob("*.json")} == set(CHEMINS)


@pytest.mark.parametrize("chemin", list(CHEMINS))
def test_historique_conforme_au_chemin(chemin: str) -> None:
    """The recorded history is the path it is named after, run to its end."""
    historique = charger(chemin)
    attendues, statut = CHEMINS[chemin]
    assert activites(historique) == attendues
    dernier = historique.events[-1]
    assert dernier.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    (resultat,) = pydantic_data_converter.payload_converter.from_payloads(
        list(dernier.workflow_execution_completed_event_attributes.result.payloads), [ModificationResultat]
    )
    assert (resultat.modification_numero, resultat.statut) == (NUMERO, statut)


@pytest.mark.parametrize("chemin", list(CHEMINS))
def test_marqueur_du_patch(chemin: str) -> None:
    """Each history carries the markers of the patches its path was recorded with: the older
    ones none (they replay the path workflows already running still take), the e-mails beside
    the timers theirs, the local opening its own only (it implies the e-mails beside)."""
    patchs = []
    for e in charger(chemin).events:
        if (
            e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and e.marker_recorded_event_attributes.marker_name == "core_patch"
        ):
            (donnees,) = e.marker_recorded_event_attributes.details["patch-data"].payloads
            patchs.append(json.loads(donnees.data)["id"])
    assert patchs == PATCHS[chemin]


@pytest.mark.parametrize("chemin", list(CHEMINS_OUVERTURE_LOCALE))
def test_ouverture_en_une_tache(chemin: str) -> None:
    """Since the local opening, the opening and its answer take one workflow task: the first
    task holds the opening's marker and completes the update (when it came with the start);
    the invitation's activity is scheduled by that same task."""
    evenements = charger(chemin).events
    premiere_fin = next(
        i for i, e in enumerate(evenements) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    )
    suite = [e.event_type for e in evenements[premiere_fin + 1 :]]
    fin_de_tache = suite.index(EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED)
    commandes = suite[:fin_de_tache]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED in commandes  # the invitation
    marqueurs_locaux = [
        e
        for e in evenements[premiere_fin + 1 : premiere_fin + 1 + fin_de_tache]
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    assert len(marqueurs_locaux) == 1
    if "demarrage_puis_update" not in chemin:
        assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED in commandes


@pytest.mark.parametrize("chemin", list(CHEMINS))
async def test_rejeu(chemin: str) -> None:
    """The current workflow code replays the recorded history without nondeterminism."""
    # The worker's own runner: the histories replay as production would run them.
    replayer = Replayer(
        workflows=[ModificationWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=executeur_de_workflows(),
    )
    resultat = await replayer.replay_workflow(charger(chemin))
    assert resultat.replay_failure is None
