"""The vendor APIs of the PanPan demo: Square (POS), HubSpot (CRM), Zoho Inventory (stock),
served from the demo data by the project's emulators while `goalpost demo` runs.

The emulators run in a child process (as a vendor's servers would: not sharing our
interpreter) on free loopback ports. clients/panpan.yaml names no port: its API sources read
their base URLs and credentials from environment variables (`env:PANPAN_SQUARE_URL`,
`env:PANPAN_SQUARE_TOKEN`, ...), exactly as a real client's secrets are referenced, and the
demo sets them for the length of its run. The emulators' clock stands at the end of the demo
data, so repeated demos see the same records.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from goalpost.core.errors import GoalpostError

HOST = "127.0.0.1"
# The environment variable that holds each emulator's base URL (clients/panpan.yaml reads it).
URL_VARIABLES = {"square": "PANPAN_SQUARE_URL", "hubspot": "PANPAN_HUBSPOT_URL",
                 "zoho_inventory": "PANPAN_ZOHO_URL"}
VENDORS = tuple(URL_VARIABLES)


def demo_credentials() -> dict[str, str]:
    """Fresh credentials for one demo: environment variable name -> value."""
    return {
        "PANPAN_SQUARE_TOKEN": "EAAA" + secrets.token_hex(16),
        "PANPAN_HUBSPOT_TOKEN": "pat-eu1-" + secrets.token_hex(16),
        "PANPAN_ZOHO_CLIENT_ID": "1000." + secrets.token_hex(8).upper(),
        "PANPAN_ZOHO_CLIENT_SECRET": secrets.token_hex(16),
        "PANPAN_ZOHO_REFRESH_TOKEN": "1000." + secrets.token_hex(20),
    }


def _serve(folder: str, credentials: dict[str, str], ready: Any) -> None:
    """The child process: load the demo data, serve the three APIs on free ports until
    terminated, and send their URLs (by vendor) to the parent."""
    from goalpost.sandbox.emulators.hubspot import HubSpotEmulator
    from goalpost.sandbox.emulators.panpan import PanPanData
    from goalpost.sandbox.emulators.square import SquareEmulator
    from goalpost.sandbox.emulators.zoho_inventory import ZohoInventoryEmulator

    try:
        data = PanPanData.load(Path(folder))
        now = data.orders[-1].sold_at + timedelta(hours=12)
        emulators = [
            SquareEmulator(data, token=credentials["PANPAN_SQUARE_TOKEN"], now=now),
            HubSpotEmulator(data, token=credentials["PANPAN_HUBSPOT_TOKEN"], now=now),
            ZohoInventoryEmulator(
                data, now=now, client_id=credentials["PANPAN_ZOHO_CLIENT_ID"],
                client_secret=credentials["PANPAN_ZOHO_CLIENT_SECRET"],
                refresh_token=credentials["PANPAN_ZOHO_REFRESH_TOKEN"]),
        ]
        urls = {vendor: emulator.start() for vendor, emulator in zip(VENDORS, emulators,
                                                                     strict=True)}
    except Exception as exc:  # reported to the parent, which raises a clear error
        ready.send(f"{type(exc).__name__}: {exc}")
        return
    ready.send(urls)
    threading.Event().wait()


@contextmanager
def demo_apis(folder: Path) -> Iterator[dict[str, str]]:
    """Serve the demo's vendor APIs while the block runs; yields their URLs by vendor and
    sets them and the credentials in this process's environment."""
    if not (folder / "ground_truth.json").exists():
        raise GoalpostError(
            "PanPan's API sources read the demo's emulators, which serve the demo data; "
            f"there is none in {folder}", hint="run `goalpost demo` first")
    credentials = demo_credentials()
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=_serve, args=(str(folder), credentials, child), daemon=True,
        name="goalpost-demo-apis")
    process.start()
    answer = parent.recv() if parent.poll(120) else "no answer within 120 s"
    if not isinstance(answer, dict):
        process.terminate()
        raise GoalpostError(f"the demo's API emulators did not start: {answer}")
    variables = {**credentials, **{URL_VARIABLES[v]: url for v, url in answer.items()}}
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield answer
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        process.terminate()
        process.join(10)
