"""Real "mini" datasets (visnir, vislwir, os): layout checks, split by image pair, balance,
un-warping, tile detection and bad inputs, on tiny fake source folders written to tmp_path; and the
patch-split variants (vislwir_patchsplit, os_patchsplit: the published protocol).

No real imagery is stored in the repository: the fake sources are drawn here, and the one slow
test reads ../shared/data (skipped when absent) and writes only to tmp_path.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from kglnet.data import detect_keypoints, read_pairs, validate_pairs
from kglnet.data.keypoints import cut_patches
from kglnet.data.mini import (
    DEFAULT_KEYPOINTS,
    MINI_DATASETS,
    PATCH_SPLIT_LABEL,
    VISNIR_ROOT,
    VISNIR_TEST_CATEGORIES,
    MiniConfig,
    build_mini,
    find_tiles,
    read_gray,
    sample_affine,
    unwarp,
)
from kglnet.data.mini import test_sets as mini_test_sets
from kglnet.utils.io import sha256_file

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SMALL = dict(keypoints_per_image=10, eval_keypoints_per_image=8)
IMAGE_SPLIT = sorted(n for n, d in MINI_DATASETS.items() if not d.by_patch)
PATCH_SPLIT = sorted(n for n, d in MINI_DATASETS.items() if d.by_patch)


# ------------------------------------------------------------------------------ fake imagery


def _texture(rng: np.random.Generator, h: int, w: int, lo: int = 40, hi: int = 215) -> np.ndarray:
    """uint8 gray scene in [lo, hi]: smooth field + random rectangles + fine noise, so FAST finds
    corners everywhere and distinct points do not correlate."""
    coarse = rng.random((6, 8)).astype(np.float32)
    img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(40):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(8, 50)), y0 + int(rng.integers(8, 50))
        cv2.rectangle(img, (x0, y0), (x1, y1), float(rng.random()), -1)
    img = cv2.GaussianBlur(img, (0, 0), 0.8) + rng.normal(0, 0.03, img.shape).astype(np.float32)
    img = (img - img.min()) / (img.max() - img.min())
    return np.rint(lo + (hi - lo) * img).astype(np.uint8)


def _rgb(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A BGR image whose gray conversion is close to ``gray``."""
    jitter = rng.integers(-6, 7, size=(*gray.shape, 3))
    return np.clip(gray[..., None].astype(int) + jitter, 0, 255).astype(np.uint8)


VISNIR_SIZE = (240, 320)  # H, W
COUNTRY_PAIRS = 7
TEST_PAIRS = 2


def _affine(i: int, w: int, h: int) -> np.ndarray:
    """A warp like the dataset's: rotation, scale and translation, large enough to leave a wide
    invalid border after un-warping."""
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 8.0 + 2 * (i % 3), 0.93)
    m[:, 2] += (14.0 - i, -11.0 + i)
    return m


def make_visnir(root: Path, seed: int = 0) -> Path:
    """Fake ``visnir-registration`` folder: country pixel-aligned, 8 categories with warped NIR.

    The original NIR is an affine intensity map of the RGB's gray image, so after a correct
    un-warp positive patches correlate almost perfectly; its values stay >= 40, so a black pixel
    in an un-warped patch can only be the invalid border.
    """
    rng = np.random.default_rng(seed)
    h, w = VISNIR_SIZE
    base = root / VISNIR_ROOT
    for category in ("country", *VISNIR_TEST_CATEGORIES):
        folder = base / category
        folder.mkdir(parents=True)
        n = COUNTRY_PAIRS if category == "country" else TEST_PAIRS
        for i in range(n):
            gray = _texture(rng, h, w)
            nir = np.rint(0.7 * gray + 50).astype(np.uint8)
            cv2.imwrite(str(folder / f"{i:04d}_rgb.jpg"), _rgb(gray, rng))
            if category == "country":
                cv2.imwrite(str(folder / f"{i:04d}_nir.jpg"), nir)
            else:
                m = _affine(i, w, h)
                warped = cv2.warpAffine(nir, m, (w, h))
                cv2.imwrite(str(folder / f"{i:04d}_nir.jpg"), cv2.cvtColor(warped, cv2.COLOR_GRAY2BGR))
                np.save(folder / f"{i:04d}_nir.npy", m)
                (folder / f"{i:04d}_nir.txt").write_text("ignored\n")
    return root


ROADSCENE_PAIRS = 8


def make_roadscene(root: Path, seed: int = 1) -> Path:
    """Fake ``roadscene`` folder: RGB visible + grayscale 'thermal' (inverted) of equal size."""
    rng = np.random.default_rng(seed)
    vis_dir, ir_dir = root / "crop_LR_visible", root / "cropinfrared"
    vis_dir.mkdir(parents=True)
    ir_dir.mkdir(parents=True)
    for i in range(ROADSCENE_PAIRS):
        h, w = 200 + 10 * (i % 3), 260 + 8 * i
        gray = _texture(rng, h, w)
        cv2.imwrite(str(vis_dir / f"FLIR_{i:05d}.jpg"), _rgb(gray, rng))
        cv2.imwrite(str(ir_dir / f"FLIR_{i:05d}.jpg"), 255 - gray)
    (vis_dir / "Thumbs.db").write_bytes(b"\x00not an image")  # as in the real repository
    return root


def make_figure(path: Path, rng: np.random.Generator, widths: list[int], height: int,
                col_gap: int, row_gap: int, rgba: bool) -> list[list[tuple[int, int, int, int]]]:
    """Write a 3MOS-like figure: top row optical tiles, bottom row SAR tiles, white gutters.
    Returns the true tile boxes ``[row][col] = (y0, y1, x0, x1)``."""
    total_w = sum(widths) + col_gap * (len(widths) - 1)
    canvas = np.full((2 * height + row_gap, total_w, 3), 255, np.uint8)
    boxes: list[list[tuple[int, int, int, int]]] = [[], []]
    x = 0
    for tw in widths:
        gray = _texture(rng, height, tw, lo=10, hi=235)
        sar = np.clip(255 - gray.astype(int) + rng.integers(-8, 9, gray.shape), 0, 240).astype(np.uint8)
        canvas[:height, x : x + tw] = _rgb(gray, rng)
        canvas[height + row_gap :, x : x + tw] = sar[..., None]
        boxes[0].append((0, height, x, x + tw))
        boxes[1].append((height + row_gap, 2 * height + row_gap, x, x + tw))
        x += tw + col_gap
    if rgba:
        canvas = np.concatenate([canvas, np.full((*canvas.shape[:2], 1), 255, np.uint8)], axis=2)
    cv2.imwrite(str(path), canvas)
    return boxes


TERRASAR_WIDTHS = [316, 317] * 5


def make_3mos(root: Path, seed: int = 2) -> tuple[Path, dict[str, list]]:
    """Fake ``3mos`` folder: one 256-px RGBA figure and one TerraSAR-like (316/317 px, RGB)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    boxes = {
        "GF3_city": make_figure(root / "GF3_city.png", rng, [256] * 10, 256, 8, 4, rgba=True),
        "TerraSAR_plain": make_figure(root / "TerraSAR_plain.png", rng, TERRASAR_WIDTHS, 316, 9, 4,
                                      rgba=False),
    }
    (root / "LICENSE").write_text("Apache-2.0\n")
    return root, boxes


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("mini_sources")
    return {
        "visnir": make_visnir(root / "visnir-registration"),
        "vislwir": make_roadscene(root / "roadscene"),
        "os": make_3mos(root / "3mos")[0],
    }


@pytest.fixture(scope="module")
def built(sources, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    out = tmp_path_factory.mktemp("mini_out")
    cfg = MiniConfig(**SMALL)
    return {
        name: (out / name,
               build_mini(name, _source(sources, name), out / name, cfg, progress=False))
        for name in MINI_DATASETS
    }


def _source(sources: dict[str, Path], name: str) -> Path:
    """The fake source folder of dataset ``name`` (a patch-split variant uses its base's)."""
    return sources[name.removesuffix("_patchsplit")]


def _ncc(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    a = left.reshape(len(left), -1).astype(np.float64)
    b = right.reshape(len(right), -1).astype(np.float64)
    a -= a.mean(1, keepdims=True)
    b -= b.mean(1, keepdims=True)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-9)


def _splits(name: str) -> list[str]:
    return ["train", "val", *mini_test_sets(name)]


# ------------------------------------------------------------------------------------- config


def test_config_from_dict_and_validation():
    cfg = MiniConfig.from_dict({"seed": 3, "keypoint_method": "sift", "keypoints_per_image": 5})
    assert cfg.seed == 3 and cfg.keypoints("os") == (5, DEFAULT_KEYPOINTS["os"][1])
    assert MiniConfig().keypoints("visnir") == DEFAULT_KEYPOINTS["visnir"]
    # Patch split: one pool per image pair for all splits; the val/test budget plays no part.
    assert MiniConfig().keypoints("os_patchsplit") == (DEFAULT_KEYPOINTS["os"][0], None)
    assert MiniConfig(**SMALL).keypoints("vislwir_patchsplit") == (10, None)
    with pytest.raises(ValueError, match=r"unknown MiniConfig keys: \['bogus'\].*allowed.*seed"):
        MiniConfig.from_dict({"bogus": 1, "seed": 0})
    for bad in ({"keypoint_method": "orb"}, {"keypoints_per_image": 0}, {"val_fraction": 1.0},
                {"val_fraction": 0.5, "test_fraction": 0.5}):
        with pytest.raises(ValueError, match="invalid MiniConfig"):
            MiniConfig(**bad)


def test_registry_and_test_sets():
    assert set(MINI_DATASETS) == {"visnir", "vislwir", "os", "vislwir_patchsplit", "os_patchsplit"}
    assert [MINI_DATASETS[n].source for n in ("visnir", "vislwir", "os")] == [
        "visnir-registration", "roadscene", "3mos"]
    assert PATCH_SPLIT == ["os_patchsplit", "vislwir_patchsplit"]
    assert MINI_DATASETS["vislwir_patchsplit"].source == "roadscene"
    assert MINI_DATASETS["os_patchsplit"].source == "3mos"
    assert mini_test_sets("vislwir_patchsplit") == mini_test_sets("os_patchsplit") == ["test"]
    assert mini_test_sets("visnir") == ["field", "forest", "indoor", "mountain", "oldbuilding",
                                        "street", "urban", "water"]
    assert mini_test_sets("vislwir") == mini_test_sets("os") == ["test"]
    with pytest.raises(ValueError, match="unknown mini dataset"):
        mini_test_sets("sen12")


# ---------------------------------------------------------------------------- built datasets


@pytest.mark.parametrize("name", IMAGE_SPLIT)
def test_files_split_by_image_pair_and_balanced(built, name):
    out, summary = built[name]
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["test_sets"] == mini_test_sets(name)
    assert summary["config"]["keypoints_per_image"] == SMALL["keypoints_per_image"]
    seen: dict[str, str] = {}
    for split in _splits(name):
        path = out / f"{split}.h5"
        entry = summary["splits"][split]
        info = validate_pairs(path)
        assert entry["sha256"] == sha256_file(path)
        assert (entry["pairs"], entry["positives"], entry["negatives"]) == (
            info["pairs"], info["positives"], info["negatives"])
        pairs = read_pairs(path)
        attrs = pairs.attrs
        assert attrs["split"] == split and attrs["seed"] == 0 and attrs["dataset"] == name
        assert attrs["source"].startswith(MINI_DATASETS[name].source + "@")
        assert set(attrs["inputs_sha256"]) == {"images"} and len(attrs["inputs_sha256"]["images"]) == 64
        assert attrs["input_files"] >= 1 and "split by image pair" in attrs["protocol"]
        assert "patch pair" not in attrs["protocol"] and "split_protocol" not in summary
        if split == "train":
            assert info["negatives"] == 0 and info["positives"] > 0
        else:
            assert info["positives"] == info["negatives"] > 0
        ids = attrs["image_pairs"]
        assert ids == entry["image_pair_ids"] and len(ids) == entry["image_pairs"]
        for pid in ids:  # no image pair in two splits
            assert pid not in seen, f"{pid} in both {seen.get(pid)} and {split}"
            seen[pid] = split
    expected = {"visnir": COUNTRY_PAIRS + 8 * TEST_PAIRS, "vislwir": ROADSCENE_PAIRS, "os": 20}
    assert len(seen) == expected[name]


def test_visnir_layout_scenes_and_unwarp_alignment(built):
    out, summary = built["visnir"]
    assert set(summary["splits"]) == {"train", "val", *VISNIR_TEST_CATEGORIES}
    assert summary["splits"]["val"]["image_pairs"] == 1  # round(0.15 * 7)
    assert summary["splits"]["train"]["image_pairs"] == COUNTRY_PAIRS - 1
    for split in _splits("visnir"):
        pairs = read_pairs(out / f"{split}.h5")
        scene = "country" if split in ("train", "val") else split
        assert pairs.scene_names == [scene] and set(pairs.scene.tolist()) == {0}
        assert all(pid.startswith(scene + "/") for pid in pairs.attrs["image_pairs"])
        ncc = _ncc(pairs.left, pairs.right)
        # Un-warped NIR is an intensity map of the RGB gray: positives align almost exactly.
        assert np.median(ncc[pairs.label == 1]) > 0.9, split
        if split != "train":
            assert np.median(ncc[pairs.label == 0]) < 0.5, split
            # Original NIR values are >= 40, so a near-black pixel is the invalid border.
            assert pairs.right.min(axis=(1, 2)).min() > 15, f"{split}: a patch touches the border"


def test_unwarp_inverts_the_warp_and_masks_the_border():
    rng = np.random.default_rng(5)
    h, w = 200, 260
    original = _texture(rng, h, w)
    m = _affine(1, w, h)
    warped = cv2.warpAffine(original, m, (w, h))
    restored, mask = unwarp(warped, m)
    assert mask.dtype == bool and 0.5 < mask.mean() < 0.95  # a real invalid border exists
    diff = np.abs(restored.astype(int) - original.astype(int))[mask]
    assert diff.mean() < 6
    # Every valid pixel maps at least ~2 px inside the warped image (erosion against edges).
    ys, xs = np.nonzero(mask)
    src = m @ np.stack([xs, ys, np.ones_like(xs)]).astype(np.float64)
    assert src[0].min() >= 1 and src[1].min() >= 1 and src[0].max() <= w - 2 and src[1].max() <= h - 2
    # Without the mask FAST would put patches on the black border; with it none touches it.
    free = detect_keypoints(restored, max_points=200, rng=np.random.default_rng(0), min_spacing=4)
    assert (cut_patches(restored, free).min(axis=(1, 2)) < 15).any()
    kept = detect_keypoints(restored, max_points=200, rng=np.random.default_rng(0), min_spacing=4,
                            mask=mask)
    assert len(kept) > 20 and cut_patches(restored, kept).min() > 15


def test_sample_affine_hand_computed_cases():
    image = np.arange(12, dtype=np.float64).reshape(3, 4)
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    assert np.array_equal(sample_affine(image, identity), image)
    # Half a pixel to the right: the mean of each pixel and its right neighbour, and half of the
    # last column (its right neighbour is the zero outside the image).
    shifted = sample_affine(image, np.array([[1.0, 0, 0.5], [0, 1.0, 0]]))
    expected = np.array([[0.5, 1.5, 2.5, 1.5], [4.5, 5.5, 6.5, 3.5], [8.5, 9.5, 10.5, 5.5]])
    assert np.array_equal(shifted, expected)
    # Far outside on every side: zeros, not a wrapped or clamped edge pixel.
    assert not sample_affine(image, np.array([[1.0, 0, -50], [0, 1.0, 40]])).any()
    # Channels share the coordinates.
    stacked = sample_affine(np.stack([image, 2 * image], axis=-1), np.array([[1.0, 0, 0.5], [0, 1.0, 0]]))
    assert np.array_equal(stacked[..., 0], expected) and np.array_equal(stacked[..., 1], 2 * expected)


def test_unwarp_does_not_depend_on_opencv_warp(monkeypatch):
    """OpenCV 4.13 and 5.0 un-warp to different bytes (measured: every mini VIS-NIR test file had
    another sha256); the pair files must not change with the OpenCV a machine has."""
    rng = np.random.default_rng(7)
    h, w = 120, 150
    original = _texture(rng, h, w)
    m = _affine(2, w, h)
    warped = cv2.warpAffine(original, m, (w, h))
    with_cv = cv2.warpAffine(warped, cv2.invertAffineTransform(m), (w, h), flags=cv2.INTER_LINEAR)

    def refuse(*args, **kwargs):
        raise AssertionError("unwarp called cv2.warpAffine")

    monkeypatch.setattr(cv2, "warpAffine", refuse)
    monkeypatch.setattr(cv2, "invertAffineTransform", refuse)
    restored, mask = unwarp(warped, m)
    # OpenCV's fixed-point weights (1/32 pixel) move a value by at most a grey level or two.
    assert np.abs(restored.astype(int) - with_cv.astype(int))[mask].max() <= 2


def test_vislwir_split_sizes_and_pairs(built):
    out, summary = built["vislwir"]
    # round(0.2 * 8) = 2 test, round(0.15 * 8) = 1 val, 5 train.
    assert [summary["splits"][s]["image_pairs"] for s in ("train", "val", "test")] == [5, 1, 2]
    test = read_pairs(out / "test.h5")
    ncc = _ncc(test.left, test.right)  # thermal = inverted gray here: positives anti-correlate
    assert np.median(ncc[test.label == 1]) < -0.9 and abs(np.median(ncc[test.label == 0])) < 0.5


def test_os_tiles_split_and_scenes(built):
    out, summary = built["os"]
    assert [summary["splits"][s]["image_pairs"] for s in ("train", "val", "test")] == [13, 3, 4]
    ids = [pid for s in ("train", "val", "test") for pid in summary["splits"][s]["image_pair_ids"]]
    assert sorted(ids) == sorted([f"GF3_city/{c:02d}" for c in range(10)]
                                 + [f"TerraSAR_plain/{c:02d}" for c in range(10)])
    train = read_pairs(out / "train.h5")
    assert set(train.scene_names) <= {"GF3_city", "TerraSAR_plain"}
    assert np.median(_ncc(train.left, train.right)) < -0.8  # fake SAR = inverted optical


# ------------------------------------------------------------- patch split (published protocol)


def _patch_keys(patches: np.ndarray) -> set[bytes]:
    """One key per distinct patch: on the fake textures distinct keypoints give distinct patches."""
    return {p.tobytes() for p in patches}


@pytest.mark.parametrize("name", PATCH_SPLIT)
def test_patchsplit_every_image_pair_in_every_split_and_no_shared_patch(built, name):
    out, summary = built[name]
    base_name = name.removesuffix("_patchsplit")
    base = built[base_name][1]
    # The same image pairs as the image split, all of them in every split.
    all_ids = sorted(pid for e in base["splits"].values() for pid in e["image_pair_ids"])
    assert summary["split_protocol"] == PATCH_SPLIT_LABEL
    assert PATCH_SPLIT_LABEL.startswith("split by patch pair")
    assert "the same images appear in train, val and test" in PATCH_SPLIT_LABEL
    assert summary["test_sets"] == ["test"] and list(summary["splits"]) == ["train", "val", "test"]
    assert summary["config"]["keypoints_per_image"] == SMALL["keypoints_per_image"]
    assert summary["config"]["eval_keypoints_per_image"] is None
    lefts: dict[str, set[bytes]] = {}
    rights: dict[str, set[bytes]] = {}
    total_positives = 0
    for split in ("train", "val", "test"):
        path = out / f"{split}.h5"
        entry = summary["splits"][split]
        info = validate_pairs(path)
        assert entry["sha256"] == sha256_file(path)
        pairs = read_pairs(path)
        attrs = pairs.attrs
        assert attrs["dataset"] == name and attrs["split"] == split
        assert attrs["source"].startswith(MINI_DATASETS[name].source + "@")
        assert PATCH_SPLIT_LABEL in attrs["protocol"]
        assert "split by image pair" not in attrs["protocol"]
        assert attrs["image_pairs"] == entry["image_pair_ids"] == all_ids
        assert entry["image_pairs"] == len(all_ids)
        # Every split reads the files of every image pair.
        assert attrs["inputs_sha256"] == entry["inputs_sha256"]
        assert entry["inputs_sha256"] == summary["splits"]["train"]["inputs_sha256"]
        if split == "train":
            assert info["negatives"] == 0 and info["positives"] > 0
        else:
            assert info["positives"] == info["negatives"] > 0
            pos, neg = pairs.label == 1, pairs.label == 0
            # A negative's partner is a keypoint of the same split: its right patch is the right
            # patch of one of the split's positives (the partner has a partner, so it is kept).
            assert _patch_keys(pairs.right[neg]) <= _patch_keys(pairs.right[pos])
            assert _patch_keys(pairs.left[neg]) == _patch_keys(pairs.left[pos])
        total_positives += info["positives"]
        lefts[split], rights[split] = _patch_keys(pairs.left), _patch_keys(pairs.right)
        assert len(lefts[split]) == info["positives"]  # one distinct location per positive
    # No keypoint location (hence no patch) in two splits.
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not lefts[a] & lefts[b], f"{a} and {b} share a visible patch"
        assert not rights[a] & rights[b], f"{a} and {b} share an other-modality patch"
    # One pool of keypoints per image pair for all splits together.
    assert total_positives <= SMALL["keypoints_per_image"] * len(all_ids)
    assert summary["splits"]["train"]["positives"] > summary["splits"]["test"]["positives"]


def test_patchsplit_deterministic_seeded_and_unknown_names(sources, tmp_path):
    cfg = MiniConfig(**SMALL)
    a = build_mini("os_patchsplit", sources["os"], tmp_path / "a", cfg, progress=False)
    b = build_mini("os_patchsplit", sources["os"], tmp_path / "b", cfg, progress=False)
    assert a == b
    for split in ("train", "val", "test"):
        a_file, b_file = tmp_path / "a" / f"{split}.h5", tmp_path / "b" / f"{split}.h5"
        assert sha256_file(a_file) == sha256_file(b_file)
    c = build_mini("os_patchsplit", sources["os"], tmp_path / "c", MiniConfig(seed=1, **SMALL),
                   progress=False)
    assert c["splits"]["test"]["image_pair_ids"] == a["splits"]["test"]["image_pair_ids"]
    assert c["splits"]["test"]["sha256"] != a["splits"]["test"]["sha256"]
    for bad in ("os_imagesplit", "patchsplit", "vislwir_patchsplit_x"):
        with pytest.raises(ValueError, match="unknown mini dataset"):
            build_mini(bad, sources["os"], tmp_path / bad, cfg, progress=False)
        with pytest.raises(ValueError, match="unknown mini dataset"):
            mini_test_sets(bad)
        assert not (tmp_path / bad).exists()


def test_patchsplit_keypoint_assignment_partitions_by_fraction():
    from kglnet.data.mini import _assign_keypoints

    cfg = MiniConfig(test_fraction=0.2, val_fraction=0.15)
    for count in range(0, 60):
        parts = _assign_keypoints(count, cfg, np.random.default_rng(count))
        joined = np.concatenate([parts["train"], parts["val"], parts["test"]])
        assert sorted(joined.tolist()) == list(range(count))  # a partition of the keypoints
        assert len(parts["test"]) == round(0.2 * count)
        assert len(parts["test"]) + len(parts["val"]) == round(0.35 * count)
        assert all((np.diff(p) > 0).all() for p in parts.values())
    again = _assign_keypoints(36, cfg, np.random.default_rng(7))
    assert all(np.array_equal(again[s], _assign_keypoints(36, cfg, np.random.default_rng(7))[s])
               for s in again)


def test_find_tiles_from_gutters(tmp_path):
    _, boxes = make_3mos(tmp_path / "3mos")
    for stem, expected in boxes.items():
        gray = read_gray(tmp_path / "3mos" / f"{stem}.png")
        assert find_tiles(gray, stem) == expected
    # The TerraSAR-like figure has 316 and 317 px wide tiles, stride ~326.
    widths = {x1 - x0 for _, _, x0, x1 in boxes["TerraSAR_plain"][0]}
    assert widths == {316, 317}


def test_read_gray_composites_alpha_over_white(tmp_path):
    img = np.zeros((70, 80, 4), np.uint8)
    img[..., 3] = 255
    img[:, :40, 3] = 0  # transparent left half: the page shows through
    cv2.imwrite(str(tmp_path / "a.png"), img)
    gray = read_gray(tmp_path / "a.png")
    assert gray.shape == (70, 80) and (gray[:, :40] == 255).all() and (gray[:, 40:] == 0).all()


def test_deterministic_and_seeded(sources, tmp_path):
    cfg = MiniConfig(**SMALL)
    a = build_mini("vislwir", sources["vislwir"], tmp_path / "a", cfg, progress=False)
    b = build_mini("vislwir", sources["vislwir"], tmp_path / "b", cfg, progress=False)
    assert a == b
    c = build_mini("vislwir", sources["vislwir"], tmp_path / "c",
                   MiniConfig(seed=1, **SMALL), progress=False)
    assert c["splits"]["test"]["image_pair_ids"] != a["splits"]["test"]["image_pair_ids"]


def test_progress_prints_one_line_table(sources, tmp_path, capsys):
    build_mini("os", sources["os"], tmp_path / "os", MiniConfig(**SMALL), progress=True)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("os: train ") and "| test " in lines[0]


# -------------------------------------------------------------------------------- bad inputs


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def _fails(name: str, source: Path, out: Path, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_mini(name, source, out, MiniConfig(**SMALL), progress=False)
    assert not out.exists(), "nothing may be written when the input is bad"


def test_visnir_bad_inputs(sources, tmp_path):
    src = _copy(sources["visnir"], tmp_path)
    base = src / VISNIR_ROOT
    out = tmp_path / "out"

    shutil.rmtree(base / "water")
    _fails("visnir", src, out, r"water.*missing VIS-NIR category")
    shutil.copytree(sources["visnir"] / VISNIR_ROOT / "water", base / "water")

    npy = base / "field" / "0001_nir.npy"
    np.save(npy, np.eye(3))
    _fails("visnir", src, out, r"0001_nir\.npy.*shape \(2, 3\)")
    npy.unlink()
    _fails("visnir", src, out, r"0001_rgb\.jpg.*0001_nir\.npy")
    shutil.copy(sources["visnir"] / VISNIR_ROOT / "field" / "0001_nir.npy", npy)

    nir = base / "forest" / "0000_nir.jpg"
    nir.unlink()
    _fails("visnir", src, out, r"0000_rgb\.jpg.*without its NIR partner 0000_nir\.jpg")
    shutil.copy(sources["visnir"] / VISNIR_ROOT / "forest" / "0000_nir.jpg", nir)

    rgb = base / "country" / "0002_rgb.jpg"
    data = rgb.read_bytes()
    rgb.write_bytes(data[: len(data) // 2])
    _fails("visnir", src, out, r"country/0002_rgb\.jpg: truncated JPEG")
    rgb.write_bytes(b"this is not a JPEG")
    _fails("visnir", src, out, r"country/0002_rgb\.jpg")
    cv2.imwrite(str(rgb), np.zeros((40, 300, 3), np.uint8))
    _fails("visnir", src, out, r"country/0002_rgb\.jpg.*smaller than a 64x64 patch")


def test_vislwir_bad_inputs(sources, tmp_path):
    src = _copy(sources["vislwir"], tmp_path)
    out = tmp_path / "out"
    ir = src / "cropinfrared" / "FLIR_00003.jpg"
    cv2.imwrite(str(ir), np.zeros((100, 100), np.uint8))
    _fails("vislwir", src, out, r"FLIR_00003\.jpg: size 100x100 differs")
    ir.unlink()
    _fails("vislwir", src, out, r"crop_LR_visible/FLIR_00003\.jpg: no partner")
    shutil.rmtree(src / "cropinfrared")
    _fails("vislwir", src, out, r"cropinfrared: missing")


def test_os_bad_inputs(sources, tmp_path):
    src = _copy(sources["os"], tmp_path)
    out = tmp_path / "out"
    rng = np.random.default_rng(9)
    bad = src / "SEN_water.png"
    make_figure(bad, rng, [256] * 9, 256, 8, 4, rgba=True)
    _fails("os", src, out, r"SEN_water\.png: found 2 rows x 9 columns")
    make_figure(bad, rng, [256] * 9 + [180], 256, 8, 4, rgba=False)
    _fails("os", src, out, r"SEN_water\.png: tiles differ in size")
    data = (src / "GF3_city.png").read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    _fails("os", src, out, r"SEN_water\.png: truncated PNG")
    make_figure(bad, rng, [60] * 10, 60, 8, 4, rgba=False)
    _fails("os", src, out, r"SEN_water\.png: tiles are 56x56")


# ------------------------------------------------------------------------------ real data (slow)


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} absent")
def test_build_all_from_shared_data(tmp_path):
    """Build every mini dataset (the three and their patch-split variants) with the default
    config from ../shared/data (minutes)."""
    for name, entry in MINI_DATASETS.items():
        source = SHARED_DATA / entry.source
        if not source.is_dir():
            pytest.skip(f"{source} absent")
        start = time.perf_counter()
        summary = build_mini(name, source, tmp_path / name, MiniConfig(), progress=False)
        seconds = time.perf_counter() - start
        splits = summary["splits"]
        print(f"{name} ({seconds:.1f} s): " + ", ".join(
            f"{s} {e['pairs']} (+{e['positives']}/-{e['negatives']}, {e['image_pairs']} img)"
            for s, e in splits.items()))
        assert splits["train"]["negatives"] == 0
        for split in _splits(name)[1:]:
            assert splits[split]["positives"] == splits[split]["negatives"] > 0
        expected = {"visnir": 212, "vislwir": 221, "os": 240}[name.removesuffix("_patchsplit")]
        if entry.by_patch:  # every split holds every image pair
            assert all(e["image_pairs"] == expected for e in splits.values())
            continue
        ids = [pid for e in splits.values() for pid in e["image_pair_ids"]]
        assert len(ids) == len(set(ids)) == expected
