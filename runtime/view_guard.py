"""Saved views are loaded only when every stored stage is one of FiftyOne's own view stages.

FiftyOne rebuilds a stored view with ``etau.get_class(d["_cls"])(**kwargs)``,
which imports and calls whatever the stored document names: a stage stored as
``{"_cls": "subprocess.Popen", ...}`` runs a command. Whoever can write the
database could run code in every pod that loads the view. Stages nest (``Flatten``
takes stages as an argument, rebuilt through the same loader), so every stored stage
document is walked at every depth before anything is built: each ``_cls`` found
anywhere must name a `ViewStage` subclass defined in ``fiftyone.core.stages``, and a
document deeper than `MAX_DEPTH` or larger than `MAX_NODES` is refused as well.
"""

from __future__ import annotations

import inspect
from typing import Any

from runtime.errors import FatalError

MAX_DEPTH = 64
"""Nesting levels a stored stage may have; FiftyOne's own views need a handful."""
MAX_NODES = 100_000
"""Values a saved view's stages may hold in all (a sampleIds list of a big selection fits)."""


class ViewNotSupported(FatalError):
    """The saved view names a stage class that is not one of FiftyOne's own view stages."""


def allowed_stage_classes() -> frozenset[str]:
    """`fiftyone.core.stages.<Name>` for every concrete view stage FiftyOne defines."""
    import fiftyone.core.stages as fos

    return frozenset(
        f"{fos.__name__}.{name}"
        for name, member in vars(fos).items()
        if inspect.isclass(member)
        and issubclass(member, fos.ViewStage)
        and member is not fos.ViewStage
        and member.__module__ == fos.__name__
    )


def foreign_classes(stage: Any, allowed: frozenset[str]) -> list[str]:
    """Every ``_cls`` in a stored stage document, at any depth, that is not in `allowed` (as its repr).

    Raises ValueError for a document nested deeper than MAX_DEPTH or holding more than MAX_NODES values.
    """
    found: list[str] = []
    pending: list[tuple[Any, int]] = [(stage, 0)]
    nodes = 0
    while pending:
        value, depth = pending.pop()
        nodes += 1
        if depth > MAX_DEPTH or nodes > MAX_NODES:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels or over {MAX_NODES} values")
        if isinstance(value, dict):
            cls = value.get("_cls")
            if "_cls" in value and not (isinstance(cls, str) and cls in allowed):
                found.append(repr(cls)[:200])
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list | tuple):
            pending.extend((item, depth + 1) for item in value)
    return found


def check_saved_view(dataset: Any, name: str) -> None:
    """Raises ViewNotSupported unless every class named in saved view `name`, at any depth, is a stage."""
    from bson import json_util

    allowed = allowed_stage_classes()
    view_doc = dataset._get_saved_view_doc(name)
    for index, raw in enumerate(view_doc.view_stages or []):
        try:
            stage = json_util.loads(raw)
            foreign = foreign_classes(stage, allowed) if isinstance(stage, dict) else ["(not a document)"]
        except ValueError as error:
            raise ViewNotSupported(f"saved view {name!r}: stage {index} is not readable: {error}") from error
        if foreign or not isinstance(stage.get("_cls"), str):
            named = ", ".join(foreign[:5]) or repr(stage.get("_cls"))[:200]
            raise ViewNotSupported(
                f"saved view {name!r} of dataset {dataset.name!r}: stage {index} names {named}, not one of "
                "FiftyOne's view stages (fiftyone.core.stages); the view is not loaded. Save the view "
                "again from FiftyOne, or target the samples by tags or sampleIds"
            )
