"""Where societas keeps files outside a run directory."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """The user cache directory: ``$SOCIETAS_HOME``, else ``$XDG_CACHE_HOME/societas``.

    Assembled model weights and the shared LLM response cache live here.
    """
    explicit = os.environ.get("SOCIETAS_HOME")
    if explicit:
        root = Path(explicit)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "societas"
    root.mkdir(parents=True, exist_ok=True)
    return root


def models_dir() -> Path:
    path = user_cache_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_llm_cache_path() -> Path:
    return user_cache_dir() / "llm-cache.sqlite"
