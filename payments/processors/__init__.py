"""Card processors behind one adapter interface (payments.processors.base.Processor).

Adding a processor means adding an adapter module and a `PROCESSORS` settings entry, not editing a switch.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from payments.processors.base import Processor


@cache
def get_processor(name: str | None = None) -> Processor:
    """The adapter configured as `PROCESSORS[name]` (default: DEFAULT_PROCESSOR), built once per process.

    Raises KeyError for an unknown name.
    """
    name = name or settings.DEFAULT_PROCESSOR
    config = settings.PROCESSORS[name]
    adapter_class = import_string(config["ADAPTER"])
    return adapter_class(name=name, config=config)
