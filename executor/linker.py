"""The :class:`Linker`: host functions by import symbol, resolved once per module.

::

    linker = Linker()

    @linker.define("get_third_number")
    def get_third_number(caller: Caller) -> int:
        return 100

    linker.define("log", lambda caller, data: print(data), args=["bytes"])
    linker.define("hash", my_hash, args=["Vec<u8>"], result="[u8; 32]")

    pre = linker.instantiate_pre(module)     # imports resolved here, once
    instance = pre.instantiate(user_data=state)

The argument and result conventions are in :mod:`executor.hostfn`.
``instantiate_pre`` maps every import index of the module (the ``ecalli``
immediate) to a compiled host function.  An import the linker does not define
raises :class:`~executor.errors.MissingImport` there, unless the linker was
made with ``allow_missing=True`` (alias ``lazy_missing``) or has a fallback:
then calling it makes the guest trap (or runs the fallback).

Host functions and the fallback may be ``async def``; those run only under
:class:`executor.aio.Executor` (``InstancePre.async_handlers``).

**Host-call layers.**  ``pre.layered(layers)`` is the same module with every host call
going through a stack of :class:`HostLayer` objects first (the first layer is the
outermost).  A layer's ``host_call(name, caller, proceed)`` sees the import name and
the :class:`~executor.caller.Caller` (registers, memory, gas, ``user_data``) and may
observe (call ``proceed()``, look before and after), answer instead (set the result
registers / memory itself and not call ``proceed``) or refuse (raise; the guest traps
as for any host-function error).  An embedder that runs nested instances (a contract
calling another contract) instantiates them from ``layered`` too, so the layers see
the whole call tree (:class:`~executor.revive.runtime.ReviveRuntime` does).  The
layered dispatch table is built once per layer stack; with no layer the instance uses
the plain table, so layers cost nothing when unused.

Layers (ARCHITECTURE.md): :mod:`executor.module` calls down to the linker, the
linker makes :class:`~executor.instance.Instance` objects; it sees a module only
as an :class:`~executor.instance.ModuleLike`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from executor.errors import GuestFault, MissingImport
from executor.hostfn import AsyncThunk, HostFunction, Thunk, is_async_function
from executor.instance import DEFAULT_GAS, Instance, ModuleLike

F = TypeVar("F", bound=Callable[..., Any])
_LAYERED_CACHE = 8
"""Layer stacks whose dispatch tables an :class:`InstancePre` keeps."""
Fallback = Callable[[Any, int], Any]


@runtime_checkable
class HostLayer(Protocol):
    """An interposition layer over host functions (see the module docstring)."""

    def host_call(self, name: str, caller: Any, proceed: Callable[[], None]) -> None:
        """Handles host call ``name``; ``proceed()`` runs the next layer or the host
        function itself.  A layer with a ``host_calls`` attribute (a set of import
        names) is only put in front of those host functions; the others stay as they
        are and cost nothing extra."""


def _layer_thunk(layer: HostLayer, name: str, inner: Thunk) -> Thunk:
    host_call = layer.host_call

    def layered(c: Any) -> None:
        host_call(name, c, lambda: inner(c))
    return layered


def _key(name: str | bytes) -> str:
    if isinstance(name, bytes):
        return name.decode("utf-8", "replace")
    if not isinstance(name, str) or not name:
        raise ValueError(f"invalid import name {name!r}")
    return name


class Linker:
    """Host functions by import symbol; builds :class:`InstancePre` objects."""

    def __init__(self, *, allow_missing: bool = False, lazy_missing: bool = False):
        self.allow_missing = allow_missing or lazy_missing
        self._functions: dict[str, HostFunction] = {}
        self._fallback: Fallback | None = None
        self.generation = 0
        """Bumped by every definition (lets caches of resolved links notice changes)."""
        # module -> (generation, allow_missing, the InstancePre's attributes but
        # the module): what instantiate() resolved last, so instantiating the
        # same module again does not resolve its imports again.  Weak keys, and
        # the values hold no module: a dropped module leaves the cache.
        self._linked: weakref.WeakKeyDictionary[Any, tuple[int, bool, dict[str, Any]]] = (
            weakref.WeakKeyDictionary())

    # ---- definitions ----
    def define(self, name: str | bytes, fn: Callable[..., Any] | None = None, *,
               args: Sequence[str] | None = None, result: str | None = None) -> Any:
        """Defines host function ``name``; as a decorator when ``fn`` is omitted.

        Without ``args`` the arguments are plain register values (as many as
        ``fn`` takes after the Caller); ``args``/``result`` declare integer,
        ``bytes`` or SCALE types (see :mod:`executor.hostfn`)."""
        if fn is None:
            def decorator(f: F) -> F:
                self.define(name, f, args=args, result=result)
                return f
            return decorator
        self._add(HostFunction(_key(name), fn, None if args is None else tuple(args), result))
        return fn

    def define_typed(self, name: str | bytes, fn: Callable[..., Any] | None = None, *,
                     args: Sequence[str] = (), result: str | None = None) -> Any:
        """Like :meth:`define`, with the argument types always declared."""
        return self.define(name, fn, args=list(args), result=result)

    def define_raw(self, name: str | bytes, fn: Callable[[Any], Any] | None = None) -> Any:
        """Defines a host function that gets only the Caller and reads/writes the
        registers itself (its return value is ignored)."""
        if fn is None:
            def decorator(f: F) -> F:
                self.define_raw(name, f)
                return f
            return decorator
        self._add(HostFunction(_key(name), fn, raw=True))
        return fn

    def define_fallback(self, fn: Fallback) -> Fallback:
        """``fn(caller, import_index)`` runs for imports the linker does not define
        and for ``ecalli`` numbers outside the import table."""
        self._fallback = fn
        self.generation += 1
        return fn

    def _add(self, h: HostFunction) -> None:
        if h.name in self._functions:
            raise ValueError(f"host function {h.name!r} is already defined")
        self._functions[h.name] = h
        self.generation += 1

    def get(self, name: str | bytes) -> HostFunction | None:
        """The host function defined for ``name``, if any."""
        return self._functions.get(_key(name))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str | bytes) and _key(name) in self._functions

    @property
    def names(self) -> list[str]:
        return list(self._functions)

    # ---- linking ----
    def instantiate_pre(self, module: ModuleLike) -> InstancePre:
        """Resolves the module's imports once; see the module docstring."""
        return InstancePre(self, module)

    def instantiate(self, module: ModuleLike, *, user_data: Any = None,
                    gas: int | None = None) -> Instance:
        """``instantiate_pre(module).instantiate(...)``; the resolved imports are
        kept (per module, until the next definition), so instantiating the same
        module again costs what :meth:`InstancePre.instantiate` costs."""
        try:
            hit = self._linked.get(module)
        except TypeError:  # a module that cannot be weakly referenced: no cache
            return self.instantiate_pre(module).instantiate(user_data=user_data, gas=gas)
        if hit is not None and hit[0] == self.generation and hit[1] == self.allow_missing:
            pre = InstancePre.__new__(InstancePre)
            pre.__dict__.update(hit[2])
            pre.module = module
        else:
            pre = self.instantiate_pre(module)
            parts = {k: v for k, v in pre.__dict__.items() if k not in ("module", "_layered")}
            self._linked[module] = (self.generation, self.allow_missing, parts)
        return Instance(pre, module.new_raw_instance(), user_data=user_data,
                        gas=DEFAULT_GAS if gas is None else gas)


def _missing_thunk(symbol: str) -> Thunk:
    def missing(c: Any) -> None:
        raise GuestFault(f"called the import {symbol!r}, which the linker does not define")
    return missing


def _fallback_thunk(fallback: Fallback, index: int) -> Thunk:
    def run_fallback(c: Any) -> None:
        fallback(c, index)
    return run_fallback


def _async_fallback_thunk(fallback: Fallback, index: int) -> AsyncThunk:
    async def run_fallback(c: Any) -> None:
        await fallback(c, index)
    return run_fallback


def _refuse_async_fallback(c: Any, index: int) -> None:
    raise TypeError("the host fallback is async; call the export through executor.aio.Executor")


class InstancePre:
    """A module with its imports resolved: ``handlers[i]`` services ``ecalli i``.

    ``async_handlers[i]`` is the awaitable form when import ``i`` is served by an
    ``async def`` host function (or an async fallback), else ``None``;
    ``async_fallback`` is the fallback for ``ecalli`` numbers outside the import
    table when it is ``async def`` (``fallback`` is then a stub that refuses to run
    in a synchronous call).

    Reusable: :meth:`instantiate` makes fresh instances sharing the compiled
    module and the dispatch table."""

    def __init__(self, linker: Linker, module: ModuleLike):
        self.module = module
        self.linker = linker
        self.generation = linker.generation
        fallback = linker._fallback
        fallback_async = fallback is not None and is_async_function(fallback)
        handlers: list[Thunk] = []
        async_handlers: list[AsyncThunk | None] = []
        names: list[str] = []
        compiled: dict[str, Thunk] = {}
        compiled_async: dict[str, AsyncThunk | None] = {}
        for index, symbol in enumerate(module.imports):
            name = symbol if symbol is not None else f"<import {index}>"
            names.append(name)
            h = linker._functions.get(symbol) if symbol is not None else None
            if h is not None:
                if name not in compiled:
                    compiled[name] = h.compile(module.is_64_bit)
                    compiled_async[name] = (h.compile_async(module.is_64_bit) if h.is_async
                                            else None)
                handlers.append(compiled[name])
                async_handlers.append(compiled_async[name])
            elif fallback is not None:
                handlers.append(_fallback_thunk(
                    _refuse_async_fallback if fallback_async else fallback, index))
                async_handlers.append(_async_fallback_thunk(fallback, index) if fallback_async
                                      else None)
            elif linker.allow_missing:
                handlers.append(_missing_thunk(name))
                async_handlers.append(None)
            else:
                raise MissingImport(name)
        self.handlers: tuple[Thunk, ...] = tuple(handlers)
        self.async_handlers: tuple[AsyncThunk | None, ...] = tuple(async_handlers)
        self.names: tuple[str, ...] = tuple(names)
        self.fallback: Fallback | None = _refuse_async_fallback if fallback_async else fallback
        self.async_fallback: Fallback | None = fallback if fallback_async else None

    def layered(self, layers: Sequence[HostLayer]) -> InstancePre:
        """This module with ``layers`` over every host call (first = outermost); the
        same object when ``layers`` is empty.  Built once per layer stack (the last
        few stacks are cached).  The fallback (``ecalli`` numbers outside the import
        table) is not layered."""
        if not layers:
            return self
        key = tuple(id(layer) for layer in layers)
        cache: dict[tuple[int, ...], tuple[tuple[HostLayer, ...], InstancePre]]
        cache = self.__dict__.setdefault("_layered", {})
        hit = cache.get(key)
        if hit is not None:
            return hit[1]
        if any(h is not None for h in self.async_handlers) or self.async_fallback is not None:
            raise TypeError("host-call layers do not support async host functions")
        out = object.__new__(InstancePre)
        out.__dict__.update({k: v for k, v in self.__dict__.items() if k != "_layered"})
        handlers = []
        for name, handler in zip(self.names, self.handlers, strict=True):
            for layer in reversed(tuple(layers)):
                wanted = getattr(layer, "host_calls", None)
                if wanted is None or name in wanted:
                    handler = _layer_thunk(layer, name, handler)
            handlers.append(handler)
        out.handlers = tuple(handlers)
        if len(cache) >= _LAYERED_CACHE:
            del cache[next(iter(cache))]  # the oldest stack
        cache[key] = (tuple(layers), out)  # keeps the layers alive while cached
        return out

    def instantiate(self, *, user_data: Any = None, gas: int | None = None) -> Instance:
        """A fresh instance; ``gas`` is its starting gas (default ``DEFAULT_GAS``)."""
        return Instance(self, self.module.new_raw_instance(), user_data=user_data,
                        gas=DEFAULT_GAS if gas is None else gas)
