"""Rewrite the golden files from the current code: `.venv/bin/python -m tests.golden.regenerate`."""

from __future__ import annotations

from tests.golden import CATALOGUE, catalogue_rendering


def main() -> None:
    CATALOGUE.write_text(catalogue_rendering(), encoding="utf-8")
    print(f"wrote {CATALOGUE}")


if __name__ == "__main__":
    main()
