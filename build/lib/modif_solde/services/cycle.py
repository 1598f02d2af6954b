"""The modification cycle's use cases, one path per action for the API and the pages alike: the
import, the opening, the draft and its documents, and the workflow's updates (confirm, renounce,
withdraw, extend) with their bounded waits.

Each raises only the domain's errors (services/erreurs.py); the API maps them once to
problem+json (api/problemes.py), the pages once to their messages (pages/erreurs.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from modif_solde.config import Settings
from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutModification
from modif_solde.models.schemas import DemandeImport
from modif_solde.models.tables import Demande, Modification, Operateur, Piece
from modif_solde.models.utilisateur import Role, Utilisateur
from modif_solde.services import idempotence
from modif_solde.services import modifications as svc
from modif_solde.services.demandes import charger_demande, importer_demande
from modif_solde.services.erreurs import (
    AccesRefuse,
    BrouillonPerime,
    Conflit,
    CycleArrete,
    DonneesInvalides,
    ErreurDomaine,
    MoteurIndisponible,
)
from modif_solde.services.stockage import Stockage
from modif_solde.temporal import demarrer_modification
from modif_solde.workflows.contrat import (
    ERREUR_DONNEES_INVALIDES,
    ActionOperateur,
    EtatModification,
    ModificationEntree,
    Prolongation,
    Retrait,
)
from modif_solde.workflows.modification import ModificationWorkflow

T = TypeVar("T")
journal = logging.getLogger(__name__)


@dataclass(frozen=True)
class OuverturePrevue:
    """An opening checked and numbered, not started yet (the gestionnaire's confirmation step
    shows it; `ouvrir` starts it)."""

    demande_numero: str
    modification_numero: str
    commentaire: str
    champs: list[str]
    siret: str
    denomination: str


@dataclass(frozen=True)
class Cycle:
    """The use cases over the service's resources (built once per application)."""

    sessions: SessionFactory
    sessions_lecture: SessionFactory
    temporal: Client
    stockage: Stockage
    settings: Settings

    # --- Import ---

    async def importer(
        self, utilisateur: Utilisateur, donnees: DemandeImport, session: AsyncSession | None = None
    ) -> Demande:
        """Import a request (an operator only its own SIRET's); every refusal is logged with its
        caller. `session`: the caller's transaction, or one of its own."""
        try:
            if utilisateur.role == Role.OPERATEUR and donnees.operateur.siret != utilisateur.siret:
                raise AccesRefuse("Un opérateur ne peut importer que les demandes de son propre SIRET.")
            if session is not None:
                return await importer_demande(session, self.stockage, donnees)
            async with unit_of_work(self.sessions) as session:
                return await importer_demande(session, self.stockage, donnees)
        except ErreurDomaine as refus:
            noter_import_refuse(utilisateur, donnees.numero, refus)
            raise

    # --- Opening ---

    async def preparer_ouverture(
        self, demande_numero: str, commentaire: Any, champs: Any, sessions: SessionFactory | None = None
    ) -> OuverturePrevue:
        """The opening's rules, the request openable (an early 409 before any workflow; the
        opening activity checks again under lock) and the next modification's number."""
        commentaire_net, champs_nets = svc.verifier_ouverture(commentaire, champs)
        async with unit_of_work(sessions or self.sessions_lecture) as session:
            demande = await charger_demande(session, demande_numero)
            await svc.verifier_ouvrable(session, demande)
            return OuverturePrevue(
                demande_numero=demande_numero,
                modification_numero=await svc.prochain_numero(session, demande),
                commentaire=commentaire_net,
                champs=champs_nets,
                siret=(await session.get_one(Operateur, demande.operateur_id)).siret,
                denomination=demande.operateur_denomination,
            )

    async def ouvrir(
        self, demande_numero: str, commentaire: Any, champs: Any, par: Utilisateur
    ) -> tuple[str, EtatModification]:
        """Open the request's next modification: its workflow starts and answers once the opening
        is persisted (the request « à modifier »)."""
        prevue = await self.preparer_ouverture(demande_numero, commentaire, champs, self.sessions)
        # The opening itself is the workflow's activity, outside the (closed) transaction.
        entree = ModificationEntree(
            demande_numero=demande_numero,
            modification_numero=prevue.modification_numero,
            commentaire=prevue.commentaire,
            champs=prevue.champs,
            ouverte_par=par.sub,
            relance_apres=self.settings.RELANCE_APRES,
            expiration_apres=self.settings.EXPIRATION_APRES,
        )
        etat = await self._attendre(
            demarrer_modification(self.temporal, self.settings.TASK_QUEUE, entree, prevue.siret),
            prevue.modification_numero,
        )
        return prevue.modification_numero, etat

    # --- The draft and its documents (written without the workflow, while it runs) ---

    async def exiger_cycle_actif_si_ouverte(self, numero: str, siret: str | None) -> None:
        """For what writes the draft or its documents without the workflow: a modification the
        caller may not see stays Introuvable (asked first), a closed one gets the service's own
        refusal, an open one needs its workflow running. Read in a read-only transaction, so
        that no lock is held while Temporal answers."""
        async with unit_of_work(self.sessions_lecture) as session:
            modification = await svc.charger_modification(session, numero, siret)
        if modification.statut == StatutModification.OUVERTE:
            await self._exiger_cycle_actif(numero)

    async def modifier_brouillon(
        self,
        numero: str,
        siret: str | None,
        changements: Any,
        version: int | None,
        session: AsyncSession | None = None,
    ) -> Modification:
        """Change the draft's editable fields. `session`: the caller's transaction, the cycle
        already checked (the API's dependency); without it, checked here, in a transaction of
        its own."""
        if session is not None:
            return await svc.mettre_a_jour_brouillon(session, numero, changements, siret, version)
        await self.exiger_cycle_actif_si_ouverte(numero, siret)
        async with unit_of_work(self.sessions) as session:
            return await svc.mettre_a_jour_brouillon(session, numero, changements, siret, version)

    async def ajouter_piece(
        self,
        numero: str,
        siret: str | None,
        type_piece: Any,
        nom_fichier: Any,
        contenu: AsyncIterable[bytes],
        session: AsyncSession | None = None,
    ) -> Piece:
        """Add a document to the open modification (`session` as for `modifier_brouillon`)."""
        if session is None:
            await self.exiger_cycle_actif_si_ouverte(numero, siret)
            async with unit_of_work(self.sessions) as session:
                return await self.ajouter_piece(numero, siret, type_piece, nom_fichier, contenu, session)
        return await svc.ajouter_piece(
            session,
            self.stockage,
            numero,
            type_piece,
            nom_fichier,
            contenu,
            self.settings.PIECE_TAILLE_MAX,
            siret,
            self.settings.PIECES_MAX_PAR_MODIFICATION,
        )

    async def supprimer_piece(
        self, numero: str, siret: str | None, piece_id: str, session: AsyncSession | None = None
    ) -> None:
        """Delete a document added during the modification (`session` as for `modifier_brouillon`)."""
        if session is not None:
            return await svc.supprimer_piece(session, self.stockage, numero, piece_id, siret)
        await self.exiger_cycle_actif_si_ouverte(numero, siret)
        async with unit_of_work(self.sessions) as session:
            await svc.supprimer_piece(session, self.stockage, numero, piece_id, siret)

    # --- The workflow's updates ---

    async def confirmer(
        self, numero: str, operateur: Utilisateur, version: int | None = None, cle: str | None = None
    ) -> None:
        """Apply the draft (only at `version`, when given: the draft the person reviewed)."""
        action = ActionOperateur(par=operateur.sub, version_brouillon=version)
        await self._mettre_a_jour(numero, operateur, ModificationWorkflow.confirmer, action, cle=cle)

    async def renoncer(self, numero: str, operateur: Utilisateur, cle: str | None = None) -> None:
        action = ActionOperateur(par=operateur.sub)
        await self._mettre_a_jour(numero, operateur, ModificationWorkflow.renoncer, action, cle=cle)

    async def retirer(
        self, numero: str, gestionnaire: Utilisateur, motif: str, cle: str | None = None
    ) -> None:
        retrait = Retrait(par=gestionnaire.sub, motif=motif.strip())
        await self._mettre_a_jour(numero, gestionnaire, ModificationWorkflow.retirer, retrait, "motif", cle)

    async def prolonger(
        self, numero: str, gestionnaire: Utilisateur, expire_le: datetime, cle: str | None = None
    ) -> None:
        prolongation = Prolongation(expire_le=expire_le, par=gestionnaire.sub)
        await self._mettre_a_jour(
            numero, gestionnaire, ModificationWorkflow.prolonger, prolongation, "expire_le", cle
        )

    async def _mettre_a_jour(
        self,
        numero: str,
        utilisateur: Utilisateur,
        methode: Any,
        argument: BaseModel,
        champ: str = "corps",
        cle: str | None = None,
    ) -> None:
        """What every update does: Introuvable for a modification the caller may not see (before
        asking the workflow anything), the idempotency key recorded, the update within the
        bounded wait."""
        action: str = methode.__name__
        async with unit_of_work(self.sessions) as session:
            modification = await svc.charger_modification(session, numero, utilisateur.perimetre_siret)
            if cle is not None:
                await idempotence.reserver(session, cle, numero, action, utilisateur.sub, argument)
        handle = self.temporal.get_workflow_handle_for(ModificationWorkflow.run, numero)
        # (The SDK's overloads type an async handler's result as a coroutine under mypy.)
        appel = cast(
            Awaitable[EtatModification],
            handle.execute_update(methode, argument, id=idempotence.id_mise_a_jour(action, cle)),
        )
        await self._attendre(
            appel, numero, champ, ouverte_en_base=modification.statut == StatutModification.OUVERTE
        )

    # --- Temporal ---

    async def _exiger_cycle_actif(self, numero: str) -> None:
        """CycleArrete unless the modification's workflow is running; MoteurIndisponible if
        Temporal does not answer."""
        try:
            description = await self.temporal.get_workflow_handle(numero).describe(
                rpc_timeout=timedelta(seconds=5)
            )
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise CycleArrete(numero) from None
            raise MoteurIndisponible() from None
        except RuntimeError:
            # The lazy client's first connection failed: Temporal is not there.
            raise MoteurIndisponible() from None
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise CycleArrete(numero)

    async def _attendre(
        self, appel: Awaitable[T], numero: str, champ: str = "corps", ouverte_en_base: bool = False
    ) -> T:
        """Await a workflow call; no answer within the settings' delay is MoteurIndisponible,
        never a hang. A refusal of the data without details names `champ` (the field the call
        carries) with its message. `ouverte_en_base`: the database still has the modification
        open, so a workflow found over means a stopped cycle."""
        try:
            return await asyncio.wait_for(appel, timeout=self.settings.DELAI_REPONSE_WORKFLOW.total_seconds())
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            # The SDK turns the cancellation of a waiting update into its own error.
            raise MoteurIndisponible() from None
        except WorkflowAlreadyStartedError:
            raise Conflit(f"La modification {numero} est déjà en cours d'ouverture.") from None
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError):
                if cause.type == ERREUR_DONNEES_INVALIDES:
                    erreurs = cause.details[0] if cause.details and isinstance(cause.details[0], list) else []
                    raise DonneesInvalides(
                        cause.message, erreurs or [{"champ": champ, "message": cause.message}]
                    ) from None
                if cause.type == BrouillonPerime.__name__:
                    raise BrouillonPerime(cause.message) from None
                raise Conflit(cause.message) from None
            raise Conflit(f"La modification {numero} n'a pas pu être traitée.") from None
        except RPCError as err:
            if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                if ouverte_en_base:
                    raise CycleArrete(numero) from None
                # The workflow is over (or was ended by operations): nothing is open any more.
                raise Conflit(f"La modification {numero} n'est plus ouverte.") from None
            # Anything else is Temporal not serving the call: an unavailability, never a 500.
            raise MoteurIndisponible() from None
        except RuntimeError:
            # The lazy client's first connection failed: Temporal is not there.
            raise MoteurIndisponible() from None


def noter_import_refuse(utilisateur: Utilisateur, numero: str, refus: ErreurDomaine) -> None:
    """Every refused import in the log, with its caller. The answer to a number already recorded
    cannot hide that it exists (the import's 409 is the contract), and says the same words
    whoever holds it: the log is where someone trying number after number shows."""
    journal.warning(
        "import refusé : %s",
        refus.message,
        extra={
            "numero": numero,
            "appelant": utilisateur.sub,
            "role": utilisateur.role.value,
            "siret": utilisateur.siret,
            "statut": refus.statut,
        },
    )
