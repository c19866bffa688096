"""`disputeflow migrate`: bring the database to the code's schema, once, before the processes start.

`./dev up` runs it before it starts the worker, the dispatcher and the API; the compose
topology runs it as a one-shot service they wait for. None of those processes creates a
table: each refuses a database that is not at the code's revision (see database.schema).
An unversioned database an older install made is adopted. Running it again changes nothing.
Exit status 0 when the database is at head, 1 with `--check` when it is not (nothing is
changed then), 2 when the database cannot be reached or cannot be adopted.
"""

import argparse
import sys

EXIT_OK, EXIT_BEHIND, EXIT_UNREACHABLE = 0, 1, 2


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("migrate", help="upgrade the database to the code's schema (run once per deployment)",
                                 description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if the database is not at head")


def run(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from config.settings import get_settings
    from database import SchemaNotReady, make_engine, migrate, open_database
    from database.schema import head

    settings = get_settings()
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    if args.check:
        try:
            open_database(settings.database_url).dispose()
        except SchemaNotReady as problem:
            print(problem)
            return EXIT_BEHIND
        print(f"{where}: at head {head()}")
        return EXIT_OK
    engine = make_engine(settings.database_url)
    try:
        print(f"{where}: {migrate(engine)}")
        return EXIT_OK
    except OperationalError as error:
        print(f"disputeflow migrate: cannot reach {where}: {error.orig}", file=sys.stderr)
        return EXIT_UNREACHABLE
    finally:
        engine.dispose()
