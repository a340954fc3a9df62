"""A statement masked for support staff, and a statement as plain text.

The seller's own page shows the identity in full (PStTG § 22(2) with § 14); every other place
that shows a statement masks it (the view for those without the download permission, the support
copy of ``dac7 statements show``). The masking is the project's own, as the seller explanation
(:meth:`reporting.explain.Identity.mask`) and the due diligence report
(:func:`reporting.reports.due_diligence.mask`) do it:

- names: each word's initial, the rest ``*`` (:func:`reporting.explain.mask_name`);
- TINs, the VAT number, business registration numbers, financial account identifiers and land
  registration numbers: ``***`` then their last three characters, whatever their length (``***``
  alone for fewer than six characters; :func:`reporting.reports.due_diligence.mask`);
- the date of birth: ``****-**-**``; the place of birth: its country only;
- addresses (the seller's and a property's): ``***`` then the country only.

Kept: the seller id, the countries, the activities and their figures, the ids of the filing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from reporting.explain import mask_name
from reporting.reports.due_diligence import mask
from reporting.statements.page import wording_for

HIDDEN = "***"
BIRTH_DATE = "****-**-**"


def _address(a: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not a:
        return None if a is None else dict(a)
    return {"free": HIDDEN, "country": a.get("country")}


def mask_statement(statement: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the feed object ``statement`` with its personal data masked (``masked: true``);
    lists the identity lacks are empty in the copy."""
    ident = {
        "names": [],
        "addresses": [],
        "residence_countries": [],
        "tins": [],
        "financial_accounts": [],
        **statement["identity"],
    }
    masked_ident: dict[str, Any] = {
        **ident,
        "names": [{k: mask_name(v) if isinstance(v, str) else v for k, v in n.items()} for n in ident["names"]],
        "addresses": [_address(a) for a in ident["addresses"]],
        "tins": [
            {**t, "tin": mask(t["tin"]) if t.get("tin") else t.get("tin"), "issued_by": t.get("issued_by")}
            for t in ident["tins"]
        ],
        "vat": mask(ident.get("vat")) or None,
        "birth_date": BIRTH_DATE if ident.get("birth_date") else None,
        "business_registration_numbers": [
            {**b, "number": mask(b.get("number"))} for b in ident.get("business_registration_numbers") or []
        ],
        "financial_accounts": [
            {**f, "identifier": mask(f.get("identifier")), "holder": mask_name(f.get("holder"))}
            for f in ident["financial_accounts"]
        ],
    }
    place = ident.get("birth_place")
    if place:
        masked_ident["birth_place"] = {k: v for k, v in place.items() if k != "city"}  # the country only
    activities = []
    for act in statement["activities"]:
        act = dict(act)
        if act["activity"] == "immovable_property":
            act["property_address"] = _address(act.get("property_address"))
            if act.get("land_registration_number"):
                act["land_registration_number"] = mask(act["land_registration_number"])
        activities.append(act)
    return {**statement, "identity": masked_ident, "activities": activities, "masked": True}


def masked_page(statement: Mapping[str, Any], operator: str) -> str:
    """The readable page of ``statement`` (a feed object, as the ledger records it), masked: in
    the statement's language, marked as a support copy."""
    from reporting.statements.locale import formatter, resolve
    from reporting.statements.page import render

    language = resolve(statement.get("language"))
    return render(mask_statement(statement), language, formatter(language.locale), operator)


def _name(n: Mapping[str, Any]) -> str:
    return " ".join(str(v) for k, v in n.items() if v and k != "name_type")


def as_text(statement: Mapping[str, Any]) -> Iterator[str]:
    """The statement as lines of plain English text (for a terminal), as the object holds it:
    pass :func:`mask_statement`'s copy for a support copy."""
    ident = statement["identity"]
    head = "masked support copy" if statement.get("masked") else "in full, with personal data"
    name = wording_for(statement["filed_with"]["country"]).name
    yield f"{name} {statement['statement_id']} ({head})"
    yield f"  kind: {statement['kind']}" + (f", replaces {statement['replaces']}" if statement.get("replaces") else "")
    yield f"  seller: {statement['seller_id']}  year: {statement['year']}  environment: {statement['environment']}"
    issued = f"  issued: {statement['issued']}" if statement.get("issued") else ""
    yield f"  language: {statement['language']}{issued}"
    filed = statement["filed_with"]
    yield f"  filed with: {filed['country']}  MessageRefId {filed['message_ref_id']}  DocRefId {filed['doc_ref_id']}"
    for r in statement["receiving_states"]:
        yield f"  received by: {r['country']} ({r['reason']})"
    yield "identity"
    yield f"  seller type: {ident.get('seller_type')}"
    for n in ident["names"]:
        yield f"  name: {_name(n)}"
    for a in ident["addresses"]:
        yield f"  address: {_address_text(a)}"
    yield f"  residence: {', '.join(ident['residence_countries'])}"
    for t in ident["tins"]:
        tin = "not issued" if t.get("unknown") or not t.get("tin") else t["tin"]
        yield f"  TIN: {tin} ({t.get('issued_by') or '-'})"
    if ident.get("vat"):
        yield f"  VAT: {ident['vat']}"
    if ident.get("birth_date"):
        yield f"  birth date: {ident['birth_date']}"
    if ident.get("birth_place"):
        yield f"  birth place: {', '.join(str(v) for v in ident['birth_place'].values() if v)}"
    for b in ident.get("business_registration_numbers") or []:
        yield f"  business registration: {b.get('number')} ({b.get('issued_by') or '-'})"
    for pe in ident.get("permanent_establishments") or []:
        yield f"  permanent establishment: {pe}"
    for f in ident["financial_accounts"]:
        yield f"  financial account: {f.get('identifier')} (holder {f.get('holder') or '-'})"
    yield f"activities (whole units of {statement['currency']})"
    for act in statement["activities"]:
        yield f"  {act['activity']}"
        if act["activity"] == "immovable_property":
            yield f"    property: {_address_text(act.get('property_address'))}"
            yield f"    type: {act.get('property_type')}" + (
                f" ({act['other_property_type']})" if act.get("other_property_type") else ""
            )
            if act.get("land_registration_number"):
                yield f"    land registration number: {act['land_registration_number']}"
            if act.get("rented_days") is not None:
                yield f"    days rented: {act['rented_days']}"
        for q, figs in act["quarters"].items():
            yield (
                f"    {q}: consideration {figs['consideration']}, activities {figs['number_of_activities']}, "
                f"fees {figs['fees']}, taxes {figs['taxes']}"
            )


def _address_text(a: Mapping[str, Any] | None) -> str:
    if not a:
        return "-"
    return ", ".join(str(v) for k, v in a.items() if v and k != "address_type")
