"""A compact record of the national IDs a registry file has shown so far."""

from __future__ import annotations


class SeenIds:
    """The national IDs met so far, in about 25 MB whatever the size of the file.

    Cédula numbers are below 10^8, so one bit per possible number and nationality holds a
    registry of 21 million people where a set of strings would take gigabytes. The rare
    longer number falls back to a set.
    """

    _DENSE = 10**8

    def __init__(self) -> None:
        self._bits = {"V": bytearray(self._DENSE // 8), "E": bytearray(self._DENSE // 8)}
        self._rest: set[str] = set()

    def add(self, national_id: str) -> bool:
        """Remember the ID; False if it was already there."""
        number = int(national_id[1:])
        if number >= self._DENSE:
            fresh = national_id not in self._rest
            self._rest.add(national_id)
            return fresh
        bits, index, mask = self._bits[national_id[0]], number >> 3, 1 << (number & 7)
        fresh = not bits[index] & mask
        bits[index] |= mask
        return fresh
