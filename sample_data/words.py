"""Word and sentence banks the generators draw from (plain data, real words)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

FIRST_NAMES = (
    "Amara",
    "Bruno",
    "Chen",
    "Dagny",
    "Elif",
    "Farid",
    "Greta",
    "Hiro",
    "Ines",
    "Jonas",
    "Kavya",
    "Lucas",
    "Mei",
    "Nadia",
    "Omar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tariq",
    "Uma",
    "Viktor",
    "Wanjiru",
    "Yusuf",
)
LAST_NAMES = (
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "Silva",
    "Kowalski",
    "Haddad",
    "Novak",
    "Fischer",
    "Ramirez",
    "Ivanova",
    "Mensah",
    "O'Neill",
    "Petrov",
    "Sato",
    "Bianchi",
    "Kaur",
    "Dubois",
    "Nakamura",
    "Andersen",
)
COMPANIES = (
    "Northwind Traders",
    "Bluefin Logistics",
    "Cedar & Pine Studio",
    "Helios Solar GmbH",
    "Larkspur Bakery",
    "Quantum Ledger LLC",
    "Riverside Hardware",
    "Summit Outdoor Co.",
    "Tidewater Analytics",
    "Orchard Print Works",
    "Granite Peak Dental",
    "Amberline Textiles",
)
STREETS = (
    "Maple Avenue",
    "Harbor Road",
    "Elm Street",
    "Station Square",
    "Mill Lane",
    "King's Parade",
    "Oak Boulevard",
    "Canal Street",
    "Hillcrest Drive",
    "Market Place",
)
CITIES = ("Springfield", "Lyon", "Osaka", "Porto", "Gdansk", "Nairobi", "Tallinn", "Austin", "Leeds", "Bergen")
PRODUCTS = (
    ("Espresso beans 1 kg", 18.5),
    ("Oat milk 1 L", 2.35),
    ("USB-C cable 2 m", 9.99),
    ("Notebook A5 dotted", 6.4),
    ("Desk lamp LED", 34.0),
    ("Ceramic mug", 7.25),
    ("Wireless mouse", 24.9),
    ("Printer paper 500 sheets", 5.8),
    ("Sourdough loaf", 4.2),
    ("Olive oil 750 ml", 11.6),
    ("Hiking socks", 12.0),
    ("Bike light set", 19.75),
    ("Graphite pencils x12", 3.9),
    ("Laptop stand", 42.5),
    ("Green tea 100 g", 8.1),
    ("Screwdriver kit", 27.3),
    ("Monitor cable HDMI", 8.99),
    ("Water bottle 1 L", 15.0),
    ("Cotton tote bag", 4.5),
    ("Sticky notes x6", 5.2),
)
SERVICES = (
    "Website redesign",
    "Quarterly bookkeeping",
    "Logo refresh",
    "Server maintenance",
    "Photography session",
    "Translation (12 pages)",
    "Consulting, 6 hours",
    "Data migration",
    "Copy editing",
    "Workshop facilitation",
)

# Paragraph material: complete sentences on unrelated topics, so documents read like real text.
SENTENCES = (
    "The committee reviewed the proposal in detail and asked for a revised budget by the end of the month.",
    "Rainfall in the northern valleys was twice the seasonal average, which delayed the harvest by two weeks.",
    "Please keep your receipt as proof of purchase for any warranty claim.",
    "The museum will extend its opening hours on Thursdays throughout the summer.",
    "Our support team answers most questions within one business day.",
    "A short walk from the station leads to the old harbour and its fish market.",
    "The new library catalogue lets readers reserve books online and collect them at any branch.",
    "Volunteers planted more than four hundred trees along the river bank last spring.",
    "Engineers replaced the worn bearings and the turbine returned to full output.",
    "The survey asked residents how often they use public transport during the week.",
    "Students must submit the signed consent form before the field trip.",
    "The recipe calls for two cups of flour, a pinch of salt and warm water.",
    "Payment is due within thirty days of the invoice date.",
    "The trail climbs steadily through pine forest before opening onto a wide meadow.",
    "Visitors are reminded that photography is not permitted inside the gallery.",
    "The quarterly report shows steady growth in online orders and fewer returns.",
    "A mild breeze from the west kept the afternoon pleasantly cool.",
    "The software update fixes a crash that occurred when exporting large files.",
    "Each participant will receive a certificate at the end of the workshop.",
    "The bakery sells out of rye bread before noon on most Saturdays.",
    "Late submissions will be accepted only with a documented reason.",
    "The bridge will be closed to traffic for inspection on Sunday morning.",
    "Researchers measured the water temperature at six points along the coast.",
    "Tickets can be exchanged free of charge up to forty-eight hours before the event.",
    "The orchestra opened the evening with a lively overture by Rossini.",
    "Remember to back up your files before installing the new operating system.",
    "The clinic offers flu vaccinations without an appointment every Tuesday.",
    "Sales of electric bicycles rose sharply after the city added protected lanes.",
    "The hotel restaurant serves breakfast from seven until half past ten.",
    "Our office will be closed on public holidays; urgent requests are handled by email.",
    "The exhibition brings together maps, letters and instruments from three centuries of navigation.",
    "Wear sturdy shoes, as the path near the waterfall can be slippery after rain.",
)

TITLES = (
    "Annual Report Summary",
    "Notice to Residents",
    "Meeting Minutes",
    "Product Information",
    "Visitor Guide",
    "Project Update",
    "Course Outline",
    "Safety Instructions",
    "Newsletter",
)

# Text-only chats: (prompt, answer, follow-up, follow-up answer).
CHATS = (
    (
        "What is the difference between weather and climate?",
        (
            "Weather is the state of the atmosphere at a given place and time: today's rain, wind or heat. Climate is "
            "the long-term pattern of weather in a region, usually averaged over thirty years or more."
        ),
        "Can you give an example?",
        "A cold, rainy afternoon in Madrid is weather. Madrid having hot, dry summers and mild winters is climate.",
    ),
    (
        "Write a haiku about autumn leaves.",
        "Red leaves drift and spin,\nthe old oak lets go slowly,\nwind carries the year.",
        "Now make it about spring.",
        "Soft rain on new buds,\nthe cherry tree wakes in pink,\nmornings smell of earth.",
    ),
    (
        "Explain what a hash table is in two sentences.",
        (
            "A hash table stores key-value pairs in an array, using a hash function to turn each key into an index. "
            "This makes lookups, inserts and deletes take constant time on average."
        ),
        "What happens when two keys hash to the same index?",
        (
            "That is a collision. It is usually resolved by chaining (a small list per slot) or by open addressing, "
            "which probes for the next free slot."
        ),
    ),
    (
        "Give me three tips for a job interview.",
        (
            "1. Research the company and the role so you can connect your experience to their needs.\n"
            "2. Prepare short stories that show how you solved real problems.\n"
            "3. Ask thoughtful questions at the end; it shows genuine interest."
        ),
        None,
        None,
    ),
    (
        "How do I boil an egg so the yolk stays soft?",
        (
            "Bring water to a gentle boil, lower the egg in with a spoon and cook it for six to six and a half "
            "minutes. "
            "Then cool it in cold water for a minute before peeling."
        ),
        "And for a hard-boiled egg?",
        "Cook it for about ten to eleven minutes, then cool it completely in cold water.",
    ),
    (
        "Summarize the plot of Romeo and Juliet in one paragraph.",
        (
            "Two young lovers from feuding families in Verona, Romeo Montague and Juliet Capulet, marry in secret. "
            "After Romeo kills Juliet's cousin Tybalt he is banished, and Juliet fakes her death to escape an arranged "
            "marriage. The message explaining the plan never reaches Romeo; believing she is dead, he poisons himself, "
            "and Juliet, waking to find him dead, takes her own life. Their deaths finally reconcile the families."
        ),
        None,
        None,
    ),
    (
        "Is it correct to say 'less people' or 'fewer people'?",
        (
            "'Fewer people' is the standard form, because people can be counted. 'Less' is used with uncountable "
            "nouns, as in 'less water' or 'less time'."
        ),
        "What about 'less than 10 items'?",
        (
            "In careful writing it would be 'fewer than 10 items', although 'less than' is common on shop signs and "
            "widely accepted in informal use."
        ),
    ),
    (
        "Translate 'Where is the train station?' into French and Spanish.",
        "French: « Où est la gare ? »\nSpanish: «¿Dónde está la estación de tren?»",
        None,
        None,
    ),
    (
        "Why is the sky blue?",
        (
            "Sunlight contains all colours. When it passes through the atmosphere, the short blue wavelengths are "
            "scattered by air molecules much more than red ones (Rayleigh scattering), so blue light reaches our eyes "
            "from every direction of the sky."
        ),
        "Then why are sunsets red?",
        (
            "At sunset the light crosses much more atmosphere, so most blue light is scattered away before it reaches "
            "you, leaving the reds and oranges."
        ),
    ),
    (
        "Suggest a name for a small bakery by the sea.",
        "A few ideas: 'Salt & Crumb', 'The Harbour Loaf', 'Tide and Rye', 'Driftwood Bakehouse'.",
        "Which one would you pick?",
        "'Tide and Rye': it is short, easy to remember and hints at both the sea and the bread.",
    ),
    (
        "What does HTTP status code 404 mean?",
        "404 Not Found: the server was reached, but it has nothing at the requested address.",
        None,
        None,
    ),
    (
        "Write a polite email declining a meeting invitation.",
        (
            "Subject: Re: Project sync on Thursday\n\nHi Dana,\n\nThank you for the invitation. Unfortunately I have a "
            "conflict on Thursday afternoon and will not be able to attend. Could you share the notes afterwards? I am "
            "happy to send my update in writing beforehand.\n\nBest regards,\nSam"
        ),
        None,
        None,
    ),
)
SYSTEM_PROMPTS = (
    "You are a helpful assistant.",
    "You are a concise assistant. Answer briefly and accurately.",
    "You are a friendly tutor who explains things step by step.",
)
UNITS = (("kilometres", "miles", 0.621371), ("kilograms", "pounds", 2.20462), ("litres", "US gallons", 0.264172))
WORDS_TO_SORT = (
    "pear",
    "almond",
    "violin",
    "harbour",
    "zephyr",
    "copper",
    "meadow",
    "quartz",
    "lantern",
    "basil",
    "orbit",
    "falcon",
    "juniper",
    "ember",
    "tundra",
    "kettle",
)


def pick(rnd: random.Random, seq: Sequence[T]) -> T:
    """One element of ``seq``."""
    return seq[rnd.randrange(len(seq))]


def person(rnd: random.Random) -> str:
    """A full name."""
    return f"{pick(rnd, FIRST_NAMES)} {pick(rnd, LAST_NAMES)}"


def address(rnd: random.Random) -> str:
    """A one-line street address."""
    return f"{rnd.randint(1, 240)} {pick(rnd, STREETS)}, {pick(rnd, CITIES)}"


def paragraph(rnd: random.Random, n_sentences: int) -> str:
    """A paragraph of distinct sentences from the bank."""
    return " ".join(rnd.sample(SENTENCES, min(n_sentences, len(SENTENCES))))


def money(value: float) -> str:
    """``$1,234.50`` style amount."""
    return f"${value:,.2f}"
