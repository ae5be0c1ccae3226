from __future__ import annotations

import pytest

from brainaug.strategies import Strategy, default_strategies, n_synthetic_for, parse_strategies


def test_default_strategies_are_the_study_table():
    s = default_strategies()
    assert list(s) == ["standard", "standard_aug", "gan33", "gan50", "gan50_aug"]
    assert [(x.synthetic_share, x.classic_augmentation) for x in s.values()] == [
        (0.0, False),
        (0.0, True),
        (0.33, False),
        (0.5, False),
        (0.5, True),
    ]
    assert all(x.synthetic_balance == "proportional" for x in s.values())
    assert not s["standard"].uses_synthetic and s["gan33"].uses_synthetic


def test_parse_empty_gives_defaults_and_user_entries_kept_in_order():
    assert list(parse_strategies(None)) == list(default_strategies())
    s = parse_strategies(
        {"mine": {"synthetic_share": 0.25, "synthetic_balance": "balanced"}, "plain": {}}
    )
    assert list(s) == ["mine", "plain"]
    assert s["mine"] == Strategy("mine", 0.25, False, "balanced")
    assert s["plain"] == Strategy("plain")


def test_parse_list_form():
    s = parse_strategies([{"name": "a", "classic_augmentation": True}])
    assert s["a"].classic_augmentation is True


@pytest.mark.parametrize(
    ("section", "exc", "match"),
    [
        ({"bad": {"synthetic_share": 1.0}}, ValueError, r"'bad'.*synthetic_share.*\[0, 1\)"),
        ({"bad": {"synthetic_share": -0.1}}, ValueError, r"'bad'.*synthetic_share"),
        ({"bad": {"synthetic_share": "half"}}, TypeError, r"'bad'.*synthetic_share.*str"),
        ({"bad": {"classic_augmentation": "yes"}}, TypeError, r"'bad'.*classic_augmentation"),
        ({"bad": {"synthetic_balance": "equal"}}, ValueError, r"'bad'.*synthetic_balance.*equal"),
        ({"bad": {"share": 0.5}}, ValueError, r"'bad'.*unknown key.*share"),
        ({"bad": [0.5]}, TypeError, r"'bad' must be a mapping"),
        ({"a b": {}}, ValueError, r"'a b'.*letters, digits"),
        ([{"synthetic_share": 0.1}], TypeError, r"strategies\[0\].*'name'"),
    ],
)
def test_parse_errors_name_strategy_and_key(section, exc, match):
    with pytest.raises(exc, match=match):
        parse_strategies(section)


@pytest.mark.parametrize(
    ("n_real", "share", "expected"),
    [(60, 0.0, 0), (60, 0.5, 60), (60, 0.33, 30), (100, 0.33, 49), (7, 0.5, 7), (0, 0.5, 0)],
)
def test_n_synthetic_for_makes_share_of_final_set(n_real, share, expected):
    n = n_synthetic_for(n_real, share)
    assert n == expected
    if n_real:
        assert abs(n / (n + n_real) - share) < 1 / n_real


def test_n_synthetic_for_rejects_bad_values():
    with pytest.raises(ValueError, match=r"share must be in \[0, 1\), got 1"):
        n_synthetic_for(10, 1.0)
    with pytest.raises(ValueError, match="n_real must be a non-negative integer, got -1"):
        n_synthetic_for(-1, 0.5)
