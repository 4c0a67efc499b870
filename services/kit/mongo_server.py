"""The local MongoDB stand-in (nx-27017) for development and tests, without per-command logs.

`python -m services.kit.mongo_server --port 27017 --data-dir var/mongo`. nx-27017 logs
every command at INFO; at the load a claim burst brings that costs more than the queries.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from nx_27017 import handler, nx_27017

from services.kit import mongo_shapes


def main() -> None:
    configure = logging.basicConfig

    def quiet(**kwargs: object) -> None:
        kwargs["level"] = logging.WARNING
        configure(**kwargs)  # type: ignore[arg-type]

    logging.basicConfig = quiet  # type: ignore[assignment]
    # nx-27017 keeps one PID file (/tmp/nx_27017.pid) per machine and refuses to start a
    # second server; keep it and the log beside the data so private servers can coexist.
    if "--data-dir" in sys.argv and "--pid-file" not in sys.argv:
        data_dir = sys.argv[sys.argv.index("--data-dir") + 1]
        os.makedirs(data_dir, exist_ok=True)
        sys.argv += ["--pid-file", f"{data_dir}/nx-27017.pid",
                     "--log-file", f"{data_dir}/nx-27017.log"]
    shapes_file = os.environ.get(mongo_shapes.ENV)
    if shapes_file:  # `bench.run --db-shapes`: CPU per query shape (kit/mongo_shapes.py)
        mongo_shapes.install(handler.NeoSQLiteHandler, Path(shapes_file))
    sys.exit(nx_27017.main())


if __name__ == "__main__":
    main()
