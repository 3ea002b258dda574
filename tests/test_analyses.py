"""The analysis names of today's appliances: known, unknown but well-formed, or refused."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reanalyzer.core.analyses import (
    DOCUMENTED,
    V2_NAMES,
    NameKind,
    canonical,
    classify,
    read_names,
)
from reanalyzer.errors import UsageError

# As NOTES.md lists them for Spectra Analyze 9.1-9.3, plus the other version's two.
NOTES_V2 = ["rl_auxiliary_analysis", "core", "cloud", "cape", "cisco_secure_malware_analytics",
            "cuckoo", "fireeye", "joe", "rl_cloud_sandbox", "vmray_tcbase",
            "assemblyline", "rl_dynamic_analysis"]


def test_the_table_holds_exactly_the_documented_names() -> None:
    """v1 documents cloud and core; v2 the twelve names NOTES.md lists."""
    assert DOCUMENTED["v1"] == {"cloud", "core"}
    assert sorted(DOCUMENTED["v2"]) == sorted(NOTES_V2)


@pytest.mark.parametrize("name", NOTES_V2)
def test_every_v2_name_is_known_for_v2(name: str) -> None:
    """Each documented v2 name is accepted for v2 without a warning."""
    assert classify(name, "v2") is NameKind.KNOWN
    assert read_names(f"core,{name}", "v2").warning() is None


def test_core_and_vmray_tcbase_is_read_for_v2() -> None:
    """The issue's refused example is now accepted, sorted, with no warning."""
    read = read_names("core,vmray_tcbase", "v2")
    assert read.names == ("core", "vmray_tcbase")
    assert read.unknown == ()
    assert not read.needs_platform


@pytest.mark.parametrize(("raw", "text"), [
    ("core,cloud", "cloud,core"), ("cloud,core", "cloud,core"),
    (" Core , cloud,core,", "cloud,core"), ("cape,core,cape", "cape,core"),
])
def test_order_case_spaces_and_repeats_do_not_matter(raw: str, text: str) -> None:
    """One set of analyses has one spelling, whatever order it was written in."""
    assert read_names(raw, "v2").text == text
    assert canonical(raw) == text


@given(st.lists(st.sampled_from(NOTES_V2), min_size=1, max_size=6), st.randoms())
def test_any_permutation_of_a_list_is_one_job(names: list[str], rand: Any) -> None:
    """Shuffling and repeating names never changes the normalised list."""
    shuffled = names * 2
    rand.shuffle(shuffled)
    assert read_names(",".join(shuffled), "v2").text == read_names(",".join(names), "v2").text


def test_an_unknown_well_formed_name_is_accepted_with_a_one_line_warning() -> None:
    """A name of a newer appliance is sent, and the one warning line names it."""
    read = read_names("core,new_sandbox2", "v2")
    assert read.names == ("core", "new_sandbox2")
    assert read.unknown == ("new_sandbox2",)
    warning = read.warning()
    assert warning is not None
    assert "new_sandbox2" in warning
    assert "\n" not in warning
    assert classify("new_sandbox2", "v1") is NameKind.UNKNOWN


@pytest.mark.parametrize("raw", ["core,vmray-tcbase", "core;cloud", "core cloud", "cöre", "a.b"])
def test_a_malformed_name_is_a_usage_error(raw: str) -> None:
    """A name with other characters than lowercase letters, digits and underscores stops."""
    with pytest.raises(UsageError, match="not an analysis name"):
        read_names(raw, "v2")


@pytest.mark.parametrize("raw", ["", " , ,"])
def test_an_empty_list_is_a_usage_error(raw: str) -> None:
    """At least one analysis must be named."""
    with pytest.raises(UsageError, match="at least one"):
        read_names(raw, "v2")


@pytest.mark.parametrize("name", sorted(V2_NAMES - DOCUMENTED["v1"]))
def test_a_v2_name_asked_of_v1_is_a_usage_error(name: str) -> None:
    """v1 documents only cloud and core: a v2 name there needs --api v2."""
    assert classify(name, "v1") is NameKind.OTHER_API
    with pytest.raises(UsageError, match="needs --api v2"):
        read_names(f"core,{name}", "v1")


def test_the_cloud_sandbox_needs_a_platform() -> None:
    """rl_cloud_sandbox is flagged as needing --sandbox-platform; the others are not."""
    assert read_names("core,rl_cloud_sandbox", "v2").needs_platform
    assert not read_names("core,joe", "v2").needs_platform


def test_an_unknown_api_is_a_usage_error() -> None:
    """Only v1 and v2 exist."""
    with pytest.raises(UsageError, match="api"):
        read_names("core", "v3")
