"""Every page and state of both roles, walked in a browser with JavaScript off: each action a
form posted and a page redirected to (post/redirect/get). At each step the HTML the server sent
is kept (for the Nu HTML Checker) and what a person must read there is checked as really seen."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from playwright.async_api import expect

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.services import gestionnaires
from modif_solde.services import modifications as svc
from tests.pages.conftest import COURRIEL_GESTIONNAIRE, GESTIONNAIRE, OPERATEUR
from tests.pages.navigation import choisir_identite
from tests.pages.test_navigateur_gestionnaire import TELEPHONE, cocher, lien_d_invitation
from tests.workflows.conftest import ServeurSmtp

# Why an element is not seen, or "" when it is: it has a size, lies inside the page's width,
# and is what is drawn at its own place (not clipped away, not covered by another element).
_NON_VU = """e => {
  e.scrollIntoView({block: 'center', inline: 'nearest'});
  const r = e.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) return 'sans taille';
  if (getComputedStyle(e).visibility !== 'visible') return 'caché (visibility)';
  if (r.left < 0 || r.right > document.documentElement.clientWidth) return 'hors de la largeur de la page';
  const x = r.left + Math.min(r.width / 2, 12), y = r.top + Math.min(r.height / 2, 8);
  const dessus = document.elementFromPoint(x, y);
  if (dessus && (dessus === e || e.contains(dessus))) return '';
  return 'recouvert ou rogné (à sa place : ' + (dessus ? dessus.outerHTML.slice(0, 160) : 'rien') + ')';
}"""


async def vu(page: Any, cible: Any, etape: str) -> None:
    """`cible` (a locator, its first match) is really drawn where a person would read it."""
    element = cible.first
    await expect(element).to_be_attached()
    pourquoi = await element.evaluate(_NON_VU)
    assert not pourquoi, f"{etape} : « {await element.inner_text()} » n'est pas visible : {pourquoi}"


@dataclass
class Parcours:
    """One browser context per role (JavaScript off), the HTML each step received."""

    pages: dict[str, str] = field(default_factory=dict)
    _derniere: dict[int, Any] = field(default_factory=dict)

    async def onglet(self, navigateur: Any) -> Any:
        contexte = await navigateur.new_context(
            java_script_enabled=False, locale="fr-FR", viewport={"width": 1280, "height": 900}
        )
        page = await contexte.new_page()

        def noter(reponse: Any) -> None:
            if reponse.request.resource_type == "document" and reponse.frame == page.main_frame:
                if not 300 <= reponse.status < 400:
                    self._derniere[id(page)] = reponse

        page.on("response", noter)
        return page

    async def etape(self, page: Any, nom: str, *a_lire: Any) -> None:
        """A page or state reached: keep the HTML the server sent, check each text is seen."""
        if not page.url.startswith(("http://127.0.0.1", "http://localhost")):
            raise AssertionError(f"{nom} : page inattendue {page.url}")
        reponse = self._derniere[id(page)]
        assert nom not in self.pages, nom
        self.pages[nom] = await reponse.text()
        for cible in a_lire:
            await vu(page, cible, nom)


async def parcourir(
    p: Parcours, navigateur: Any, url: str, smtp: ServeurSmtp, factory: SessionFactory, pdf: bytes
) -> None:
    async with unit_of_work(factory) as session:
        await gestionnaires.ajouter(session, COURRIEL_GESTIONNAIRE)
    visiteur = await p.onglet(navigateur)
    await visiteur.goto(url + "/")
    await p.etape(visiteur, "accueil", visiteur.get_by_role("link", name="Se connecter").last)
    for lien, chemin, titre in (
        (re.compile("^Accessibilité : "), "/accessibilite", "Déclaration d'accessibilité"),
        ("Mentions légales", "/mentions-legales", "Mentions légales"),
        ("Données personnelles", "/donnees-personnelles", "Données personnelles"),
    ):
        await visiteur.locator("footer").get_by_role("link", name=lien).click()
        await expect(visiteur).to_have_url(url + chemin)
        await p.etape(visiteur, titre, visiteur.get_by_role("heading", level=1, name=titre))
    await visiteur.goto(url + "/demandes/INCONNUE")
    await choisir_identite(visiteur, OPERATEUR)
    await p.etape(visiteur, "page d'erreur (404)", visiteur.get_by_role("heading", level=1))

    # The gestionnaire opens a modification: the form, its errors, the preview, the sending.
    g = await p.onglet(navigateur)
    await g.goto(url + "/demandes/FINMSS009266")
    await choisir_identite(g, GESTIONNAIRE)
    await expect(g.get_by_role("heading", level=1)).to_contain_text("Statut : En cours")
    await p.etape(
        g,
        "demande en cours (gestionnaire)",
        g.get_by_text("DSR-MSS-MSS-Va1"),
        g.get_by_text("IBAN (masqué)"),
        g.get_by_role("cell", name="capture-ecran-au-depot.pdf", exact=True),
        g.get_by_text("Aucun courriel n'a encore été envoyé"),
        g.get_by_role("heading", name="Historique des versions"),
        g.get_by_text(re.compile("^Version 1")),
        g.get_by_label("Commentaire"),
    )
    await g.get_by_role("button", name="Voir le courriel avant l'envoi").click()
    await p.etape(g, "demander une modification, erreurs", g.locator("#commentaire-erreur"))
    await g.get_by_label("Commentaire").fill("Le numéro du contact support diffère de la pièce.")
    await cocher(g, TELEPHONE)
    await cocher(g, "Pièces justificatives")
    await g.get_by_role("button", name="Voir le courriel avant l'envoi").click()
    await p.etape(g, "aperçu du courriel d'invitation", g.locator(".apercu-courriel"))
    await g.get_by_role("button", name="Envoyer la demande de modification").click()
    await expect(g.get_by_role("heading", level=1)).to_contain_text("Statut : A modifier")
    await p.etape(
        g,
        "demande à modifier (gestionnaire)",
        g.get_by_text("Demande de modification envoyée"),
        g.get_by_text("L'opérateur a jusqu'au"),
        g.get_by_role("heading", name="La demande de solde"),
        g.get_by_text("DSR-MSS-MSS-Va1"),
    )
    await g.get_by_role("link", name="Voir la modification").click()
    await p.etape(g, "modification en consultation (gestionnaire)", g.get_by_text("Consultation seule"))
    await g.goto(url + "/demandes")
    await p.etape(g, "file de travail", g.get_by_role("row", name=re.compile("FINMSS009266")))
    await g.get_by_label("Échéance avant le").fill("1999-01-01")
    await g.get_by_role("button", name="Filtrer").click()
    await p.etape(
        g, "file de travail, aucun résultat", g.get_by_text("Aucune demande ne correspond à ces critères.")
    )
    await g.goto(url + "/demandes?statut=perdu")
    await p.etape(g, "file de travail, filtre invalide", g.locator("#statut-erreur"))
    await g.get_by_role("link", name="Pilotage").first.click()
    await p.etape(
        g, "pilotage", g.get_by_role("heading", level=1, name="Pilotage"), g.locator("figure").first
    )
    await g.goto(url + "/pilotage?du=2026-13-01")
    await p.etape(g, "pilotage, période invalide", g.locator(".fr-message--error, .fr-error-text").first)

    # The operator: the e-mail's link, the request page, the modification and its states.
    o = await p.onglet(navigateur)
    await o.goto(await lien_d_invitation(smtp, url, "FINMSS009266M1"))
    await choisir_identite(o, OPERATEUR)
    await expect(o.get_by_role("heading", level=1)).to_contain_text("Statut : A modifier")
    await p.etape(
        o,
        "demande à modifier (opérateur)",
        o.get_by_text("Votre demande de solde nécessite des modifications de votre part."),
        o.get_by_text("DSR-MSS-MSS-Va1"),
        o.get_by_text("Lire le courriel").first,
        o.get_by_role("heading", name="Historique des versions"),
    )
    await o.get_by_role("link", name="Modifier", exact=True).click()
    await p.etape(
        o, "page de modification", o.get_by_text("Le numéro du contact support diffère de la pièce.")
    )
    await o.get_by_label(TELEPHONE).fill("06 12 34 56 78")
    await o.get_by_role("button", name="Enregistrer").click()
    await p.etape(
        o,
        "page de modification, valeur modifiée",
        o.get_by_text("Valeur modifiée. Valeur avant modification : 06 00 00 00 00"),
    )
    courriel = o.get_by_label("Adresse mail du contact support de l'opérateur")
    ancien = await courriel.input_value()
    await courriel.fill("pas-une-adresse")
    await o.get_by_role("button", name="Enregistrer").click()
    await p.etape(
        o,
        "page de modification, erreur",
        o.locator("#contact_support_courriel-erreur"),
        o.locator("#resume-erreurs"),
    )
    await courriel.fill(ancien)
    await o.get_by_role("button", name="Enregistrer").click()
    await o.get_by_label("Type de pièce complémentaire").select_option("MSS_RESU_TEST_TECH")
    await o.get_by_label("Fichier à ajouter").set_input_files(
        files=[{"name": "capture.pdf", "mimeType": "application/pdf", "buffer": pdf}]
    )
    await o.get_by_role("button", name="Importer").click()
    await p.etape(
        o, "page de modification, pièce ajoutée", o.get_by_text("La pièce capture.pdf a été ajoutée")
    )
    await o.get_by_role("button", name="Supprimer capture.pdf").click()
    await p.etape(o, "page de modification, pièce supprimée", o.get_by_text("Pièce supprimée"))
    await o.get_by_role("link", name="Confirmer", exact=True).click()
    await p.etape(o, "étape de confirmation", o.get_by_text("Vérifiez vos modifications avant de confirmer."))
    await o.get_by_role("button", name="Confirmer la modification").click()
    await expect(o.get_by_role("heading", level=1)).to_contain_text("Statut : En cours")
    await p.etape(
        o,
        "demande confirmée, historique (opérateur)",
        o.get_by_text("Modification confirmée"),
        o.get_by_role("cell", name="06 12 34 56 78").first,
    )

    # The gestionnaire: a round withdrawn (its error, its confirmation step), one extended.
    await g.goto(url + "/demandes/FINMSS009266")
    await p.etape(g, "demande confirmée, historique (gestionnaire)", g.get_by_text("Version 2").first)
    await g.get_by_label("Commentaire").fill("Deuxième tour.")
    await cocher(g, TELEPHONE)
    await g.get_by_role("button", name="Voir le courriel avant l'envoi").click()
    await g.get_by_role("button", name="Envoyer la demande de modification").click()
    await g.get_by_role("button", name="Retirer la demande de modification").click()
    await p.etape(g, "retirer, erreur", g.locator("#motif-erreur"))
    await g.get_by_label("Motif").fill("Ouverte par erreur.")
    await g.get_by_role("button", name="Retirer la demande de modification").click()
    await p.etape(g, "étape de confirmation du retrait", g.get_by_text("Ouverte par erreur."))
    await g.get_by_role("button", name="Confirmer le retrait").click()
    await p.etape(g, "demande, modification retirée", g.get_by_text("Demande de modification retirée"))
    await g.get_by_label("Commentaire").fill("Troisième tour.")
    await cocher(g, TELEPHONE)
    await g.get_by_role("button", name="Voir le courriel avant l'envoi").click()
    await g.get_by_role("button", name="Envoyer la demande de modification").click()
    async with unit_of_work(factory) as session:
        m3 = await svc.charger_modification(session, "FINMSS009266M3")
    await g.get_by_label("Nouvelle échéance").fill((m3.expire_le - timedelta(days=1)).date().isoformat())
    await g.get_by_role("button", name="Prolonger l'échéance").click()
    await g.get_by_role("button", name="Confirmer la prolongation").click()
    await p.etape(g, "prolonger, refus", g.get_by_role("heading", name="Prolongation impossible"))
    await g.get_by_label("Nouvelle échéance").fill((m3.expire_le + timedelta(days=15)).date().isoformat())
    await g.get_by_role("button", name="Prolonger l'échéance").click()
    await p.etape(
        g,
        "étape de confirmation de la prolongation",
        g.get_by_role("button", name="Confirmer la prolongation"),
    )
    await g.get_by_role("button", name="Confirmer la prolongation").click()
    await p.etape(g, "demande, échéance repoussée", g.get_by_text("Échéance repoussée"))

    # The operator renounces that round, then its list, the import and the logout.
    await o.goto(url + "/modifications/FINMSS009266M3")
    await o.get_by_role("link", name="Ne pas modifier").click()
    await p.etape(o, "étape de renonciation", o.get_by_text("sera instruite en l'état"))
    await o.get_by_role("button", name="Confirmer : ne pas modifier").click()
    await p.etape(o, "demande laissée sans modification", o.get_by_text("Demande laissée sans modification"))

    # The request « en cours » again: the operator reports an omission (its error, then sent), the
    # gestionnaire finds it badged in the queue and answers that no modification is needed.
    await o.get_by_role("button", name="Signaler une erreur ou un oubli").click()
    await p.etape(o, "signaler une erreur, erreurs", o.locator("#description-erreur"))
    await o.get_by_label("Ce qui est erroné ou manquant").fill("Le RIB joint n'est pas le bon.")
    await cocher(o, "Pièces justificatives")
    await o.get_by_role("button", name="Signaler une erreur ou un oubli").click()
    await p.etape(
        o,
        "signalement envoyé",
        o.get_by_text("Signalement envoyé"),
        o.get_by_text("En attente d'un gestionnaire"),
    )
    await g.goto(url + "/demandes")
    await g.get_by_label("Signalement").select_option("a_traiter")
    await g.get_by_role("button", name="Filtrer").click()
    await p.etape(g, "file de travail, signalements à traiter", g.get_by_text("Signalement à traiter").first)
    await g.goto(url + "/demandes/FINMSS009266")
    await g.get_by_role("button", name="Répondre : aucune modification nécessaire").click()
    await p.etape(g, "répondre à un signalement, erreur", g.locator(".fr-message--error").first)
    await g.get_by_label("Réponse à l'opérateur").fill("Le RIB joint est bien celui du compte déclaré.")
    await g.get_by_role("button", name="Répondre : aucune modification nécessaire").click()
    await p.etape(
        g,
        "signalement sans suite (gestionnaire)",
        g.get_by_text("Réponse enregistrée : aucune modification nécessaire"),
    )
    await o.reload()
    await p.etape(
        o,
        "signalement sans suite (opérateur)",
        o.get_by_text("Le RIB joint est bien celui du compte déclaré."),
    )
    await o.goto(url + "/demandes")
    await p.etape(o, "mes demandes", o.get_by_role("link", name=re.compile("FINMSS009266")).first)
    await o.get_by_role("link", name="Importer une demande").click()
    await p.etape(o, "importer une demande", o.get_by_label("Fichier de la demande"))
    await o.get_by_label("Fichier de la demande").set_input_files(
        files=[{"name": "demande.json", "mimeType": "application/json", "buffer": b"{}"}]
    )
    await o.get_by_role("button", name="Importer").click()
    await p.etape(o, "importer une demande, erreurs", o.locator("#resume-erreurs"))
    await o.get_by_role("button", name="Se déconnecter").click()
    await o.get_by_role("button").first.click()
    await expect(o.get_by_role("link", name="Se connecter").first).to_be_visible()
    for onglet in (visiteur, g, o):
        await onglet.context.close()
