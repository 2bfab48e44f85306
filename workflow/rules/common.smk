# Configuration helpers shared by every rule file.
import json
import os

from snakemake.utils import validate

validate(config, workflow.source_path("../schemas/config.schema.yaml"))

# `ablations: true` adds the paper's ablations (kglnet.ablations), `zoo: true` the baselines of its
# tables (kglnet.zoo), beside every dataset's `kglnet` entry and derived from it.
# `zoo` may also be a list of the zoo's method names (the big cross-spectral networks are slow).
def _add_entries(switch, make_entries):
    if not config.get(switch):
        return
    if "kglnet" not in config["models"]:
        raise ValueError(f"config {switch}: true needs a 'kglnet' entry under 'models' to derive from")
    chosen = config[switch] if isinstance(config[switch], list) else None
    entries = make_entries(config["models"]["kglnet"], chosen) if chosen else make_entries(config["models"]["kglnet"])
    for name, entry in entries.items():
        config["models"].setdefault(name, entry)
    for ds in config["datasets"].values():
        if "kglnet" in ds["models"]:
            ds["models"] = list(ds["models"]) + [n for n in entries if n not in ds["models"]]


from kglnet.ablations import ablation_entries
from kglnet.zoo import zoo_entries

_add_entries("ablations", ablation_entries)
_add_entries("zoo", zoo_entries)

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


# Keys of a model entry that describe the run for the workflow and tables, not for training.
_WORKFLOW_KEYS = ("label", "seeds", "paper_method")


def seeds_of(model):
    return config["models"][model].get("seeds", [0])


def runs(dataset):
    """(model, seed) of every training run of a dataset: each is an independent job."""
    return [(m, s) for m in models_of(dataset) for s in seeds_of(m)]


def train_settings(dataset, model, seed):
    """The model entry's settings, overridden by the dataset's (`train`), then by the dataset's
    settings for this entry alone (`train_by_model`), for one seed. An entry names its
    architecture with `model:` (default: the entry's own name), so ablations are entries too.
    An entry's `init_from` names another entry; the run starts from that entry's run of the same
    dataset and seed (:func:`init_checkpoint`), whose best.pt path replaces the name here."""
    settings = {k: v for k, v in config["models"][model].items() if k not in _WORKFLOW_KEYS}
    settings.update(dataset_cfg(dataset).get("train", {}))
    settings.update(dataset_cfg(dataset).get("train_by_model", {}).get(model, {}))
    settings.setdefault("model", model)
    settings["seed"] = int(seed)
    if "init_from" in settings:
        settings["init_from"] = init_checkpoint(dataset, model, seed)
    return settings


def init_checkpoint(dataset, model, seed):
    """best.pt of the run a model entry's run starts from (its `init_from` entry, same dataset
    and seed: a second training stage), or "" for an entry trained from its initialisation."""
    entry = config["models"][model].get("init_from", "")
    return f"checkpoints/{run_dir(dataset, entry, seed)}/best.pt" if entry else ""


def model_label(model):
    return config["models"][model].get("label", model)


def paper_protocol():
    """Score the test sets after every epoch, for the paper's best-test-epoch protocol."""
    return config["evaluation"].get("paper_protocol", True)


def run_dir(dataset, model, seed):
    return f"{dataset}/{model}/seed{seed}"


def run_metrics(dataset):
    return [f"results/metrics/{run_dir(dataset, m, s)}.json" for m, s in runs(dataset)]


def run_histories(dataset):
    return [f"results/training/{run_dir(dataset, m, s)}.json" for m, s in runs(dataset)]


def all_metrics(dataset):
    return run_metrics(dataset) + [f"results/metrics/{dataset}/{b}.json" for b in BASELINES]


def roc_files(dataset):
    """ROC points of each model's first seed (the figures show one run per model) and baselines."""
    first = [run_dir(dataset, m, seeds_of(m)[0]) for m in models_of(dataset)]
    return (
        [f"results/roc/{r}.json" for r in first]
        + [f"results/roc/{r}.descriptor.json" for r in first]
        + [f"results/roc/{dataset}/{b}.json" for b in BASELINES]
    )


def report_outputs(dataset):
    return [
        f"results/tables/{dataset}.md",
        f"results/tables/{dataset}.csv",
        f"results/metrics/{dataset}/summary.json",
        f"results/qualitative/{dataset}",
    ]


def paper_methods():
    """model or baseline -> the paper's name for it, for the tables' published column."""
    named = {m: e["paper_method"] for m, e in config["models"].items() if "paper_method" in e}
    return {**{"sift": "SIFT", "lghd": "LGHD", "gisift": "GISIFT"}, **named}


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
    for _model in _ds.get("train_by_model", {}):
        if _model not in _ds["models"]:
            raise ValueError(f"config datasets.{_name}.train_by_model: {_model!r} is not trained on this dataset ({', '.join(_ds['models'])})")

from kglnet.models import list_models

for _model, _entry in config["models"].items():
    _arch = _entry.get("model", _model)
    if _arch not in list_models():
        raise ValueError(f"config models.{_model}: architecture {_arch!r} is not registered; set 'model:' to one of {', '.join(list_models())}")
    if len(set(_entry.get("seeds", [0]))) != len(_entry.get("seeds", [0])):
        raise ValueError(f"config models.{_model}.seeds: repeated seed in {_entry['seeds']}")

# The schema leaves the sections that mirror a settings class free-form (datasets.<name>.train,
# .synthetic and .mini, models.<name>.loss): build every run's settings here, exactly as its job
# will, so a mistake there fails before any job starts and names the section, instead of
# surfacing in a job's log after the jobs before it have run.
from kglnet.data.mini import MiniConfig
from kglnet.data.synthetic import SyntheticConfig
from kglnet.settings import TrainConfig


def _check_settings(where, build, values):
    try:
        build(values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config {where}: {exc}") from None


def _architecture(entry_name):
    return config["models"][entry_name].get("model", entry_name)


# `init_from` names an entry of the same architecture, and following the names ends: every
# second stage waits for a first that is not itself waiting for it.
for _model, _entry in config["models"].items():
    _chain = [_model]
    while config["models"][_chain[-1]].get("init_from"):
        _next = config["models"][_chain[-1]]["init_from"]
        if _next not in config["models"]:
            raise ValueError(f"config models.{_chain[-1]}.init_from: no model entry {_next!r}; entries: "
                             f"{', '.join(config['models'])}")
        if _architecture(_next) != _architecture(_chain[-1]):
            raise ValueError(f"config models.{_chain[-1]}.init_from: entry {_next!r} trains "
                             f"{_architecture(_next)!r}, not {_architecture(_chain[-1])!r}; a run can only start "
                             "from weights of its own architecture")
        if _next in _chain:
            raise ValueError(f"config models.{_model}.init_from: the entries start from each other in a circle: "
                             f"{' -> '.join(_chain + [_next])}")
        _chain.append(_next)
for _name, _ds in config["datasets"].items():
    for _where, _values in [("train", _ds.get("train", {}))] + [
            (f"train_by_model.{m}", v) for m, v in _ds.get("train_by_model", {}).items()]:
        if "init_from" in _values:
            raise ValueError(f"config datasets.{_name}.{_where}.init_from: set init_from in the model entry "
                             "(models.<name>.init_from), where every dataset's run of it starts from its own "
                             "dataset's first stage")

for _model, _entry in config["models"].items():
    _check_settings(f"models.{_model}", TrainConfig.from_dict,
                    {k: v for k, v in _entry.items() if k not in _WORKFLOW_KEYS} | {"model": _entry.get("model", _model)})
for _name, _ds in config["datasets"].items():
    for _section, _cls in (("synthetic", SyntheticConfig), ("mini", MiniConfig)):
        if _section in _ds:
            _check_settings(f"datasets.{_name}.{_section}", _cls.from_dict, _ds[_section])
    for _model, _seed in runs(_name):
        _check_settings(f"datasets.{_name}.train (with models.{_model})", TrainConfig.from_dict,
                        train_settings(_name, _model, _seed))

# The bundle cannot be downloaded: check it before any job starts and list everything missing.
if BUNDLE:
    check_bundle(BUNDLE_ROOT, sorted({bundle_set(d, n) for d in BUNDLE for n in ["train"] + test_sets(d)}))
