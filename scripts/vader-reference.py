#!/usr/bin/env python3
"""Reference VADER scores for Probity's Rust port (probes/src/detectors/vader.rs).

Builds 300 sentences deterministically from Probity's own word lists and patterns (each rule of
VADER is exercised: negations, boosters and dampeners, "no", "least", ALL CAPS, "but",
special idioms, "kind of", punctuation emphasis, emoticons and emojis), scores them with the
`vaderSentiment` package (3.3.2) using the lexicon files of the given folder, and writes
fixtures/data/vader_reference.json.

Usage:
  pip install vaderSentiment==3.3.2
  python3 scripts/vader-reference.py /work/shared/models/vader fixtures/data/vader_reference.json
"""

import hashlib
import json
import os
import random
import sys

import vaderSentiment
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

SUBJECTS = ["The movie", "This phone", "My neighbour", "The service", "Her speech", "The food",
            "That idea", "The weather", "Our team", "The hotel room"]
VERBS = ["was", "is", "seemed", "felt", "looked"]
ADJECTIVES = ["good", "great", "bad", "horrible", "fine", "amazing", "ugly", "nice", "boring",
              "wonderful", "terrible", "okay", "sad", "happy", "funny", "awful", "excellent",
              "mediocre", "lovely", "disappointing"]
MODIFIERS = ["", "very", "extremely", "kind of", "sort of", "slightly", "barely", "really",
             "not", "never", "not very", "hardly", "totally", "somewhat", "incredibly", "least",
             "at least", "no", "isn't", "without doubt"]
ENDINGS = [".", "!", "!!", "!!!!!", "?", "??", "????", "", " :)", " :(", " 😀", " 😢", " :D"]
TAILS = ["", " but the ending was {adj}", " and {adj}", ", but {mod} {adj}",
         " yet {adj}", " or {adj}", " nor {adj}"]
FIXED = [
    "VADER is smart, handsome, and funny.",
    "VADER is VERY SMART, handsome, and FUNNY!!!",
    "The book was kind of good.",
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "At least it isn't a horrible book.",
    "Today SUX!",
    "Today only kinda sux! But I'll get by, lol",
    "Make sure you :) or :D today!",
    "Catch utf-8 emoji such as 💘 and 💋 and 😁",
    "Not bad at all",
    "That party was the bomb.",
    "This burger is to die for.",
    "He was a bad ass in the fight.",
    "Yeah right, that will work.",
    "It was the kiss of death for the project.",
    "I waited at the bus stop for an hour.",
    "I never was so happy.",
    "This is never this bad.",
    "No problem at all.",
    "There is no good reason and no bad reason.",
    "Not the least bit happy.",
    "The least happy person in the room.",
    "The very least good thing.",
    "I don't know.",
    "",
    "!!!",
    "GREAT GREAT GREAT",
    "This is GREAT but the price is TERRIBLE",
    "no, no, NO",
    "The beating heart of the city.",
]


def main():
    folder, out = sys.argv[1], sys.argv[2]
    analyzer = SentimentIntensityAnalyzer(
        lexicon_file=os.path.join(os.path.abspath(folder), "vader_lexicon.txt"),
        emoji_lexicon=os.path.join(os.path.abspath(folder), "emoji_utf8_lexicon.txt"),
    )
    rng = random.Random(20240601)
    texts = list(FIXED)
    while len(texts) < 300:
        adj = rng.choice(ADJECTIVES)
        mod = rng.choice(MODIFIERS)
        if rng.random() < 0.15:
            adj = adj.upper()
        if rng.random() < 0.1:
            mod = mod.upper()
        tail = rng.choice(TAILS).format(adj=rng.choice(ADJECTIVES), mod=rng.choice(MODIFIERS))
        text = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {mod} {adj}{tail}{rng.choice(ENDINGS)}"
        texts.append(" ".join(text.split(" ")).replace("  ", " "))
    cases = []
    for text in texts:
        scores = analyzer.polarity_scores(text)
        cases.append({"text": text, **scores})
    digest = hashlib.sha256(open(os.path.join(folder, "vader_lexicon.txt"), "rb").read()).hexdigest()
    with open(out, "w", encoding="utf-8") as f:
        json.dump(
            {
                "package": "vaderSentiment 3.3.2",
                "lexicon_sha256": digest,
                "note": "compound rounded to 4 decimals and neg/neu/pos to 3 by the package",
                "cases": cases,
            },
            f,
            ensure_ascii=False,
            indent=1,
        )
        f.write("\n")
    print(f"{len(cases)} cases written to {out}")


if __name__ == "__main__":
    main()
