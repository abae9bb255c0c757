"""Opening the database: URL resolution, SQLite settings, migrations and built-in devices.

Without ``--db`` / ``$EXPLORER_DB`` the tool works on the user's own database
(:func:`user_db_path`), made on first use as a copy of the shipped, git-tracked
``measurements.db``, which ordinary use only reads (:mod:`explorer.db.release`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from explorer.db import release
from explorer.db.models import Device
from explorer.errors import UserError

#: The repository root: the parent of the ``explorer`` package directory.
REPO_ROOT = Path(__file__).resolve().parents[2]
#: The release's data: read, never written by ordinary use.
SHIPPED_DB_PATH = REPO_ROOT / "measurements.db"
ENV_VAR = "EXPLORER_DB"
HOME_ENV = "EXPLORER_HOME"
USER_DB_NAME = "measurements.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATION_ATTEMPTS = 3
#: The schema revision of this version: its newest migration's (a test holds them equal). A
#: database stamped with it opens without importing Alembic, a sixth of a second of every command.
SCHEMA_REVISION = "0005"


def user_data_dir() -> Path:
    """Where the user's database, studies and work files live: ``$EXPLORER_HOME``, else
    ``$XDG_DATA_HOME/explorer`` (``~/.local/share/explorer``)."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "explorer"


def user_cache_dir() -> Path:
    """Where results that can be recomputed are kept (the fitted accuracy surrogate):
    ``$EXPLORER_HOME/cache``, else ``$XDG_CACHE_HOME/explorer`` (``~/.cache/explorer``)."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser() / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "explorer"


def user_db_path() -> Path:
    """The default database: the user's own (see module docstring)."""
    return user_data_dir() / USER_DB_NAME


class MissingDatabaseError(UserError):
    """A database path that does not exist, where creating one was not asked for."""


def require_database(spec: str | os.PathLike[str] | None, create: bool = False) -> None:
    """Refuse a named database (``spec``, else ``$EXPLORER_DB``) that is a SQLite file which
    does not exist, unless ``create``: a mistyped path must not become an empty database."""
    named = os.fspath(spec) if spec is not None else os.environ.get(ENV_VAR) or None
    if named is None or create:
        return
    path = named.removeprefix("sqlite:///") if named.startswith("sqlite:///") else None if "://" in named else named
    if path in (None, ":memory:", "") or Path(path).expanduser().exists():
        return
    origin = "" if spec is not None else f" (from ${ENV_VAR})"
    raise MissingDatabaseError(f"database {named!r}{origin} does not exist; give the path of an existing one, "
                               "or add --create-db to start a new, empty one there")


def database_url(spec: str | os.PathLike[str] | None = None) -> str:
    """The SQLAlchemy URL for ``spec`` (a URL or a file path), ``$EXPLORER_DB``, or the user's
    database (:func:`user_db_path`)."""
    spec = os.fspath(spec) if spec is not None else os.environ.get(ENV_VAR) or None
    if spec is None:
        return f"sqlite:///{user_db_path()}"
    if "://" in spec:
        return spec
    path = Path(spec).expanduser().resolve()
    if not path.parent.is_dir():
        raise UserError(f"database path {spec!r}: directory {str(path.parent)!r} does not exist")
    return f"sqlite:///{path}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers (dashboards, predictors) work while a campaign writes; the busy timeout
    # makes concurrent writers wait instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _alembic_config():
    from alembic.config import Config  # Alembic loads only where a schema is checked or migrated

    config = Config()
    config.set_main_option("script_location", str(resources.files("explorer") / "migrations"))
    return config


def _scripts():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config())


def head_revision() -> str:
    """The newest schema revision shipped with this version of the package."""
    return _scripts().get_current_head()


def known_revisions() -> frozenset[str]:
    """Every schema revision this version of the package can read or upgrade from."""
    return frozenset(script.revision for script in _scripts().walk_revisions())


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _stamped_revision(engine: Engine) -> str | None:
    """The revision stamped in the database by one query; ``None`` where none can be read (no
    table yet, not a database: :func:`_migrate` then says which)."""
    try:
        with engine.connect() as connection:
            stamps = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:
        return None
    return stamps[0] if len(stamps) == 1 else None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` (tests use an older one to make old files)."""
    from alembic import command

    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def builtin_device_rows() -> list[dict]:
    """The built-in device profiles shipped in ``explorer/data/devices.json``."""
    return json.loads((resources.files("explorer") / "data" / "devices.json").read_text())


class Database:
    """An opened, migrated database. ``session()`` is the unit of work."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block succeeds and rolls back when it raises."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({self.url!r})"


def make_engine(url: str) -> Engine:
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _seed_builtin_devices(database: Database) -> None:
    """Insert the built-in profiles that are missing; never overwrite a stored profile."""
    rows = builtin_device_rows()
    try:
        with database.session() as session:
            present = set(session.scalars(select(Device.name)))
            session.add_all(Device(**row) for row in rows if row["name"] not in present)
    except IntegrityError:
        pass  # another process seeded the same rows between our select and insert


class NotADatabaseError(UserError):
    """The URL or file does not hold a database the tool can open."""


class NewerSchemaError(NotADatabaseError):
    """A database written by a newer version of the package: migrating it down would lose data."""


def _first_line(err: Exception) -> str:
    return str(getattr(err, "orig", err)).splitlines()[0]


def _note(message: str) -> None:
    print(f"explorer: {message}", file=sys.stderr, flush=True)


def _prepare_user_database(path: Path) -> None:
    """Make the user's database from the shipped one on first use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or not SHIPPED_DB_PATH.is_file():
        return
    sha256 = release.copy_release(SHIPPED_DB_PATH, path)
    _note(f"created your database {path} from the shipped {SHIPPED_DB_PATH.name} (release {sha256[:12]}); "
          "what you measure, import and cache goes there, the shipped file is only read")


def _take_in_release(path: Path) -> None:
    """Merge a new release's rows (the shipped file changed since the last command) and say so."""
    if not SHIPPED_DB_PATH.is_file():
        return
    sha256 = release.release_changed(SHIPPED_DB_PATH, path)
    if sha256 is not None:
        merged = release.merge_release(SHIPPED_DB_PATH, path, sha256)
        _note(f"the shipped {SHIPPED_DB_PATH.name} is a new release; its new rows were added to your database "
              f"{path} ({merged.describe()}), your own rows are unchanged")


def open_database(url: str | os.PathLike[str] | None = None) -> Database:
    """Open (creating or upgrading as needed) the database at ``url``: a SQLAlchemy URL or a
    path; ``None`` means ``$EXPLORER_DB`` or the user's database (:func:`user_db_path`), made
    from the shipped one on first use and given a new release's rows when the shipped one changes."""
    user_database = user_db_path() if url is None and not os.environ.get(ENV_VAR) else None
    if user_database is not None:
        _prepare_user_database(user_database)
    engine = make_engine(database_url(url))
    if _stamped_revision(engine) != SCHEMA_REVISION:
        _migrate(engine)
    if user_database is not None and user_database.exists():
        _take_in_release(user_database)  # after the migrations: both now have this package's schema
    database = Database(engine)
    _seed_builtin_devices(database)
    return database


def _migrate(engine: Engine) -> None:
    """Bring the database at ``engine`` to the head revision, or refuse it (not a database, or a
    newer schema than this version reads) with nothing changed."""
    head = head_revision()
    for attempt in range(MIGRATION_ATTEMPTS):
        try:
            revision = current_revision(engine)
        except DBAPIError as err:
            engine.dispose()
            raise NotADatabaseError(f"{engine.url.render_as_string(hide_password=True)} cannot be opened as a "
                                    f"measurement database ({_first_line(err)}); nothing was changed") from None
        if revision == head:
            break
        if revision is not None and revision not in known_revisions():
            engine.dispose()
            raise NewerSchemaError(f"{engine.url.render_as_string(hide_password=True)} has schema revision "
                                   f"{revision!r}, newer than this version of explorer reads (up to {head!r}): "
                                   "upgrade explorer to open it; nothing was changed")
        try:
            upgrade(engine)
        except DBAPIError:
            # another process may be migrating the same new file right now: wait for it
            if attempt == MIGRATION_ATTEMPTS - 1:
                raise
            time.sleep(1.0)
