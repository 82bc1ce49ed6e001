"""A synthetic set of facts that change: an old statement and the new one that replaces it, of varied kinds.

Ten kinds (where someone lives, their job, a preference, a version, a plan, ...) times twenty value pairs: 200
changes. The old and the new statement are worded differently on purpose, as people say them on different days.
"""

from __future__ import annotations

from itertools import pairwise

KINDS: list[tuple[str, str, list[str]]] = [
    (
        "I live in {} with my partner.",
        "We moved to {} last month, the new flat is great.",
        [
            "Lisbon",
            "Porto",
            "Madrid",
            "Berlin",
            "Munich",
            "Vienna",
            "Prague",
            "Warsaw",
            "Oslo",
            "Dublin",
            "Leeds",
            "Austin",
            "Denver",
            "Boston",
            "Seattle",
            "Toronto",
            "Montreal",
            "Sydney",
            "Perth",
            "Auckland",
            "Osaka",
        ],
    ),
    (
        "I work as a {} at a small agency.",
        "I just started a new job as a {}.",
        [
            "designer",
            "developer",
            "tester",
            "writer",
            "editor",
            "translator",
            "accountant",
            "nurse",
            "teacher",
            "lawyer",
            "architect",
            "chef",
            "pharmacist",
            "librarian",
            "electrician",
            "plumber",
            "photographer",
            "analyst",
            "consultant",
            "recruiter",
            "baker",
        ],
    ),
    (
        "My editor theme is {} mode, I find it easier on the eyes.",
        "I switched the editor over to {} mode this week.",
        [
            "dark",
            "light",
            "solarized",
            "monokai",
            "dracula",
            "nord",
            "gruvbox",
            "sepia",
            "contrast",
            "pastel",
            "ocean",
            "forest",
            "desert",
            "dusk",
            "dawn",
            "midnight",
            "paper",
            "ink",
            "slate",
            "amber",
            "coral",
        ],
    ),
    (
        "Our service runs on Postgres {}.",
        "We upgraded the database to Postgres version {} yesterday.",
        [str(v) for v in range(9, 30)],
    ),
    (
        "My favourite food is {}.",
        "Lately I can't get enough of {}, it's my new favourite.",
        [
            "sushi",
            "ramen",
            "pizza",
            "tacos",
            "curry",
            "paella",
            "falafel",
            "dumplings",
            "pho",
            "burritos",
            "lasagna",
            "risotto",
            "kimchi",
            "hummus",
            "gnocchi",
            "biryani",
            "shakshuka",
            "pierogi",
            "ceviche",
            "goulash",
            "moussaka",
        ],
    ),
    (
        "The team standup is at {} every morning.",
        "Heads up: standup moved to {} starting Monday.",
        [
            "8:00",
            "8:15",
            "8:30",
            "8:45",
            "9:00",
            "9:15",
            "9:30",
            "9:45",
            "10:00",
            "10:15",
            "10:30",
            "10:45",
            "11:00",
            "11:15",
            "11:30",
            "11:45",
            "12:00",
            "12:15",
            "12:30",
            "12:45",
            "13:00",
        ],
    ),
    (
        "My phone is a {}.",
        "I replaced my old phone with a {}.",
        [
            "Pixel-6",
            "Pixel-7",
            "Pixel-8",
            "iPhone-12",
            "iPhone-13",
            "iPhone-14",
            "iPhone-15",
            "Galaxy-S21",
            "Galaxy-S22",
            "Galaxy-S23",
            "Fairphone-4",
            "Fairphone-5",
            "Nokia-G60",
            "Moto-G84",
            "Xperia-5",
            "Xperia-10",
            "OnePlus-11",
            "OnePlus-12",
            "Nothing-2",
            "Zenfone-10",
            "Redmi-12",
        ],
    ),
    (
        "This summer I plan to visit {} for two weeks.",
        "Change of plans, we are going to {} this summer instead.",
        [
            "Italy",
            "Greece",
            "Portugal",
            "Japan",
            "Mexico",
            "Peru",
            "Norway",
            "Iceland",
            "Morocco",
            "Vietnam",
            "Canada",
            "Chile",
            "Croatia",
            "Turkey",
            "Scotland",
            "Kenya",
            "Georgia",
            "Thailand",
            "Argentina",
            "Ireland",
            "Malta",
        ],
    ),
    (
        "My manager is {}, she is very supportive.",
        "I report to {} now after the reorg.",
        [
            "Alice",
            "Beatriz",
            "Chloe",
            "Dana",
            "Elena",
            "Fatima",
            "Grace",
            "Hannah",
            "Ines",
            "Julia",
            "Katrin",
            "Laura",
            "Maria",
            "Nadia",
            "Olga",
            "Paula",
            "Rosa",
            "Sara",
            "Tanya",
            "Uma",
            "Vera",
        ],
    ),
    (
        "I drive a {} to work.",
        "I sold the car and bought a {}.",
        [
            "Corolla",
            "Civic",
            "Golf",
            "Polo",
            "Fiesta",
            "Focus",
            "Astra",
            "Clio",
            "Megane",
            "Octavia",
            "Fabia",
            "Yaris",
            "Jazz",
            "Leaf",
            "Zoe",
            "Model-3",
            "Ioniq",
            "Kona",
            "Niro",
            "Mazda3",
            "Impreza",
        ],
    ),
]


# What one asks to get each kind's current value, in KINDS order.
QUESTIONS = [
    "Where do I live now?",
    "What is my job?",
    "Which editor theme mode do I use?",
    "Which Postgres version does our service run on?",
    "What is my favourite food?",
    "What time is the team standup?",
    "What phone do I have?",
    "Where am I going this summer?",
    "Who is my manager?",
    "What car do I drive?",
]


# What the client's model names as the subject of each kind's new statement when it recalls the fact it replaces
# (the tool descriptions: "recall its subject in a few words of your own"), in KINDS order. Written once per kind
# as a model would put it, not the question asked afterwards: the stand-in for the model's own words.
SUBJECTS = [
    "the user's home city",
    "the user's job",
    "the user's editor theme",
    "the Postgres version of the service",
    "the user's favourite food",
    "the time of the team standup",
    "the user's phone",
    "the user's summer plans",
    "the user's manager",
    "the user's car",
]
# The same subjects in other words, sharing as few words with the old statements as a model might: how much (b)
# hangs on the model naming the subject the way the old statement did.
OTHER_SUBJECTS = [
    "where the user lives now",
    "what the user does for work",
    "the colour scheme of the user's code editor",
    "the database release in production",
    "what the user likes to eat",
    "when the daily team meeting is",
    "the user's mobile",
    "the user's holiday plans",
    "who the user's boss is",
    "the user's vehicle",
]


def question(kind: str) -> str:
    """Return the question that asks for the current value of a kind (its old template)."""
    return QUESTIONS[[old for old, _, _ in KINDS].index(kind)]


def subject(kind: str, other: bool = False) -> str:
    """Return the few words a client's model recalls to find the statement a kind's new one replaces."""
    return (OTHER_SUBJECTS if other else SUBJECTS)[[old for old, _, _ in KINDS].index(kind)]


def changed_facts() -> list[tuple[str, str, str]]:
    """Return (kind, old statement, new statement) for every change: 10 kinds x 20 = 200."""
    return [
        (old_template, old_template.format(old), new_template.format(new))
        for old_template, new_template, values in KINDS
        for old, new in pairwise(values)
    ]
