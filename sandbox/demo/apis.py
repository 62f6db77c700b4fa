"""The vendor APIs of the PanPan demo: Square (POS), HubSpot (CRM), Zoho Inventory (stock),
served from the demo data by the project's emulators while a run of PanPan lasts (from
`goalpost demo`, `goalpost run panpan` or the scheduler alike).

The emulators run in a child process (as a vendor's servers would: not sharing our
interpreter) on fixed loopback ports, because clients/panpan.yaml names their URLs (the
shipped example names the default ports; `goalpost demo` registers it with the ports of
GOALPOST_DEMO_API_PORT). Their credentials are made up per demo and handed to the
connectors through the environment variables the YAML references, exactly as real secrets
would be. The emulators' clock stands at the end of the demo data, so repeated demos see the
same records.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

from goalpost.core.errors import GoalpostError

HOST = "127.0.0.1"
# Base port of the three emulators (square, hubspot, zoho_inventory): base, base+1, base+2.
DEFAULT_PORT = 18601
VENDORS = ("square", "hubspot", "zoho_inventory")


def base_port() -> int:
    return int(os.environ.get("GOALPOST_DEMO_API_PORT", DEFAULT_PORT))


def with_ports(text: str, base: int | None = None) -> str:
    """The demo client's YAML with its emulator URLs moved from the default ports to `base`
    (the configured base port when not given); unchanged at the default ports."""
    base = base_port() if base is None else base
    defaults = "|".join(str(DEFAULT_PORT + i) for i in range(len(VENDORS)))
    return re.sub(rf"http://{re.escape(HOST)}:({defaults})\b",
                  lambda m: f"http://{HOST}:{base + int(m.group(1)) - DEFAULT_PORT}", text)


def demo_credentials() -> dict[str, str]:
    """Fresh credentials for one demo: environment variable name -> value."""
    return {
        "PANPAN_SQUARE_TOKEN": "EAAA" + secrets.token_hex(16),
        "PANPAN_HUBSPOT_TOKEN": "pat-eu1-" + secrets.token_hex(16),
        "PANPAN_ZOHO_CLIENT_ID": "1000." + secrets.token_hex(8).upper(),
        "PANPAN_ZOHO_CLIENT_SECRET": secrets.token_hex(16),
        "PANPAN_ZOHO_REFRESH_TOKEN": "1000." + secrets.token_hex(20),
    }


def _serve(folder: str, port: int, credentials: dict[str, str], ready: Any) -> None:
    """The child process: load the demo data and serve the three APIs until terminated."""
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
        for offset, emulator in enumerate(emulators):
            emulator.start(port + offset)
    except Exception as exc:  # reported to the parent, which raises a clear error
        ready.send(f"{type(exc).__name__}: {exc}")
        return
    ready.send("ok")
    threading.Event().wait()


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((HOST, port)) != 0


@contextmanager
def demo_apis(folder: Path) -> Iterator[dict[str, str]]:
    """Serve the demo's vendor APIs while the block runs; yields their URLs by vendor and
    sets the credentials in this process's environment."""
    port = base_port()
    busy = [p for p in range(port, port + len(VENDORS)) if not _port_free(p)]
    if busy:
        raise GoalpostError(
            f"the demo's API emulators need ports {port}-{port + len(VENDORS) - 1} on {HOST}; "
            f"{', '.join(map(str, busy))} in use",
            hint="free them, or set GOALPOST_DEMO_API_PORT to another base port: `goalpost "
                 "demo` registers PanPan with those ports, but an existing clients/panpan.yaml "
                 "keeps its own, so edit the base_url of its API sources to match")
    credentials = demo_credentials()
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=_serve, args=(str(folder), port, credentials, child), daemon=True,
        name="goalpost-demo-apis")
    process.start()
    answer = parent.recv() if parent.poll(120) else "no answer within 120 s"
    if answer != "ok":
        process.terminate()
        raise GoalpostError(f"the demo's API emulators did not start: {answer}")
    saved = {name: os.environ.get(name) for name in credentials}
    os.environ.update(credentials)
    try:
        yield {vendor: f"http://{HOST}:{port + i}" for i, vendor in enumerate(VENDORS)}
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        process.terminate()
        process.join(10)


def uses_demo_apis(slug: str, client: Any) -> bool:
    """Whether a client reads from the demo's emulators: PanPan with an API source on the
    demo's loopback ports (its own, or one a consultant pointed there)."""
    from goalpost.core.registry.models import ApiSource

    port = base_port()
    prefixes = tuple(f"http://{HOST}:{port + i}" for i in range(len(VENDORS)))
    return slug == "panpan" and any(
        isinstance(source, ApiSource) and
        str(source.config.get("base_url", "")).startswith(prefixes)
        for source in client.sources)


def _stale_demo_ports(slug: str, client: Any) -> list[str]:
    """PanPan API sources still on the default demo ports while GOALPOST_DEMO_API_PORT moved
    the emulators elsewhere (a client file written before the variable was set)."""
    from goalpost.core.registry.models import ApiSource

    if slug != "panpan" or base_port() == DEFAULT_PORT:
        return []
    defaults = tuple(f"http://{HOST}:{DEFAULT_PORT + i}" for i in range(len(VENDORS)))
    return [source.name for source in client.sources if isinstance(source, ApiSource)
            and str(source.config.get("base_url", "")).startswith(defaults)]


def serving_for(slug: str, client: Any, folder: Path) -> AbstractContextManager[Any]:
    """The demo's APIs for the length of a run of PanPan; nothing for any other client."""
    if not uses_demo_apis(slug, client):
        stale = _stale_demo_ports(slug, client)
        if stale:
            port = base_port()
            raise GoalpostError(
                f"clients/panpan.yaml points {', '.join(stale)} at the demo's default ports "
                f"({DEFAULT_PORT}-{DEFAULT_PORT + len(VENDORS) - 1}), but "
                f"GOALPOST_DEMO_API_PORT={port} serves the emulators on "
                f"{port}-{port + len(VENDORS) - 1}",
                hint="unset GOALPOST_DEMO_API_PORT, or edit the base_url ports in "
                     "clients/panpan.yaml (or delete it: the demo writes it again)")
        return nullcontext()
    if not (folder / "ground_truth.json").exists():
        raise GoalpostError(
            "PanPan's API sources read the demo's emulators, which serve the demo data; "
            f"there is none in {folder}", hint="run `goalpost demo` first")
    return demo_apis(folder)
