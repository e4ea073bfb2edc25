"""Readable names for runs started without one, such as ``brave-otter-42``."""

from __future__ import annotations

import random

_ADJECTIVES = (
    "agile", "amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "daring",
    "eager", "fair", "fearless", "gentle", "glad", "golden", "grand", "happy", "hidden", "honest",
    "jolly", "keen", "kind", "lively", "lucky", "merry", "mighty", "nimble", "noble", "polite",
    "proud", "quick", "quiet", "rapid", "rare", "salty", "sharp", "shiny", "silent", "silver",
    "smooth", "snowy", "steady", "sturdy", "sunny", "swift", "tidy", "vivid", "warm", "wise",
)  # fmt: skip

_NOUNS = (
    "albatross", "anchor", "beacon", "buoy", "capstan", "compass", "coral", "cove", "current",
    "dolphin", "dory", "ferry", "fjord", "gull", "harbor", "heron", "island", "jetty", "kelp",
    "keel", "lagoon", "lantern", "mast", "narwhal", "orca", "otter", "oyster", "pelican",
    "pier", "puffin", "reef", "rudder", "sail", "schooner", "seal", "shell", "shoal", "skiff",
    "sloop", "sounding", "squid", "starfish", "tide", "trawler", "walrus", "wave", "whale",
    "wharf", "yawl", "zephyr",
)  # fmt: skip

# A private generator, so that users seeding the ``random`` module don't get repeated names.
_rng = random.Random()


def run_name() -> str:
    """A fresh, readable run name: adjective, noun and a number."""
    return f"{_rng.choice(_ADJECTIVES)}-{_rng.choice(_NOUNS)}-{_rng.randint(1, 999)}"
