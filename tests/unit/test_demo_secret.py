import pytest

from confsfu.settings import DEMO_TOKEN_SECRET, demo_secret_refusal, load_settings

OWN = "an-operator-secret-of-at-least-32-characters"


@pytest.mark.parametrize(
    ("host", "secret", "refused"),
    [
        ("127.0.0.1", DEMO_TOKEN_SECRET, False),
        ("127.0.0.2", DEMO_TOKEN_SECRET, False),
        ("::1", DEMO_TOKEN_SECRET, False),
        ("[::1]", DEMO_TOKEN_SECRET, False),
        ("localhost", DEMO_TOKEN_SECRET, False),
        ("LocalHost", DEMO_TOKEN_SECRET, False),
        ("0.0.0.0", DEMO_TOKEN_SECRET, True),
        ("::", DEMO_TOKEN_SECRET, True),
        ("", DEMO_TOKEN_SECRET, True),
        ("192.168.1.10", DEMO_TOKEN_SECRET, True),
        ("meet.example.org", DEMO_TOKEN_SECRET, True),
        ("localhost.example.org", DEMO_TOKEN_SECRET, True),
        ("0.0.0.0", OWN, False),
        ("meet.example.org", OWN, False),
        ("127.0.0.1", OWN, False),
    ],
)
def test_demo_secret_only_on_loopback(host: str, secret: str, refused: bool) -> None:
    refusal = demo_secret_refusal(host, secret)
    assert (refusal is not None) == refused
    if refusal is not None:
        assert "CONFSFU_TOKEN_SECRET" in refusal and "token_secret" in refusal


def test_shipped_configuration_is_the_demo_on_loopback() -> None:
    settings = load_settings()
    assert settings.token_secret == DEMO_TOKEN_SECRET
    assert demo_secret_refusal(settings.host, settings.token_secret) is None
    public = load_settings(host="0.0.0.0")
    assert demo_secret_refusal(public.host, public.token_secret) is not None


def test_serve_refuses_the_demo_secret_on_all_addresses() -> None:
    from confsfu.server.run import serve

    with pytest.raises(SystemExit, match="demo token_secret"):
        serve(load_settings(host="0.0.0.0"))
