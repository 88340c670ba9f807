"""A small least-recently-used cache: the per-snapshot caches' one eviction rule."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar, cast

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
#: What a key without a value gets (a value may be None): one look-up of the key, not two.
_MISSING = object()


class LruCache(Generic[K, V]):
    """Values weighing at most ``size`` in all (each weighs 1 unless ``weight`` says otherwise,
    e.g. its bytes), and at most ``most`` of them if given; the one used longest ago goes
    first. Safe to share between threads: a value is made outside the lock (searches run side
    by side), so two threads asking for the same missing key may both make it, and the later
    one is kept."""

    def __init__(
        self, size: int, weight: Callable[[V], int] = lambda value: 1, most: int | None = None
    ) -> None:
        self.size = size
        self.most = most
        self._weight = weight
        self._weighed = 0
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, make: Callable[[], V], keep: bool = True) -> V:
        """The value kept for ``key``, else ``make()``, kept unless not to ``keep`` (a value
        made only to make another, which is kept instead)."""
        with self._lock:
            kept = self._items.get(key, _MISSING)
            if kept is not _MISSING:
                self._items.move_to_end(key)
                return cast(V, kept)
        value = make()
        if not keep or self.most == 0:  # none kept: not weighed either (a result's walk)
            return value
        with self._lock:
            if key in self._items:
                self._weighed -= self._weight(self._items[key])
            self._items[key] = value
            self._items.move_to_end(key)
            self._weighed += self._weight(value)
            while self._items and (self._weighed > self.size or self._too_many()):
                self._weighed -= self._weight(self._items.popitem(last=False)[1])
        return value

    def _too_many(self) -> bool:
        return self.most is not None and len(self._items) > self.most
