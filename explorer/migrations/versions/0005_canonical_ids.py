"""One id per network: every stored architecture gets the id of its canonical config.

Configs are canonical since this revision: a knob the network does not use (the attention knobs
of a stage without blocks, ``scales`` without multi-scale attention, ...) takes one value, so
twins that differ only in such knobs, stored under several ids before, now share one. Each row of
``architectures`` whose id changes moves to the canonical id (config stored in canonical form);
when that id is already stored, the two rows merge into it (the name of either is kept). Every
table with an ``arch_id`` column follows, and so do the training sets of stored predictors and the
ids their metrics name (held-out points), so no measurement is lost. Where a moved row would
repeat a unique key of the row already there: a cached proxy score is the same score of the same
network and the canonical one stays; an accuracy result keeps both, the moved one with its old
id in its source. A row whose id is not the id of
its stored knobs (not stored by this tool), or whose config this version cannot read, keeps its id.

Revision ID: 0005
Revises: 0003
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None

#: what a moved row that repeats a unique key becomes, by table (others have no such key)
DROP_REPEATS = ("proxy_scores",)
TAG_REPEATS = {"accuracy_results": "source"}


def _json(value):
    if value is None or isinstance(value, (dict, list)):
        return value
    return json.loads(value)


def _renamed(value, renamed: dict[str, str]):
    """``value`` (JSON) with every string that is a moved id replaced by its canonical id."""
    if isinstance(value, dict):
        return {key: _renamed(item, renamed) for key, item in value.items()}
    if isinstance(value, list):
        return [_renamed(item, renamed) for item in value]
    return renamed.get(value, value) if isinstance(value, str) else value


def canonical_moves(rows) -> dict[str, tuple[str, dict]]:
    """Old id -> (canonical id, canonical config JSON) of every stored row whose id changes."""
    # here, not at the top: opening a database reads every migration script to find the newest
    from explorer.architectures import config_from_dict
    from search_spaces.base import KnobError, arch_id, written_id

    moves = {}
    for row in rows:
        knobs = _json(row.config_json)
        try:
            if written_id(knobs) != row.arch_id:  # not stored by this tool under its knobs' id: left alone
                continue
            config = config_from_dict(knobs)
        except (KnobError, TypeError):
            continue
        key = arch_id(config)
        if key != row.arch_id:
            moves[row.arch_id] = (key, {"space": config.space, **config.to_dict()})
    return moves


def _unique_keys(inspector, table: str) -> list[list[str]]:
    return [c["column_names"] for c in inspector.get_unique_constraints(table) if "arch_id" in c["column_names"]]


def _repoint(bind, table: sa.Table, keys: list[list[str]], old: str, new: str) -> None:
    """Move ``table``'s rows of ``old`` to ``new`` (see module docstring for repeated keys)."""
    for row in bind.execute(sa.select(table).where(table.c.arch_id == old)).mappings().all():
        repeats = any(bind.execute(sa.select(sa.func.count()).select_from(table).where(
            table.c.arch_id == new, *(table.c[c] == row[c] for c in key if c != "arch_id"))).scalar()
            for key in keys)
        where = [table.c[c] == row[c] for c in (table.primary_key.columns.keys() or row.keys())]
        if repeats and table.name in DROP_REPEATS:
            bind.execute(sa.delete(table).where(*where))
            continue
        values = {"arch_id": new}
        if repeats and table.name in TAG_REPEATS:
            column = TAG_REPEATS[table.name]
            values[column] = f"{row[column]} (stored as architecture {old})"
        bind.execute(sa.update(table).where(*where).values(**values))


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    metadata = sa.MetaData()
    archs = sa.Table("architectures", metadata, autoload_with=bind)
    rows = bind.execute(sa.select(archs.c.arch_id, archs.c.config_json)).all()
    moves = canonical_moves(rows)
    if not moves:
        return
    stored = {row.arch_id for row in rows}
    referencing = [sa.Table(name, metadata, autoload_with=bind) for name in inspector.get_table_names()
                   if name != "architectures" and "arch_id" in {c["name"] for c in inspector.get_columns(name)}]
    for old, (new, config_json) in moves.items():
        row = bind.execute(sa.select(archs).where(archs.c.arch_id == old)).mappings().one()
        if new in stored:
            if row["name"]:
                bind.execute(sa.update(archs).where(archs.c.arch_id == new, archs.c.name.is_(None))
                             .values(name=row["name"]))
        else:
            bind.execute(sa.insert(archs).values({**row, "arch_id": new, "config_json": config_json}))
            stored.add(new)
        for table in referencing:
            _repoint(bind, table, _unique_keys(inspector, table.name), old, new)
        bind.execute(sa.delete(archs).where(archs.c.arch_id == old))
    renamed = {old: new for old, (new, _) in moves.items()}
    predictors = sa.Table("predictors", metadata, autoload_with=bind)
    for row in bind.execute(sa.select(predictors.c.id, predictors.c.training_arch_ids, predictors.c.metrics)).all():
        ids, metrics = _json(row.training_arch_ids) or [], _json(row.metrics) or {}
        values = {"training_arch_ids": list(dict.fromkeys(renamed.get(i, i) for i in ids)),
                  "metrics": _renamed(metrics, renamed)}  # held-out points name their architectures
        if values != {"training_arch_ids": ids, "metrics": metrics}:
            bind.execute(sa.update(predictors).where(predictors.c.id == row.id).values(**values))


def downgrade() -> None:
    """Canonical ids stay: they are ids of valid configs, which older versions read as they are."""
