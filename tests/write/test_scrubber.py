"""The secret scrubber: realistic secrets are masked, look-alikes stay exactly as written."""

from __future__ import annotations

import random
import string

import pytest

from agent_memory.write.scrubber import scrub, scrub_json

_rng = random.Random(4)


def _chars(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


URLSAFE = string.ascii_letters + string.digits + "-_"
PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    + "\n".join(_chars(70, string.ascii_letters + string.digits + "+/") for _ in range(5))
    + "\n-----END OPENSSH PRIVATE KEY-----"
)

SECRETS = [
    ("anthropic-api-key", f"export ANTHROPIC_API_KEY=sk-ant-api03-{_chars(93, URLSAFE)}AA", None),
    ("openai-api-key", f"my key is sk-proj-{_chars(156, URLSAFE)} use it for the demo", None),
    ("openai-api-key", f"OPENAI: sk-{_chars(48)}", None),
    ("aws-access-key-id", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    (
        "aws-secret-access-key",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("github-token", f"push with ghp_{_chars(36)} please", None),
    ("github-token", f"token github_pat_11ABCDEFG0_{_chars(59)}", None),
    ("slack-token", f"SLACK_BOT_TOKEN=xoxb-1234567890123-1234567890123-{_chars(24)}", None),
    ("slack-webhook", f"post to https://hooks.slack.com/services/T0123ABCD/B0123ABCD/{_chars(24)}", None),
    ("google-api-key", f"maps key AIza{_chars(35, URLSAFE)} in the config", None),
    ("bearer-token", f"curl -H 'Authorization: Bearer {_chars(40, URLSAFE)}' https://api.example.com", None),
    (
        "jwt",
        "id token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        None,
    ),
    ("private-key", f"here is the deploy key\n{PRIVATE_KEY}\nkeep it safe", None),
    ("url-password", "DATABASE_URL=postgres://app:s3cr3t-P4ss@db.internal:5432/prod", "s3cr3t-P4ss"),
    ("password", "wifi password: Orchard-Lemon-42", "Orchard-Lemon-42"),
    ("stripe-key", f"STRIPE_SECRET=sk_live_{_chars(24)}", None),
]


@pytest.mark.parametrize(("kind", "text", "secret"), SECRETS, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(SECRETS)])
def test_realistic_secrets_are_masked_and_reported(kind: str, text: str, secret: str | None) -> None:
    done = scrub(text)
    assert kind in done.kinds
    assert f"[REDACTED:{kind}]" in done.text
    if secret is not None:
        assert secret not in done.text
    # Nothing long and random from the original survives: every 16-char window of the secret is gone.
    for token in text.split():
        if len(token) >= 40 and any(c.isdigit() for c in token):
            assert token not in done.text


def test_context_around_a_secret_is_kept() -> None:
    done = scrub("DATABASE_URL=postgres://app:hunter2pass@db.internal:5432/prod is the staging database")
    assert (
        done.text == "DATABASE_URL=postgres://app:[REDACTED:url-password]@db.internal:5432/prod is the staging database"
    )


LOOK_ALIKES = [
    "Deployed commit 3f786850e387550fdab836ed7e6dc881de23001b to production",
    "The request id was 123e4567-e89b-12d3-a456-426614174000 and it failed",
    "antidisestablishmentarianism and pneumonoultramicroscopicsilicovolcanoconiosis are long words",
    "The blob was SGVsbG8gd29ybGQsIHRoaXMgaXMganVzdCBwcm9zZQ== which decodes to a greeting",
    "We use scikit-learn (sk-learn-pipeline-configuration) for the baseline",
    "The bearer of bad news arrived; bearer tokens are stored in the vault",
    "Clone it with git clone git@github.com:org/repo.git or https://github.com/org/repo",
    "The API lives at https://user@example.com:8443/v1/items?page=2",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    "My password is on the fridge, the secret is to ask nicely",
    "The ticket AKIA-123 is about the KIA dealership",
    "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "Call me at +1 (555) 010-9999; ISBN 978-3-16-148410-0",
    "ghp is a prefix GitHub uses; xoxb is Slack's; AIza starts Google keys",
]


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alikes_stay_untouched(text: str) -> None:
    done = scrub(text)
    assert done.text == text and done.kinds == ()


def test_metadata_is_scrubbed_at_every_depth() -> None:
    value, kinds = scrub_json({"env": {"token": f"ghp_{'a1' * 20}", "list": ["x", "password=Sup3rSecret!"]}, "n": 3})
    assert value == {
        "env": {"token": "[REDACTED:github-token]", "list": ["x", "password=[REDACTED:password]"]},
        "n": 3,
    }
    assert sorted(kinds) == ["github-token", "password"]
