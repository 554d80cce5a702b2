"""Reports from real run folders: real detectors on real ADBench vectors, real images as thumbnails.

The run folders are written with :class:`oneclass.bench.results.RunDir` exactly as the harness
writes them; metrics come from :func:`oneclass.metrics.evaluate`.
"""

from __future__ import annotations

import base64
import io
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.decomposition import PCA

from oneclass import make_detector
from oneclass.bench.results import AUDIT_COLUMNS, FAILURE_COLUMNS, RunDir, cell_id
from oneclass.metrics import evaluate
from oneclass.report import RunFormatError, load_run, write_report
from oneclass.report import gallery as G

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ONECLASS_DATA", REPO.parent / "shared" / "data"))
ADB = DATA / "adbench" / "CV_by_ResNet18"
LFW_ZIP = DATA / "faces" / "lfw_subset.zip"

pytestmark = pytest.mark.skipif(
    not (ADB / "CIFAR10_0.npz").exists() or not LFW_ZIP.exists(),
    reason=f"shared data not found under {DATA} (set ONECLASS_DATA)",
)

N_BOOT = 200
CIFAR_CLASSES = {"CIFAR10_0": "airplane", "CIFAR10_4": "deer", "CIFAR10_6": "frog"}


def adbench(name: str) -> tuple[np.ndarray, np.ndarray]:
    """ADBench vectors and oneclass labels (ADBench marks anomalies with 1; here 1 = in-class)."""
    d = np.load(ADB / f"{name}.npz")
    return d["X"].astype(np.float64), (d["y"] == 0).astype(int)


def image_uris() -> dict[str, list[str]]:
    crops = sorted(str(p) for p in (DATA / "niccage" / "crops").glob("*.jpg"))
    trump = sorted(str(p) for p in (DATA / "faces" / "trump").glob("*.jpg"))
    with zipfile.ZipFile(LFW_ZIP) as z:
        members = sorted(n for n in z.namelist() if n.endswith(".jpg"))[:200]
    lfw = [f"zip://{LFW_ZIP.resolve()}!{m}" for m in members]
    return {"positive": crops, "trump": trump, "lfw": lfw}


def cell(
    rd: RunDir,
    suite: str,
    emb: str,
    det: str,
    seed: int,
    setting: str,
    value,
    X_train,
    X_test,
    y_test,
    fam_test,
    uris,
    y_train=None,
    no_face: int = 0,
) -> None:
    """Fit a real detector, score the test set, evaluate, record the cell as the harness does."""
    d = make_detector(det, calibration_folds=0, random_state=seed)
    d.fit(X_train) if y_train is None else d.fit(X_train, y_train)
    raw = d.score_samples(X_test)
    status = np.array(["ok"] * len(raw), dtype=object)
    pos_idx = np.flatnonzero(y_test == 1)[:no_face]
    raw[pos_idx] = -np.inf  # images in which no face was found rank below every scored one
    status[pos_idx] = "no_face"
    metric = np.where(np.isneginf(raw), raw[np.isfinite(raw)].min() - 1, raw)
    cid = cell_id(suite, emb, det, seed, setting, value)
    base = {
        "cell": cid,
        "suite": suite,
        "embedder": emb,
        "detector": det,
        "seed": seed,
        "setting": setting,
        "setting_value": value,
        "split": "group-aware",
        "n_train": len(X_train),
        "n_train_neg": 0 if y_train is None else int((y_train == 0).sum()),
        "fit_s": 0.01,
        "score_s": 0.002,
        "embed_s": 3.5,
        "n_failures": 0,
        "status": "ok",
        "error": "",
    }
    rows = []
    for f in ["all", *sorted(set(fam_test) - {"positive"})]:
        m = np.ones(len(y_test), bool) if f == "all" else (fam_test == "positive") | (fam_test == f)
        rows.append(
            {
                **base,
                **evaluate(y_test[m], metric[m], n_boot=N_BOOT, seed=seed),
                "family": f,
                "n_no_face": no_face,
            }
        )
    scores = pd.DataFrame(
        {
            "item_id": [Path(u.split("!")[-1]).name for u in uris],
            "uri": uris,
            "label": y_test,
            "family": fam_test,
            "score": raw,
            "n_faces": 1,
            "status": status,
        }
    )
    rd.finish_cell(cid, rows, scores)


def make_run(
    path: Path,
    *,
    detectors=("knn:k=1", "knn:k=10"),
    seeds=(0, 1),
    shift=0,
    failures=True,
    audit=True,
    suite="niccage",
    curves=True,
) -> Path:
    """A positives-vs-families run: main, fewshot and label-efficiency settings, two embedders."""
    X, y = adbench("CIFAR10_0")
    pos, neg = X[y == 1], X[y == 0]
    uris = image_uris()
    rd = RunDir(path).create()
    rd.write_json(
        "run.json",
        {
            "suite": suite,
            "protocol": "positives-vs-families",
            "seeds": list(seeds),
            "bootstrap": N_BOOT,
            "bootstrap_method": "stratified percentile bootstrap, 95%",
            "versions": {"oneclass": "0.1.0", "numpy": np.__version__},
            "git_revision": "abc1234",
            "hardware": {"machine": "x86_64", "cpus": 2},
            "started": "2025-01-01T00:00:00+00:00",
            "finished": "2025-01-01T00:10:00+00:00",
            "last_session_seconds": 600.0,
        },
    )
    for emb in ("resnet18", "resnet18-pca32"):
        for seed in seeds:
            rng = np.random.default_rng(seed + shift)
            p = pos[rng.permutation(len(pos))]
            n = neg[rng.permutation(len(neg))]
            train, test_pos, test_neg, lab_neg = p[:150], p[150:210], n[:60], n[60:160]
            X_test = np.vstack([test_pos, test_neg])
            y_test = np.r_[np.ones(60, int), np.zeros(60, int)]
            fam = np.array(["positive"] * 60 + ["trump"] * 30 + ["lfw"] * 30, dtype=object)
            u = uris["positive"][:60] + uris["trump"][:30] + uris["lfw"][:30]
            if emb.endswith("pca32"):
                pca = PCA(32, random_state=seed).fit(train)
                train, X_test, lab_neg = (pca.transform(a) for a in (train, X_test, lab_neg))
            nf = 2 if emb == "resnet18" else 0
            args = (X_test, y_test, fam, u)
            for det in detectors:
                cell(rd, suite, emb, det, seed, "main", "", train, *args, no_face=nf)
                for k in (10, 40, 120) if curves else ():
                    cell(rd, suite, emb, det, seed, "fewshot", k, train[:k], *args)
            for k in (10, 40) if curves else ():
                Xl = np.vstack([train, lab_neg[:k]])
                yl = np.r_[np.ones(len(train), int), np.zeros(k, int)]
                cell(rd, suite, emb, "logistic", seed, "label-efficiency", k, Xl, *args, y_train=yl)
    if failures:
        rd.append_csv(
            "failures.csv",
            [
                {
                    "suite": suite,
                    "embedder": "resnet18",
                    "item_id": "broken_0001.jpg",
                    "uri": "/data/broken_0001.jpg",
                    "stage": "decode",
                    "reason": "truncated JPEG file",
                },
                {
                    "suite": suite,
                    "embedder": "resnet18",
                    "item_id": "page.jpg",
                    "uri": "/data/page.jpg",
                    "stage": "decode",
                    "reason": "not an image (HTML)",
                },
            ],
            FAILURE_COLUMNS,
        )
    if audit:
        rd.append_csv(
            "audit.csv",
            [
                {
                    "suite": suite,
                    "seed": 0,
                    "train_id": "102667226.jpg",
                    "test_id": "102668242.jpg",
                    "distance": 3,
                }
            ],
            AUDIT_COLUMNS,
        )
    rd.consolidate()
    return path


def make_per_target_run(path: Path, sets: dict[str, str], suite: str) -> Path:
    """One-vs-rest per target (ADBench protocol: 70% of the normals train), one seed."""
    rd = RunDir(path).create()
    rd.write_json("run.json", {"suite": suite, "protocol": "one-vs-rest", "seeds": [0]})
    for name, target in sets.items():
        X, y = adbench(name)
        rng = np.random.default_rng(0)
        p, n = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
        p = p[rng.permutation(len(p))][:600]
        cut = int(0.7 * len(p))
        test = np.r_[p[cut:], n[:300]]
        uris = [f"adbench:{name}#{i}" for i in test]
        fam = np.where(y[test] == 1, "positive", "anomaly").astype(object)
        for det in ("knn:k=1", "knn:k=10"):
            cell(
                rd,
                suite,
                "resnet18",
                det,
                0,
                "per-target",
                target,
                X[p[:cut]],
                X[test],
                y[test],
                fam,
                uris,
            )
    rd.consolidate()
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    mvtec = {f.stem: f.stem.split("_", 1)[1] for f in sorted(ADB.glob("MVTec-AD_*.npz"))}
    return {
        "a": make_run(root / "run-a"),
        "b": make_run(
            root / "run-b",
            detectors=("knn:k=1", "knn:k=3"),
            seeds=(0,),
            shift=7,
            failures=False,
            audit=False,
        ),
        "cifar": make_per_target_run(root / "run-cifar", CIFAR_CLASSES, "cifar10-oneclass"),
        "mvtec": make_per_target_run(root / "run-mvtec", mvtec, "mvtec"),
    }


@pytest.fixture(scope="module")
def report_a(runs, tmp_path_factory) -> tuple[str, str, Path]:
    out = tmp_path_factory.mktemp("report-a")
    html = write_report([runs["a"]], out / "a.html", out / "a.md")
    return html.read_text(), (out / "a.md").read_text(), out


def expected(run: Path, setting: str = "main") -> pd.DataFrame:
    """Seed means of family-all rows, computed here from results.csv, best AUC first."""
    r = pd.read_csv(run / "results.csv")
    r = r[(r["setting"] == setting) & (r["family"] == "all")]
    g = r.groupby(["embedder", "detector"])[["auc", "auc_lo", "auc_hi"]].mean()
    return g.sort_values("auc", ascending=False).reset_index()


def external_refs(html: str) -> list[str]:
    refs = re.findall(r'(?:src|href|action|poster)\s*=\s*["\']?([^"\' >]+)', html, re.I)
    refs += re.findall(r"url\(([^)]*)\)", html)
    return [x for x in refs if not x.startswith(("data:", "#"))]


def data_images(html: str, mime: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(rf'src="data:{mime};base64,([^"]+)"', html)]


def test_html_is_one_self_contained_file(report_a):
    html, _, out = report_a
    assert external_refs(html) == []
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert sorted(p.name for p in out.iterdir()) == ["a.html", "a.md"]  # no side files
    # figures: ROC, histograms, few-shot and label-efficiency curves, all decodable PNGs
    pngs = data_images(html, "image/png")
    assert len(pngs) >= 4
    for png in pngs:
        assert Image.open(io.BytesIO(png)).format == "PNG"


def test_html_has_header_and_ranking_numbers(report_a, runs):
    html, _, _ = report_a
    for text in (
        "abc1234",
        "stratified percentile bootstrap",
        "group-aware",
        "seeds",
        "Summary",
        "Suite niccage",
    ):
        assert text in html
    exp = expected(runs["a"])
    best = exp.iloc[0]
    assert f"{best['auc']:.3f} [{best['auc_lo']:.3f}, {best['auc_hi']:.3f}]" in html  # summary
    assert re.search(rf'<td class="num best[^"]*">{best["auc"]:.3f}</td>', html)  # marked best
    for _, r in exp.iterrows():
        assert f"{r['auc']:.3f}" in html and f"[{r['auc_lo']:.3f}, {r['auc_hi']:.3f}]" in html
    # per-family AUC columns
    assert "AUC trump" in html and "AUC lfw" in html


def test_galleries_show_real_thumbnails_of_worst_mistakes(report_a, runs):
    html, _, _ = report_a
    best = expected(runs["a"]).iloc[0]
    run = load_run(runs["a"])
    m = run.ok[
        (run.ok["setting"] == "main")
        & (run.ok["embedder"] == best["embedder"])
        & (run.ok["detector"] == best["detector"])
        & (run.ok["seed"] == 0)
    ]
    sc = run.scores(m["cell"].iloc[0])
    top_neg = sc[sc["label"] == 0].sort_values("score").iloc[-1]
    low_pos = sc[(sc["label"] == 1) & np.isfinite(sc["score"])].sort_values("score").iloc[0]
    assert "Worst false positives" in html and "Worst false negatives" in html
    for r in (top_neg, low_pos):
        assert f"{r['score']:.4g}" in html and str(r["item_id"])[:28] in html
    jpegs = data_images(html, "image/jpeg")
    assert len(jpegs) == 24  # 12 per gallery, every image readable (files and zip members)
    first = Image.open(io.BytesIO(jpegs[0]))
    assert max(first.size) == 96
    # the first false positive's thumbnail is that image, not a placeholder
    img, why = G.read_image(top_neg["uri"])
    assert why == ""
    ref = Image.open(io.BytesIO(G.thumbnail(img))).convert("L")
    diff = np.abs(np.asarray(first.convert("L"), float) - np.asarray(ref, float)).mean()
    assert diff < 3.0 and np.asarray(ref).std() > 10


def test_failures_no_face_and_audit_are_reported(report_a):
    html, md, _ = report_a
    for text in (
        "truncated JPEG file",
        "not an image (HTML)",
        "broken_0001.jpg",
        "2 images that could not be used",
        "102668242.jpg",
        "Leakage audit",
    ):
        assert text in html
    assert "Images without a detected face" in html
    assert "Images without a detected face" in md and "truncated JPEG file" in md


def test_markdown_has_the_ranking_table(report_a, runs):
    _, md, _ = report_a
    exp = expected(runs["a"])
    assert "| # | Embedder | Detector | ROC-AUC | 95% CI |" in md
    assert f"**{exp['auc'].iloc[0]:.3f}**" in md
    lines = [ln for ln in md.splitlines() if ln.startswith("| 1 | ")]
    assert lines and exp["embedder"].iloc[0] in lines[0] and exp["detector"].iloc[0] in lines[0]
    assert "data:image" not in md and "![" not in md  # no images without an assets folder
    assert "ROC-AUC by labelled negatives added" in md and "ROC-AUC by number of training" in md
    assert "| all (main) |" in md


def test_markdown_assets_are_linked_pngs(runs, tmp_path):
    md_path = tmp_path / "results" / "report.md"
    write_report(runs["b"], tmp_path / "r.html", md_path, assets=tmp_path / "results" / "assets")
    md = md_path.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) >= 3
    for link in links:
        assert not link.startswith("/") and (md_path.parent / link).is_file()
    assert not list((tmp_path / "results" / "assets").glob("*.jpg"))  # no photos committed


def test_comparison_lists_auc_differences_and_unshared_cells(runs, tmp_path):
    out = write_report([runs["a"], runs["b"]], tmp_path / "cmp.html", tmp_path / "cmp.md")
    html, md = out.read_text(), (tmp_path / "cmp.md").read_text()
    assert "Comparison of runs" in html and "Comparison of runs" in md
    ra, rb = (pd.read_csv(runs[k] / "results.csv") for k in ("a", "b"))
    keys = ["suite", "embedder", "detector", "seed", "setting", "setting_value"]
    both = ra[ra["family"] == "all"].merge(rb[rb["family"] == "all"], on=keys)
    assert len(both) and set(both["detector"]) == {"knn:k=1", "logistic"}
    main = both[(both["setting"] == "main")]
    for _, r in main.iterrows():
        assert f"{r['auc_y'] - r['auc_x']:+.3f}" in html
    # cells in one run only: knn:k=10 (run a), knn:k=3 (run b), seed 1 (run a)
    assert "knn:k=10" in md and "knn:k=3" in md and "absent" in md
    assert "overlap" in html


def test_per_target_bars_and_per_class_table(runs, tmp_path):
    out = write_report(runs["cifar"], tmp_path / "c.html", tmp_path / "c.md")
    html, md = out.read_text(), (tmp_path / "c.md").read_text()
    r = pd.read_csv(runs["cifar"] / "results.csv")
    r = r[r["family"] == "all"]
    for cls in CIFAR_CLASSES.values():
        assert cls in md
    mean = r.groupby("detector")["auc"].mean().sort_values(ascending=False)
    assert f"{mean.iloc[0]:.3f}" in md and "worst (target)" in md
    worst = r.loc[r["auc"].idxmin()]
    assert f"{worst['auc']:.3f} ({worst['setting_value']})" in html
    assert len(data_images(html, "image/png")) == 1
    assert "Worst false positives" not in html  # adbench: items are vectors, not images


def test_many_targets_get_a_sorted_plot_and_hardest_table(runs, tmp_path):
    out = write_report([runs["mvtec"], runs["cifar"]], tmp_path / "m.html")
    html = out.read_text()
    r = pd.read_csv(runs["mvtec"] / "results.csv")
    r = r[r["family"] == "all"]
    assert "The 10 hardest targets" in html and "Suite mvtec" in html
    assert "Suite cifar10-oneclass" in html
    best_det = r.groupby("detector")["auc"].mean().idxmax()
    hardest = r[r["detector"] == best_det].sort_values("auc").iloc[0]
    assert str(hardest["setting_value"]) in html


def test_missing_optional_files_and_unfinished_run(runs, tmp_path):
    run = tmp_path / "partial"
    make_run(run, detectors=("knn:k=1",), seeds=(0,), failures=False, audit=False, curves=False)
    (run / "results.csv").unlink()  # still running: only cells/ exist
    (run / "run.json").unlink()
    out = write_report(run, tmp_path / "p.html", tmp_path / "p.md")
    html = out.read_text()
    assert "Failures: none" in html and "no audit.csv" in html
    assert not (run / "results.csv").exists()  # the report never writes into a run
    assert "knn:k=1" in html and "missing (a run still going" in html


def test_failed_cells_are_listed(runs, tmp_path):
    run = make_run(tmp_path / "with-error", detectors=("knn:k=1",), seeds=(0,), curves=False)
    rd = RunDir(run)
    cid = cell_id("niccage", "resnet18", "ocsvm", 0, "main", "")
    rd.finish_cell(
        cid,
        [
            {
                "cell": cid,
                "suite": "niccage",
                "embedder": "resnet18",
                "detector": "ocsvm",
                "seed": 0,
                "setting": "main",
                "family": "all",
                "status": "failed",
                "error": "ValueError: gamma must be > 0",
            }
        ],
        None,
    )
    rd.consolidate()
    html = write_report(run, tmp_path / "e.html").read_text()
    assert "1 cells failed" in html and "gamma must be &gt; 0" in html


def test_bad_run_folder_is_a_clear_error(tmp_path):
    with pytest.raises(RunFormatError, match="not a run folder"):
        write_report(tmp_path, tmp_path / "x.html")
    with pytest.raises(RunFormatError, match="no such directory"):
        write_report(tmp_path / "nope", tmp_path / "x.html")
    with pytest.raises(ValueError, match="at least one run"):
        write_report([], tmp_path / "x.html")
    bad = RunDir(tmp_path / "bad").create()
    (bad.path / "run.json").write_text("{not json")
    with pytest.raises(RunFormatError, match="run.json"):
        write_report(bad.path, tmp_path / "x.html")


def test_url_thumbnail_comes_from_the_download_cache_only(tmp_path):
    from oneclass.data.download import Downloader

    url = "https://example.invalid/icons/george.jpg"
    crop = sorted((DATA / "niccage" / "crops").glob("*.jpg"))[0]
    cached = Downloader(tmp_path / "dl", offline=True).path_for(url)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(crop.read_bytes())
    rows = pd.DataFrame(
        {"item_id": ["george.jpg"], "family": ["george"], "score": [0.9], "uri": [url]}
    )
    [t] = G.thumbs(rows, url_cache=tmp_path / "dl")
    assert t.missing == "" and Image.open(io.BytesIO(t.jpeg)).size == (96, 96)
    [t] = G.thumbs(rows, url_cache=tmp_path / "elsewhere")  # not cached: never fetched
    assert t.jpeg is None and "URL without a cached copy" in t.missing


def test_thumbnails_say_why_not(tmp_path):
    rows = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "family": ["x", "x", "x"],
            "score": [1.0, 0.5, 0.2],
            "uri": [
                "https://example.invalid/saint.jpg",
                "adbench:CIFAR10_0#3",
                str(tmp_path / "missing.jpg"),
            ],
        }
    )
    t = G.thumbs(rows, url_cache=None)
    assert [x.jpeg for x in t] == [None, None, None]
    assert "URL" in t[0].missing and "not images" in t[1].missing
    assert "missing.jpg" in t[2].missing or "No such file" in t[2].missing


EVIL = "<img src=x onerror=alert(1)>.jpg"


def test_names_are_escaped_in_markdown_and_html(tmp_path):
    from oneclass.report import write_reports

    run = make_run(
        tmp_path / "evil",
        detectors=("knn:k=1",),
        seeds=(0,),
        curves=False,
        failures=False,
        audit=False,
    )
    rd = RunDir(run)
    rd.append_csv(
        "failures.csv",
        [
            {
                "suite": "niccage",
                "embedder": "resnet18",
                "item_id": EVIL,
                "uri": f"/data/{EVIL}",
                "stage": "decode",
                "reason": "[click](javascript:alert(1)) *bold* `code` | pipe",
            }
        ],
        FAILURE_COLUMNS,
    )
    html_f, md_f = write_reports(run, tmp_path / "r.html", tmp_path / "r.md")
    md, html = md_f.read_text(), html_f.read_text()
    assert "<img" not in md and "&lt;img src=x onerror=alert(1)&gt;.jpg" in md
    assert "[click]\\(javascript:alert(1)) \\*bold\\* \\`code\\` \\| pipe" in md
    assert "](javascript" not in md  # no live link
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;.jpg" in html


def test_report_format_follows_the_suffix(runs, tmp_path):
    from oneclass.report import report_format, write_reports

    html = tmp_path / "keep.html"
    html.write_text("<p>an HTML report</p>")
    [md] = write_reports(runs["b"], tmp_path / "x.md")
    assert md.read_text().startswith("# Benchmark report")
    assert html.read_text() == "<p>an HTML report</p>"  # a Markdown report never touches it
    assert not (tmp_path / "x.html").exists()
    with pytest.raises(ValueError, match="needs an .html name"):
        write_report(runs["b"], tmp_path / "y.md")
    with pytest.raises(ValueError, match="needs an .md name"):
        write_report(runs["b"], tmp_path / "y.html", tmp_path / "y.htm")
    with pytest.raises(ValueError, match="report file ends in"):
        report_format(tmp_path / "y.txt")
    assert not list(tmp_path.glob("y.*"))


def test_a_setting_no_protocol_declares_is_still_reported(tmp_path):
    run = make_run(
        tmp_path / "new",
        detectors=("knn:k=1",),
        seeds=(0,),
        curves=False,
        failures=False,
        audit=False,
    )
    rd = RunDir(run)
    for c in rd.cells():
        rows = [{**r, "setting": "brand-new", "setting_value": "v1"} for r in c["rows"]]
        cid = c["id"] + "-new"
        rd.finish_cell(cid, [{**r, "cell": cid} for r in rows], rd.scores(c["id"]))
    rd.consolidate()
    html = write_report(run, tmp_path / "n.html").read_text()
    assert "Setting brand-new" in html and "Ranking, niccage (brand-new)" in html


def test_patch_cells_draw_anomaly_maps_over_their_thumbnails(tmp_path):
    """A cell that kept per-patch scores (as a patch embedder's job does) gets heat maps over
    the gallery thumbnails of those images; the others stay plain photos."""
    run = make_run(
        tmp_path / "maps",
        detectors=("knn:k=1",),
        seeds=(0,),
        curves=False,
        failures=False,
        audit=False,
    )
    rd = RunDir(run)
    best = expected(run).iloc[0]  # the configuration the galleries show
    cid = cell_id("niccage", best["embedder"], best["detector"], 0, "main", "")
    scores = rd.scores(cid)
    top_neg = scores[scores["label"] == 0].sort_values("score").index[-1]
    grid = np.zeros((4, 4), np.float32)
    grid[0, 0] = -5.0  # one patch far out of class: the heat sits in the top-left corner
    np.savez(rd.path / "maps.npz", **{f"map{top_neg}": grid})
    (rd.path / "maps").mkdir()
    (rd.path / "maps.npz").rename(rd.path / "maps" / f"{cid}.npz")
    html = write_report(run, tmp_path / "m.html", gallery_k=2).read_text()
    assert "anomaly map" in html
    [first, *_] = data_images(html, "image/jpeg")  # the first false positive: top_neg
    img, _ = G.read_image(scores.loc[top_neg, "uri"])
    plain = np.asarray(Image.open(io.BytesIO(G.thumbnail(img))).convert("RGB"), float)
    shown = np.asarray(Image.open(io.BytesIO(first)).convert("RGB"), float)
    h, w = plain.shape[0] // 4, plain.shape[1] // 4
    corner = np.abs(shown[:h, :w] - plain[:h, :w]).mean()
    far = np.abs(shown[-h:, -w:] - plain[-h:, -w:]).mean()
    assert corner > 20 and corner > far  # a heat map, hottest where the patch scored lowest
