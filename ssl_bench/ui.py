"""Console output: the one-screen end-of-run summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

STATUS_STYLE = {"finished": "green", "collapsed": "yellow", "diverged": "red", "failed": "red", "running": "cyan"}


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def run_summary(record: dict[str, Any], out_dir: str | Path) -> Panel:
    init, final, best = record["init"], record["final"], record["best"]
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    status = record["status"]
    t.add_row("method", record["method"])
    t.add_row("status", f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"
              + (f"  {record['error']['message']}" if record.get("error") else ""))
    if "ppl" in final or "ppl" in init:   # masked LM
        _mlm_rows(t, init, final)
    else:
        t.add_row("kNN acc (test)", f"{_pct(final.get('knn_acc'))}%   random init {_pct(init.get('knn_acc'))}%")
        t.add_row("linear acc (test)", f"{_pct(final.get('linear_acc'))}%   random init {_pct(init.get('linear_acc'))}%")
        t.add_row("online probe (val)", f"{_pct(best.get('val/online_probe_acc'))}% best")
    if "z_std" in final:
        t.add_row("collapse z_std", f"{final['z_std']:.4f}  ({final['z_std_ratio']:.2f} x 1/sqrt(d); 0 = collapsed)"
                  f"   z rank {final.get('z_rank', float('nan')):.1f}   RankMe {final['rankme']:.1f}")
    tm = record["timings"]
    unit = "seq" if "seq_per_s" in tm else "img"
    rate = f"{tm.get(f'{unit}_per_s', 0):.0f} {unit}/s"
    if final.get("tokens_per_s"):
        rate += f", {final['tokens_per_s']:.0f} tokens/s"
    t.add_row("time", f"{tm.get('wall_s', 0):.0f} s wall, {tm.get('train_s', 0):.0f} s training, {rate}")
    t.add_row("record", str(Path(out_dir) / "record.json"))
    if record.get("checkpoint"):
        t.add_row("checkpoint", record["checkpoint"])
    if record.get("export"):
        t.add_row("export", record["export"])
    wb = record.get("wandb")
    if wb:
        t.add_row("W&B", f"{wb['mode']} run {wb['id']}" + (f"  {wb['url']}" if wb.get("url") else ""))
    return Panel(t, title=f"ssl-bench run: {record['name']}", expand=False)


def _mlm_rows(t: Table, init: dict[str, Any], final: dict[str, Any]) -> None:
    """Held-out split under its fixed mask: perplexity next to the unigram baseline's."""
    def ppl(d: dict[str, Any]) -> str:
        return "-" if d.get("ppl") is None else f"{d['ppl']:.1f}"

    uni = final.get("unigram_ppl", init.get("unigram_ppl"))
    t.add_row("perplexity (held-out)", f"{ppl(final)}   unigram baseline {'-' if uni is None else f'{uni:.1f}'}"
              f"   random init {ppl(init)}")
    t.add_row("masked-token acc", f"{_pct(final.get('masked_acc'))}%   random init {_pct(init.get('masked_acc'))}%"
              f"   ({final.get('masked_tokens', init.get('masked_tokens', 0))} masked tokens)")


def print_run_summary(record: dict[str, Any], out_dir: str | Path) -> None:
    console = Console()
    console.width = max(console.width, 100)
    console.print(run_summary(record, out_dir))
    wb = record.get("wandb")
    if wb and wb["mode"] == "offline":   # full paths, unwrapped, ready to copy
        console.print(f"  view:   wandb leet {wb['dir']}", soft_wrap=True, highlight=False)
        console.print(f"  upload: wandb sync {wb['dir']}", soft_wrap=True, highlight=False)
