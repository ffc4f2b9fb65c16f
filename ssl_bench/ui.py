"""Console output: the one-screen end-of-run summaries of ``ssl-bench`` and ``ssl-bench-eval``.

Values (run names, overrides, paths, error messages) are printed as plain text, never parsed as
rich markup: ``data.paths=[corpus.txt]`` in a run name stays what it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

STATUS_STYLE = {
    "finished": "green",
    "collapsed": "yellow",
    "diverged": "red",
    "failed": "red",
    "running": "cyan",
    "interrupted": "red",
}


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _grid() -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    return t


def _row(t: Table, key: str, value: Any) -> None:
    t.add_row(key, value if isinstance(value, Text) else Text(str(value)))


def checkpoint_text(entry: Any, run_dir: str | Path) -> str:
    """``checkpoints/last.ckpt (epoch 34, step 1365)`` from a record's checkpoint entry."""
    if isinstance(entry, dict):
        return f"{Path(run_dir) / entry['path']} (epoch {entry['epoch']}, step {entry['step']})"
    return str(entry)


def run_summary(record: dict[str, Any], out_dir: str | Path) -> Panel:
    init, final, best = record["init"], record["final"], record["best"]
    t = _grid()
    status = record["status"]
    _row(t, "method", record["method"])
    line = Text(status, style=STATUS_STYLE.get(status, "white"))
    if record.get("error"):
        line.append(f"  {record['error']['message']}")
    _row(t, "status", line)
    if "ppl" in final or "ppl" in init:  # masked LM
        _mlm_rows(t, init, final)
    else:
        _row(t, "kNN acc (test)", f"{_pct(final.get('knn_acc'))}%   random init {_pct(init.get('knn_acc'))}%")
        _row(t, "linear acc (test)", f"{_pct(final.get('linear_acc'))}%   random init {_pct(init.get('linear_acc'))}%")
        _row(t, "online probe (val)", f"{_pct(best.get('val/online_probe_acc'))}% best")
    if "z_std" in final:
        _row(
            t,
            "collapse z_std",
            f"{final['z_std']:.4f}  ({final['z_std_ratio']:.2f} x 1/sqrt(d); 0 = collapsed)"
            f"   z rank {final.get('z_rank', float('nan')):.1f}   RankMe {final['rankme']:.1f}",
        )
    tm = record["timings"]
    unit = "seq" if "seq_per_s" in tm else "img"
    rate = f"{tm.get(f'{unit}_per_s', 0):.0f} {unit}/s"
    if final.get("tokens_per_s"):
        rate += f", {final['tokens_per_s']:.0f} tokens/s"
    _row(t, "time", f"{tm.get('wall_s', 0):.0f} s wall, {tm.get('train_s', 0):.0f} s training, {rate}")
    if record.get("attempts"):
        _row(
            t,
            "attempt",
            f"{record.get('attempt', 1)} (earlier: "
            + ", ".join(str(a.get("status")) for a in record["attempts"])
            + ")",
        )
    _row(t, "record", Path(out_dir) / "record.json")
    if record.get("checkpoint"):
        _row(t, "checkpoint", checkpoint_text(record["checkpoint"], out_dir))
    if record.get("export"):
        _row(t, "export", record["export"])
    wb = record.get("wandb")
    if wb:
        _row(t, "W&B", f"{wb['mode']} run {wb['id']}" + (f"  {wb['url']}" if wb.get("url") else ""))
    return Panel(t, title=Text(f"ssl-bench run: {record['name']}"), expand=False)


def _mlm_rows(t: Table, init: dict[str, Any], final: dict[str, Any]) -> None:
    """Held-out split under its fixed mask: perplexity next to the unigram baseline's."""

    def ppl(d: dict[str, Any]) -> str:
        return "-" if d.get("ppl") is None else f"{d['ppl']:.1f}"

    uni = final.get("unigram_ppl", init.get("unigram_ppl"))
    _row(
        t,
        "perplexity (held-out)",
        f"{ppl(final)}   unigram baseline {'-' if uni is None else f'{uni:.1f}'}   random init {ppl(init)}",
    )
    _row(
        t,
        "masked-token acc",
        f"{_pct(final.get('masked_acc'))}%   random init {_pct(init.get('masked_acc'))}%"
        f"   ({final.get('masked_tokens', init.get('masked_tokens', 0))} masked tokens)",
    )


def _console() -> Console:
    console = Console()
    console.width = max(console.width, 100)
    return console


def _wandb_hint(console: Console, wb: dict[str, Any] | None) -> None:
    if wb and wb["mode"] == "offline":  # full paths, unwrapped, ready to copy
        console.print(Text(f"  view:   wandb leet {wb['dir']}"), soft_wrap=True)
        console.print(Text(f"  upload: wandb sync {wb['dir']}"), soft_wrap=True)


def print_run_summary(record: dict[str, Any], out_dir: str | Path) -> None:
    console = _console()
    console.print(run_summary(record, out_dir))
    _wandb_hint(console, record.get("wandb"))


def eval_summary(record: dict[str, Any], out_dir: str | Path) -> Panel:
    final, pre, tm = record["final"], record["pretrain"], record["timings"]
    t = _grid()
    _row(t, "pretraining run", f"{pre['name']} ({pre['method']}, {pre['backbone']})")
    _row(t, "checkpoint", pre["checkpoint"])
    split = record["config"]["split"]
    _row(t, f"linear ({split})", f"top-1 {100 * final['linear_top1']:.1f}%   top-5 {100 * final['linear_top5']:.1f}%")
    _row(t, f"kNN ({split})", f"{100 * final['knn_acc']:.1f}%")
    feats = record["features"]
    _row(
        t,
        "features",
        f"{'cached' if feats['cached'] else 'extracted'} in {tm['features_s']:.1f} s"
        + (f"  {feats['path']}" if feats["path"] else ""),
    )
    _row(t, "time", f"{tm['wall_s']:.1f} s wall, linear probe {tm['linear_s']:.1f} s")
    _row(t, "record", Path(out_dir) / "record.json")
    _row(t, "backbone", record["export"])
    wb = record.get("wandb")
    if wb:
        url = f"  {wb['url']}" if wb.get("url") else ""
        _row(t, "W&B", f"{wb['mode']} run {wb['id']}, group {wb['group']}{url}")
    return Panel(t, title=Text(f"ssl-bench-eval: {record['name']}"), expand=False)


def print_eval_summary(record: dict[str, Any], out_dir: str | Path) -> None:
    _console().print(eval_summary(record, out_dir))
