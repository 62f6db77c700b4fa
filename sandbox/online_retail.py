"""The Online Retail II dev file (a UK online gift shop's real invoice lines, 2009-10) as a
Goalpost client: where the file is on these machines and the client YAML mapping it, so that
the tests and benchmarks that load it describe one client the same way."""

from __future__ import annotations

from pathlib import Path

_RELATIVE = Path("shared") / "data" / "online_retail_ii_2009_2010.csv.gz"

_CLIENT = """name: Online Retail
timezone: Europe/London
currency: GBP
country: GB
{extensions}sources:
  - name: shop
    connector: files
    streams:
      - name: lines
        path: {path}
        entity: order_lines
        # no primary key: exact duplicate lines are real lines and count
        columns:
          order_id: Invoice
          ordered_at: InvoiceDate
          location_id: "=online"
          product_id: StockCode
          product_name: Description
          quantity: Quantity
          unit_price: Price
          customer_id: Customer ID
          country: Country
"""


def dev_file() -> Path:
    """The file beside the checkout (../shared/data), else under /work; the first place when
    neither has it, for the message of whoever needs it."""
    bases = (Path(__file__).resolve().parents[2], Path("/work"))
    return next((base / _RELATIVE for base in bases if (base / _RELATIVE).exists()),
                bases[0] / _RELATIVE)


def client_yaml(path: Path | str, *, extensions: list[str] | None = None) -> str:
    """The client YAML reading `path` (a file or a glob); `extensions` lists the extensions
    to run (None: the defaults, [] none)."""
    listed = "" if extensions is None else f"extensions: [{', '.join(extensions)}]\n"
    return _CLIENT.format(path=path, extensions=listed)
