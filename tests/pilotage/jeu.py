"""A hand-built set of modifications for the steering figures: each outcome, answers before and
after the reminder, failed e-mails, and a case on each side of the period's boundaries (March
2026 in Paris, across the change to summer time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.formats import FUSEAU_PARIS
from modif_solde.models.enums import StatutDemande, StatutEnvoi, StatutModification
from modif_solde.models.tables import Courriel, Demande, Modification
from modif_solde.services.pilotage import Periode

MARS = Periode(date(2026, 3, 1), date(2026, 3, 31))
C, R, T, E = (
    StatutModification.CONFIRMEE,
    StatutModification.RENONCEE,
    StatutModification.RETIREE,
    StatutModification.EXPIREE,
)


def paris(jour: str, heure: str = "10:00") -> datetime:
    return datetime.fromisoformat(f"{jour}T{heure}").replace(tzinfo=FUSEAU_PARIS)


@dataclass(frozen=True)
class Tour:
    statut: StatutModification
    ouverte_le: datetime
    cloturee_le: datetime | None = None
    relance_envoyee_le: datetime | None = None


# Per request: its rounds. FINMSS009266 is the seed's request (the `demande` fixture).
TOURS: dict[str, list[Tour]] = {
    "FINMSS009266": [
        # Opened before March, confirmed in it after 5 days, no reminder.
        Tour(C, paris("2026-02-25"), paris("2026-03-02")),
        # Confirmed after 12 days, after the reminder.
        Tour(C, paris("2026-03-03"), paris("2026-03-15"), paris("2026-03-13")),
        # Renounced after one day.
        Tour(R, paris("2026-03-16"), paris("2026-03-17")),
        # Opened in March, expired in April.
        Tour(E, paris("2026-03-18"), paris("2026-04-07"), paris("2026-03-28")),
        # Entirely in April.
        Tour(T, paris("2026-04-08"), paris("2026-04-09")),
    ],
    "FINMSS009300": [
        # Opened a minute before March, expired in it.
        Tour(E, paris("2026-02-28", "23:59"), paris("2026-03-20", "23:59"), paris("2026-03-10")),
        # Opened at March's first instant, withdrawn.
        Tour(T, paris("2026-03-01", "00:00"), paris("2026-03-05")),
        # Renounced 19 days (in UTC) after, at 23:30 on March's last day, after the reminder.
        Tour(R, datetime(2026, 3, 12, 21, 30, tzinfo=UTC), paris("2026-03-31", "23:30"), paris("2026-03-22")),
        # Confirmed ten minutes after March's end: not an answer of March.
        Tour(C, paris("2026-03-20"), paris("2026-04-01", "00:10")),
    ],
}
# Requests with a modification open now, by days left from today: overdue, 1, 15.
OUVERTES_MAINTENANT = {"FINMSS009301": -1, "FINMSS009302": 1, "FINMSS009303": 15}
# E-mails: (request, kind, written at, status).
COURRIELS = [
    ("FINMSS009266", "relance", paris("2026-03-13"), StatutEnvoi.ECHEC),
    ("FINMSS009266", "invitation", paris("2026-03-03"), StatutEnvoi.ECHEC),
    ("FINMSS009300", "invitation", paris("2026-04-01", "00:10"), StatutEnvoi.ECHEC),
    ("FINMSS009300", "invitation", paris("2026-03-10"), StatutEnvoi.ENVOYE),
]


def _copie(modele: Demande, numero: str, statut: StatutDemande) -> Demande:
    valeurs: dict[str, Any] = modele.model_dump(exclude={"id"})
    valeurs.update(numero=numero, statut=statut)
    return Demande(**valeurs)


async def construire(factory: SessionFactory, demande: Demande, maintenant: datetime | None = None) -> None:
    """The set, on the seed's request `demande` and copies of it."""
    maintenant = maintenant or datetime.now(UTC)
    aujourd_hui = maintenant.astimezone(FUSEAU_PARIS).date()
    async with unit_of_work(factory) as session:
        ids = {"FINMSS009266": demande.id}
        for numero in [*TOURS, *OUVERTES_MAINTENANT]:
            if numero not in ids:
                statut = StatutDemande.A_MODIFIER if numero in OUVERTES_MAINTENANT else StatutDemande.EN_COURS
                copie = _copie(demande, numero, statut)
                session.add(copie)
                await session.flush()
                ids[numero] = copie.id
        for numero, tours in TOURS.items():
            for rang, t in enumerate(tours, start=1):
                session.add(
                    Modification(
                        numero=f"{numero}M{rang}",
                        demande_id=ids[numero],
                        rang=rang,
                        commentaire="Jeu de pilotage",
                        ouverte_par="gestionnaire-1",
                        ouverte_le=t.ouverte_le,
                        relance_le=t.ouverte_le + timedelta(days=10),
                        expire_le=t.ouverte_le + timedelta(days=20),
                        statut=t.statut,
                        cloturee_le=t.cloturee_le,
                        relance_envoyee_le=t.relance_envoyee_le,
                    )
                )
        for numero, jours in OUVERTES_MAINTENANT.items():
            echeance = datetime.combine(
                aujourd_hui + timedelta(days=jours), datetime.min.time(), FUSEAU_PARIS
            )
            echeance += timedelta(hours=12)
            session.add(
                Modification(
                    numero=f"{numero}M1",
                    demande_id=ids[numero],
                    rang=1,
                    commentaire="Jeu de pilotage",
                    ouverte_par="gestionnaire-1",
                    ouverte_le=echeance - timedelta(days=20),
                    relance_le=echeance - timedelta(days=10),
                    expire_le=echeance,
                )
            )
        for i, (numero, type_courriel, le, statut_envoi) in enumerate(COURRIELS):
            session.add(
                Courriel(
                    demande_id=ids[numero],
                    type=type_courriel,
                    destinataire="operateur@sci-voiture.example",
                    sujet="Sujet",
                    corps_texte="Texte",
                    corps_html="<p>Texte</p>",
                    cle_idempotence=f"jeu-{i}",
                    message_id=f"<jeu-{i}@modif-solde>",
                    cree_le=le,
                    statut_envoi=statut_envoi,
                    erreur_envoi="550 boîte inconnue" if statut_envoi == StatutEnvoi.ECHEC else None,
                )
            )
