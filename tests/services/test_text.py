"""What the services accept as an id typed into a form or carried in Stripe metadata."""
from __future__ import annotations

from hypothesis import given, strategies as st

from portal.services.text import NUL_MESSAGE, SURROGATE_MESSAGE, has_lone_surrogate, has_nul, unstorable, whole_number


def test_whole_number_reads_plain_ascii_digits_only():
    assert whole_number("42") == 42 and whole_number(" 7 ") == 7 and whole_number(0) == 0
    assert whole_number("9" * 18) == int("9" * 18)
    for refused in (None, "", " ", "-1", "1.0", "1e3", "²", "١٢", "0x1F", "9" * 19, "9" * 4301):
        assert whole_number(refused) is None, refused


@given(st.text(max_size=30))
def test_whole_number_never_raises_and_reads_back_what_it_accepts(text):
    number = whole_number(text)
    assert number is None or (number >= 0 and int(text.strip()) == number)


def test_nul_is_found_in_text_and_in_repeated_fields():
    assert has_nul("a\x00b") and has_nul(["ok", "\x00"]) and not has_nul("ok") and not has_nul(None)


def test_a_lone_surrogate_is_text_no_database_can_store():
    assert has_lone_surrogate("\ud800") and has_lone_surrogate(["ok", "a\udfffb"])
    assert not has_lone_surrogate("😀") and not has_lone_surrogate("\ud7ff\ue000") and not has_lone_surrogate(None)
    assert unstorable("x\x00\ud800") == NUL_MESSAGE and unstorable("\udc00") == SURROGATE_MESSAGE
    assert unstorable("Printer 😀") is None and unstorable(3) is None
