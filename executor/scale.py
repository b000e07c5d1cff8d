"""SCALE codec for host-function arguments and results, on top of ``scalecodec``.

Type strings are scalecodec's (``"u32"``, ``"Compact<u64>"``, ``"Vec<u32>"``,
``"(u32, Option<u128>)"``, ``"[u8; 32]"``, ``"String"``, ``"bool"``, ...), with
one change to the library's defaults so that byte strings stay bytes:
``Vec<u8>`` and ``[u8; N]`` decode to :class:`bytes` (scalecodec would give a
``str`` or a ``"0x.."`` hex string).  The codec is a private scalecodec
runtime configuration, so the process-wide singleton is left alone.

``scalecodec`` is imported on first use only (it takes ~0.1 s to import).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

_RUNTIME: Any = None


def _runtime() -> Any:
    global _RUNTIME
    if _RUNTIME is None:
        from scalecodec.base import RuntimeConfigurationObject
        from scalecodec.types import U8, Bytes, FixedLengthArray

        class RawBytes(Bytes):  # type: ignore[misc]
            """``Vec<u8>`` as :class:`bytes`."""

            def process(self) -> bytes:
                length = self.process_type("Compact<u32>").value
                value = bytes(self.get_next_bytes(length))
                self.value_object = value
                return value

        class ByteArray(FixedLengthArray):  # type: ignore[misc]
            """``[u8; N]`` as :class:`bytes`, other arrays as lists."""

            def process(self) -> Any:
                if self.element_count and self.runtime_config.get_decoder_class(
                        self.sub_type) is U8:
                    value = bytes(self.get_next_bytes(self.element_count))
                    self.value_object = value
                    return value
                return super().process()

        rt = RuntimeConfigurationObject()
        # A new RuntimeConfigurationObject registers every ScaleDecoder subclass that
        # exists, including the "[u8; N]" classes other runtimes (substrate-interface,
        # a metadata decoder) created dynamically: keep only scalecodec's own.
        types = rt.type_registry["types"]
        for name in [n for n, c in types.items() if c.__module__ != "scalecodec.types"]:
            del types[name]
        rt.type_registry["types"]["bytes"] = RawBytes
        rt.type_registry["types"]["fixedlengtharray"] = ByteArray
        from scalecodec import types as sct

        for key, base in (("vec", sct.Vec), ("boundedvec", sct.BoundedVec),
                          ("btreeset", sct.BTreeSet), ("btreemap", sct.BTreeMap),
                          ("hashmap", sct.HashMap)):
            rt.type_registry["types"][key] = _bounded_collection(base)
        _RUNTIME = rt
    return _RUNTIME


def _bounded_collection(base: Any) -> Any:
    """``base`` (a scalecodec collection) whose element count may not exceed the
    bytes left to decode.  Every element of a non-empty type takes at least one
    byte, so this only rejects counts that cannot be satisfied -- and a count of
    zero-sized elements (``Vec<()>``), which would otherwise make the host build a
    list of up to 2**30 entries out of five guest bytes."""

    class Bounded(base):  # type: ignore[misc]
        def process(self) -> Any:
            start = self.data.offset
            count = self.process_type("Compact<u32>").value
            left = len(self.data.data) - self.data.offset
            if count > left:
                raise ValueError(f"a collection of {count} elements with {left} bytes left")
            self.data.offset = start
            return super().process()

    Bounded.__name__ = base.__name__
    return Bounded


class ScaleType:
    """One SCALE type, resolved once: :meth:`encode` and :meth:`decode`."""

    __slots__ = ("type_string", "_cls", "_scale_bytes")

    def __init__(self, type_string: str):
        rt = _runtime()
        from scalecodec.base import ScaleBytes

        cls = rt.get_decoder_class(type_string)
        if cls is None:
            raise ValueError(f"unknown SCALE type {type_string!r}")
        self.type_string = type_string
        self._cls = cls
        self._scale_bytes = ScaleBytes

    def decode(self, data: bytes) -> Any:
        """Decodes exactly ``data`` (trailing bytes are an error)."""
        return self._cls(data=self._scale_bytes(bytearray(data))).decode()

    def encode(self, value: Any) -> bytes:
        return bytes(self._cls().encode(value).data)

    def __repr__(self) -> str:
        return f"ScaleType({self.type_string!r})"


@lru_cache(maxsize=256)
def scale_type(type_string: str) -> ScaleType:
    """The (cached) :class:`ScaleType` for ``type_string``; ValueError if unknown."""
    return ScaleType(type_string)


def encode(type_string: str, value: Any) -> bytes:
    """SCALE-encodes ``value`` as ``type_string``."""
    return scale_type(type_string).encode(value)


def decode(type_string: str, data: bytes) -> Any:
    """SCALE-decodes ``data`` (all of it) as ``type_string``."""
    return scale_type(type_string).decode(data)
