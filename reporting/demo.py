"""A deterministic synthetic marketplace in the source contract (``sql/source_schema.sql``).

``generate_demo(url, sellers=..., seed=..., year=...)`` fills the contract tables of any
SQLAlchemy database (SQLite, PostgreSQL, MariaDB/MySQL) with sellers, their TINs, accounts,
permanent establishments, property listings, transactions, refunds and ECB-style FX rates.

Guarantees:

* The same ``(sellers, seed, year)`` gives exactly the same rows on every database: all values
  are drawn from one ``random.Random(seed)`` in a fixed order, using only integer arithmetic for
  money (amounts are ISO 4217 minor units) and decimal text for FX rates; no float ever becomes
  a stored value. Batch sizes do not change the result.
* Memory is bounded: sellers are generated in batches and rows are flushed with ``executemany``
  of plain tuples every few thousand rows.
* Timestamps are naive UTC text ``YYYY-MM-DD HH:MM:SS`` (stored as the database's TIMESTAMP).

The shape (who sells what, how much, when) is described in :func:`generate_demo`. Identifiers
use plausible national formats; where python-stdnum can check a format (German IdNr, Spanish
DNI/CIF, Polish PESEL/NIP, IBAN check digits, ...) the generated values pass that check.

With ``bad_share`` (e.g. 0.01), that share of the sellers is made bad on purpose, each with one
defect of :data:`BAD_KINDS` (no address, an unknown currency, a refund larger than its
transaction ...) that names the quarantine rules which must catch it. They are drawn from a
random stream of their own, so every other seller's rows stay exactly as they are without them,
and :func:`generate_demo` returns who they are (the ground truth of a quarantine test).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, cycle
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from reporting.countries import EU_MEMBER_STATES
from reporting.errors import SourceError
from reporting.source import CONTRACT, check_contract, create_schema, make_engine, safe_url

__all__ = ["BAD_KINDS", "DEMO_DEFAULTS", "BadKind", "DemoResult", "generate_demo"]

#: Defaults for a quick demo database (about 60,000 transactions).
DEMO_DEFAULTS: dict[str, int] = {"sellers": 2000, "seed": 7, "year": 2025}

#: Sellers generated (and committed) per batch, and pending rows that trigger a flush.
BATCH_SELLERS = 5000
FLUSH_ROWS = 20000

GOODS = "sale_of_goods"
SERVICES = "personal_services"
TRANSPORT = "transportation_rental"
PROPERTY = "immovable_property"

#: Insert order of the tables and their columns (the contract columns plus optional ones).
_COLUMNS: dict[str, tuple[str, ...]] = {
    "fx_rates": CONTRACT["fx_rates"],
    "sellers": CONTRACT["sellers"],
    "seller_tins": CONTRACT["seller_tins"],
    "seller_financial_accounts": CONTRACT["seller_financial_accounts"],
    "seller_permanent_establishments": CONTRACT["seller_permanent_establishments"],
    "property_listings": CONTRACT["property_listings"] + ("other_property_type",),
    "transactions": CONTRACT["transactions"],
    "refunds": CONTRACT["refunds"],
}

# ----------------------------------------------------------------------------------------------
# Reference data
# ----------------------------------------------------------------------------------------------

#: Currency levels in units per EUR: (level as an integer at ``decimals`` places, decimals,
#: largest daily step in the same units). The random walk reverts to the level.
_FX: dict[str, tuple[int, int, int]] = {
    "PLN": (43000, 4, 90),
    "CZK": (250000, 4, 500),
    "SEK": (114000, 4, 350),
    "HUF": (39500, 2, 90),
    "RON": (49700, 4, 12),
    "DKK": (74600, 4, 3),
    "USD": (10800, 4, 60),
    "GBP": (8600, 4, 25),
    "CHF": (9500, 4, 30),
    "NOK": (116000, 4, 450),
}
#: Units per EUR scaled by 10,000 (EUR cents -> minor units: cents * level // 10000).
_LEVEL: dict[str, int] = {"EUR": 10000} | {c: v * 10 ** (4 - d) for c, (v, d, _) in _FX.items()}


@dataclass(frozen=True, slots=True)
class _Country:
    code: str
    weight: int  # sellers resident here per 10,000 (0: listing or birth country only)
    currency: str
    post_code: str  # pattern: '#' digit, '@' letter, anything else literal
    cities: tuple[str, ...]
    streets: tuple[str, ...]
    names: tuple[str, ...]  # keys of _NAMES
    forms: tuple[str, ...]  # legal forms of entities
    vat_rate: int  # standard VAT rate in percent (0: none charged on fees)
    iban: str  # BBAN pattern ('' when the country does not use IBAN)


def _country(
    code: str,
    weight: int,
    currency: str,
    post_code: str,
    cities: str,
    streets: str,
    names: str,
    forms: str,
    vat_rate: int,
    iban: str,
) -> _Country:
    return _Country(
        code,
        weight,
        currency,
        post_code,
        tuple(cities.split("|")),
        tuple(streets.split("|")),
        tuple(names.split("|")),
        tuple(forms.split("|")),
        vat_rate,
        iban,
    )


# IBAN BBAN structures follow the SWIFT IBAN registry (as python-stdnum ships it).
_COUNTRIES: dict[str, _Country] = {
    c.code: c
    for c in (
        _country(
            "DE",
            1500,
            "EUR",
            "#####",
            "Berlin|Hamburg|München|Köln|Frankfurt am Main|Leipzig|Stuttgart|Dresden",
            "Hauptstraße|Bahnhofstraße|Gartenweg|Schillerstraße|Lindenallee|Bergstraße",
            "de",
            "GmbH|UG (haftungsbeschränkt)|GmbH & Co. KG|AG|e.K.",
            19,
            "##################",
        ),
        _country(
            "FR",
            1150,
            "EUR",
            "#####",
            "Paris|Lyon|Marseille|Toulouse|Bordeaux|Lille|Nantes",
            "Rue de la Paix|Avenue Victor Hugo|Rue du Moulin|Boulevard Voltaire|Rue des Lilas",
            "fr",
            "SARL|SAS|SASU|SA",
            20,
            "##########???????????##",
        ),
        _country(
            "IT",
            950,
            "EUR",
            "#####",
            "Roma|Milano|Napoli|Torino|Bologna|Firenze|Palermo",
            "Via Roma|Via Garibaldi|Corso Italia|Via Dante Alighieri|Piazza Mazzini",
            "it",
            "S.r.l.|S.p.A.|S.n.c.|S.r.l.s.",
            22,
            "@##########????????????",
        ),
        _country(
            "ES",
            850,
            "EUR",
            "#####",
            "Madrid|Barcelona|Valencia|Sevilla|Málaga|Bilbao|Zaragoza",
            "Calle Mayor|Avenida de la Constitución|Calle del Sol|Paseo de Gracia|Calle Real",
            "es",
            "S.L.|S.A.|S.L.U.",
            21,
            "####################",
        ),
        _country(
            "PL",
            750,
            "PLN",
            "##-###",
            "Warszawa|Kraków|Wrocław|Poznań|Gdańsk|Łódź",
            "ul. Marszałkowska|ul. Długa|ul. Polna|ul. Lipowa|ul. Słoneczna",
            "pl",
            "sp. z o.o.|S.A.|sp.k.",
            23,
            "########################",
        ),
        _country(
            "NL",
            560,
            "EUR",
            "#### @@",
            "Amsterdam|Rotterdam|Den Haag|Utrecht|Eindhoven|Groningen",
            "Kerkstraat|Dorpsstraat|Molenweg|Prinsengracht|Stationsplein",
            "nl",
            "B.V.|N.V.|V.O.F.",
            21,
            "@@@@##########",
        ),
        _country(
            "RO",
            330,
            "RON",
            "######",
            "București|Cluj-Napoca|Timișoara|Iași|Constanța|Brașov",
            "Strada Victoriei|Bulevardul Unirii|Strada Florilor|Strada Mihai Eminescu",
            "ro",
            "S.R.L.|S.A.",
            19,
            "@@@@????????????????",
        ),
        _country(
            "BE",
            330,
            "EUR",
            "####",
            "Bruxelles|Antwerpen|Gent|Liège|Brugge|Namur",
            "Rue Neuve|Kerkstraat|Avenue Louise|Meir|Grand-Place",
            "nl|fr",
            "BV|SRL|NV|SA",
            21,
            "############",
        ),
        _country(
            "LT",
            300,
            "EUR",
            "LT-#####",
            "Vilnius|Kaunas|Klaipėda|Šiauliai|Panevėžys",
            "Gedimino pr.|Laisvės al.|Vilniaus g.|Pilies g.|Taikos pr.",
            "lt",
            "UAB|AB|MB",
            21,
            "################",
        ),
        _country(
            "CZ",
            280,
            "CZK",
            "### ##",
            "Praha|Brno|Ostrava|Plzeň|Olomouc",
            "Václavské náměstí|Národní|Husova|Masarykova|Palackého",
            "cs",
            "s.r.o.|a.s.",
            21,
            "####################",
        ),
        _country(
            "SE",
            280,
            "SEK",
            "### ##",
            "Stockholm|Göteborg|Malmö|Uppsala|Västerås",
            "Drottninggatan|Storgatan|Kungsgatan|Skolgatan|Järnvägsgatan",
            "sv",
            "AB|HB",
            25,
            "####################",
        ),
        _country(
            "PT",
            240,
            "EUR",
            "####-###",
            "Lisboa|Porto|Braga|Coimbra|Faro",
            "Rua Augusta|Avenida da Liberdade|Rua de Santa Catarina|Rua do Comércio",
            "pt",
            "Lda.|S.A.|Unipessoal Lda.",
            23,
            "#####################",
        ),
        _country(
            "AT",
            240,
            "EUR",
            "####",
            "Wien|Graz|Linz|Salzburg|Innsbruck",
            "Hauptplatz|Mariahilfer Straße|Kirchengasse|Bahnhofstraße|Ringstraße",
            "de",
            "GmbH|OG|KG|AG",
            20,
            "################",
        ),
        _country(
            "HU",
            230,
            "HUF",
            "####",
            "Budapest|Debrecen|Szeged|Miskolc|Pécs",
            "Fő utca|Kossuth Lajos utca|Petőfi Sándor utca|Rákóczi út|Andrássy út",
            "hu",
            "Kft.|Zrt.|Bt.",
            27,
            "########################",
        ),
        _country(
            "GR",
            230,
            "EUR",
            "### ##",
            "Athina|Thessaloniki|Patra|Irakleio|Larisa",
            "Odos Ermou|Leoforos Syngrou|Odos Athinas|Odos Tsimiski",
            "el",
            "IKE|AE|EPE",
            24,
            "#######????????????????",
        ),
        _country(
            "DK",
            170,
            "DKK",
            "####",
            "København|Aarhus|Odense|Aalborg",
            "Vestergade|Østergade|Strøget|Nørregade|Algade",
            "da",
            "ApS|A/S|I/S",
            25,
            "##############",
        ),
        _country(
            "FI",
            150,
            "EUR",
            "#####",
            "Helsinki|Espoo|Tampere|Turku|Oulu",
            "Mannerheimintie|Hämeenkatu|Aleksanterinkatu|Kauppakatu",
            "fi",
            "Oy|Oyj|Ky",
            25,
            "##############",
        ),
        _country(
            "IE",
            150,
            "EUR",
            "@## @#@#",
            "Dublin|Cork|Galway|Limerick",
            "Main Street|O'Connell Street|Church Road|Grafton Street",
            "en",
            "Ltd|DAC|PLC",
            23,
            "@@@@##############",
        ),
        _country(
            "SK",
            140,
            "EUR",
            "### ##",
            "Bratislava|Košice|Prešov|Žilina",
            "Hlavná|Obchodná|Štúrova|Mierová",
            "sk",
            "s.r.o.|a.s.",
            23,
            "####################",
        ),
        _country(
            "BG",
            140,
            "EUR",
            "####",
            "Sofia|Plovdiv|Varna|Burgas",
            "bul. Vitosha|ul. Rakovski|bul. Tsar Osvoboditel|ul. Graf Ignatiev",
            "bg",
            "EOOD|OOD|AD",
            20,
            "@@@@######????????",
        ),
        _country(
            "HR",
            120,
            "EUR",
            "#####",
            "Zagreb|Split|Rijeka|Osijek|Zadar",
            "Ilica|Vukovarska|Ulica kralja Zvonimira|Obala Hrvatskog narodnog preporoda",
            "hr",
            "d.o.o.|j.d.o.o.|d.d.",
            25,
            "#################",
        ),
        _country(
            "SI",
            80,
            "EUR",
            "####",
            "Ljubljana|Maribor|Celje|Koper",
            "Slovenska cesta|Prešernova ulica|Trubarjeva cesta|Glavni trg",
            "sl",
            "d.o.o.|d.d.",
            22,
            "###############",
        ),
        _country(
            "LV",
            80,
            "EUR",
            "LV-####",
            "Rīga|Daugavpils|Liepāja|Jelgava",
            "Brīvības iela|Elizabetes iela|Tērbatas iela|Krišjāņa Barona iela",
            "lv",
            "SIA|AS",
            21,
            "@@@@?????????????",
        ),
        _country(
            "EE",
            70,
            "EUR",
            "#####",
            "Tallinn|Tartu|Narva|Pärnu",
            "Narva mnt|Pärnu mnt|Rüütli|Tartu mnt",
            "et",
            "OÜ|AS",
            22,
            "################",
        ),
        _country(
            "LU",
            60,
            "EUR",
            "L-####",
            "Luxembourg|Esch-sur-Alzette|Differdange|Dudelange",
            "Grand-Rue|Avenue de la Liberté|Rue de Hollerich|Boulevard Royal",
            "lb",
            "S.à r.l.|S.A.|SCS",
            17,
            "################",
        ),
        _country(
            "CY",
            60,
            "EUR",
            "####",
            "Nicosia|Limassol|Larnaca|Paphos",
            "Makariou Avenue|Ledras Street|Archbishop Kyprianou|Griva Digeni",
            "el",
            "Ltd",
            19,
            "########????????????????",
        ),
        _country(
            "MT",
            60,
            "EUR",
            "@@@ ####",
            "Valletta|Birkirkara|Sliema|Mosta",
            "Republic Street|Triq il-Kbira|Tower Road|Merchants Street",
            "mt",
            "Ltd|p.l.c.",
            18,
            "@@@@#####??????????????????",
        ),
        _country(
            "US",
            150,
            "USD",
            "#####",
            "New York|Los Angeles|Chicago|Houston|Miami",
            "Main Street|Oak Avenue|Maple Drive|Park Avenue|Elm Street",
            "en",
            "LLC|Inc.|Corp.",
            0,
            "",
        ),
        _country(
            "GB",
            150,
            "GBP",
            "@@# #@@",
            "London|Manchester|Birmingham|Edinburgh|Bristol",
            "High Street|Station Road|Church Lane|Victoria Road|King Street",
            "en",
            "Ltd|PLC|LLP",
            0,
            "@@@@##############",
        ),
        _country(
            "CH",
            80,
            "CHF",
            "####",
            "Zürich|Genève|Basel|Bern|Lausanne",
            "Bahnhofstrasse|Rue du Rhône|Freie Strasse|Marktgasse",
            "de|fr",
            "GmbH|AG|Sàrl",
            0,
            "#####????????????",
        ),
        _country(
            "NO",
            60,
            "NOK",
            "####",
            "Oslo|Bergen|Trondheim|Stavanger",
            "Karl Johans gate|Storgata|Kirkegata|Strandgaten",
            "nb",
            "AS|ASA",
            0,
            "###########",
        ),
        _country(
            "UA",
            60,
            "EUR",
            "#####",
            "Kyiv|Lviv|Odesa|Kharkiv|Dnipro",
            "vul. Khreshchatyk|vul. Shevchenka|prosp. Svobody|vul. Franka",
            "uk",
            "TOV|PP",
            0,
            "######???????????????????",
        ),
        # listing / birth countries only
        _country(
            "TR",
            0,
            "",
            "#####",
            "Istanbul|Antalya|Izmir|Bodrum",
            "Atatürk Caddesi|Cumhuriyet Caddesi|İstiklal Caddesi",
            "en",
            "Ltd",
            0,
            "",
        ),
        _country(
            "ME",
            0,
            "",
            "#####",
            "Budva|Kotor|Podgorica|Herceg Novi",
            "Njegoševa|Slovenska obala|Bulevar Svetog Petra Cetinjskog",
            "en",
            "d.o.o.",
            0,
            "",
        ),
    )
}

_BIRTH_ONLY: dict[str, tuple[str, ...]] = {
    "MA": ("Casablanca", "Rabat", "Marrakech"),
    "IN": ("Mumbai", "Delhi", "Bengaluru"),
    "BR": ("São Paulo", "Rio de Janeiro"),
    "VN": ("Hanoi", "Ho Chi Minh City"),
    "CN": ("Shanghai", "Beijing"),
    "RS": ("Belgrade", "Novi Sad"),
}

_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    key: (tuple(firsts.split()), tuple(lasts.split("|")))
    for key, (firsts, lasts) in {
        "de": (
            "Anna Lukas Marie Jonas Sophie Felix Laura Paul Julia Maximilian Katharina Leon",
            "Müller|Schmidt|Schneider|Fischer|Weber|Meyer|Wagner|Becker|Hoffmann|Schulz|Koch|Richter",
        ),
        "fr": (
            "Camille Louis Léa Hugo Chloé Jules Manon Lucas Inès Gabriel",
            "Martin|Bernard|Dubois|Thomas|Robert|Richard|Petit|Durand|Leroy|Moreau",
        ),
        "it": (
            "Giulia Marco Francesca Alessandro Chiara Luca Sara Matteo Elena Andrea",
            "Rossi|Russo|Ferrari|Esposito|Bianchi|Romano|Colombo|Ricci|Marino|Greco",
        ),
        "es": (
            "Lucía Hugo María Martín Paula Daniel Carmen Pablo Elena Alejandro",
            "García|Rodríguez|González|Fernández|López|Martínez|Sánchez|Pérez|Gómez|Ruiz",
        ),
        "pt": (
            "Maria João Ana Francisco Beatriz Tiago Inês Duarte",
            "Silva|Santos|Ferreira|Pereira|Oliveira|Costa|Rodrigues|Martins",
        ),
        "pl": (
            "Anna Piotr Katarzyna Krzysztof Magdalena Tomasz Agnieszka Paweł Zofia Jakub",
            "Nowak|Kowalski|Wiśniewski|Wójcik|Kowalczyk|Kamiński|Lewandowski|Zieliński|Szymański|Woźniak",
        ),
        "nl": (
            "Emma Daan Sanne Lars Fleur Bram Lotte Sem Anouk Thijs",
            "de Jong|Jansen|de Vries|van den Berg|van Dijk|Bakker|Visser|Smit|Meijer|de Boer",
        ),
        "lt": (
            "Ieva Lukas Gabija Matas Austėja Jonas Emilija Dominykas",
            "Kazlauskas|Jankauskas|Petrauskas|Stankevičius|Vasiliauskas|Žukauskas|Butkus|Paulauskas",
        ),
        "lv": (
            "Anna Roberts Elza Gustavs Sofija Markuss Alise Jānis",
            "Bērziņš|Kalniņš|Ozoliņš|Jansons|Liepiņš|Krūmiņš|Balodis|Eglītis",
        ),
        "et": ("Maria Rasmus Sofia Robin Eliise Oliver Mia Artur", "Tamm|Saar|Sepp|Mägi|Kask|Kukk|Rebane|Ilves"),
        "fi": (
            "Aino Eino Helmi Leo Olivia Väinö Aada Onni",
            "Korhonen|Virtanen|Mäkinen|Nieminen|Mäkelä|Hämäläinen|Laine|Heikkinen",
        ),
        "sv": (
            "Alice Lucas Maja William Elsa Liam Astrid Hugo",
            "Andersson|Johansson|Karlsson|Nilsson|Eriksson|Larsson|Olsson|Persson",
        ),
        "da": (
            "Freja William Ida Oscar Emma Noah Clara Karl",
            "Nielsen|Jensen|Hansen|Pedersen|Andersen|Christensen|Larsen|Sørensen",
        ),
        "ro": (
            "Maria Andrei Elena Alexandru Ioana Mihai Ana Ștefan",
            "Popescu|Ionescu|Popa|Pop|Radu|Dumitru|Stan|Stoica",
        ),
        "hu": ("Hanna Bence Anna Máté Zsófia Levente Luca Dominik", "Nagy|Kovács|Tóth|Szabó|Horváth|Varga|Kiss|Molnár"),
        "cs": (
            "Eliška Jakub Tereza Jan Anna Tomáš Adéla Matyáš",
            "Novák|Svoboda|Novotný|Dvořák|Černý|Procházka|Kučera|Veselý",
        ),
        "sk": ("Sofia Jakub Nina Samuel Ema Michal Natália Adam", "Horváth|Kováč|Varga|Tóth|Nagy|Baláž|Szabó|Molnár"),
        "el": (
            "Maria Georgios Eleni Ioannis Aikaterini Konstantinos Vasiliki Dimitrios",
            "Papadopoulos|Papadakis|Georgiou|Nikolaou|Vasileiou|Oikonomou|Karagiannis|Christodoulou",
        ),
        "bg": (
            "Maria Georgi Ivana Dimitar Elena Ivan Viktoria Nikolay",
            "Ivanov|Georgiev|Dimitrov|Petrov|Nikolov|Hristov|Stoyanov|Todorov",
        ),
        "hr": (
            "Mia Luka Ana Ivan Lucija David Petra Marko",
            "Horvat|Kovačević|Babić|Marić|Jurić|Novak|Kovačić|Knežević",
        ),
        "sl": ("Eva Luka Zala Jakob Nika Nik Ana Filip", "Novak|Horvat|Kovačič|Krajnc|Zupančič|Potočnik|Kovač|Mlakar"),
        "en": (
            "Emily James Olivia Jack Sophie Thomas Grace Daniel Chloe Michael",
            "Murphy|Kelly|Smith|Jones|Williams|Brown|Walsh|Taylor|Wilson|Byrne",
        ),
        "mt": ("Maria Luke Martina Matthew Julia Jake", "Borg|Camilleri|Vella|Farrugia|Zammit|Galea"),
        "lb": ("Emma Gabriel Léa Noah Mia Luca", "Schmit|Muller|Weber|Wagner|Hoffmann|Thill"),
        "nb": ("Nora Jakob Emma Emil Olivia Noah", "Hansen|Johansen|Olsen|Larsen|Andersen|Pedersen"),
        "uk": (
            "Olena Oleksandr Iryna Andrii Kateryna Dmytro",
            "Shevchenko|Kovalenko|Bondarenko|Tkachenko|Kravchenko|Melnyk",
        ),
    }.items()
}

_EU = tuple(sorted(EU_MEMBER_STATES))
_RESIDENCES = tuple(c for c in _COUNTRIES.values() if c.weight)
_RESIDENCE_CW = tuple(accumulate(c.weight for c in _RESIDENCES))
_HOLIDAY_EU = ("ES", "IT", "FR", "GR", "PT", "HR", "AT", "CY", "MT", "DE")
_HOLIDAY_EU_CW = tuple(accumulate((30, 22, 16, 12, 8, 6, 3, 1, 1, 1)))
_LISTING_NON_EU = ("GB", "CH", "NO", "US", "TR", "ME")
_BIRTH_ABROAD = ("UA", "TR", "MA", "IN", "BR", "VN", "CN", "RS", "US", "GB")

_ENTITY_WORDS = (
    "Nord",
    "Alpen",
    "Baltic",
    "Euro",
    "Blue",
    "Green",
    "Sun",
    "Delta",
    "Atlas",
    "Nova",
    "Vista",
    "Orbit",
    "Lumen",
    "Terra",
    "Aqua",
    "Prime",
    "Urban",
    "Cedar",
    "Falcon",
    "Helix",
    "Amber",
    "Silver",
    "Cobalt",
    "Linden",
)
_ENTITY_SUFFIX: dict[str, tuple[str, ...]] = {
    GOODS: ("Trading", "Goods", "Market", "Supplies", "Crafts", "Store"),
    SERVICES: ("Services", "Studio", "Solutions", "Care", "Works"),
    TRANSPORT: ("Mobility", "Cars", "Bikes", "Fleet"),
    PROPERTY: ("Properties", "Apartments", "Rentals", "Living", "Homes", "Stays"),
}
_GOV_SUFFIX = (
    "Municipal Housing Office",
    "City Transport Authority",
    "Public Property Agency",
    "Municipal Services Department",
)

_PROPERTY_TYPES = ("DPI901", "DPI902", "DPI903", "DPI904", "DPI905", "DPI906", "DPI907", "DPI908", "DPI909", "DPI910")
_PROPERTY_CW = tuple(accumulate((5, 2, 7, 20, 40, 3, 3, 3, 8, 6)))
_OTHER_PROPERTY = ("Garage", "Storage unit", "Event hall", "Farm building", "Garden plot", "Wine cellar", "Treehouse")
_LAND_REGISTRY: dict[str, str] = {
    "DE": "Grundbuch Blatt #####",
    "AT": "EZ ####, KG #####",
    "FR": "Section @@ n° ####",
    "IT": "Foglio ## Particella ####",
    "ES": "Finca #####",
    "PL": "@@#@/########/#",
    "NL": "@@@## @ ####",
    "PT": "Artigo matricial ####",
    "GR": "KAEK ############",
    "HR": "k.č. ####/#",
    "CZ": "LV ####",
    "SK": "LV ####",
}

#: Count bands (low, high exclusive) and weights per kind of seller.
_BANDS: dict[str, tuple[tuple[tuple[int, int], ...], tuple[float, ...]]] = {
    # heavy-tailed goods sellers: roughly Pareto(1.5) from 30 sales up to a few thousand
    "goods_pro": (
        ((30, 60), (60, 120), (120, 250), (250, 500), (500, 1000), (1000, 2000), (2000, 5001)),
        (646, 229, 83, 27, 10, 3, 2),
    ),
    "goods_listed": (((200, 600), (600, 1500), (1500, 4001)), (60, 30, 10)),
    SERVICES: (((1, 10), (10, 40), (40, 150), (150, 600)), (50, 33, 14, 3)),
    TRANSPORT: (((1, 10), (10, 40), (40, 200), (200, 800)), (50, 33, 14, 3)),
    PROPERTY: (((1, 10), (10, 40), (40, 120), (120, 300)), (45, 38, 14, 3)),
}
_BANDS_CW = {k: tuple(accumulate(w)) for k, (_, w) in _BANDS.items()}
#: Occasional goods sellers: 1..29 sales, small counts more likely.
_OCCASIONAL = tuple(range(1, 30))
_OCCASIONAL_CW = tuple(accumulate((30 - k) ** 2 for k in _OCCASIONAL))

#: Seasonality (month factors) per activity; weekends count less for services.
_SEASON: dict[str, tuple[float, ...]] = {
    GOODS: (0.9, 0.8, 0.9, 0.9, 0.95, 0.95, 0.9, 0.9, 1.0, 1.05, 1.4, 1.6),
    SERVICES: (1.0,) * 12,
    TRANSPORT: (0.7, 0.7, 0.8, 0.9, 1.1, 1.4, 1.7, 1.7, 1.1, 0.9, 0.7, 0.9),
    PROPERTY: (0.6, 0.6, 0.7, 0.9, 1.0, 1.5, 2.0, 2.0, 1.2, 0.8, 0.6, 0.9),
}
#: Payments per UTC hour (European daytime, a fair share late in the evening UTC).
_HOURS = tuple(range(24))
_HOURS_CW = tuple(
    accumulate(
        (
            1.0,
            0.6,
            0.4,
            0.3,
            0.3,
            0.5,
            1.0,
            2.0,
            3.0,
            4.0,
            4.5,
            5.0,
            5.0,
            5.0,
            5.0,
            5.0,
            5.5,
            6.0,
            6.5,
            6.5,
            6.0,
            5.0,
            3.5,
            2.0,
        )
    )
)
_OUT_OF_YEAR_DAYS = 5  # days before / after the year with some payments (each side ~1%)
_EDGE_P = 0.005  # share of payments put just around a quarter boundary (UTC)
_REFUND_P = 0.03

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ALNUM = _UPPER + "0123456789"


def _compile(pattern: str) -> tuple[tuple[str, object], ...]:
    """A pattern as runs: ('#', n) digits, ('@', n) letters, ('?', n) letters/digits, ('', s)."""
    runs: list[list] = []
    for ch in pattern:
        kind = ch if ch in "#@?" else ""
        if runs and runs[-1][0] == kind:
            runs[-1][1] = runs[-1][1] + 1 if kind else runs[-1][1] + ch
        else:
            runs.append([kind, 1 if kind else ch])
    return tuple((k, v) for k, v in runs)


_PATTERNS: dict[str, tuple[tuple[str, object], ...]] = {}


def _iban_check(cc: str, bban: str) -> str:
    """The two ISO 7064 MOD 97-10 check digits of an IBAN."""
    digits = "".join(str(int(ch, 36)) for ch in bban + cc) + "00"
    return f"{98 - int(digits) % 97:02d}"


def _mod11_10(body: str) -> str:
    """ISO 7064 MOD 11,10 check digit (German IdNr and USt-IdNr, Croatian OIB)."""
    product = 10
    for ch in body:
        s = (int(ch) + product) % 10 or 10
        product = 2 * s % 11
    return str((11 - product) % 10)


def _luhn(body: str) -> str:
    """Luhn check digit of a digit string."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str(-total % 10)


def _weighted(body: str, weights: Sequence[int]) -> int:
    return sum(w * int(n) for w, n in zip(weights, body, strict=False))


def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def _target_closed(day: dt.date) -> bool:
    """ECB reference rates are not published on weekends and TARGET closing days."""
    if day.weekday() >= 5:
        return True
    if (day.month, day.day) in ((1, 1), (5, 1), (12, 25), (12, 26)):
        return True
    easter = _easter(day.year)
    return day in (easter - dt.timedelta(days=2), easter + dt.timedelta(days=1))


# ----------------------------------------------------------------------------------------------
# The generator
# ----------------------------------------------------------------------------------------------


class _Sink:
    """Buffers rows per table and writes them with one ``executemany`` per flush."""

    def __init__(self, conn: Connection, columns: dict[str, tuple[str, ...]]) -> None:
        self.conn = conn
        self.columns = columns
        self.rows: dict[str, list[tuple]] = {t: [] for t in columns}
        self.counts: dict[str, int] = dict.fromkeys(columns, 0)
        self.pending = 0
        style = conn.dialect.paramstyle
        self._sql: dict[str, str | None] = {}
        for table, cols in columns.items():
            names = ", ".join(cols)
            if style == "qmark":
                marks = ", ".join("?" for _ in cols)
            elif style in ("format", "pyformat"):
                marks = ", ".join("%s" for _ in cols)
            elif style == "numeric":
                marks = ", ".join(f":{i}" for i in range(1, len(cols) + 1))
            elif style == "numeric_dollar":
                marks = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
            else:
                marks = None
            # Table and column names are contract constants; values are always bound.
            self._sql[table] = f"INSERT INTO {table} ({names}) VALUES ({marks})" if marks else None

    def flush(self) -> None:
        for table, rows in self.rows.items():
            if not rows:
                continue
            sql = self._sql[table]
            if sql is not None:
                self.conn.exec_driver_sql(sql, rows)
            else:  # a driver with named parameters: Core insert of plain dicts
                cols = self.columns[table]
                stmt = sa.insert(sa.table(table, *(sa.column(c) for c in cols)))
                self.conn.execute(stmt, [dict(zip(cols, r, strict=True)) for r in rows])
            self.counts[table] += len(rows)
            rows.clear()
        self.pending = 0


class _Generator:
    def __init__(self, seed: int, year: int, with_other_property_type: bool) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.year = year
        self.other_type = with_other_property_type
        self.base = dt.date(year - 1, 12, 1)  # first FX date, day index 0
        self.last = dt.date(year + 1, 3, 31)  # last FX date and latest refund
        ndays = (self.last - self.base).days + 1
        self.day_text = [(self.base + dt.timedelta(days=i)).isoformat() + " " for i in range(ndays)]
        self.time_text = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
        self.max_sec = ndays * 86400 - 1
        first = self._index(dt.date(year, 1, 1))
        last = self._index(dt.date(year, 12, 31))
        lo, hi = first - _OUT_OF_YEAR_DAYS, last + _OUT_OF_YEAR_DAYS
        self.paid_days = tuple(range(lo, hi + 1))
        self.year_days = tuple(range(first, last + 1))
        self.day_cw: dict[str, tuple[float, ...]] = {}
        for act, season in _SEASON.items():
            weights = []
            for i in self.year_days:
                day = self.base + dt.timedelta(days=i)
                w = season[day.month - 1]
                if act == SERVICES and day.weekday() >= 5:
                    w *= 0.7
                weights.append(w)
            side = 0.01 * sum(weights) / _OUT_OF_YEAR_DAYS
            self.day_cw[act] = tuple(accumulate([side] * _OUT_OF_YEAR_DAYS + weights + [side] * _OUT_OF_YEAR_DAYS))
        self.year_cw = tuple(accumulate(1.0 for _ in self.year_days))
        # just before / after quarter ends in UTC (local time is already the next quarter)
        edges = []
        for day in (
            dt.date(year - 1, 12, 31),
            dt.date(year, 3, 31),
            dt.date(year, 6, 30),
            dt.date(year, 9, 30),
            dt.date(year, 12, 31),
        ):
            i = self._index(day)
            edges += [(i * 86400 + 21 * 3600, i * 86400 + 86400)] * 4  # 21:00-23:59:59
            edges.append(((i + 1) * 86400, (i + 1) * 86400 + 2 * 3600))  # 00:00-01:59:59 next
        self.edges = tuple(edges)
        self.n_txn = 0
        self.n_refund = 0
        self.n_listing = 0

    def _index(self, day: dt.date) -> int:
        return (day - self.base).days

    def text(self, sec: int) -> str:
        d, s = divmod(sec, 86400)
        return self.day_text[d] + self.time_text[s]

    # -- small helpers --------------------------------------------------------------------------

    def fill(self, pattern: str) -> str:
        runs = _PATTERNS.get(pattern)
        if runs is None:
            runs = _PATTERNS[pattern] = _compile(pattern)
        rng = self.rng
        out = []
        for kind, v in runs:
            if kind == "#":
                out.append(f"{rng.randrange(10**v):0{v}d}")  # type: ignore[operator]
            elif kind == "@":
                out.append("".join(rng.choices(_UPPER, k=v)))  # type: ignore[arg-type]
            elif kind == "?":
                out.append("".join(rng.choices(_ALNUM, k=v)))  # type: ignore[arg-type]
            else:
                out.append(v)  # type: ignore[arg-type]
        return "".join(out)

    def digits(self, n: int, first_min: int = 0) -> str:
        """n digits, the first at least ``first_min``."""
        lo = first_min * 10 ** (n - 1)
        return f"{self.rng.randrange(lo, 10**n):0{n}d}"

    def checked(self, make: Callable[[], str], calc: Callable[[str], str]) -> str:
        """body + check, drawing a new body while the check is not a single character."""
        while True:
            body = make()
            check = calc(body)
            if len(check) == 1:
                return body + check

    def band(self, kind: str) -> int:
        bands, _ = _BANDS[kind]
        lo, hi = self.rng.choices(bands, cum_weights=_BANDS_CW[kind])[0]
        return self.rng.randrange(lo, hi)

    # -- identifiers ----------------------------------------------------------------------------

    def tin(self, cc: str, entity: bool, birth: dt.date | None) -> str:
        """A TIN in the issuing country's usual shape (valid check digits where cheap)."""
        rng, digits = self.rng, self.digits
        b = birth or dt.date(1980, 1, 1)
        yymmdd = b.strftime("%y%m%d")
        ddmmyy = b.strftime("%d%m%y")
        if cc == "DE":
            if entity:
                return self.fill("#############")
            ten = rng.sample("0123456789", 9)
            ten.insert(rng.randrange(1, 10), rng.choice(ten))
            if ten[0] == "0":
                j = next(i for i, ch in enumerate(ten) if ch != "0")
                ten[0], ten[j] = ten[j], ten[0]
            body = "".join(ten)
            return body + _mod11_10(body)
        if cc == "HR":
            return self.checked(lambda: digits(10, 1), _mod11_10)
        if cc == "ES":
            if entity:
                from stdnum.es import cif

                body = "B" + digits(7)
                return body + cif.calc_check_digits(body)[0]
            from stdnum.es import dni

            body = digits(8)
            return body + dni.calc_check_digit(body)
        if cc == "PL":
            if entity:
                return self.checked(lambda: digits(9, 1), lambda s: str(_weighted(s, (6, 5, 7, 2, 3, 4, 5, 6, 7)) % 11))
            from stdnum.pl import pesel

            month = b.month + (20 if b.year >= 2000 else 0)
            body = f"{b.year % 100:02d}{month:02d}{b.day:02d}" + digits(4)
            return body + pesel.calc_check_digit(body)
        if cc == "NL":  # BSN / RSIN, the 11-test
            return self.checked(lambda: digits(8, 1), lambda s: str(_weighted(s, (9, 8, 7, 6, 5, 4, 3, 2)) % 11))
        if cc == "PT":
            from stdnum.pt import nif

            body = ("5" if entity else str(rng.randint(1, 2))) + digits(7)
            return body + nif.calc_check_digit(body)
        if cc == "FR":
            if entity:  # SIREN
                body = digits(8, 1)
                return body + _luhn(body)
            from stdnum.fr import nif as fr_nif

            body = str(rng.randint(0, 3)) + digits(9)
            return body + fr_nif.calc_check_digits(body)
        if cc == "IT":
            if entity:  # partita IVA: 7 digits, a tax office 001-100, Luhn check
                body = digits(7, 1) + f"{rng.randint(1, 100):03d}"
                return body + _luhn(body)
            from stdnum.it import codicefiscale

            day = b.day + (40 if rng.random() < 0.5 else 0)
            body = (
                self.fill("@@@@@@")
                + f"{b.year % 100:02d}"
                + "ABCDEHLMPRST"[b.month - 1]
                + f"{day:02d}"
                + self.fill("@###")
            )
            return body + codicefiscale.calc_check_digit(body)
        if cc == "BE":
            if entity:  # enterprise number 0xxx.xxx.xxx
                body = "0" + digits(7, 2)
                return f"{body}{97 - int(body) % 97:02d}"
            body = yymmdd + digits(3)
            n = int(("2" if b.year >= 2000 else "") + body)
            return f"{body}{97 - n % 97:02d}"
        if cc in ("EE", "LT"):
            from stdnum.ee import ik

            if entity:
                if cc == "LT":
                    return digits(9, 1)
                body = "1" + digits(6)  # registrikood
                return body + ik.calc_check_digit(body + "0")
            body = str((3 if b.year < 2000 else 5) + rng.randint(0, 1)) + yymmdd + digits(3)
            return body + ik.calc_check_digit(body + "0")
        if cc == "FI":
            if entity:

                def ytunnus_check(s: str) -> str:
                    r = _weighted(s, (7, 9, 10, 5, 8, 4, 2)) % 11
                    return "" if r == 1 else str((11 - r) % 11)

                body = self.checked(lambda: digits(7), ytunnus_check)
                return f"{body[:7]}-{body[7]}"
            serial = rng.randint(2, 899)
            check = "0123456789ABCDEFHJKLMNPRSTUVWXY"[int(f"{ddmmyy}{serial:03d}") % 31]
            return f"{ddmmyy}{'-' if b.year < 2000 else 'A'}{serial:03d}{check}"
        if cc == "SE":
            if entity:
                body = "5" + digits(1) + str(rng.randint(2, 9)) + digits(6)
                return f"{body[:6]}-{body[6:]}{_luhn(body)}"
            body = yymmdd + digits(3)
            return f"{yymmdd}-{body[6:]}{_luhn(body)}"
        if cc == "DK":
            if entity:
                return self.dk_cvr()
            # the first serial digit tells the century (0-3: 1900s, 4 or 9: 1937-2036)
            first = str(rng.randint(0, 3)) if b.year < 2000 else rng.choice("49")
            return f"{ddmmyy}-{first}{digits(3)}"
        if cc == "BG":
            if entity:
                from stdnum.bg import vat as bg_vat

                body = digits(8, 1)
                return body + bg_vat.calc_check_digit_legal(body)
            from stdnum.bg import egn

            month = b.month + (40 if b.year >= 2000 else 0)
            body = f"{b.year % 100:02d}{month:02d}{b.day:02d}" + digits(3)
            return body + egn.calc_check_digit(body)
        if cc in ("CZ", "SK"):
            if entity:
                from stdnum.cz import dic

                body = str(rng.randint(1, 8)) + digits(6)
                return body + dic.calc_check_digit_legal(body)

            def rc_check(s: str) -> str:
                return str(-int(s) * 10 % 11)

            body = self.checked(lambda: yymmdd + digits(3), rc_check)
            return f"{body[:6]}/{body[6:]}"
        if cc == "RO":
            if entity:
                from stdnum.ro import cui

                body = digits(7, 1)
                return body + cui.calc_check_digit(body)
            from stdnum.ro import cnp

            body = (
                str(rng.randint(1, 2) + (4 if b.year >= 2000 else 0)) + yymmdd + f"{rng.randint(1, 46):02d}" + digits(3)
            )
            return body + cnp.calc_check_digit(body)
        if cc == "LV":
            if entity:
                return "4" + digits(10)
            from stdnum.lv import pvn

            century = "1" if b.year < 2000 else "2"
            body = self.checked(lambda: ddmmyy + century + digits(3), pvn.calc_check_digit_pers)
            return f"{body[:6]}-{body[6:]}"
        if cc == "HU":
            if entity:
                return f"{self.hu_base()}-{rng.randint(1, 5)}-{rng.randint(2, 44):02d}"
            days = (b - dt.date(1867, 1, 1)).days

            def anum_check(s: str) -> str:
                return str(sum((i + 1) * int(n) for i, n in enumerate(s)) % 11)

            return self.checked(lambda: f"8{days:05d}{digits(3)}", anum_check)
        if cc == "GR":
            from stdnum.gr import vat as gr_vat

            body = digits(8, 1)
            return body + gr_vat.calc_check_digit(body)
        if cc == "SI":
            from stdnum.si import ddv

            return self.checked(lambda: digits(7, 1), ddv.calc_check_digit)
        if cc == "IE":
            body = digits(7)
            return body + "WABCDEFGHIJKLMNOPQRSTUV"[_weighted(body, (8, 7, 6, 5, 4, 3, 2)) % 23]
        if cc == "CY":
            from stdnum.cy import vat as cy_vat

            body = ("10" if entity else "0" + str(rng.randint(0, 9))) + digits(6)
            return body + cy_vat.calc_check_digit(body)
        if cc == "LU":
            return digits(8, 1) if entity else b.strftime("%Y%m%d") + digits(5)
        if cc == "MT":
            return digits(9, 1) if entity else digits(7) + "M"
        if cc == "AT":
            return self.fill("##-###/####")
        if cc == "US":
            if entity:
                prefix = rng.choice(("12", "20", "27", "45", "46", "47", "81", "82", "83", "84", "85", "86"))
                return f"{prefix}-{digits(7)}"
            return f"{rng.randint(1, 665):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
        if cc == "GB":
            from stdnum.gb import utr

            body = digits(9)
            return utr.calc_check_digit(body) + body
        if cc == "CH":
            if entity:
                from stdnum.ch import uid

                body = self.checked(lambda: digits(8, 1), uid.calc_check_digit)
                return f"CHE-{body[:3]}.{body[3:6]}.{body[6:]}"
            body = "756" + digits(9)
            check = -_weighted(body, (1, 3) * 6) % 10
            return f"{body[:3]}.{body[3:7]}.{body[7:11]}.{body[11:]}{check}"
        if cc == "NO":
            if entity:
                return self.checked(lambda: digits(8, 8), lambda s: str(-_weighted(s, (3, 2, 7, 6, 5, 4, 3, 2)) % 11))
            from stdnum.no import fodselsnummer as fnr

            def fnr_check(s: str) -> str:
                c1 = fnr.calc_check_digit1(s)
                return "" if len(c1) > 1 else c1 + fnr.calc_check_digit2(s + c1)

            while True:  # individual numbers 000-499: 1900-1999, 500-999: 2000-2039
                body = ddmmyy + f"{rng.randrange(500) + (500 if b.year >= 2000 else 0):03d}"
                check = fnr_check(body)
                if len(check) == 2:
                    return body + check
        if cc == "UA":
            return digits(8 if entity else 10, 1)
        return digits(10, 1)

    def dk_cvr(self) -> str:
        return self.checked(lambda: self.digits(7, 1), lambda s: str(-_weighted(s, (2, 7, 6, 5, 4, 3, 2)) % 11))

    def hu_base(self) -> str:
        return self.checked(lambda: self.digits(7, 1), lambda s: str(-_weighted(s, (9, 7, 3, 1, 9, 7, 3)) % 10))

    def vat(self, cc: str, tin: str | None) -> str | None:
        """A VAT identification number with its country prefix (GR uses EL)."""
        digits = self.digits
        if cc == "DE":
            body = digits(8, 1)
            return "DE" + body + _mod11_10(body)
        if cc == "AT":
            from stdnum.at import uid as at_uid

            body = "U" + digits(7)
            return "AT" + body + at_uid.calc_check_digit(body)
        if cc == "FR":
            siren = tin if tin and len(tin) == 9 else digits(8, 1) + "0"
            siren = siren[:8] + _luhn(siren[:8])
            return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"
        if cc == "NL":
            rsin = self.tin("NL", True, None)
            return f"NL{rsin}B{self.rng.randint(1, 3):02d}"
        if cc in ("BE", "BG", "CY", "GR", "HR", "IT", "PL", "PT", "RO", "SI") and tin and tin.isalnum():
            return ("EL" if cc == "GR" else cc) + tin
        if cc in ("BE", "BG", "CY", "GR", "HR", "IT", "PL", "PT", "RO", "SI"):
            return ("EL" if cc == "GR" else cc) + self.tin(cc, True, None)
        if cc == "ES":
            return "ES" + (tin if tin and tin[0] == "B" else self.tin("ES", True, None))
        if cc == "DK":
            return "DK" + self.dk_cvr()
        if cc == "FI":

            def check(s: str) -> str:
                r = _weighted(s, (7, 9, 10, 5, 8, 4, 2)) % 11
                return "" if r == 1 else str((11 - r) % 11)

            return "FI" + self.checked(lambda: digits(7), check)
        if cc == "SE":
            body = "5" + digits(1) + str(self.rng.randint(2, 9)) + digits(6)
            return f"SE{body}{_luhn(body)}01"
        if cc == "LU":
            body = digits(6, 1)
            return f"LU{body}{int(body) % 89:02d}"
        if cc == "HU":
            return "HU" + self.hu_base()
        if cc == "CZ":
            return "CZ" + self.tin("CZ", True, None)
        if cc == "SK":
            return "SK" + self.checked(
                lambda: digits(2, 1) + self.rng.choice("234789") + digits(6), lambda s: str(-int(s) * 10 % 11)
            )
        if cc == "EE":
            return "EE" + self.checked(lambda: "10" + digits(6), lambda s: str(-_weighted(s, (3, 7, 1) * 3) % 10))
        if cc == "IE":
            return "IE" + self.tin("IE", True, None)
        if cc == "LT":
            from stdnum.lt import pvm

            return "LT" + self.checked(lambda: digits(7, 1) + "1", pvm.calc_check_digit)
        if cc == "LV":  # legal entities: weighted sum of all 11 digits = 3 (mod 11)
            from stdnum.lv import pvn

            def lv_check(s: str) -> str:
                return next((d for d in "0123456789" if pvn.checksum(s + d) == 3), "")

            return "LV" + self.checked(lambda: "4" + digits(9), lv_check)
        if cc == "MT":  # weights 3 4 6 7 8 9 10 1, sum divisible by 37
            body = digits(6, 1)
            return f"MT{body}{-_weighted(body, (3, 4, 6, 7, 8, 9)) % 37:02d}"
        if cc == "GB":
            return "GB" + digits(9, 1)
        if cc == "CH":
            from stdnum.ch import uid

            body = self.checked(lambda: digits(8, 1), uid.calc_check_digit)
            return f"CHE-{body[:3]}.{body[3:6]}.{body[6:]} MWST"
        if cc == "NO":
            return "NO" + self.tin("NO", True, None) + "MVA"
        return None

    def iban(self, cc: str) -> str:
        """An IBAN (valid MOD 97 check and, for BE/ES/NO, national check digits)."""
        country = _COUNTRIES[cc]
        if not country.iban:  # US: ABA routing number + account number

            def aba(s: str) -> str:
                return str(-_weighted(s, (3, 7, 1, 3, 7, 1, 3, 7)) % 10)

            return f"{self.checked(lambda: self.digits(8), aba)} {self.digits(10, 1)}"
        bban = self.fill(country.iban)
        if cc == "BE":
            body = f"{self.rng.randrange(100):03d}" + bban[3:10]
            bban = f"{body}{int(body) % 97 or 97:02d}"
        elif cc == "ES":
            from stdnum.es import ccc

            bban = bban[:8] + "00" + bban[10:]
            bban = bban[:8] + ccc.calc_check_digits(bban) + bban[10:]
        elif cc == "NO":

            def kontonr(s: str) -> str:
                return str(_weighted(s, (6, 7, 8, 9, 4, 5, 6, 7, 8, 9)) % 11)

            bban = self.checked(lambda: self.digits(10, 1), kontonr)
        return cc + _iban_check(cc, bban) + bban

    # -- one seller -------------------------------------------------------------------------------

    def seller(self, index: int, sink: _Sink) -> None:
        rng = self.rng
        random_ = rng.random
        sid = f"S{index:07d}"
        entity = random_() < 0.15
        country = rng.choices(_RESIDENCES, cum_weights=_RESIDENCE_CW)[0]
        cc = country.code
        governmental = entity and random_() < 0.02
        listed = entity and not governmental and random_() < 0.012

        # what the seller does
        r = random_()
        if entity:
            primary = PROPERTY if r < 0.10 else SERVICES if r < 0.15 else TRANSPORT if r < 0.21 else GOODS
        else:
            primary = PROPERTY if r < 0.045 else SERVICES if r < 0.095 else TRANSPORT if r < 0.12 else GOODS
        if governmental:
            primary = PROPERTY if r < 0.5 else TRANSPORT
        activities = [primary]
        r = random_()
        if primary != GOODS:
            if r < 0.25:
                activities.append(GOODS)
        elif r < 0.02:
            activities.append(SERVICES)
        elif r < 0.03:
            activities.append(TRANSPORT)
        elif r < 0.035:
            activities.append(PROPERTY)

        # identity
        first = last = legal = birth_text = birth_city = birth_country = brn = None
        birth = None
        name_key = rng.choice(country.names)
        if entity:
            city = rng.choice(country.cities)
            if governmental:
                legal = f"{city} {rng.choice(_GOV_SUFFIX)}"
            else:
                word = rng.choice(_ENTITY_WORDS)
                suffix = rng.choice(_ENTITY_SUFFIX[primary])
                form = "SE" if listed and random_() < 0.5 else rng.choice(country.forms)
                legal = f"{word} {suffix} {'Group ' if listed else ''}{form}"
            holder_name = legal
        else:
            firsts, lasts = _NAMES[name_key]
            first, last = rng.choice(firsts), rng.choice(lasts)
            year_ = 1940 + min(rng.randrange(66), rng.randrange(66)) if random_() < 0.3 else rng.randint(1958, 1998)
            birth = dt.date(year_, 1, 1) + dt.timedelta(days=rng.randrange(365))
            birth_text = birth.isoformat()
            r = random_()
            if r < 0.85 or not country.weight:
                birth_country = cc
            elif r < 0.95:
                birth_country = rng.choice(_EU)
            else:
                birth_country = rng.choice(_BIRTH_ABROAD)
            cities = _COUNTRIES[birth_country].cities if birth_country in _COUNTRIES else _BIRTH_ONLY[birth_country]
            birth_city = rng.choice(cities)
            holder_name = f"{first} {last}"

        # TINs: one from the residence country; some none, some a second one from a member state
        tins: list[tuple[str, str, str]] = []
        r = random_()
        has_tin = r >= (0.015 if entity else 0.06)
        if has_tin:
            tins.append((sid, self.tin(cc, entity, birth), cc))
            if random_() < 0.02:
                other = rng.choice([c for c in _EU if c != cc])
                tins.append((sid, self.tin(other, entity, birth), other))
        elif not entity and birth_city is None:  # birth place is mandatory without a TIN
            birth_country, birth_city = cc, rng.choice(country.cities)
        if not entity and has_tin and random_() < 0.03:
            birth_city = birth_country = None  # place of birth not collected
        if entity:
            vat_id = self.vat(cc, tins[0][1] if tins else None) if random_() < 0.75 else None
            brn = self.brn(cc, tins[0][1] if tins else None) if random_() < 0.92 else None
        else:
            vat_id = self.vat(cc, None) if random_() < 0.04 else None

        city = rng.choice(country.cities) if not entity else city
        street = rng.choice(country.streets)
        building = str(rng.randint(1, 180)) + (rng.choice("abAB") if random_() < 0.08 else "")
        post_code = self.fill(country.post_code)
        sink.rows["sellers"].append(
            (
                sid,
                "entity" if entity else "individual",
                first,
                last,
                legal,
                birth_text,
                birth_city,
                birth_country,
                cc,
                street,
                building,
                post_code,
                city,
                cc,
                vat_id,
                brn,
                governmental,
                listed,
            )
        )
        sink.rows["seller_tins"].extend(tins)

        # financial accounts
        r = random_()
        n_accounts = 0 if r < 0.03 else 2 if r < 0.05 else 1
        for k in range(n_accounts):
            acc_cc = cc if k == 0 and random_() < 0.9 else "LT"
            r = random_()
            if r < 0.85:
                holder = holder_name
            elif r < 0.93:
                if entity:
                    word, suffix = rng.choice(_ENTITY_WORDS), rng.choice(_ENTITY_SUFFIX[primary])
                    holder = f"{word} {suffix} {rng.choice(country.forms)}"
                else:
                    other = rng.choice(_NAMES[name_key][0])
                    holder = f"{other} {last}" if random_() < 0.5 else f"{first} and {other} {last}"
            else:
                holder = None
            sink.rows["seller_financial_accounts"].append((sid, self.iban(acc_cc), holder))

        # permanent establishments in other member states
        if entity and random_() < 0.06:
            for pe in sorted(set(rng.sample([c for c in _EU if c != cc], rng.randint(1, 2)))):
                sink.rows["seller_permanent_establishments"].append((sid, pe))

        # money: currency, fees and taxes
        currency = country.currency
        second, second_pct = None, 0
        if random_() < 0.02:
            second = "EUR" if currency != "EUR" else rng.choice(("USD", "GBP", "PLN", "CHF"))
            second_pct = rng.randint(15, 50)
        fee_pm = rng.randint(50, 150)  # fee in per mille of the gross amount
        vat_pct = country.vat_rate if random_() < 0.2 else 0

        # transactions: (sec, activity, listing, currency, amount, fee, tax, rented_days)
        txns: list[tuple] = []
        refunds_ok = True
        for act in activities:
            if act == GOODS:
                only_goods = len(activities) == 1
                r = random_()
                if listed:
                    self.stream(
                        txns, GOODS, self.band("goods_listed"), 4000, currency, second, second_pct, fee_pm, vat_pct
                    )
                elif only_goods and r < 0.02 and not entity:
                    refunds_ok = False
                    self.edge_stream(txns, currency, fee_pm)
                elif not only_goods or r < (0.35 if entity else 0.76):
                    n = rng.choices(_OCCASIONAL, cum_weights=_OCCASIONAL_CW)[0]
                    price = rng.randrange(500, 6000)
                    self.stream(txns, GOODS, n, price, currency, second, second_pct, fee_pm, vat_pct)
                elif r < (0.75 if entity else 0.89):
                    price = rng.randrange(500, 8000)
                    self.stream(
                        txns, GOODS, self.band("goods_pro"), price, currency, second, second_pct, fee_pm, vat_pct
                    )
                else:  # few but valuable sales
                    price = rng.randrange(8000, 150000)
                    self.stream(txns, GOODS, rng.randrange(3, 30), price, currency, second, second_pct, fee_pm, vat_pct)
            elif act == SERVICES:
                price = rng.randrange(2000, 25000)
                self.stream(txns, SERVICES, self.band(SERVICES), price, currency, second, second_pct, fee_pm, vat_pct)
            elif act == TRANSPORT:
                price = rng.randrange(3000, 40000)
                self.stream(txns, TRANSPORT, self.band(TRANSPORT), price, currency, second, second_pct, fee_pm, vat_pct)
            else:
                self.listings(sink, txns, sid, cc, entity, governmental, currency, second, second_pct, fee_pm, vat_pct)

        txns.sort(key=itemgetter(0))
        out = sink.rows["transactions"]
        refunds = sink.rows["refunds"]
        text = self.text
        n = self.n_txn
        for sec, act, listing, cur, amount, fee, tax, days in txns:
            n += 1
            tid = f"T{n:010d}"
            out.append((tid, sid, act, listing, text(sec), cur, amount, fee, tax, days))
            if refunds_ok and random_() < _REFUND_P:
                self.refund(refunds, tid, sec, amount, fee, tax)
        self.n_txn = n
        sink.pending += len(txns) + 4

    def brn(self, cc: str, tin: str | None) -> str:
        """A business registration number in the country's usual shape."""
        patterns = {
            "DE": "HRB ######",
            "AT": "FN ######@",
            "PL": "0000######",
            "NL": "########",
            "IT": "@@-#######",
            "ES": "@-######",
            "GB": "########",
            "IE": "######",
            "CZ": "########",
            "SK": "########",
            "LU": "B######",
            "CY": "HE######",
            "MT": "C #####",
            "US": "########",
            "CH": "CH-###.#.###.###-#",
        }
        if cc in ("FR", "BE", "PT", "HR", "SI", "EE", "LT", "BG", "FI", "NO") and tin:
            return tin  # the same register number
        return self.fill(patterns.get(cc, "##########"))

    def stream(
        self,
        out: list,
        act: str,
        n: int,
        price: int,
        currency: str,
        second: str | None,
        second_pct: int,
        fee_pm: int,
        vat_pct: int,
    ) -> None:
        """n payments of one activity; price in EUR cents (per sale, per day of rental)."""
        rng = self.rng
        randrange, random_ = rng.randrange, rng.random
        days = rng.choices(self.paid_days, cum_weights=self.day_cw[act], k=n)
        hours = rng.choices(_HOURS, cum_weights=_HOURS_CW, k=n)
        edges = self.edges
        for d, h in zip(days, hours, strict=True):
            sec = d * 86400 + h * 3600 + randrange(3600)
            if random_() < _EDGE_P:
                lo, hi = edges[randrange(len(edges))]
                sec = randrange(lo, hi)
            cur = second if second and randrange(100) < second_pct else currency
            gross = price * randrange(60, 141) // 100 * _LEVEL[cur] // 10000 + 100
            fee = gross * fee_pm // 1000
            tax = fee * vat_pct // 100
            out.append((sec, act, None, cur, gross - fee - tax, fee, tax, None))

    def edge_stream(self, out: list, currency: str, fee_pm: int) -> None:
        """28-31 sales inside the year, totalling close to (or exactly) EUR 2,000 net."""
        rng = self.rng
        n = rng.randint(28, 31)
        r = rng.random()
        target = 200000 if r < 0.3 else 200001 if r < 0.45 else 199999 if r < 0.55 else rng.randrange(195000, 205001)
        target = target * _LEVEL[currency] // 10000
        cuts = sorted(rng.sample(range(1, target), n - 1))
        parts = [b - a for a, b in zip([0, *cuts], [*cuts, target], strict=True)]
        days = rng.choices(self.year_days, cum_weights=self.year_cw, k=n)
        for d, amount in zip(days, parts, strict=True):
            sec = d * 86400 + rng.randrange(6 * 3600, 20 * 3600)
            out.append((sec, GOODS, None, currency, amount, amount * fee_pm // 1000, 0, None))

    def listings(
        self,
        sink: _Sink,
        out: list,
        sid: str,
        cc: str,
        entity: bool,
        governmental: bool,
        currency: str,
        second: str | None,
        second_pct: int,
        fee_pm: int,
        vat_pct: int,
    ) -> None:
        """Property listings of a seller and their bookings."""
        rng = self.rng
        random_ = rng.random
        hotel = entity and not governmental and random_() < 0.04
        if hotel:
            n_listings = 1
        else:
            r = random_()
            n_listings = 1 if r < (0.5 if entity else 0.72) else rng.randint(2, 3) if r < 0.93 else rng.randint(4, 12)
        resident_eu = cc in EU_MEMBER_STATES
        for _ in range(n_listings):
            self.n_listing += 1
            lid = f"L{self.n_listing:07d}"
            r = random_()
            if resident_eu:
                where = cc if r < 0.78 else None if r < 0.96 else rng.choice(_LISTING_NON_EU)
            else:
                where = cc if r < 0.45 else None
            if where is None:
                where = rng.choices(_HOLIDAY_EU, cum_weights=_HOLIDAY_EU_CW)[0]
            place = _COUNTRIES[where]
            ptype = "DPI902" if hotel else rng.choices(_PROPERTY_TYPES, cum_weights=_PROPERTY_CW)[0]
            other = rng.choice(_OTHER_PROPERTY) if ptype == "DPI910" else None
            land = self.fill(_LAND_REGISTRY.get(where, "LR-########")) if random_() < 0.4 else None
            row = (
                lid,
                sid,
                rng.choice(place.streets),
                str(rng.randint(1, 240)),
                self.fill(place.post_code),
                rng.choice(place.cities),
                where,
                land,
                ptype,
            )
            sink.rows["property_listings"].append((*row, other) if self.other_type else row)

            n = rng.randint(1500, 3000) if hotel else self.band(PROPERTY)
            max_days = 4 if hotel else 14
            nightly = rng.randrange(6000, 20000) if hotel else rng.randrange(3500, 25000)
            randrange, rand = rng.randrange, rng.random
            edges = self.edges
            days = rng.choices(self.paid_days, cum_weights=self.day_cw[PROPERTY], k=n)
            hours = rng.choices(_HOURS, cum_weights=_HOURS_CW, k=n)
            for d, h in zip(days, hours, strict=True):
                sec = d * 86400 + h * 3600 + randrange(3600)
                if rand() < _EDGE_P:
                    lo, hi = edges[randrange(len(edges))]
                    sec = randrange(lo, hi)
                cur = second if second and randrange(100) < second_pct else currency
                nights = randrange(1, max_days + 1)
                gross = nightly * nights * randrange(85, 116) // 100 * _LEVEL[cur] // 10000 + 100
                fee = gross * fee_pm // 1000
                tax = fee * vat_pct // 100
                out.append((sec, PROPERTY, lid, cur, gross - fee - tax, fee, tax, nights))

    def refund(self, out: list, tid: str, sec: int, amount: int, fee: int, tax: int) -> None:
        """A full refund, a partial one, or two partial ones; never more than the payment."""
        rng = self.rng
        r = rng.random()
        if r < 0.45:
            parts = [(amount, fee, tax)]
        elif r < 0.9:
            k = rng.randint(5, 95)
            parts = [(amount * k // 100, fee * k // 100, tax * k // 100)]
        else:
            k1 = rng.randint(10, 60)
            k2 = rng.randint(10, 100 - k1)
            parts = [(amount * k // 100, fee * k // 100, tax * k // 100) for k in (k1, k2)]
        at = sec
        for a, f, t in parts:
            if a <= 0:
                continue
            if rng.random() < 0.15:
                at += rng.randrange(30 * 86400, 95 * 86400)
            else:
                at += rng.randrange(3600, 40 * 86400)
            at = min(at, self.max_sec)
            self.n_refund += 1
            out.append((f"R{self.n_refund:09d}", tid, self.text(at), a, f, t))

    def fx_rates(self) -> list[tuple[str, str, str]]:
        """Daily ECB-style rates (TARGET business days) as exact decimal text."""
        rng = random.Random(f"{self.seed}/fx")
        days = [self.base + dt.timedelta(days=i) for i in range((self.last - self.base).days + 1)]
        days = [d for d in days if not _target_closed(d)]
        rows = []
        for cur, (level, decimals, step) in _FX.items():
            v = level + rng.randint(-20, 20) * step
            for day in days:
                v += rng.randint(-step, step) + (level - v) // 25
                v = max(v, level // 2)
                whole, frac = divmod(v, 10**decimals)
                rows.append((cur, day.isoformat(), f"{whole}.{frac:0{decimals}d}"))
        return rows


# ----------------------------------------------------------------------------------------------
# Bad sellers, on purpose
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BadKind:
    """A defect that ``generate_demo(..., bad_share=...)`` puts into a seller's rows, and the
    quarantine rules that must catch it: the seller's quarantine reasons must include at least
    one of ``rules`` (a name ending in ``*`` stands for every rule that starts with it)."""

    defect: str
    rules: tuple[str, ...]

    def caught_by(self, rule: str) -> bool:
        """Whether quarantining a seller with ``rule`` catches this defect."""
        return any(rule == r or (r.endswith("*") and rule.startswith(r[:-1])) for r in self.rules)


#: The kinds of bad sellers, each with the rules that catch it: extract checks
#: (:mod:`reporting.checks.staged`), the rules stage (:mod:`reporting.rules`), the seller record
#: (:func:`reporting.stages.render.seller_record`) and the Great Expectations suites
#: (``gx.<expectation_type>.<column>``, :mod:`reporting.expectations`).
BAD_KINDS: dict[str, BadKind] = {
    "no_address": BadKind(
        "no primary address: street, building, post code, city and country all missing",
        ("seller.address_*", "gx.expect_column_values_to_not_be_null.address_country"),
    ),
    "name_missing": BadKind(
        "an individual without last name, or an entity without legal name",
        (
            "seller.name_missing",
            "gx.expect_column_values_to_not_be_null.last_name",
            "gx.expect_column_values_to_not_be_null.legal_name",
        ),
    ),
    "birth_date_out_of_range": BadKind(
        "an individual born before 1900 or decades in the future (EU rule 40130)",
        ("seller.birth_date_out_of_range", "gx.expect_column_values_to_be_between.birth_year"),
    ),
    "bad_residence_country": BadKind(
        "residence_country is not an ISO 3166 code ('UK' or 'EL', the usual mistakes)",
        ("seller.bad_residence_country", "gx.expect_column_values_to_be_in_set.residence_country"),
    ),
    "unknown_currency": BadKind(
        "a transaction in the currency 'XXQ', which ISO 4217 does not know",
        ("currency.unknown", "gx.expect_column_values_to_be_in_set.currency"),
    ),
    "negative_amount": BadKind(
        "a transaction with a negative amount or fee",
        (
            "transaction.negative_amount",
            "gx.expect_column_values_to_be_between.amount_minor",
            "gx.expect_column_values_to_be_between.fee_minor",
        ),
    ),
    "refund_exceeds_transaction": BadKind(
        "a refund larger than the transaction it refunds",
        (
            "refund.exceeds_transaction",
            "refund.total_exceeds_transaction",
            "gx.expect_column_pair_values_a_to_be_greater_than_b.*",
        ),
    ),
    "rented_days_out_of_range": BadKind(
        "a rental of more than 10,000 days: the listing's RentedDays exceed what a year (and the schema) allows",
        ("listing.rented_days_out_of_range",),
    ),
    "listing_missing": BadKind(
        "an immovable_property transaction without listing_id",
        ("transaction.listing_missing", "gx.expect_column_values_to_not_be_null.listing_id"),
    ),
}

_BAD_CURRENCY = "XXQ"
_BAD_RESIDENCE = ("UK", "EL")  # the United Kingdom is GB, Greece is GR (EL is its VAT prefix)
_BUSY_LISTING = 1000  # an entity's listing with more bookings may be excluded (more than 2,000 rentals)
_POSITION: dict[str, dict[str, int]] = {t: {c: i for i, c in enumerate(cols)} for t, cols in _COLUMNS.items()}


class _SellerRows:
    """The rows of the seller just generated (the tail of the sink's buffers), to read and change."""

    def __init__(self, sink: _Sink, start: dict[str, int], year: int) -> None:
        self.sink = sink
        self.row = start["sellers"]
        self.seller_id: str = self.get("sellers", self.row, "seller_id")
        self.entity = self.get("sellers", self.row, "seller_type") == "entity"
        refunded = {r[_POSITION["refunds"]["transaction_id"]] for r in sink.rows["refunds"][start["refunds"] :]}
        # payments well inside the year whatever the configured time zone, never refunded
        first, last = f"{year}-01-02", f"{year}-12-30"
        tx = _POSITION["transactions"]
        self.payments = [
            i
            for i in range(start["transactions"], len(sink.rows["transactions"]))
            if first <= sink.rows["transactions"][i][tx["paid_at"]] < last
            and sink.rows["transactions"][i][tx["transaction_id"]] not in refunded
        ]
        bookings: dict[str, int] = {}
        for t in sink.rows["transactions"][start["transactions"] :]:
            if t[tx["listing_id"]] is not None:
                bookings[t[tx["listing_id"]]] = bookings.get(t[tx["listing_id"]], 0) + 1
        self.busy = {lid for lid, n in bookings.items() if self.entity and n > _BUSY_LISTING}

    def get(self, table: str, i: int, column: str) -> Any:
        return self.sink.rows[table][i][_POSITION[table][column]]

    def set(self, table: str, i: int, **values: object) -> None:
        row = list(self.sink.rows[table][i])
        for column, value in values.items():
            row[_POSITION[table][column]] = value
        self.sink.rows[table][i] = tuple(row)

    def rentals(self) -> list[int]:
        """Payments for a property listing that no exclusion can take out of the report."""
        return [
            i
            for i in self.payments
            if self.get("transactions", i, "activity") == PROPERTY
            and self.get("transactions", i, "listing_id") not in self.busy
        ]

    def likely_reported(self) -> bool:
        """A sufficient sign that the rules will report this seller (whatever the time zone,
        the as-of date and the rates): resident in a member state, neither governmental nor
        listed, and a service, transport or property payment (outside an entity's busy listing)
        or at least 30 sales of goods, none of them ever refunded."""
        get = self.get
        if (
            get("sellers", self.row, "residence_country") not in EU_MEMBER_STATES
            or get("sellers", self.row, "is_governmental")
            or get("sellers", self.row, "is_listed")
        ):
            return False
        goods = 0
        for i in self.payments:
            if get("transactions", i, "activity") != GOODS:
                if get("transactions", i, "listing_id") not in self.busy:
                    return True
            else:
                goods += 1
        return goods >= 30


class _BadSellers:
    """Makes a share of the sellers bad on purpose, one defect each.

    It draws from a random stream of its own (``Random(f"{seed}/bad")``) and changes only the
    rows of the sellers it makes bad (and adds refunds with ids of its own), so every other
    seller's rows are exactly what they are without bad sellers. ``round(share * sellers)``
    seller numbers are drawn (at least one for a share above 0) and given the kinds of
    :data:`BAD_KINDS` in turn, shuffled. Only a seller that the rules would otherwise report
    (:meth:`_SellerRows.likely_reported`) and that fits the kind (a property rental for the
    listing kinds, an individual for the birth date) is made bad: a drawn seller that does not
    fit passes its kind on to the next seller that does.
    """

    def __init__(self, seed: int, year: int, sellers: int, share: float) -> None:
        self.rng = random.Random(f"{seed}/bad")
        self.year = year
        n = min(sellers, max(1, round(share * sellers))) if share > 0 else 0
        drawn = sorted(self.rng.sample(range(1, sellers + 1), n))
        kinds = [kind for kind, _ in zip(cycle(BAD_KINDS), range(n), strict=False)]
        self.rng.shuffle(kinds)
        self.due = dict(zip(drawn, kinds, strict=True))  # seller number -> kind
        self.waiting: list[str] = []  # kinds drawn for sellers that did not fit them
        self.made: dict[str, str] = {}  # seller_id -> kind: the ground truth
        self.n_refund = 0
        self.makers: dict[str, Callable[[_SellerRows], bool]] = {
            "no_address": self.no_address,
            "name_missing": self.name_missing,
            "birth_date_out_of_range": self.birth_date_out_of_range,
            "bad_residence_country": self.bad_residence_country,
            "unknown_currency": self.unknown_currency,
            "negative_amount": self.negative_amount,
            "refund_exceeds_transaction": self.refund_exceeds_transaction,
            "rented_days_out_of_range": self.rented_days_out_of_range,
            "listing_missing": self.listing_missing,
        }

    def after_seller(self, index: int, sink: _Sink, start: dict[str, int]) -> None:
        """Called once the rows of seller number ``index`` are in the sink (not yet flushed)."""
        kind = self.due.pop(index, None)
        if kind is not None:
            self.waiting.append(kind)
        if not self.waiting:
            return
        seller = _SellerRows(sink, start, self.year)
        if not seller.likely_reported():
            return
        for j, kind in enumerate(self.waiting):
            if self.makers[kind](seller):
                del self.waiting[j]
                self.made[seller.seller_id] = kind
                return

    # -- one maker per kind: False when the seller does not fit the kind ----------------------

    def no_address(self, s: _SellerRows) -> bool:
        address = ("address_street", "address_building", "address_post_code", "address_city", "address_country")
        s.set("sellers", s.row, **dict.fromkeys(address))
        return True

    def name_missing(self, s: _SellerRows) -> bool:
        s.set("sellers", s.row, **{"legal_name" if s.entity else "last_name": None})
        return True

    def birth_date_out_of_range(self, s: _SellerRows) -> bool:
        if s.entity:
            return False
        rng = self.rng
        year = rng.randint(1850, 1899) if rng.random() < 0.5 else self.year + rng.randint(30, 90)
        born = dt.date(year, rng.randint(1, 12), rng.randint(1, 28))
        s.set("sellers", s.row, birth_date=born.isoformat())
        return True

    def bad_residence_country(self, s: _SellerRows) -> bool:
        s.set("sellers", s.row, residence_country=self.rng.choice(_BAD_RESIDENCE))
        return True

    def unknown_currency(self, s: _SellerRows) -> bool:
        if not s.payments:
            return False
        s.set("transactions", self.rng.choice(s.payments), currency=_BAD_CURRENCY)
        return True

    def negative_amount(self, s: _SellerRows) -> bool:
        if not s.payments:
            return False
        i = self.rng.choice(s.payments)
        column = "amount_minor" if self.rng.random() < 0.5 else "fee_minor"
        s.set("transactions", i, **{column: -max(s.get("transactions", i, column), 1)})
        return True

    def refund_exceeds_transaction(self, s: _SellerRows) -> bool:
        if not s.payments:
            return False
        rng = self.rng
        t = s.sink.rows["transactions"][rng.choice(s.payments)]
        tx = _POSITION["transactions"]
        amount, fee, tax = t[tx["amount_minor"]], t[tx["fee_minor"]], t[tx["tax_minor"]]
        paid = dt.datetime.fromisoformat(t[tx["paid_at"]])
        at = paid + dt.timedelta(days=rng.randint(1, 20), seconds=rng.randrange(86400))
        self.n_refund += 1
        refund = (f"RX{self.n_refund:08d}", t[tx["transaction_id"]], f"{at:%Y-%m-%d %H:%M:%S}")
        s.sink.rows["refunds"].append((*refund, amount + rng.randint(1, max(1, amount // 2)), fee, tax))
        s.sink.pending += 1
        return True

    def rented_days_out_of_range(self, s: _SellerRows) -> bool:
        rentals = s.rentals()
        if not rentals:
            return False
        s.set("transactions", self.rng.choice(rentals), rented_days=10_000 + self.rng.randrange(1000))
        return True

    def listing_missing(self, s: _SellerRows) -> bool:
        rentals = s.rentals()
        if not rentals:
            return False
        s.set("transactions", self.rng.choice(rentals), listing_id=None)
        return True


# ----------------------------------------------------------------------------------------------
# Database side
# ----------------------------------------------------------------------------------------------


def _prepare_schema(engine: Engine, replace: bool) -> bool:
    """Create (or re-create) the contract tables; True when other_property_type exists."""
    insp = sa.inspect(engine)
    present = [t for t in CONTRACT if insp.has_table(t)]
    where = safe_url(engine.url)
    if present:
        with engine.connect() as conn:
            filled = [
                t
                for t in present
                if conn.execute(sa.select(sa.literal_column("1")).select_from(sa.table(t)).limit(1)).first()
            ]
        if replace:
            quote = engine.dialect.identifier_preparer.quote
            with engine.begin() as conn:
                for t in reversed(present):
                    conn.exec_driver_sql(f"DROP TABLE {quote(t)}")
        elif filled:
            raise SourceError(
                f"the source database {where} already holds rows in {', '.join(filled)}; "
                "refusing to add demo data to it (use replace=True to drop and re-create the "
                "source tables)"
            )
        elif len(present) < len(CONTRACT):
            raise SourceError(
                f"the source database {where} has only some of the source tables "
                f"({', '.join(present)}); use replace=True to drop and re-create them"
            )
        else:  # all contract tables exist and are empty: fill them as they are
            columns = check_contract(engine)
            return "other_property_type" in columns["property_listings"]
    create_schema(engine)
    return True


def _start_load(conn: Connection) -> None:
    """Session settings for a fast bulk load."""
    name = conn.dialect.name
    if name == "sqlite":
        # demo data: no rollback journal, no fsync (a crash leaves a file to regenerate)
        conn.exec_driver_sql("PRAGMA journal_mode=OFF")
        conn.exec_driver_sql("PRAGMA synchronous=OFF")
        conn.exec_driver_sql("PRAGMA temp_store=MEMORY")
        conn.exec_driver_sql("PRAGMA cache_size=-65536")
    elif name in ("mysql", "mariadb"):
        # TIMESTAMP columns are converted from the session time zone: load them as UTC
        conn.exec_driver_sql("SET time_zone = '+00:00'")
    elif name == "postgresql":
        conn.exec_driver_sql("SET TIME ZONE 'UTC'")
    conn.commit()


@dataclass(frozen=True, slots=True, eq=False)
class DemoResult(Mapping[str, int]):
    """What :func:`generate_demo` wrote: the rows per table (the result reads as that mapping,
    ``result["transactions"]``), and the sellers made bad on purpose, ``seller_id -> kind`` of
    :data:`BAD_KINDS` (the ground truth a run's quarantine must match; empty without
    ``bad_share``). Two results are equal when their row counts are."""

    counts: Mapping[str, int]
    bad_sellers: Mapping[str, str] = field(default_factory=dict)

    def __getitem__(self, table: str) -> int:
        return self.counts[table]

    def __iter__(self) -> Iterator[str]:
        return iter(self.counts)

    def __len__(self) -> int:
        return len(self.counts)


def generate_demo(
    url: str, *, sellers: int, seed: int, year: int, replace: bool = False, bad_share: float = 0.0
) -> DemoResult:
    """Fill the source-contract tables at ``url`` with a synthetic marketplace.

    Returns the number of rows written per table, and the sellers made bad on purpose (see
    :class:`DemoResult`). The same ``(sellers, seed, year, bad_share)`` gives the same rows on
    every database. Raises :class:`SourceError` when the tables already hold rows and
    ``replace`` is false; with ``replace=True`` the contract tables are dropped first.

    Shape: about 85% individuals and 15% entities (a few governmental or listed), resident in
    all 27 member states (weighted) and about 5% outside the EU (US, GB, CH, NO, UA); most sell
    goods below the de minimis (fewer than 30 sales, at most EUR 2,000), with a heavy-tailed set
    of professional sellers (up to some thousands of sales), about 5% renting out property
    (listings in and outside the EU, including hotel-like entities above 2,000 rentals), about
    5% personal services and about 3% transport rental, some mixed. Payments are in the
    residence currency (PLN, CZK, SEK, HUF, RON, DKK, USD, GBP, CHF, NOK or EUR), spread over the
    year with a few days before and after it and some late in the evening UTC on quarter ends;
    about 3% of payments are refunded (fully or partly, some after the year end). FX rates are
    daily ECB-style rates from 1 December of the previous year to 31 March of the next one.

    ``bad_share`` (0 to 1, e.g. 0.01) makes that share of the sellers bad on purpose, each with
    one defect of :data:`BAD_KINDS` that the pipeline must quarantine (see :class:`_BadSellers`
    for who is chosen). The bad sellers come from a random stream of their own: every other
    seller's rows are the same as without them, and ``bad_share=0`` writes exactly the data it
    always did.
    """
    if isinstance(sellers, bool) or not isinstance(sellers, int) or sellers < 0:
        raise ValueError(f"sellers must be a non-negative integer, not {sellers!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, not {seed!r}")
    if isinstance(year, bool) or not isinstance(year, int) or not 1971 <= year <= 2036:
        # TIMESTAMP columns on MariaDB/MySQL only hold 1970-2038
        raise ValueError(f"year must be between 1971 and 2036, not {year!r}")
    if isinstance(bad_share, bool) or not isinstance(bad_share, (int, float)) or not 0 <= bad_share <= 1:
        raise ValueError(f"bad_share must be a fraction between 0 and 1, not {bad_share!r}")

    engine = make_engine(url)
    try:
        other_type = _prepare_schema(engine, replace)
        columns = dict(_COLUMNS)
        if not other_type:
            columns["property_listings"] = CONTRACT["property_listings"]
        gen = _Generator(seed, year, other_type)
        bad = _BadSellers(seed, year, sellers, bad_share) if bad_share else None
        with engine.connect() as conn:
            _start_load(conn)
            sink = _Sink(conn, columns)
            sink.rows["fx_rates"].extend(gen.fx_rates())
            for start in range(1, sellers + 1, BATCH_SELLERS):
                for i in range(start, min(start + BATCH_SELLERS, sellers + 1)):
                    if bad is None:
                        gen.seller(i, sink)
                    else:
                        marks = {table: len(rows) for table, rows in sink.rows.items()}
                        gen.seller(i, sink)
                        bad.after_seller(i, sink, marks)
                    if sink.pending >= FLUSH_ROWS:
                        sink.flush()
                sink.flush()
                conn.commit()
            sink.flush()
            conn.commit()
        return DemoResult(dict(sink.counts), dict(bad.made) if bad else {})
    finally:
        engine.dispose()
