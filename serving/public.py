"""What the backend's unauthenticated answers may say about the server: model names and versions, not its files.

``GET /models`` and a reload's 409 quote the last reload error, whose message (written for the operator's log) names
the model store's and the recipes' folders. :func:`hide_paths` replaces those folders with the settings that name
them (``MODEL_STORE``, ``MODELS_DIR``) and any other absolute path with ``.../<file name>``; the log keeps the full
message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

#: an absolute path: '/' at the start of the text or after a space, quote, bracket or '=', up to a separator
_ABSOLUTE_PATH = re.compile(r"""(?:^|(?<=[\s'"(\[=]))/[^\s'"()\[\],;]*""", re.MULTILINE)


def hide_paths(text: str, folders: Mapping[str, Path]) -> str:
    """``text`` with each of ``folders`` (setting name -> folder) named by its setting, other paths shortened."""
    for name, folder in sorted(folders.items(), key=lambda item: -len(str(item[1]))):
        for spelling in {str(folder), str(Path(folder).resolve())}:
            if spelling != "/":
                text = text.replace(spelling, name)
    return _ABSOLUTE_PATH.sub(lambda m: ".../" + m.group().rstrip("/").rsplit("/", 1)[-1], text)
