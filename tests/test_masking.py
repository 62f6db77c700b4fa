"""goalpost.core.masking: every spelling of every secret is masked, in text, structures,
streams and log records; nothing else is touched."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import re
from urllib.parse import quote, quote_plus, urlencode

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from goalpost.core import masking
from goalpost.core.warehouse.connection import redact


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(masking, "_registered", set())
    for name in masking.ENVIRONMENT_SECRETS + masking.ENVIRONMENT_URLS:
        monkeypatch.delenv(name, raising=False)


def spellings(secret: str) -> dict[str, str]:
    """How a secret reaches outputs: requests, headers, JSON, HTML, base64."""
    request = httpx.Request("GET", "https://api.example/v1", params={"token": secret})
    return {
        "raw": secret,
        "quote": quote(secret, safe=""),
        "quote keeping /": quote(secret),
        "quote_plus": quote_plus(secret),
        "lower-case hex": re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(),
                                 quote(secret, safe="")),
        "twice": quote(quote(secret, safe=""), safe=""),
        "httpx query": str(request.url.query, "ascii").removeprefix("token="),
        "urlencode": urlencode({"t": secret}).removeprefix("t="),
        "json": json.dumps(secret)[1:-1],
        "json, utf-8": json.dumps(secret, ensure_ascii=False)[1:-1],
        "html": html.escape(secret),
        "base64": base64.b64encode(secret.encode()).decode(),
        "base64 url-safe, unpadded": base64.urlsafe_b64encode(secret.encode()).decode()
        .rstrip("="),
        "basic auth": base64.b64encode(f"someone:{secret}".encode()).decode(),
        "basic auth, URL-encoded": quote(base64.b64encode(f"u:{secret}".encode()).decode(),
                                         safe=""),
        "inside base64 json": base64.b64encode(json.dumps({"k": secret}).encode()).decode(),
    }


def test_every_spelling_of_a_registered_secret_is_masked():
    secret = 'tok+en/k=y&x? "q" Ünï'
    masking.register(secret)
    for how, spelled in spellings(secret).items():
        text = f"HTTP 400: the server said {spelled!s} was wrong."
        masked = masking.mask(text)
        assert spelled not in masked, how
        assert masked.startswith("HTTP 400: the server said ") and "***" in masked, how


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
               min_size=masking.MIN_LENGTH, max_size=40))
def test_generated_secrets_are_masked_in_every_spelling(secret):
    masking.register(secret)
    try:
        for how, spelled in spellings(secret).items():
            assert spelled not in masking.mask(f"<{spelled}>"), (how, secret)
    finally:
        masking._registered.discard(secret)


def test_other_text_is_left_alone_and_short_values_are_not_secrets():
    masking.register("abc")  # too short to tell from words
    masking.register("s3cr3t-value")
    text = "run 12 of shop: 1,204 rows from sales_2024-03.csv (abc) dGVzdA== +/= %20"
    assert masking.mask(text) == text


def test_environment_secrets_need_no_registration(monkeypatch):
    monkeypatch.setenv("GOALPOST_SMTP_PASSWORD", "smtp pass/word")
    monkeypatch.setenv("GOALPOST_DATABASE_URL", "postgresql://gp:db%2Fpw%3Dx@host:5432/gp")
    masked = masking.mask("login smtp%20pass%2Fword failed; url host=h password=db/pw=x")
    assert "smtp" not in masked and "db/pw=x" not in masked


def test_structures_and_connection_strings():
    masking.register("hunter2-secret")
    data = {"error": "bad hunter2-secret", "hunter2-secret": ["x", ("hunter2-secret", 3)], "n": 1}
    assert masking.mask_data(data) == {"error": "bad ***", "***": ["x", ("***", 3)], "n": 1}
    assert redact("host=db user=gp password='it\\'s pw' dbname=x") == \
        "host=db user=gp password=*** dbname=x"
    assert redact("postgresql://gp:p%40ss@db/x") == "postgresql://gp:***@db/x"


def test_a_stream_masks_a_secret_split_over_writes():
    masking.register("split-secret-99")
    out = io.StringIO()
    stream = masking.MaskingStream(out)
    stream.write("error: split-se")
    stream.write("cret-99 refused\nnext ")
    stream.flush()
    assert out.getvalue() == "error: *** refused\nnext "
    with pytest.raises(TypeError):
        stream.write(b"bytes")  # type: ignore[arg-type]


def test_log_records_are_masked_whatever_the_handler(caplog):
    masking.install_log_masking()
    masking.register("log-secret-42")
    logger = logging.getLogger("goalpost.test")
    try:
        raise ValueError("token log-secret-42 refused")
    except ValueError:
        logger.exception("call with %s failed", quote("log-secret-42"))
    (record,) = [r for r in caplog.records if r.name == "goalpost.test"]
    assert "log-secret-42" not in caplog.text and "***" in record.getMessage()
    assert "token *** refused" in caplog.text
