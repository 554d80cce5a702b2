"""Suite files and protocols: parsing errors, and splits without leakage on the real data sets."""

from __future__ import annotations

import numpy as np
import pytest

from oneclass.bench import protocols
from oneclass.bench.suite import Suite, SuiteError


def test_suite_errors_name_the_file_and_the_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nprotocol: nonsense\ndetectors: [knn]\n")
    with pytest.raises(SuiteError, match=r"bad.yaml: protocol 'nonsense'"):
        Suite.load(bad)
    bad.write_text("name: x\nprotocol: adbench\ndetectors: [knn]\nsets: [a]\ncolour: red\n")
    with pytest.raises(SuiteError, match=r"unknown keys \['colour'\]"):
        Suite.load(bad)
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SuiteError, match="invalid YAML"):
        Suite.load(bad)
    with pytest.raises(SuiteError, match="no such suite file"):
        Suite.load(tmp_path / "missing.yaml")


def test_shipped_suites_parse():
    from pathlib import Path

    suites = sorted(Path(__file__).parents[1].glob("benchmarks/*.yaml"))
    assert {s.stem for s in suites} >= {"niccage", "lfw-identity", "cifar10-oneclass", "adbench",
                                        "george"}
    for path in suites:
        suite = Suite.load(path)
        assert suite.detectors and suite.seeds


def _niccage_items():
    from oneclass.bench.runner import resolve_items

    pos = resolve_items({"dataset": "niccage"}, "positive")
    trump = resolve_items({"dataset": "trump"}, "trump")
    bsds = resolve_items({"dataset": "bsds500", "sample": 50}, "bsds500")
    items = pos + trump + bsds
    role = np.array(["positive"] * len(pos) + ["negative"] * (len(trump) + len(bsds)), object)
    family = np.array([it.family for it in items], object)
    return items, role, family


def test_positives_vs_families_never_splits_a_group(data_root):
    items, role, family = _niccage_items()
    suite = Suite.from_dict({
        "name": "t", "protocol": "positives-vs-families", "detectors": ["knn"],
        "positives": {"dataset": "niccage"}, "negatives": {"trump": {}, "bsds500": {}},
        "baselines": {"detectors": ["logistic"], "train_families": ["trump"]},
        "fewshot": [5, 20], "label_efficiency": {"detector": "logistic", "counts": [10, "all"]}})
    from oneclass.data.splits import perceptual_hashes

    groups = protocols.split_groups(items, perceptual_hashes(items))
    assert len(set(groups[role == "positive"])) == 213  # the crops' own event groups
    assert len(set(groups[family == "trump"])) > 100   # near-duplicate groups from hashes
    tasks = list(protocols.positives_vs_families(suite, items, role, family, groups, seed=1))
    main, base = tasks[0], tasks[1]
    # near-duplicate groups of the positives never straddle train and test
    assert not set(groups[main.train]) & set(groups[main.test])
    # baselines train on trump's train half only; trump's test half is disjoint from it
    trump_train = set(base.train[base.train_y == 0])
    assert trump_train and all(family[i] == "trump" for i in trump_train)
    assert not trump_train & set(main.test)
    assert set(family[main.test]) == {"positive", "trump", "bsds500"}
    # every setting of a seed is tested on the same images
    assert all(np.array_equal(t.test, main.test) for t in tasks)
    fewshot = [t for t in tasks if t.setting == "fewshot"]
    assert [t.train.size for t in fewshot] == [5, 20]
    assert all(set(t.train) <= set(main.train) for t in fewshot)
    eff = [t for t in tasks if t.setting == "label-efficiency"]
    assert [(t.train_y == 0).sum() for t in eff] == [10, len(trump_train)]
    # a different seed gives a different split
    other = next(protocols.positives_vs_families(suite, items, role, family, groups, seed=2))
    assert not np.array_equal(other.train, main.train)


def test_one_vs_rest_lfw_halves(data_root):
    from oneclass.bench.runner import resolve_items

    items = resolve_items({"dataset": "lfw"})
    suite = Suite.from_dict({"name": "lfw", "protocol": "one-vs-rest", "detectors": ["knn"],
                             "data": {"dataset": "lfw", "min_images": 20}})
    tasks = list(protocols.one_vs_rest(suite, items, seed=0))
    assert len(tasks) == 62  # LFW people with >= 20 images (Nicolas Cage removed)
    t = tasks[0]
    labels = np.array([it.label for it in items], object)
    assert set(labels[t.train]) == {t.value}
    assert not set(t.train) & set(t.test)
    n_person = int((labels == t.value).sum())
    assert t.train.size == n_person // 2 and t.test_label.sum() == n_person - n_person // 2
    assert set(labels[t.test]) == {task.value for task in tasks}
