"""A field saved as it changes (htmx, JavaScript on), over HTTP: the fragment htmx swaps in,
the draft's version that follows each save, and the refusals."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx

from modif_solde.config import Settings
from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.tables import Demande
from modif_solde.services import modifications as svc
from tests.pages.conftest import jeton_csrf
from tests.pages.test_modification import MODIFICATION, _saisie, _version, page_operateur, texte


def htmx(champ: str) -> dict[str, str]:
    """The headers htmx sends when the field `champ` changes on the modification page."""
    return {
        "HX-Request": "true",
        "HX-Trigger": champ,
        "HX-Trigger-Name": champ,
        "HX-Target": f"groupe-{champ}",
        "HX-Current-URL": f"http://test{MODIFICATION}",
    }


async def brouillon(factory: SessionFactory) -> dict[str, str]:
    async with unit_of_work(factory) as session:
        return dict((await svc.charger_modification(session, "FINMSS009266M1")).brouillon)


async def test_the_page_s_fields_save_themselves_as_they_change(
    portail: httpx.AsyncClient, demande: Demande
) -> None:
    page = await page_operateur(portail)
    champ = re.search(r'<input[^>]*id="contact_support_telephone"[^>]*>', page)
    assert champ, page
    assert 'data-hx-post="/modifications/FINMSS009266M1/brouillon"' in champ.group(0)
    assert 'data-hx-trigger="change"' in champ.group(0)
    assert 'data-hx-target="#groupe-contact_support_telephone"' in champ.group(0)
    assert 'id="annonce-brouillon"' in page and 'role="status"' in page
    # No inline script nor handler: the CSP forbids them.
    assert not re.search(r"<script(?![^>]*\bsrc=)", page) and not re.search(r"\son[a-z]+=", page)


async def test_a_changed_field_answers_its_group_and_the_draft_s_new_version(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory
) -> None:
    page = await page_operateur(portail)
    version = _version(page)

    r = await portail.post(
        f"{MODIFICATION}/brouillon",
        data=_saisie(jeton_csrf(page), "06 12 34 56 78", version),
        headers=htmx("contact_support_telephone"),
    )
    assert r.status_code == 200, r.text
    assert "<html" not in r.text
    assert r.text.lstrip().startswith(
        '<div class="fr-input-group fr-input-group--valid" id="groupe-contact_support_telephone">'
    )
    assert "Valeur modifiée. Valeur avant modification : 06 00 00 00 00" in texte(r.text)
    assert 'value="06 12 34 56 78"' in r.text
    # The next save and the confirmation carry the new version (out-of-band swap).
    assert re.search(
        rf'id="brouillon_version" name="brouillon_version" value="{int(version) + 1}" data-hx-swap-oob="true"',
        r.text,
    )
    assert 'id="validation" data-hx-swap-oob="true"' in r.text and ">Confirmer</a>" in r.text
    assert "« Numéro de téléphone du contact support de l'opérateur » enregistré." in texte(r.text)
    assert await brouillon(factory) == {"contact_support_telephone": "06 12 34 56 78"}
    # The message of a full save is not consumed by the fragment, nor left for the next page.
    assert "Modifications enregistrées" not in texte((await portail.get(MODIFICATION)).text)


async def test_a_wrong_value_is_refused_beside_its_field_and_closes_the_confirmation(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory
) -> None:
    page = await page_operateur(portail)
    donnees = {
        **_saisie(jeton_csrf(page), "06 00 00 00 00", _version(page)),
        "contact_support_courriel": "pas-une-adresse",
    }

    r = await portail.post(
        f"{MODIFICATION}/brouillon", data=donnees, headers=htmx("contact_support_courriel")
    )
    assert r.status_code == 422, r.text
    assert 'id="groupe-contact_support_courriel"' in r.text and "fr-input-group--error" in r.text
    assert 'aria-invalid="true"' in r.text and 'value="pas-une-adresse"' in r.text
    assert re.search(
        r'id="contact_support_courriel-erreur">[^<]*« Adresse mail du contact support de l&#39;opérateur »[^<]*'
        r"n&#39;est pas une adresse électronique valide",
        r.text,
    ), r.text
    assert f'value="{_version(page)}" data-hx-swap-oob="true"' in r.text
    assert "Corrigez d'abord les erreurs signalées" in texte(r.text) and ">Confirmer</a>" not in r.text
    assert texte(r.text).count("Erreur : ") == 1
    assert await brouillon(factory) == {}


async def test_a_mistake_elsewhere_does_not_hold_back_the_changed_field(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory
) -> None:
    page = await page_operateur(portail)
    donnees = {
        **_saisie(jeton_csrf(page), "06 12 34 56 78", _version(page)),
        "contact_support_courriel": "pas-une-adresse",
    }

    r = await portail.post(
        f"{MODIFICATION}/brouillon", data=donnees, headers=htmx("contact_support_telephone")
    )
    assert r.status_code == 200, r.text
    assert "fr-input-group--valid" in r.text and "pas-une-adresse" not in r.text
    # The other field is still wrong on the page: no confirmation until it is corrected.
    assert "Corrigez d'abord les erreurs signalées" in texte(r.text)
    assert await brouillon(factory) == {"contact_support_telephone": "06 12 34 56 78"}


async def test_a_stale_version_reloads_the_page_with_a_message_and_saves_nothing(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory
) -> None:
    page = await page_operateur(portail)
    csrf = jeton_csrf(page)
    premiere = await portail.post(
        f"{MODIFICATION}/brouillon", data=_saisie(csrf, "06 98 76 54 32", _version(page))
    )
    assert premiere.status_code == 303, premiere.text

    r = await portail.post(
        f"{MODIFICATION}/brouillon",
        data=_saisie(csrf, "06 12 34 56 78", _version(page)),
        headers=htmx("contact_support_telephone"),
    )
    assert r.status_code == 200 and r.headers.get("HX-Redirect") == MODIFICATION and r.text == "", r.text[
        :3000
    ]
    assert "Brouillon modifié entre-temps" in texte((await portail.get(MODIFICATION)).text)
    assert await brouillon(factory) == {"contact_support_telephone": "06 98 76 54 32"}


async def test_without_htmx_the_same_route_still_posts_and_redirects(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory
) -> None:
    page = await page_operateur(portail)
    r = await portail.post(
        f"{MODIFICATION}/brouillon",
        data=_saisie(jeton_csrf(page), "06 12 34 56 78", _version(page)),
        # Not a field's change (e.g. Enregistrer clicked with JavaScript on): the whole form, then the page.
        headers={"HX-Request": "true", "HX-Trigger-Name": "csrf"},
    )
    assert r.status_code == 303 and r.headers["location"] == MODIFICATION
    assert await brouillon(factory) == {"contact_support_telephone": "06 12 34 56 78"}


async def test_a_field_saved_after_the_session_ended_sends_the_whole_page_to_the_login(
    portail: httpx.AsyncClient, demande: Demande, settings: Settings, factory: SessionFactory
) -> None:
    page = await page_operateur(portail)
    # The session is past its idle timeout from now on (no waiting: the limit is moved back).
    settings.SESSION_INACTIVITE = timedelta(seconds=-1)

    r = await portail.post(
        f"{MODIFICATION}/brouillon",
        data=_saisie(jeton_csrf(page), "06 12 34 56 78", _version(page)),
        headers=htmx("contact_support_telephone"),
    )
    # Not a redirect that htmx would follow into the field's place: the page itself goes.
    assert r.status_code == 200 and r.text == ""
    assert r.headers["HX-Redirect"] == f"/connexion?retour={MODIFICATION}"
    assert await brouillon(factory) == {}
