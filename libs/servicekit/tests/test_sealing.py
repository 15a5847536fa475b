"""Sealed event fields: authenticated encryption with rotatable keys."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr

from servicekit.events import Sealer, SealError

pytestmark = pytest.mark.unit

OLD, NEW = SecretStr("o" * 40), SecretStr("n" * 40)


def test_a_sealed_secret_opens_and_does_not_show() -> None:
    sealed = Sealer([OLD]).seal("the-token-in-clear")
    assert "the-token-in-clear" not in sealed
    assert Sealer([OLD]).open(sealed) == "the-token-in-clear"
    assert Sealer([OLD]).seal("x") != Sealer([OLD]).seal("x")  # a fresh IV every time


def test_rotation_opens_what_the_previous_key_sealed() -> None:
    sealed_before = Sealer([OLD]).seal("t")
    rotated = Sealer([NEW, OLD])
    assert rotated.open(sealed_before) == "t"
    assert Sealer([NEW]).open(rotated.seal("u")) == "u"  # the first key seals
    with pytest.raises(SealError):
        Sealer([NEW]).open(sealed_before)  # the old key dropped


def test_an_altered_or_foreign_value_is_refused() -> None:
    sealed = Sealer([OLD]).seal("t")
    flipped = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    for bad in (flipped, "not-a-token", "", "é"):
        with pytest.raises(SealError):
            Sealer([OLD]).open(bad)


def test_max_age_refuses_an_old_seal(monkeypatch: pytest.MonkeyPatch) -> None:
    sealed = Sealer([OLD]).seal("t")
    assert Sealer([OLD]).open(sealed, max_age_s=60) == "t"
    later = time.time() + 120
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(SealError):
        Sealer([OLD]).open(sealed, max_age_s=60)


def test_no_key_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="no sealing key"):
        Sealer([])
