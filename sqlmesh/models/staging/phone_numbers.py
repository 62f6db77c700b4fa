"""Each phone number as written in a client's customer records, with its international form.

One row per distinct written phone: `e164` is what libphonenumber (the `phonenumbers`
package) makes of it, reading a number written the national way in the client's country, so
that `06 1234 5678` and `+39 06 1234 5678` in Italy (where the leading 0 stays) or
`06 12 34 56 78` and `+33 6 12 34 56 78` in France (where it goes) are one number. NULL when
the text cannot be a phone number of the region it names. customer_keys joins on it.
"""

from __future__ import annotations

import typing as t

import pandas as pd
import phonenumbers

from sqlmesh import ExecutionContext, model


def international(written: str, region: str) -> str | None:
    """The E.164 form of a written phone number, or None."""
    try:
        number = phonenumbers.parse(written, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@model(
    "@{client}_staging.phone_numbers",
    kind="FULL",
    blueprints="@goalpost_blueprints()",
    columns={"written": "text", "e164": "text"},
    depends_on=["@{client}_staging.customers"],
    grain=["written"],
    description="One row per distinct phone number as written in the customer records, with "
                "its E.164 form (phonenumbers, national forms read in the client's country).",
)
def execute(context: ExecutionContext, **kwargs: t.Any) -> t.Iterator[pd.DataFrame]:
    blueprint = context.blueprint_var("client")  # a SQL literal
    client = str(getattr(blueprint, "this", blueprint))
    region = (context.var("goalpost_countries") or {})[client]
    customers = context.resolve_table(f"{client}_staging.customers")
    written = context.fetchdf(
        f"SELECT DISTINCT TRIM(phone) AS written FROM {customers} "  # noqa: S608 - a table name
        "WHERE phone IS NOT NULL AND TRIM(phone) <> ''")
    if written.empty:
        return
    written["e164"] = [international(text, region) for text in written["written"]]
    yield written
