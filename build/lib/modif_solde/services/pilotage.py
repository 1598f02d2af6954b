"""The steering dashboard's figures: over a period, the modifications opened and closed by
outcome, the operators' answer time (median and 9th decile), the answers before and after the
reminder, the failed e-mails by kind; and now, the open modifications by days left.

Each figure is an aggregate query over an indexed column (`ouverte_le`, `cloturee_le`, the
partial indexes of open modifications and of failed e-mails): no row is read into Python. What
each figure counts is one condition (`condition_tour`, `condition_courriel_echec`,
`condition_tranche`), which the work queue's filters reuse: a number and the queue it links to
count the same thing.

A period is whole days in Paris, `du` and `au` included. An answer is the operator's
confirmation or renunciation, dated by the modification's closing; it came "after the reminder"
when the reminder had gone out (`relance_envoyee_le`, written once, never after the closing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, and_, case, func, literal, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde.formats import FUSEAU_PARIS
from modif_solde.models.enums import StatutEnvoi, StatutModification, TypeCourriel
from modif_solde.models.tables import Courriel, Modification
from modif_solde.services.erreurs import DonneesInvalides

# A period longer than this is refused (a typing error, and the queries stay short).
DUREE_MAX = timedelta(days=366)

Tour = Literal[
    "ouverte", "confirmee", "renoncee", "retiree", "expiree", "reponse", "avant_relance", "apres_relance"
]
TOURS: tuple[str, ...] = Tour.__args__  # type: ignore[attr-defined]
ISSUES: tuple[StatutModification, ...] = (
    StatutModification.CONFIRMEE,
    StatutModification.RENONCEE,
    StatutModification.RETIREE,
    StatutModification.EXPIREE,
)
REPONSES = (StatutModification.CONFIRMEE.value, StatutModification.RENONCEE.value)


@dataclass(frozen=True)
class Periode:
    du: date
    au: date

    @property
    def debut(self) -> datetime:
        return debut_du_jour(self.du)

    @property
    def fin(self) -> datetime:
        """The instant after the period: the start of the day after `au`."""
        return debut_du_jour(self.au + timedelta(days=1))


def debut_du_jour(jour: date) -> datetime:
    return datetime.combine(jour, time(0), FUSEAU_PARIS)


def aujourd_hui() -> date:
    return datetime.now(FUSEAU_PARIS).date()


def mois_de(jour: date) -> Periode:
    fin = (jour.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return Periode(jour.replace(day=1), fin)


def semaine_de(jour: date) -> Periode:
    lundi = jour - timedelta(days=jour.weekday())
    return Periode(lundi, lundi + timedelta(days=6))


def lire_periode(du: str | None, au: str | None, vide_absent: bool = True) -> Periode:
    """The period typed (`AAAA-MM-JJ`): this month by default; one bound alone, the rest of its
    month. A bad one is refused, each field named; an empty one too, unless `vide_absent` (a
    form's empty field, on the page)."""
    erreurs = []
    jours: dict[str, date] = {}
    for champ, valeur in (("du", du), ("au", au)):
        if valeur is None or (vide_absent and not valeur.strip()):
            continue
        try:
            jours[champ] = date.fromisoformat(valeur.strip())
        except ValueError:
            erreurs.append(
                {"champ": champ, "message": f"Le champ « {champ} » doit être une date (AAAA-MM-JJ)."}
            )
    if not erreurs:
        mois = mois_de(jours.get("du") or jours.get("au") or aujourd_hui())
        jours.setdefault("du", mois.du)
        jours.setdefault("au", mois.au)
    if not erreurs and jours["au"] < jours["du"]:
        erreurs.append(
            {"champ": "au", "message": "Le champ « au » doit être le même jour que « du » ou après."}
        )
    elif not erreurs and jours["au"] - jours["du"] >= DUREE_MAX:
        erreurs.append({"champ": "au", "message": "La période ne peut pas dépasser 366 jours."})
    if erreurs:
        raise DonneesInvalides("La période demandée n'est pas valide.", erreurs)
    return Periode(jours["du"], jours["au"])


# --- What each figure counts ---


def _dans(colonne: Any, periode: Periode) -> ColumnElement[bool]:
    return and_(colonne >= periode.debut, colonne < periode.fin)


def condition_tour(tour: str, periode: Periode) -> ColumnElement[bool]:
    """The modifications a period figure counts: opened in it, closed in it with that outcome,
    answered in it (before or after the reminder)."""
    if tour == "ouverte":
        return _dans(col(Modification.ouverte_le), periode)
    cloturee = _dans(col(Modification.cloturee_le), periode)
    if tour in {i.value for i in ISSUES}:
        return and_(col(Modification.statut) == tour, cloturee)
    reponse = and_(col(Modification.statut).in_(REPONSES), cloturee)
    if tour == "reponse":
        return reponse
    if tour == "apres_relance":
        return and_(reponse, col(Modification.relance_envoyee_le).is_not(None))
    if tour == "avant_relance":
        return and_(reponse, col(Modification.relance_envoyee_le).is_(None))
    raise ValueError(tour)


def condition_courriel_echec(type_courriel: str | None, periode: Periode) -> ColumnElement[bool]:
    """The e-mails given up (refused for good) among those written in the period, of one kind or all."""
    condition = and_(
        col(Courriel.statut_envoi) == StatutEnvoi.ECHEC.value, _dans(col(Courriel.cree_le), periode)
    )
    return condition if type_courriel is None else and_(condition, col(Courriel.type) == type_courriel)


@dataclass(frozen=True)
class Tranche:
    """Open modifications whose deadline falls `min` to `max` days from today (Paris days, both
    included; None: unbounded). Days left as the work queue counts them."""

    libelle: str
    min: int | None
    max: int | None

    def bornes(self, jour: date) -> tuple[datetime | None, datetime | None]:
        apres = debut_du_jour(jour + timedelta(days=self.min)) if self.min is not None else None
        avant = debut_du_jour(jour + timedelta(days=self.max + 1)) if self.max is not None else None
        return apres, avant

    def filtres_file(self, jour: date) -> dict[str, str]:
        """The work queue's filters that select the same modifications."""
        filtres = {}
        if self.min is not None:
            filtres["echeance_apres"] = (jour + timedelta(days=self.min)).isoformat()
        if self.max is not None:
            filtres["echeance_avant"] = (jour + timedelta(days=self.max)).isoformat()
        return filtres


TRANCHES = (
    Tranche("Échéance dépassée", None, -1),
    Tranche("0 à 2 jours", 0, 2),
    Tranche("3 à 5 jours", 3, 5),
    Tranche("6 à 10 jours", 6, 10),
    Tranche("11 à 20 jours", 11, 20),
    Tranche("Plus de 20 jours", 21, None),
)


def condition_tranche(tranche: Tranche, jour: date) -> ColumnElement[bool]:
    apres, avant = tranche.bornes(jour)
    conditions = [col(Modification.statut) == StatutModification.OUVERTE.value]
    if apres is not None:
        conditions.append(col(Modification.expire_le) >= apres)
    if avant is not None:
        conditions.append(col(Modification.expire_le) < avant)
    return and_(*conditions)


# --- The figures ---


class Cloturees(BaseModel):
    confirmees: int = Field(description="Confirmées par l'opérateur")
    renoncees: int = Field(description="L'opérateur a renoncé à modifier")
    retirees: int = Field(description="Retirées par un gestionnaire")
    expirees: int = Field(description="Closes à l'échéance, sans réponse")


class DelaiReponse(BaseModel):
    reponses: int = Field(
        description="Réponses de l'opérateur (confirmation ou renonciation) dans la période"
    )
    mediane_jours: float | None = Field(description="Délai médian de l'ouverture à la réponse, en jours")
    decile_9_jours: float | None = Field(
        description="9e décile de ce délai, en jours : 90 % des réponses arrivent avant"
    )


class Relance(BaseModel):
    avant_relance: int = Field(description="Réponses arrivées avant la relance")
    apres_relance: int = Field(description="Réponses arrivées après la relance")
    part_apres_relance: float | None = Field(description="Part des réponses arrivées après la relance, en %")


class CourrielsEchec(BaseModel):
    type: TypeCourriel
    nombre: int


class TrancheOuvertes(BaseModel):
    libelle: str
    jours_min: int | None = Field(description="Jours restants, au moins (vide : sans borne)")
    jours_max: int | None = Field(description="Jours restants, au plus (vide : sans borne)")
    nombre: int


class Pilotage(BaseModel):
    """The steering figures over a period (`du`, `au`: days in Paris, both included), and the open
    modifications now."""

    du: date
    au: date
    calcule_le: datetime
    ouvertes: int = Field(description="Modifications ouvertes dans la période")
    cloturees: Cloturees = Field(description="Modifications closes dans la période, par issue")
    delai_reponse: DelaiReponse
    relance: Relance
    courriels_en_echec: list[CourrielsEchec] = Field(
        description="Courriels abandonnés, par type (écrits dans la période)"
    )
    ouvertes_maintenant: list[TrancheOuvertes] = Field(
        description="Modifications ouvertes maintenant, par jours restants"
    )


def _compte(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def lire_pilotage(session: AsyncSession, periode: Periode, le: datetime | None = None) -> Pilotage:
    """Every figure: four aggregate queries (five on SQLite, where the percentiles are read by
    offset)."""
    le = le or datetime.now(FUSEAU_PARIS)
    jour = le.astimezone(FUSEAU_PARIS).date()
    connexion = await session.connection()

    tours = [t for t in TOURS]
    periode_tours = select(*[_compte(condition_tour(t, periode)).label(t) for t in tours]).where(
        _dans(col(Modification.ouverte_le), periode) | _dans(col(Modification.cloturee_le), periode)
    )
    comptes = dict(zip(tours, (int(v) for v in (await connexion.execute(periode_tours)).one()), strict=True))

    mediane, decile = await _percentiles(session, periode)

    echecs_requete = (
        select(col(Courriel.type), func.count())
        .where(condition_courriel_echec(None, periode))
        .group_by(col(Courriel.type))
        .order_by(col(Courriel.type))
    )
    echecs = [
        CourrielsEchec(type=TypeCourriel(t), nombre=int(n))
        for t, n in (await connexion.execute(echecs_requete)).all()
    ]

    tranches_requete = select(*[_compte(condition_tranche(t, jour)) for t in TRANCHES]).where(
        col(Modification.statut) == StatutModification.OUVERTE.value
    )
    par_tranche = (await connexion.execute(tranches_requete)).one()

    reponses = comptes["reponse"]
    return Pilotage(
        du=periode.du,
        au=periode.au,
        calcule_le=le,
        ouvertes=comptes["ouverte"],
        cloturees=Cloturees(
            confirmees=comptes["confirmee"],
            renoncees=comptes["renoncee"],
            retirees=comptes["retiree"],
            expirees=comptes["expiree"],
        ),
        delai_reponse=DelaiReponse(reponses=reponses, mediane_jours=mediane, decile_9_jours=decile),
        relance=Relance(
            avant_relance=comptes["avant_relance"],
            apres_relance=comptes["apres_relance"],
            part_apres_relance=round(100 * comptes["apres_relance"] / reponses, 1) if reponses else None,
        ),
        courriels_en_echec=echecs,
        ouvertes_maintenant=[
            TrancheOuvertes(libelle=t.libelle, jours_min=t.min, jours_max=t.max, nombre=int(n))
            for t, n in zip(TRANCHES, par_tranche, strict=True)
        ],
    )


def _duree_jours(dialecte: str) -> Any:
    """From opening to closing, in days, as the database computes it."""
    if dialecte == "postgresql":
        return func.extract("epoch", col(Modification.cloturee_le) - col(Modification.ouverte_le)) / literal(
            86400.0
        )
    return func.julianday(col(Modification.cloturee_le)) - func.julianday(col(Modification.ouverte_le))


def _arrondi(valeur: Any) -> float | None:
    # Hundredths of a day (15 minutes): the same figure on both databases (julianday's float
    # arithmetic differs from PostgreSQL's exact epoch beyond that).
    return None if valeur is None else round(float(valeur), 2)


async def _percentiles(session: AsyncSession, periode: Periode) -> tuple[float | None, float | None]:
    """The median and 9th decile of the answer time, continuous (interpolated between the two
    nearest answers, as PostgreSQL's `percentile_cont`); on SQLite, which has no ordered-set
    aggregate, the same interpolation over the two rows read at that offset of the ordered times."""
    connexion = await session.connection()
    dialecte = connexion.dialect.name
    duree = _duree_jours(dialecte)
    reponses = condition_tour("reponse", periode)
    if dialecte == "postgresql":
        requete = select(
            func.percentile_cont(0.5).within_group(duree), func.percentile_cont(0.9).within_group(duree)
        ).where(reponses)
        mediane, decile = (await connexion.execute(requete)).one()
        return _arrondi(mediane), _arrondi(decile)
    nombre = int((await connexion.execute(select(func.count()).where(reponses))).scalar_one())
    if nombre == 0:
        return None, None
    resultats = []
    for p in (0.5, 0.9):
        position = p * (nombre - 1)
        rang = math.floor(position)
        deux = select(duree).where(reponses).order_by(duree).offset(rang).limit(2)
        valeurs = [float(v) for v in (await connexion.execute(deux)).scalars().all()]
        haut = valeurs[1] if len(valeurs) > 1 else valeurs[0]
        resultats.append(_arrondi(valeurs[0] + (position - rang) * (haut - valeurs[0])))
    return resultats[0], resultats[1]
