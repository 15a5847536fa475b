"""The canonical email form: one for every path, with the stated policy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from user_service.addresses import InvalidEmailAddress, canonical_email, normalize_email

pytestmark = pytest.mark.unit

FULL_WIDTH_DUPE = "\uff44\uff55\uff50\uff45"  # "dupe" in full-width letters
CYRILLIC_ER = "\u0440"  # looks like a Latin "p"


class TestCanonicalForm:
    @pytest.mark.parametrize(
        ("typed", "canonical"),
        [
            ("Dupe@Example.TEST", "dupe@example.test"),
            ("  dupe@example.test ", "dupe@example.test"),
            (f"{FULL_WIDTH_DUPE}@example.test", "dupe@example.test"),
            ("x@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.test", "x@example.test"),
            ("x@xn--bcher-kva.test", "x@b\u00fccher.test"),
            ("x@B\u00fcCHER.test", "x@b\u00fccher.test"),
            ("cafe\u0301@example.test", "caf\u00e9@example.test"),
            ("x@cafe\u0301.test", "x@caf\u00e9.test"),
            ("\u0440\u043e\u0435@example.test", "\u0440\u043e\u0435@example.test"),  # all Cyrillic
            (
                "\u5c71\u7530\u305f\u308d\u3046@example.test",
                "\u5c71\u7530\u305f\u308d\u3046@example.test",
            ),
        ],
    )
    def test_spellings_of_one_address_meet(self, typed: str, canonical: str) -> None:
        assert canonical_email(typed) == canonical
        assert normalize_email(typed) == canonical

    @pytest.mark.parametrize(
        "address",
        [
            f"du{CYRILLIC_ER}e@example.test",  # Latin with one Cyrillic letter
            f"dupe@exam{CYRILLIC_ER}le.test",
            "a\r\nb@example.test",
            "not an address",
        ],
    )
    def test_look_alikes_and_non_addresses_are_refused(self, address: str) -> None:
        with pytest.raises(InvalidEmailAddress):
            canonical_email(address)

    def test_a_lookup_of_a_non_address_finds_nothing_instead_of_raising(self) -> None:
        assert (
            normalize_email(f" DU{CYRILLIC_ER}E@example.test") == f"du{CYRILLIC_ER}e@example.test"
        )

    @given(st.emails())
    def test_the_canonical_form_is_a_fixed_point(self, address: str) -> None:
        try:
            once = canonical_email(address)
        except InvalidEmailAddress:
            return
        assert canonical_email(once) == once
