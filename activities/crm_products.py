"""A CRM deal's products (rules §6.2 (docs/rules.md)): the product id rule every way in
shares (`product_id`), and a deal's lines as its CRM sells them (HubSpot line items,
Salesforce opportunity products) -> the deal's `products` (`deal_products`). Used by the
HubSpot records (`activities.hubspot_records`), the Salesforce callout
(`starter.crm.salesforce`) and the import's `products` column (`starter.bulk`).
Pure functions: no I/O, no clock.

Which lines are products: those whose id is one of `ONBOARDING_CRM_PRODUCTS` (the ids
the product events carry in `product`). Any other line (a service, a support plan, a
product with no seats to adopt) is left out, and with the setting unset every CRM deal
onboards as one product, as before. A product on two lines is one product, its seats
the sum. A deal left with one product is the ordinary single-product case (no
`products`: its events need not name it, nothing waits); with two or more, the order of
the lines is the rollout order and each product waits for the one before it unless its
dependencies say otherwise. Dependencies come from the product's own record in the CRM
(its product library), so one on a product this deal does not sell (the customer has it
already, or it is not onboarded) is left out, and a product whose every dependency is
left out waits for none.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from activities.crm_records import PayloadError, convert
from workflows.models import (
    MAX_PRODUCTS,
    PRODUCT_ID,
    PRODUCT_ID_FORM,
    DealProduct,
    products_problem,
)
from workflows.validation import message

_SEPARATORS = re.compile(r"[\s./]+")


def normalized(value: object) -> str:
    """A CRM's product code as a product id: lower case, each run of white space, `.`
    and `/` one `-`, no `-` at either end: SKU `ANL Pro.2` -> `anl-pro-2`. It may still
    not be a valid id (`product_id` says)."""
    return _SEPARATORS.sub("-", str(value).strip().lower()).strip("-")


def product_id(value: object, field: str) -> str:
    """`normalized(value)`; raises PayloadError naming `field` when that is not a
    product id (`PRODUCT_ID_FORM`)."""
    pid = normalized(value)
    if not PRODUCT_ID.match(pid):
        raise PayloadError(
            field,
            f"{value!r} is not a product id ({PRODUCT_ID_FORM}, once lower-cased and with "
            "white space, dots and slashes as -)",
        )
    return pid


def listed_ids(value: object) -> list[str]:
    """A CRM's multi-select of product codes (`crm;analytics`) as normalized ids."""
    return [normalized(part) for part in str(value or "").split(";") if part.strip()]


@dataclass(frozen=True)
class ProductLine:
    """One line of a CRM deal as the CRM gave it: the product's code (`code`, any form
    `normalized` reads), name, quantity (the licensed seats) and the codes of the
    products it waits for (None: not given), and where each came from in the sender's
    words (`fields`: `code`, `name`, `seats`, `depends_on` -> path)."""

    code: object
    name: object
    seats: object
    depends_on: object
    fields: Mapping[str, str]


def deal_products(lines: Sequence[ProductLine], onboarded: Collection[str]) -> list[DealProduct]:
    """The deal's products from its lines (see the module docstring): the lines whose
    code is one of `onboarded`, in order, one product per id, none for one product.
    Raises PayloadError naming the sender's field for seats that are not a whole number
    from 1 to the limit, more products than a deal may have, a name that is too long, or
    dependencies on the product itself or in a cycle."""
    chosen = [(pid, line) for line in lines if (pid := normalized(line.code)) in onboarded]
    if len({pid for pid, _ in chosen}) < 2:
        return []  # one product: nothing of its line is used
    kept: dict[str, tuple[ProductLine, int]] = {}
    for pid, line in chosen:
        if line.seats in (None, ""):
            raise PayloadError(line.fields["seats"], "missing: a product's licensed seats")
        seats = convert(line.seats, "int", line.fields["seats"])
        assert isinstance(seats, int)
        first, before = kept.get(pid, (line, 0))
        if pid not in kept and len(kept) == MAX_PRODUCTS:
            raise PayloadError(
                line.fields["code"],
                f"{pid!r} would be product {MAX_PRODUCTS + 1}: a deal has at most "
                f"{MAX_PRODUCTS} (ONBOARDING_CRM_PRODUCTS lists which lines are products)",
            )
        kept[pid] = (first, before + seats)
    products: list[DealProduct] = []
    for pid, (line, seats) in kept.items():
        listed = listed_ids(line.depends_on)
        try:
            products.append(
                DealProduct(
                    id=pid,
                    name=str(line.name or "").strip() or pid,
                    licensed_seats=seats,
                    depends_on=[d for d in listed if d in kept] if listed else None,
                )
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            part = {"licensed_seats": "seats"}.get(str(error["loc"][0]), str(error["loc"][0]))
            raise PayloadError(line.fields.get(part, line.fields["code"]), message(error)) from None
    if (problem := products_problem(products)) is not None:
        i, part, reason = problem
        line = kept[products[i].id][0]
        raise PayloadError(line.fields.get(part, line.fields["code"]), reason)
    return products
