"""Generated operator-style text: the corpus for the text encoder's calibration and tests.

Sentences like those an operator or the on-board catalogue would hold: product and file
descriptions, events, log lines and questions. They come from templates with independent
slots, drawn by a seeded generator, so the same seed gives the same sentences on every
machine, and different seeds give different sentences (calibration and evaluation never
share a sentence).

>>> s = sentences(3, seed=1)
>>> len(s), len(set(s)), all(isinstance(x, str) and x for x in s)
(3, 3, True)
>>> sentences(3, seed=1) == s
True
"""

from __future__ import annotations

import random

SUBSYSTEMS = (
    "battery",
    "solar array",
    "reaction wheel",
    "star tracker",
    "magnetorquer",
    "S-band transmitter",
    "UHF receiver",
    "payload camera",
    "thermal control",
    "on-board computer",
    "GPS receiver",
    "sun sensor",
    "propulsion valve",
    "flash storage",
    "power distribution unit",
    "X-band downlink",
    "attitude controller",
    "heater",
    "radiation monitor",
    "infrared imager",
)
CONDITIONS = (
    "temperature above the yellow limit",
    "voltage dropping below nominal",
    "a current spike",
    "unexpected resets",
    "a checksum mismatch",
    "slow response times",
    "intermittent telemetry gaps",
    "a stuck bit in memory",
    "high noise in its readings",
    "saturation after a manoeuvre",
    "degraded output in eclipse",
    "no response to commands",
)
PLACES = (
    "over the Sahara",
    "above the Pacific Ocean",
    "near the South Atlantic Anomaly",
    "over the Alps",
    "along the Amazon river",
    "over Greenland's ice sheet",
    "above the Indian Ocean",
    "over the Gobi desert",
    "near Svalbard",
    "over the Great Barrier Reef",
    "above northern Canada",
    "over the Mediterranean coast",
)
PRODUCTS = (
    "cloud-free image",
    "thermal infrared scene",
    "multispectral tile",
    "wildfire detection map",
    "sea ice classification",
    "flood extent mask",
    "crop health index",
    "ship detection list",
    "night-time lights mosaic",
    "snow cover estimate",
)
ACTIONS = (
    "switched to safe mode",
    "rebooted the payload computer",
    "repaired a weight block from the golden copy",
    "dumped the housekeeping store",
    "rotated the link key",
    "uploaded a new model file",
    "started a calibration sequence",
    "paused the imaging plan",
    "resumed the downlink",
    "cleared the event log",
    "updated the orbit elements",
    "reduced the payload power mode",
)
STATIONS = ("Kiruna", "Svalbard", "Darmstadt", "Matera", "Hartebeesthoek", "Fairbanks")
TIMES = (
    "during the last pass",
    "in the previous orbit",
    "shortly after eclipse entry",
    "before the morning pass",
    "at the start of the imaging window",
    "while the spacecraft was tumbling",
    "two hours ago",
    "yesterday evening",
)
QUESTIONS = (
    "Which {product} did we capture {place}?",
    "Why did the {sub} show {cond}?",
    "When was the {sub} last checked?",
    "Show me every event about the {sub} {time}.",
    "Is there a {product} {place} from {time2}?",
    "What happened after the operator {action}?",
)
STATEMENTS = (
    "The {sub} reported {cond} {time}.",
    "Stored a {product} taken {place} {time}.",
    "File {n}: {product} {place}, {pct} percent cloud cover.",
    "Event {n}: {sub} {cond}; the operator {action}.",
    "Log: ground station {station} acquired signal {time}.",
    "The flight software {action} after the {sub} showed {cond}.",
    "Downlinked the {product} {place} through {station}.",
    "Warning: {sub} {cond} {place}.",
    "Housekeeping shows the {sub} nominal again {time}.",
    "Scheduled a {product} {place} for the next orbit.",
)


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        sub=rng.choice(SUBSYSTEMS),
        cond=rng.choice(CONDITIONS),
        place=rng.choice(PLACES),
        product=rng.choice(PRODUCTS),
        action=rng.choice(ACTIONS),
        station=rng.choice(STATIONS),
        time=rng.choice(TIMES),
        time2=rng.choice(TIMES).replace("during ", "").replace("in ", ""),
        n=rng.randrange(100, 10000),
        pct=rng.randrange(0, 101),
    )


def sentences(n: int, seed: int = 0, *, questions: float = 0.2) -> list[str]:
    """``n`` distinct generated sentences (a share ``questions`` of them questions)."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        pool = QUESTIONS if rng.random() < questions else STATEMENTS
        s = _fill(rng.choice(pool), rng)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


#: The seeds used by the lab: calibration of the int8 encoder, and evaluation.
CALIBRATION_SEED = 17
EVALUATION_SEED = 2026
