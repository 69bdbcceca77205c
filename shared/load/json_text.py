"""JSON column values serialized to text, fast: `fit.json_bulk` runs this on every value of a batch.

`json.JSONEncoder.encode` builds a new C encoder for every value it is given, which costs more
than encoding a small object (docs/benchmarks.md); here one C encoder is built with `fit.encode_json`'s
settings (ensure_ascii off, NaN refused, `default=json_value`) and reused, so the text is the same and a
NaN still raises ValueError. Without the circular-reference check, which the values written here
(decoded JSON, rows from drivers) cannot need: a cycle gives a RecursionError, and the caller then
takes the value the slow way, through `fit.json_fit`, which reports it properly.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]  # C hook, not in typeshed
from typing import Any


def one_shot_encoder() -> Callable[[Any], str]:
    from shared.extract.records import json_value  # dates, decimals, UUIDs; TypeError for anything else
    encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=json_value)
    if c_make_encoder is None:   # a Python without the C accelerator
        return encoder.encode
    chunks = c_make_encoder(None, encoder.default, encode_basestring, None, encoder.key_separator,
                            encoder.item_separator, False, False, False)
    join = "".join
    return lambda value: join(chunks(value, 0))


encode_json_fast = one_shot_encoder()
