"""The engines that run the workbench's set-based transformations: DuckDB (embedded, the default) and Spark.

Every heavy transformation (typing, validation, cleaning, netting, the 360° table, RFM summaries…) is defined
once, as a Python function that writes SQL through a :class:`Dialect`. The dialect supplies the handful of
functions whose names or formats differ between engines (regular expressions, date parsing, time zones,
medians); everything else is the SQL both engines share. An :class:`Engine` runs that SQL over Parquet files
and writes its results back to Parquet, so the notebooks read the same files whichever engine made them.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from helpers.core.threads import SMALL_INPUT_BYTES

ENGINES = ("duckdb", "spark")
# Below SMALL_INPUT_BYTES of registered Parquet input the embedded engine runs on one thread: on a few megabytes
# DuckDB's threads spend more CPU synchronising than computing (step 02 on the default sample: 12.3 CPU s on one
# thread, 14.8 on two). Past it, every core works. CIW_THREADS fixes the number instead.

# Past this much registered Parquet input, the embedded engine keeps each table it creates as a compressed Parquet
# file in its private folder (read back through a view) instead of in its in-memory database: past the memory
# limit DuckDB spills in-memory tables uncompressed, and a million customers' step 02 filled 47 GB of disk so.
LARGE_INPUT_BYTES = 2**30
# The embedded engine's default memory limit (CIW_MEMORY_LIMIT overrides); beyond it, it spills. Step 02 at 50,000
# customers: peak 1,503 MiB at 1GB, 1,331 at 768MB, 1,126 at 512MB, for 84, 87 and 86 CPU s (the same, within noise).
DUCKDB_MEMORY = "768MB"


def engine_memory_limit() -> str:
    """The embedded engine's memory limit: ``CIW_MEMORY_LIMIT`` if set, else :data:`DUCKDB_MEMORY`."""
    return os.environ.get("CIW_MEMORY_LIMIT") or DUCKDB_MEMORY
SPARK_LOG_CONFIG = Path(__file__).resolve().parents[1] / "resources" / "spark-log4j2.properties"


def lit(value: object) -> str:
    """A SQL literal.

    >>> lit("it's"), lit(None), lit(2.5), lit(True)
    ("'it''s'", 'NULL', '2.5', 'TRUE')
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(float(value)) if isinstance(value, float) else str(value)
    return "'" + str(value).replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier (backticks are replaced for Spark by the dialect)."""
    return '"' + str(name).replace('"', '""') + '"'


_STRFTIME_TO_JAVA = [("%Y", "yyyy"), ("%y", "yy"), ("%m", "MM"), ("%d", "dd"), ("%H", "HH"), ("%I", "hh"),
                     ("%M", "mm"), ("%S", "ss"), ("%p", "a"), ("%f", "SSSSSS"), ("%b", "MMM"), ("%B", "MMMM"),
                     ("%j", "DDD"), ("%z", "XX"), ("%Z", "z")]


def strftime_to_java(fmt: str) -> str:
    """A strptime format as a Java/Spark datetime pattern.

    >>> strftime_to_java("%d.%m.%Y %H:%M"), strftime_to_java("%Y-%m-%dT%H:%M:%SZ")
    ('dd.MM.yyyy HH:mm', "yyyy-MM-dd'T'HH:mm:ss'Z'")
    """
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            code = fmt[i:i + 2]
            java = dict(_STRFTIME_TO_JAVA).get(code)
            if java is None:
                raise ValueError(f"date format code {code} is not supported on Spark")
            out.append(java)
            i += 2
            continue
        ch = fmt[i]
        out.append(f"'{ch}'" if ch.isalpha() else ("''" if ch == "'" else ch))
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class Dialect:
    """The functions whose SQL differs between engines."""

    name: str

    def lit(self, value: object) -> str:
        """A literal; Spark SQL treats backslashes in strings as escapes, so they are doubled there."""
        if self.name == "spark" and isinstance(value, str):
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return lit(value)

    def q(self, name: str) -> str:
        """Quote an identifier."""
        if self.name == "spark":
            return "`" + str(name).replace("`", "``") + "`"
        return ident(name)

    def cat(self, *parts: str) -> str:
        """String concatenation that is NULL when any part is NULL (DuckDB's concat() skips NULLs; || does not)."""
        if self.name == "spark":
            return f"concat({', '.join(parts)})"
        return "(" + " || ".join(parts) + ")"

    def sql_type(self, role_type: str) -> str:
        """The column type that holds a role of type ``role_type`` (see :mod:`helpers.core.model`)."""
        kind = {"number": "DOUBLE", "integer": "DOUBLE", "money": "DOUBLE", "boolean": "BOOLEAN",
                "datetime": "TIMESTAMP", "date": "DATE"}.get(role_type, "VARCHAR")
        if self.name == "spark":
            return {"VARCHAR": "STRING", "TIMESTAMP": "TIMESTAMP_NTZ"}.get(kind, kind)
        return kind

    def exact_sum(self, expr: str) -> str:
        """A sum of money that gives the same result whatever the order of the rows: summing doubles in
        parallel threads changes the last bits from run to run, so the sum runs on DECIMAL(38, 6) (exact to a
        millionth, up to 10^32) and comes back as a double."""
        return f"CAST(sum(CAST({expr} AS DECIMAL(38, 6))) AS DOUBLE)"

    def round_money(self, expr: str, digits: int = 2) -> str:
        """``expr`` rounded commercially (half away from zero) to ``digits`` decimals, the same on every engine.

        Rounding the double itself differs between engines (DuckDB rounds the binary value, so 63.495 stored as
        63.49499… gives 63.49; Spark goes through its decimal text and gives 63.50); the decimal a person would
        write, DECIMAL(38, 6), is rounded instead, so both give 63.50 as a cashier would."""
        return f"CAST(round(CAST({expr} AS DECIMAL(38, 6)), {int(digits)}) AS DOUBLE)"

    def exact_avg(self, expr: str) -> str:
        """The mean of ``expr`` with the order-independence of :meth:`exact_sum`."""
        # the exact sum over the count, divided as doubles: engines round a DECIMAL average to different scales
        return f"({self.exact_sum(expr)} / NULLIF(count({expr}), 0))"

    def null_of(self, role_type: str) -> str:
        return f"CAST(NULL AS {self.sql_type(role_type)})"

    def full_match(self, expr: str, pattern: str) -> str:
        """Whether the whole of ``expr`` matches the regular expression ``pattern`` (Java/RE2 common subset)."""
        if self.name == "spark":
            return f"({expr} RLIKE {self.lit('^(?:' + pattern + ')$')})"
        return f"regexp_full_match({expr}, {self.lit(pattern)})"

    def regex_replace(self, expr: str, pattern: str, repl: str) -> str:
        if self.name == "spark":
            return f"regexp_replace({expr}, {self.lit(pattern)}, {self.lit(repl.replace(chr(92) + '1', '$1'))})"
        return f"regexp_replace({expr}, {self.lit(pattern)}, {self.lit(repl)}, 'g')"

    def try_double(self, expr: str) -> str:
        return f"TRY_CAST({expr} AS DOUBLE)"

    def try_timestamp(self, expr: str, fmt: str | None = None) -> str:
        """Parse text as a naive timestamp with a strptime format (or ISO 8601 when ``fmt`` is None)."""
        if self.name == "spark":
            if fmt is None:
                return f"TRY_CAST({expr} AS TIMESTAMP_NTZ)"
            return f"CAST(try_to_timestamp({expr}, {self.lit(strftime_to_java(fmt))}) AS TIMESTAMP_NTZ)"
        if fmt is None:
            return f"TRY_CAST({expr} AS TIMESTAMP)"
        return f"TRY_STRPTIME({expr}, {self.lit(fmt)})"

    def try_timestamp_with_offset(self, expr: str, to_tz: str) -> str:
        """Parse ISO text carrying an offset (or Z) and express it as a naive timestamp in zone ``to_tz``."""
        if self.name == "spark":
            return f"CAST(from_utc_timestamp(TRY_CAST({expr} AS TIMESTAMP), {self.lit(to_tz)}) AS TIMESTAMP_NTZ)"
        return f"timezone({self.lit(to_tz)}, TRY_CAST({expr} AS TIMESTAMPTZ))"

    def convert_zone(self, expr: str, from_tz: str, to_tz: str) -> str:
        """A naive local time in ``from_tz`` as the naive local time in ``to_tz``."""
        if from_tz == to_tz:
            return expr
        if self.name == "spark":
            return (f"CAST(from_utc_timestamp(to_utc_timestamp({expr}, {self.lit(from_tz)}), {self.lit(to_tz)}) "
                    "AS TIMESTAMP_NTZ)")
        return f"timezone({self.lit(to_tz)}, timezone({self.lit(from_tz)}, {expr}))"

    def median(self, expr: str) -> str:
        if self.name == "spark":
            return f"percentile({expr}, 0.5)"
        return f"quantile_cont({expr}, 0.5)"

    def is_finite(self, expr: str) -> str:
        return f"(abs({expr}) < 1e308)"

    def month_start(self, expr: str) -> str:
        if self.name == "spark":
            return f"CAST(date_trunc('MONTH', {expr}) AS DATE)"
        return f"CAST(date_trunc('month', {expr}) AS DATE)"

    def days_between(self, later: str, earlier: str) -> str:
        """Fractional days from ``earlier`` to ``later``."""
        if self.name == "spark":
            return f"((unix_timestamp({later}) - unix_timestamp({earlier})) / 86400.0)"
        return f"(epoch({later}) - epoch({earlier})) / 86400.0"

    def date_diff_days(self, earlier: str, later: str) -> str:
        """Whole calendar days from the date ``earlier`` to the date ``later``, as a double."""
        if self.name == "spark":
            return f"CAST(datediff({later}, {earlier}) AS DOUBLE)"
        return f"CAST(date_diff('day', {earlier}, {later}) AS DOUBLE)"

    def string_agg(self, expr: str, sep: str = ", ") -> str:
        if self.name == "spark":
            return f"array_join(collect_list({expr}), {self.lit(sep)})"
        return f"string_agg({expr}, {self.lit(sep)})"

    def arg_max(self, expr: str, by: str) -> str:
        if self.name == "spark":
            return f"max_by({expr}, {by})"
        return f"arg_max({expr}, {by})"

    def arg_min(self, expr: str, by: str) -> str:
        if self.name == "spark":
            return f"min_by({expr}, {by})"
        return f"arg_min({expr}, {by})"

    def mode(self, expr: str) -> str:
        """Most frequent value (ties: the smallest)."""
        if self.name == "spark":
            return f"mode({expr}, true)"
        return f"mode({expr})"


class Engine:
    """Runs SQL over tables registered from Parquet files, and writes results to Parquet."""

    name = "engine"
    dialect: Dialect

    def register_parquet(self, name: str, path: str | Path) -> None:
        raise NotImplementedError

    def register_frame(self, name: str, frame: pd.DataFrame, copy: bool = True) -> None:
        """Make ``frame`` queryable as ``name``; with ``copy=False`` the engine may read the frame in place (the
        caller keeps it alive and unchanged while it is queried)."""
        raise NotImplementedError

    def create(self, name: str, sql: str) -> None:
        """Materialise ``sql`` as table ``name`` (replacing it)."""
        raise NotImplementedError

    def drop(self, name: str) -> None:
        """Free table ``name`` (made by :meth:`create`) once no later step reads it: at a million customers every
        intermediate copy of the events is gigabytes."""
        raise NotImplementedError

    def frame(self, sql: str) -> pd.DataFrame:
        raise NotImplementedError

    def scalar(self, sql: str):
        df = self.frame(sql)
        return None if df.empty else df.iloc[0, 0]

    def write_parquet(self, name: str, path: str | Path) -> Path:
        raise NotImplementedError

    def columns(self, name: str) -> list[str]:
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class DuckDBEngine(Engine):
    """DuckDB, embedded: the default engine, for one laptop."""

    name = "duckdb"

    def __init__(self, database: str | Path | None = None, threads: int | None = None,
                 memory_limit: str | None = None) -> None:
        import duckdb

        self.dialect = Dialect("duckdb")
        self._spill = tempfile.mkdtemp(prefix="ciw-duckdb-")
        # The working tables live in memory (spilling past the limit) unless CIW_ENGINE_DB names a database file
        # ("file": one in the engine's private folder, removed on close). A file stores them compressed, where an
        # in-memory database past its limit spills them uncompressed: a million customers' step 02 filled 40 GB
        # of disk that way. In memory is faster below that scale (step 02 at 50,000 customers: 81 CPU s against
        # 131 with a file).
        database = database if database is not None else os.environ.get("CIW_ENGINE_DB") or ":memory:"
        if str(database) == "file":
            database = os.path.join(self._spill, "engine.duckdb")
        self._in_memory = str(database) == ":memory:"
        self._files: dict[str, tuple[str, int]] = {}  # tables kept as Parquet files: path and version
        self.con = duckdb.connect(str(database))
        # in a notebook DuckDB draws a progress widget for every query over two seconds: on a million customers
        # the 02 report showed dozens of them, as black bars, in the exported HTML
        self.con.execute("SET enable_progress_bar = false")
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET preserve_insertion_order = true")
        self._all_threads = int(self.con.execute("SELECT current_setting('threads')").fetchone()[0])
        self._fixed_threads = threads or (int(os.environ["CIW_THREADS"]) if os.environ.get("CIW_THREADS") else None)
        self._input_bytes = 0
        self.con.execute(f"SET threads = {self._fixed_threads or 1}")
        # DuckDB keeps an in-memory database's tables in its buffer up to the memory limit (80% of the machine by
        # default), so a 50,000-customer run held 6.7 GB there. Capped, it spills to a private temporary folder:
        # step 02 at 50,000 customers then peaks at 1.3 GB instead of 6.7 GB (see DUCKDB_MEMORY).
        self.con.execute(f"SET memory_limit = {lit(memory_limit or engine_memory_limit())}")
        self.con.execute(f"SET temp_directory = {lit(self._spill)}")

    def register_parquet(self, name: str, path: str | Path) -> None:
        self.con.execute(f"CREATE OR REPLACE VIEW {ident(name)} AS SELECT * FROM read_parquet({lit(str(path))})")
        self._count_input(path)

    @property
    def threads(self) -> int:
        """The threads the engine runs on now (see :data:`SMALL_INPUT_BYTES`)."""
        return int(self.con.execute("SELECT current_setting('threads')").fetchone()[0])

    def _count_input(self, path: str | Path) -> None:
        """Add a registered file's (or glob's) size to the input seen; past SMALL_INPUT_BYTES use every core."""
        import glob

        small = self._input_bytes < SMALL_INPUT_BYTES
        self._input_bytes += sum(os.path.getsize(f) for f in glob.glob(str(path)) if os.path.isfile(f))
        if small and self._input_bytes >= SMALL_INPUT_BYTES and not self._fixed_threads:
            self.con.execute(f"SET threads = {self._all_threads}")

    @property
    def tables_as_files(self) -> bool:
        """Whether :meth:`create` writes Parquet files (large input in an in-memory database; see
        :data:`LARGE_INPUT_BYTES`)."""
        return self._in_memory and self._input_bytes >= LARGE_INPUT_BYTES

    def _kind(self, name: str) -> str | None:
        row = self.con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = ?",
                               [name]).fetchone()
        return row[0] if row else None

    def register_frame(self, name: str, frame: pd.DataFrame, copy: bool = True) -> None:
        if not copy:
            self.con.register(name, frame)  # a view over the frame's arrays: no copy
            return
        self.con.register(f"_frame_{name}", frame)
        self.con.execute(f"CREATE OR REPLACE TABLE {ident(name)} AS SELECT * FROM {ident('_frame_' + name)}")
        self.con.unregister(f"_frame_{name}")

    def create(self, name: str, sql: str) -> None:
        if not self.tables_as_files:
            if self._kind(name) == "VIEW":
                self.drop(name)
            self.con.execute(f"CREATE OR REPLACE TABLE {ident(name)} AS {sql}")
            return
        # a new file per version: a table rebuilt from itself must not overwrite the file it reads
        version = self._files.get(name, (None, 0))[1] + 1
        path = os.path.join(self._spill, f"{name}.v{version}.parquet")
        self.con.execute(f"COPY ({sql}) TO {lit(path)} (FORMAT PARQUET)")
        old = self._files.get(name, (None, 0))[0]
        if self._kind(name) == "BASE TABLE":
            self.con.execute(f"DROP TABLE {ident(name)}")
        self.con.execute(f"CREATE OR REPLACE VIEW {ident(name)} AS SELECT * FROM read_parquet({lit(path)})")
        self._files[name] = (path, version)
        if old:
            os.remove(old)

    def drop(self, name: str) -> None:
        kind = self._kind(name)
        if kind == "VIEW":
            self.con.execute(f"DROP VIEW {ident(name)}")
            path = self._files.pop(name, (None, 0))[0]
            if path:
                os.remove(path)
        elif kind is not None:
            self.con.execute(f"DROP TABLE {ident(name)}")

    def frame(self, sql: str) -> pd.DataFrame:
        return self.con.execute(sql).df()

    def write_parquet(self, name: str, path: str | Path) -> Path:
        """Write a table as Parquet, rows in a fixed order (by source and line when it has them, else by every
        column), so the same data always gives the same file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        cols = self.columns(name)
        lead = [c for c in ("_source_order", "_source", "_row") if c in cols]
        order = ", ".join([ident(c) for c in lead] + ["ALL"] if not lead else [ident(c) for c in lead] +
                          [ident(c) for c in cols if c not in lead])
        self.con.execute(f"COPY (SELECT * FROM {ident(name)} ORDER BY {order}) TO {lit(str(path))} "
                         "(FORMAT PARQUET)")
        return path

    def columns(self, name: str) -> list[str]:
        return [r[0] for r in self.con.execute(f"DESCRIBE {ident(name)}").fetchall()]

    def exists(self, name: str) -> bool:
        return bool(self.con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? UNION ALL "
                                     "SELECT count(*) FROM duckdb_views() WHERE view_name = ?",
                                     [name, name]).df().iloc[:, 0].sum())

    def close(self) -> None:
        import shutil

        self.con.close()
        shutil.rmtree(self._spill, ignore_errors=True)


class SparkEngine(Engine):
    """Apache Spark through PySpark: the same SQL on a cluster, for data that outgrows one machine.

    The master comes from ``master``, else the environment variable ``CIW_SPARK_MASTER`` (a cluster URL such as
    ``spark://host:7077`` or ``yarn``; it may carry credentials, so it is never printed or logged), else
    ``local[*]``. Every table the workbench creates is materialised, which cuts Spark's lineage so a later step
    never recomputes an earlier one: on a cluster it is written to Parquet under a work directory
    (``CIW_SPARK_WORKDIR``, else a temporary folder) and read back, which survives a lost executor; on
    ``local[...]`` it is a local checkpoint (blocks in memory and on local disk), a third faster on small data.
    ``materialise`` (``parquet`` or ``checkpoint``) overrides the choice. Results are written as one Parquet file
    per table, rows in the same fixed order as DuckDB's, so the notebooks read the same files whichever engine
    made them.
    """

    name = "spark"

    def __init__(self, master: str | None = None, workdir: str | Path | None = None,
                 conf: dict[str, str] | None = None, materialise: str | None = None) -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError:  # pragma: no cover - depends on the installation
            raise RuntimeError("engine 'spark' needs PySpark and a Java runtime: pip install 'ci-workbench[spark]' "
                               "and a JRE 17+ (see the README, Scale-out)") from None
        import warnings

        # The workbench passes data to and from Spark through Arrow only; tests/test_engines.py checks every table
        # against DuckDB's under the installed pandas, so PySpark's general caution about pandas 3 does not apply.
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
        self.dialect = Dialect("spark")
        master = master or os.environ.get("CIW_SPARK_MASTER") or "local[*]"
        self.materialise = materialise or ("checkpoint" if master.startswith("local") else "parquet")
        if self.materialise not in ("parquet", "checkpoint"):
            raise ValueError(f"materialise must be 'parquet' or 'checkpoint', got {self.materialise!r}")
        builder = (SparkSession.builder.master(master)
                   .appName("ci-workbench")
                   .config("spark.sql.session.timeZone", "UTC")
                   # naive timestamps stay naive, as in DuckDB, and Parquet stores them as INT64 microseconds
                   .config("spark.sql.timestampType", "TIMESTAMP_NTZ")
                   .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
                   .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                   .config("spark.sql.shuffle.partitions", os.environ.get("CIW_SPARK_PARTITIONS", "2" if
                                                                         master.startswith("local") else "200"))
                   .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                   .config("spark.driver.memory", os.environ.get("CIW_SPARK_DRIVER_MEMORY", "2g"))
                   .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{SPARK_LOG_CONFIG}"))
        try:  # Splink's string-similarity functions (Jaro-Winkler…) for probabilistic identity matching on Spark
            from splink.backends.spark import similarity_jar_location

            builder = builder.config("spark.jars", similarity_jar_location())
        except ImportError:  # pragma: no cover - splink is a dependency; without it matching stays on exact rules
            pass
        for key, value in (conf or {}).items():
            builder = builder.config(key, value)
        self.spark = builder.getOrCreate()
        self.spark.sparkContext.setLogLevel("ERROR")
        self._own_workdir = workdir is None and not os.environ.get("CIW_SPARK_WORKDIR")
        self.workdir = Path(workdir or os.environ.get("CIW_SPARK_WORKDIR") or tempfile.mkdtemp(prefix="ciw-spark-"))
        # Splink checkpoints its intermediate tables; they go under the work directory too
        self.spark.sparkContext.setCheckpointDir(str(self.workdir / "checkpoints"))
        self._version: dict[str, int] = {}
        self._views: set[str] = set()

    def _materialise(self, name: str, df) -> None:
        if self.materialise == "checkpoint":
            df.localCheckpoint(eager=True).createOrReplaceTempView(name)
            self._views.add(name)
            return
        # A fresh folder per version: a table rebuilt from itself must not overwrite the files it reads.
        v = self._version[name] = self._version.get(name, 0) + 1
        path = self.workdir / "tables" / f"{name}.v{v}"
        df.write.mode("overwrite").parquet(str(path))
        self.spark.read.parquet(str(path)).createOrReplaceTempView(name)
        self._views.add(name)

    def drop(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)  # its checkpointed blocks go when nothing refers to them
        self._views.discard(name)

    def register_parquet(self, name: str, path: str | Path) -> None:
        self.spark.read.parquet(str(path)).createOrReplaceTempView(name)
        self._views.add(name)

    def register_frame(self, name: str, frame: pd.DataFrame, copy: bool = True) -> None:
        import pyarrow as pa

        # through Arrow, so pandas' string, nullable and datetime columns keep their types
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.cast(pa.schema([pa.field(f.name, pa.string() if pa.types.is_large_string(f.type)
                                               or pa.types.is_string_view(f.type) else f.type)
                                      for f in table.schema]))
        self._materialise(name, self.spark.createDataFrame(table))

    def create(self, name: str, sql: str) -> None:
        self._materialise(name, self.spark.sql(sql))

    def frame(self, sql: str) -> pd.DataFrame:
        return _decimals_as_float(self.spark.sql(sql).toArrow()).to_pandas()  # toArrow: PySpark 4

    def write_parquet(self, name: str, path: str | Path) -> Path:
        """One Parquet file, rows in the order :meth:`DuckDBEngine.write_parquet` uses."""
        import shutil

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        cols = self.columns(name)
        lead = [c for c in ("_source_order", "_source", "_row") if c in cols]
        order = lead + [c for c in cols if c not in lead]
        tmp = self.workdir / "out" / f"{name}.{os.getpid()}"
        (self.spark.table(name).repartition(1).sortWithinPartitions(*order)
         .write.mode("overwrite").parquet(str(tmp)))
        parts = sorted(tmp.glob("part-*.parquet"))
        if len(parts) != 1:  # pragma: no cover - repartition(1) writes exactly one part
            raise RuntimeError(f"Spark wrote {len(parts)} files for table {name}, expected one")
        shutil.move(str(parts[0]), path)
        shutil.rmtree(tmp, ignore_errors=True)
        return path

    def columns(self, name: str) -> list[str]:
        return list(self.spark.table(name).columns)

    def exists(self, name: str) -> bool:
        return name in self._views or bool(self.spark.catalog.tableExists(name))

    def close(self) -> None:
        for view in self._views:
            self.spark.catalog.dropTempView(view)
        self._views.clear()
        if self._own_workdir:
            import shutil

            shutil.rmtree(self.workdir, ignore_errors=True)


def _decimals_as_float(table):
    """DuckDB hands DECIMAL results to pandas as floats; Spark as Python Decimals. Make them floats for both."""
    import pyarrow as pa

    fields = [pa.field(f.name, pa.float64()) if pa.types.is_decimal(f.type) else f for f in table.schema]
    return table.cast(pa.schema(fields))


def make_engine(name: str = "duckdb", **kw) -> Engine:
    """The engine called ``name`` (``duckdb`` or ``spark``)."""
    if name == "duckdb":
        return DuckDBEngine(**kw)
    if name == "spark":
        return SparkEngine(**kw)
    raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {name!r}")


def safe_name(text: str) -> str:
    """A table name made of letters, digits and underscores.

    >>> safe_name("order-lines 2")
    'order_lines_2'
    """
    return re.sub(r"\W+", "_", str(text)).strip("_") or "t"
