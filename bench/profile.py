"""Top entries of a py-spy profile in collapsed form (`--format raw`): `python -m bench.profile F`.

Self time says where the CPU goes; inclusive time says which of the bridge's own functions
pay for it. Idle samples (the event loop waiting in epoll) are left out of both.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

TOP = 25
IDLE_FRAMES = ("select (selectors.py", "run_forever (asyncio", "_run_once")


def _stacks(path: Path) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def _busy(stacks: Counter[tuple[str, ...]]) -> Counter[tuple[str, ...]]:
    return Counter({s: n for s, n in stacks.items() if not s[-1].startswith(IDLE_FRAMES)})


def top_entries(path: Path, top: int = TOP) -> str:
    stacks = _busy(_stacks(path))
    total = sum(stacks.values()) or 1
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for stack, count in stacks.items():
        own[stack[-1]] += count
        for frame in set(stack):
            inclusive[frame] += count
    lines = [f"profile {path}: {total} busy samples", "  self%  function"]
    lines += [f"  {100 * n / total:5.1f}  {frame}" for frame, n in own.most_common(top)]
    lines += ["  incl%  function (bridge/ only)"]
    ours = [(f, n) for f, n in inclusive.most_common() if "bridge/" in f][:top]
    lines += [f"  {100 * n / total:5.1f}  {frame}" for frame, n in ours]
    return "\n".join(lines)


if __name__ == "__main__":
    print(top_entries(Path(sys.argv[1])))
