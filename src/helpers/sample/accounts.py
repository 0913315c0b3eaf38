"""Customer accounts with planted duplicates, for testing and benchmarking identity resolution.

Each person has a primary account; some have a second one that the exact rules can see (the e-mail typed in
capitals, the same phone), others one they cannot (a new e-mail, no phone, sometimes a typo or a dropped accent in
the name). Hard negatives sit beside them: relatives at the same postcode with their own first name and birthday,
and namesakes elsewhere. ``person`` is the truth; ``kind`` says what each account is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FIRST = ["Anna", "Jürgen", "Marie", "Lukas", "Sophie", "Jonas", "Lea", "Finn", "Emma", "Paul", "Mia", "Ben", "Hannah",
         "Elias", "Lina", "Noah", "Clara", "Felix", "Ida", "Leon", "Zoé", "Théo", "Chloé", "Hugo", "Daan", "Sanne",
         "Bram", "Fleur", "Joaquim", "Inês", "Tiago", "Beatriz", "Oliver", "Amelia", "Harry", "Isla", "Mateo",
         "Greta", "Mats", "Nele"]
LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
        "Dubois", "Lefèvre", "Moreau", "Girard", "de Vries", "Jansen", "Bakker", "Visser", "Silva", "Gonçalves",
        "Ferreira", "Costa", "Smith", "Jones", "Taylor", "Brown", "Kowalski", "Nowak", "Rossi", "Bianchi",
        "Oyelaran", "Van den Berg", "Krüger", "Lehmann", "Köhler", "Vogel", "Fuchs", "Lang", "Graf", "Roth"]
SYLLABLES = ["ber", "bran", "dor", "feld", "gar", "hau", "kel", "lin", "man", "mer", "nor", "ost", "ran", "rich",
             "sen", "stein", "tal", "wald", "win", "zel"]


def surnames(n_people: int, rng: np.random.Generator) -> list[str]:
    """The 40 common surnames plus generated ones, enough that a surname is shared by about 50 people at most
    sizes, with the long tail real surnames have."""
    extra = max(0, n_people // 50 - len(LAST))
    made = {"".join(rng.choice(SYLLABLES, size=int(rng.integers(2, 4)))).capitalize() for _ in range(extra * 2)}
    return LAST + sorted(made - set(LAST))[:extra]


def typo(name: str, rng: np.random.Generator) -> str:
    """A plausible misspelling: an accent transliterated, two neighbouring letters swapped, or a letter dropped."""
    kind = rng.integers(3)
    if kind == 0:
        return (name.replace("ü", "ue").replace("ö", "oe").replace("é", "e").replace("ç", "c").replace("è", "e")
                .replace("ê", "e"))
    i = int(rng.integers(1, len(name) - 1))
    if kind == 1:
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    return name[:i] + name[i + 1:]


def planted_accounts(n_people: int = 1500, seed: int = 5) -> pd.DataFrame:
    """CRM accounts (``customer_id, first_name, last_name, email, phone, postcode, birth_date, country``) with
    ``person`` (the truth) and ``kind``: primary, exact_dup (8% of people), hidden_dup (12%), relative (8%),
    namesake (5%)."""
    rng = np.random.default_rng(seed)
    last_names = surnames(n_people, rng)
    weights = 1.0 / np.arange(1, len(last_names) + 1) ** 0.6  # a few common surnames, a long tail
    weights /= weights.sum()
    first_idx = rng.integers(len(FIRST), size=n_people)
    last_idx = rng.choice(len(last_names), size=n_people, p=weights)
    postcodes = rng.integers(10000, 99999, size=n_people)
    births = pd.Timestamp("1950-01-01") + pd.to_timedelta(rng.integers(0, 50 * 365, size=n_people), unit="D")
    has_phone = rng.random(n_people) < 0.7
    what = rng.random(n_people)
    cols: dict[str, list] = {k: [] for k in ("customer_id", "first_name", "last_name", "email", "phone", "postcode",
                                            "birth_date", "country", "person", "kind")}
    cid = 100000

    def account(person, first, last, email, phone, postcode, birth, kind):
        nonlocal cid
        cid += 1
        for k, v in zip(cols, (f"C{cid}", first, last, email, phone, postcode, birth, "DE", person, kind)):
            cols[k].append(v)

    for p in range(n_people):
        first, last = FIRST[first_idx[p]], last_names[last_idx[p]]
        postcode, birth = str(postcodes[p]), births[p].strftime("%Y-%m-%d")
        local = f"{first}.{last}".lower().replace(" ", "")
        email = f"{local}{p}@example.de"
        phone = f"+49151{p:07d}" if has_phone[p] else None
        account(f"P{p}", first, last, email, phone, postcode, birth, "primary")
        r = what[p]
        if r < 0.08:
            account(f"P{p}", first, last, email.upper(), phone, postcode, birth, "exact_dup")
        elif r < 0.20:
            f2 = typo(first, rng) if rng.random() < 0.3 else first
            l2 = typo(last, rng) if rng.random() < 0.3 else last
            account(f"P{p}", f2, l2, f"{local}.shop{p}@other.example", None, postcode, birth, "hidden_dup")
        elif r < 0.28:
            other = FIRST[(first_idx[p] + 1 + int(rng.integers(len(FIRST) - 1))) % len(FIRST)]
            b2 = (births[p] + pd.Timedelta(days=int(rng.integers(400, 9000)))).strftime("%Y-%m-%d")
            account(f"R{p}", other, last, f"{other.lower()}{p}@family.example", f"+49160{p:07d}", postcode, b2,
                    "relative")
        elif r < 0.33:
            b2 = (births[p] + pd.Timedelta(days=int(rng.integers(400, 9000)))).strftime("%Y-%m-%d")
            account(f"N{p}", first, last, f"{local}.n{p}@mail.example", None, str(rng.integers(10000, 99999)), b2,
                    "namesake")
    return pd.DataFrame(cols)
