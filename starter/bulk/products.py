"""The import's `products` column (rules §6.2 (docs/rules.md)): a multi-product deal's
products in one cell, in rollout order, separated by `;`:
`analytics:40; warehouse:25>analytics`. Each is `id:seats`, then optionally `>` and
the ids it waits for joined by `&` (`bi:5>crm&erp`), or `>` alone for none; without
`>` it waits for the one before it. An id is read as a CRM's product code is
(`activities.crm_products.product_id`: `Analytics` is `analytics`) and is the product's
name too. Pure: no I/O.
"""

from __future__ import annotations

from pydantic import ValidationError

from activities.crm_products import product_id
from activities.crm_records import PayloadError
from starter.exports import CellError
from workflows.models import MAX_PRODUCTS, DealProduct, products_problem
from workflows.validation import message

SYNTAX = "id:seats, like analytics:40, or warehouse:25>analytics to wait for analytics"


def csv_products(cell: str) -> list[DealProduct]:
    """The products a `products` cell lists (see the module docstring). Raises CellError
    naming the item (`item 2 'warehouse:x'`) and the reason."""
    items = [item.strip() for item in cell.split(";") if item.strip()]
    if len(items) > MAX_PRODUCTS:
        raise CellError(f"{len(items)} products; a deal has at most {MAX_PRODUCTS}")
    products = [_product(n, item) for n, item in enumerate(items, start=1)]
    if (problem := products_problem(products)) is not None:
        i, _, reason = problem
        raise CellError(f"item {i + 1} ({products[i].id}): {reason}")
    return products


def _product(n: int, item: str) -> DealProduct:
    where = f"item {n} {item!r}"
    head, waits, deps = item.partition(">")
    code, colon, seats = head.partition(":")
    if not colon:
        raise CellError(f"{where}: expected {SYNTAX}")
    try:
        pid = product_id(code, where)
        depends_on = [product_id(d, where) for d in deps.split("&") if d.strip()] if waits else None
    except PayloadError as exc:
        raise CellError(str(exc)) from None
    try:
        return DealProduct(id=pid, name=pid, licensed_seats=seats.strip(), depends_on=depends_on)
    except ValidationError as exc:
        error = exc.errors()[0]
        if error["loc"] != ("licensed_seats",):
            raise CellError(f"{where}: {message(error)}") from None
        why = (
            " is not a whole number like 40"
            if "parsing" in error["type"]
            else f": {message(error)}"
        )
        raise CellError(f"{where}: seats {seats.strip()!r}{why}") from None
