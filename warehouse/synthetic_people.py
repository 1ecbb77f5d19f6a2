"""People for the synthetic consortium: demographics, names, birth dates and identifiers.

Helper module of :mod:`warehouse.synthetic`. Everything here is drawn from a
``numpy.random.Generator`` passed in by the caller, so a fixed seed gives fixed people.
All names are common given names and surnames; no real person is described.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GENDERS = ("F", "M", "X")
GENDER_P = np.array([0.49, 0.495, 0.015])

# Same order as [codes].ethnicity in the element files.
ETHNICITIES = (
    "Hispanic/Latino",
    "American Indian/Alaska Native",
    "Asian",
    "Black/African American",
    "Filipino",
    "Pacific Islander",
    "White",
    "Two or More",
    "Not Reported",
)
# Roughly California's public high-school population.
CA_ETHNICITY = np.array([0.55, 0.005, 0.10, 0.05, 0.025, 0.004, 0.21, 0.04, 0.016])
CA_ETHNICITY = CA_ETHNICITY / CA_ETHNICITY.sum()

# Per-ethnicity rates: socioeconomic disadvantage (mean ~60 %), English learner in grade 9
# (mean ~15 %), and the shift of the latent attainment index used for outcome models.
SES_P = np.array([0.75, 0.70, 0.38, 0.70, 0.40, 0.65, 0.35, 0.45, 0.50])
EL_P = np.array([0.21, 0.04, 0.20, 0.03, 0.08, 0.06, 0.03, 0.03, 0.05])
ETH_SHIFT = np.array([-0.15, -0.25, 0.20, -0.30, 0.05, -0.20, 0.10, 0.0, 0.0])
DISABILITY_P = 0.12

_FEMALE = (
    "Sofia Sofía Isabella Emma Olivia Mia Camila Valeria Emily Abigail Ava Ximena Natalie "
    "Evelyn Victoria Madison Ashley Chloe Zoe Hannah Leah Aaliyah Jasmine Maya Daniela Andrea "
    "Gabriela Alyssa Samantha Elena Lucia Jocelyn Angelina Vanessa Priya Mei Grace Hailey Kayla "
    "Jessica Destiny Brianna Nayeli Guadalupe Alondra Fatima Amara Kiara Lily Sarah Nicole Diana "
    "Karina Yesenia Crystal Tiana Anh Linh Jennifer Marisol Itzel Citlali Imani Leilani Noor"
).split()
_MALE = (
    "Daniel Sebastian Mateo Santiago Liam Noah Ethan Jacob Michael David Alexander Diego Adrian "
    "Jose José Luis Carlos Jesus Juan Miguel Christopher Anthony Joshua Andrew Isaac Gabriel "
    "Julian Elijah Aiden Jayden Brandon Kevin Jonathan Erick Ivan Oscar Eduardo Emmanuel Isaiah "
    "Jeremiah Malik Darius Marcus Tyler Ryan Nathan Aaron Minh Kenji Arjun Rafael Marco Joaquin "
    "Leonardo Victor Hector Omar Samuel Caleb Dylan Tevita Kai Bao Jamal Andres"
).split()
_NEUTRAL = (
    "Alex Jordan Taylor Riley Avery Quinn Rowan Sage Skyler Emerson Jamie Casey River Phoenix "
    "Dakota Reese Angel Cameron Morgan Ari"
).split()
_SURNAMES = (
    # 0: Hispanic
    "Garcia Hernandez Lopez Martinez Gonzalez Rodriguez Perez Sanchez Ramirez Flores Torres "
    "Rivera Gomez Diaz Cruz Morales Reyes Gutierrez Ortiz Castillo Mendoza Ruiz Alvarez Chavez "
    "Jimenez Vasquez Romero Herrera Medina Aguilar Vargas Castro Guzman Juarez Salazar Munoz "
    "Muñoz Delgado Contreras Ramos Soto Estrada Valenzuela Navarro Rosales Cervantes Ochoa "
    "Ibarra Zamora Peña Velasquez".split(),
    # 1: general
    "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Martin "
    "Jackson Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott "
    "Hill Green Adams Baker Nelson Carter Mitchell Roberts Turner Phillips Campbell Parker Evans "
    "Edwards Collins Stewart Morris Murphy Cook Rogers Morgan Cooper Peterson Reed Bailey Bell "
    "Kelly Howard O'Brien Sullivan Fischer Larsen".split(),
    # 2: Asian
    "Nguyen Tran Le Pham Huynh Vo Chen Wang Li Zhang Liu Lin Huang Wu Yang Wong Lee Kim Park "
    "Choi Patel Singh Shah Kumar Gupta Tanaka Yamamoto Nakamura Sato Vang Xiong Lor Her Thao "
    "Chang Ho Lam Dang Bui Do".split(),
    # 3: Filipino
    "Santos Reyes Cruz Bautista Ocampo Garcia Mendoza Villanueva Aquino Castillo Ramos Soriano "
    "Manalo Dizon Pascual Tolentino Navarro Lim Domingo".split()
    + ["Dela Cruz"],
    # 4: African American
    "Washington Jefferson Banks Brooks Coleman Jenkins Simmons Henderson Freeman Hayes Bryant "
    "Alexander Griffin Wallace Woods Marshall Owens Gordon Holmes Ellis Jackson Robinson".split(),
    # 5: Pacific Islander
    "Kealoha Akana Kahale Tupou Fifita Taufa Leota Faleolo Mahe Fonua".split(),
)
# Surname pool mixture per ethnicity (rows: ETHNICITIES, columns: _SURNAMES pools).
_SURNAME_MIX = np.array(
    [
        [0.88, 0.12, 0.00, 0.00, 0.00, 0.00],
        [0.25, 0.75, 0.00, 0.00, 0.00, 0.00],
        [0.00, 0.10, 0.90, 0.00, 0.00, 0.00],
        [0.05, 0.45, 0.00, 0.00, 0.50, 0.00],
        [0.15, 0.05, 0.05, 0.75, 0.00, 0.00],
        [0.05, 0.25, 0.05, 0.05, 0.00, 0.60],
        [0.08, 0.92, 0.00, 0.00, 0.00, 0.00],
        [0.30, 0.45, 0.10, 0.05, 0.10, 0.00],
        [0.40, 0.40, 0.10, 0.05, 0.05, 0.00],
    ]
)


@dataclass(frozen=True)
class People:
    """Parallel arrays, one entry per person (index = person id)."""

    first: np.ndarray  # str
    last: np.ndarray  # str
    birth: np.ndarray  # datetime64[D]
    gender: np.ndarray  # index into GENDERS
    ethnicity: np.ndarray  # index into ETHNICITIES
    ses: np.ndarray  # bool, socioeconomically disadvantaged
    el: np.ndarray  # bool, English learner when first observed
    disability: np.ndarray  # bool
    ability: np.ndarray  # float, latent attainment index (group gaps included)
    ssid: np.ndarray  # int64, 0 = the person has no statewide id

    def __len__(self) -> int:
        return len(self.first)

    def concat(self, other: People) -> People:
        """Return these people followed by ``other`` (ids of ``other`` shift by len(self))."""
        return People(*(np.concatenate([getattr(self, f), getattr(other, f)]) for f in self.__dataclass_fields__))


def pick(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Draw one category per row of ``probs`` (shape (n, k), rows summing to 1)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), probs.shape[1] - 1)


def calibrated(x: np.ndarray, target: float) -> np.ndarray:
    """Probabilities ``sigmoid(b + x)`` with the intercept ``b`` chosen so their mean is ``target``."""
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.mean(1 / (1 + np.exp(-(mid + x)))) < target:
            lo = mid
        else:
            hi = mid
    return 1 / (1 + np.exp(-((lo + hi) / 2 + x)))


def unique_ints(rng: np.random.Generator, n: int, lo: int, hi: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """``n`` distinct random integers in [lo, hi), none of them in ``exclude``."""
    out = np.empty(0, dtype=np.int64)
    while len(out) < n:
        cand = np.concatenate([out, rng.integers(lo, hi, size=n - len(out) + 16 + n // 10)])
        keep = np.zeros(len(cand), dtype=bool)
        keep[np.unique(cand, return_index=True)[1]] = True
        if exclude is not None:
            keep &= ~np.isin(cand, exclude)
        out = cand[keep][:n]
    return out


def draw_people(
    rng: np.random.Generator,
    eth_probs: np.ndarray,
    born_from: np.ndarray,
    *,
    el_scale: float = 1.0,
    ssid_share: float = 1.0,
    taken_ssids: np.ndarray | None = None,
) -> People:
    """Draw ``len(born_from)`` people.

    ``eth_probs`` is one ethnicity distribution per person (n, 9); birth dates fall in the
    year starting at ``born_from``; ``ssid_share`` of them get a statewide id not in
    ``taken_ssids``.
    """
    n = len(born_from)
    gender = rng.choice(3, size=n, p=GENDER_P)
    eth = pick(rng, eth_probs)
    ses = rng.random(n) < SES_P[eth]
    el = rng.random(n) < EL_P[eth] * el_scale
    dis = rng.random(n) < DISABILITY_P
    ability = rng.standard_normal(n) + ETH_SHIFT[eth] - 0.25 * ses - 0.2 * el - 0.25 * dis

    first = np.empty(n, dtype=object)
    pools = (_FEMALE, _MALE, _NEUTRAL)
    for g, pool in enumerate(pools):
        m = gender == g
        first[m] = np.array(pool, dtype=object)[rng.integers(len(pool), size=m.sum())]
    last = np.empty(n, dtype=object)
    which = pick(rng, _SURNAME_MIX[eth])
    for k, pool in enumerate(_SURNAMES):
        m = which == k
        last[m] = np.array(pool, dtype=object)[rng.integers(len(pool), size=m.sum())]

    birth = born_from.astype("datetime64[D]") + rng.integers(0, 365, size=n).astype("timedelta64[D]")
    has = rng.random(n) < ssid_share
    ssid = np.zeros(n, dtype=np.int64)
    ssid[has] = unique_ints(rng, int(has.sum()), 10**9, 10**10, taken_ssids)
    return People(first, last, birth, gender.astype(np.int8), eth.astype(np.int8), ses, el, dis, ability, ssid)


def born_window(start_years: np.ndarray, extra_years: np.ndarray) -> np.ndarray:
    """Start of the one-year birth-date window of people who start college in the fall of
    ``start_years`` (on-time high-school graduates: 19 years earlier, on 2 September), moved
    back by ``extra_years``."""
    years, where = np.unique(np.asarray(start_years) - 19, return_inverse=True)
    starts = np.array([f"{y}-09-02" for y in years], dtype="datetime64[D]")[where]
    return starts - (365 * np.asarray(extra_years)).astype("timedelta64[D]")


def outsiders(
    rng: np.random.Generator, ppl: People, start_years: np.ndarray, extra_years: np.ndarray
) -> tuple[People, np.ndarray]:
    """Append out-of-region people (no K-12 record, statewide id for only half of them).

    Returns all people and the ids of the new ones.
    """
    new = draw_people(
        rng,
        np.tile(CA_ETHNICITY, (len(start_years), 1)),
        born_window(start_years, extra_years),
        el_scale=0.5,
        ssid_share=0.5,
        taken_ssids=ppl.ssid[ppl.ssid > 0],
    )
    return ppl.concat(new), np.arange(len(ppl), len(ppl) + len(new))


def identifiers(ppl: People, person: np.ndarray, local: np.ndarray, show_ssid: np.ndarray) -> dict[str, np.ndarray]:
    """The five raw identifier columns for rows of ``person`` (ssid blank unless shown and known)."""
    ssid = ppl.ssid[person]
    return {
        "ssid": np.where(show_ssid & (ssid > 0), ssid.astype(str), ""),
        "local_id": local,
        "first_name": ppl.first[person],
        "last_name": ppl.last[person],
        "birth_date": np.datetime_as_string(ppl.birth[person], unit="D"),
    }
