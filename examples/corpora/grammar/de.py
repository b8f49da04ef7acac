"""German demo grammar: a hand-written generative grammar by the neuron-pilot authors.

Small word lists (nouns with gender and plural, verbs with their written-out present forms,
participles and auxiliaries, adjectives, places with their locative and directional phrases,
times, names) and sentence templates with the rules German needs: nominative, accusative and
dative case, strong/weak/mixed adjective endings, verb-second main clauses (also after a fronted
time), verb-final subordinate clauses (weil, wenn, als, dass, relative clauses), Perfekt with
haben or sein, separable verbs, werden + infinitive, kein/nichts/niemand. Plain everyday topics:
family, market, school, weather, travel, food, work. Demo data, not natural corpus text.

Every function takes a ``random.Random`` and draws only from it, so output is deterministic.
"""

LANG = "de"
NAME = "Deutsch"
SCRIPT = "Latin"

XNLI_WORDS = {"right": "richtig", "yes": "Ja", "also": "Auch", "no": "Nein"}


def _cap(s):
    return s[0].upper() + s[1:]


# --------------------------------------------------------------------------------------------
# declension tables

DEF_ART = {
    "nom": {"m": "der", "f": "die", "n": "das", "pl": "die"},
    "acc": {"m": "den", "f": "die", "n": "das", "pl": "die"},
    "dat": {"m": "dem", "f": "der", "n": "dem", "pl": "den"},
}
# ending of ein / kein / mein / unser ... by case and gender
EIN_END = {
    "nom": {"m": "", "f": "e", "n": "", "pl": "e"},
    "acc": {"m": "en", "f": "e", "n": "", "pl": "e"},
    "dat": {"m": "em", "f": "er", "n": "em", "pl": "en"},
}
WEAK = {
    "nom": {"m": "e", "f": "e", "n": "e", "pl": "en"},
    "acc": {"m": "en", "f": "e", "n": "e", "pl": "en"},
    "dat": {"m": "en", "f": "en", "n": "en", "pl": "en"},
}
MIXED = {
    "nom": {"m": "er", "f": "e", "n": "es", "pl": "en"},
    "acc": {"m": "en", "f": "e", "n": "es", "pl": "en"},
    "dat": {"m": "en", "f": "en", "n": "en", "pl": "en"},
}
STRONG = {
    "nom": {"m": "er", "f": "e", "n": "es", "pl": "e"},
    "acc": {"m": "en", "f": "e", "n": "es", "pl": "e"},
    "dat": {"m": "em", "f": "er", "n": "em", "pl": "en"},
}

# adjectives whose stem changes before an ending
ADJ_STEM = {"teuer": "teur", "dunkel": "dunkl"}


def _adj(adj, table, case, gk):
    return ADJ_STEM.get(adj, adj) + table[case][gk]


# --------------------------------------------------------------------------------------------
# people

NAMES = (
    ("Anna", "f"), ("Lukas", "m"), ("Lena", "f"), ("Jonas", "m"), ("Marie", "f"), ("Felix", "m"),
    ("Sophie", "f"), ("Paul", "m"), ("Laura", "f"), ("Max", "m"), ("Julia", "f"), ("Tim", "m"),
    ("Hannah", "f"), ("Jan", "m"), ("Klara", "f"), ("Moritz", "m"),
)

# relatives: (singular, gender or "pl", oblique singular for weak nouns, dative plural)
RELATIVES = (
    ("Bruder", "m", None), ("Schwester", "f", None), ("Mutter", "f", None),
    ("Vater", "m", None), ("Großmutter", "f", None), ("Großvater", "m", None),
    ("Tante", "f", None), ("Onkel", "m", None), ("Cousin", "m", None), ("Freundin", "f", None),
    ("Nachbar", "m", "Nachbarn"), ("Kollege", "m", "Kollegen"), ("Sohn", "m", None),
    ("Tochter", "f", None), ("Freunde", "pl", "Freunden"), ("Großeltern", "pl", None),
    ("Eltern", "pl", None), ("Kollegen", "pl", None),
)

# subject noun phrases: (determiner kind, noun, gender or "pl", adjective)
SUBJECT_NPS = (
    ("mein", "Bruder", "m"), ("mein", "Schwester", "f"), ("mein", "Mutter", "f"),
    ("mein", "Vater", "m"), ("mein", "Großmutter", "f"), ("mein", "Großvater", "m"),
    ("mein", "Tante", "f"), ("mein", "Onkel", "m"), ("unser", "Nachbar", "m"),
    ("def", "Lehrerin", "f"), ("def", "Bäcker", "m"), ("mein", "Cousine", "f"),
    ("def", "alte Mann", "m"), ("def", "junge Frau", "f"),
    ("mein", "Eltern", "pl"), ("def", "Kinder", "pl"), ("unser", "Nachbarn", "pl"),
    ("mein", "Freunde", "pl"), ("def", "Schüler", "pl"), ("mein", "Großeltern", "pl"),
)

# person key -> (nominative, accusative, dative pronoun, possessive stem, verb index)
PRON = {
    "m": ("er", "ihn", "ihm", "sein", 1),
    "f": ("sie", "sie", "ihr", "ihr", 1),
    "n": ("es", "es", "ihm", "sein", 1),
    "pl": ("sie", "sie", "ihnen", "ihr", 2),
    "ich": ("ich", "mich", "mir", "mein", 0),
    "wir": ("wir", "uns", "uns", "unser", 2),
}


class Subj:
    """A subject: nominative text and person key (m, f, n, pl, ich, wir)."""

    def __init__(self, text, p):
        self.text, self.p = text, p

    @property
    def pron(self):
        return PRON[self.p][0]

    @property
    def idx(self):
        return PRON[self.p][4]

    @property
    def poss(self):
        return PRON[self.p][3]


def _subject(rng, pronouns=True):
    r = rng.random()
    if pronouns and r < 0.12:
        return Subj("ich", "ich") if rng.random() < 0.5 else Subj("wir", "wir")
    if r < 0.55:
        name, g = rng.choice(NAMES)
        return Subj(name, g)
    det, noun, g = rng.choice(SUBJECT_NPS)
    if det == "def":
        return Subj(DEF_ART["nom"][g] + " " + noun, g)
    return Subj(det + EIN_END["nom"][g] + " " + noun, g)


def _poss_np(stem, rel, case):
    noun, g, obl = rel
    if g == "pl":
        form = obl if (case == "dat" and obl) else noun
        if case == "dat" and not form.endswith(("n", "s")):
            form += "n"
    else:
        form = obl if (case != "nom" and obl) else noun
    return stem + EIN_END[case][g] + " " + form


def _relative(rng, subj, case, avoid=None):
    """A relative or friend of the subject, with the subject's possessive, in ``case``."""
    text = avoid or subj.text
    bad = set()
    if "Groß" in text or "alte" in text:
        bad = {"Großmutter", "Großvater", "Großeltern", "Eltern", "Mutter", "Vater"}
    elif "Kinder" in text or "Schüler" in text:
        bad = {"Sohn", "Tochter", "Kollege", "Kollegen"}
    while True:
        rel = rng.choice(RELATIVES)
        if rel[0] not in text and rel[0] not in bad:
            return _poss_np(subj.poss, rel, case), rel


# --------------------------------------------------------------------------------------------
# nouns: key -> (singular, plural or None for mass, gender, adjective class, tags)

NOUNS = {
    "apfel": ("Apfel", "Äpfel", "m", "fruit", "food fruit pick wash"),
    "birne": ("Birne", "Birnen", "f", "fruit", "food fruit pick wash"),
    "orange": ("Orange", "Orangen", "f", "fruit", "food fruit"),
    "zitrone": ("Zitrone", "Zitronen", "f", "fruit", "food fruit"),
    "banane": ("Banane", "Bananen", "f", "fruit", "food fruit"),
    "melone": ("Melone", "Melonen", "f", "fruit", "food fruit"),
    "tomate": ("Tomate", "Tomaten", "f", "veg", "food veg wash"),
    "kartoffel": ("Kartoffel", "Kartoffeln", "f", "veg", "food veg cook"),
    "karotte": ("Karotte", "Karotten", "f", "veg", "food veg cook wash"),
    "zwiebel": ("Zwiebel", "Zwiebeln", "f", "veg", "food veg"),
    "gurke": ("Gurke", "Gurken", "f", "veg", "food veg"),
    "ei": ("Ei", "Eier", "n", "egg", "food cook"),
    "kuchen": ("Kuchen", "Kuchen", "m", "bakery", "food bake"),
    "torte": ("Torte", "Torten", "f", "bakery", "food bake"),
    "keks": ("Keks", "Kekse", "m", "bakery", "food bake"),
    "brot": ("Brot", "Brote", "n", "bread", "food bake"),
    "pizza": ("Pizza", "Pizzas", "f", "bread", "food bake"),
    "broetchen": ("Brötchen", "Brötchen", "n", "bread", "food"),
    "fisch": ("Fisch", "Fische", "m", "fish", "food cook"),
    "suppe": ("Suppe", None, "f", "dish", "food cook order"),
    "reis": ("Reis", None, "m", "dish", "food cook"),
    "kaese": ("Käse", None, "m", "cheese", "food"),
    "tee": ("Tee", None, "m", "hotdrink", "drink order"),
    "kaffee": ("Kaffee", None, "m", "hotdrink", "drink order"),
    "milch": ("Milch", None, "f", "milk", "drink"),
    "saft": ("Orangensaft", None, "m", "juice", "drink order"),
    "wasser": ("Wasser", None, "n", "water", "drink"),
    "buch": ("Buch", "Bücher", "n", "doc", "thing read"),
    "zeitung": ("Zeitung", "Zeitungen", "f", "doc", "thing read"),
    "brief": ("Brief", "Briefe", "m", "doc", "read write open"),
    "geschichte": ("Geschichte", "Geschichten", "f", "art", "read write"),
    "liste": ("Einkaufsliste", "Einkaufslisten", "f", "doc", "write"),
    "karte": ("Landkarte", "Landkarten", "f", "map", "thing"),
    "tasche": ("Tasche", "Taschen", "f", "thing", "thing carry open lose pack"),
    "kiste": ("Kiste", "Kisten", "f", "thing", "thing carry open"),
    "koffer": ("Koffer", "Koffer", "m", "thing", "thing carry open pack"),
    "korb": ("Korb", "Körbe", "m", "thing", "thing carry"),
    "lampe": ("Lampe", "Lampen", "f", "thing", "thing fix"),
    "stuhl": ("Stuhl", "Stühle", "m", "thing", "thing fix paint carry"),
    "tisch": ("Tisch", "Tische", "m", "thing", "thing fix paint clean"),
    "uhr": ("Uhr", "Uhren", "f", "thing", "thing fix"),
    "tasse": ("Tasse", "Tassen", "f", "thing", "thing wash"),
    "teller": ("Teller", "Teller", "m", "thing", "thing wash"),
    "fahrrad": ("Fahrrad", "Fahrräder", "n", "thing", "thing fix clean"),
    "auto": ("Auto", "Autos", "n", "thing", "fix clean"),
    "schluessel": ("Schlüssel", "Schlüssel", "m", "small", "lose"),
    "fahrkarte": ("Fahrkarte", "Fahrkarten", "f", "small", "lose"),
    "schirm": ("Regenschirm", "Regenschirme", "m", "thing", "thing lose"),
    "geldbeutel": ("Geldbeutel", "Geldbeutel", "m", "thing", "thing lose"),
    "handy": ("Handy", "Handys", "n", "thing", "thing lose fix"),
    "radio": ("Radio", "Radios", "n", "thing", "thing fix"),
    "bild": ("Bild", "Bilder", "n", "picture", "picture draw"),
    "tuer": ("Tür", "Türen", "f", "fixed", "paint open"),
    "fenster": ("Fenster", "Fenster", "n", "fixed", "open clean"),
    "zaun": ("Zaun", "Zäune", "m", "fixed", "paint"),
    "ball": ("Ball", "Bälle", "m", "thing", "thing"),
    "drachen": ("Drachen", "Drachen", "m", "thing", "thing"),
    "gitarre": ("Gitarre", "Gitarren", "f", "thing", "thing"),
    "decke": ("Decke", "Decken", "f", "thing", "thing wash"),
    "blume": ("Blume", "Blumen", "f", "flower", "flower plant pick draw"),
    "baum": ("Baum", "Bäume", "m", "tree", "plant draw"),
    "haus": ("Haus", "Häuser", "n", "tree", "draw"),
    "mantel": ("Mantel", "Mäntel", "m", "clothes", "clothes"),
    "hut": ("Hut", "Hüte", "m", "hat", "clothes"),
    "hemd": ("Hemd", "Hemden", "n", "clothes", "clothes"),
    "kleid": ("Kleid", "Kleider", "n", "clothes", "clothes"),
    "schal": ("Schal", "Schals", "m", "clothes", "clothes"),
    "jacke": ("Jacke", "Jacken", "f", "clothes", "clothes"),
    "pullover": ("Pullover", "Pullover", "m", "clothes", "clothes"),
    "rock": ("Rock", "Röcke", "m", "clothes", "clothes"),
    "film": ("Film", "Filme", "m", "art", "watch"),
    "spiel": ("Fußballspiel", "Fußballspiele", "n", "match", "watch"),
    "lied": ("Lied", "Lieder", "n", "art", "sing"),
}

COLOURS = ("rot", "blau", "grün", "gelb", "schwarz", "weiß", "braun", "grau")

ADJ_CLASSES = {
    "fruit": ("frisch", "reif", "süß", "groß", "klein", "saftig"),
    "veg": ("frisch", "groß", "klein"),
    "egg": ("frisch", "groß", "klein", "braun", "weiß"),
    "bakery": ("frisch", "warm", "lecker", "groß", "klein", "süß"),
    "bread": ("frisch", "warm", "lecker", "groß", "klein"),
    "fish": ("frisch", "groß", "klein", "lecker"),
    "dish": ("heiß", "warm", "kalt", "lecker"),
    "cheese": ("frisch", "lecker", "weich", "hart"),
    "hotdrink": ("heiß", "kalt", "stark", "süß"),
    "milk": ("kalt", "frisch"),
    "juice": ("kalt", "frisch", "süß"),
    "water": ("kalt", "sauber"),
    "doc": ("lang", "kurz", "alt", "neu", "interessant"),
    "art": ("lang", "kurz", "neu", "alt", "schön", "interessant", "lustig"),
    "picture": ("groß", "klein", "schön", "alt", "neu", "lustig"),
    "thing": COLOURS + ("groß", "klein", "neu", "alt", "schwer", "leicht", "billig", "teuer",
                        "schön"),
    "small": ("klein", "neu", "alt"),
    "fixed": COLOURS + ("groß", "klein", "alt", "neu"),
    "clothes": COLOURS + ("neu", "alt", "warm", "billig", "teuer", "schön", "lang", "kurz"),
    "flower": ("rot", "gelb", "weiß", "blau", "schön"),
    "tree": ("groß", "klein", "jung", "alt", "schön"),
    "match": ("lang", "interessant", "spannend"),
    "map": ("groß", "klein", "alt", "neu"),
    "hat": COLOURS + ("neu", "alt", "warm", "billig", "teuer", "schön"),
}

ANTONYMS = {
    "groß": "klein", "klein": "groß", "neu": "alt", "billig": "teuer", "teuer": "billig",
    "heiß": "kalt", "kalt": "heiß", "lang": "kurz", "kurz": "lang", "schwer": "leicht",
    "leicht": "schwer", "weich": "hart", "hart": "weich", "sauber": "schmutzig",
    "voll": "leer", "leer": "voll", "ruhig": "laut", "laut": "ruhig", "glücklich": "traurig",
    "traurig": "glücklich", "jung": "alt", "warm": "kalt",
}


def _antonym(adj, cls):
    if adj == "alt":
        for a in ("neu", "jung"):
            if a in ADJ_CLASSES[cls]:
                return a
        return None
    a = ANTONYMS.get(adj)
    if a == "heiß" and "warm" in ADJ_CLASSES[cls] and "heiß" not in ADJ_CLASSES[cls]:
        a = "warm"
    return a if a in ADJ_CLASSES[cls] else None


NOT_GRADABLE = set(COLOURS) | {"neu", "reif", "leer", "voll"}

PERSON_ADJ = ("müde", "glücklich", "hungrig", "beschäftigt", "traurig", "krank", "wütend",
              "ruhig", "nervös", "stolz", "fröhlich")

NUMBERS = ("zwei", "drei", "vier", "einige", "ein paar")


def _tags(key):
    return NOUNS[key][4].split()


def _nouns_with(tags):
    want = tags.split()
    return [k for k in NOUNS if any(t in want for t in _tags(k))]


def _adj_for(rng, cls, avoid=()):
    opts = [a for a in ADJ_CLASSES[cls] if a not in avoid]
    return rng.choice(opts) if opts else None


def _noun_form(key, plural, case):
    sg, pl, _, _, _ = NOUNS[key]
    if not plural:
        return sg
    if case == "dat" and not pl.endswith(("n", "s")):
        return pl + "n"
    return pl


def _np(rng, key, det, case="acc", adj=None, poss="sein"):
    """Noun phrase for a thing. det: ein, num, def, poss, mass, kein, keinpl."""
    sg, pl, g, _, _ = NOUNS[key]
    if pl is None and det in ("ein", "num"):
        det = "mass"
    plural = det in ("num", "keinpl")
    gk = "pl" if plural else g
    noun = _noun_form(key, plural, case)
    if det == "def":
        a = (_adj(adj, WEAK, case, gk) + " ") if adj else ""
        return DEF_ART[case][gk] + " " + a + noun
    if det in ("ein", "poss", "kein", "keinpl"):
        stem = {"ein": "ein", "poss": poss, "kein": "kein", "keinpl": "kein"}[det]
        table = WEAK if plural else MIXED
        a = (_adj(adj, table, case, gk) + " ") if adj else ""
        return stem + EIN_END[case][gk] + " " + a + noun
    if det == "num":
        n = rng.choice(NUMBERS)
        a = (_adj(adj, STRONG, case, "pl") + " ") if adj else ""
        return n + " " + a + noun
    # mass: no article, strong adjective
    a = (_adj(adj, STRONG, case, g) + " ") if adj else ""
    return a + noun


# --------------------------------------------------------------------------------------------
# places: key -> (noun, gender, locative, direction, "from" phrase or None, adjectives)

PLACES = {
    "markt": ("Markt", "m", "auf dem Markt", "zum Markt", "vom Markt",
              ("groß", "klein", "laut", "voll", "ruhig")),
    "park": ("Park", "m", "im Park", "in den Park", None, ("ruhig", "schön", "groß", "leer")),
    "schule": ("Schule", "f", "in der Schule", "zur Schule", None,
               ("groß", "klein", "alt", "neu")),
    "bahnhof": ("Bahnhof", "m", "am Bahnhof", "zum Bahnhof", None,
                ("voll", "ruhig", "laut", "alt", "neu", "leer")),
    "baeckerei": ("Bäckerei", "f", "in der Bäckerei", "zur Bäckerei", "aus der Bäckerei",
                  ("klein", "voll", "warm")),
    "buero": ("Büro", "n", "im Büro", "ins Büro", None, ("ruhig", "laut", "klein", "groß")),
    "kueche": ("Küche", "f", "in der Küche", "in die Küche", None,
               ("warm", "sauber", "klein", "groß")),
    "garten": ("Garten", "m", "im Garten", "in den Garten", "aus dem Garten",
               ("schön", "ruhig", "klein", "groß")),
    "supermarkt": ("Supermarkt", "m", "im Supermarkt", "in den Supermarkt",
                   "aus dem Supermarkt", ("groß", "voll", "leer", "neu")),
    "bibliothek": ("Bibliothek", "f", "in der Bibliothek", "in die Bibliothek", None,
                   ("ruhig", "alt", "groß", "modern")),
    "kino": ("Kino", "n", "im Kino", "ins Kino", None, ("alt", "neu", "leer")),
    "krankenhaus": ("Krankenhaus", "n", "im Krankenhaus", "ins Krankenhaus", None,
                    ("groß", "neu", "alt", "modern")),
    "strand": ("Strand", "m", "am Strand", "an den Strand", None,
               ("schön", "ruhig", "leer", "voll")),
    "see": ("See", "m", "am See", "an den See", None, ("schön", "ruhig", "groß")),
    "restaurant": ("Restaurant", "n", "im Restaurant", "ins Restaurant", None,
                   ("voll", "ruhig", "teuer", "billig", "neu")),
    "cafe": ("Café", "n", "im Café", "ins Café", None, ("voll", "ruhig", "klein", "gemütlich")),
    "museum": ("Museum", "n", "im Museum", "ins Museum", None,
               ("groß", "alt", "ruhig", "interessant")),
    "post": ("Post", "f", "auf der Post", "zur Post", None, ("klein", "voll", "alt")),
    "laden": ("Laden", "m", "im Laden", "in den Laden", "aus dem Laden",
              ("klein", "neu", "teuer")),
    "bauernhof": ("Bauernhof", "m", "auf dem Bauernhof", "zum Bauernhof", "vom Bauernhof",
                  ("groß", "klein", "alt", "ruhig")),
    "bank": ("Bank", "f", "in der Bank", "zur Bank", None, ("groß", "neu", "ruhig")),
    "schwimmbad": ("Schwimmbad", "n", "im Schwimmbad", "ins Schwimmbad", None,
                   ("groß", "neu", "voll")),
    "uni": ("Universität", "f", "an der Universität", "zur Universität", None,
            ("groß", "alt", "modern")),
    "hause": (None, None, "zu Hause", "nach Hause", None, ()),
}

CITIES = ("Berlin", "Hamburg", "München", "Köln", "Frankfurt", "Stuttgart", "Dresden",
          "Leipzig", "Bremen", "Hannover", "Nürnberg", "Bonn")

# places one drives or rides to (trains only go to cities)
VEHICLE_PLACES = ("markt", "schule", "bahnhof", "bauernhof", "strand", "see", "krankenhaus",
                  "uni", "hause", "baeckerei", "post", "bank")

VEHICLES = (("mit dem Bus", "den Bus"), ("mit dem Zug", "den Zug"), ("mit dem Auto", "das Auto"),
            ("mit dem Fahrrad", "das Fahrrad"))


def _loc(place):
    return PLACES[place][2] if place in PLACES else place


def _place_np(key, case, det="def", adj=None):
    noun, g = PLACES[key][0], PLACES[key][1]
    if det == "def":
        a = (_adj(adj, WEAK, case, g) + " ") if adj else ""
        return DEF_ART[case][g] + " " + a + noun
    a = (_adj(adj, MIXED, case, g) + " ") if adj else ""
    return "ein" + EIN_END[case][g] + " " + a + noun


# --------------------------------------------------------------------------------------------
# verbs: dict with present forms (ich, er/sie, wir/sie), Partizip II, infinitive, auxiliary,
# a particle that goes to the end of a main clause (separable verbs), and Präteritum forms for
# the verbs whose past is told in the Präteritum (sein, haben, modals).


def _v(inf, ich, er, wir, part, aux="haben", particle="", sep="", praet=None):
    return {"inf": inf, "pres": (ich, er, wir), "part": part, "aux": aux,
            "particle": particle, "sep": sep, "praet": praet}


SEIN = _v("sein", "bin", "ist", "sind", "gewesen", "sein", praet=("war", "war", "waren"))
HABEN = _v("haben", "habe", "hat", "haben", "gehabt", praet=("hatte", "hatte", "hatten"))
WERDEN = ("werde", "wird", "werden")
AUX = {"haben": HABEN["pres"], "sein": SEIN["pres"]}


def _verb_parts(verb, subj, tense):
    """(finite verb, final part in a main clause, final part in a subordinate clause)."""
    i = subj.idx
    if tense == "present":
        fin = verb["pres"][i]
        if verb["particle"]:
            return fin, verb["particle"], verb["particle"] + verb["sep"] + fin
        return fin, "", fin
    if tense == "past" and verb["praet"]:
        fin = verb["praet"][i]
        return fin, "", fin
    if tense == "past":
        fin = AUX[verb["aux"]][i]
        return fin, verb["part"], verb["part"] + " " + fin
    fin = WERDEN[i]
    return fin, verb["inf"], verb["inf"] + " " + fin


def _clause(subj, verb, tense, middle, order="main", front=None):
    """Build a clause. order: main (S V ...), front (X V S ...), sub (S ... V)."""
    fin, final_main, final_sub = _verb_parts(verb, subj, tense)
    mid = [m for m in middle if m]
    if order == "sub":
        return " ".join([subj.text] + mid + [final_sub])
    tail = [final_main] if final_main else []
    if order == "front":
        return " ".join([front, fin, subj.text] + mid + tail)
    return " ".join([subj.text, fin] + mid + tail)


TRANSITIVE = (
    # verb, object tags, places, determiners
    (_v("kaufen", "kaufe", "kauft", "kaufen", "gekauft"), "food flower thing clothes",
     ("markt", "supermarkt", "laden", "bauernhof"), "ein num def"),
    (_v("verkaufen", "verkaufe", "verkauft", "verkaufen", "verkauft"),
     "fruit veg flower clothes bake", ("markt", "laden"), "ein num"),
    (_v("essen", "esse", "isst", "essen", "gegessen"), "fruit bake",
     ("kueche", "garten", "park", "cafe", "hause"), "ein num def"),
    (_v("backen", "backe", "backt", "backen", "gebacken"), "bake", ("kueche", "hause"),
     "ein num"),
    (_v("kochen", "koche", "kocht", "kochen", "gekocht"), "cook", ("kueche", "hause"),
     "ein num def mass"),
    (_v("lesen", "lese", "liest", "lesen", "gelesen"), "read",
     ("park", "bibliothek", "kueche", "garten", "cafe"), "ein def poss"),
    (_v("schreiben", "schreibe", "schreibt", "schreiben", "geschrieben"), "write",
     ("buero", "kueche", "bibliothek", "cafe", "hause"), "ein def"),
    (_v("waschen", "wasche", "wäscht", "waschen", "gewaschen"), "wash",
     ("kueche", "garten", "hause"), "def poss num"),
    (_v("tragen", "trage", "trägt", "tragen", "getragen"), "carry", ("bahnhof", "markt"),
     "ein def poss"),
    (_v("finden", "finde", "findet", "finden", "gefunden"), "lose thing",
     ("park", "garten", "kueche", "bahnhof", "buero"), "ein def poss"),
    (_v("verlieren", "verliere", "verliert", "verlieren", "verloren"), "lose",
     ("park", "bahnhof", "markt", "kino", "bibliothek"), "def poss"),
    (_v("öffnen", "öffne", "öffnet", "öffnen", "geöffnet"), "open",
     ("kueche", "buero", "hause"), "def poss"),
    (_v("streichen", "streiche", "streicht", "streichen", "gestrichen"), "paint",
     ("garten", "kueche", "hause"), "def ein"),
    (_v("reparieren", "repariere", "repariert", "reparieren", "repariert"), "fix",
     ("garten", "kueche", "buero", "hause"), "def poss"),
    (_v("trinken", "trinke", "trinkt", "trinken", "getrunken"), "drink",
     ("cafe", "kueche", "garten", "restaurant", "hause"), "mass"),
    (_v("bestellen", "bestelle", "bestellt", "bestellen", "bestellt"), "order",
     ("cafe", "restaurant"), "mass"),
    (_v("sehen", "sehe", "sieht", "sehen", "gesehen"), "watch", ("kino", "hause"), "ein def"),
    (_v("pflanzen", "pflanze", "pflanzt", "pflanzen", "gepflanzt"), "plant",
     ("garten", "park", "bauernhof"), "ein num"),
    (_v("pflücken", "pflücke", "pflückt", "pflücken", "gepflückt"), "pick",
     ("garten", "bauernhof"), "num"),
    (_v("zeichnen", "zeichne", "zeichnet", "zeichnen", "gezeichnet"), "draw",
     ("schule", "kueche", "park"), "ein"),
    (_v("malen", "male", "malt", "malen", "gemalt"), "picture", ("schule", "kueche", "garten"),
     "ein"),
    (_v("packen", "packe", "packt", "packen", "gepackt"), "pack", ("hause",), "def poss"),
    (_v("putzen", "putze", "putzt", "putzen", "geputzt"), "clean", ("garten", "hause"),
     "def poss"),
    (_v("singen", "singe", "singt", "singen", "gesungen"), "sing", ("schule", "kueche", "garten"),
     "ein def"),
    (_v("suchen", "suche", "sucht", "suchen", "gesucht"), "lose",
     ("kueche", "garten", "buero", "park"), "def poss"),
)

PAST_ONLY = ("verlieren", "finden", "suchen")

# verbs with a person as object: verb, case, preposition, places
PERSON_VERBS = (
    (_v("besuchen", "besuche", "besucht", "besuchen", "besucht"), "acc", "",
     ("krankenhaus", "bauernhof", None)),
    (_v("treffen", "treffe", "trifft", "treffen", "getroffen"), "acc", "",
     ("markt", "bahnhof", "cafe", "park", "bibliothek")),
    (_v("anrufen", "rufe", "ruft", "rufen", "angerufen", particle="an"), "acc", "", (None,)),
    (_v("helfen", "helfe", "hilft", "helfen", "geholfen"), "dat", "",
     ("kueche", "garten", "buero", "markt")),
    (_v("warten", "warte", "wartet", "warten", "gewartet"), "acc", "auf ",
     ("bahnhof", "cafe", "schule")),
)

INTRANSITIVE = (
    (_v("arbeiten", "arbeite", "arbeitet", "arbeiten", "gearbeitet"),
     ("buero", "schule", "krankenhaus", "baeckerei", "markt", "garten", "bibliothek", "bank",
      "bauernhof", "laden", "hause")),
    (_v("schlafen", "schlafe", "schläft", "schlafen", "geschlafen"), ("hause", "garten")),
    (_v("spielen", "spiele", "spielt", "spielen", "gespielt"),
     ("park", "garten", "kueche", "am Strand")),
    (_v("spazieren gehen", "gehe", "geht", "gehen", "spazieren gegangen", "sein",
        particle="spazieren", sep=" "), ("park", "am Strand", "am Fluss")),
    (_v("laufen", "laufe", "läuft", "laufen", "gelaufen", "sein"),
     ("park", "am Strand", "am Fluss")),
    (_v("schwimmen", "schwimme", "schwimmt", "schwimmen", "geschwommen", "sein"),
     ("im See", "schwimmbad", "im Fluss", "im Meer")),
    (_v("tanzen", "tanze", "tanzt", "tanzen", "getanzt"), ("kueche", "garten", "schule")),
    (_v("warten", "warte", "wartet", "warten", "gewartet"),
     ("bahnhof", "cafe", "post", "bank", "schule")),
    (_v("lernen", "lerne", "lernt", "lernen", "gelernt"),
     ("bibliothek", "schule", "uni", "hause")),
    (_v("zu Mittag essen", "esse", "isst", "essen", "zu Mittag gegessen",
        particle="zu Mittag", sep=" "), ("restaurant", "cafe", "kueche", "park")),
    (_v("frühstücken", "frühstücke", "frühstückt", "frühstücken", "gefrühstückt"),
     ("kueche", "cafe", "hause", "garten")),
    (_v("singen", "singe", "singt", "singen", "gesungen"), ("schule", "kueche", "garten")),
    (_v("lesen", "lese", "liest", "lesen", "gelesen"), ("bibliothek", "park", "garten", "hause")),
    (_v("einkaufen", "kaufe", "kauft", "kaufen", "eingekauft", particle="ein"),
     ("markt", "supermarkt", "laden")),
)

GEHEN = _v("gehen", "gehe", "geht", "gehen", "gegangen", "sein")
FAHREN = _v("fahren", "fahre", "fährt", "fahren", "gefahren", "sein")
KOMMEN = _v("kommen", "komme", "kommt", "kommen", "gekommen", "sein")
BLEIBEN = _v("bleiben", "bleibe", "bleibt", "bleiben", "geblieben", "sein")
NEHMEN = _v("nehmen", "nehme", "nimmt", "nehmen", "genommen")
AUSGEHEN = _v("ausgehen", "gehe", "geht", "gehen", "ausgegangen", "sein", particle="aus")
VERLASSEN = _v("verlassen", "verlasse", "verlässt", "verlassen", "verlassen")

GIVE_VERBS = (
    _v("geben", "gebe", "gibt", "geben", "gegeben"),
    _v("bringen", "bringe", "bringt", "bringen", "gebracht"),
    _v("schicken", "schicke", "schickt", "schicken", "geschickt"),
    _v("zeigen", "zeige", "zeigt", "zeigen", "gezeigt"),
    _v("leihen", "leihe", "leiht", "leihen", "geliehen"),
    _v("schenken", "schenke", "schenkt", "schenken", "geschenkt"),
)

# --------------------------------------------------------------------------------------------
# times

TIMES = {
    "past": ("gestern", "letzte Woche", "am Montag", "am Samstag", "heute Morgen",
             "gestern Abend", "vor zwei Tagen", "letzten Sommer", "am Sonntagnachmittag",
             "letztes Jahr", "vor einer Stunde"),
    "present": ("jeden Tag", "jeden Morgen", "samstags", "sonntags", "abends", "am Wochenende",
                "jede Woche", "nachmittags"),
    "future": ("morgen", "nächste Woche", "am Freitag", "morgen früh", "nächsten Sommer",
               "heute Abend", "am Sonntag", "nächsten Monat"),
}
DAY_TIMES = ("gestern", "am Montag", "am Samstag")


def _time(rng, tense):
    return rng.choice(TIMES[tense])


def _tense(rng, allow=("past", "present", "future")):
    return rng.choice(allow)


def _place_sells(place, key):
    tags = _tags(key)
    if place == "baeckerei":
        return "bake" in tags
    if place in ("markt", "supermarkt", "bauernhof"):
        return "food" in tags or "flower" in tags or (place == "markt" and "clothes" in tags)
    if place == "garten":
        return "fruit" in tags or "veg" in tags or "flower" in tags
    if place == "laden":
        return "thing" in tags or "clothes" in tags
    if place == "bibliothek":
        return "read" in tags
    return False


def _place_for(rng, entry, key):
    verb, _, places, _ = entry
    if verb["inf"] in ("kaufen", "verkaufen"):
        places = [p for p in places if _place_sells(p, key)] or ["markt"]
    if key in ("auto", "fahrrad") and "garten" in places:
        places = ["garten"]
    p = rng.choice(places)
    return PLACES[p][3] if verb["inf"] == "tragen" else _loc(p)


def _pick_object(rng, entry):
    key = rng.choice(_nouns_with(entry[1]))
    dets = entry[3].split()
    if NOUNS[key][1] is None:
        dets = [d for d in dets if d in ("def", "poss", "mass")] or ["mass"]
    else:
        dets = [d for d in dets if d != "mass"] or ["ein"]
    det = rng.choice(dets)
    if det == "poss" and "food" in _tags(key):
        det = "def"
    return key, det


def _order(rng, subj, verb, tense, middle, time, p_front=0.35):
    """Main clause with the time either fronted (verb second) or in the middle field."""
    if rng.random() < p_front:
        return _cap(_clause(subj, verb, tense, middle, "front", _cap(time))) + "."
    return _cap(_clause(subj, verb, tense, [time] + middle)) + "."


# --------------------------------------------------------------------------------------------
# sentence templates


def _t_transitive(rng):
    subj = _subject(rng)
    entry = rng.choice(TRANSITIVE)
    tense = "past" if entry[0]["inf"] in PAST_ONLY else _tense(rng)
    key, det = _pick_object(rng, entry)
    adj = _adj_for(rng, NOUNS[key][3]) if rng.random() < 0.6 else None
    obj = _np(rng, key, det, "acc", adj, poss=subj.poss)
    place = _place_for(rng, entry, key) if rng.random() < 0.7 else ""
    middle = [obj, place] if det in ("def", "poss") else [place, obj]
    return _order(rng, subj, entry[0], tense, middle, _time(rng, tense), 0.3)


def _t_intransitive(rng):
    subj = _subject(rng)
    verb, places = rng.choice(INTRANSITIVE)
    tense = _tense(rng)
    middle = [_loc(rng.choice(places))]
    if rng.random() < 0.3 and subj.p in ("m", "f", "pl") and verb["inf"] != "schlafen":
        middle.append("mit " + _relative(rng, subj, "dat")[0])
    return _order(rng, subj, verb, tense, middle, _time(rng, tense))


def _t_motion(rng):
    subj = _subject(rng)
    tense = _tense(rng)
    city = rng.random() < 0.35
    if city:
        dest = "nach " + rng.choice(CITIES)
    else:
        key = rng.choice([k for k in PLACES if k not in ("kueche", "garten")])
        dest = PLACES[key][3]
    r = rng.random()
    if city or (r < 0.55 and key in VEHICLE_PLACES):
        verb = FAHREN
        how = rng.choice([v for v in VEHICLES if city or v[1] != "den Zug"])[0]
    elif r < 0.75:
        verb, how = GEHEN, "zu Fuß"
    else:
        verb, how = (KOMMEN, "") if not dest.startswith("nach ") else (GEHEN, "")
    return _order(rng, subj, verb, tense, [how, dest], _time(rng, tense), 0.3)


def _t_thing_adj(rng):
    key = rng.choice(list(NOUNS))
    sg, pl, g, cls, _ = NOUNS[key]
    adj = _adj_for(rng, cls)
    plural = pl is not None and rng.random() < 0.4
    gk = "pl" if plural else g
    noun = pl if plural else sg
    if any(t in ("thing", "clothes") for t in _tags(key)) and rng.random() < 0.4:
        np = rng.choice(("mein", "unser")) + EIN_END["nom"][gk] + " " + noun
    else:
        np = DEF_ART["nom"][gk] + " " + noun
        from_places = [k for k in PLACES if PLACES[k][4] and _place_sells(k, key)]
        if from_places and rng.random() < 0.5:
            np += " " + PLACES[rng.choice(from_places)][4]
    subj = Subj(np, "pl" if plural else "n")
    tense = _tense(rng, ("present", "past"))
    very = "sehr" if adj not in NOT_GRADABLE and rng.random() < 0.5 else ""
    time = ""
    if rng.random() < 0.4 and adj in ("frisch", "warm", "heiß", "kalt", "lecker"):
        time = "heute" if tense == "present" else rng.choice(("gestern", "heute Morgen"))
    return _cap(_clause(subj, SEIN, tense, [time, very, adj])) + "."


def _t_person_adj(rng):
    subj = _subject(rng)
    tense = _tense(rng)
    adj = rng.choice(PERSON_ADJ)
    very = "sehr" if rng.random() < 0.5 else ""
    if tense == "present":
        time = rng.choice(("heute", "heute Morgen", "jetzt", "abends"))
    elif tense == "past":
        time = rng.choice(("gestern", "gestern Abend", "heute Morgen", "am Montag", "am Samstag"))
    else:
        time = rng.choice(("morgen", "heute Abend", "morgen früh"))
    reason = ""
    if tense != "present" and rng.random() < 0.35:
        reason = "nach " + rng.choice(("der Arbeit", "der Schule", "der langen Reise",
                                       "der Party", "dem Spiel", "dem Abendessen"))
        time = rng.choice(("gestern", "am Montag", "am Samstag") if tense == "past" else
                          ("morgen", "am Samstag"))
    return _order(rng, subj, SEIN, tense, [reason, very, adj], time, 0.3)


WEATHER_PAIRS = (("kalt", "windig"), ("warm", "sonnig"), ("kalt", "nass"), ("heiß", "trocken"),
                 ("grau", "neblig"), ("kühl", "bewölkt"), ("sonnig", "windig"))


WEATHER_TIMES = {
    "present": ("heute", "heute Morgen"),
    "past": ("gestern", "am Montag", "am Samstag", "letzte Woche", "gestern Abend",
             "heute Morgen"),
    "future": ("morgen", "am Freitag", "am Sonntag", "nächste Woche", "morgen früh"),
}
WHOLE_DAYS = ("gestern", "am Montag", "am Samstag", "morgen", "am Freitag", "am Sonntag")


def _t_weather(rng):
    tense = _tense(rng)
    city = rng.choice(CITIES)
    time = rng.choice(WEATHER_TIMES[tense])
    es = Subj("es", "n")
    if rng.random() < 0.5:
        a, b = rng.choice(WEATHER_PAIRS)
        middle = ["in " + city, a + " und " + b]
        return _order(rng, es, SEIN, tense, middle, time, 0.6)
    verb = rng.choice((_v("regnen", "regne", "regnet", "regnen", "geregnet"),
                       _v("schneien", "schneie", "schneit", "schneien", "geschneit")))
    extra = rng.choice(("", "den ganzen Tag", "viel")) if time in WHOLE_DAYS else ""
    return _order(rng, es, verb, tense, ["in " + city, extra], time, 0.6)


BECAUSE = (
    # (verb, middle-field complement, reasons)
    (BLEIBEN, "zu Hause", ("krank", "müde", "regen", "kalt", "arbeit")),
    (GEHEN, "früh ins Bett", ("müde", "krank", "früh")),
    (_v("mitnehmen", "nehme", "nimmt", "nehmen", "mitgenommen", particle="mit"),
     "einen Regenschirm", ("regen",)),
    (_v("anziehen", "ziehe", "zieht", "ziehen", "angezogen", particle="an"),
     "einen warmen Mantel", ("kalt",)),
    (_v("öffnen", "öffne", "öffnet", "öffnen", "geöffnet"), "das Fenster", ("heiß",)),
    (_v("essen", "esse", "isst", "essen", "gegessen"), "ein großes Brötchen", ("hunger",)),
    (GEHEN, "zur Bäckerei", ("hunger", "brot")),
    (_v("kaufen", "kaufe", "kauft", "kaufen", "gekauft"), "eine neue Lampe", ("kaputt",)),
    (NEHMEN, "den Bus", ("regen", "kalt", "zeit")),
    (_v("singen", "singe", "singt", "singen", "gesungen"), "in der Küche", ("froh",)),
    (_v("anrufen", "rufe", "ruft", "rufen", "angerufen", particle="an"), "den Arzt",
     ("krank",)),
    (GEHEN, "zu Fuß zum Markt", ("schön",)),
)


def _reason(kind, subj, tense):
    """The reason as a verb-final clause (without weil)."""
    pron = Subj(subj.pron, subj.p)
    es = Subj("es", "n")
    t = "present" if tense == "present" else "past"
    if kind in ("krank", "müde", "froh"):
        return _clause(pron, SEIN, t, [kind], "sub")
    if kind == "regen":
        return "es regnet" if t == "present" else "es regnete"
    if kind == "kalt":
        return _clause(es, SEIN, t, ["draußen sehr kalt"], "sub")
    if kind == "heiß":
        return _clause(es, SEIN, t, ["im Zimmer sehr heiß"], "sub")
    if kind == "schön":
        return _clause(Subj("das Wetter", "n"), SEIN, t, ["schön"], "sub")
    if kind == "arbeit":
        return _clause(pron, HABEN, t, ["viel Arbeit"], "sub")
    if kind == "zeit":
        return _clause(pron, HABEN, t, ["wenig Zeit"], "sub")
    if kind == "hunger":
        return _clause(pron, HABEN, t, ["Hunger"], "sub")
    if kind == "früh":
        muss = _v("müssen", "muss", "muss", "müssen", "gemusst",
                  praet=("musste", "musste", "mussten"))
        return _clause(pron, muss, t, ["früh aufstehen"], "sub")
    if kind == "brot":
        brauchen = _v("brauchen", "brauche", "braucht", "brauchen", "gebraucht",
                      praet=("brauchte", "brauchte", "brauchten"))
        return _clause(pron, brauchen, t, ["frisches Brot"], "sub")
    if kind == "kaputt":
        return _clause(Subj("die alte", "f"), SEIN, t, ["kaputt"], "sub")
    raise KeyError(kind)


def _t_because(rng):
    subj = _subject(rng)
    verb, comp, reasons = rng.choice(BECAUSE)
    tense = _tense(rng, ("present", "past"))
    kind = rng.choice(reasons)
    time = ""
    if rng.random() < 0.4:
        time = "heute" if tense == "present" else rng.choice(("gestern", "am Montag"))
    main = _clause(subj, verb, tense, [time, comp])
    return _cap("%s, weil %s." % (main, _reason(kind, subj, tense)))


MODALS = (
    _v("möchten", "möchte", "möchte", "möchten", ""),
    _v("wollen", "will", "will", "wollen", ""),
    _v("müssen", "muss", "muss", "müssen", ""),
    _v("können", "kann", "kann", "können", ""),
)


def _t_modal(rng):
    subj = _subject(rng)
    entry = rng.choice([e for e in TRANSITIVE if e[0]["inf"] not in
                        ("verlieren", "finden", "tragen", "öffnen", "suchen")])
    key, det = _pick_object(rng, entry)
    adj = _adj_for(rng, NOUNS[key][3]) if rng.random() < 0.5 else None
    obj = _np(rng, key, det, "acc", adj, poss=subj.poss)
    place = _place_for(rng, entry, key) if rng.random() < 0.6 else ""
    if rng.random() < 0.25:
        # "gern" + present tense
        time = _time(rng, "present") if rng.random() < 0.5 else ""
        middle = [time, "gern", place, obj] if det not in ("def", "poss") else \
            [time, "gern", obj, place]
        return _cap(_clause(subj, entry[0], "present", middle)) + "."
    modal = rng.choice(MODALS)
    time = _time(rng, "future") if modal["inf"] != "können" and rng.random() < 0.5 else ""
    middle = [time, place, obj] if det not in ("def", "poss") else [time, obj, place]
    fin = modal["pres"][subj.idx]
    return _cap(" ".join([subj.text, fin] + [m for m in middle if m] + [entry[0]["inf"]])) + "."


def _t_coordination(rng):
    tense = _tense(rng)
    s1 = _subject(rng, pronouns=False)
    s2 = _subject(rng, pronouns=False)
    if s1.text == s2.text:
        s2 = Subj("ich", "ich")
    e1 = rng.choice([e for e in TRANSITIVE if tense == "past" or e[0]["inf"] not in PAST_ONLY])
    k1, d1 = _pick_object(rng, e1)
    o1 = _np(rng, k1, d1, "acc", None, poss=s1.poss)
    v2, places = rng.choice([v for v in INTRANSITIVE if v[0]["inf"] != e1[0]["inf"]])
    place = _loc(rng.choice(places))
    time = _time(rng, tense)
    first = _clause(s1, e1[0], tense, [time, o1])
    if rng.random() < 0.5:
        second = _clause(s2, v2, tense, [place])
    else:
        fin, final_main, _ = _verb_parts(v2, s1, tense)
        if tense == "future":
            second = " ".join(["danach", place, final_main])
        else:
            second = " ".join([w for w in [fin, "danach", place, final_main] if w])
    return _cap("%s und %s." % (first, second))


def _t_there(rng):
    if rng.random() < 0.5:
        key = rng.choice([k for k in PLACES if PLACES[k][0] and k not in
                          ("hause", "schule", "kueche", "garten")])
        near = rng.choice([k for k in PLACES if PLACES[k][0] and k != key and k not in
                           ("kueche", "garten", "hause")])
        adj = rng.choice(PLACES[key][5])
        prep = rng.choice(("neben", "hinter", "gegenüber", "vor"))
        where = prep + " " + _place_np(near, "dat")
        verb = rng.choice(("gibt", "gab"))
        return "%s %s es %s." % (_cap(where), verb, _place_np(key, "acc", "ein", adj))
    key = rng.choice(("markt", "park", "bahnhof", "strand", "museum", "supermarkt", "cafe",
                      "bibliothek", "schwimmbad"))
    verb, time = rng.choice((("sind", "heute"), ("waren", "gestern"), ("sind", "am Wochenende"),
                             ("waren", "letzten Samstag")))
    q = rng.choice(("viele Leute", "sehr viele Menschen", "nur wenige Leute", "viele Kinder",
                    "viele Touristen"))
    return "%s %s %s %s." % (_cap(time), verb, q, _loc(key))


def _give_keys(lend=False):
    """Things one gives (food and flowers too, except when lending)."""
    want = ("thing", "clothes") if lend else ("thing", "flower", "clothes", "bake")
    return [k for k in NOUNS if NOUNS[k][1] and any(t in want for t in _tags(k))]


def _t_give(rng):
    subj = _subject(rng)
    verb = rng.choice(GIVE_VERBS)
    tense = _tense(rng)
    key = rng.choice(_give_keys(verb["inf"] == "leihen"))
    adj = _adj_for(rng, NOUNS[key][3]) if rng.random() < 0.5 else None
    obj = _np(rng, key, rng.choice(("ein", "num")), "acc", adj)
    who = _relative(rng, subj, "dat")[0]
    return _order(rng, subj, verb, tense, [who, obj], _time(rng, tense), 0.3)


def _t_person_obj(rng):
    subj = _subject(rng)
    verb, case, prep, places = rng.choice(PERSON_VERBS)
    tense = _tense(rng)
    who = prep + _relative(rng, subj, case)[0]
    place = rng.choice(places)
    middle = [_loc(place) if place else "", who]
    if not prep:
        middle = [who, _loc(place) if place else ""]
    return _order(rng, subj, verb, tense, middle, _time(rng, tense), 0.3)


RELATIVE_JOBS = (
    # head (nominative), relative pronoun, middle field, (present, Präteritum), gender
    ("der Mann", "der", "auf dem Markt Fisch", ("verkauft", "verkaufte"), "m"),
    ("die Frau", "die", "auf dem Markt Blumen", ("verkauft", "verkaufte"), "f"),
    ("das Mädchen", "das", "in der Bäckerei", ("arbeitet", "arbeitete"), "n"),
    ("der Junge", "der", "im Park Fußball", ("spielt", "spielte"), "m"),
    ("die Frau", "die", "in der Bibliothek", ("arbeitet", "arbeitete"), "f"),
    ("der Mann", "der", "den Schulbus", ("fährt", "fuhr"), "m"),
    ("die Ärztin", "die", "im Krankenhaus", ("arbeitet", "arbeitete"), "f"),
    ("der alte Mann", "der", "am Bahnhof Zeitungen", ("verkauft", "verkaufte"), "m"),
    ("die Lehrerin", "die", "in der Schule Musik", ("unterrichtet", "unterrichtete"), "f"),
    ("der Bauer", "der", "auf dem Markt Eier", ("verkauft", "verkaufte"), "m"),
)


def _t_relative(rng):
    head, rel, mid, forms, g = rng.choice(RELATIVE_JOBS)
    past = rng.random() < 0.5
    inner = "%s %s %s" % (rel, mid, forms[1] if past else forms[0])
    r = rng.random()
    if r < 0.4:
        adj = rng.choice(("sehr freundlich", "immer fröhlich", "sehr beschäftigt", "müde",
                          "sehr nett") + (() if head in ("das Mädchen", "der Junge") else
                                          ("ziemlich alt", "noch jung")))
        tail = ("war " if past else "ist ") + adj
    elif r < 0.7:
        tail = ("wohnte in " if past else "wohnt in ") + rng.choice(CITIES)
    else:
        who = _poss_np(rng.choice(("mein", "unser")), rng.choice(RELATIVES), "acc")
        tail = ("kannte " if past else "kennt ") + who
    return _cap("%s, %s, %s." % (head, inner, tail))


# (subordinate clause, main clause after it (verb first), main clause on its own or None)
WHEN_PAIRS = (
    ("wenn es regnet", "spielen die Kinder in der Küche", "die Kinder spielen in der Küche"),
    ("wenn es regnet", "bleiben wir zu Hause", "wir bleiben zu Hause"),
    ("wenn die Sonne scheint", "essen wir im Garten", "wir essen im Garten"),
    ("wenn es kalt ist", "kocht meine Mutter eine heiße Suppe",
     "meine Mutter kocht eine heiße Suppe"),
    ("wenn es schneit", "bauen die Kinder im Park einen Schneemann",
     "die Kinder bauen im Park einen Schneemann"),
    ("wenn das Wetter schön ist", "gehen meine Großeltern zu Fuß zum Markt",
     "meine Großeltern gehen zu Fuß zum Markt"),
    ("wenn mein Vater nach Hause kommt", "essen wir zusammen zu Abend",
     "wir essen zusammen zu Abend"),
    ("wenn der Bus Verspätung hat", "warten die Schüler am Bahnhof",
     "die Schüler warten am Bahnhof"),
    ("wenn die Bäckerei öffnet", "verkauft der Bäcker frisches Brot",
     "der Bäcker verkauft frisches Brot"),
    ("wenn die Schule aus ist", "laufen die Kinder in den Park",
     "die Kinder laufen in den Park"),
    ("wenn meine Schwester Hunger hat", "isst sie einen Apfel", None),
    ("wenn unser Nachbar im Urlaub ist", "gießen wir seine Blumen", None),
    ("wenn der Markt schließt", "fahren die Bauern nach Hause",
     "die Bauern fahren nach Hause"),
    ("wenn meine Freunde mich besuchen", "backe ich einen Kuchen", "ich backe einen Kuchen"),
)

WHEN_PAIRS_PAST = (
    ("als es zu regnen begann", "liefen die Kinder ins Haus", "die Kinder liefen ins Haus"),
    ("als wir am Bahnhof ankamen", "war der Zug schon da", "der Zug war schon da"),
    ("als mein Bruder nach Hause kam", "hatte er großen Hunger", None),
    ("als der Film zu Ende war", "gingen wir nach Hause", "wir gingen nach Hause"),
    ("als die Lehrerin die Tür öffnete", "waren die Schüler still", "die Schüler waren still"),
    ("als Anna den Kuchen sah", "lächelte sie", None),
    ("als die Sonne herauskam", "fuhren wir an den See", "wir fuhren an den See"),
    ("als meine Großmutter anrief", "war ich im Garten", "ich war im Garten"),
    ("als der Bäcker den Laden öffnete", "war das Brot noch warm", "das Brot war noch warm"),
    ("als wir am See ankamen", "war das Wasser sehr kalt", "das Wasser war sehr kalt"),
)


def _t_when(rng):
    if rng.random() < 0.55:
        sub, inv, plain = rng.choice(WHEN_PAIRS)
    else:
        sub, inv, plain = rng.choice(WHEN_PAIRS_PAST)
    if plain is None or rng.random() < 0.7:
        return _cap("%s, %s." % (sub, inv))
    return _cap("%s, %s." % (plain, sub))


SAGEN = _v("sagen", "sage", "sagt", "sagen", "gesagt")


def _t_say(rng):
    subj = _subject(rng, pronouns=False)
    tense = _tense(rng, ("present", "past"))
    key = rng.choice([k for k in NOUNS if "food" in _tags(k) or "thing" in _tags(k)])
    sg, pl, g, cls, _ = NOUNS[key]
    adj = _adj_for(rng, cls, avoid=COLOURS)
    plural = pl is not None and rng.random() < 0.4
    gk = "pl" if plural else g
    thing = Subj(DEF_ART["nom"][gk] + " " + (pl if plural else sg), "pl" if plural else "n")
    very = "sehr" if adj not in NOT_GRADABLE and rng.random() < 0.4 else ""
    inner = _clause(thing, SEIN, tense, [very, adj], "sub")
    return _cap("%s, dass %s." % (_clause(subj, SAGEN, tense, []), inner))


TEMPLATES = (
    (_t_transitive, 5), (_t_intransitive, 3), (_t_person_obj, 2), (_t_motion, 2),
    (_t_thing_adj, 2), (_t_person_adj, 1), (_t_weather, 1), (_t_because, 2), (_t_modal, 2),
    (_t_coordination, 1), (_t_there, 1), (_t_give, 2), (_t_relative, 1), (_t_when, 1),
    (_t_say, 1),
)
_WEIGHTED = [f for f, w in TEMPLATES for _ in range(w)]


def sentence(rng):
    """One grammatical declarative sentence of 6-16 words."""
    while True:
        s = _cap(rng.choice(_WEIGHTED)(rng))
        if 6 <= len(s.split()) <= 16:
            return s


# --------------------------------------------------------------------------------------------
# NLI

NLI_VERBS = ("kaufen", "essen", "backen", "kochen", "lesen", "schreiben", "waschen", "finden",
             "verlieren", "streichen", "reparieren", "pflanzen", "pflücken", "verkaufen")

JEMAND = Subj("jemand", "m")
NIEMAND = Subj("niemand", "m")


def _event(rng):
    entry = rng.choice([e for e in TRANSITIVE if e[0]["inf"] in NLI_VERBS])
    subj = _subject(rng, pronouns=False)
    key = rng.choice([k for k in _nouns_with(entry[1]) if NOUNS[k][1]])
    plural = rng.random() < 0.35
    return entry, entry[0], subj, key, plural


def _indef(rng, key, plural, adj, case="acc"):
    if plural:
        num = rng.choice(("zwei", "drei", "vier"))
        a = (_adj(adj, STRONG, case, "pl") + " ") if adj else ""
        return num + " " + a + _noun_form(key, True, case)
    return _np(rng, key, "ein", case, adj)


def _nli_event(rng, label):
    entry, verb, subj, key, plural = _event(rng)
    sg, pl, g, cls, _ = NOUNS[key]
    adj = _adj_for(rng, cls)
    obj = _indef(rng, key, plural, adj)
    num = obj.split()[0]
    bare = (num + " " + pl) if plural else _np(rng, key, "ein", "acc")
    kein = _np(rng, key, "keinpl" if plural else "kein", "acc")
    place = _place_for(rng, entry, key)
    if place == "zu Hause":
        place = "in der Küche"
    time = _time(rng, "past")
    premise = _cap(_clause(subj, verb, "past", [time, place, obj])) + "."
    gk = "pl" if plural else g
    thing = Subj(DEF_ART["nom"][gk] + " " + (pl if plural else sg), "pl" if plural else "n")
    if label == 0:
        opts = [_clause(subj, verb, "past", [bare]),
                _clause(JEMAND, verb, "past", [place, obj]),
                _clause(subj, SEIN, "past", [time, place]),
                _clause(subj, verb, "past", [time, "etwas"])]
    elif label == 2:
        opts = [_clause(subj, verb, "past", [time, "nichts"]),
                _clause(subj, verb, "past", [place, kein]),
                _clause(NIEMAND, verb, "past", [time, place, "etwas"])]
        ant = _antonym(adj, cls)
        if ant:
            opts.append(_clause(thing, SEIN, "past", [ant]))
    else:
        other = _relative(rng, subj, "dat")[0]
        ant = _antonym(adj, cls)
        avoid = {adj, ant} | (set(COLOURS) if adj in COLOURS else set())
        neutral_adj = _adj_for(rng, cls, avoid=avoid)
        opts = [_clause(subj, SEIN, "past", ["mit " + other, place]),
                _clause(subj, SEIN, "past", [time, "sehr glücklich"])]
        if verb["inf"] in ("kaufen", "backen", "kochen", "pflücken", "streichen", "reparieren",
                           "waschen", "finden"):
            acc = _relative(rng, subj, "acc")[0]
            obj_def = _np(rng, key, "def", "acc") if not plural else "die " + pl
            opts.append(_clause(subj, verb, "past", [obj_def, "für " + acc]))
        if neutral_adj:
            opts.append(_clause(thing, SEIN, "past", [neutral_adj]))
    return premise, _cap(rng.choice(opts)) + "."


def _nli_motion(rng, label):
    subj = _subject(rng, pronouns=False)
    if rng.random() < 0.4:
        city = rng.choice(CITIES)
        dest, there = "nach " + city, "in " + city
    else:
        key = rng.choice(("markt", "bahnhof", "bibliothek", "museum", "strand", "krankenhaus",
                          "kino", "bank", "post", "bauernhof", "see", "uni"))
        dest, there = PLACES[key][3], PLACES[key][2]
    how, vehicle = rng.choice([v for v in VEHICLES if dest[5:] in CITIES or
                               v[1] != "den Zug"])
    time = _time(rng, "past")
    premise = _cap(_clause(subj, FAHREN, "past", [time, how, dest])) + "."
    if label == 0:
        opts = [_clause(subj, FAHREN, "past", [dest]),
                _clause(subj, SEIN, "past", [time, there]),
                _clause(subj, VERLASSEN, "past", [time, "das Haus"])]
        if vehicle in ("den Bus", "den Zug"):
            opts.append(_clause(subj, NEHMEN, "past", [time, vehicle]))
    elif label == 2:
        opts = [_clause(subj, FAHREN, "past", [time, "nicht", dest]),
                _clause(subj, VERLASSEN, "past", [time, "das Haus nicht"])]
        if time in DAY_TIMES:
            opts.append(_clause(subj, BLEIBEN, "past", [time, "den ganzen Tag zu Hause"]))
    else:
        other = _relative(rng, subj, "acc")[0]
        opts = [_clause(subj, FAHREN, "past", [dest]) + ", um " + other + " zu besuchen",
                _clause(subj, KOMMEN, "past", [time, "zu spät zur Arbeit"]),
                _clause(subj, SEIN, "past", [time, "sehr müde"])]
        if vehicle in ("den Bus", "den Zug"):
            opts.append(("Der Bus" if vehicle == "den Bus" else "Der Zug") + " war sehr voll")
        if vehicle == "das Auto":
            opts.append("Das Auto war neu")
    return premise, _cap(rng.choice(opts)) + "."


STATE_WHERE = {
    "fruit": ("im Korb", "in der Küche"), "veg": ("im Korb",), "bakery": ("in der Küche",),
    "bread": ("in der Küche",), "dish": ("in der Küche",), "hotdrink": ("in der Tasse",),
    "hat": ("im Schaufenster",), "clothes": ("im Schaufenster",), "egg": ("im Korb",),
}


def _nli_state(rng, label):
    keys = [k for k in NOUNS if any(_antonym(a, NOUNS[k][3]) for a in ADJ_CLASSES[NOUNS[k][3]])]
    key = rng.choice(keys)
    sg, pl, g, cls, _ = NOUNS[key]
    adj = rng.choice([a for a in ADJ_CLASSES[cls] if _antonym(a, cls)])
    ant = _antonym(adj, cls)
    plural = pl is not None and rng.random() < 0.35
    gk = "pl" if plural else g
    thing = Subj(DEF_ART["nom"][gk] + " " + (pl if plural else sg), "pl" if plural else "n")
    tense = _tense(rng, ("present", "past"))
    very = "sehr" if adj not in NOT_GRADABLE else ""
    where = ""
    if cls in STATE_WHERE and rng.random() < 0.6:
        where = rng.choice(STATE_WHERE[cls])
    premise = _cap(_clause(Subj(thing.text + (" " + where if where else ""), thing.p), SEIN,
                           tense, [very, adj])) + "."
    if label == 0:
        opts = [_clause(thing, SEIN, tense, [adj]), _clause(thing, SEIN, tense, ["nicht", ant])]
        opts = [o for o in opts if _cap(o) + "." != premise] or opts
    elif label == 2:
        opts = [_clause(thing, SEIN, tense, ["nicht", adj]), _clause(thing, SEIN, tense, [ant])]
    else:
        opts = []
        avoid = {adj, ant} | (set(COLOURS) if adj in COLOURS else set())
        other = _adj_for(rng, cls, avoid=avoid)
        if other:
            opts.append(_clause(thing, SEIN, tense, [other]))
        owner = _subject(rng, pronouns=False)
        tags = _tags(key)
        obj = DEF_ART["acc"][gk] + " " + (pl if plural else sg)
        if "food" in tags or "thing" in tags or "clothes" in tags:
            shop = _loc(rng.choice(("markt", "laden", "supermarkt")))
            opts.append(_clause(owner, TRANSITIVE[0][0], "past", [obj, shop]))
        moegen = _v("mögen", "mag", "mag", "mögen", "gemocht")
        opts.append(_clause(owner, moegen, "present", [obj]))
    return premise, _cap(rng.choice(opts)) + "."


def _nli_because(rng, label):
    subj = _subject(rng, pronouns=False)
    kind = rng.choice(("krank", "müde", "regen", "arbeit"))
    time = rng.choice(("gestern", "am Montag", "am Samstag", "letzten Sonntag"))
    premise = _cap("%s, weil %s." % (_clause(subj, BLEIBEN, "past", [time, "zu Hause"]),
                                     _reason(kind, subj, "past")))
    if label == 0:
        opts = [_clause(subj, BLEIBEN, "past", [time, "zu Hause"]),
                _clause(subj, AUSGEHEN, "past", [time, "nicht"])]
        if kind in ("krank", "müde"):
            opts.append(_clause(subj, SEIN, "past", [time, kind]))
        elif kind == "regen":
            opts.append(_clause(Subj("es", "n"), _v("regnen", "regne", "regnet", "regnen",
                                                    "geregnet"), "past", [time]))
        else:
            opts.append(_clause(subj, HABEN, "past", [time, "viel Arbeit"]))
    elif label == 2:
        opts = [_clause(subj, SEIN, "past", [time, "den ganzen Tag unterwegs"]),
                _clause(subj, SEIN, "past", [time, "gar nicht zu Hause"])]
        if kind in ("krank", "müde"):
            opts.append(_clause(subj, SEIN, "past", [time, "nicht", kind]))
        elif kind == "regen":
            opts.append(_clause(Subj("es", "n"), _v("regnen", "regne", "regnet", "regnen",
                                                    "geregnet"), "past", [time, "nicht"]))
        else:
            opts.append(_clause(subj, HABEN, "past", [time, "keine Arbeit"]))
    else:
        other = _relative(rng, subj, "acc")[0]
        opts = [_clause(subj, TRANSITIVE[16][0], "past", [time, "einen Film"]),
                _clause(subj, PERSON_VERBS[2][0], "past", [time, other]),
                _clause(subj, TRANSITIVE[4][0], "past", [time, "eine Suppe zum Abendessen"]),
                _clause(subj, TRANSITIVE[5][0], "past", [time, "in der Küche ein Buch"])]
    return premise, _cap(rng.choice(opts)) + "."


_NLI_FRAMES = (_nli_event, _nli_event, _nli_motion, _nli_state, _nli_because)


def nli(rng):
    """(premise, hypothesis, label): 0 entailment, 1 neutral, 2 contradiction."""
    label = rng.randrange(3)
    premise, hyp = rng.choice(_NLI_FRAMES)(rng, label)
    return premise, hyp, label


# --------------------------------------------------------------------------------------------
# QA

WER = Subj("wer", "m")


def _qa_event(rng):
    entry, verb, subj, key, plural = _event(rng)
    sg, pl, g, cls, _ = NOUNS[key]
    adj = _adj_for(rng, cls) if rng.random() < 0.6 else None
    obj = _indef(rng, key, plural, adj)
    gk = "pl" if plural else g
    obj_def = DEF_ART["acc"][gk] + " " + (pl if plural else sg)
    place = _place_for(rng, entry, key)
    time = _time(rng, "past")
    context = [_cap(_clause(subj, verb, "past", [time, place, obj])) + "."]
    other = _subject(rng, pronouns=False)
    while other.text == subj.text:
        other = _subject(rng, pronouns=False)
    v2, places = rng.choice(INTRANSITIVE)
    context.append(_cap(_clause(other, v2, "past", [_loc(rng.choice(places))])) + ".")
    if rng.random() < 0.5:
        context.reverse()
    q = rng.randrange(4)
    if q == 0:
        question, answer = _clause(WER, verb, "past", [obj_def, place]), subj.text
    elif q == 1:
        question, answer = _clause(subj, verb, "past", [place], "front", "was"), obj
    elif q == 2:
        question, answer = _clause(subj, verb, "past", [obj_def], "front", "wo"), place
    else:
        question, answer = _clause(subj, verb, "past", [obj_def], "front", "wann"), time
    return " ".join(context), _cap(question) + "?", answer


WORKPLACES = ("krankenhaus", "baeckerei", "bibliothek", "bank", "post", "schule", "markt",
              "museum", "buero", "bauernhof", "laden", "uni", "supermarkt")


def _qa_home(rng):
    name, g = rng.choice(NAMES)
    subj = Subj(name, g)
    city = rng.choice(CITIES)
    work = _loc(rng.choice(WORKPLACES))
    rel = rng.choice([r for r in RELATIVES if r[1] != "pl"])
    name2 = rng.choice([n for n, ng in NAMES if n != name and ng == rel[1]])
    city2 = rng.choice([c for c in CITIES if c != city])
    context = "%s wohnt in %s. %s arbeitet %s. %s %s wohnt in %s." % (
        name, city, _cap(subj.pron), work, _cap(_poss_np(subj.poss, rel, "nom")), name2, city2)
    q = rng.randrange(4)
    if q == 0:
        return context, "Wo wohnt %s?" % name, city
    if q == 1:
        return context, "Wo arbeitet %s?" % name, work
    if q == 2:
        return context, "Wer wohnt in %s?" % city2, name2
    return context, "Wo wohnt %s?" % name2, city2


def _qa_give(rng):
    name, g = rng.choice(NAMES)
    subj = Subj(name, g)
    verb = rng.choice(GIVE_VERBS)
    key = rng.choice(_give_keys(verb["inf"] == "leihen"))
    sg, pl, ng, cls, _ = NOUNS[key]
    adj = _adj_for(rng, cls) if rng.random() < 0.5 else None
    obj = _np(rng, key, "ein", "acc", adj)
    who, rel = _relative(rng, subj, "dat")
    time = _time(rng, "past")
    context = _clause(subj, verb, "past", [time, who, obj]) + "."
    if rng.random() < 0.5:
        nom = _poss_np(subj.poss, rel, "nom")
        context += " " + _cap(_clause(Subj(nom, "pl" if rel[1] == "pl" else "n"), SEIN, "past",
                                      ["sehr glücklich"])) + "."
    obj_def = DEF_ART["acc"][ng] + " " + sg
    q = rng.randrange(3)
    if q == 0:
        return context, _cap(_clause(subj, verb, "past", [who], "front", "was")) + "?", obj
    if q == 1:
        return context, _cap(_clause(subj, verb, "past", [obj_def], "front", "wem")) + "?", who
    return context, _cap(_clause(subj, verb, "past", [who, obj_def], "front", "wann")) + "?", \
        time


def _qa_trip(rng):
    a, ag = rng.choice(NAMES)
    b, bg = rng.choice([n for n in NAMES if n[0] != a])
    pair = Subj("%s und %s" % (a, b), "pl")
    city = rng.choice(CITIES)
    how = rng.choice(VEHICLES[:3])[0]
    time = rng.choice([t for t in TIMES["past"] if "Stunde" not in t])
    act = rng.choice(((_v("sehen", "sehe", "sieht", "sehen", "gesehen"), "alte Bilder",
                       "museum"),
                      (_v("kaufen", "kaufe", "kauft", "kaufen", "gekauft"), "eine kleine Landkarte",
                       "museum"),
                      (_v("kaufen", "kaufe", "kauft", "kaufen", "gekauft"), "frischen Käse",
                       "markt"),
                      (_v("essen", "esse", "isst", "essen", "gegessen"), "frischen Fisch",
                       "restaurant"),
                      (_v("finden", "finde", "findet", "finden", "gefunden"), "schöne Muscheln",
                       "strand"),
                      (_v("sehen", "sehe", "sieht", "sehen", "gesehen"), "viele Enten", "see"),
                      (_v("treffen", "treffe", "trifft", "treffen", "getroffen"), "alte Freunde",
                       "park")))
    place = _loc(act[2])
    they = Subj("sie", "pl")
    context = "%s. %s." % (_cap(_clause(pair, FAHREN, "past", [time, how, "nach " + city])),
                           _clause(they, act[0], "past", [place, act[1]], "front", "Dort"))
    q = rng.randrange(4)
    if q == 0:
        return context, _cap(_clause(pair, FAHREN, "past", [], "front", "wohin")) + "?", city
    if q == 1:
        return context, _cap(_clause(pair, FAHREN, "past", ["nach " + city], "front",
                                     "wie")) + "?", how
    if q == 2:
        return context, _cap(_clause(pair, FAHREN, "past", ["nach " + city], "front",
                                     "wann")) + "?", time
    what = "wen" if act[0]["inf"] == "treffen" else "was"
    return context, _cap(_clause(they, act[0], "past", [place], "front", what)) + "?", act[1]


_QA = (_qa_event, _qa_event, _qa_home, _qa_give, _qa_trip)


def qa(rng):
    """(context, question, answer) with the answer a 1-3 word span of the context."""
    while True:
        context, question, answer = rng.choice(_QA)(rng)
        if answer in context and 1 <= len(answer.split()) <= 3:
            return context, question, answer


# --------------------------------------------------------------------------------------------

PROMPTS = [
    "Gestern ist mein Bruder",
    "Die Kinder im Park",
    "Meine Großmutter backt jeden Sonntag",
    "Auf dem Markt haben wir",
    "Heute Morgen war das Wetter",
    "Die Lehrerin sagt den Schülern",
    "Am Sonntag fährt meine Familie",
    "Der Bäcker hat seinen Laden",
    "Unser Nachbar hat einen",
    "Wenn es regnet, bleiben wir",
    "Der Zug nach Berlin war",
    "Nach der Schule spielen die",
    "Mein Vater arbeitet im",
    "In der Küche steht ein",
    "Anna konnte ihren Schlüssel nicht",
    "Jeden Morgen trinkt meine Mutter",
    "Der alte Mann am Bahnhof",
    "Letzten Sommer sind wir nach",
    "Tim hat ein neues Fahrrad",
    "Die Suppe in der Küche",
    "Meine Schwester möchte morgen",
    "Der Laden neben der Bank",
    "Wir sind zu Hause geblieben,",
    "Morgen werden meine Freunde",
]
