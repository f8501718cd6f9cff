"""A release's card on the Hub across versions: our fields and text merged with what people added there, and a
changelog entry per version (counts, model and configuration against the previous tag)."""

from __future__ import annotations

import re

from codelutra_data.builders.release.read import Release

CARD_START, CARD_END = "<!-- codelutra-data:card:start -->", "<!-- codelutra-data:card:end -->"
LOG_START, LOG_END = "<!-- codelutra-data:changelog:start -->", "<!-- codelutra-data:changelog:end -->"
# Card fields that describe the data: ours replace the Hub's. Every other field is the user's and survives.
OWNED_FIELDS = ("configs", "license", "size_categories", "source_datasets", "task_categories")
# Stats compared between versions in the changelog, where both builds have them.
_COMPARED_STATS = ("tasks", "samples", "pairs", "trajectories", "focal_pairs", "sft_conversations", "pass_rate",
                   "final_solve_rate")


def merge_metadata(remote: dict, ours: dict) -> dict:
    """The Hub card's fields with ours laid over the data-describing ones; tags are the union."""
    merged = dict(remote)
    for key in OWNED_FIELDS:
        if key in ours:
            merged[key] = ours[key]
    if "tags" in ours:
        theirs = [t for t in (remote.get("tags") or []) if isinstance(t, str)]
        merged["tags"] = theirs + [t for t in ours["tags"] if t not in theirs]
    for key, value in ours.items():
        merged.setdefault(key, value)
    return merged


def _between(text: str, start: str, end: str) -> tuple[str, str, str] | None:
    i, j = text.find(start), text.find(end)
    if i == -1 or j == -1 or j < i:
        return None
    return text[:i], text[i + len(start):j], text[j + len(end):]


def merge_body(remote_body: str, ours: str, entry: str) -> str:
    """Our card between markers, the user's text around it kept, and the changelog with the new entry first."""
    old_entries = ""
    log = _between(remote_body, LOG_START, LOG_END)
    if log is not None:
        before, old_entries, after = log
        before = re.sub(r"\n*## Changelog\s*$", "\n", before)
        remote_body = before.rstrip("\n") + "\n" + after.lstrip("\n")
    card = _between(remote_body, CARD_START, CARD_END)
    if card is not None:
        prefix, _, suffix = card
    else:  # a card written by hand (or the Hub's default): ours goes first, theirs is kept below
        prefix, suffix = "", remote_body
    changelog = f"## Changelog\n\n{LOG_START}\n{entry.strip()}\n\n{old_entries.strip()}".rstrip() + f"\n{LOG_END}\n"
    parts = [prefix.strip("\n"), f"{CARD_START}\n{ours.strip()}\n{CARD_END}", changelog, suffix.strip("\n")]
    return "\n\n".join(p for p in parts if p) + "\n"


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def changelog_entry(release: Release, previous: dict | None, previous_tag: str | None, date: str) -> str:
    """What changed in this version: counts, model, and the build config against the previous tag."""
    lines = [f"### {release.tag} ({date}, build `{release.build_id}`)", ""]
    lines.append("- rows: " + ", ".join(f"{k} {v}" for k, v in release.rows.items()))
    stats, old_stats = release.info.get("stats") or {}, (previous or {}).get("stats") or {}
    compared = []
    for key in _COMPARED_STATS:
        if isinstance(stats.get(key), (int, float)):
            value = f"{stats[key]:.1%}" if key.endswith("rate") else str(stats[key])
            if isinstance(old_stats.get(key), (int, float)) and old_stats[key] != stats[key]:
                old = f"{old_stats[key]:.1%}" if key.endswith("rate") else str(old_stats[key])
                value += f" ({previous_tag}: {old})"
            compared.append(f"{key} {value}")
    if compared:
        lines.append("- " + ", ".join(compared))
    model = release.info.get("model") or {}
    model_text = f"`{model.get('model_id')}` (revision `{model.get('revision')}`)"
    old_model = (previous or {}).get("model") or {}
    if previous is not None and (old_model.get("model_id"), old_model.get("revision")) != \
            (model.get("model_id"), model.get("revision")):
        model_text += f", was `{old_model.get('model_id')}` (revision `{old_model.get('revision')}`)"
    lines.append(f"- model: {model_text}")
    if previous is None:
        lines.append("- first release in this repository" if previous_tag is None else
                     f"- config: {previous_tag} has no build_config.yaml to compare with")
    else:
        new, old = _flat(release.info.get("config") or {}), _flat(previous.get("config") or {})
        changes = [f"`{k}` {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(new) | set(old))
                   if k != "version" and new.get(k) != old.get(k)]
        lines.append(f"- config vs {previous_tag}: " + ("; ".join(changes) if changes else "unchanged"))
    return "\n".join(lines)
