"""What the services accept as text, an id or a file name typed into a form, sent as JSON or carried in Stripe metadata."""
from __future__ import annotations

from hypothesis import given, strategies as st

from portal.services.text import (
    NUL_MESSAGE, SURROGATE_MESSAGE, has_lone_surrogate, has_nul, unstorable, uploaded_file_name, whole_number,
)


def test_whole_number_reads_plain_ascii_digits_only():
    assert whole_number("42") == 42 and whole_number(" 7 ") == 7 and whole_number(0) == 0
    assert whole_number(str(2**31 - 1)) == 2**31 - 1
    for refused in (None, "", " ", "-1", "1.0", "1e3", "²", "١٢", "0x1F", str(2**31), "9" * 18, "9" * 4301):
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


def test_an_uploaded_file_name_keeps_the_persons_words_without_path_or_control_characters():
    assert uploaded_file_name("Снимок экрана.png") == "Снимок экрана.png"
    assert uploaded_file_name("截图.png") == "截图.png"
    assert uploaded_file_name("e\u0301cran.PNG") == "\u00e9cran.PNG"
    assert uploaded_file_name("..\\..\\windows\\boot.ini") == "boot.ini"
    assert uploaded_file_name("../../etc/passwd.txt") == "passwd.txt"
    assert uploaded_file_name("in\x07voice\u202egnp.pdf") == "invoicegnp.pdf"
    assert uploaded_file_name('a<b>:c"d|e?f*.txt') == "a_b__c_d_e_f_.txt"
    assert uploaded_file_name("  two\n lines . log ") == "two lines.log"


def test_an_uploaded_file_name_with_nothing_left_but_its_kind_is_called_attachment():
    assert uploaded_file_name("\u202e\x01.png") == "attachment.png"
    assert uploaded_file_name("../.png") == "attachment.png"
    assert uploaded_file_name("") == "attachment"
    assert uploaded_file_name(None) == "attachment"


def test_a_long_uploaded_file_name_is_shortened_keeping_its_extension():
    name = uploaded_file_name("ж" * 400 + ".jpeg")
    assert len(name) <= 255 and name.endswith("ж.jpeg")


@given(st.text(max_size=300))
def test_an_uploaded_file_name_is_never_a_path_nor_empty(text):
    name = uploaded_file_name(text)
    assert name and len(name) <= 255 and "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".") and name == name.strip()
