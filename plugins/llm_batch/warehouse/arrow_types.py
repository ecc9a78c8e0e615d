"""Arrow <-> SQL types: the column type a table gets for an Arrow field, and back for PostgreSQL results."""

from __future__ import annotations

import pyarrow as pa


def column_type(field: pa.Field, dialect: str) -> str:
    """The SQL type of ``field``'s column in ``dialect`` (``duckdb`` or ``postgres``)."""
    try:
        return sql_type(field.type, dialect)
    except TypeError as exc:
        raise TypeError(f"column {field.name!r}: {exc}") from None


def sql_type(arrow_type: pa.DataType, dialect: str) -> str:
    pg = dialect == "postgres"
    t = arrow_type
    if isinstance(t, pa.BaseExtensionType):  # e.g. pa.json_(): stored as its string
        t = t.storage_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_null(t)
    ):
        # An all-NULL column (pa.null) says nothing of its type; text can hold whatever comes later.
        return "TEXT" if pg else "VARCHAR"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if t in (pa.int8(), pa.int16(), pa.uint8()):
        return "SMALLINT"
    if t in (pa.int32(), pa.uint16()):
        return "INTEGER"
    if t in (pa.int64(), pa.uint32()):
        return "BIGINT"
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return "REAL" if pg else "FLOAT"
    if pa.types.is_float64(t):
        return "DOUBLE PRECISION" if pg else "DOUBLE"
    if pa.types.is_decimal(t):
        return f"NUMERIC({t.precision},{t.scale})" if pg else f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if is_list(t) and not pa.types.is_nested(t.value_type):
        return sql_type(t.value_type, dialect) + "[]"
    raise TypeError(f"no {dialect} column type for Arrow type {arrow_type}")


def is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


# The Arrow type of a PostgreSQL result column, by the type's OID; other types are inferred.
ARROW_TYPE_BY_OID: dict[int, pa.DataType] = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    25: pa.string(),  # text
    114: pa.string(),  # json
    700: pa.float32(),
    701: pa.float64(),
    1000: pa.list_(pa.bool_()),
    1005: pa.list_(pa.int16()),
    1007: pa.list_(pa.int32()),
    1009: pa.list_(pa.string()),
    1015: pa.list_(pa.string()),  # varchar[]
    1016: pa.list_(pa.int64()),
    1021: pa.list_(pa.float32()),
    1022: pa.list_(pa.float64()),
    1042: pa.string(),  # char(n)
    1043: pa.string(),  # varchar
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
    2950: pa.string(),  # uuid
    3802: pa.string(),  # jsonb
}
