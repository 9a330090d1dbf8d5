"""The chat.stream.delta frame, built by hand: it is the hot path."""

import json
from collections.abc import Callable
from json.encoder import encode_basestring


def delta_frame(request_id: str) -> Callable[[str], str]:
    """The chat.stream.delta frame, built without the converter: it is the hot path.

    ``encode_basestring`` is what ``json.dumps(text, ensure_ascii=False)`` ends in, without
    building an encoder per call: 0.05 us a delta instead of 1 us.
    """
    prefix = '{"type":"chat.stream.delta","requestId":' + json.dumps(request_id) + ',"delta":'
    return lambda text: prefix + encode_basestring(text) + "}"
