"""French demo grammar: a hand-written generative grammar by the neuron-pilot authors.

Small word lists (nouns with gender and plural, verbs with their written-out present forms,
participles and auxiliaries, adjectives with their four forms and their position, places, times,
names) and sentence templates with the rules French needs: gender and number agreement,
elision (l', d', j', n', qu'), the contractions au/aux/du/des, pre-nominal bel/nouvel/vieil,
passé composé with avoir or être (and participle agreement with être), imparfait for past
states, futur proche, ne ... pas / ne ... rien. Plain everyday topics: family, market, school,
weather, travel, food, work. Demo data, not natural corpus text.

Every function takes a ``random.Random`` and draws only from it, so output is deterministic.
"""

LANG = "fr"
NAME = "Français"
SCRIPT = "Latin"

XNLI_WORDS = {"right": "correct", "yes": "Oui", "also": "Aussi", "no": "Non"}

# --------------------------------------------------------------------------------------------
# spelling helpers

_VOWELS = "aeiouéèêëàâîïôûœh"
_ELIDING = {"le": "l'", "la": "l'", "de": "d'", "que": "qu'", "ne": "n'", "je": "j'",
            "parce que": "parce qu'", "qu'est-ce que": "qu'est-ce qu'",
            "où est-ce que": "où est-ce qu'", "quand est-ce que": "quand est-ce qu'",
            "à qui est-ce que": "à qui est-ce qu'", "comment est-ce que": "comment est-ce qu'"}


def _starts_vowel(word):
    return word[:1].lower() in _VOWELS


def _join(a, b):
    """Join two words, eliding the first when the second starts with a vowel or mute h."""
    if a.lower() in _ELIDING and _starts_vowel(b):
        el = _ELIDING[a.lower()]
        if a[:1].isupper():
            el = el[:1].upper() + el[1:]
        return el + b
    return a + " " + b


def _cap(s):
    return s[0].upper() + s[1:]


def _def(word, g, plural=False):
    if plural:
        return "les " + word
    return _join("le" if g == "m" else "la", word)


def _de(np):
    """de + noun phrase, with du / des / d'."""
    if np.startswith("le "):
        return "du " + np[3:]
    if np.startswith("les "):
        return "des " + np[4:]
    return _join("de", np)


def _a(np):
    """à + noun phrase, with au / aux."""
    if np.startswith("le "):
        return "au " + np[3:]
    if np.startswith("les "):
        return "aux " + np[4:]
    return "à " + np


# --------------------------------------------------------------------------------------------
# people

NAMES = (
    ("Marie", "f"), ("Pierre", "m"), ("Sophie", "f"), ("Louis", "m"), ("Claire", "f"),
    ("Julien", "m"), ("Camille", "f"), ("Thomas", "m"), ("Chloé", "f"), ("Nicolas", "m"),
    ("Léa", "f"), ("Antoine", "m"), ("Élise", "f"), ("Hugo", "m"), ("Manon", "f"),
    ("Olivier", "m"),
)

# subject noun phrases: (text, gender, plural?)
SUBJECT_NPS = (
    ("mon frère", "m", False), ("ma sœur", "f", False), ("ma mère", "f", False),
    ("mon père", "m", False), ("ma grand-mère", "f", False), ("mon grand-père", "m", False),
    ("ma tante", "f", False), ("mon oncle", "m", False), ("notre voisin", "m", False),
    ("l'institutrice", "f", False), ("le boulanger", "m", False), ("ma cousine", "f", False),
    ("le vieil homme", "m", False), ("la jeune femme", "f", False),
    ("mes parents", "m", True), ("les enfants", "m", True), ("nos voisins", "m", True),
    ("mes amies", "f", True), ("les élèves", "m", True), ("mes grands-parents", "m", True),
)

# relatives and friends after a possessive: (noun, gender, plural?)
RELATIVES = (
    ("frère", "m", False), ("sœur", "f", False), ("mère", "f", False), ("père", "m", False),
    ("grand-mère", "f", False), ("grand-père", "m", False), ("tante", "f", False),
    ("oncle", "m", False), ("cousin", "m", False), ("amie", "f", False), ("voisin", "m", False),
    ("collègue", "m", False), ("fils", "m", False), ("fille", "f", False),
    ("amis", "m", True), ("grands-parents", "m", True), ("parents", "m", True),
    ("collègues", "m", True),
)

# person key -> (subject pronoun, possessive m sg, possessive f sg, possessive pl, index)
PERSONS = {
    "1sg": ("je", "mon", "ma", "mes", 0),
    "3sg": (None, "son", "sa", "ses", 1),
    "1pl": ("nous", "notre", "notre", "nos", 2),
    "3pl": (None, "leur", "leur", "leurs", 3),
}


class Subj:
    """A subject: its text, person key ("1sg", "3sg", "1pl", "3pl") and gender."""

    def __init__(self, text, person, g):
        self.text, self.person, self.g = text, person, g

    @property
    def plural(self):
        return self.person in ("1pl", "3pl")

    @property
    def pron(self):
        p = PERSONS[self.person][0]
        if p:
            return p
        if self.person == "3sg":
            return "il" if self.g == "m" else "elle"
        return "ils" if self.g == "m" else "elles"


def _subject(rng, pronouns=True):
    r = rng.random()
    if pronouns and r < 0.12:
        return Subj("je", "1sg", "m") if rng.random() < 0.5 else Subj("nous", "1pl", "m")
    if r < 0.55:
        name, g = rng.choice(NAMES)
        return Subj(name, "3sg", g)
    text, g, pl = rng.choice(SUBJECT_NPS)
    return Subj(text, "3pl" if pl else "3sg", g)


def _poss(person, g, plural, word):
    """Possessive + noun: son frère, sa sœur, son amie, ses amis, leur tante..."""
    _, m, f, pl, _ = PERSONS[person]
    if plural:
        return pl + " " + word
    if g == "f" and not _starts_vowel(word):
        return f + " " + word
    return m + " " + word


def _relative(rng, subj, avoid=""):
    avoid = avoid or subj.text
    bad = set()
    if "grand" in avoid or "vieil" in avoid:
        bad = {"grand-mère", "grand-père", "grands-parents", "parents", "mère", "père"}
    elif "enfants" in avoid or "élèves" in avoid:
        bad = {"fils", "fille", "collègue", "collègues"}
    while True:
        noun, g, pl = rng.choice(RELATIVES)
        if noun not in avoid and noun not in bad:
            return _poss(subj.person, g, pl, noun), g, pl


# --------------------------------------------------------------------------------------------
# adjectives: ms -> (ms, fs, mp, fp, before the noun?, ms form before a vowel)

ADJ = {
    "rouge": ("rouge", "rouge", "rouges", "rouges", False, None),
    "bleu": ("bleu", "bleue", "bleus", "bleues", False, None),
    "vert": ("vert", "verte", "verts", "vertes", False, None),
    "jaune": ("jaune", "jaune", "jaunes", "jaunes", False, None),
    "noir": ("noir", "noire", "noirs", "noires", False, None),
    "blanc": ("blanc", "blanche", "blancs", "blanches", False, None),
    "gris": ("gris", "grise", "gris", "grises", False, None),
    "marron": ("marron", "marron", "marron", "marron", False, None),
    "grand": ("grand", "grande", "grands", "grandes", True, None),
    "petit": ("petit", "petite", "petits", "petites", True, None),
    "gros": ("gros", "grosse", "gros", "grosses", True, None),
    "nouveau": ("nouveau", "nouvelle", "nouveaux", "nouvelles", True, "nouvel"),
    "vieux": ("vieux", "vieille", "vieux", "vieilles", True, "vieil"),
    "beau": ("beau", "belle", "beaux", "belles", True, "bel"),
    "joli": ("joli", "jolie", "jolis", "jolies", True, None),
    "bon": ("bon", "bonne", "bons", "bonnes", True, None),
    "jeune": ("jeune", "jeune", "jeunes", "jeunes", True, None),
    "long": ("long", "longue", "longs", "longues", True, None),
    "court": ("court", "courte", "courts", "courtes", False, None),
    "lourd": ("lourd", "lourde", "lourds", "lourdes", False, None),
    "léger": ("léger", "légère", "légers", "légères", False, None),
    "cher": ("cher", "chère", "chers", "chères", False, None),
    "frais": ("frais", "fraîche", "frais", "fraîches", False, None),
    "mûr": ("mûr", "mûre", "mûrs", "mûres", False, None),
    "sucré": ("sucré", "sucrée", "sucrés", "sucrées", False, None),
    "juteux": ("juteux", "juteuse", "juteux", "juteuses", False, None),
    "délicieux": ("délicieux", "délicieuse", "délicieux", "délicieuses", False, None),
    "chaud": ("chaud", "chaude", "chauds", "chaudes", False, None),
    "froid": ("froid", "froide", "froids", "froides", False, None),
    "fort": ("fort", "forte", "forts", "fortes", False, None),
    "intéressant": ("intéressant", "intéressante", "intéressants", "intéressantes", False,
                    None),
    "passionnant": ("passionnant", "passionnante", "passionnants", "passionnantes", False,
                    None),
    "drôle": ("drôle", "drôle", "drôles", "drôles", False, None),
    "propre": ("propre", "propre", "propres", "propres", False, None),
    "sale": ("sale", "sale", "sales", "sales", False, None),
    "vide": ("vide", "vide", "vides", "vides", False, None),
    "plein": ("plein", "pleine", "pleins", "pleines", False, None),
    "calme": ("calme", "calme", "calmes", "calmes", False, None),
    "bruyant": ("bruyant", "bruyante", "bruyants", "bruyantes", False, None),
    "animé": ("animé", "animée", "animés", "animées", False, None),
    "moderne": ("moderne", "moderne", "modernes", "modernes", False, None),
    # people
    "fatigué": ("fatigué", "fatiguée", "fatigués", "fatiguées", False, None),
    "content": ("content", "contente", "contents", "contentes", False, None),
    "heureux": ("heureux", "heureuse", "heureux", "heureuses", False, None),
    "triste": ("triste", "triste", "tristes", "tristes", False, None),
    "malade": ("malade", "malade", "malades", "malades", False, None),
    "occupé": ("occupé", "occupée", "occupés", "occupées", False, None),
    "nerveux": ("nerveux", "nerveuse", "nerveux", "nerveuses", False, None),
    "fier": ("fier", "fière", "fiers", "fières", False, None),
    "joyeux": ("joyeux", "joyeuse", "joyeux", "joyeuses", False, None),
    "sympathique": ("sympathique", "sympathique", "sympathiques", "sympathiques", False, None),
    "en colère": ("en colère", "en colère", "en colère", "en colère", False, None),
    "en retard": ("en retard", "en retard", "en retard", "en retard", False, None),
}

COLOURS = ("rouge", "bleu", "vert", "jaune", "noir", "blanc", "gris", "marron")

ADJ_CLASSES = {
    "fruit": ("frais", "mûr", "sucré", "gros", "petit", "juteux"),
    "veg": ("frais", "gros", "petit"),
    "egg": ("frais", "gros", "petit"),
    "bakery": ("frais", "chaud", "délicieux", "gros", "petit", "sucré"),
    "bread": ("frais", "chaud", "délicieux", "bon"),
    "fish": ("frais", "gros", "petit", "délicieux"),
    "dish": ("chaud", "froid", "délicieux", "bon"),
    "cheese": ("frais", "délicieux", "bon"),
    "hotdrink": ("chaud", "froid", "fort", "sucré"),
    "milk": ("froid", "frais"),
    "juice": ("froid", "frais", "sucré"),
    "doc": ("long", "court", "vieux", "nouveau", "intéressant"),
    "list": ("long", "nouveau"),
    "art": ("long", "court", "nouveau", "vieux", "beau", "intéressant", "drôle"),
    "thing": COLOURS + ("grand", "petit", "nouveau", "vieux", "lourd", "léger", "cher", "beau"),
    "small": ("petit", "nouveau", "vieux"),
    "fixed": COLOURS + ("grand", "petit", "vieux", "nouveau"),
    "clothes": COLOURS + ("nouveau", "vieux", "chaud", "cher", "beau", "long", "court"),
    "flower": ("rouge", "jaune", "blanc", "bleu", "beau"),
    "tree": ("grand", "petit", "jeune", "vieux", "beau"),
    "match": ("long", "intéressant", "passionnant"),
    "map": ("grand", "petit", "vieux", "nouveau"),
    "hat": COLOURS + ("nouveau", "vieux", "chaud", "cher", "beau"),
    "picture": ("grand", "petit", "beau", "vieux", "nouveau"),
}

NOT_GRADABLE = set(COLOURS) | {"nouveau", "mûr", "vide", "plein"}

PERSON_ADJ = ("fatigué", "content", "heureux", "triste", "malade", "occupé", "nerveux", "fier",
              "joyeux", "en colère", "calme")


def _antonym(adj, cls):
    opts = {
        "grand": ("petit",), "petit": ("grand", "gros"), "gros": ("petit",),
        "nouveau": ("vieux",), "vieux": ("nouveau", "jeune"), "jeune": ("vieux",),
        "chaud": ("froid",), "froid": ("chaud",), "long": ("court",), "court": ("long",),
        "lourd": ("léger",), "léger": ("lourd",), "propre": ("sale",), "sale": ("propre",),
        "plein": ("vide",), "vide": ("plein",), "calme": ("bruyant",), "bruyant": ("calme",),
        "content": ("triste",), "triste": ("content",),
    }.get(adj, ())
    for a in opts:
        if a in ADJ_CLASSES.get(cls, ()):
            return a
    return None


def _agree(adj, g, plural):
    forms = ADJ[adj]
    return forms[(2 if plural else 0) + (1 if g == "f" else 0)]


# --------------------------------------------------------------------------------------------
# nouns: key -> (singular, plural or None for mass, gender, adjective class, tags)

NOUNS = {
    "pomme": ("pomme", "pommes", "f", "fruit", "food fruit pick wash"),
    "poire": ("poire", "poires", "f", "fruit", "food fruit pick wash"),
    "orange": ("orange", "oranges", "f", "fruit", "food fruit"),
    "citron": ("citron", "citrons", "m", "fruit", "food fruit"),
    "banane": ("banane", "bananes", "f", "fruit", "food fruit"),
    "melon": ("melon", "melons", "m", "fruit", "food fruit"),
    "tomate": ("tomate", "tomates", "f", "veg", "food veg wash"),
    "pdt": ("pomme de terre", "pommes de terre", "f", "veg", "food veg cook"),
    "carotte": ("carotte", "carottes", "f", "veg", "food veg cook wash"),
    "oignon": ("oignon", "oignons", "m", "veg", "food veg"),
    "concombre": ("concombre", "concombres", "m", "veg", "food veg"),
    "oeuf": ("œuf", "œufs", "m", "egg", "food cook"),
    "gateau": ("gâteau", "gâteaux", "m", "bakery", "food bake"),
    "tarte": ("tarte", "tartes", "f", "bakery", "food bake"),
    "biscuit": ("biscuit", "biscuits", "m", "bakery", "food bake"),
    "baguette": ("baguette", "baguettes", "f", "bread", "food bake"),
    "pizza": ("pizza", "pizzas", "f", "bread", "food bake"),
    "sandwich": ("sandwich", "sandwichs", "m", "bread", "food"),
    "poisson": ("poisson", "poissons", "m", "fish", "food cook"),
    "soupe": ("soupe", None, "f", "dish", "food cook order"),
    "riz": ("riz", None, "m", "dish", "food cook"),
    "fromage": ("fromage", None, "m", "cheese", "food"),
    "the": ("thé", None, "m", "hotdrink", "drink order"),
    "cafe": ("café", None, "m", "hotdrink", "drink order"),
    "lait": ("lait", None, "m", "milk", "drink"),
    "jus": ("jus d'orange", None, "m", "juice", "drink order"),
    "eau": ("eau", None, "f", "milk", "drink"),
    "livre": ("livre", "livres", "m", "doc", "thing read"),
    "journal": ("journal", "journaux", "m", "doc", "thing read"),
    "lettre": ("lettre", "lettres", "f", "doc", "read write open"),
    "histoire": ("histoire", "histoires", "f", "art", "read write"),
    "liste": ("liste de courses", "listes de courses", "f", "list", "write"),
    "carte": ("carte", "cartes", "f", "map", "thing"),
    "sac": ("sac", "sacs", "m", "thing", "thing carry open lose"),
    "boite": ("boîte", "boîtes", "f", "thing", "thing carry open"),
    "valise": ("valise", "valises", "f", "thing", "thing carry open"),
    "panier": ("panier", "paniers", "m", "thing", "thing carry"),
    "lampe": ("lampe", "lampes", "f", "thing", "thing fix"),
    "chaise": ("chaise", "chaises", "f", "thing", "thing fix paint carry"),
    "table": ("table", "tables", "f", "thing", "thing fix paint clean"),
    "horloge": ("horloge", "horloges", "f", "thing", "thing fix"),
    "tasse": ("tasse", "tasses", "f", "thing", "thing wash"),
    "assiette": ("assiette", "assiettes", "f", "thing", "thing wash"),
    "velo": ("vélo", "vélos", "m", "thing", "thing fix clean"),
    "voiture": ("voiture", "voitures", "f", "thing", "fix clean"),
    "cle": ("clé", "clés", "f", "small", "lose"),
    "billet": ("billet", "billets", "m", "small", "lose"),
    "parapluie": ("parapluie", "parapluies", "m", "thing", "thing lose"),
    "portefeuille": ("portefeuille", "portefeuilles", "m", "thing", "thing lose"),
    "telephone": ("téléphone", "téléphones", "m", "thing", "thing lose fix"),
    "radio": ("radio", "radios", "f", "thing", "thing fix"),
    "tableau": ("tableau", "tableaux", "m", "picture", "paint"),
    "porte": ("porte", "portes", "f", "fixed", "paint open"),
    "fenetre": ("fenêtre", "fenêtres", "f", "fixed", "open clean"),
    "barriere": ("barrière", "barrières", "f", "fixed", "paint"),
    "ballon": ("ballon", "ballons", "m", "thing", "thing"),
    "cerf-volant": ("cerf-volant", "cerfs-volants", "m", "thing", "thing"),
    "guitare": ("guitare", "guitares", "f", "thing", "thing"),
    "couverture": ("couverture", "couvertures", "f", "thing", "thing wash"),
    "fleur": ("fleur", "fleurs", "f", "flower", "flower plant pick draw"),
    "arbre": ("arbre", "arbres", "m", "tree", "plant draw"),
    "maison": ("maison", "maisons", "f", "tree", "draw"),
    "manteau": ("manteau", "manteaux", "m", "clothes", "clothes"),
    "chapeau": ("chapeau", "chapeaux", "m", "hat", "clothes"),
    "chemise": ("chemise", "chemises", "f", "clothes", "clothes"),
    "robe": ("robe", "robes", "f", "clothes", "clothes"),
    "echarpe": ("écharpe", "écharpes", "f", "clothes", "clothes"),
    "veste": ("veste", "vestes", "f", "clothes", "clothes"),
    "pull": ("pull", "pulls", "m", "clothes", "clothes"),
    "jupe": ("jupe", "jupes", "f", "clothes", "clothes"),
    "film": ("film", "films", "m", "art", "watch"),
    "match": ("match de football", "matchs de football", "m", "match", "watch"),
    "chanson": ("chanson", "chansons", "f", "art", "sing"),
}

NUMBERS = ("deux", "trois", "quatre", "quelques", "des")


def _tags(key):
    return NOUNS[key][4].split()


def _nouns_with(tags):
    want = tags.split()
    return [k for k in NOUNS if any(t in want for t in _tags(k))]


def _adj_for(rng, cls, avoid=()):
    opts = [a for a in ADJ_CLASSES[cls] if a not in avoid]
    return rng.choice(opts) if opts else None


def _head(key, plural, adj=None):
    """Noun with its adjective in the right place and form (no determiner)."""
    sg, pl, g, _, _ = NOUNS[key]
    noun = pl if plural else sg
    if not adj:
        return noun
    forms = ADJ[adj]
    form = _agree(adj, g, plural)
    if forms[4]:
        if not plural and g == "m" and forms[5] and _starts_vowel(noun):
            form = forms[5]
        return form + " " + noun
    return noun + " " + form


def _np(rng, key, det, adj=None, person="3sg"):
    """Noun phrase. det: un, num, le, poss, part (mass), neg (after pas)."""
    sg, pl, g, _, _ = NOUNS[key]
    if pl is None and det in ("un", "num"):
        det = "part"
    plural = det == "num"
    head = _head(key, plural, adj)
    pre = bool(adj) and ADJ[adj][4]
    if det == "un":
        return ("un " if g == "m" else "une ") + head
    if det == "num":
        n = rng.choice(NUMBERS)
        if n == "des" and pre:
            return _join("de", head)
        return n + " " + head
    if det == "le":
        return _def(head, g)
    if det == "poss":
        return _poss(person, g, False, head)
    if det == "part":
        return _de(_def(head, g))
    if det == "neg":
        return _join("de", head)
    raise ValueError(det)


# --------------------------------------------------------------------------------------------
# places: key -> (noun, gender, locative/direction, "from" phrase or None, adjectives)

PLACES = {
    "marche": ("marché", "m", "au marché", "du marché", ("animé", "calme", "bruyant", "grand",
                                                         "petit")),
    "parc": ("parc", "m", "au parc", None, ("calme", "beau", "grand", "vide")),
    "ecole": ("école", "f", "à l'école", None, ("grand", "petit", "vieux", "nouveau")),
    "gare": ("gare", "f", "à la gare", None, ("animé", "calme", "bruyant", "vieux", "vide")),
    "boulangerie": ("boulangerie", "f", "à la boulangerie", "de la boulangerie",
                    ("petit", "animé")),
    "bureau": ("bureau", "m", "au bureau", None, ("calme", "bruyant", "petit", "grand")),
    "cuisine": ("cuisine", "f", "dans la cuisine", None, ("propre", "petit", "grand", "sale")),
    "jardin": ("jardin", "m", "dans le jardin", "du jardin", ("beau", "calme", "petit", "grand")),
    "supermarche": ("supermarché", "m", "au supermarché", "du supermarché",
                    ("grand", "animé", "vide", "nouveau")),
    "bibliotheque": ("bibliothèque", "f", "à la bibliothèque", None,
                     ("calme", "vieux", "grand", "moderne")),
    "cinema": ("cinéma", "m", "au cinéma", None, ("vieux", "nouveau", "vide")),
    "hopital": ("hôpital", "m", "à l'hôpital", None, ("grand", "nouveau", "vieux", "moderne")),
    "plage": ("plage", "f", "à la plage", None, ("beau", "calme", "vide", "animé")),
    "lac": ("lac", "m", "au lac", None, ("beau", "calme", "grand")),
    "restaurant": ("restaurant", "m", "au restaurant", None,
                   ("animé", "calme", "cher", "nouveau")),
    "cafe": ("café", "m", "au café", None, ("animé", "calme", "petit")),
    "musee": ("musée", "m", "au musée", None, ("grand", "vieux", "calme", "intéressant")),
    "poste": ("poste", "f", "à la poste", None, ("petit", "vieux")),
    "magasin": ("magasin", "m", "au magasin", "du magasin", ("petit", "nouveau", "cher")),
    "ferme": ("ferme", "f", "à la ferme", "de la ferme", ("grand", "petit", "vieux", "calme")),
    "banque": ("banque", "f", "à la banque", None, ("grand", "nouveau", "calme")),
    "piscine": ("piscine", "f", "à la piscine", None, ("grand", "nouveau", "moderne")),
    "universite": ("université", "f", "à l'université", None, ("grand", "vieux", "moderne")),
    "maison": (None, "f", "à la maison", None, ()),
}

CITIES = ("Paris", "Lyon", "Marseille", "Lille", "Nantes", "Bordeaux", "Toulouse", "Nice",
          "Rennes", "Strasbourg", "Dijon", "Grenoble")

# places one drives or rides to (trains only go to cities)
VEHICLE_PLACES = ("marche", "ecole", "gare", "ferme", "plage", "lac", "hopital", "universite",
                  "supermarche", "maison", "bureau", "piscine")

VEHICLES = (("en bus", "le bus"), ("en train", "le train"), ("en voiture", "la voiture"),
            ("à vélo", None), ("à pied", None))


def _loc(place):
    return PLACES[place][2] if place in PLACES else place


def _place_np(key, adj=None, article="le"):
    noun, g = PLACES[key][0], PLACES[key][1]
    if adj:
        forms = ADJ[adj]
        form = _agree(adj, g, False)
        if forms[4]:
            if g == "m" and forms[5] and _starts_vowel(noun):
                form = forms[5]
            noun = form + " " + noun
        else:
            noun = noun + " " + form
    if article == "un":
        return ("un " if g == "m" else "une ") + noun
    return _def(noun, g)


# --------------------------------------------------------------------------------------------
# verbs: (infinitive, (je, il/elle, nous, ils/elles), past participle, auxiliary)

AVOIR = ("avoir", ("ai", "a", "avons", "ont"), "eu", "avoir")
ETRE = ("être", ("suis", "est", "sommes", "sont"), "été", "avoir")
ALLER = ("aller", ("vais", "va", "allons", "vont"), "allé", "être")
VOULOIR = ("vouloir", ("veux", "veut", "voulons", "veulent"), "voulu", "avoir")
IMPARFAIT = {
    "être": ("étais", "était", "étions", "étaient"),
    "avoir": ("avais", "avait", "avions", "avaient"),
    "vouloir": ("voulais", "voulait", "voulions", "voulaient"),
}


def _v(inf, je, il, nous, ils, pp, aux="avoir"):
    return (inf, (je, il, nous, ils), pp, aux)


TRANSITIVE = (
    # verb, object tags, places, determiners
    (_v("acheter", "achète", "achète", "achetons", "achètent", "acheté"),
     "food flower thing clothes", ("marche", "supermarche", "magasin", "ferme"), "un num le"),
    (_v("vendre", "vends", "vend", "vendons", "vendent", "vendu"),
     "fruit veg flower clothes bake", ("marche", "magasin"), "un num"),
    (_v("manger", "mange", "mange", "mangeons", "mangent", "mangé"),
     "fruit bake", ("cuisine", "jardin", "parc", "cafe", "maison"), "un num le"),
    (_v("préparer", "prépare", "prépare", "préparons", "préparent", "préparé"),
     "bake cook", ("cuisine", "maison"), "un num part le"),
    (_v("lire", "lis", "lit", "lisons", "lisent", "lu"),
     "read", ("parc", "bibliotheque", "cuisine", "jardin", "cafe"), "un le poss"),
    (_v("écrire", "écris", "écrit", "écrivons", "écrivent", "écrit"),
     "write", ("bureau", "cuisine", "bibliotheque", "cafe", "maison"), "un le"),
    (_v("laver", "lave", "lave", "lavons", "lavent", "lavé"),
     "wash", ("cuisine", "jardin", "maison"), "le poss num"),
    (_v("porter", "porte", "porte", "portons", "portent", "porté"),
     "carry", ("gare", "marche"), "un le poss"),
    (_v("trouver", "trouve", "trouve", "trouvons", "trouvent", "trouvé"),
     "lose thing", ("parc", "jardin", "cuisine", "gare", "bureau"), "un le poss"),
    (_v("perdre", "perds", "perd", "perdons", "perdent", "perdu"),
     "lose", ("parc", "gare", "marche", "cinema", "bibliotheque"), "le poss"),
    (_v("ouvrir", "ouvre", "ouvre", "ouvrons", "ouvrent", "ouvert"),
     "open", ("cuisine", "bureau", "maison"), "le poss"),
    (_v("peindre", "peins", "peint", "peignons", "peignent", "peint"),
     "paint", ("jardin", "cuisine", "maison"), "le un"),
    (_v("réparer", "répare", "répare", "réparons", "réparent", "réparé"),
     "fix", ("jardin", "cuisine", "bureau", "maison"), "le poss"),
    (_v("boire", "bois", "boit", "buvons", "boivent", "bu"),
     "drink", ("cafe", "cuisine", "jardin", "restaurant", "maison"), "part"),
    (_v("commander", "commande", "commande", "commandons", "commandent", "commandé"),
     "order", ("cafe", "restaurant"), "part"),
    (_v("regarder", "regarde", "regarde", "regardons", "regardent", "regardé"),
     "watch", ("cinema", "maison"), "un le"),
    (_v("planter", "plante", "plante", "plantons", "plantent", "planté"),
     "plant", ("jardin", "parc", "ferme"), "un num"),
    (_v("cueillir", "cueille", "cueille", "cueillons", "cueillent", "cueilli"),
     "pick", ("jardin", "ferme"), "num"),
    (_v("dessiner", "dessine", "dessine", "dessinons", "dessinent", "dessiné"),
     "draw", ("ecole", "cuisine", "parc"), "un"),
    (_v("nettoyer", "nettoie", "nettoie", "nettoyons", "nettoient", "nettoyé"),
     "clean", ("jardin", "maison"), "le poss"),
    (_v("chanter", "chante", "chante", "chantons", "chantent", "chanté"),
     "sing", ("ecole", "cuisine", "jardin"), "un le"),
    (_v("choisir", "choisis", "choisit", "choisissons", "choisissent", "choisi"),
     "clothes read", ("magasin", "marche", "bibliotheque"), "un"),
    (_v("chercher", "cherche", "cherche", "cherchons", "cherchent", "cherché"),
     "lose", ("cuisine", "jardin", "bureau", "parc"), "le poss"),
)

PAST_ONLY = ("perdre", "trouver", "chercher")

# verbs with a person as object: verb, places (None = no place)
PERSON_VERBS = (
    (_v("voir", "vois", "voit", "voyons", "voient", "vu"), ("hopital", "ferme", None)),
    (_v("retrouver", "retrouve", "retrouve", "retrouvons", "retrouvent", "retrouvé"),
     ("marche", "gare", "cafe", "parc", "bibliotheque")),
    (_v("appeler", "appelle", "appelle", "appelons", "appellent", "appelé"), (None,)),
    (_v("aider", "aide", "aide", "aidons", "aident", "aidé"),
     ("cuisine", "jardin", "bureau", "marche")),
    (_v("attendre", "attends", "attend", "attendons", "attendent", "attendu"),
     ("gare", "cafe", "ecole")),
)

INTRANSITIVE = (
    (_v("travailler", "travaille", "travaille", "travaillons", "travaillent", "travaillé"),
     ("bureau", "ecole", "hopital", "boulangerie", "marche", "jardin", "bibliotheque", "banque",
      "ferme", "magasin", "maison")),
    (_v("dormir", "dors", "dort", "dormons", "dorment", "dormi"), ("maison", "jardin")),
    (_v("jouer", "joue", "joue", "jouons", "jouent", "joué"),
     ("parc", "jardin", "cuisine", "sur la plage")),
    (_v("marcher", "marche", "marche", "marchons", "marchent", "marché"),
     ("parc", "sur la plage", "le long de la rivière")),
    (_v("courir", "cours", "court", "courons", "courent", "couru"),
     ("parc", "sur la plage", "le long de la rivière")),
    (_v("nager", "nage", "nage", "nageons", "nagent", "nagé"),
     ("dans le lac", "piscine", "dans la rivière", "dans la mer")),
    (_v("danser", "danse", "danse", "dansons", "dansent", "dansé"),
     ("cuisine", "jardin", "ecole")),
    (_v("attendre", "attends", "attend", "attendons", "attendent", "attendu"),
     ("gare", "cafe", "poste", "banque", "ecole")),
    (_v("étudier", "étudie", "étudie", "étudions", "étudient", "étudié"),
     ("bibliotheque", "ecole", "universite", "maison")),
    (_v("déjeuner", "déjeune", "déjeune", "déjeunons", "déjeunent", "déjeuné"),
     ("restaurant", "cafe", "cuisine", "parc")),
    (_v("dîner", "dîne", "dîne", "dînons", "dînent", "dîné"),
     ("restaurant", "cuisine", "jardin", "maison")),
    (_v("chanter", "chante", "chante", "chantons", "chantent", "chanté"),
     ("ecole", "cuisine", "jardin")),
    (_v("lire", "lis", "lit", "lisons", "lisent", "lu"),
     ("bibliotheque", "parc", "jardin", "maison")),
)

MOTION = (
    ALLER,
    _v("venir", "viens", "vient", "venons", "viennent", "venu", "être"),
)
RENTRER = _v("rentrer", "rentre", "rentre", "rentrons", "rentrent", "rentré", "être")
RESTER = _v("rester", "reste", "reste", "restons", "restent", "resté", "être")
SORTIR = _v("sortir", "sors", "sort", "sortons", "sortent", "sorti", "être")
PRENDRE = _v("prendre", "prends", "prend", "prenons", "prennent", "pris")

GIVE_VERBS = (
    _v("donner", "donne", "donne", "donnons", "donnent", "donné"),
    _v("apporter", "apporte", "apporte", "apportons", "apportent", "apporté"),
    _v("envoyer", "envoie", "envoie", "envoyons", "envoient", "envoyé"),
    _v("montrer", "montre", "montre", "montrons", "montrent", "montré"),
    _v("prêter", "prête", "prête", "prêtons", "prêtent", "prêté"),
    _v("offrir", "offre", "offre", "offrons", "offrent", "offert"),
)


def _idx(subj):
    return PERSONS[subj.person][4]


def _pp(verb, subj):
    pp = verb[2]
    if verb[3] == "être":
        if subj.g == "f" and subj.person == "3sg":
            pp += "e"
        elif subj.plural:
            pp += "es" if (subj.g == "f" and subj.person == "3pl") else "s"
    return pp


def _conj(verb, subj, tense, neg=None):
    """Finite verb group (without subject). neg: None, "pas" or "rien"."""
    i = _idx(subj)
    if tense == "present":
        form = verb[1][i]
        return _join("ne", form) + " " + neg if neg else form
    if tense == "past":
        aux = (ETRE if verb[3] == "être" else AVOIR)[1][i]
        if neg:
            return "%s %s %s" % (_join("ne", aux), neg, _pp(verb, subj))
        return aux + " " + _pp(verb, subj)
    if tense == "imparfait":
        form = IMPARFAIT[verb[0]][i]
        return _join("ne", form) + " " + neg if neg else form
    # futur proche
    aux = ALLER[1][i]
    if neg:
        return "ne %s %s %s" % (aux, neg, verb[0])
    return aux + " " + verb[0]


def _sv(subj, verb_group):
    """Subject + verb group, eliding je."""
    if subj.text == "je":
        return _join("je", verb_group)
    return subj.text + " " + verb_group


def _etre(subj, tense, neg=False):
    if tense == "future":
        return _conj(ETRE, subj, "future", "pas" if neg else None)
    t = "present" if tense == "present" else "imparfait"
    return _conj(ETRE, subj, t, "pas" if neg else None)


def _agree_subj(adj, subj):
    return _agree(adj, subj.g, subj.plural)


# --------------------------------------------------------------------------------------------
# times

TIMES = {
    "past": ("hier", "la semaine dernière", "lundi", "samedi", "ce matin", "hier soir",
             "il y a deux jours", "l'été dernier", "dimanche après-midi", "l'année dernière",
             "il y a une heure"),
    "present": ("tous les jours", "tous les matins", "le samedi", "le dimanche", "le soir",
                "le week-end", "chaque semaine", "l'après-midi"),
    "future": ("demain", "la semaine prochaine", "vendredi", "demain matin", "l'été prochain",
               "ce soir", "dimanche", "le mois prochain"),
}
DAY_TIMES = ("hier", "lundi", "samedi")


def _time(rng, tense):
    return rng.choice(TIMES[tense])


def _tense(rng, allow=("past", "present", "future")):
    return rng.choice(allow)


def _place_sells(place, key):
    tags = _tags(key)
    if place == "boulangerie":
        return "bake" in tags
    if place in ("marche", "supermarche", "ferme"):
        return "food" in tags or "flower" in tags or (place == "marche" and "clothes" in tags)
    if place == "jardin":
        return "fruit" in tags or "veg" in tags or "flower" in tags
    if place == "magasin":
        return "thing" in tags or "clothes" in tags
    if place == "bibliotheque":
        return "read" in tags
    return False


def _place_for(rng, entry, key):
    verb, _, places, _ = entry
    if verb[0] in ("acheter", "vendre", "choisir"):
        places = [p for p in places if _place_sells(p, key)] or ["marche"]
    if key in ("voiture", "velo") and "jardin" in places:
        places = ["jardin"]
    return _loc(rng.choice(places))


def _pick_object(rng, entry):
    key = rng.choice(_nouns_with(entry[1]))
    dets = entry[3].split()
    if NOUNS[key][1] is None:
        dets = [d for d in dets if d in ("le", "poss", "part")] or ["part"]
    else:
        dets = [d for d in dets if d != "part"] or ["un"]
    det = rng.choice(dets)
    if det == "poss" and "food" in _tags(key):
        det = "le"
    return key, det


# --------------------------------------------------------------------------------------------
# sentence templates


def _front(rng, time, clause, p=0.35):
    if rng.random() < p:
        return "%s, %s." % (_cap(time), clause)
    return _cap("%s %s." % (clause, time))


def _t_transitive(rng):
    subj = _subject(rng)
    entry = rng.choice(TRANSITIVE)
    tense = _tense(rng)
    if entry[0][0] in PAST_ONLY:
        tense = "past"
    key, det = _pick_object(rng, entry)
    adj = _adj_for(rng, NOUNS[key][3]) if rng.random() < 0.6 else None
    obj = _np(rng, key, det, adj, person=subj.person)
    clause = _sv(subj, _conj(entry[0], subj, tense)) + " " + obj
    if rng.random() < 0.7:
        clause += " " + _place_for(rng, entry, key)
    return _front(rng, _time(rng, tense), clause, 0.3)


def _t_intransitive(rng):
    subj = _subject(rng)
    verb, places = rng.choice(INTRANSITIVE)
    tense = _tense(rng)
    clause = _sv(subj, _conj(verb, subj, tense)) + " " + _loc(rng.choice(places))
    if rng.random() < 0.3 and subj.person == "3sg" and verb[0] != "dormir":
        clause += " avec " + _relative(rng, subj)[0]
    return _front(rng, _time(rng, tense), clause)


def _t_motion(rng):
    subj = _subject(rng)
    tense = _tense(rng)
    verb = rng.choice(MOTION)
    city = rng.random() < 0.35
    if city:
        dest = "à " + rng.choice(CITIES)
    else:
        key = rng.choice([k for k in PLACES if k not in ("cuisine", "jardin")])
        dest = _loc(key)
    if dest == "à la maison" and verb is ALLER:
        verb = RENTRER
    clause = _sv(subj, _conj(verb, subj, tense)) + " " + dest
    if rng.random() < 0.6 and (city or key in VEHICLE_PLACES):
        clause += " " + rng.choice([v for v in VEHICLES if (city and v[0] != "à pied") or
                                    (not city and v[0] != "en train")])[0]
    return _front(rng, _time(rng, tense), clause, 0.3)


def _t_thing_adj(rng):
    key = rng.choice(list(NOUNS))
    sg, pl, g, cls, _ = NOUNS[key]
    adj = _adj_for(rng, cls)
    plural = pl is not None and rng.random() < 0.4
    subj = Subj("x", "3pl" if plural else "3sg", g)
    head = pl if plural else sg
    np = _def(head, g, plural)
    if any(t in ("thing", "clothes") for t in _tags(key)) and rng.random() < 0.4:
        np = _poss(rng.choice(("1sg", "1pl")), g, plural, head)
    else:
        from_places = [k for k in PLACES if PLACES[k][3] and _place_sells(k, key)]
        if from_places and rng.random() < 0.5:
            np += " " + PLACES[rng.choice(from_places)][3]
    tense = _tense(rng, ("present", "past"))
    very = "très " if adj not in NOT_GRADABLE and rng.random() < 0.5 else ""
    tail = ""
    if rng.random() < 0.4 and adj in ("frais", "chaud", "froid", "délicieux", "bon"):
        tail = " " + rng.choice(("aujourd'hui", "ce matin") if tense == "present" else
                                ("hier", "ce matin"))
        if tense == "present":
            tail = " aujourd'hui"
    return _cap("%s %s %s%s%s." % (np, _etre(subj, tense), very, _agree_subj(adj, subj), tail))


def _t_person_adj(rng):
    subj = _subject(rng)
    tense = _tense(rng)
    adj = rng.choice(PERSON_ADJ)
    very = "très " if adj not in ("en colère",) and rng.random() < 0.5 else ""
    if tense == "present":
        time = rng.choice(("aujourd'hui", "ce matin", "maintenant", "le soir"))
    elif tense == "past":
        time = rng.choice(("hier", "hier soir", "ce matin", "lundi", "samedi"))
    else:
        time = rng.choice(("demain", "ce soir", "demain matin", "samedi"))
    reason = ""
    if tense != "present" and rng.random() < 0.35:
        reason = " après " + rng.choice(("le travail", "l'école", "le long voyage", "la fête",
                                          "le match", "le dîner"))
        time = rng.choice(("hier", "lundi", "samedi") if tense == "past" else
                          ("demain", "samedi"))
    clause = _sv(subj, _etre(subj, tense)) + " " + very + _agree_subj(adj, subj) + reason
    return _front(rng, time, clause, 0.3)


WEATHER = {
    "froid": ("il fait froid", "il faisait froid", "il va faire froid"),
    "chaud": ("il fait chaud", "il faisait chaud", "il va faire chaud"),
    "beau": ("il fait beau", "il faisait beau", "il va faire beau"),
    "doux": ("il fait doux", "il faisait doux", "il va faire doux"),
    "pluie": ("il pleut", "il pleuvait", "il va pleuvoir"),
    "neige": ("il neige", "il neigeait", "il va neiger"),
    "vent": ("il y a du vent", "il y avait du vent", "il va y avoir du vent"),
    "soleil": ("il y a du soleil", "il y avait du soleil", "il va y avoir du soleil"),
    "brouillard": ("il y a du brouillard", "il y avait du brouillard",
                   "il va y avoir du brouillard"),
}
WEATHER_PAIRS = (("froid", "vent"), ("froid", "neige"), ("froid", "pluie"), ("chaud", "soleil"),
                 ("doux", "soleil"), ("froid", "brouillard"), ("pluie", "vent"),
                 ("beau", "soleil"))


WEATHER_TIMES = {
    "present": ("aujourd'hui", "ce matin"),
    "past": ("hier", "lundi", "samedi", "la semaine dernière", "hier soir", "ce matin"),
    "future": ("demain", "vendredi", "dimanche", "la semaine prochaine", "demain matin"),
}
WHOLE_DAYS = ("hier", "lundi", "samedi", "demain", "vendredi", "dimanche")


def _t_weather(rng):
    tense = _tense(rng)
    ti = {"present": 0, "past": 1, "future": 2}[tense]
    city = rng.choice(CITIES)
    time = rng.choice(WEATHER_TIMES[tense])
    a, b = rng.choice(WEATHER_PAIRS)
    r = rng.random()
    if r < 0.4:
        return "%s, à %s, %s et %s." % (_cap(time), city, WEATHER[a][ti], WEATHER[b][ti])
    if r < 0.7:
        return _cap("%s à %s %s." % (WEATHER[a][ti], city, time))
    if a not in ("pluie", "neige"):
        a = rng.choice(("pluie", "neige"))
    extra = rng.choice((" beaucoup", " toute la journée") if time in WHOLE_DAYS
                       else (" beaucoup", ""))
    return "%s, %s%s à %s." % (_cap(time), WEATHER[a][ti], extra, city)


BECAUSE = (
    # (verb, complement, reasons)
    (RESTER, "à la maison", ("malade", "fatigué", "pluie", "froid", "travail")),
    (_v("dormir", "dors", "dort", "dormons", "dorment", "dormi"), "tout l'après-midi",
     ("fatigué", "malade")),
    (PRENDRE, "un parapluie", ("pluie",)),
    (_v("mettre", "mets", "met", "mettons", "mettent", "mis"), "un manteau chaud", ("froid",)),
    (_v("ouvrir", "ouvre", "ouvre", "ouvrons", "ouvrent", "ouvert"), "la fenêtre", ("chaud",)),
    (_v("manger", "mange", "mange", "mangeons", "mangent", "mangé"), "un gros sandwich",
     ("faim",)),
    (ALLER, "à la boulangerie", ("faim", "pain")),
    (_v("acheter", "achète", "achète", "achetons", "achètent", "acheté"), "une nouvelle lampe",
     ("cassé",)),
    (PRENDRE, "le bus", ("pluie", "froid", "retard")),
    (_v("chanter", "chante", "chante", "chantons", "chantent", "chanté"), "dans la cuisine",
     ("content",)),
    (_v("appeler", "appelle", "appelle", "appelons", "appellent", "appelé"), "le médecin",
     ("malade",)),
    (ALLER, "au marché à pied", ("beau",)),
)


def _reason(kind, subj, tense):
    pron = Subj(subj.pron, subj.person, subj.g)
    pres = tense == "present"
    etre = _etre(pron, tense)
    avoir = _conj(AVOIR, pron, "present" if pres else "imparfait")
    if kind in ("malade", "fatigué", "content"):
        return _sv(pron, etre) + " " + _agree_subj(kind, subj)
    if kind == "retard":
        return _sv(pron, etre) + " en retard"
    if kind == "faim":
        return _sv(pron, avoir) + " faim"
    if kind == "travail":
        return _sv(pron, avoir) + " beaucoup de travail"
    if kind == "pain":
        return _sv(pron, _conj(VOULOIR, pron, "present" if pres else "imparfait")) + \
            " du pain frais"
    if kind == "pluie":
        return "il pleut" if pres else "il pleuvait"
    if kind == "froid":
        return "il fait très froid dehors" if pres else "il faisait très froid dehors"
    if kind == "chaud":
        return "il fait chaud dans la pièce" if pres else "il faisait chaud dans la pièce"
    if kind == "beau":
        return "il fait beau" if pres else "il faisait beau"
    if kind == "cassé":
        return "l'ancienne est cassée" if pres else "l'ancienne était cassée"
    raise KeyError(kind)


def _t_because(rng):
    subj = _subject(rng)
    verb, comp, reasons = rng.choice(BECAUSE)
    tense = _tense(rng, ("present", "past"))
    kind = rng.choice(reasons)
    time = ""
    if rng.random() < 0.4:
        time = " " + ("aujourd'hui" if tense == "present" else rng.choice(("hier", "lundi")))
    return _cap("%s %s%s %s." % (_sv(subj, _conj(verb, subj, tense)), comp, time,
                                 _join("parce que", _reason(kind, subj, tense))))


MODALS = (
    ("vouloir", ("veux", "veut", "voulons", "veulent")),
    ("vouloir2", ("voudrais", "voudrait", "voudrions", "voudraient")),
    ("devoir", ("dois", "doit", "devons", "doivent")),
    ("pouvoir", ("peux", "peut", "pouvons", "peuvent")),
    ("aimer", ("aime", "aime", "aimons", "aiment")),
)


def _t_modal(rng):
    subj = _subject(rng)
    entry = rng.choice([e for e in TRANSITIVE if e[0][0] not in
                        ("perdre", "trouver", "porter", "ouvrir", "chercher")])
    key, det = _pick_object(rng, entry)
    adj = _adj_for(rng, NOUNS[key][3]) if rng.random() < 0.5 else None
    obj = _np(rng, key, det, adj, person=subj.person)
    name, forms = rng.choice(MODALS)
    place = " " + _place_for(rng, entry, key) if rng.random() < 0.6 else ""
    time = ""
    if name in ("vouloir", "vouloir2", "devoir") and rng.random() < 0.5:
        time = " " + _time(rng, "future")
    if name == "aimer" and rng.random() < 0.5:
        time = " " + _time(rng, "present")
    return _cap("%s %s %s%s%s." % (_sv(subj, forms[_idx(subj)]), entry[0][0], obj, place, time))


def _t_coordination(rng):
    tense = _tense(rng)
    s1 = _subject(rng, pronouns=False)
    s2 = _subject(rng, pronouns=False)
    if s1.text == s2.text:
        s2 = Subj("je", "1sg", "m")
    e1 = rng.choice([e for e in TRANSITIVE if tense == "past" or e[0][0] not in PAST_ONLY])
    k1, d1 = _pick_object(rng, e1)
    o1 = _np(rng, k1, d1, None, person=s1.person)
    v2, places = rng.choice([v for v in INTRANSITIVE if v[0][0] != e1[0][0]])
    place = _loc(rng.choice(places))
    first = _sv(s1, _conj(e1[0], s1, tense)) + " " + o1
    if rng.random() < 0.5:
        body = "%s et %s %s" % (first, _sv(s2, _conj(v2, s2, tense)), place)
    else:
        second = _conj(v2, s1, tense) if tense != "future" else v2[0]
        body = "%s, puis %s %s" % (first, second, place)
    return _cap("%s %s." % (body, _time(rng, tense)))


def _t_there(rng):
    if rng.random() < 0.5:
        key = rng.choice([k for k in PLACES if PLACES[k][0] and k not in
                          ("maison", "ecole", "cuisine", "jardin")])
        near = rng.choice([k for k in PLACES if PLACES[k][0] and k != key and k not in
                           ("cuisine", "jardin", "maison")])
        adj = rng.choice(PLACES[key][4])
        prep = rng.choice(("près", "à côté", "en face", "derrière"))
        near_np = _place_np(near)
        where = "derrière " + near_np if prep == "derrière" else prep + " " + _de(near_np)
        verb = rng.choice(("Il y a", "Il y avait"))
        return "%s %s %s." % (verb, _place_np(key, adj, "un"), where)
    key = rng.choice(("marche", "parc", "gare", "plage", "musee", "supermarche", "cafe",
                      "bibliotheque", "piscine"))
    verb, time = rng.choice((("Il y a", "aujourd'hui"), ("Il y avait", "hier"),
                             ("Il y a", "le week-end"), ("Il y avait", "samedi dernier")))
    q = rng.choice(("beaucoup de monde", "beaucoup de gens", "peu de gens",
                    "beaucoup d'enfants", "beaucoup de touristes"))
    return "%s %s %s %s." % (verb, q, _loc(key), time)


def _give_keys(lend=False):
    """Things one gives (food and flowers too, except when lending)."""
    want = ("thing", "clothes") if lend else ("thing", "flower", "clothes", "bake")
    return [k for k in NOUNS if NOUNS[k][1] and any(t in want for t in _tags(k))]


def _t_give(rng):
    subj = _subject(rng)
    verb = rng.choice(GIVE_VERBS)
    tense = _tense(rng)
    key = rng.choice(_give_keys(verb[0] == "prêter"))
    adj = _adj_for(rng, NOUNS[key][3]) if rng.random() < 0.5 else None
    obj = _np(rng, key, rng.choice(("un", "num")), adj)
    who = _relative(rng, subj)[0]
    clause = "%s %s %s" % (_sv(subj, _conj(verb, subj, tense)), obj, _a(who))
    return _front(rng, _time(rng, tense), clause, 0.3)


def _t_person_obj(rng):
    subj = _subject(rng)
    verb, places = rng.choice(PERSON_VERBS)
    tense = _tense(rng)
    who = _relative(rng, subj)[0]
    place = rng.choice(places)
    clause = _sv(subj, _conj(verb, subj, tense)) + " " + who
    if place:
        clause += " " + _loc(place)
    return _front(rng, _time(rng, tense), clause, 0.3)


RELATIVE_JOBS = (
    # head, gender, (present, imparfait), complement
    ("l'homme", "m", ("vend", "vendait"), "du poisson au marché"),
    ("la femme", "f", ("vend", "vendait"), "des fleurs au marché"),
    ("la jeune fille", "f", ("travaille", "travaillait"), "à la boulangerie"),
    ("le garçon", "m", ("joue", "jouait"), "au football dans le parc"),
    ("la femme", "f", ("travaille", "travaillait"), "à la bibliothèque"),
    ("l'homme", "m", ("conduit", "conduisait"), "le bus de l'école"),
    ("le médecin", "m", ("travaille", "travaillait"), "à l'hôpital"),
    ("le vieil homme", "m", ("vend", "vendait"), "des journaux à la gare"),
    ("l'institutrice", "f", ("enseigne", "enseignait"), "la musique à l'école"),
    ("le fermier", "m", ("vend", "vendait"), "des œufs au marché"),
)


def _t_relative(rng):
    head, g, forms, comp = rng.choice(RELATIVE_JOBS)
    past = rng.random() < 0.5
    subj = Subj(head, "3sg", g)
    inner = (forms[1] if past else forms[0]) + " " + comp
    r = rng.random()
    if r < 0.4:
        adj = rng.choice(("sympathique", "très sympathique", "toujours joyeux", "très occupé",
                          "fatigué", "très gentil") + (() if "jeune fille" in head or
                                                        "garçon" in head else ("assez vieux",)))
        if adj == "assez vieux" and g == "f":
            adj = "assez âgée"
        if g == "f":
            adj = adj.replace("joyeux", "joyeuse").replace("occupé", "occupée") \
                .replace("fatigué", "fatiguée").replace("gentil", "gentille")
        tail = ("était " if past else "est ") + adj
    elif r < 0.7:
        tail = ("habitait à " if past else "habite à ") + rng.choice(CITIES)
    else:
        rel = rng.choice(RELATIVES)
        who = _poss(rng.choice(("1sg", "1pl")), rel[1], rel[2], rel[0])
        tail = ("connaissait " if past else "connaît ") + who
    return _cap("%s qui %s %s." % (subj.text, inner, tail))


WHEN_PAIRS = (
    ("il pleut", "les enfants jouent dans la cuisine"),
    ("il pleut", "nous restons à la maison"),
    ("il fait beau", "nous déjeunons dans le jardin"),
    ("il fait froid", "ma mère prépare une soupe chaude"),
    ("il neige", "les enfants font un bonhomme de neige"),
    ("il fait beau", "mes grands-parents vont au marché à pied"),
    ("mon père rentre à la maison", "nous dînons ensemble"),
    ("le bus est en retard", "les élèves attendent à la gare"),
    ("la boulangerie ouvre", "le boulanger vend du pain frais"),
    ("l'école est finie", "les enfants courent au parc"),
    ("ma sœur a faim", "elle mange une pomme"),
    ("notre voisin part en vacances", "nous arrosons ses fleurs"),
    ("le marché ferme", "les fermiers rentrent à la maison"),
    ("mes amis viennent me voir", "je prépare un gâteau"),
)

WHEN_PAIRS_PAST = (
    ("il a commencé à pleuvoir", "les enfants sont rentrés dans la maison"),
    ("nous sommes arrivés à la gare", "le train était déjà là"),
    ("mon frère est rentré", "il avait très faim"),
    ("le film était fini", "nous sommes rentrés à pied"),
    ("l'institutrice a ouvert la porte", "les élèves étaient calmes"),
    ("Marie a vu le gâteau", "elle a souri"),
    ("le soleil est revenu", "nous sommes allés à la plage"),
    ("ma grand-mère a appelé", "j'étais dans le jardin"),
    ("le boulanger a ouvert la boutique", "le pain était encore chaud"),
    ("nous sommes arrivés au lac", "l'eau était très froide"),
)


def _t_when(rng):
    if rng.random() < 0.55:
        a, b = rng.choice(WHEN_PAIRS)
    else:
        a, b = rng.choice(WHEN_PAIRS_PAST)
    if rng.random() < 0.7:
        return "Quand %s, %s." % (a, b)
    return _cap("%s quand %s." % (b, a))


DIRE = _v("dire", "dis", "dit", "disons", "disent", "dit")


def _t_say(rng):
    subj = _subject(rng, pronouns=False)
    tense = _tense(rng, ("present", "past"))
    key = rng.choice([k for k in NOUNS if "food" in _tags(k) or "thing" in _tags(k)])
    sg, pl, g, cls, _ = NOUNS[key]
    adj = _adj_for(rng, cls, avoid=COLOURS)
    plural = pl is not None and rng.random() < 0.4
    thing = Subj(_def(pl if plural else sg, g, plural), "3pl" if plural else "3sg", g)
    inner = "%s %s %s" % (thing.text, _etre(thing, tense), _agree_subj(adj, thing))
    return _cap("%s %s." % (_sv(subj, _conj(DIRE, subj, tense)), _join("que", inner)))


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

NLI_VERBS = ("acheter", "manger", "préparer", "lire", "écrire", "laver", "trouver", "perdre",
             "peindre", "réparer", "planter", "cueillir", "vendre")


def _event(rng):
    """A past event with an indefinite object: returns the pieces the NLI/QA builders need."""
    entry = rng.choice([e for e in TRANSITIVE if e[0][0] in NLI_VERBS])
    verb = entry[0]
    subj = _subject(rng, pronouns=False)
    key = rng.choice([k for k in _nouns_with(entry[1]) if NOUNS[k][1]])
    sg, pl, g, cls, _ = NOUNS[key]
    plural = rng.random() < 0.35
    return entry, verb, subj, key, g, cls, plural


def _nli_event(rng, label):
    entry, verb, subj, key, g, cls, plural = _event(rng)
    adj = _adj_for(rng, cls)
    if plural:
        num = rng.choice(("deux", "trois", "quatre"))
        obj = num + " " + _head(key, True, adj)
        bare = num + " " + _head(key, True)
    else:
        art = "un " if g == "m" else "une "
        obj, bare = art + _head(key, False, adj), art + _head(key, False)
    obj_def = _def(_head(key, plural), g, plural)
    neg_obj = _join("de", _head(key, plural))
    place = _place_for(rng, entry, key)
    if place == "à la maison":
        place = "dans la cuisine"
    time = _time(rng, "past")
    did = _sv(subj, _conj(verb, subj, "past"))
    premise = _cap("%s %s %s %s." % (did, obj, place, time))
    thing = Subj(obj_def, "3pl" if plural else "3sg", g)
    etait = _etre(subj, "past")
    if label == 0:
        opts = ["%s %s." % (did, bare),
                "Quelqu'un %s %s %s." % (_conj(verb, Subj("x", "3sg", "m"), "past"), obj,
                                         place),
                "%s %s %s %s." % (subj.text, etait, place, time),
                "%s quelque chose %s." % (did, time)]
    elif label == 2:
        opts = ["%s %s." % (_sv(subj, _conj(verb, subj, "past", "rien")), time),
                "%s %s %s." % (_sv(subj, _conj(verb, subj, "past", "pas")), neg_obj, place),
                "Personne n'a %s %s %s %s." % (verb[2], neg_obj, place, time)]
        ant = _antonym(adj, cls)
        if ant:
            opts.append("%s %s %s." % (thing.text, _etre(thing, "past"), _agree_subj(ant, thing)))
    else:
        other = _relative(rng, subj)[0]
        ant = _antonym(adj, cls)
        avoid = {adj, ant}
        if adj in COLOURS:
            avoid |= set(COLOURS)
        neutral_adj = _adj_for(rng, cls, avoid=avoid)
        opts = ["%s %s %s avec %s." % (subj.text, etait, place, other),
                "%s %s très %s %s." % (subj.text, etait, _agree_subj("content", subj), time)]
        if verb[0] in ("acheter", "préparer", "cueillir", "peindre", "réparer", "laver",
                       "trouver"):
            opts.append("%s %s pour %s." % (did, obj_def, other))
        if neutral_adj:
            opts.append("%s %s %s." % (thing.text, _etre(thing, "past"),
                                       _agree_subj(neutral_adj, thing)))
    return premise, _cap(rng.choice(opts))


def _nli_motion(rng, label):
    subj = _subject(rng, pronouns=False)
    if rng.random() < 0.4:
        dest = "à " + rng.choice(CITIES)
    else:
        dest = _loc(rng.choice(("marche", "gare", "bibliotheque", "musee", "plage", "hopital",
                                "cinema", "banque", "poste", "ferme", "lac", "universite")))
    how, vehicle = rng.choice([v for v in VEHICLES[:4] if dest[2:] in CITIES or
                               v[0] != "en train"])
    time = _time(rng, "past")
    went = _sv(subj, _conj(ALLER, subj, "past"))
    premise = _cap("%s %s %s %s." % (went, dest, how, time))
    etait = _etre(subj, "past")
    if label == 0:
        opts = ["%s %s." % (went, dest), "%s %s %s %s." % (subj.text, etait, dest, time),
                "%s de la maison %s." % (_sv(subj, _conj(SORTIR, subj, "past")), time)]
        if vehicle:
            opts.append("%s %s %s." % (_sv(subj, _conj(PRENDRE, subj, "past")), vehicle, time))
    elif label == 2:
        opts = ["%s %s %s." % (_sv(subj, _conj(ALLER, subj, "past", "pas")), dest, time),
                "%s de la maison %s." % (_sv(subj, _conj(SORTIR, subj, "past", "pas")), time)]
        if time in DAY_TIMES:
            opts.append("%s à la maison toute la journée %s." % (
                _sv(subj, _conj(RESTER, subj, "past")), time))
    else:
        other = _relative(rng, subj)[0]
        opts = ["%s %s pour voir %s." % (went, dest, other),
                "%s en retard au travail %s." % (_sv(subj, etait), time),
                "%s très %s %s." % (_sv(subj, etait), _agree_subj("fatigué", subj), time)]
        if vehicle in ("le bus", "le train"):
            opts.append("%s était plein." % _cap(vehicle))
        if vehicle == "la voiture":
            opts.append("La voiture était neuve.")
    return premise, _cap(rng.choice(opts))


STATE_WHERE = {
    "fruit": ("dans le panier", "dans la cuisine"), "veg": ("dans le panier",),
    "bakery": ("dans la cuisine",), "bread": ("dans la cuisine",), "dish": ("dans la cuisine",),
    "hotdrink": ("dans la tasse",), "hat": ("dans la vitrine",),
    "clothes": ("dans la vitrine",), "egg": ("dans le panier",),
}


def _nli_state(rng, label):
    keys = [k for k in NOUNS if any(_antonym(a, NOUNS[k][3]) for a in ADJ_CLASSES[NOUNS[k][3]])]
    key = rng.choice(keys)
    sg, pl, g, cls, _ = NOUNS[key]
    adj = rng.choice([a for a in ADJ_CLASSES[cls] if _antonym(a, cls)])
    ant = _antonym(adj, cls)
    plural = pl is not None and rng.random() < 0.35
    thing = Subj(_def(pl if plural else sg, g, plural), "3pl" if plural else "3sg", g)
    tense = _tense(rng, ("present", "past"))
    be, neg = _etre(thing, tense), _etre(thing, tense, neg=True)
    very = "très " if adj not in NOT_GRADABLE else ""
    where = ""
    if cls in STATE_WHERE and rng.random() < 0.6:
        where = " " + rng.choice(STATE_WHERE[cls])
    a, an = _agree_subj(adj, thing), _agree_subj(ant, thing)
    premise = _cap("%s%s %s %s%s." % (thing.text, where, be, very, a))
    if label == 0:
        opts = ["%s %s %s." % (thing.text, be, a), "%s %s %s." % (thing.text, neg, an)]
        opts = [o for o in opts if _cap(o) != premise] or opts
    elif label == 2:
        opts = ["%s %s %s." % (thing.text, neg, a), "%s %s %s." % (thing.text, be, an)]
    else:
        opts = []
        avoid = {adj, ant} | (set(COLOURS) if adj in COLOURS else set())
        other = _adj_for(rng, cls, avoid=avoid)
        if other:
            opts.append("%s %s %s." % (thing.text, be, _agree_subj(other, thing)))
        owner = _subject(rng, pronouns=False)
        tags = _tags(key)
        if "food" in tags or "thing" in tags or "clothes" in tags:
            shop = _loc(rng.choice(("marche", "magasin", "supermarche")))
            opts.append("%s %s %s." % (_sv(owner, _conj(TRANSITIVE[0][0], owner, "past")),
                                       thing.text, shop))
        aimer = ("aimer", ("aime", "aime", "aimons", "aiment"), "aimé", "avoir")
        opts.append("%s %s." % (_sv(owner, _conj(aimer, owner, "present")), thing.text))
    return premise, _cap(rng.choice(opts))


def _nli_because(rng, label):
    subj = _subject(rng, pronouns=False)
    kind = rng.choice(("malade", "fatigué", "pluie", "travail"))
    time = rng.choice(("hier", "lundi", "samedi", "dimanche dernier"))
    stayed = _sv(subj, _conj(RESTER, subj, "past"))
    premise = _cap("%s à la maison %s %s." % (stayed, time,
                                              _join("parce que", _reason(kind, subj, "past"))))
    etait = _sv(subj, _etre(subj, "past"))
    netait = _sv(subj, _etre(subj, "past", neg=True))
    netait_bare = netait[:-len(" pas")]
    if label == 0:
        opts = ["%s à la maison %s." % (stayed, time),
                "%s %s." % (_sv(subj, _conj(SORTIR, subj, "past", "pas")), time)]
        if kind in ("malade", "fatigué"):
            opts.append("%s %s %s." % (etait, _agree_subj(kind, subj), time))
        elif kind == "pluie":
            opts.append("Il a plu %s." % time)
        else:
            opts.append("%s beaucoup de travail %s." % (
                _sv(subj, _conj(AVOIR, subj, "imparfait")), time))
    elif label == 2:
        opts = ["%s toute la journée %s." % (_sv(subj, _conj(SORTIR, subj, "past")), time),
                "%s pas du tout à la maison %s." % (netait_bare, time)]
        if kind in ("malade", "fatigué"):
            opts.append("%s %s %s." % (netait, _agree_subj(kind, subj), time))
        elif kind == "pluie":
            opts.append("Il n'a pas plu %s." % time)
        else:
            opts.append("%s de travail %s." % (
                _sv(subj, _conj(AVOIR, subj, "imparfait", "pas")), time))
    else:
        other = _relative(rng, subj)[0]
        avoir = _conj(AVOIR, subj, "past").split()[0]
        opts = ["%s regardé un film %s." % (_sv(subj, avoir), time),
                "%s appelé %s %s." % (_sv(subj, avoir), other, time),
                "%s préparé une soupe pour le dîner %s." % (_sv(subj, avoir), time),
                "%s lu un livre dans la cuisine %s." % (_sv(subj, avoir), time)]
    return premise, _cap(rng.choice(opts))


_NLI_FRAMES = (_nli_event, _nli_event, _nli_motion, _nli_state, _nli_because)


def nli(rng):
    """(premise, hypothesis, label): 0 entailment, 1 neutral, 2 contradiction."""
    label = rng.randrange(3)
    premise, hyp = rng.choice(_NLI_FRAMES)(rng, label)
    return premise, hyp, label


# --------------------------------------------------------------------------------------------
# QA


def _qa_event(rng):
    entry, verb, subj, key, g, cls, plural = _event(rng)
    adj = _adj_for(rng, cls) if rng.random() < 0.6 else None
    if plural:
        obj = rng.choice(("deux", "trois", "quatre")) + " " + _head(key, True, adj)
    else:
        obj = ("un " if g == "m" else "une ") + _head(key, False, adj)
    obj_def = _def(_head(key, plural), g, plural)
    place = _place_for(rng, entry, key)
    time = _time(rng, "past")
    did = _conj(verb, subj, "past")
    context = [_cap("%s %s %s %s." % (_sv(subj, did), obj, place, time))]
    other = _subject(rng, pronouns=False)
    while other.text == subj.text:
        other = _subject(rng, pronouns=False)
    v2, places = rng.choice(INTRANSITIVE)
    context.append(_cap("%s %s." % (_sv(other, _conj(v2, other, "past")),
                                    _loc(rng.choice(places)))))
    if rng.random() < 0.5:
        context.reverse()
    q = rng.randrange(4)
    who3 = Subj("qui", "3sg", "m")
    if q == 0:
        question, answer = "Qui %s %s %s ?" % (_conj(verb, who3, "past"), obj_def, place), \
            subj.text
    elif q == 1:
        question, answer = "%s %s %s ?" % (_join("Qu'est-ce que", subj.text), did, place), obj
    elif q == 2:
        question, answer = "%s %s %s ?" % (_join("Où est-ce que", subj.text), did, obj_def), \
            place
    else:
        question, answer = "%s %s %s ?" % (_join("Quand est-ce que", subj.text), did,
                                           obj_def), time
    return " ".join(context), question, answer


WORKPLACES = ("hopital", "boulangerie", "bibliotheque", "banque", "poste", "ecole", "marche",
              "musee", "bureau", "ferme", "magasin", "universite", "supermarche")


def _qa_home(rng):
    name, g = rng.choice(NAMES)
    subj = Subj(name, "3sg", g)
    city = rng.choice(CITIES)
    work = _loc(rng.choice(WORKPLACES))
    rel, rg, _ = rng.choice([r for r in RELATIVES if not r[2]])
    name2 = rng.choice([n for n, ng in NAMES if n != name and ng == rg])
    city2 = rng.choice([c for c in CITIES if c != city])
    context = "%s habite à %s. %s travaille %s. %s %s habite à %s." % (
        name, city, _cap(subj.pron), work, _cap(_poss("3sg", rg, False, rel)), name2, city2)
    q = rng.randrange(4)
    if q == 0:
        return context, "Où habite %s ?" % name, city
    if q == 1:
        return context, "Où travaille %s ?" % name, work
    if q == 2:
        return context, "Qui habite à %s ?" % city2, name2
    return context, "Où habite %s ?" % name2, city2


def _qa_give(rng):
    name, g = rng.choice(NAMES)
    subj = Subj(name, "3sg", g)
    verb = rng.choice(GIVE_VERBS)
    key = rng.choice(_give_keys(verb[0] == "prêter"))
    sg, pl, ng, cls, _ = NOUNS[key]
    adj = _adj_for(rng, cls) if rng.random() < 0.5 else None
    head = _head(key, False, adj)
    if len(head.split()) > 2:
        head = sg
    obj = ("un " if ng == "m" else "une ") + head
    who, wg, wpl = _relative(rng, subj)
    did = _conj(verb, subj, "past")
    time = _time(rng, "past")
    context = "%s %s %s %s %s." % (name, did, obj, _a(who), time)
    if rng.random() < 0.5:
        w = Subj(who, "3pl" if wpl else "3sg", wg)
        context += " %s %s très %s." % (_cap(who), _etre(w, "past"), _agree_subj("content", w))
    q = rng.randrange(3)
    if q == 0:
        return context, "%s %s %s ?" % (_join("Qu'est-ce que", name), did, _a(who)), obj
    if q == 1:
        return context, "%s %s %s ?" % (_join("À qui est-ce que", name), did,
                                        _def(sg, ng)), who
    return context, "%s %s %s %s ?" % (_join("Quand est-ce que", name), did, _def(sg, ng),
                                       _a(who)), time


def _qa_trip(rng):
    a, ag = rng.choice(NAMES)
    b, bg = rng.choice([n for n in NAMES if n[0] != a])
    both_f = ag == "f" and bg == "f"
    pair = Subj("%s et %s" % (a, b), "3pl", "f" if both_f else "m")
    city = rng.choice(CITIES)
    how = rng.choice(VEHICLES[:3])[0]
    time = rng.choice([t for t in TIMES["past"] if "heure" not in t])
    act = rng.choice((("vu", "de vieux tableaux", "musee"), ("acheté", "une petite carte",
                                                             "musee"),
                      ("acheté", "du fromage frais", "marche"),
                      ("mangé", "du poisson frais", "restaurant"),
                      ("trouvé", "de jolis coquillages", "plage"),
                      ("vu", "beaucoup de canards", "lac"),
                      ("retrouvé", "de vieux amis", "parc")))
    place = _loc(act[2])
    went = _conj(ALLER, pair, "past")
    context = "%s %s à %s %s %s. %s ont %s %s %s." % (
        pair.text, went, city, how, time, _cap(pair.pron), act[0], act[1], place)
    q = rng.randrange(4)
    if q == 0:
        return context, "Où %s %s ?" % (went, pair.text), city
    if q == 1:
        return context, "%s %s à %s ?" % (_join("Comment est-ce que", pair.text), went,
                                          city), how
    if q == 2:
        return context, "%s %s à %s ?" % (_join("Quand est-ce que", pair.text), went,
                                          city), time
    what = "Qui est-ce" if act[0] == "retrouvé" else "Qu'est-ce"
    return context, "%s %s ont %s %s ?" % (what, _join("que", pair.pron), act[0], place), \
        act[1]


_QA = (_qa_event, _qa_event, _qa_home, _qa_give, _qa_trip)


def qa(rng):
    """(context, question, answer) with the answer a 1-3 word span of the context."""
    while True:
        context, question, answer = rng.choice(_QA)(rng)
        if answer in context and 1 <= len(answer.split()) <= 3:
            return context, question, answer


# --------------------------------------------------------------------------------------------

PROMPTS = [
    "Hier, mon frère est allé",
    "Les enfants dans le parc",
    "Ma grand-mère prépare toujours",
    "Au marché, nous avons acheté",
    "Ce matin, il faisait",
    "L'institutrice a dit aux élèves",
    "Le dimanche, ma famille",
    "Le boulanger a ouvert",
    "Notre voisin a une",
    "Quand il pleut, nous",
    "Le train pour Lyon était",
    "Après l'école, les enfants",
    "Mon père travaille à",
    "Dans la cuisine, il y a",
    "Marie ne trouvait pas",
    "Tous les matins, ma mère boit",
    "Le vieil homme à la gare",
    "L'été dernier, nous sommes allés",
    "Pierre a acheté un nouveau",
    "La soupe dans la cuisine",
    "Ma sœur veut acheter",
    "Le magasin près de la banque",
    "Nous sommes restés à la maison",
    "Demain, mes amis vont",
]
