"""bench/report.py: medians, tables and plots of a bench/run.py run. The
tables are markdown; the plots are PNGs drawn with Debian's
python3-matplotlib (imported only here, and only when plots are wanted)."""

import json
import os
import statistics

from common import fmt_value


def summarize(samples):
    """{(part, target, job): {"value": median or None, "unit", "rounds",
    "errors": [...], "maps", "unmaps", "seconds"}} over every round."""
    out = {}
    for s in samples:
        key = (s["part"], s["target"], s["job"])
        r = out.setdefault(key, {"unit": s["unit"], "values": [], "errors": [],
                                 "maps": 0, "unmaps": 0, "seconds": 0.0, "daemon_cpu_s": 0.0,
                                 "by_round": {}})
        if s["value"] is not None:
            r["values"].append(s["value"])
            r["by_round"][s["round"]] = s["value"]
        if s["error"]:
            r["errors"].append(s["error"])
        r["maps"] += s.get("maps", 0)
        r["unmaps"] += s.get("unmaps", 0)
        r["seconds"] += s.get("seconds", 0.0)
        r["daemon_cpu_s"] += s.get("daemon_cpu_s") or 0.0
    for r in out.values():
        r["value"] = statistics.median(r["values"]) if r["values"] else None
        r["rounds"] = len(r["values"]) + (len(r["errors"]) if not r["values"] else 0)
    return out


def ratio(summary, part, a, b, job):
    """a's speed over b's on job: the median over the rounds of the ratio
    within each round (both measured minutes apart), which follows the
    machine's load better than a ratio of medians."""
    ra = (summary.get((part, a, job)) or {}).get("by_round", {})
    rb = (summary.get((part, b, job)) or {}).get("by_round", {})
    per = [ra[k] / rb[k] for k in ra if k in rb and rb[k]]
    return statistics.median(per) if per else None


def fmt_r(x):
    if x is None:
        return "-"
    return "%.3f" % x if x < 0.1 else "%.2f" % x


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def cell(r, rat=None):
    if r is None:
        return "not run"
    if r["value"] is None:
        return "ERR"
    text = fmt_value(r["value"], r["unit"])
    if rat is not None:
        text += " (%s)" % fmt_r(rat)
    return text


def host_table(summary, targets, jobs):
    names = [t["name"] for t in targets]
    fuse = [n for n in names if n != "native"]
    pds = [n for n in fuse if n.startswith("pd")]
    header = ["job", "unit"] + (["native"] if "native" in names else []) + [
        "%s (x native)" % n for n in fuse]
    if "pll" in names and pds:
        header.append("best pd / pll")
    rows = []
    for job, label, unit in jobs:
        nat = summary.get(("host", "native", job))
        row = [label, unit] + ([cell(nat)] if "native" in names else [])
        row += [cell(summary.get(("host", n, job)), ratio(summary, "host", n, "native", job))
                for n in fuse]
        if "pll" in names and pds:
            best = max((x for x in (ratio(summary, "host", n, "pll", job) for n in pds)
                        if x is not None), default=None)
            row.append(fmt_r(best))
        rows.append(row)
    return header, rows


def guest_table(summary, systems, jobs):
    names = [s["name"] for s in systems]
    header = ["job", "unit"] + names
    if "pd" in names and "virtiofsd" in names:
        header.append("pd / virtiofsd")
    daxes = [n for n in names if n.startswith(("pd-dax-", "pd-auto-"))]
    header += ["%s / pd" % n for n in daxes if "pd" in names]
    rows = []
    for job, label, unit in jobs:
        row = [label, unit] + [cell(summary.get(("guest", n, job))) for n in names]
        if "pd" in names and "virtiofsd" in names:
            row.append(fmt_r(ratio(summary, "guest", "pd", "virtiofsd", job)))
        if "pd" in names:
            row += [fmt_r(ratio(summary, "guest", n, "pd", job)) for n in daxes]
        rows.append(row)
    return header, rows


def pairs_table(summary, systems, jobs, standin):
    """Mapping setup + teardown pairs per second: the stand-in's (no guest)
    and what each DAX system's guest jobs drove through QEMU."""
    rows = []
    for s in standin:
        rows.append(["stand-in (socketpair, local window), batch %d" % s["batch"],
                     fmt_value(s.get("pairs_per_s"), "pairs/s") if s.get("pairs_per_s")
                     else "ERR: " + (s.get("error") or "?").splitlines()[0],
                     "%.1f" % s["us_per_pair"] if s.get("us_per_pair") else "-",
                     "%.1f" % s["server_cpu_us_per_pair"]
                     if s.get("server_cpu_us_per_pair") else "-"])
    for sysm in systems:
        if not sysm.get("trace"):
            continue
        for job, label, _ in jobs:
            r = summary.get(("guest", sysm["name"], job))
            if not r or not r["seconds"]:
                continue
            pairs = min(r["maps"], r["unmaps"])
            if pairs == 0:
                continue
            rows.append(["guest, %s, %s" % (sysm["name"], label),
                         fmt_value(pairs / r["seconds"], "pairs/s"),
                         "%.0f" % (r["seconds"] * 1e6 / pairs),
                         "%.0f" % (r["daemon_cpu_s"] * 1e6 / pairs)
                         if r["daemon_cpu_s"] else "-"])
    header = ["through", "pairs/s", "us per pair", "server CPU us per pair (whole job)"]
    return header, rows


# ---------------------------------------------------------------------------
# Plots


def plots(summary, base, targets, host_jobs, systems, guest_jobs):
    """Write <base>-host.png and <base>-dax.png; returns the paths written
    (none if matplotlib is missing: the caller says so)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fuse = [t["name"] for t in targets if t["name"] != "native"]
    if fuse and any(("host", "native", j[0]) in summary for j in host_jobs):
        fig, ax = plt.subplots(figsize=(11, 5))
        width = 0.8 / max(len(fuse), 1)
        for i, n in enumerate(fuse):
            ys = [ratio(summary, "host", n, "native", job) or 0 for job, _, _ in host_jobs]
            xs = [k + (i - (len(fuse) - 1) / 2) * width for k in range(len(host_jobs))]
            ax.bar(xs, ys, width, label=n)
        ax.set_yscale("log")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(host_jobs)))
        ax.set_xticklabels([j[1].replace(" (", "\n(") for j in host_jobs], fontsize=8)
        ax.set_ylabel("speed / native (log scale; 1 = native)")
        ax.set_title("Host: each FUSE server's speed as a ratio to native, per job")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(base + "-host.png", dpi=100)
        plt.close(fig)
        written.append(base + "-host.png")
    names = [s["name"] for s in systems]
    bars = [n for n in names if n != "pd"]
    if "pd" in names and bars:
        fig, ax = plt.subplots(figsize=(11, 5))
        width = 0.8 / len(bars)
        for i, n in enumerate(bars):
            ys = [ratio(summary, "guest", n, "pd", job) or 0 for job, _, _ in guest_jobs]
            xs = [k + (i - (len(bars) - 1) / 2) * width for k in range(len(guest_jobs))]
            label = n if n != "virtiofsd" else "QEMU virtiofsd 7.2 (no DAX)"
            ax.bar(xs, ys, width, label=label)
        ax.set_yscale("log")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.axhline(10.0, color="gray", linewidth=0.6, linestyle="--")
        ax.set_xticks(range(len(guest_jobs)))
        ax.set_xticklabels([j[1].replace(" (", "\n(") for j in guest_jobs], fontsize=8)
        ax.set_ylabel("speed / passthrough_dax without DAX (log scale)")
        ax.set_title("Guest (TCG): DAX vs no DAX per window size")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(base + "-dax.png", dpi=100)
        plt.close(fig)
        written.append(base + "-dax.png")
    return written


def write(base, meta, targets, host_jobs, systems, guest_jobs, skipped, samples, standin,
          meta_lines, want_plots=True):
    """Write <base>.json, <base>.md and the plots. Returns (md text, plot
    paths, plot problem or None)."""
    summary = summarize(samples)
    md = ["# fusedax bench %s" % meta["date"], ""] + meta_lines + [""]
    if targets:
        md += ["## Host", "", "Targets:", ""]
        md += ["- `%s`: %s" % (t["name"], t["desc"]) for t in targets]
        header, rows = host_table(summary, targets, host_jobs)
        md += ["", "Each cell: the median over the rounds, and in brackets the median of "
               "each round's ratio to native. `best pd / pll`: the best passthrough_dax "
               "mode's per-round ratio to passthrough_ll (the median).", "",
               md_table(header, rows), ""]
    if systems:
        md += ["## Guest (QEMU TCG: compare ratios only)", "", "Systems:", ""]
        md += ["- `%s`: %s" % (s["name"], s["desc"]) for s in systems]
        header, rows = guest_table(summary, systems, guest_jobs)
        md += ["", "Values: medians over the rounds. Ratio columns: the median of each "
               "round's ratio.", "", md_table(header, rows), ""]
    if standin or any(s.get("trace") for s in systems):
        header, rows = pairs_table(summary, systems, guest_jobs, standin)
        if rows:
            md += ["## DAX mapping setup + teardown pairs", "", md_table(header, rows), ""]
    if skipped:
        md += ["Not run:", ""] + ["- `%s`: %s" % (s["name"], s["reason"].splitlines()[0])
                                  for s in skipped] + [""]
    errs = [s for s in samples if s["error"]]
    if errs:
        md += ["Failed measurements:", ""]
        md += ["- %s %s %s round %d: %s" % (s["part"], s["target"], s["job"], s["round"],
                                            s["error"].splitlines()[0]) for s in errs]
        md.append("")
    written, problem = [], None
    if want_plots:
        try:
            written = plots(summary, base, targets, host_jobs, systems, guest_jobs)
        except ImportError as e:
            problem = "no plots: %s (apt-get install python3-matplotlib, and run with " \
                      "/usr/bin/python3)" % e
    if written:
        md += ["Plots: " + ", ".join("`%s`" % os.path.basename(p) for p in written), ""]
    elif problem:
        md += [problem, ""]
    text = "\n".join(md)
    with open(base + ".md", "w") as f:
        f.write(text)
    with open(base + ".json", "w") as f:
        json.dump({"meta": meta, "skipped": skipped, "samples": samples, "standin": standin,
                   "targets": [{"name": t["name"], "desc": t["desc"]} for t in targets],
                   "systems": [{"name": s["name"], "desc": s["desc"]} for s in systems]},
                  f, indent=1)
        f.write("\n")
    return text, written, problem
