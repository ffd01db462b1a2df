"""The Markdown summary of ``bench.compare_tools``: one table per workload and the datamill / peer ratios."""

from __future__ import annotations

from typing import Any

RATIOS = (("wall_s", "wall time"), ("cpu_s", "client CPU"), ("peak_tree_pss_mb", "peak memory (PSS)"))


def summary_md(result: dict[str, Any]) -> str:
    """Tables for the LLM workload, the ratios datamill / each peer, and the dedup side by side."""
    lines = _llm_table(result) if result.get("llm") else []
    if result.get("llm"):
        lines += ["", *_ratio_table(result["llm"])]
    dedup = result.get("dedup")
    if dedup:
        lines += ["", "Near-dedup, same planted corpus:", ""]
        lines.append(dedup.get("summary_md") or f"failed: {dedup.get('error')}")
    return "\n".join(lines)


def _llm_table(result: dict[str, Any]) -> list[str]:
    p, machine = result["params"], result["machine"]
    lines = [
        f"Rephrase + completion of {p['rows']:,} rows (2 calls per row), fake OpenAI server in its own "
        f"process at L={p['latency_s']} s; {machine['cpus']} CPUs, load average before "
        f"{machine['loadavg_before'][0]:.2f}, after {machine.get('loadavg_after', [float('nan')])[0]:.2f} "
        "(1-minute; other work on the machine inflates wall and CPU). "
        "Wall time includes start-up; CPU and memory cover the client's whole process tree. "
        "Ideal: ceil(2N/C)·L.",
        "",
        "| tool | C | rows out | calls | wall s | ideal s | calls/s | share of C/L | CPU s | CPU ms/row "
        "| peak PSS MB | max in flight | load before | measured |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["llm"]:
        failed = f" (exit {r['exit_code']})" if r["exit_code"] else ""
        lines.append(
            f"| {r['tool']}{failed} | {r['concurrency']} | {r['rows_out']:,} | {r['calls']:,} "
            f"| {r['wall_s']:.1f} | {r['ideal_wall_s']:.1f} | {r['calls_per_s']:.0f} "
            f"| {r['ratio_to_bound']:.2f} | {r['cpu_s']:.1f} "
            f"| {r['cpu_ms_per_row']:.2f} | {r['peak_tree_pss_mb']:.0f} | {r['server_max_in_flight']} "
            f"| {r.get('loadavg_before', 'n/a')} | {r.get('measured_at', 'n/a')} |"
        )
    return lines


def _ratio_table(runs: list[dict[str, Any]]) -> list[str]:
    by_key = {(r["tool"], r["concurrency"]): r for r in runs}
    lines = [
        "datamill / peer (below 1: datamill needs less):",
        "",
        "| peer | C | " + " | ".join(label for _, label in RATIOS) + " |",
        "|---|---|" + "---|" * len(RATIOS),
    ]
    for (tool, concurrency), peer in by_key.items():
        ours = by_key.get(("datamill", concurrency))
        if tool == "datamill" or ours is None:
            continue
        cells = [_ratio(ours[key], peer[key]) for key, _ in RATIOS]
        lines.append(f"| {tool} | {concurrency} | " + " | ".join(cells) + " |")
    return lines


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}" if theirs else "n/a"
