"""The sample review source: deterministic per day, realistic in size, sentiment and edge cases."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from include.sample_data.reviews import generate_reviews, review_date_range, write_reviews

START = dt.date(2026, 8, 23)
DAYS = 90
LAST = START + dt.timedelta(DAYS - 1)  # 2026-11-20

EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\u2b50]")
HTML_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>")
JAPANESE = re.compile("[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return generate_reviews(START, DAYS)


@pytest.fixture(scope="module")
def reviews(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas()


@pytest.fixture(scope="module")
def texts(reviews: pd.DataFrame) -> pd.Series:
    """Every non-NULL text, indexed like `reviews`."""
    return reviews["review_text"].dropna()


def share(mask: pd.Series, total: int) -> float:
    return int(mask.sum()) / total


# --- determinism ----------------------------------------------------------------------------------------


def test_same_arguments_give_the_same_table():
    assert generate_reviews(LAST, 3).equals(generate_reviews(LAST, 3))


def day_of(table: pa.Table, day: dt.date) -> pa.Table:
    return table.filter(pc.equal(table["review_date"], pa.scalar(day, pa.date32())))


def test_a_day_is_the_same_alone_or_inside_any_range(table: pa.Table):
    alone = generate_reviews(LAST, 1)
    assert alone.num_rows > 0
    assert alone.equals(day_of(generate_reviews(LAST - dt.timedelta(6), 7), LAST))
    assert alone.equals(day_of(table, LAST))


def test_another_seed_gives_other_rows():
    assert not generate_reviews(LAST, 1, seed=1).equals(generate_reviews(LAST, 1, seed=2))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        generate_reviews(LAST, 1, per_day=(10, 5))
    with pytest.raises(ValueError):
        generate_reviews(LAST, 1, per_day=(1, 10_000))
    with pytest.raises(ValueError):
        review_date_range(start=START, end=LAST)


# --- shape -------------------------------------------------------------------------------------------------


def test_schema(table: pa.Table):
    assert {field.name: field.type for field in table.schema} == {
        "review_id": pa.string(),
        "product_id": pa.string(),
        "product_name": pa.string(),
        "category": pa.string(),
        "customer_id": pa.string(),
        "rating": pa.int32(),
        "language": pa.string(),
        "review_text": pa.string(),
        "created_at": pa.timestamp("us"),
        "review_date": pa.date32(),
    }


def test_ninety_days_of_hundreds_of_reviews(reviews: pd.DataFrame):
    per_day = reviews.groupby("review_date")["review_id"].nunique()
    assert list(per_day.index) == [START + dt.timedelta(offset) for offset in range(DAYS)]
    assert per_day.between(200, 400).all()
    assert 90 * 250 < len(reviews) < 90 * 380


def test_created_at_spreads_over_the_day_it_is_dated(reviews: pd.DataFrame):
    created = reviews["created_at"]
    assert (created.dt.date == reviews["review_date"]).all()
    assert created.dt.hour.nunique() == 24
    assert created.is_monotonic_increasing


def test_ids_are_unique_but_for_same_day_duplicates(reviews: pd.DataFrame):
    assert reviews["review_id"].str.fullmatch(r"rv-\d{12}").all()
    counts = reviews["review_id"].value_counts()
    assert counts.max() == 2
    assert (reviews.groupby("review_id")["review_date"].nunique() == 1).all()


def test_duplicates_are_identical_or_edited(reviews: pd.DataFrame):
    twice = reviews[reviews["review_id"].duplicated(keep=False)]
    pairs = twice.groupby("review_id")
    identical = pairs.apply(lambda rows: rows.iloc[0].equals(rows.iloc[1]))
    edited = pairs.apply(lambda rows: rows["review_text"].nunique(dropna=False) == 2)
    assert (identical | edited).all()
    for kind in (identical, edited):
        assert 0.005 < kind.sum() / len(reviews) < 0.04
    later = pairs["created_at"].agg(lambda times: times.iloc[1] >= times.iloc[0])
    assert later.all()


def test_catalogue_and_ratings(reviews: pd.DataFrame):
    assert 35 <= reviews["product_id"].nunique() <= 45
    assert reviews["category"].nunique() >= 6
    assert (reviews.groupby("product_id")[["product_name", "category"]].nunique() == 1).all().all()
    assert sorted(reviews["rating"].unique()) == [1, 2, 3, 4, 5]
    assert reviews["customer_id"].nunique() > 5_000


# --- edge cases ----------------------------------------------------------------------------------------


def test_blank_texts(reviews: pd.DataFrame, texts: pd.Series):
    total = len(reviews)
    assert 0.01 < share(reviews["review_text"].isna(), total) < 0.04
    assert 0.01 < share(texts == "", total) < 0.04
    blank = (texts != "") & (texts.str.strip() == "")
    assert 0.005 < share(blank, total) < 0.03
    assert texts[blank].nunique() >= 5  # spaces, tabs, newlines, non-breaking and ideographic spaces


def test_very_long_texts(reviews: pd.DataFrame, texts: pd.Series):
    lengths = texts.str.len()
    assert 0.005 < share(lengths > 20_000, len(reviews)) < 0.03
    assert (lengths > 100_000).sum() >= DAYS  # at least one a day
    assert lengths.max() < 200_000


@pytest.mark.parametrize("language", ["es", "de", "fr", "ja"])
def test_other_languages(reviews: pd.DataFrame, language: str):
    rows = reviews[reviews["language"] == language]
    assert 0.01 < len(rows) / len(reviews) < 0.05
    written = rows["review_text"].dropna().loc[lambda s: s.str.strip() != ""]
    if language == "ja":
        assert written.str.contains(JAPANESE).all()
    else:
        assert not written.str.contains(JAPANESE).any()
        # only the appended decorations (snippets, "Sent from my phone") are English
        assert written.str.contains(r"\b(?:the|this|it|from)\b", case=False).mean() < 0.1


def test_english_is_the_rest(reviews: pd.DataFrame):
    assert set(reviews["language"]) == {"en", "es", "de", "fr", "ja"}
    assert 0.85 < share(reviews["language"] == "en", len(reviews)) < 0.95


def test_emoji(reviews: pd.DataFrame, texts: pd.Series):
    assert 0.02 < share(texts.str.contains(EMOJI), len(reviews)) < 0.08
    assert texts.str.contains("\u200d").any()  # zero-width-joiner sequences


def test_html_fragments(reviews: pd.DataFrame, texts: pd.Series):
    assert 0.01 < share(texts.str.contains(HTML_TAG), len(reviews)) < 0.06
    assert texts.str.contains("&amp;", regex=False).any()
    assert texts.str.contains("<script>", regex=False).any()


@pytest.mark.parametrize(
    ("needle", "at_least"),
    [('"', 100), ("\\", 100), ("\t", 50), ("\r\n", 20), ("\\u00e9", 20), ("\u200b", 20), ("\u2019", 5)],
    ids=[
        "double-quote",
        "backslash",
        "tab",
        "crlf",
        "literal-escape",
        "zero-width-space",
        "curly-apostrophe",
    ],
)
def test_awkward_characters(texts: pd.Series, needle: str, at_least: int):
    assert texts.str.contains(needle, regex=False).sum() >= at_least


def test_special_characters_share(reviews: pd.DataFrame, texts: pd.Series):
    awkward = texts.str.contains(r'[\\\t\r"]') & ~texts.str.contains(HTML_TAG)
    assert 0.01 < share(awkward, len(reviews)) < 0.06


def test_lengths_range_from_a_few_words_to_hundreds(texts: pd.Series):
    ordinary = texts[(texts.str.strip() != "") & (texts.str.len() < 20_000)]
    words = ordinary.str.split().str.len()
    assert (words <= 3).mean() > 0.05
    assert words.median() < 40
    assert (words >= 200).sum() >= 50


# --- sentiment ---------------------------------------------------------------------------------------


def test_vader_reads_the_stars(reviews: pd.DataFrame):
    """Three weeks of English reviews; the long ones are left out as VADER is quadratic in words."""
    english = reviews[
        (reviews["review_date"] < START + dt.timedelta(21))
        & (reviews["language"] == "en")
        & (reviews["review_text"].str.strip().str.len() > 0)
        & (reviews["review_text"].str.len() < 5_000)
    ]
    analyzer = SentimentIntensityAnalyzer()
    compound = english["review_text"].map(lambda text: analyzer.polarity_scores(text)["compound"])
    five = compound[english["rating"] == 5]
    low = compound[english["rating"] <= 2]
    assert len(five) > 1_000 and len(low) > 500
    assert (five >= 0.05).mean() >= 0.8
    assert (low <= -0.05).mean() >= 0.7


# --- DuckDB --------------------------------------------------------------------------------------------


def test_write_reviews_round_trip(tmp_path: Path):
    db = tmp_path / "data" / "reviews.duckdb"
    written = write_reviews(db, days=7, end=LAST)
    expected = generate_reviews(LAST - dt.timedelta(6), 7)
    assert written == expected.num_rows
    with duckdb.connect(str(db), read_only=True) as con:
        types = {name: type_ for name, type_, *_ in con.sql("DESCRIBE reviews").fetchall()}
        assert types == {
            "review_id": "VARCHAR",
            "product_id": "VARCHAR",
            "product_name": "VARCHAR",
            "category": "VARCHAR",
            "customer_id": "VARCHAR",
            "rating": "INTEGER",
            "language": "VARCHAR",
            "review_text": "VARCHAR",
            "created_at": "TIMESTAMP",
            "review_date": "DATE",
        }
        stored = con.sql("SELECT * FROM reviews").to_arrow_table()
    assert stored.cast(expected.schema).equals(expected)


def test_write_reviews_replaces_and_takes_a_schema(tmp_path: Path):
    db = tmp_path / "reviews.duckdb"
    first = write_reviews(db, table="raw.reviews", start=LAST, days=2)
    again = write_reviews(db, table="raw.reviews", start=LAST, days=2)
    assert first == again
    with duckdb.connect(str(db), read_only=True) as con:
        stored = con.sql(
            'SELECT count(*), min(review_date), max(review_date) FROM "raw"."reviews"'
        ).fetchall()
    assert stored == [(first, LAST, LAST + dt.timedelta(1))]


def test_default_range_ends_today(tmp_path: Path):
    db = tmp_path / "reviews.duckdb"
    write_reviews(db, days=3)
    today = dt.date.today()
    with duckdb.connect(str(db), read_only=True) as con:
        days = {day for (day,) in con.execute("SELECT DISTINCT review_date FROM reviews").fetchall()}
    assert days == {today - dt.timedelta(2), today - dt.timedelta(1), today}


def test_cli(tmp_path: Path):
    db = tmp_path / "cli.duckdb"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "include.sample_data.reviews",
            "--db",
            str(db),
            "--days",
            "2",
            "--end",
            "2026-11-20",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    expected = generate_reviews(dt.date(2026, 11, 19), 2).num_rows
    assert f"wrote {expected} rows" in result.stdout
    assert "2026-11-19 .. 2026-11-20" in result.stdout
