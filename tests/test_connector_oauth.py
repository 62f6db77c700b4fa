"""OAuth sources whose access token has expired: Square (ObtainToken's refresh grant) and
Lightspeed X-Series (a refresh token that rotates on every use). The consultant gave the
access token they had and the means to renew it; the emulators refuse an expired token with
the vendor's 401, the connector renews it once and the run gives the golden marts.
Without the means to renew, the run fails saying what to set."""

from __future__ import annotations

import json
from datetime import timedelta

import golden_data
import pytest

from goalpost.app.orchestrator import run_client
from goalpost.core.paths import state_dir
from goalpost.sandbox.emulators.lightspeed_x import LightspeedXEmulator
from goalpost.sandbox.emulators.square import SquareEmulator

pytestmark = pytest.mark.e2e

OAUTH = {"client_secret": "oauth-secret-5e1d", "refresh_token": "oauth-refresh-7a2c"}
CHANNELS = {"square": {"Boutique": "en_boutique", "Livraison": "livraison"},
            "lightspeed_x": {"in_store": "en_boutique", "delivery": "livraison"}}


def emulator_for(connector: str):
    cls = SquareEmulator if connector == "square" else LightspeedXEmulator
    return cls(golden_data.golden_data(), token="personal-token-unused", now=golden_data.NOW,
               client_id="oauth-client", **OAUTH)


@pytest.mark.parametrize("connector", ["square", "lightspeed_x"])
def test_an_expired_access_token_is_renewed_and_the_run_completes(connector, api_source, conn):
    with emulator_for(connector) as emulator:
        expired = emulator.issue_access_token(golden_data.NOW - timedelta(hours=1))
        api_source("gold", "pos", connector, emulator.url,
                   {"access_token": expired, **OAUTH}, client_id="oauth-client")
        run = run_client("gold")
        refused = [r for r in emulator.requests if r.path != "/oauth2/token"
                   and r.path != "/api/1.0/token"][0]
        refreshes = [r for r in emulator.requests if r.path in ("/oauth2/token",
                                                               "/api/1.0/token")]
    assert run.status == "succeeded", [(s.name, s.error) for s in run.steps]
    assert refused.headers["authorization"] == "***"  # the expired token was tried first
    assert len(refreshes) == 1
    assert golden_data.mart_figures(conn, "gold", CHANNELS[connector]) == golden_data.EXPECTED
    # Both vendors answered a new refresh token: it is kept for the next run, not logged.
    stored = json.loads((state_dir() / "secrets" / "gold__pos.json").read_text())
    assert stored["refresh_token"] != OAUTH["refresh_token"]
    recorded = json.dumps(conn.execute("SELECT error, details FROM goalpost.run_steps")
                          .fetchall(), default=str)
    assert expired not in recorded and stored["refresh_token"] not in recorded


@pytest.mark.parametrize("connector", ["square", "lightspeed_x"])
def test_an_expired_token_that_cannot_be_renewed_says_what_to_set(connector, api_source):
    with emulator_for(connector) as emulator:
        expired = emulator.issue_access_token(golden_data.NOW - timedelta(hours=1))
        api_source("gold", "pos", connector, emulator.url, {"access_token": expired})
        run = run_client("gold")
    step = next(s for s in run.steps if s.kind == "extract")
    assert run.status == "failed" and step.status == "failed"
    assert "no refresh token is configured" in step.error
    assert expired not in step.error
