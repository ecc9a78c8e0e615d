"""Golden prompts: requests phrased the way people write them, with what a plausible answer holds.

Eight per seed use case (sentiment of reviews, content generation, offline evaluation, data
extraction, embeddings for a corpus), in the layouts people use: one line, an instruction then
the text, a system message plus the text, quoted text, ``Review:``-style markers, or none.
``test_golden_prompts.py`` sends each through the engine and checks the expectations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"


@dataclass(frozen=True)
class Golden:
    """One request and the checks a plausible answer passes.

    ``fields``: exact values of JSON answer fields; ``within``: numeric fields and their inclusive
    range; ``contains`` / ``excludes``: case-insensitive substrings of the answer text;
    ``one_of``: the whole answer (stripped of a final full stop) must be one of these.
    """

    name: str
    use_case: str
    layout: str
    plausible: str  # in words: what a person would accept as an answer
    endpoint: str = CHAT
    body: dict = field(default_factory=dict)
    schema: dict | None = None  # json_schema the answer must validate against
    fields: dict = field(default_factory=dict)
    within: dict = field(default_factory=dict)
    contains: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()
    max_words: int | None = None
    min_lines: int | None = None


@dataclass(frozen=True)
class GoldenEmbedding:
    """A corpus and the geometry a plausible embedding gives it: ``closer`` lists
    (anchor, near, far) indices where cos(anchor, near) must beat cos(anchor, far)."""

    name: str
    plausible: str
    inputs: tuple[str, ...]
    closer: tuple[tuple[int, int, int], ...] = ()
    min_similarity: tuple[tuple[int, int, float], ...] = ()
    dimensions: int | None = None


def user(text: str, system: str | None = None, **extra) -> dict:
    messages = [{"role": "system", "content": system}] if system else []
    return {"model": "gpt-4o-mini", "messages": [*messages, {"role": "user", "content": text}], **extra}


def schema_format(schema: dict, name: str = "answer") -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def strict_object(properties: dict) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


SENTIMENT_SCHEMA = strict_object(
    {
        "label": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "reason": {"type": "string", "maxLength": 300},
    }
)
DEMO_SYSTEM = (
    "You classify the sentiment of customer reviews for an online shop.\n"
    "Answer with the overall sentiment of the review (positive, neutral or negative), your confidence\n"
    "between 0 and 1, and a short reason (at most 25 words) that quotes the words that decided it."
)

SENTIMENT = [
    Golden(
        "labels-listed-inline",
        "sentiment",
        "one line, Review: marker",
        "Positive, explained by the review's own words; the instruction's label list is not scored.",
        body=user(
            "Classify the sentiment of this review as positive, neutral or negative. "
            "Review: This product is amazing! I love it."
        ),
        contains=("positive", "love", "amazing"),
        excludes=("negative", "neutral"),
    ),
    Golden(
        "one-word-lead-then-text",
        "sentiment",
        "instruction then text on following lines",
        "The single word Negative.",
        body=user(
            "What is the sentiment of the following customer review? Answer with one word.\n\n"
            "The blender stopped working after two weeks and support never replied. Total waste of money."
        ),
        one_of=("Negative",),
    ),
    Golden(
        "system-names-upper-case-labels",
        "sentiment",
        "system plus user, no marker",
        "NEUTRAL, spelled as the system message spells its labels.",
        body=user(
            "The package arrived on Tuesday and the box contained the charger and a manual.",
            system="You are a sentiment classifier. Reply with exactly one of: POSITIVE, NEUTRAL, NEGATIVE. "
            "Output only the label.",
        ),
        one_of=("NEUTRAL",),
    ),
    Golden(
        "quoted-review-question",
        "sentiment",
        "quoted text",
        "Negative, citing 'waste'; the words positive/negative of the question are not scored.",
        body=user(
            'Is this review positive or negative? "Stopped working after two days, total waste of money."'
        ),
        contains=("negative", "waste"),
        excludes=("positive words",),
    ),
    Golden(
        "demo-prompt-json-schema",
        "sentiment",
        "system plus user with Product/Rating/Review lines",
        "label negative with a reason quoting the complaint (cracked/leaks), confidence in [0, 1].",
        body=user(
            "Product: Glass Teapot (Kitchen)\nRating: 1 of 5\n"
            "Review: The lid cracked on the first day and it leaks everywhere. Very disappointed.",
            system=DEMO_SYSTEM,
            response_format=schema_format(SENTIMENT_SCHEMA, "review_sentiment"),
        ),
        schema=SENTIMENT_SCHEMA,
        fields={"label": "negative"},
        within={"confidence": (0.5, 1.0)},
        contains=("disappointed",),
    ),
    Golden(
        "responses-happy-unhappy",
        "sentiment",
        "responses instructions plus input, no marker",
        "Happy: the instruction's own label for a positive text.",
        endpoint=RESPONSES,
        body={
            "model": "gpt-4.1-mini",
            "instructions": "Label the customer's mood as happy or unhappy. Answer only with the label.",
            "input": "Absolutely thrilled with the fast delivery and the quality of the stitching.",
        },
        one_of=("happy",),
    ),
    Golden(
        "stars-scale",
        "sentiment",
        "one line, scale",
        "A low number of stars (1 or 2) for an angry review, on the 1-to-5 scale asked for.",
        body=user(
            "Rate the sentiment of this review from 1 to 5, where 5 is very positive. Reply only with the number. "
            "Review: Horrible customer service, the order never arrived and nobody answers the phone."
        ),
        one_of=("1", "2"),
    ),
    Golden(
        "json-object-mixed",
        "sentiment",
        "one line, colon, json_object",
        "A JSON object whose label is one of the instruction's labels and fits a review with praise "
        "and a complaint (mixed or negative), with a reason naming both sides.",
        body=user(
            "Return JSON with a label (positive, negative or mixed) for this review: "
            "Great sound quality, but the battery is terrible and dies within an hour.",
            response_format={"type": "json_object"},
        ),
        contains=("great", "terrible"),
        fields={"label": "mixed"},
    ),
]

GENERATION = [
    Golden(
        "product-description-one-line",
        "generation",
        "one line, no marker",
        "Prose about the kettle naming its 1.7 L capacity and auto shut-off, not echoing the request.",
        body=user(
            "Write a short product description for a stainless steel kettle with 1.7 L capacity and auto shut-off."
        ),
        contains=("kettle", "1.7 L", "auto shut-off"),
        excludes=("write", "description"),
    ),
    Golden(
        "reply-to-complaint",
        "generation",
        "instruction then text",
        "An apology about the blender offering a replacement or refund, not a summary of the complaint.",
        body=user(
            "Draft a friendly reply to this customer review.\n"
            "The blender broke after two weeks and I want my money back."
        ),
        contains=("sorry", "blender", "refund"),
        excludes=("draft", "summary:"),
    ),
    Golden(
        "headline-from-system",
        "generation",
        "system plus user",
        "A short title-case headline naming the earbuds.",
        body=user(
            "Noise-cancelling wireless earbuds with a 30-hour battery life",
            system="You write catchy headlines for product pages.",
        ),
        contains=("Earbuds",),
        excludes=("headline", "you write"),
        max_words=12,
    ),
    Golden(
        "tweet-quoted-product",
        "generation",
        "quoted text",
        "A tweet about the bamboo cutting board with a hashtag.",
        body=user('Write a tweet announcing "our new bamboo cutting board, made from sustainable bamboo"'),
        contains=("bamboo cutting board", "#"),
        excludes=("write a tweet",),
        max_words=40,
    ),
    Golden(
        "features-under-input-marker",
        "generation",
        "Input: marker",
        "A description of the office chair naming lumbar support and the mesh back.",
        body=user(
            "Generate a product description.\n"
            "Input: ergonomic office chair, adjustable lumbar support, breathable mesh back"
        ),
        contains=("office chair", "lumbar support", "mesh back"),
        excludes=("generate", "input:"),
    ),
    Golden(
        "haiku-responses",
        "generation",
        "responses, bare request",
        "Three short lines about autumn.",
        endpoint=RESPONSES,
        body={"model": "gpt-4.1-mini", "input": "Write a haiku about autumn leaves."},
        contains=("autumn",),
        excludes=("haiku", "write"),
        min_lines=3,
    ),
    Golden(
        "sale-email",
        "generation",
        "one line, no marker",
        "An email with a subject line that mentions the summer sale and the 20% off garden tools.",
        body=user(
            "Compose a short email to customers announcing our summer sale with 20% off all garden tools."
        ),
        contains=("subject:", "summer sale", "20% off all garden tools"),
        excludes=("compose",),
    ),
    Golden(
        "tagline-word-limit",
        "generation",
        "one line, length limit",
        "A tagline of at most 12 words about the water bottle keeping drinks cold.",
        body=user(
            "In under 12 words, write a tagline for a reusable water bottle that keeps drinks cold for 24 hours."
        ),
        contains=("water bottle",),
        excludes=("tagline", "under 12 words"),
        max_words=12,
    ),
]

JUDGE_SCHEMA = strict_object(
    {
        "score": {"type": "integer", "minimum": 1, "maximum": 10},
        "reasoning": {"type": "string"},
        "pass": {"type": "boolean"},
    }
)

EVALUATION = [
    Golden(
        "reference-match",
        "evaluation",
        "instruction then labelled parts",
        "Top score: the answer states the reference (Paris).",
        body=user(
            "Grade the answer on a 1-5 scale.\nQuestion: What is the capital of France?\n"
            "Reference: Paris\nAnswer: The capital of France is Paris."
        ),
        contains=("5/5",),
    ),
    Golden(
        "reference-mismatch",
        "evaluation",
        "one line, labelled parts",
        "A low score: six legs contradicts the reference's eight.",
        body=user(
            "Score the answer from 1 to 5. Question: How many legs does a spider have? "
            "Reference: A spider has 8 legs. Answer: Spiders have six legs."
        ),
        contains=("score: 1/5",),
    ),
    Golden(
        "judge-json-schema",
        "evaluation",
        "system plus user, json_schema",
        "A high score (7+) and pass for an answer that matches the expected one.",
        body=user(
            "Question: What does HTTP status 404 mean?\nExpected answer: The requested resource was not found.\n"
            "Candidate answer: 404 means the server could not find the requested resource.",
            system="You are a strict grader. Evaluate the candidate answer against the expected answer.",
            response_format=schema_format(JUDGE_SCHEMA, "grade"),
        ),
        schema=JUDGE_SCHEMA,
        fields={"pass": True},
        within={"score": (7, 10)},
    ),
    Golden(
        "refusal-is-irrelevant",
        "evaluation",
        "instruction then labelled parts",
        "The lowest relevance: the answer does not address the question.",
        body=user(
            "Rate the relevance of the answer to the question from 1 to 5.\n"
            "Question: How do I reset my router?\nAnswer: I don't know."
        ),
        contains=("1/5", "does not address"),
    ),
    Golden(
        "faithful-summary-yes-no",
        "evaluation",
        "instruction then Source/Summary",
        "Yes: every claim of the summary is in the source.",
        body=user(
            "Is the summary faithful to the source? Answer yes or no.\n"
            "Source: The team meeting moved to Friday at 3 pm in room 4.\n"
            "Summary: The meeting moved to Friday at 3 pm."
        ),
        contains=("yes",),
        excludes=("no.",),
    ),
    Golden(
        "trailing-instruction-quoted",
        "evaluation",
        "quoted parts, instruction last",
        "Correct: the model answer gives the expected 100 °C.",
        body=user(
            'Question: "What is the boiling point of water at sea level?" Expected: "100 degrees Celsius." '
            'Model answer: "Water boils at 100 degrees Celsius at sea level." '
            "Is the model answer correct? Reply correct or incorrect."
        ),
        contains=("correct",),
        excludes=("incorrect",),
    ),
    Golden(
        "helpfulness-json-object",
        "evaluation",
        "instruction then labelled parts, json_object",
        "A JSON score of 6 or more on the asked 1-10 scale for a concrete, on-topic answer.",
        body=user(
            "Evaluate the helpfulness of the response on a scale of 1 to 10 and return JSON.\n"
            "Question: How do I descale a kettle?\n"
            "Response: Fill the kettle with equal parts water and white vinegar, boil it, let it sit for an hour, "
            "then rinse the kettle well.",
            response_format={"type": "json_object"},
        ),
        within={"score": (6, 10)},
    ),
    Golden(
        "unfaithful-summary",
        "evaluation",
        "system plus user",
        "A low faithfulness score (1 or 2): nothing in the summary is in the article.",
        body=user(
            "Article: The company reported revenue of 5 million dollars in 2024, up from 4 million.\n"
            "Summary: The firm went bankrupt and laid off every employee.",
            system="Assess how faithful the summary is to the article on a scale from 1 to 5.",
        ),
        contains=("score: 1/5",),
    ),
]

PRICE_EMAIL_SCHEMA = strict_object({"email": {"type": "string"}, "price_usd": {"type": "number"}})
ORDER_SCHEMA = strict_object(
    {
        "customer_name": {"type": "string"},
        "order_date": {"type": "string", "format": "date"},
        "quantity": {"type": "integer", "minimum": 1},
        "product": {"type": "string"},
        "total": {"type": "number", "minimum": 0},
    }
)
CONTACT_SCHEMA = strict_object(
    {
        "email": {"type": ["string", "null"]},
        "phone": {"type": ["string", "null"], "description": "phone number"},
    }
)
TICKET_SCHEMA = strict_object(
    {
        "category": {"type": "string", "enum": ["billing", "shipping", "product_quality", "other"]},
        "wants_refund": {"type": "boolean"},
        "mentions_delivery": {"type": "boolean"},
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "summary": {"type": "string", "maxLength": 120},
    }
)
REVIEW_FACTS_SCHEMA = strict_object(
    {
        "reviewer": {"type": "string"},
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        "posted_on": {"type": "string", "description": "the date the review was posted, YYYY-MM-DD"},
        "would_recommend": {"type": "boolean"},
        "keywords": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
    }
)

EXTRACTION = [
    Golden(
        "email-and-price",
        "extraction",
        "instruction then text, json_schema",
        "The address and the amount the text gives: jane.doe@example.com and 49.99.",
        body=user(
            "Extract the customer's email and the price paid.\n"
            "I paid $49.99 for the kettle; reach me at jane.doe@example.com if you need anything.",
            response_format=schema_format(PRICE_EMAIL_SCHEMA),
        ),
        schema=PRICE_EMAIL_SCHEMA,
        fields={"email": "jane.doe@example.com", "price_usd": 49.99},
    ),
    Golden(
        "email-one-line-text",
        "extraction",
        "one line, colon",
        "The support address, nothing invented.",
        body=user(
            "Extract the email address from: Please contact support at help@kettle-co.com for returns."
        ),
        contains=("help@kettle-co.com",),
        excludes=("example.com",),
    ),
    Golden(
        "order-responses-schema",
        "extraction",
        "responses instructions plus input, text.format",
        "Maria Lopez, 2025-03-03, 3 mugs, a total of 36.0.",
        endpoint=RESPONSES,
        body={
            "model": "gpt-4.1-mini",
            "instructions": "Extract the order details from the customer's message.",
            "input": "Hi, this is Maria Lopez. On March 3, 2025 I ordered 3 ceramic mugs for a total of $36.00.",
            "text": {
                "format": {"type": "json_schema", "name": "order", "schema": ORDER_SCHEMA, "strict": True}
            },
        },
        schema=ORDER_SCHEMA,
        fields={"customer_name": "Maria Lopez", "order_date": "2025-03-03", "quantity": 3, "total": 36.0},
        contains=("mugs",),
    ),
    Golden(
        "nullable-missing-email",
        "extraction",
        "system plus user, nullable fields",
        "No email in the text, so null; the phone number as written.",
        body=user(
            "You can call me on +1 555-123-4567 after 5 pm.",
            system="Extract contact details. Use null for anything the message does not give.",
            response_format=schema_format(CONTACT_SCHEMA),
        ),
        schema=CONTACT_SCHEMA,
        fields={"email": None, "phone": "+1 555-123-4567"},
    ),
    Golden(
        "quoted-link-and-phone",
        "extraction",
        "quoted text",
        "The website and the phone number from inside the quotes.",
        body=user(
            'Pull out the website and the phone number from "Visit https://example.org/help or call (020) 7946 0958."'
        ),
        contains=("https://example.org/help", "(020) 7946 0958"),
    ),
    Golden(
        "ticket-triage",
        "extraction",
        "one line, Ticket: marker, json_schema",
        "Category billing, a refund wanted, no delivery mentioned, negative, a summary from the ticket.",
        body=user(
            "Triage this support ticket. Ticket: I was charged twice on my last invoice and I want a refund "
            "immediately. This is unacceptable.",
            response_format=schema_format(TICKET_SCHEMA),
        ),
        schema=TICKET_SCHEMA,
        fields={
            "category": "billing",
            "wants_refund": True,
            "mentions_delivery": False,
            "sentiment": "negative",
        },
        contains=("charged twice",),
        excludes=("triage",),
    ),
    Golden(
        "review-facts",
        "extraction",
        "Review: marker, json_schema with descriptions",
        "Reviewer Tom Baker, 4 stars, posted 2025-01-12, recommends it, keywords about the chair.",
        body=user(
            "Extract the facts of this review as JSON.\n"
            "Review: Posted 12 January 2025 by Tom Baker. 4 out of 5 stars: a comfy chair, sturdy frame, "
            "slightly squeaky wheels. I would recommend it.",
            response_format=schema_format(REVIEW_FACTS_SCHEMA),
        ),
        schema=REVIEW_FACTS_SCHEMA,
        fields={"reviewer": "Tom Baker", "rating": 4, "posted_on": "2025-01-12", "would_recommend": True},
        contains=("chair",),
    ),
    Golden(
        "date-and-rating-json-object",
        "extraction",
        "one line, json_object",
        "The posting date as an ISO date and the 3/5 rating.",
        body=user(
            "Extract the date and the star rating as json: Posted on 2024-11-02, 3 out of 5 stars, arrived late.",
            response_format={"type": "json_object"},
        ),
        fields={"date": "2024-11-02", "rating": "3/5"},
    ),
]

EMBEDDINGS_CASES = [
    GoldenEmbedding(
        "near-duplicates",
        "A reworded sentence sits closer to the original than an unrelated one.",
        (
            "The kettle boils water quickly.",
            "This kettle boils water very quickly!",
            "Quarterly revenue grew five percent.",
        ),
        closer=((0, 1, 2),),
    ),
    GoldenEmbedding(
        "query-to-document",
        "A question about descaling is closest to the descaling document.",
        (
            "how to descale a kettle",
            "Descale your kettle with white vinegar and water once a month.",
            "Shipping to Canada takes five to seven business days.",
            "Our return policy allows refunds within 30 days.",
        ),
        closer=((0, 1, 2), (0, 1, 3)),
    ),
    GoldenEmbedding(
        "case-and-punctuation",
        "Case and punctuation barely move a text.",
        ("Refund policy", "refund policy!!", "Warranty terms"),
        min_similarity=((0, 1, 0.95),),
        closer=((0, 1, 2),),
    ),
    GoldenEmbedding(
        "topics-cluster",
        "Reviews about batteries group together, apart from reviews about delivery.",
        (
            "The battery dies after an hour.",
            "Battery life is poor, it dies quickly.",
            "The delivery was late by a week.",
            "Late delivery, the courier lost the parcel.",
        ),
        closer=((0, 1, 2), (0, 1, 3), (2, 3, 0), (2, 3, 1)),
    ),
    GoldenEmbedding(
        "shortened-dimensions",
        "Shortened vectors keep their length, unit norm and neighbourhoods.",
        ("green tea with lemon", "lemon green tea", "diesel engine repair"),
        closer=((0, 1, 2),),
        dimensions=256,
    ),
    GoldenEmbedding(
        "corpus-normalised",
        "Every vector of a mixed corpus has unit length, including very short and long texts.",
        ("ok", "A" * 3, "word " * 500, "Mixed 😍 emoji and ünïcödé text.", "1234 5678"),
    ),
    GoldenEmbedding(
        "shared-entity",
        "Two sentences about the same product are closer than the product and a different one.",
        (
            "The Acme espresso machine makes great coffee.",
            "Acme espresso machine: descaling instructions.",
            "The Zenith vacuum cleaner is loud.",
        ),
        closer=((0, 1, 2),),
    ),
    GoldenEmbedding(
        "word-order",
        "The same words in another order stay very close.",
        ("fast shipping and good price", "good price and fast shipping", "terrible customer support"),
        min_similarity=((0, 1, 0.6),),
        closer=((0, 1, 2),),
    ),
]

CHAT_GOLDEN = [*SENTIMENT, *GENERATION, *EVALUATION, *EXTRACTION]
