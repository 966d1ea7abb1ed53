"""Saved views are loaded only when every stored stage is one of FiftyOne's own view stages.

FiftyOne rebuilds a stored view with ``etau.get_class(d["_cls"])(**kwargs)``,
which imports and calls whatever the stored document names: a stage stored as
``{"_cls": "subprocess.Popen", ...}`` runs a command. Whoever can write the
database could run code in every pod that loads the view, so the stored stage
documents are read first and refused unless each ``_cls`` names a `ViewStage`
subclass defined in ``fiftyone.core.stages``; nothing of the view is built then.
"""

from __future__ import annotations

import inspect
from typing import Any

from runtime.errors import FatalError


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


def check_saved_view(dataset: Any, name: str) -> None:
    """Raises ViewNotSupported unless every stored stage of saved view `name` is a FiftyOne stage."""
    from bson import json_util

    allowed = allowed_stage_classes()
    view_doc = dataset._get_saved_view_doc(name)
    for index, raw in enumerate(view_doc.view_stages or []):
        try:
            stage = json_util.loads(raw)
        except ValueError as error:
            raise ViewNotSupported(f"saved view {name!r}: stage {index} is not valid JSON") from error
        cls = stage.get("_cls") if isinstance(stage, dict) else None
        if cls not in allowed:
            raise ViewNotSupported(
                f"saved view {name!r} of dataset {dataset.name!r}: stage {index} is {cls!r}, not one of "
                "FiftyOne's view stages (fiftyone.core.stages); the view is not loaded. Save the view "
                "again from FiftyOne, or target the samples by tags or sampleIds"
            )
