"""Progress of long CLI work (replaying, exporting many cases): a bar with the time left on a
terminal; elsewhere one plain line per item, or only the failures when asked to be quiet
(--quiet, --json), so pipelines and log collectors read lines, not escape codes."""

import sys
from types import TracebackType

from tqdm import tqdm


class Progress:
    """`lines=False`: no line per item off a terminal either (only the failures)."""

    def __init__(self, total: int, unit: str, *, quiet: bool, lines: bool = True):
        self._quiet = quiet or not lines
        self._bar = (tqdm(total=total, unit=f" {unit}", file=sys.stderr, dynamic_ncols=True)
                     if sys.stderr.isatty() and not quiet else None)

    def item(self, line: str = "", *, failed: bool = False) -> None:
        """One item done; `line` says which and how (always shown when it failed)."""
        if self._bar is not None:
            if failed:
                self._bar.write(line, file=sys.stderr)
            self._bar.update()
        elif failed or not self._quiet:
            print(line, file=sys.stderr, flush=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()
