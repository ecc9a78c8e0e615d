"""Deterministic customer reviews: the sample source of the nightly sentiment pipeline.

Each day's rows come from a random generator seeded by (seed, date) alone, so a day holds the same
rows whether one day or ninety are generated, and a backfill sees what the nightly run saw. Texts
are assembled from phrase banks that a lexicon model (VADER) reads the way the star rating says,
and every day carries the edge cases real review tables have: empty, NULL and blank texts, texts
of 20k to 160k characters, duplicated ids (identical and edited), other languages, emoji, quotes,
control characters and escapes, and HTML.

    python -m include.sample_data.reviews --db .local/data/reviews.duckdb [--days 90] [--end 2026-11-20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import pyarrow as pa

# --- the catalogue --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    name: str
    category: str
    noun: str  # how a reviewer names it in a sentence: "this {noun}"


_CATALOGUE: dict[str, tuple[tuple[str, str], ...]] = {
    "Electronics": (
        ("Wireless Earbuds", "pair of earbuds"),
        ("Bluetooth Speaker", "speaker"),
        ("USB-C Charger 65W", "charger"),
        ("Smart Watch", "watch"),
        ("Noise-Cancelling Headphones", "headset"),
    ),
    "Home & Kitchen": (
        ("Stainless Steel Kettle", "kettle"),
        ("Air Fryer 5L", "air fryer"),
        ("Chef's Knife", "knife"),
        ("French Press", "French press"),
        ("Nonstick Frying Pan", "frying pan"),
    ),
    "Books": (
        ("The Quiet Orchard (Paperback)", "book"),
        ("Practical SQL Handbook", "handbook"),
        ("Kids' Picture Atlas", "atlas"),
        ("Weeknight Vegetarian Cookbook", "cookbook"),
        ("Mystery at Harbor Street", "novel"),
    ),
    "Beauty": (
        ("Hydrating Face Cream", "face cream"),
        ("Vitamin C Serum", "serum"),
        ("Argan Oil Shampoo", "shampoo"),
        ("Mineral Sunscreen SPF 50", "sunscreen"),
        ("Electric Toothbrush", "toothbrush"),
    ),
    "Sports & Outdoors": (
        ("Yoga Mat", "yoga mat"),
        ("Insulated Water Bottle", "water bottle"),
        ("Trail Running Shoes", "pair of shoes"),
        ("Two-Person Tent", "tent"),
        ("Adjustable Dumbbells", "dumbbell set"),
    ),
    "Toys & Games": (
        ("Wooden Building Blocks", "block set"),
        ("1000-Piece Jigsaw Puzzle", "puzzle"),
        ("Remote Control Car", "toy car"),
        ("Strategy Board Game", "board game"),
        ("Plush Teddy Bear", "teddy bear"),
    ),
    "Clothing": (
        ("Merino Wool Sweater", "sweater"),
        ("Waterproof Rain Jacket", "jacket"),
        ("Slim Fit Jeans", "pair of jeans"),
        ("Cotton T-Shirt 3-Pack", "t-shirt pack"),
        ("Leather Belt", "belt"),
    ),
    "Grocery": (
        ("Single-Origin Coffee Beans", "coffee"),
        ("Organic Green Tea", "tea"),
        ("Dark Chocolate Bar 85%", "chocolate bar"),
        ("Extra Virgin Olive Oil", "olive oil"),
        ("Mixed Nuts 1 kg", "bag of nuts"),
    ),
}


def _products() -> tuple[Product, ...]:
    """The catalogue numbered in order, so product ids are stable as long as the catalogue is."""
    items = [(category, name, noun) for category, pairs in _CATALOGUE.items() for name, noun in pairs]
    return tuple(
        Product(f"p-{number:03d}", name, category, noun)
        for number, (category, name, noun) in enumerate(items, start=1)
    )


PRODUCTS = _products()

# --- phrase banks -----------------------------------------------------------------------------------
# Tones follow the stars: 5 positive, 4 mostly positive, 3 mixed, 2 mostly negative, 1 negative.
# "Mostly" tones add one "X, but Y" sentence; VADER weighs what follows "but" more, so Y carries it.


@dataclass(frozen=True, slots=True)
class _Bank:
    """Sentences of one language, keyed by base tone (positive, negative, mixed)."""

    openers: dict[str, tuple[str, ...]]
    details: dict[str, tuple[str, ...]]
    short: dict[str, tuple[str, ...]]
    fillers: tuple[str, ...]  # neutral sentences that pad longer reviews
    but: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] | None = None  # tone -> (before, after)
    space: str = " "  # between sentences; Japanese uses none


_ENGLISH = _Bank(
    openers={
        "positive": (
            "Absolutely love this {p}.",
            "Best {p} I have ever owned.",
            "Great {p}, highly recommend it.",
            "Really happy with this {p}.",
            "This {p} is fantastic.",
            "Excellent {p} for the price.",
            "Wow, this {p} exceeded my expectations.",
            "Very pleased with my new {p}.",
            "The {p} is amazing.",
            "I love how well this {p} works.",
        ),
        "negative": (
            "The {p} stopped working after {n} days.",
            "Terrible {p}, do not buy.",
            "Very disappointed with this {p}.",
            "Worst {p} I have ever bought.",
            "This {p} is a complete waste of money.",
            "The {p} arrived broken.",
            "Cheap, flimsy and useless {p}.",
            "I regret buying this {p}.",
            "Awful {p}, stay away.",
            "Horrible quality for a {p}.",
        ),
        "mixed": (
            "The {p} is fine, I guess.",
            "Average {p}.",
            "Mixed feelings about this {p}.",
            "The {p} does what it says.",
            "This {p} is okay for the price.",
            "It is an ordinary {p}.",
        ),
    },
    details={
        "positive": (
            "It works perfectly and looks great.",
            "Setup was easy and fast.",
            "The quality is excellent.",
            "Delivery was quick and the packaging was nice.",
            "My {relative} loves it too.",
            "Worth every penny.",
            "Customer service was friendly and helpful.",
            "I use it every day and it still works like new.",
            "Comfortable, sturdy and well made.",
            "I would happily buy it again.",
            "Honestly the best purchase I made this year.",
            "The instructions were clear and helpful.",
            "It arrived early, which was a nice surprise.",
            "Great value and a beautiful design.",
            "Everyone who sees it asks where I got it.",
        ),
        "negative": (
            "Customer support was useless and rude.",
            "The quality is awful.",
            "It broke the second time I used it.",
            "The instructions were confusing and incomplete.",
            "Poor build quality, it feels cheap.",
            "It was damaged and scratched when it arrived.",
            "Total disappointment.",
            "Constant problems since day one.",
            "It overheats and smells horrible.",
            "What a frustrating experience.",
            "I am angry that I wasted money on this.",
            "The seller ignored my complaint.",
            "It stopped working after {n} days.",
            "Returning it, the worst purchase I made this year.",
            "Badly made and ugly in person.",
        ),
        "mixed": (
            "It's okay for the price.",
            "Does the job, nothing special.",
            "About what I expected.",
            "Some good points, some bad.",
            "The color is a bit different from the picture.",
            "Good design, but the battery life is poor.",
            "It works, but the setup was annoying.",
            "Decent quality, although shipping was slow.",
            "Size runs small, so order one size up.",
            "Not great, not terrible.",
            "Average at best.",
            "Nice idea, but the finish could be better.",
        ),
    },
    short={
        "positive": (
            "Love it!",
            "Great value.",
            "Perfect!",
            "Excellent.",
            "Awesome, thanks!",
            "Very good.",
            "Super happy.",
            "Highly recommend!",
            "Great!",
            "Nice.",
        ),
        "negative": (
            "Terrible.",
            "Awful, stay away.",
            "Waste of money.",
            "Broken on arrival.",
            "Horrible!",
            "Very bad.",
            "Useless.",
            "Disappointed.",
            "Worst purchase ever.",
            "Junk, a total waste.",
        ),
        "mixed": (
            "Meh.",
            "It's fine.",
            "OK.",
            "Average.",
            "Not bad, not great.",
            "Could be better.",
            "As described.",
        ),
    },
    fillers=(
        "I bought it for my {relative}.",
        "I have had it for {n} weeks now.",
        "I ordered the {color} one.",
        "It arrived on a {weekday}.",
        "We compared it with two other brands before ordering.",
        "I mostly use it on weekends.",
        "This is my second order from this shop.",
        "I am writing this after {n} days of use.",
        "The package was left at the front door.",
    ),
    but={
        "mostly_positive": (
            (
                "Shipping took a while",
                "The manual is a little vague",
                "The box was a bit dented",
                "It is heavier than I expected",
                "The color is slightly darker than in the photos",
            ),
            (
                "overall it works great",
                "I am really happy with it",
                "the quality is excellent",
                "it is perfect for daily use",
                "I love it anyway",
            ),
        ),
        "mostly_negative": (
            (
                "The design is nice",
                "It looked good at first",
                "Delivery was fast",
                "The price was attractive",
            ),
            (
                "it broke after {n} days",
                "the quality is really poor",
                "it feels cheap and the seams are failing",
                "it stopped working and support was useless",
            ),
        ),
    },
)

_EDITS = {  # what an English review edited later that day appends
    "positive": (
        "EDIT: still going strong after a month, love it.",
        "Update: the seller sent a free spare, great service.",
    ),
    "negative": (
        "EDIT: the replacement broke too, stay away.",
        "Update: awful service, I am still waiting for a refund.",
    ),
    "mixed": ("Edit: fixed a typo.", "Update: after a month it is still just okay."),
}

_SPANISH = _Bank(
    openers={
        "positive": ("Me encanta este producto.", "Muy buena compra.", "Excelente calidad, lo recomiendo."),
        "negative": ("Dejó de funcionar a los {n} días.", "Muy mala calidad.", "Una pérdida de dinero."),
        "mixed": ("Está bien por el precio.", "Cumple su función, nada más."),
    },
    details={
        "positive": (
            "Llegó rápido y bien embalado.",
            "Funciona perfectamente.",
            "Mi familia está encantada.",
            "Vale cada céntimo.",
            "Lo volvería a comprar sin dudarlo.",
        ),
        "negative": (
            "No lo recomiendo.",
            "El servicio al cliente no responde.",
            "Llegó roto y sucio.",
            "Parece muy barato y frágil.",
        ),
        "mixed": ("El color es distinto al de la foto.", "La talla es un poco pequeña.", "Ni bueno ni malo."),
    },
    short={
        "positive": ("¡Me encanta!", "Genial.", "Perfecto."),
        "negative": ("Horrible.", "No funciona.", "Fatal."),
        "mixed": ("Normal.", "Regular.", "Está bien."),
    },
    fillers=("Lo compré para mi hermana.", "Lo uso casi todos los días.", "Llegó un martes."),
)

_GERMAN = _Bank(
    openers={
        "positive": (
            "Ich liebe dieses Produkt.",
            "Sehr gute Qualität.",
            "Top Produkt, klare Kaufempfehlung.",
        ),
        "negative": ("Nach {n} Tagen kaputt.", "Sehr schlechte Qualität.", "Reine Geldverschwendung."),
        "mixed": ("Für den Preis in Ordnung.", "Erfüllt seinen Zweck."),
    },
    details={
        "positive": (
            "Schnelle Lieferung, alles bestens.",
            "Funktioniert einwandfrei.",
            "Das Preis-Leistungs-Verhältnis ist super.",
            "Würde ich jederzeit wieder kaufen.",
            "Meine Familie ist begeistert.",
        ),
        "negative": (
            "Nicht zu empfehlen.",
            "Der Kundenservice antwortet nicht.",
            "Kam beschädigt an.",
            "Fühlt sich billig und wackelig an.",
        ),
        "mixed": ("Die Farbe weicht vom Foto ab.", "Fällt etwas klein aus.", "Weder gut noch schlecht."),
    },
    short={
        "positive": ("Super!", "Klasse.", "Perfekt."),
        "negative": ("Schrott.", "Funktioniert nicht.", "Enttäuschend."),
        "mixed": ("Geht so.", "Okay.", "Mittelmaß."),
    },
    fillers=("Ich habe es für meinen Bruder gekauft.", "Ich benutze es fast täglich.", "Kam am Dienstag an."),
)

_FRENCH = _Bank(
    openers={
        "positive": ("J'adore ce produit.", "Très bonne qualité.", "Excellent achat, je recommande."),
        "negative": (
            "Il a cessé de fonctionner après {n} jours.",
            "Très mauvaise qualité.",
            "De l'argent jeté par les fenêtres.",
        ),
        "mixed": ("Correct pour le prix.", "Il fait le travail, sans plus."),
    },
    details={
        "positive": (
            "Livraison rapide et soignée.",
            "Il fonctionne parfaitement.",
            "Toute la famille est ravie.",
            "Il vaut vraiment son prix.",
            "Je le rachèterais sans hésiter.",
        ),
        "negative": (
            "Je ne le recommande pas.",
            "Le service client ne répond jamais.",
            "Arrivé cassé.",
            "Il fait bon marché et fragile.",
        ),
        "mixed": ("La couleur est différente de la photo.", "Taille un peu petite.", "Ni bon ni mauvais."),
    },
    short={
        "positive": ("Génial !", "Parfait.", "Top !"),
        "negative": ("Nul.", "Ne marche pas.", "Décevant."),
        "mixed": ("Moyen.", "Correct.", "Bof."),
    },
    fillers=("Je l'ai acheté pour ma sœur.", "Je l'utilise presque tous les jours.", "Livré un mardi."),
)

_JAPANESE = _Bank(
    openers={
        "positive": ("とても気に入っています。", "買ってよかったです。", "品質がとても良いです。"),
        "negative": ("{n}日で壊れました。", "品質が悪いです。", "お金の無駄でした。"),
        "mixed": ("値段相応です。", "普通に使えます。"),
    },
    details={
        "positive": (
            "配送が早くて助かりました。",
            "問題なく動作しています。",
            "家族も喜んでいます。",
            "値段以上の価値があります。",
            "また購入したいです。",
        ),
        "negative": (
            "おすすめしません。",
            "サポートの対応が最悪でした。",
            "届いた時点で傷がありました。",
            "作りが安っぽいです。",
        ),
        "mixed": ("色が写真と少し違います。", "サイズが少し小さめです。", "良くも悪くもありません。"),
    },
    short={
        "positive": ("最高\uff01", "大満足です。", "おすすめ\uff01"),  # full-width "!"
        "negative": ("最悪。", "使えません。", "残念です。"),
        "mixed": ("普通。", "まあまあです。", "可もなく不可もなく。"),
    },
    fillers=("妹へのプレゼントに買いました。", "ほぼ毎日使っています。", "火曜日に届きました。"),
    space="",
)

_BANKS: dict[str, _Bank] = {"en": _ENGLISH, "es": _SPANISH, "de": _GERMAN, "fr": _FRENCH, "ja": _JAPANESE}

_RELATIVES = ("wife", "husband", "son", "daughter", "mother", "father", "sister", "brother", "roommate")
_COLORS = ("black", "white", "gray", "navy", "green", "red", "beige")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_BLANKS = (" ", "  ", "\n", "\t", " \n\t ", "\r\n", "   \n\n   ", "\u00a0", "\u3000", "\u2003 \u2003")

_EMOJI = {
    "positive": ("😍", "👍", "❤️", "😊", "🙌", "⭐⭐⭐⭐⭐", "💯", "🥰"),
    "negative": ("😡", "👎", "😤", "🤬", "💩", "😞", "🙄"),
    "mixed": ("🤷", "😐", "🙂", "🤔", "👌"),
}
_EMOJI_EXOTIC = ("👍🏽", "👨‍👩‍👧", "🇪🇸", "🤷‍♀️", "🫠")  # skin tone, ZWJ sequences, a flag, a newer emoji

# Each carries a backslash, tab, carriage return or double quote, the characters that break naive
# CSV, JSON and SQL handling; several also carry non-ASCII text and literal \u escapes.
_SPECIAL_SNIPPETS = (
    'The box says "new & improved" \\o/',
    "Label on the back: C:\\Program Files\\Widget\\readme.txt",
    "Model:\tXR-200\tColor:\tblack",
    "The app shows caf\\u00e9 instead of café, and \\n instead of a new line.",
    'Manual quote: \\"do not submerge\\"',
    "It's 5'11\" tall \u2014 exactly as listed\u2026",
    'JSON from the app: {"ok": true, "msg": "d\\u00e9j\\u00e0 vu"}',
    'Receipt name: "Zoë O\'Brien-Müller"',
    "Zero\u200bwidth and non\u00a0breaking spaces,\tcombining e\u0301, right-to-left \u05e9\u05dc\u05d5\u05dd",
    "Regex on the sticker: ^[a-z]+\\d{3}$",
    "Windows line ending here\r\nand a tab\there",
)

_HTML_WRAPPERS = (
    "<p>{t}</p>",
    '<div class="review-body">{t}</div>',
    "{t}<br>",
    "{t}<br/><br/>Sent from my phone",
    "<b>{t}</b>",
    "<p>{t}</p>\n<p>&nbsp;</p>",
    '{t} <a href="https://example.com/item/123">link</a>',
    "{t} &amp; that&#39;s it",
    '<span style="color:red">{t}</span>',
    "{t}<script>alert(1)</script>",
    '{t} <img src="x" onerror="alert(1)">',
    "<ul><li>{t}</li></ul>",
)

# --- how often things happen ------------------------------------------------------------------------

_RATING_WEIGHTS = {1: 14, 2: 8, 3: 10, 4: 20, 5: 48}  # J-shaped, as on most review sites
_TONES = {5: "positive", 4: "mostly_positive", 3: "mixed", 2: "mostly_negative", 1: "negative"}
_MISMATCH_SHARE = 0.02  # stars that disagree with the text: a wrong click, sarcasm
_HOUR_WEIGHTS = (2, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 7, 8, 7, 6, 6, 7, 8, 9, 10, 10, 9, 6, 3)
_CUSTOMERS = 25_000
_LENGTHS = {"short": (1, 1), "brief": (2, 2), "medium": (3, 6), "long": (7, 16), "essay": (20, 45)}
_LENGTH_WEIGHTS = (15, 35, 33, 13, 4)
_FILLER_SHARE = 0.25

# Shares of a day's rows. Text kinds exclude each other; languages, decorations and duplicates are
# drawn independently. Every case gets at least one row on any day of 100 rows or more.
TEXT_KIND_SHARES = {"empty": 0.02, "null": 0.02, "whitespace": 0.015, "long": 0.008, "huge": 0.003}
LANGUAGE_SHARES = {"es": 0.03, "de": 0.025, "fr": 0.025, "ja": 0.02}
DECORATION_SHARES = {"emoji": 0.05, "special": 0.03, "html": 0.03}
DUPLICATE_SHARES = {"exact": 0.015, "edited": 0.015}
_LONG_TEXT_CHARS = {"long": (20_000, 60_000), "huge": (100_000, 160_000)}
_EVERY_CASE_FROM_ROWS = 100
_MAX_PER_DAY = 9_999  # four digits of the review id

SCHEMA = pa.schema(
    [
        pa.field("review_id", pa.string(), nullable=False),
        pa.field("product_id", pa.string(), nullable=False),
        pa.field("product_name", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("rating", pa.int32(), nullable=False),
        pa.field("language", pa.string(), nullable=False),
        pa.field("review_text", pa.string()),
        pa.field("created_at", pa.timestamp("us"), nullable=False),
        pa.field("review_date", pa.date32(), nullable=False),
    ]
)

# --- texts --------------------------------------------------------------------------------------------


def _base(tone: str) -> str:
    """The bank key of a tone: mostly-positive reviews draw on the positive sentences, and so on."""
    return tone.removeprefix("mostly_")


def _fill(rng: random.Random, template: str, noun: str) -> str:
    if "{" not in template:
        return template
    return template.format(
        p=noun,
        n=rng.randint(2, 30),
        relative=rng.choice(_RELATIVES),
        color=rng.choice(_COLORS),
        weekday=rng.choice(_WEEKDAYS),
    )


def _sentences(rng: random.Random, bank: _Bank, tone: str, noun: str, count: int) -> list[str]:
    """An opener that sets the tone, a 'but' sentence for mostly-tones, then details and neutral filler."""
    base = _base(tone)
    out = [_fill(rng, rng.choice(bank.openers[base]), noun)]
    if bank.but and tone in bank.but:
        before, after = bank.but[tone]
        out.append(_fill(rng, f"{rng.choice(before)}, but {rng.choice(after)}.", noun))
    while len(out) < count:
        pool = bank.fillers if rng.random() < _FILLER_SHARE else bank.details[base]
        out.append(_fill(rng, rng.choice(pool), noun))
    return out


def _paragraphs(rng: random.Random, sentences: list[str], space: str) -> str:
    """Joins sentences into paragraphs of four to eight, as people break longer reviews."""
    paragraphs, start = [], 0
    while start < len(sentences):
        size = rng.randint(4, 8)
        paragraphs.append(space.join(sentences[start : start + size]))
        start += size
    return "\n\n".join(paragraphs)


def _review_text(rng: random.Random, language: str, tone: str, noun: str) -> str:
    """A review from two words to a few hundred, mostly short, as real ones are."""
    bank = _BANKS[language]
    length = rng.choices(tuple(_LENGTHS), weights=_LENGTH_WEIGHTS)[0]
    if length == "short":
        return rng.choice(bank.short[_base(tone)])
    sentences = _sentences(rng, bank, tone, noun, rng.randint(*_LENGTHS[length]))
    if len(sentences) <= 6:
        return bank.space.join(sentences)
    return _paragraphs(rng, sentences, bank.space)


def _long_text(rng: random.Random, language: str, tone: str, noun: str, target: int) -> str:
    """At least `target` characters; sentences are filled once and then drawn in bulk to stay fast."""
    bank = _BANKS[language]
    base = _base(tone)
    pool = [_fill(rng, template, noun) for template in (*bank.details[base] * 2, *bank.fillers)]
    sentences = [_fill(rng, rng.choice(bank.openers[base]), noun)]
    size = len(sentences[0])
    while size < target:
        batch = rng.choices(pool, k=256)
        sentences += batch
        size += sum(map(len, batch)) + len(bank.space) * len(batch)
    return _paragraphs(rng, sentences, bank.space)


def _with_emoji(rng: random.Random, text: str, tone: str) -> str:
    emoji = "".join(rng.choices(_EMOJI[_base(tone)], k=rng.randint(1, 3)))
    if rng.random() < 0.2:
        emoji += rng.choice(_EMOJI_EXOTIC)
    return f"{emoji} {text}" if rng.random() < 0.2 else f"{text} {emoji}"


def _with_special(rng: random.Random, text: str, tone: str) -> str:
    if rng.random() < 0.3:
        text = text.replace("'", "\u2019")  # curly apostrophes, as phones type them
    separator = rng.choice(("\n", "\r\n", "\t", "\n\t", "  \n"))
    return f"{text}{separator}{rng.choice(_SPECIAL_SNIPPETS)}"


def _with_html(rng: random.Random, text: str, tone: str) -> str:
    if rng.random() < 0.5:
        text = text.replace(". ", ".<br>", 1)
    return rng.choice(_HTML_WRAPPERS).replace("{t}", text)


_DECORATORS: dict[str, Callable[[random.Random, str, str], str]] = {
    "emoji": _with_emoji,
    "special": _with_special,
    "html": _with_html,
}


def _text(
    rng: random.Random, kind: str, language: str, tone: str, noun: str, decorations: list[str]
) -> str | None:
    if kind == "null":
        return None
    if kind == "empty":
        return ""
    if kind == "whitespace":
        return rng.choice(_BLANKS)
    if kind in _LONG_TEXT_CHARS:
        return _long_text(rng, language, tone, noun, rng.randint(*_LONG_TEXT_CHARS[kind]))
    text = _review_text(rng, language, tone, noun)
    for decoration in decorations:
        text = _DECORATORS[decoration](rng, text, tone)
    return text


# --- one day ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Review:
    review_id: str
    product: Product
    customer_id: str
    rating: int
    language: str
    review_text: str | None
    created_at: dt.datetime
    tone: str  # what the text was written to say; not a column
    kind: str  # normal, empty, null, whitespace, long or huge; not a column


def _day_rng(seed: int, day: dt.date) -> random.Random:
    """A generator for one day alone, so a day's rows never depend on the range requested."""
    return random.Random(f"reviews/{seed}/{day.isoformat()}")


def _count(rows: int, share: float) -> int:
    count = round(rows * share)
    return max(1, count) if rows >= _EVERY_CASE_FROM_ROWS else count


def _times(rng: random.Random, day: dt.date, rows: int) -> list[dt.datetime]:
    """Sorted times through the day, busiest in the evening."""
    midnight = dt.datetime.combine(day, dt.time())
    hours = rng.choices(range(24), weights=_HOUR_WEIGHTS, k=rows)
    return sorted(midnight + dt.timedelta(hours=hour, seconds=rng.randrange(3600)) for hour in hours)


def _assign(rng: random.Random, rows: int, shares: dict[str, float], default: str) -> list[str]:
    """Gives each share its count of distinct, randomly placed rows; the rest keep `default`."""
    labels = [default] * rows
    order = rng.sample(range(rows), rows)
    taken = 0
    for label, share in shares.items():
        count = _count(rows, share)
        for index in order[taken : taken + count]:
            labels[index] = label
        taken += count
    return labels


def _decorations(rng: random.Random, kinds: list[str]) -> list[list[str]]:
    """Emoji, special characters and HTML on ordinary texts; one text may get several."""
    decorations: list[list[str]] = [[] for _ in kinds]
    normal = [index for index, kind in enumerate(kinds) if kind == "normal"]
    for decoration, share in DECORATION_SHARES.items():
        for index in rng.sample(normal, min(len(normal), _count(len(kinds), share))):
            decorations[index].append(decoration)
    return decorations


def _tone(rng: random.Random, rating: int) -> str:
    if rng.random() < _MISMATCH_SHARE:
        return rng.choice(tuple(_TONES.values()))
    return _TONES[rating]


def _review(
    rng: random.Random,
    review_id: str,
    created_at: dt.datetime,
    kind: str,
    language: str,
    decorations: list[str],
) -> _Review:
    product = rng.choice(PRODUCTS)
    rating = rng.choices(tuple(_RATING_WEIGHTS), weights=tuple(_RATING_WEIGHTS.values()))[0]
    tone = _tone(rng, rating)
    return _Review(
        review_id=review_id,
        product=product,
        customer_id=f"cu-{rng.randrange(1, _CUSTOMERS):05d}",
        rating=rating,
        language=language,
        review_text=_text(rng, kind, language, tone, product.noun, decorations),
        created_at=created_at,
        tone=tone,
        kind=kind,
    )


def _edited(rng: random.Random, review: _Review) -> _Review:
    """The same review saved again later that day with an update appended, as review sites allow."""
    last_second = dt.datetime.combine(review.created_at.date(), dt.time(23, 59, 59))
    later = min(review.created_at + dt.timedelta(minutes=rng.randint(5, 360)), last_second)
    separator = rng.choice(("\n\n", " "))
    edit = rng.choice(_EDITS[_base(review.tone)])
    return replace(review, review_text=f"{review.review_text}{separator}{edit}", created_at=later)


def _with_duplicates(rng: random.Random, reviews: list[_Review]) -> list[_Review]:
    """Adds ids delivered twice: identical rows (at-least-once ingestion) and edited English reviews."""
    editable = [i for i, review in enumerate(reviews) if review.kind == "normal" and review.language == "en"]
    edited = rng.sample(editable, min(len(editable), _count(len(reviews), DUPLICATE_SHARES["edited"])))
    chosen = set(edited)
    copyable = [
        i for i, review in enumerate(reviews) if review.kind not in _LONG_TEXT_CHARS and i not in chosen
    ]
    copied = rng.sample(copyable, min(len(copyable), _count(len(reviews), DUPLICATE_SHARES["exact"])))
    extra = [reviews[i] for i in sorted(copied)] + [_edited(rng, reviews[i]) for i in sorted(edited)]
    return sorted(reviews + extra, key=lambda review: (review.created_at, review.review_id))


def _day(day: dt.date, per_day: tuple[int, int], seed: int) -> list[_Review]:
    rng = _day_rng(seed, day)
    rows = rng.randint(*per_day)
    times = _times(rng, day, rows)
    kinds = _assign(rng, rows, TEXT_KIND_SHARES, default="normal")
    languages = _assign(rng, rows, LANGUAGE_SHARES, default="en")
    decorations = _decorations(rng, kinds)
    reviews = [
        _review(rng, f"rv-{day:%Y%m%d}{i + 1:04d}", times[i], kinds[i], languages[i], decorations[i])
        for i in range(rows)
    ]
    return _with_duplicates(rng, reviews)


# --- public API ---------------------------------------------------------------------------------------


def _to_arrow(reviews: list[_Review]) -> pa.Table:
    return pa.table(
        {
            "review_id": [r.review_id for r in reviews],
            "product_id": [r.product.product_id for r in reviews],
            "product_name": [r.product.name for r in reviews],
            "category": [r.product.category for r in reviews],
            "customer_id": [r.customer_id for r in reviews],
            "rating": [r.rating for r in reviews],
            "language": [r.language for r in reviews],
            "review_text": [r.review_text for r in reviews],
            "created_at": [r.created_at for r in reviews],
            "review_date": [r.created_at.date() for r in reviews],
        },
        schema=SCHEMA,
    )


def generate_reviews(
    start: dt.date, days: int, per_day: tuple[int, int] = (200, 400), seed: int = 42
) -> pa.Table:
    """Reviews created on `days` days from `start`, ordered by created_at (naive UTC).

    Ids are rv-YYYYMMDDNNNN, unique except for the deliberate duplicates within a day.
    """
    if days < 0:
        raise ValueError(f"days must be >= 0, got {days}")
    low, high = per_day
    if not 1 <= low <= high <= _MAX_PER_DAY:
        raise ValueError(f"per_day must satisfy 1 <= low <= high <= {_MAX_PER_DAY}, got {per_day}")
    if isinstance(start, dt.datetime):
        start = start.date()
    reviews = [
        review for offset in range(days) for review in _day(start + dt.timedelta(offset), per_day, seed)
    ]
    return _to_arrow(reviews)


def review_date_range(
    start: dt.date | None = None, days: int = 90, end: dt.date | None = None
) -> tuple[dt.date, dt.date]:
    """First and last day, both inclusive: `days` days from `start`, or ending on `end` (default today)."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if start is not None and end is not None:
        raise ValueError("give start or end, not both")
    if start is not None:
        return start, start + dt.timedelta(days - 1)
    last = end or dt.date.today()
    return last - dt.timedelta(days - 1), last


def _quoted(table: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in table.split("."))


def write_reviews(
    db_path: Path | str,
    table: str = "reviews",
    start: dt.date | None = None,
    days: int = 90,
    end: dt.date | None = None,
    seed: int = 42,
) -> int:
    """Creates or replaces `table` (optionally schema.table) in a DuckDB file; returns its row count.

    By default the 90 days ending today, so yesterday, the day a nightly run processes, is complete.
    The Arrow table goes in with one CREATE TABLE AS, never row by row.
    """
    first, last = review_date_range(start, days, end)
    reviews = generate_reviews(first, (last - first).days + 1, seed=seed)
    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        if "." in table:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quoted(table.rsplit('.', 1)[0])}")
        con.register("generated_reviews", reviews)
        con.execute(f"CREATE OR REPLACE TABLE {_quoted(table)} AS SELECT * FROM generated_reviews")
        con.unregister("generated_reviews")
        (count,) = con.execute(f"SELECT count(*) FROM {_quoted(table)}").fetchone()
    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m include.sample_data.reviews", description="Write sample customer reviews to DuckDB."
    )
    parser.add_argument("--db", required=True, type=Path, help="DuckDB file, created if missing")
    parser.add_argument("--table", default="reviews", help="table name, optionally schema.table")
    parser.add_argument("--days", type=int, default=90, help="number of days, ending on --end")
    parser.add_argument("--end", type=dt.date.fromisoformat, default=None, help="last day (default: today)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    first, last = review_date_range(days=args.days, end=args.end or dt.date.today())
    rows = write_reviews(args.db, args.table, days=args.days, end=last, seed=args.seed)
    print(
        f"wrote {rows} rows to {args.table} in {args.db}: {first} .. {last} ({args.days} days, seed {args.seed})"
    )


if __name__ == "__main__":
    main()
