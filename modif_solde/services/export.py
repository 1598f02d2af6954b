"""The work queue in a spreadsheet: what its filters select, every page, as CSV that French
spreadsheets open as they are (UTF-8 with a byte order mark, `;`, dates `jj/mm/aaaa`) and as
ODS (OpenDocument). Both are streamed: the rows are read by partitions from a server-side
cursor and written as they come, so 100,000 requests take the memory of one partition.

The ODS is a zip of three members written as they come by `stream-zip` (no library writes an
OpenDocument spreadsheet as a stream: odfpy and ezodf build the whole document in memory first);
its `content.xml` is written here, one row at a time, with dates as real dates (`office:date-value`)
shown `jj/mm/aaaa`."""

from __future__ import annotations

import csv
import io
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import and_, func, select
from sqlalchemy.orm import aliased
from sqlmodel import col
from stream_zip import NO_COMPRESSION_32, ZIP_32, async_stream_zip

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.formats import FUSEAU_PARIS
from modif_solde.models.enums import StatutModification
from modif_solde.models.tables import Demande, Modification, Operateur
from modif_solde.services import lecture

# The page's columns, then the modification's outcome and dates.
COLONNES = (
    "Numéro",
    "Opérateur",
    "SIRET",
    "Statut",
    "Statut depuis le",
    "Modification",
    "Issue",
    "Ouverte le",
    "Échéance",
    "Jours restants",
    "Relancée",
    "Relance envoyée le",
    "Clôturée le",
)
# Rows read (and written) at a time.
PARTITION = 500

Valeur = str | int | date | None


def _requetes(sur_demande: list[Any], sur_modification: list[Any]) -> list[Any]:
    """The queue's two parts in its order: the requests with an open modification by deadline,
    then (without a filter on that modification) the others by number, each with its last one."""

    def colonnes(m: Any) -> tuple[Any, ...]:
        return (
            col(Demande.numero),
            col(Demande.operateur_denomination),
            col(Operateur.siret),
            col(Demande.statut),
            col(Demande.statut_modifie_le),
            m.numero,
            m.statut,
            m.ouverte_le,
            m.expire_le,
            m.relance_envoyee_le,
            m.cloturee_le,
        )

    def base(m: Any) -> Any:
        return select(*colonnes(m)).join(Operateur, col(Operateur.id) == Demande.operateur_id)

    ouverte = and_(
        col(Modification.demande_id) == Demande.id, col(Modification.statut) == StatutModification.OUVERTE
    )
    requetes = [
        base(Modification)
        .join(Modification, ouverte)
        .where(*sur_demande, *sur_modification)
        .order_by(col(Modification.expire_le), col(Demande.numero))
    ]
    if not sur_modification:
        derniere = aliased(Modification)
        rang = (
            select(func.max(col(Modification.rang)))
            .where(col(Modification.demande_id) == Demande.id)
            .correlate(Demande)
            .scalar_subquery()
        )
        sans_ouverte = ~select(col(Modification.id)).where(ouverte).correlate(Demande).exists()
        requetes.append(
            base(derniere)
            .outerjoin(derniere, and_(col(derniere.demande_id) == Demande.id, col(derniere.rang) == rang))
            .where(*sur_demande, sans_ouverte)
            .order_by(col(Demande.numero))
        )
    return requetes


def _jour(valeur: datetime | None) -> date | None:
    return valeur.astimezone(FUSEAU_PARIS).date() if valeur is not None else None


@dataclass(frozen=True)
class Libelles:
    """The words the page shows for a request's status and a modification's outcome (the export
    says the same: pages/rendu.py's)."""

    statuts: Mapping[Any, str]
    issues: Mapping[Any, str]


def _ligne(r: Any, aujourd_hui: date, libelles: Libelles) -> list[Valeur]:
    ouverte = r[6] == StatutModification.OUVERTE
    echeance = _jour(r[8])
    return [
        r[0],
        r[1],
        r[2],
        libelles.statuts.get(r[3], r[3]),
        _jour(r[4]),
        r[5],
        libelles.issues.get(r[6], r[6]) if r[6] else None,
        _jour(r[7]),
        echeance,
        max(0, (echeance - aujourd_hui).days) if ouverte and echeance else None,
        ("Oui" if r[9] is not None else "Non") if r[5] else None,
        _jour(r[9]),
        _jour(r[10]),
    ]


async def lignes(
    sessions: SessionFactory, filtres: lecture.FiltresFile, libelles: Libelles
) -> AsyncIterator[list[list[Valeur]]]:
    """The selected requests, partition by partition, in the queue's order; one read transaction."""
    aujourd_hui = datetime.now(FUSEAU_PARIS).date()
    async with unit_of_work(sessions) as session:
        sur_demande, sur_modification = await lecture.conditions_file(session, filtres)
        for requete in _requetes(sur_demande, sur_modification):
            resultat = await session.stream(requete.execution_options(yield_per=PARTITION))
            async for partition in resultat.partitions(PARTITION):
                yield [_ligne(r, aujourd_hui, libelles) for r in partition]


# --- CSV ---


def _texte_csv(v: Valeur) -> str | int:
    if v is None:
        return ""
    if isinstance(v, date):
        return v.strftime("%d/%m/%Y")
    return v


async def csv_flux(parties: AsyncIterator[list[list[Valeur]]]) -> AsyncIterator[bytes]:
    tampon = io.StringIO()
    ecrivain = csv.writer(tampon, delimiter=";", lineterminator="\r\n")
    ecrivain.writerow(COLONNES)
    yield "\ufeff".encode() + tampon.getvalue().encode()
    async for partie in parties:
        tampon.seek(0)
        tampon.truncate()
        ecrivain.writerows([[_texte_csv(v) for v in ligne] for ligne in partie])
        yield tampon.getvalue().encode()


# --- ODS ---

MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"
MANIFEST = b"""<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">
 <manifest:file-entry manifest:full-path="/" manifest:version="1.3" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>
 <manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>
</manifest:manifest>
"""
DEBUT_CONTENU = """<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"
 xmlns:number="urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0"
 xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" office:version="1.3">
<office:automatic-styles>
 <number:date-style style:name="jour"><number:day number:style="long"/><number:text>/</number:text><number:month number:style="long"/><number:text>/</number:text><number:year/></number:date-style>
 <style:style style:name="date" style:family="table-cell" style:data-style-name="jour"/>
 <style:style style:name="entete" style:family="table-cell"><style:text-properties fo:font-weight="bold"/></style:style>
</office:automatic-styles>
<office:body><office:spreadsheet><table:table table:name="File de travail">
<table:table-column table:number-columns-repeated="13"/>
"""
FIN_CONTENU = "</table:table></office:spreadsheet></office:body></office:document-content>\n"


def _cellule(v: Valeur) -> str:
    if v is None:
        return "<table:table-cell/>"
    if isinstance(v, date):
        return (
            f'<table:table-cell table:style-name="date" office:value-type="date" office:date-value="{v.isoformat()}">'
            f"<text:p>{v:%d/%m/%Y}</text:p></table:table-cell>"
        )
    if isinstance(v, int):
        return f'<table:table-cell office:value-type="float" office:value="{v}"><text:p>{v}</text:p></table:table-cell>'
    return f'<table:table-cell office:value-type="string"><text:p>{escape(v)}</text:p></table:table-cell>'


def _rangees(lignes_: Sequence[Sequence[Valeur]]) -> bytes:
    return "".join(
        "<table:table-row>" + "".join(_cellule(v) for v in ligne) + "</table:table-row>\n"
        for ligne in lignes_
    ).encode()


async def _contenu(parties: AsyncIterator[list[list[Valeur]]]) -> AsyncIterator[bytes]:
    entete = "".join(
        f'<table:table-cell table:style-name="entete" office:value-type="string"><text:p>{escape(c)}</text:p></table:table-cell>'
        for c in COLONNES
    )
    yield (DEBUT_CONTENU + f"<table:table-row>{entete}</table:table-row>\n").encode()
    async for partie in parties:
        yield _rangees(partie)
    yield FIN_CONTENU.encode()


async def _un(contenu: bytes) -> AsyncIterator[bytes]:
    yield contenu


async def ods_flux(parties: AsyncIterator[list[list[Valeur]]]) -> AsyncIterator[bytes]:
    le = datetime.now(FUSEAU_PARIS).replace(tzinfo=None, microsecond=0)

    async def membres() -> AsyncIterator[Any]:
        # The mimetype first and stored, as OpenDocument requires (a reader sniffs it).
        yield ("mimetype", le, 0o600, NO_COMPRESSION_32(len(MIMETYPE), zlib.crc32(MIMETYPE)), _un(MIMETYPE))
        yield ("META-INF/manifest.xml", le, 0o600, ZIP_32, _un(MANIFEST))
        yield ("content.xml", le, 0o600, ZIP_32, _contenu(parties))

    async for morceau in async_stream_zip(membres(), extended_timestamps=False):
        yield morceau


def nom_fichier(extension: str) -> str:
    return f"file-de-travail-{datetime.now(FUSEAU_PARIS):%Y-%m-%d}.{extension}"
