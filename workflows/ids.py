"""One customer, one account id, whichever way the id comes in.

Salesforce names a record by a 15-character, case-sensitive id (what reports and the UI
show) or by the same id plus a 3-character suffix that encodes the case of the first 15
(what the API, Outbound Messages and Flows send). Both name one record, and so does an
18-character id that a spreadsheet upper- or lower-cased: the suffix says which letters
are upper case, so the case can be restored (Salesforce's API reads 18-character ids
case-insensitively for the same reason).

`canonical_account_id` is applied wherever an account id comes in from outside (the
deal every webhook, import and CLI start builds, in `activities.deals`; the events'
`groupId`; the CLI's ACCOUNT argument; `GET /accounts/{id}`), before it names a workflow:
the workflow id `onboarding-<account id>` is what keeps one onboarding per customer.
It is not a model validator, because the models also decode recorded workflow histories:
rewriting ids there would make an onboarding started under a 15-character id fail to
decode its own input.
"""

from __future__ import annotations

import re

# Salesforce's key prefix of the Account object. Only ids with it are read as Salesforce
# ids: another system's 15- or 18-character id (HubSpot's are numeric) is left as it is.
ACCOUNT_KEY_PREFIX = "001"
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_SALESFORCE_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-5]{3})?$")


def salesforce_id18(record_id: str) -> str | None:
    """The 18-character id of a Salesforce record given by its 15- or 18-character id, or
    None when `record_id` cannot be one.

    The suffix is Salesforce's checksum: for each 5-character chunk, a bit per upper-case
    letter (first character = lowest bit), written as one of A-Z, 0-5. An 18-character id
    whose letters are all lower or all upper case (a case-insensitive tool's copy) gets
    the case its suffix says; a mixed-case one must match its suffix as it is.
    """
    if not _SALESFORCE_ID.match(record_id):
        return None
    head = record_id[:15]
    if len(record_id) == 15:
        return head + "".join(
            _SUFFIX_ALPHABET[sum(1 << i for i, c in enumerate(chunk) if "A" <= c <= "Z")]
            for chunk in (head[0:5], head[5:10], head[10:15])
        )
    suffix = record_id[15:].upper()
    if head.islower() or head.isupper():  # a case-insensitive tool's copy: restore it
        restored = []
        for n, mark in enumerate(suffix):
            bits = _SUFFIX_ALPHABET.index(mark)
            for i, c in enumerate(head[n * 5 : n * 5 + 5]):
                upper = bool(bits >> i & 1)
                if upper and not c.isalpha():
                    return None
                restored.append(c.upper() if upper else c.lower())
        head = "".join(restored)
    canonical = salesforce_id18(head)
    return canonical if canonical == head + suffix else None


def canonical_account_id(account_id: str) -> str:
    """The one spelling of an account id: surrounding white space removed, and a
    Salesforce Account id (key prefix 001, 15 or 18 letters and digits) in its
    18-character form with its letters cased as its checksum says. Any other id is
    returned stripped and otherwise unchanged (ids of other systems may be case-sensitive).
    """
    account_id = account_id.strip()
    if account_id.startswith(ACCOUNT_KEY_PREFIX):
        return salesforce_id18(account_id) or account_id
    return account_id
