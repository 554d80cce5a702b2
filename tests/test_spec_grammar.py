"""The one spec grammar (quoting, lists, names with ':') and the one precedence rule."""

from __future__ import annotations

import pytest

import oneclass
from oneclass.registry import format_spec, parse_spec


@pytest.mark.parametrize(
    ("spec", "name", "params"),
    [
        ("knn", "knn", {}),
        ("knn:k=5,metric=cosine", "knn", {"k": 5, "metric": "cosine"}),
        ("pyod:LOF", "pyod:LOF", {}),
        ("pyod:LOF:n_neighbors=10", "pyod:LOF", {"n_neighbors": 10}),
        ('clip:model="hf-hub:org/x"', "clip", {"model": "hf-hub:org/x"}),
        ("clip:model='a,b=c|d'", "clip", {"model": "a,b=c|d"}),
        ('clip:model="say \\"hi\\""', "clip", {"model": 'say "hi"'}),
        (
            "clip:model=hf-hub:org/x,backend=transformers",
            "clip",
            {"model": "hf-hub:org/x", "backend": "transformers"},
        ),
        ("mlp:hidden_layer_sizes=64|32", "mlp", {"hidden_layer_sizes": [64, 32]}),
        ('knn:k="5"', "knn", {"k": "5"}),  # quoted: always a string
        (
            "knn:contamination=none,fast=true,x=0.5",
            "knn",
            {"contamination": None, "fast": True, "x": 0.5},
        ),
    ],
)
def test_parse_and_round_trip(spec, name, params):
    assert parse_spec(spec) == (name, params)
    assert parse_spec(format_spec(name, params)) == (name, params)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ('clip:model="abc', "unclosed"),
        ("knn:k=5,k=6", "given twice"),
        ("knn:=3", "expected key=value"),
        ("knn:k=", "has no value"),
        ('clip:model="a"b', "after the closing quote"),
        ("k=5", "starts with a parameter"),
    ],
)
def test_malformed_specs_are_refused(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_spec(spec)


def test_keywords_override_the_spec_for_detectors_and_embedders():
    assert oneclass.make_detector("knn:k=5", k=7).k == 7
    emb = oneclass.make_embedder("effnet-lite0:power=0.5", power=1.0)
    assert emb.power == 1.0


def test_unknown_parameters_are_named_before_anything_is_built():
    with pytest.raises(ValueError, match=r"unknown parameter 'kk' for detector 'knn'.*it takes"):
        oneclass.make_detector("knn:kk=3")
    with pytest.raises(ValueError, match=r"unknown parameter 'pow' for embedder 'effnet-lite0'"):
        oneclass.make_embedder("effnet-lite0:pow=0.5")
    with pytest.raises(ValueError, match="unknown embedder 'effnet-lite9'"):
        oneclass.make_embedder("effnet-lite9")


def test_offline_never_builds_an_embedder_that_downloads(monkeypatch):
    pytest.importorskip("open_clip")
    monkeypatch.setenv("ONECLASS_OFFLINE", "1")
    emb = oneclass.make_embedder("clip:allow_download=true")
    assert emb.allow_download is False
