"""Markdown tables, the run's header (date, device, command), and appending both to RESULTS.md."""

import dataclasses
import datetime
import sys
from pathlib import Path


@dataclasses.dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def add(self, *row) -> None:
        if len(row) != len(self.columns):
            raise ValueError(f"{self.title}: {len(row)} values for {len(self.columns)} columns")
        self.rows.append(list(row))

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |",
                 "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in self.rows]
        lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"


def fmt(value) -> str:
    """Numbers with 3 significant digits (thousands grouped); None as a dash; the rest as str."""
    if value is None:
        return "—"
    if isinstance(value, float):
        if value != value:
            return "—"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    return str(value)


def ratio(new, old):
    """How many times faster ``new`` is than ``old`` (both rates), or None."""
    return None if not new or not old else f"{new / old:.2f}x"


def ceiling_note(config: str, dtype: str, ceiling_tflops: float, flops_per_image: float,
                 torch_rate: float | None, target: float | None,
                 more_targets: tuple[tuple[float, float | None, str], ...] = ()) -> str:
    """What the measured matmul rate allows: images/s if every FLOP ran at that rate, and the
    ``target`` multiple of the PyTorch rate (None: no target) set against it; ``more_targets``:
    (multiple, rate, what the rate is) of further targets, e.g. against PyTorch batched."""
    ceiling = ceiling_tflops * 1e12 / flops_per_image
    text = (f"{config}, {dtype}: {flops_per_image / 1e9:.3g} GFLOP per image; at the measured "
            f"matmul rate ({ceiling_tflops:.3g} TFLOP/s) no implementation exceeds "
            f"{fmt(ceiling)} images/s")
    if torch_rate:
        text += f" = {ceiling / torch_rate:.2f}x PyTorch's rate"
    targets = ((target, torch_rate, ""),) + tuple(more_targets)
    for multiple, rate, what in targets:
        if multiple and rate:
            verdict = "within" if multiple * rate <= ceiling else "above"
            text += (f"; the {multiple:g}x{' ' + what if what else ''} target "
                     f"({fmt(multiple * rate)} images/s) lies {verdict} that ceiling")
    return text + "."


def header(command: str, device: dict) -> str:
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [f"## {stamp}: {device['summary']}", "", "```", command, "```", ""]
    lines += [f"- {key}: {value}" for key, value in device.items() if key != "summary"]
    return "\n".join(lines) + "\n"


def append(path: str, text: str) -> None:
    path = Path(path)
    if not path.exists():
        path.write_text("# Benchmark results\n\nAppended by `python -m bench.run` "
                        "(see bench/README.md); newest last.\n\n")
    with path.open("a") as f:
        f.write("\n" + text)


def publish(text: str, out: str | None) -> None:
    """Prints a report and, given a file, appends it there too."""
    print(text)
    if out:
        append(out, text)
        print(f"[bench] appended to {out}", file=sys.stderr)
