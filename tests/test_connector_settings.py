"""Connector settings that imply others: Zoho's data centre gives its accounts and API hosts
(zoho.com/inventory/api/v1/introduction, zoho.com/accounts/protocol/oauth/multi-dc.html)."""

from __future__ import annotations

import pytest

from goalpost.pipelines.connectors.manifest import load_manifest
from goalpost.pipelines.connectors.secrets import resolve_settings, settings_problems

ZOHO_HOSTS = {
    "com": ("https://accounts.zoho.com", "https://www.zohoapis.com"),
    "eu": ("https://accounts.zoho.eu", "https://www.zohoapis.eu"),
    "in": ("https://accounts.zoho.in", "https://www.zohoapis.in"),
    "com.au": ("https://accounts.zoho.com.au", "https://www.zohoapis.com.au"),
    "jp": ("https://accounts.zoho.jp", "https://www.zohoapis.jp"),
    "ca": ("https://accounts.zohocloud.ca", "https://www.zohoapis.ca"),
    "com.cn": ("https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"),
    "sa": ("https://accounts.zoho.sa", "https://www.zohoapis.sa"),
}
ZOHO = {"organization_id": "1", "client_id": "env:ZS", "client_secret": "env:ZS",
        "refresh_token": "env:ZR"}


@pytest.fixture
def zoho_env(monkeypatch):
    monkeypatch.setenv("ZS", "zoho-settings-secret-41c7")
    monkeypatch.setenv("ZR", "zoho-settings-refresh-9e2d")


@pytest.mark.parametrize("center", sorted(ZOHO_HOSTS))
def test_each_zoho_data_centre_gives_its_hosts(center, zoho_env):
    manifest = load_manifest("zoho_inventory")
    settings = resolve_settings(manifest, dict(ZOHO, data_center=center), slug="s", source="z")
    assert (settings["accounts_url"], settings["api_url"]) == ZOHO_HOSTS[center]


def test_zoho_defaults_to_the_us_centre_and_a_given_host_wins(zoho_env):
    manifest = load_manifest("zoho_inventory")
    settings = resolve_settings(manifest, dict(ZOHO, data_center="eu",
                                               accounts_url="https://proxy.example"),
                                slug="s", source="z")
    assert settings["accounts_url"] == "https://proxy.example"
    assert settings["api_url"] == "https://www.zohoapis.eu"
    default = resolve_settings(manifest, ZOHO, slug="s", source="z")
    assert default["api_url"] == "https://www.zohoapis.com"


def test_an_unknown_zoho_data_centre_is_refused():
    problems = settings_problems(load_manifest("zoho_inventory"), dict(ZOHO, data_center="uk"))
    assert problems == ["config.data_center is 'uk'; connector zoho_inventory knows com, eu, "
                        "in, com.au, jp, ca, com.cn, sa"]
