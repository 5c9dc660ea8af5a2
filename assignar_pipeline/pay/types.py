"""Column types that keep money exact and instants in UTC on both SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime
from sqlalchemy.types import TypeDecorator


class ScaledDecimal(TypeDecorator[Decimal]):
    """A `Decimal` stored as a BIGINT count of 10**-scale units.

    SQLite has no exact decimal type (SQLAlchemy goes through float), so money and rates are
    integers in the database on both engines: sums stay exact and checksums agree. A value with
    more digits than the scale is refused rather than rounded, because nobody chose a rounding.
    """

    impl = BigInteger
    cache_ok = True

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self._unit = Decimal(1).scaleb(-scale)

    def __repr__(self) -> str:  # how Alembic writes the type into migrations
        return f"ScaledDecimal({self.scale})"

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        value = Decimal(value)
        scaled = value.scaleb(self.scale)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        return int(scaled)

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(int(value)) * self._unit).quantize(self._unit)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC instant, stored as a naive UTC timestamp (SQLite keeps no offsets)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value} given where an instant is needed")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


MONEY = ScaledDecimal(2)
RATE = ScaledDecimal(4)
QUANTITY = ScaledDecimal(2)
