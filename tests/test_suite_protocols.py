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
    assert {s.stem for s in suites} >= {
        "niccage",
        "lfw-identity",
        "cifar10-oneclass",
        "adbench",
        "george",
    }
    for path in suites:
        suite = Suite.load(path)
        assert suite.detectors and suite.seeds


def _niccage_items():
    from oneclass.bench.context import resolve_items

    pos = resolve_items({"dataset": "niccage"}, "positive")
    trump = resolve_items({"dataset": "trump"}, "trump")
    bsds = resolve_items({"dataset": "bsds500", "sample": 50}, "bsds500")
    items = pos + trump + bsds
    role = np.array(["positive"] * len(pos) + ["negative"] * (len(trump) + len(bsds)), object)
    family = np.array([it.family for it in items], object)
    return items, role, family


def test_positives_vs_families_never_splits_a_group(data_root):
    items, role, family = _niccage_items()
    suite = Suite.from_dict(
        {
            "name": "t",
            "protocol": "positives-vs-families",
            "detectors": ["knn"],
            "positives": {"dataset": "niccage"},
            "negatives": {"trump": {}, "bsds500": {}},
            "baselines": {"detectors": ["logistic"], "train_families": ["trump"]},
            "fewshot": [5, 20],
            "label_efficiency": {"detector": "logistic", "counts": [10, "all"]},
        }
    )
    from oneclass.data.splits import perceptual_hashes

    groups = protocols.split_groups(items, perceptual_hashes(items))
    assert len(set(groups[role == "positive"])) == 213  # the crops' own event groups
    assert len(set(groups[family == "trump"])) > 100  # near-duplicate groups from hashes
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
    from oneclass.bench.context import resolve_items

    items = resolve_items({"dataset": "lfw"})
    suite = Suite.from_dict(
        {
            "name": "lfw",
            "protocol": "one-vs-rest",
            "detectors": ["knn"],
            "data": {"dataset": "lfw", "min_images": 20},
        }
    )
    tasks = list(protocols.one_vs_rest(suite, items, seed=0))
    assert len(tasks) == 62  # LFW people with >= 20 images (Nicolas Cage removed)
    t = tasks[0]
    labels = np.array([it.label for it in items], object)
    assert set(labels[t.train]) == {t.value}
    assert not set(t.train) & set(t.test)
    n_person = int((labels == t.value).sum())
    assert t.train.size == n_person // 2 and t.test_label.sum() == n_person - n_person // 2
    assert set(labels[t.test]) == {task.value for task in tasks}


def test_generic_suites_parse_with_their_protocols():
    from pathlib import Path

    from oneclass.bench.specs import check_specs

    root = Path(__file__).parents[1] / "benchmarks"
    full = Suite.load(root / "generic.yaml")
    assert [(u.name, u.protocol) for u in full.units] == [
        ("pokemon_gen1", "one-vs-rest"),
        ("art_genres", "one-vs-rest"),
        ("oxford_flowers12", "one-vs-rest"),
        ("kolektor_sdd", "normal-vs-defect"),
        ("cifar10-oneclass", "one-vs-rest"),
    ]
    kinds = {r.spec.split(":")[0] for r in full.units[0].rows}
    assert kinds == {"effnet-lite0", "effnet-lite0-patches", "finetune"}
    assert full.units[0].fewshot == [5, 10, 20, 50] and full.units[4].seeds == [0]
    check_specs(full)
    check_specs(Suite.load(root / "generic-tiny.yaml"))


def test_normal_vs_defect_splits_whole_parts(data_root):
    from oneclass.bench.context import resolve_items
    from oneclass.bench.protocols.normal_vs_defect import block_groups

    items = resolve_items(
        {"dataset": "kolektor_sdd", "label": "normal"}, "positive"
    ) + resolve_items({"dataset": "kolektor_sdd", "label": "defective"}, "defective")
    family = np.array([it.family for it in items], object)
    role = np.where(family == "positive", "positive", "negative").astype(object)
    groups = block_groups(items, 8)
    # blocks of 8 numbers (one physical part) hold normal and defective images alike
    both = [g for g in set(groups) if len(set(family[groups == g])) == 2]
    assert len(set(groups)) <= 50 and len(both) >= 20
    suite = Suite.from_dict(
        {
            "name": "k",
            "protocol": "normal-vs-defect",
            "detectors": ["knn"],
            "positives": {"dataset": "kolektor_sdd"},
            "negatives": {"defective": {}},
            "baselines": {"detectors": ["logistic"], "train_families": ["defective"]},
        }
    )
    for seed in (0, 1):
        main, base = protocols.positives_vs_families(
            suite, items, role, family, groups, seed, shared_split=True
        )
        # a part (block) is wholly train or wholly test, over normal and defective images
        assert not set(groups[base.train]) & set(groups[main.test])
        assert {family[i] for i in main.train} == {"positive"}
        assert set(family[main.test]) == {"positive", "defective"}
        assert 0 < (base.train_y == 0).sum() < (family == "defective").sum()


def test_one_vs_rest_group_split_with_curves_and_baselines(data_root):
    from oneclass.bench.context import resolve_items

    items = resolve_items({"dataset": "pokemon_gen1"})
    suite = Suite.from_dict(
        {
            "name": "p",
            "protocol": "one-vs-rest",
            "detectors": ["knn"],
            "data": {"dataset": "pokemon_gen1", "split": "groups", "test_size": 0.5},
            "baselines": {"detectors": ["logistic"]},
            "fewshot": [5, 10],
            "label_efficiency": {"detector": "logistic", "counts": [20]},
        }
    )
    groups = protocols.split_groups(items)  # the manifest's near-duplicate groups
    tasks = list(protocols.one_vs_rest(suite, items, seed=0, groups=groups))
    labels = np.array([it.label for it in items], object)
    assert len(tasks) == 10 * 5  # per target: one-class, binary, 2 few-shot, 1 label-efficiency
    main = [t for t in tasks if t.setting == "per-target" and not t.binary]
    assert {t.target for t in main} == set(labels)
    test = main[0].test
    train_all = np.unique(np.concatenate([t.train for t in main]))
    assert not set(groups[train_all]) & set(groups[test])  # no group straddles the split
    for t in tasks:
        assert t.target and np.array_equal(t.test, test)
        if t.setting == "fewshot":
            assert t.train.size == int(t.value) and set(labels[t.train]) == {t.target}
        if t.setting == "label-efficiency":
            assert (t.train_y == 0).sum() == 20 and t.target not in set(
                labels[t.train[t.train_y == 0]]
            )


def test_registry_views_never_drop_a_setting():
    assert protocols.available_protocols() == [
        "adbench",
        "normal-vs-defect",
        "one-vs-rest",
        "positives-vs-families",
    ]
    views = protocols.views_for("one-vs-rest", ["fewshot", "per-target", "brand-new"])
    assert [(v.setting, v.kind) for v in views] == [
        ("per-target", "per-target"),
        ("fewshot", "curve"),
        ("brand-new", "ranking"),
    ]
    assert [v.setting for v in protocols.views_for(None, ["wild", "main"])] == ["wild", "main"]
    with pytest.raises(SuiteError, match="protocol 'new' is not one of"):
        Suite.from_dict({"name": "x", "protocol": "new", "detectors": ["knn"]})


@pytest.mark.slow
def test_generic_tiny_suite_end_to_end(tmp_path, data_root, monkeypatch):
    """The CI-fast generic suite with its frozen row: one-vs-rest with near-duplicate groups,
    curves and baselines on pokemon_gen1, normal-vs-defect on kolektor_sdd, then the report."""
    from pathlib import Path

    import pandas as pd

    from oneclass.bench.runner import run_status, run_suite
    from oneclass.report import write_reports

    monkeypatch.setenv("ONECLASS_CACHE", str(tmp_path / "cache"))
    suite = Path(__file__).parents[1] / "benchmarks" / "generic-tiny.yaml"
    run = run_suite(suite, tmp_path / "run", progress=False, embedders=["effnet-lite0:power=0.5"])
    assert run_status(run) == 0
    res = pd.read_csv(run.path / "results.csv", keep_default_na=False)
    assert set(res.suite) == {"pokemon_gen1", "kolektor_sdd"}
    poke = res[res.suite == "pokemon_gen1"]
    assert set(poke.setting) == {"per-target", "fewshot", "label-efficiency"}
    assert (poke.target != "").all() and set(poke.detector) == {"knn:k=1", "logistic"}
    kol = res[(res.suite == "kolektor_sdd") & (res.family == "all")]
    assert set(kol.setting) >= {"main", "fewshot", "label-efficiency"}
    assert kol.split.str.contains("blocks of consecutive numbers").all()
    html, md = write_reports(run.path, tmp_path / "r.html", tmp_path / "r.md")
    text = md.read_text()
    for part in (
        "Suite pokemon\\_gen1",
        "Suite kolektor\\_sdd",
        "Per target",
        "AUC against the number of positives (mean over targets)",
    ):
        assert part in text
    assert "Worst false positives" in html.read_text()


def test_embedders_filter_never_adds_a_row_to_a_part_that_does_not_list_it(tmp_path):
    """`--embedders A B`: each part runs the rows it lists among A, B; a spec that no part
    names (a new embedder to try) runs in every part."""
    from oneclass.bench.runner import Runner

    suite = Suite.from_dict(
        {
            "name": "two",
            "embedders": ["effnet-lite0", "effnet-lite0-patches"],
            "detectors": ["knn"],
            "parts": [
                {"name": "a", "protocol": "one-vs-rest", "data": {"dataset": "pokemon_gen1"}},
                {
                    "name": "b",
                    "protocol": "one-vs-rest",
                    "data": {"dataset": "art_genres"},
                    "embedders": ["effnet-lite0"],
                },
            ],
        }
    )
    a, b = suite.units
    runner = Runner(suite, tmp_path, embedders=["effnet-lite0-patches", "effnet-lite0:power=0.5"])
    assert [r.spec for r in runner.embedder_rows(a)] == [
        "effnet-lite0-patches",
        "effnet-lite0:power=0.5",
    ]
    assert [r.spec for r in runner.embedder_rows(b)] == ["effnet-lite0:power=0.5"]
    assert [r.spec for r in Runner(suite, tmp_path).embedder_rows(b)] == ["effnet-lite0"]
