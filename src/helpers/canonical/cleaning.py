"""Step 02, first part: from conformed sources to clean canonical tables, with every record accounted for.

Per entity, the sources that feed it are stacked and cleaned by set-based SQL (both engines run it):

1. **Exact duplicates**: a record identical to an earlier one of the same source, in every column of the file,
   is merged into it.
2. **Quarantine**: a record whose *required* value failed its check (see :mod:`helpers.canonical.conform`) is
   quarantined with the reason; a failed *optional* value was already set to missing.
3. **Missing customer**: a transaction without a customer is kept as a guest order (counted in revenue, not in
   customer analyses) or quarantined, by the source's ``rules.missing_customer``.
4. **Conflicting duplicates**: records repeating the entity's key with different values follow the source's
   ``rules.duplicates``: ``latest`` (default; per field, the latest non-empty value wins, ordered by
   ``updated_at`` when mapped, else by position in the file), ``first``, or ``quarantine`` (the whole group, when
   any field disagrees). A withdrawal of marketing consent always wins, whatever the rule.
5. **References**: a record pointing to a record of another entity that does not exist, or was quarantined,
   is quarantined (``rules.references: ignore`` turns this off).

For every source the **row balance** must hold:
``records in the file = kept + duplicates merged + quarantined + unreadable``,
where each term is counted from a different place (the reader, the dedup steps, the quarantine table and the
final tables), so a row lost anywhere shows up as an unbalanced source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from helpers.canonical.engine import Engine
from helpers.core.model import ENTITIES, Entity
from helpers.sources.catalog import Catalog

ROW = "_row"
QUARANTINE_COLUMNS = ["source", "file", ROW, "column", "value", "rule", "reason", "problems", "record"]
ENTITY_ORDER = ["customers", "products", "fx_rates", "campaigns", "orders", "order_lines", "returns", "events",
                "sends", "feedback", "assignments"]


@dataclass
class CleanState:
    """Tables and accounting built while cleaning; the engine holds ``clean__<entity>`` tables."""

    catalog: Catalog
    labels: dict[str, str]
    problems: list[pd.DataFrame] = field(default_factory=list)  # source, _row, column, value, rule, reason
    exact_duplicates: dict[str, int] = field(default_factory=dict)
    key_duplicates: dict[str, int] = field(default_factory=dict)
    conflicts: list[dict] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)

    def add_problems(self, frame: pd.DataFrame) -> None:
        if len(frame):
            self.problems.append(frame[["source", ROW, "column", "value", "rule", "reason"]])


def entity_columns(engine: Engine, catalog: Catalog, entity: Entity) -> list[str]:
    """Roles of ``entity`` that at least one of its sources maps (plus pass-through columns)."""
    cols: list[str] = []
    for spec in catalog.by_entity(entity.name):
        for c in engine.columns(f"typed__{spec.name}"):
            if c not in cols and not c.startswith("_"):
                cols.append(c)
    ordered = [r for r in entity.roles if r in cols]
    return ordered + [c for c in cols if c not in ordered]


def union_sql(engine: Engine, catalog: Catalog, entity: Entity, columns: list[str]) -> str:
    """All sources of an entity stacked, each missing role as a typed NULL."""
    d = engine.dialect
    parts = []
    for spec in catalog.by_entity(entity.name):
        have = set(engine.columns(f"typed__{spec.name}"))
        sel = ["_source", "_source_order", ROW, "_hash", "_reversal"]
        for c in columns:
            if c in have:
                sel.append(d.q(c))
            else:
                kind = entity.roles[c].type if c in entity.roles else "text"
                sel.append(f"{d.null_of(kind)} AS {d.q(c)}")
        parts.append(f"SELECT {', '.join(sel)} FROM {d.q('typed__' + spec.name)}")
    return " UNION ALL ".join(parts)


def _rule_of(catalog: Catalog, entity: str, attr: str) -> dict[str, object]:
    return {s.name: getattr(s.rules, attr) for s in catalog.by_entity(entity)}


def clean_entity(engine: Engine, state: CleanState, entity: Entity) -> None:
    """Build ``clean__<entity>`` from its typed sources (steps 1–4; references come after all entities)."""
    d = engine.dialect
    catalog = state.catalog
    name = entity.name
    columns = entity_columns(engine, catalog, entity)
    engine.create(f"union__{name}", union_sql(engine, catalog, entity, columns))
    # 1. exact duplicates within a source
    engine.create(f"ranked__{name}", f"SELECT *, CAST(row_number() OVER (PARTITION BY _source, _hash ORDER BY {ROW}) "
                                     f"AS BIGINT) AS _copy FROM {d.q('union__' + name)}")
    dups = engine.frame(f"SELECT _source, count(*) AS n FROM {d.q('ranked__' + name)} WHERE _copy > 1 GROUP BY 1")
    for src, n in zip(dups["_source"], dups["n"]):
        state.exact_duplicates[src] = state.exact_duplicates.get(src, 0) + int(n)
    # 2. rows with a failed required value
    base = (f"SELECT r.* FROM {d.q('ranked__' + name)} r WHERE r._copy = 1 AND NOT EXISTS (SELECT 1 FROM "
            f"{d.q('rejected')} q WHERE q.source = r._source AND q.{ROW} = r.{ROW})")
    # 3. transactions without a customer
    if name in ("orders", "order_lines") and "customer_id" in columns:
        quarantine_guests = [s for s, rule in _rule_of(catalog, name, "missing_customer").items()
                             if rule == "quarantine"]
        applies = name == "orders" or not catalog.by_entity("orders")
        if quarantine_guests and applies:
            who = " AND ".join(f"r.{d.q(c)} IS NULL" for c in ("customer_id", "person_id", "email") if c in columns)
            srcs = ", ".join(d.lit(s) for s in quarantine_guests)
            guest = f"({who} AND r._source IN ({srcs}))"
            guests = engine.frame(f"SELECT r._source AS source, r.{ROW} FROM ({base}) AS r WHERE {guest}")
            if len(guests):
                state.add_problems(guests.assign(column="customer_id", value=None, rule="missing_customer",
                                                 reason="expected a customer; rules.missing_customer is quarantine"))
                base += f" AND NOT {guest}"
    engine.create(f"valid__{name}", base)
    engine.drop(f"ranked__{name}")
    # 4. conflicting duplicates of the key
    key = [k for k in entity.key if k in columns]
    if key and len(key) == len(entity.key):
        _merge_key_duplicates(engine, state, entity, columns, key)
        engine.drop(f"keyed__{name}")  # identity makes the keyed tables later, with the customer key
    else:
        engine.create(f"clean__{name}", f"SELECT * FROM {d.q('valid__' + name)}")
    engine.drop(f"valid__{name}")
    state.entities.append(name)


def _merge_key_duplicates(engine: Engine, state: CleanState, entity: Entity, columns: list[str],
                          key: list[str]) -> None:
    d = engine.dialect
    name = entity.name
    keys = ", ".join(d.q(k) for k in key)
    not_null = " AND ".join(f"{d.q(k)} IS NOT NULL" for k in key)
    order = (f"{d.q('updated_at')} ASC NULLS FIRST, " if "updated_at" in columns else "") + f"_source_order, {ROW}"
    engine.create(f"keyed__{name}", f"SELECT *, count(*) OVER (PARTITION BY {keys}) AS _n, row_number() OVER "
                                    f"(PARTITION BY {keys} ORDER BY {order}) AS _ord FROM {d.q('valid__' + name)} "
                                    f"WHERE {not_null}")
    others = [c for c in columns if c not in key]
    conflict_cols = [c for c in others if c not in ("updated_at",)]
    if not engine.scalar(f"SELECT count(*) FROM {d.q('keyed__' + name)} WHERE _n > 1"):
        engine.create(f"clean__{name}", f"SELECT * FROM {d.q('valid__' + name)}")
        return
    # Which fields disagree in each group (non-empty values only).
    diffs = ", ".join(f"CASE WHEN count(DISTINCT {d.q(c)}) > 1 THEN {d.lit(c)} END AS {d.q('d__' + c)}"
                      for c in conflict_cols) or "NULL AS d__none"
    groups = engine.frame(f"SELECT {keys}, min(_source) AS _source, count(*) AS _n, {diffs} FROM "
                          f"{d.q('keyed__' + name)} WHERE _n > 1 GROUP BY {keys}")
    dcols = [c for c in groups.columns if c.startswith("d__")]
    groups["fields"] = groups[dcols].apply(lambda r: ", ".join(v for v in r if isinstance(v, str)), axis=1)
    rules = _rule_of(state.catalog, name, "duplicates")
    groups["rule"] = groups["_source"].map(rules).fillna("latest")
    conflicting = groups[(groups["rule"] == "quarantine") & (groups["fields"] != "")]
    for _, r in groups.iterrows():
        state.conflicts.append({"entity": name, "key": "/".join(str(r[k]) for k in key),
                                "copies": int(r["_n"]), "fields": r["fields"] or "(none)", "rule": r["rule"]})
    q_cond = "FALSE"
    if len(conflicting):
        engine.register_frame(f"conflict__{name}", conflicting[key + ["fields"]].reset_index(drop=True))
        join = " AND ".join(f"k.{d.q(c)} = c.{d.q(c)}" for c in key)
        rows = engine.frame(f"SELECT k._source AS source, k.{ROW}, c.fields FROM {d.q('keyed__' + name)} k JOIN "
                            f"{d.q('conflict__' + name)} c ON {join}")
        first_key = key[0]
        vals = engine.frame(f"SELECT k._source AS source, k.{ROW}, CAST(k.{d.q(first_key)} AS {d.sql_type('text')}) AS value "
                            f"FROM {d.q('keyed__' + name)} k JOIN {d.q('conflict__' + name)} c ON {join}")
        rows = rows.merge(vals, on=["source", ROW])
        rows["column"] = "+".join(key)
        rows["rule"] = "conflicting_duplicate"
        rows["reason"] = ("expected one version of " + name + " " + rows["value"].astype(str) + "; copies disagree on "
                          + rows["fields"] + " (rules.duplicates is quarantine)")
        state.add_problems(rows)
        q_cond = f"EXISTS (SELECT 1 FROM {d.q('conflict__' + name)} c WHERE {join.replace('k.', 'x.')})"
    agg = []
    for c in others:
        if c == "marketing_consent":
            agg.append(f"bool_and({d.q(c)}) AS {d.q(c)}")  # a withdrawal of consent always wins
        elif rules and all(r == "first" for r in rules.values()):
            agg.append(f"{d.arg_max(d.q(c), '-_ord')} AS {d.q(c)}")
        else:
            agg.append(f"{d.arg_max(d.q(c), f'CASE WHEN {d.q(c)} IS NOT NULL THEN _ord END')} AS {d.q(c)}")
    meta = (f"{d.arg_max('_source', '-_ord')} AS _source, min(_source_order) AS _source_order, "
            f"{d.arg_max(ROW, '-_ord')} AS {ROW}, {d.arg_max('_hash', '-_ord')} AS _hash, "
            f"bool_or(_reversal) AS _reversal, count(*) AS _copies")
    merged = (f"SELECT {meta}, {', '.join(d.q(k) for k in key)}{', ' if agg else ''}{', '.join(agg)} FROM "
              f"{d.q('keyed__' + name)} x WHERE NOT ({q_cond}) GROUP BY {keys}")
    engine.create(f"merged__{name}", merged)
    dup = engine.frame(f"SELECT _source, sum(_copies - 1) AS n FROM {d.q('merged__' + name)} GROUP BY 1")
    for src, n in zip(dup["_source"], dup["n"]):
        state.key_duplicates[src] = state.key_duplicates.get(src, 0) + int(n)
    cols = ", ".join(["_source", "_source_order", ROW, "_hash", "_reversal"] + [d.q(c) for c in columns])
    engine.create(f"clean__{name}", f"SELECT {cols} FROM {d.q('merged__' + name)} UNION ALL SELECT {cols} FROM "
                                    f"{d.q('valid__' + name)} WHERE NOT ({not_null})")


def enforce_references(engine: Engine, state: CleanState, entity: Entity, targets: dict[str, str] | None = None
                       ) -> None:
    """Quarantine rows whose reference points to no kept row of the target entity."""
    d = engine.dialect
    name = entity.name
    rules = _rule_of(state.catalog, name, "references")
    checked = [s for s, r in rules.items() if r == "check"]
    if not checked:
        return
    cols = engine.columns(f"clean__{name}")
    for role, target in entity.references.items():
        t_entity, t_role = target.split(".")
        t_table = (targets or {}).get(t_entity, f"clean__{t_entity}")
        if role not in cols or not engine.exists(t_table) or t_role not in engine.columns(t_table):
            continue
        srcs = ", ".join(d.lit(s) for s in checked)
        miss = (f"SELECT r._source AS source, r.{ROW}, r.{d.q(role)} AS value FROM {d.q('clean__' + name)} r WHERE "
                f"r.{d.q(role)} IS NOT NULL AND r._source IN ({srcs}) AND NOT EXISTS (SELECT 1 FROM {d.q(t_table)} t "
                f"WHERE t.{d.q(t_role)} = r.{d.q(role)})")
        bad = engine.frame(miss)
        if bad.empty:
            continue
        seen = set()
        if engine.exists(f"union__{t_entity}"):
            seen = set(engine.frame(f"SELECT DISTINCT CAST({d.q(t_role)} AS {d.sql_type('text')}) AS v FROM "
                                    f"{d.q('union__' + t_entity)}")["v"].dropna())
        bad["column"] = role
        bad["rule"] = "reference"
        bad["reason"] = [f"expected an existing {t_entity}.{t_role}; {v!r} "
                         + ("was quarantined" if str(v) in seen else "does not exist") for v in bad["value"]]
        state.add_problems(bad)
        engine.register_frame(f"badref__{name}", bad[["source", ROW]].reset_index(drop=True))
        engine.create(f"clean__{name}", f"SELECT * FROM {d.q('clean__' + name)} r WHERE NOT EXISTS (SELECT 1 FROM "
                                        f"{d.q('badref__' + name)} b WHERE b.source = r._source AND b.{ROW} = r.{ROW})")


def start(engine: Engine, catalog: Catalog, labels: dict[str, str], violations: pd.DataFrame) -> CleanState:
    """Register what step 01 staged and the rows its checks reject."""
    state = CleanState(catalog, labels)
    rejected = violations[violations["action"] == "reject"] if len(violations) else violations
    state.add_problems(rejected)
    frame = rejected[["source", ROW]].drop_duplicates().reset_index(drop=True) if len(rejected) else \
        pd.DataFrame({"source": pd.Series(dtype="string"), ROW: pd.Series(dtype="int64")})
    engine.register_frame("rejected", frame)
    return state


def clean_all(engine: Engine, state: CleanState, staged_typed: dict[str, str]) -> None:
    """Clean every entity that has a source, in dependency order, then enforce references."""
    for name, path in staged_typed.items():
        engine.register_parquet(f"typed__{name}", path)
    for name in ENTITY_ORDER:
        if state.catalog.by_entity(name):
            clean_entity(engine, state, ENTITIES[name])
            if name != "order_lines" or state.catalog.by_entity("orders"):
                enforce_references(engine, state, ENTITIES[name])


def quarantine_table(engine: Engine, state: CleanState, unreadable: pd.DataFrame) -> pd.DataFrame:
    """One row per quarantined record: its first problem, how many it has, and the raw record as JSON."""
    d = engine.dialect
    parts = [p for p in state.problems if len(p)]
    if parts:
        probs = pd.concat(parts, ignore_index=True).astype({ROW: "int64"})
        probs = probs.sort_values(["source", ROW], kind="stable")
        first = probs.groupby(["source", ROW], sort=True).agg(
            column=("column", "first"), value=("value", "first"), rule=("rule", "first"),
            reason=("reason", "first"), problems=("rule", "size")).reset_index()
        records = []
        for src, g in first.groupby("source"):
            engine.register_frame("q_rows", g[[ROW]].reset_index(drop=True))
            raw = engine.frame(f"SELECT r.* FROM {d.q('raw__' + src)} r JOIN q_rows q ON q.{ROW} = r.{ROW}")
            recs = raw.set_index(ROW).astype(object).where(raw.set_index(ROW).notna(), None).to_dict("index")
            records.append(pd.DataFrame({"source": src, ROW: list(recs), "record": [
                json.dumps(v, ensure_ascii=False, sort_keys=True) for v in recs.values()]}))
        rec = pd.concat(records, ignore_index=True) if records else pd.DataFrame(columns=["source", ROW, "record"])
        first = first.merge(rec.astype({ROW: "int64"}), on=["source", ROW], how="left")
        first["file"] = first["source"].map(state.labels)
    else:
        first = pd.DataFrame(columns=QUARANTINE_COLUMNS)
    if len(unreadable):
        extra = pd.DataFrame({"source": unreadable["source"], "file": unreadable["file"],
                              ROW: unreadable[ROW].astype("int64"), "column": "(whole record)",
                              "value": unreadable["raw"].astype("string").str.slice(0, 120), "rule": "unreadable",
                              "reason": unreadable["reason"], "problems": 1, "record": unreadable["raw"]})
        first = pd.concat([first, extra], ignore_index=True)
    out = first[QUARANTINE_COLUMNS].astype({ROW: "int64", "problems": "int64"}) if len(first) else \
        pd.DataFrame({c: pd.Series(dtype="int64" if c in (ROW, "problems") else "string") for c in QUARANTINE_COLUMNS})
    return out.sort_values(["source", ROW], kind="stable").reset_index(drop=True)


def balance(engine: Engine, state: CleanState, accounting: pd.DataFrame, quarantine: pd.DataFrame,
            final_tables: dict[str, str]) -> pd.DataFrame:
    """Per source: records in the file = kept + duplicates merged + quarantined + unreadable.

    ``final_tables`` maps each entity to the engine table its kept rows end in (so rows moved between
    entities, such as reversal lines becoming refunds, are still found).
    """
    d = engine.dialect
    kept: dict[str, int] = {}
    for entity, table in final_tables.items():
        if engine.exists(table) and "_source" in engine.columns(table):
            df = engine.frame(f"SELECT _source, count(*) AS n FROM {d.q(table)} WHERE _source IS NOT NULL GROUP BY 1")
            for s, n in zip(df["_source"], df["n"]):
                kept[s] = kept.get(s, 0) + int(n)
    q = quarantine[quarantine["rule"] != "unreadable"].groupby("source")[ROW].nunique() if len(quarantine) else {}
    rows = []
    for r in accounting.itertuples():
        exact, key = state.exact_duplicates.get(r.source, 0), state.key_duplicates.get(r.source, 0)
        quarantined = int(q.get(r.source, 0)) if len(quarantine) else 0
        rows.append({"source": r.source, "entity": r.entity, "file": r.file, "records_in": int(r.records),
                     "kept": kept.get(r.source, 0), "duplicates_merged": exact + key, "exact_duplicates": exact,
                     "key_duplicates": key, "quarantined": quarantined, "unreadable": int(r.unreadable),
                     "blank_lines": int(r.blank_lines)})
    out = pd.DataFrame(rows)
    out["balanced"] = out["records_in"] == out["kept"] + out["duplicates_merged"] + out["quarantined"] + \
        out["unreadable"]
    return out


def conflicts_table(state: CleanState) -> pd.DataFrame:
    """The key groups that had more than one record, what differed and which rule settled it."""
    return pd.DataFrame(state.conflicts, columns=["entity", "key", "copies", "fields", "rule"])
