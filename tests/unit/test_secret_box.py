"""SecretBox: sealing a task spec's request parts and a job's params with MultiFernet keys."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from engine.store.secrets import PARAMS_KEY, SEALED_KEY, SecretBox

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
SPEC = {"method": "GET", "url": "http://x/", "headers": {"A": "1"}, "params": {"q": 1}, "body": 2}


def test_seal_keeps_what_the_api_shows_and_hides_the_request_parts() -> None:
    sealed = SecretBox([OLD]).seal(SPEC)
    assert set(sealed) == {"method", "url", SEALED_KEY}
    assert sealed["url"] == "http://x/"
    assert SecretBox([OLD]).open(sealed) == SPEC
    assert SecretBox([NEW, OLD]).open(sealed) == SPEC  # every listed key decrypts


def test_without_keys_nothing_changes() -> None:
    assert SecretBox().seal(SPEC) is SPEC
    assert SecretBox().seal_params({"a": 1}) == {"a": 1}


def test_params_are_sealed_whole() -> None:
    box = SecretBox([OLD])
    sealed = box.seal_params({"token": "t"})
    assert list(sealed) == [PARAMS_KEY]
    assert box.open_params(sealed) == {"token": "t"}
    assert box.open_params({"token": "t"}) == {"token": "t"}


def test_rotate_moves_to_the_first_key() -> None:
    sealed = SecretBox([OLD]).seal(SPEC)
    rotated = SecretBox([NEW, OLD]).rotate(sealed)
    assert SecretBox([NEW]).open(rotated) == SPEC
    with pytest.raises(ValueError, match="not in JOBQUEUE_SECRET_KEY"):
        SecretBox([OLD]).open(rotated)


def test_missing_key_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="JOBQUEUE_SECRET_KEY is not set"):
        SecretBox().open(SecretBox([OLD]).seal(SPEC))


@pytest.mark.parametrize("key", ["short", "x" * 44])
def test_a_malformed_key_is_refused_naming_the_setting(key: str) -> None:
    with pytest.raises(ValueError, match=r"JOBQUEUE_SECRET_KEY: key 2 of 2 is not a Fernet key"):
        SecretBox([OLD, key])
