# Configuration helpers shared by every rule file.
import json
import os

from snakemake.utils import validate

validate(config, workflow.source_path("../schemas/config.schema.yaml"))

DATASETS = list(config["datasets"])
BASELINES = list(config["baselines"])


def dataset_cfg(dataset):
    return config["datasets"][dataset]


def test_sets(dataset):
    return dataset_cfg(dataset)["test_sets"]


def models_of(dataset):
    return dataset_cfg(dataset)["models"]


def test_files(dataset):
    return [f"data/{dataset}/{name}.h5" for name in test_sets(dataset)]


def split_files(dataset):
    return [f"data/{dataset}/{split}.h5" for split in ("train", "val")] + test_files(dataset)


def train_settings(dataset, model):
    """The model's settings, overridden by the dataset's; 'label' is for tables only."""
    settings = {k: v for k, v in config["models"][model].items() if k != "label"}
    settings.update(dataset_cfg(dataset).get("train", {}))
    return settings


def model_label(model):
    return config["models"][model].get("label", model)


def all_metrics(dataset):
    return [f"results/metrics/{dataset}/{m}.json" for m in models_of(dataset) + BASELINES]


def roc_files(dataset):
    return [f"results/roc/{dataset}/{m}.json" for m in models_of(dataset) + BASELINES] + [
        f"results/roc/{dataset}/{m}.descriptor.json" for m in models_of(dataset)
    ]


def report_outputs(dataset):
    return [f"results/tables/{dataset}.md", f"results/tables/{dataset}.csv"]


from kglnet.data.converters import bundle_set_files, check_bundle
from kglnet.data.mini import MINI_DATASETS

SYNTHETIC = [d for d, ds in config["datasets"].items() if ds["source"] == "synthetic"]
MINI = [d for d, ds in config["datasets"].items() if ds["source"] == "mini"]
BUNDLE = [d for d, ds in config["datasets"].items() if ds["source"] == "bundle"]
BUNDLE_ROOT = config.get("bundle") or os.environ.get("KGLNET_BUNDLE")


def bundle_set(dataset, name):
    """The bundle set folder of a bundle dataset's split or test set ('train' = its training set)."""
    spec = dataset_cfg(dataset)["bundle"]
    return spec["train"] if name == "train" else spec.get("sets", {}).get(name, name)


def bundle_inputs(dataset, name):
    return [str(f) for f in bundle_set_files(BUNDLE_ROOT, bundle_set(dataset, name))]


def one_of(names):
    """A wildcard constraint matching exactly these names (nothing when empty)."""
    return "|".join(names) or "(?!x)x"


for _name, _ds in config["datasets"].items():
    if _ds["source"] == "mini":
        if _name not in MINI_DATASETS:
            raise ValueError(f"config datasets.{_name}: source 'mini' needs a dataset named one of {', '.join(MINI_DATASETS)}")
        if list(_ds["test_sets"]) != list(MINI_DATASETS[_name].test_sets):
            raise ValueError(f"config datasets.{_name}.test_sets must be {list(MINI_DATASETS[_name].test_sets)}")
    if {"train", "val"} & set(_ds["test_sets"]):
        raise ValueError(f"config datasets.{_name}.test_sets: 'train' and 'val' name the training files, not test sets")
    if (_ds["source"] == "bundle") != ("bundle" in _ds):
        raise ValueError(f"config datasets.{_name}: the key 'bundle' goes with source 'bundle' and only with it")
    if _ds["source"] == "synthetic" and _ds["test_sets"] != ["test"]:
        raise ValueError(f"config datasets.{_name}: a synthetic dataset has exactly one test set, 'test'; got {_ds['test_sets']}")
    for _model in _ds["models"]:
        if _model not in config["models"]:
            raise ValueError(f"config datasets.{_name}.models: {_model!r} has no entry under 'models' ({', '.join(config['models'])})")

# The bundle cannot be downloaded: check it before any job starts and list everything missing.
if BUNDLE:
    check_bundle(BUNDLE_ROOT, sorted({bundle_set(d, n) for d in BUNDLE for n in ["train"] + test_sets(d)}))
