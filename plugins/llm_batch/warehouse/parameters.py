"""Named parameters: SQL given to a warehouse writes them ``:name`` in either dialect.

They are rewritten here to the driver's own style, DuckDB's ``$name`` or psycopg's ``%(name)s``.
"""

from __future__ import annotations

import re
from typing import Any

# What a ':name' parameter must not be found inside, matched first so it is skipped whole.
_SQL_TOKENS = re.compile(
    r"""
    (?P<skip>
        (?<!\w)[Ee]'(?:[^'\\]|\\.|'')*'                  # escape string E'...'
      | '(?:[^']|'')*'                                  # string
      | "(?:[^"]|"")*"                                  # quoted identifier
      | \$(?P<tag>(?:[A-Za-z_]\w*)?)\$.*?\$(?P=tag)\$   # dollar-quoted string
      | --[^\n]*                                        # line comment
      | /\*.*?\*/                                       # block comment
      | ::                                              # cast
    )
    | (?<![:\w]):(?P<name>[A-Za-z_]\w*)
    """,
    re.VERBOSE | re.DOTALL,
)


def bind_named_params(sql: str, params: dict[str, Any] | None, dialect: str) -> tuple[str, dict[str, Any]]:
    """Rewrite ``:name`` to DuckDB's ``$name`` or psycopg's ``%(name)s``; return the values used.

    Only the used values are passed on: DuckDB rejects extra ones. For psycopg every other ``%``
    is doubled, since it reads them all as placeholders, inside quotes too.
    """
    params = params or {}
    pyformat = dialect == "postgres"
    used: dict[str, Any] = {}
    out: list[str] = []
    position = 0

    def text(fragment: str) -> str:
        return fragment.replace("%", "%%") if pyformat else fragment

    for match in _SQL_TOKENS.finditer(sql):
        out.append(text(sql[position : match.start()]))
        name = match.group("name")
        if name is None:
            out.append(text(match.group()))
        elif name not in params:
            raise ValueError(f"SQL parameter :{name} has no value in params (given: {sorted(params)})")
        else:
            used[name] = params[name]
            out.append(f"%({name})s" if pyformat else f"${name}")
        position = match.end()
    out.append(text(sql[position:]))
    return "".join(out), used
