"""`normalise_phone` against libphonenumber (`phonenumbers`, a test dependency only: the layer cannot
afford its import at every cold start).

Valid national numbers of each region are generated from phonenumbers' own number patterns, written
in every form people write them (with and without `+`, `00`, the country code, the trunk prefix,
`(0)`, spaces, dashes, dots, parentheses), and our E.164 must be phonenumbers' parse of that text with
the region as default. One difference is deliberate: `00` is the international prefix for every
configured country (phonenumbers takes each region's own: `011` in the US, `00[89]` in Indonesia), so
a `00` form must give what the same text with `+` gives.
"""

from __future__ import annotations

import os
import subprocess
import sys
from functools import cache

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneMetadata, PhoneNumberFormat

from airudder_ingest.base.events import normalise_phone

REGIONS = ["ID", "PH", "IN", "MX", "CN", "US"]
NUMBER_TYPES = [
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
]
SEPARATORS = st.sampled_from(["", " ", "-", ".", " - "])

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def e164(text: str, region: str) -> str:
    return phonenumbers.format_number(phonenumbers.parse(text, region), PhoneNumberFormat.E164)


def metadata_of(region: str) -> PhoneMetadata:
    """libphonenumber's metadata of a region (every region of REGIONS has some)."""
    metadata = PhoneMetadata.metadata_for_region(region)
    assert metadata is not None, region
    return metadata


@cache
def number_patterns(region: str) -> list[str]:
    metadata = metadata_of(region)
    patterns = []
    for number_type in NUMBER_TYPES:
        description = getattr(metadata, number_type)
        if description is not None and description.national_number_pattern:
            # ASCII digits: `\d` would let hypothesis write Devanagari or Thai ones.
            patterns.append(description.national_number_pattern.replace(r"\d", "[0-9]"))
    return patterns


@st.composite
def valid_numbers(draw: st.DrawFn, region: str | None = None) -> tuple[str, str]:
    """(region, national significant number) of a number phonenumbers calls valid in that region."""
    region = region or draw(st.sampled_from(REGIONS))
    pattern = draw(st.sampled_from(number_patterns(region)))
    national = draw(st.from_regex(rf"\A(?:{pattern})\Z"))
    metadata = metadata_of(region)
    number = phonenumbers.parse(f"+{metadata.country_code}{national}")
    assume(phonenumbers.is_valid_number_for_region(number, region))
    # A national number that itself starts with 00 (Indonesian 001803…, Indian 000800… toll-free) is
    # read as international: that is the rule (`00` is the international prefix), stated in README.
    assume(not national.startswith("0"))
    return region, national


@st.composite
def grouped(draw: st.DrawFn, digits: str, parenthesise: bool) -> str:
    """The digits in groups: `812-3456-7890`, `(21) 1234 5678`, `8123456789`."""
    cuts = sorted(draw(st.sets(st.integers(1, len(digits) - 1), max_size=3))) if len(digits) > 1 else []
    groups = [digits[start:end] for start, end in zip([0, *cuts], [*cuts, len(digits)], strict=True)]
    if parenthesise and draw(st.booleans()):
        groups[0] = f"({groups[0]})"
    text = groups[0]
    for group in groups[1:]:
        text += draw(SEPARATORS) + group
    return text


FORMS = ["plus", "double_zero", "country_code", "national", "trunk", "plus_trunk_mark"]


@st.composite
def written_numbers(draw: st.DrawFn, region: str | None = None, form: str | None = None) -> tuple[str, str, str, str]:
    """(region, form, text as written, what phonenumbers must parse it to)."""
    region, national = draw(valid_numbers(region))
    metadata = metadata_of(region)
    code = str(metadata.country_code)
    trunk = metadata.national_prefix or ""
    form = form or draw(st.sampled_from(FORMS))
    assume(form not in {"trunk", "plus_trunk_mark"} or trunk == "0")
    space = draw(SEPARATORS)
    if form == "plus":
        text = f"+{code}{space}{draw(grouped(national, True))}"
    elif form == "double_zero":
        text = f"00{draw(st.sampled_from(['', ' ']))}{code}{space}{draw(grouped(national, True))}"
    elif form == "country_code":
        text = f"{code}{space}{draw(grouped(national, True))}"
    elif form == "national":
        text = draw(grouped(national, True))
    elif form == "trunk":
        text = draw(grouped(trunk + national, True))
    else:
        text = f"+{code} (0){space}{draw(grouped(national, False))}"
    text = draw(st.sampled_from(["", " "])) + text + draw(st.sampled_from(["", " "]))
    expected = e164("+" + text.strip()[2:] if form == "double_zero" else text, region)
    return region, form, text, expected


# The trunk forms only where the trunk prefix is 0 (the US's is 1: that form is the country code one).
REGION_FORMS = [
    (region, form)
    for region in REGIONS
    for form in FORMS
    if form not in {"trunk", "plus_trunk_mark"} or metadata_of(region).national_prefix == "0"
]


@pytest.mark.parametrize(("region", "form"), REGION_FORMS)
def test_every_written_form_gives_what_libphonenumber_parses(region: str, form: str) -> None:
    code = str(metadata_of(region).country_code)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
    @given(written_numbers(region, form))
    def check(case: tuple[str, str, str, str]) -> None:
        _region, _form, text, expected = case
        assert normalise_phone(text, code) == expected

    check()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(valid_numbers(), st.sampled_from(["plus", "double_zero", "national", "trunk"]))
def test_written_forms_other_than_bare_country_code_give_the_number_itself(number: tuple[str, str], form: str) -> None:
    # Only digits that start with the country code can be two numbers at once; every other form is
    # one number, the one written.
    region, national = number
    metadata = metadata_of(region)
    code = str(metadata.country_code)
    assume(form != "trunk" or metadata.national_prefix == "0")
    written = {"plus": f"+{code} {national}", "double_zero": f"00 {code} {national}", "national": national}
    text = written.get(form, f"0{national}")
    assert normalise_phone(text, code) == f"+{code}{national}"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(written_numbers(), st.data())
def test_masked_numbers_are_kept_as_sent(case: tuple[str, str, str, str], data: st.DataObject) -> None:
    region, _form, text, _expected = case
    digit_positions = [i for i, char in enumerate(text) if char.isdigit()]
    masked = list(text)
    for position in data.draw(st.sets(st.sampled_from(digit_positions), min_size=1)):
        masked[position] = data.draw(st.sampled_from(["x", "X", "*", "#"]))
    code = str(metadata_of(region).country_code)
    assert normalise_phone("".join(masked), code) == "".join(masked).strip()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(written_numbers())
def test_without_a_country_only_international_forms_change(case: tuple[str, str, str, str]) -> None:
    _region, form, text, expected = case
    if form in {"plus", "double_zero", "plus_trunk_mark"}:
        assert normalise_phone(text) == expected
    else:
        assert normalise_phone(text) == text.strip()


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        # The two numbers of issue 10: national numbers are not read as international ones.
        ("81234567890", "62", "+6281234567890"),
        ("2125551234", "1", "+12125551234"),
        ("12125551234", "1", "+12125551234"),
        ("6281234567890", "62", "+6281234567890"),
        # Indian mobiles may start with 91: ten digits are national, 91 + ten international.
        ("9123456789", "91", "+919123456789"),
        ("919123456789", "91", "+919123456789"),
        # China: national numbers that start with 86 have 7 or 8 digits.
        ("8613812345678", "86", "+8613812345678"),
        ("861012345678", "86", "+861012345678"),
        ("010-1234-5678", "86", "+861012345678"),
        # Indonesia: 62 + 9 digits may be a national 062x number, and libphonenumber reads it so.
        ("62812345678", "62", "+6262812345678"),
        ("+62 812345678", "62", "+62812345678"),
        # Other countries: 11 digits or more that start with the code are international.
        ("84912345678", "84", "+84912345678"),
        ("0912345678", "84", "+84912345678"),
    ],
)
def test_country_code_or_national(raw: str, country: str, expected: str) -> None:
    assert normalise_phone(raw, country) == expected
    if country in {"62", "1", "91", "86"}:
        region = phonenumbers.region_code_for_country_code(int(country))
        assert e164(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "country"),
    [
        ("+52 1 55 1234 5678", ""),
        ("00 52 1 55 1234 5678", "62"),
        ("5215512345678", "52"),
        ("044 55 1234 5678", "52"),
        ("045 55 1234 5678", "52"),
        ("01 55 1234 5678", "52"),
        ("55 1234 5678", "52"),
    ],
)
def test_mexicos_old_mobile_and_long_distance_prefixes_are_dropped(raw: str, country: str) -> None:
    # Abolished in 2019 (WhatsApp still writes 521…): the same line keeps one key. libphonenumber
    # now calls +521… invalid and would keep it.
    assert normalise_phone(raw, country) == "+525512345678"


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("+6289xxxxxxxx89092", "62", "+6289xxxxxxxx89092"),
        ("0812****7890", "62", "0812****7890"),
        ("  0812 3456 7890 ", "", "0812 3456 7890"),
        ("6281234567890", "", "6281234567890"),
        ("123", "62", "123"),
        ("+0123456789", "", "+0123456789"),
        ("+1234567890123456", "", "+1234567890123456"),
        ("tel:+6281234567890", "62", "tel:+6281234567890"),
        # Full-width digits: not ASCII, so not read.
        (
            "\uff10\uff18\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",
            "62",
            "\uff10\uff18\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",
        ),
    ],
)
def test_what_cannot_be_told_is_kept_as_sent(raw: str, country: str, expected: str) -> None:
    assert normalise_phone(raw, country) == expected


def test_numbers_sent_as_json_numbers() -> None:
    assert normalise_phone(6281234567890, "62") == "+6281234567890"
    assert normalise_phone(6281234567890.0, "62") == "+6281234567890"
    assert normalise_phone(81234567890, "62") == "+6281234567890"


def test_the_layer_does_not_import_phonenumbers() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, airudder_ingest.base.events; print('phonenumbers' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert loaded.stdout.strip() == "False"
