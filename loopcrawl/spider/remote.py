"""Spider callbacks in worker processes (``--workers N``).

A worker process loads the same spider (the same file and class, and the
coordinator's instance as it stands after ``opened()``), runs the callback of
each 2xx response it fetched, and sends back, pickled, what the callback
yielded: Requests (their callbacks by name, as a persistent or shared
frontier stores them) and items. The coordinator passes them through
``SpiderRun`` as if its own callback had yielded them, so the pipelines
(a ``Dedup`` across all workers), the exporters (one file each), scope,
depth and the seen set stay in one place.

What does not cross: ``start_requests``, ``opened`` and ``closed`` run in
the coordinator only; errbacks too (a failure is known there). A request
whose callback is not a method of the spider (a lambda, a function), or
whose ``meta`` or ``cb_kwargs`` do not pickle, has its callback run in the
coordinator, as a spider defined where a worker cannot import it (in
``__main__``, inside a function) has all of them.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import importlib.util
import inspect
import pickle
import sys
import traceback
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..http import Failure, Request, Response
from .items import Item

if TYPE_CHECKING:
    from ..net.fetched import Fetched
    from .base import Spider

__all__ = ["CallbackError", "SpiderSpec", "call_of", "callable_name", "callback_outputs",
           "load_spec", "run_call", "spec_of"]

# How a worker finds the spider: the file it was loaded from (None: import
# the module by name), the module's name, the class's qualified name, and the
# coordinator's instance, pickled (None if it does not pickle: a new one).
SpiderSpec = tuple[str | None, str, str, bytes | None]


@dataclasses.dataclass(frozen=True)
class CallbackError:
    """A callback's exception as it crossed from a worker (an exception's own
    pickling keeps only its ``args``): the callable's name, the exception's
    type and message, and its traceback as text."""

    where: str
    kind: str
    message: str
    trace: str


def spec_of(spider: Spider) -> SpiderSpec | None:
    """How a worker process loads ``spider``; None when it cannot (defined in
    ``__main__`` or inside a function): its callbacks then run here."""
    cls = type(spider)
    module = sys.modules.get(cls.__module__)
    if module is None or cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        return None
    path = getattr(module, "__file__", None) if cls.__module__.startswith("_loopcrawl_") else None
    try:
        state: bytes | None = pickle.dumps(spider, pickle.HIGHEST_PROTOCOL)
    except Exception:  # a lock, an open file: the worker makes its own instance
        state = None
    return (path, cls.__module__, cls.__qualname__, state)


def load_spec(spec: SpiderSpec) -> Spider:
    """The spider of ``spec``, in a worker process."""
    path, module_name, qualname, state = spec
    if path is not None and module_name not in sys.modules:
        from .base import exec_spider_file

        exec_spider_file(path, module_name)
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    spider: Spider = pickle.loads(state) if state is not None else obj()
    return spider


def _named(r: Request, spider: Spider) -> Request:
    """``r`` with its callback and errback as names (ValueError if one is not
    a method of the spider)."""
    cb, eb = spider.callback_name(r.callback), spider.callback_name(r.errback)
    if cb is r.callback and eb is r.errback:
        return r
    r = copy.copy(r)
    r.callback, r.errback = cb, eb
    return r


def call_of(req: Request, spider: Spider) -> bytes | None:
    """What a worker needs to run ``req``'s callback (the request, its
    callback by name), pickled; None if it cannot cross (run it here)."""
    try:
        return pickle.dumps(_named(req, spider), pickle.HIGHEST_PROTOCOL)
    except Exception:
        return None


async def run_call(spider: Spider, call: bytes, f: Fetched) -> bytes:
    """In a worker: run the callback of the request in ``call`` on ``f`` and
    return, pickled, (what it yielded, its error as a ``CallbackError`` or None)."""
    out: list[Any] = []
    error: CallbackError | None = None
    req: Request = pickle.loads(call)
    fn: Any = req.callback
    where = ""
    try:
        fn = spider.resolve(req.callback, spider.parse)
        where = callable_name(fn)
        response = Response(f.url, f.status, f.headers, f.body, req)
        async for x in callback_outputs(fn, response, req.cb_kwargs or {}):
            out.append(_crossing(x, spider))
    except Exception as e:
        where = where or callable_name(fn)
        error = CallbackError(where, type(e).__name__, str(e), traceback.format_exc())
    try:
        return pickle.dumps((out, error), pickle.HIGHEST_PROTOCOL)
    except Exception as e:
        error = CallbackError(where, type(e).__name__,
                              f"what it yielded cannot be sent to the coordinator: {e}",
                              traceback.format_exc())
        return pickle.dumps(([], error), pickle.HIGHEST_PROTOCOL)


async def callback_outputs(fn: Any, arg: Response | Failure,
                           kwargs: dict[str, Any]) -> AsyncIterator[Any]:
    """What the callback ``fn`` yields or returns, one thing at a time, however
    it is written (async generator, generator, coroutine, plain function)."""
    result = fn(arg, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    if result is None:
        return
    if hasattr(result, "__anext__"):
        async for x in result:
            yield x
    elif isinstance(result, Request | Item | dict) or (
            dataclasses.is_dataclass(result) and not isinstance(result, type)):
        yield result
    else:
        for x in result:
            yield x


def callable_name(fn: Any) -> str:
    """How a callback is named in logs and records."""
    return getattr(fn, "__qualname__", None) or repr(fn)


def _crossing(x: Any, spider: Spider) -> Any:
    """``x`` ready to be pickled: Requests' callbacks by name (a Request whose
    callback is not a spider method raises ValueError, a callback error)."""
    if isinstance(x, Request):
        try:
            return _named(x, spider)
        except ValueError as e:
            raise ValueError(f"{e}; with --workers a Request's callback must be a method of "
                             "the spider") from None
    if isinstance(x, list | tuple):
        return [_crossing(y, spider) for y in x]
    return x
