"""Config for the `sqlmesh` CLI: the project is built for one client at a time.

    GOALPOST_CLIENT=panpan sqlmesh -p sqlmesh plan

The config (warehouse, state schema `sqlmesh_state__<slug>`, the client's spec as variables)
comes from goalpost.transform, exactly as for `goalpost run`, so both see the same models.
"""

import os

from goalpost.transform.build import cli_config

config = cli_config(os.environ.get("GOALPOST_CLIENT"))
