"""English demo grammar: a hand-written generative grammar by the neuron-pilot authors.

Small word lists (nouns with plurals, verbs with their written-out forms, adjectives sorted by
what they can describe, places, times, names) and sentence templates with the agreement rules
English needs (a/an, third person -s, was/were, did not + base form). Plain everyday topics:
family, market, school, weather, travel, food, work. Demo data, not natural corpus text.

Every function takes a ``random.Random`` and draws only from it, so output is deterministic.
"""

LANG = "en"
NAME = "English"
SCRIPT = "Latin"

XNLI_WORDS = {"right": "right", "yes": "Yes", "also": "Also", "no": "No"}

# --------------------------------------------------------------------------------------------
# people

NAMES = (
    ("Anna", "f"), ("Tom", "m"), ("Maria", "f"), ("David", "m"), ("Sarah", "f"), ("Peter", "m"),
    ("Lucy", "f"), ("James", "m"), ("Emma", "f"), ("Paul", "m"), ("Laura", "f"), ("Mark", "m"),
    ("Helen", "f"), ("Daniel", "m"), ("Kate", "f"), ("Simon", "m"),
)

# noun phrases used as subjects: (text, gender or "pl")
SUBJECT_NPS = (
    ("my brother", "m"), ("my sister", "f"), ("my mother", "f"), ("my father", "m"),
    ("my grandmother", "f"), ("my grandfather", "m"), ("my aunt", "f"), ("my uncle", "m"),
    ("our neighbour", "m"), ("the teacher", "f"), ("the baker", "m"), ("my cousin", "f"),
    ("the old man", "m"), ("the young woman", "f"),
    ("my parents", "pl"), ("the children", "pl"), ("our neighbours", "pl"), ("my friends", "pl"),
    ("the students", "pl"), ("my grandparents", "pl"),
)

# relatives and friends used after a possessive: (noun, gender or "pl")
RELATIVES = (
    ("brother", "m"), ("sister", "f"), ("mother", "f"), ("father", "m"), ("grandmother", "f"),
    ("grandfather", "m"), ("aunt", "f"), ("uncle", "m"), ("cousin", "m"), ("friend", "f"),
    ("neighbour", "m"), ("teacher", "f"), ("colleague", "m"), ("son", "m"), ("daughter", "f"),
    ("friends", "pl"), ("grandparents", "pl"), ("parents", "pl"), ("colleagues", "pl"),
)

PRON = {
    # person key: subject, object, possessive, be-present, be-past, 3sg?
    "m": ("he", "him", "his", "is", "was", True),
    "f": ("she", "her", "her", "is", "was", True),
    "pl": ("they", "them", "their", "are", "were", False),
    "1sg": ("I", "me", "my", "am", "was", False),
    "1pl": ("we", "us", "our", "are", "were", False),
}

# --------------------------------------------------------------------------------------------
# things: key -> (singular, plural, adjective class, tags); plural None = mass noun

NOUNS = {
    "apple": ("apple", "apples", "produce", "food fruit pick wash"),
    "pear": ("pear", "pears", "produce", "food fruit pick wash"),
    "orange": ("orange", "oranges", "produce", "food fruit"),
    "lemon": ("lemon", "lemons", "produce", "food fruit"),
    "banana": ("banana", "bananas", "produce", "food fruit"),
    "tomato": ("tomato", "tomatoes", "veg", "food veg wash"),
    "potato": ("potato", "potatoes", "veg", "food veg cook"),
    "carrot": ("carrot", "carrots", "veg", "food veg cook wash"),
    "onion": ("onion", "onions", "veg", "food veg"),
    "cucumber": ("cucumber", "cucumbers", "veg", "food veg"),
    "melon": ("melon", "melons", "produce", "food fruit"),
    "egg": ("egg", "eggs", "egg", "food cook"),
    "cake": ("cake", "cakes", "bakery", "food bake"),
    "pie": ("pie", "pies", "bakery", "food bake"),
    "loaf": ("loaf of bread", "loaves of bread", "bread", "food bake"),
    "pizza": ("pizza", "pizzas", "bread", "food bake"),
    "biscuit": ("biscuit", "biscuits", "bakery", "food bake"),
    "sandwich": ("sandwich", "sandwiches", "bread", "food"),
    "fish": ("fish", "fish", "fish", "food cook"),
    "soup": ("soup", None, "dish", "food cook order"),
    "rice": ("rice", None, "dish", "food cook"),
    "cheese": ("cheese", None, "cheese", "food"),
    "tea": ("tea", None, "hotdrink", "drink order"),
    "coffee": ("coffee", None, "hotdrink", "drink order"),
    "milk": ("milk", None, "milk", "drink"),
    "juice": ("orange juice", None, "juice", "drink order"),
    "water": ("water", None, "water", "drink"),
    "book": ("book", "books", "doc", "thing read"),
    "newspaper": ("newspaper", "newspapers", "doc", "read thing"),
    "letter": ("letter", "letters", "doc", "read write open"),
    "story": ("story", "stories", "art", "read write"),
    "list": ("shopping list", "shopping lists", "doc", "write"),
    "map": ("map", "maps", "map", "thing"),
    "bag": ("bag", "bags", "thing", "thing carry open lose pack"),
    "box": ("box", "boxes", "thing", "thing carry open"),
    "suitcase": ("suitcase", "suitcases", "thing", "thing carry open pack"),
    "basket": ("basket", "baskets", "thing", "thing carry"),
    "lamp": ("lamp", "lamps", "thing", "thing fix"),
    "chair": ("chair", "chairs", "thing", "thing fix paint carry"),
    "table": ("table", "tables", "thing", "thing fix paint clean"),
    "clock": ("clock", "clocks", "thing", "thing fix"),
    "cup": ("cup", "cups", "thing", "thing wash"),
    "plate": ("plate", "plates", "thing", "thing wash"),
    "bicycle": ("bicycle", "bicycles", "thing", "thing fix clean ride"),
    "car": ("car", "cars", "thing", "fix clean"),
    "key": ("key", "keys", "small", "lose"),
    "ticket": ("ticket", "tickets", "small", "lose"),
    "umbrella": ("umbrella", "umbrellas", "thing", "thing lose"),
    "wallet": ("wallet", "wallets", "thing", "thing lose"),
    "phone": ("phone", "phones", "thing", "thing lose fix"),
    "radio": ("radio", "radios", "thing", "thing fix"),
    "picture": ("picture", "pictures", "picture", "paint draw"),
    "door": ("door", "doors", "fixed", "paint open"),
    "window": ("window", "windows", "fixed", "open clean"),
    "fence": ("fence", "fences", "fixed", "paint"),
    "ball": ("ball", "balls", "thing", "thing"),
    "kite": ("kite", "kites", "thing", "thing"),
    "guitar": ("guitar", "guitars", "thing", "thing"),
    "blanket": ("blanket", "blankets", "thing", "thing wash"),
    "flower": ("flower", "flowers", "flower", "flower plant pick"),
    "tree": ("tree", "trees", "tree", "plant draw"),
    "coat": ("coat", "coats", "clothes", "clothes"),
    "hat": ("hat", "hats", "hat", "clothes"),
    "shirt": ("shirt", "shirts", "clothes", "clothes"),
    "dress": ("dress", "dresses", "clothes", "clothes"),
    "scarf": ("scarf", "scarves", "clothes", "clothes"),
    "jacket": ("jacket", "jackets", "clothes", "clothes"),
    "sweater": ("sweater", "sweaters", "clothes", "clothes"),
    "skirt": ("skirt", "skirts", "clothes", "clothes"),
    "film": ("film", "films", "art", "watch"),
    "match": ("football match", "football matches", "match", "watch"),
    "song": ("song", "songs", "art", "sing"),
    "house": ("house", "houses", "tree", "draw"),
}

COLOURS = ("red", "blue", "green", "yellow", "black", "white", "brown", "grey")

ADJ_CLASSES = {
    "produce": ("fresh", "ripe", "sweet", "big", "small", "juicy"),
    "veg": ("fresh", "big", "small"),
    "egg": ("fresh", "big", "small", "brown", "white"),
    "bakery": ("fresh", "warm", "delicious", "big", "small", "sweet"),
    "bread": ("fresh", "warm", "delicious", "big", "small"),
    "fish": ("fresh", "big", "small", "delicious"),
    "dish": ("hot", "warm", "cold", "delicious"),
    "cheese": ("fresh", "delicious", "soft", "hard"),
    "hotdrink": ("hot", "cold", "strong", "sweet"),
    "milk": ("cold", "fresh"),
    "water": ("cold", "clean"),
    "juice": ("cold", "fresh", "sweet"),
    "doc": ("long", "short", "old", "new", "interesting"),
    "art": ("long", "short", "new", "old", "beautiful", "interesting", "funny"),
    "thing": COLOURS + ("big", "small", "new", "old", "heavy", "light", "cheap", "expensive",
                        "beautiful"),
    "small": ("small", "new", "old"),
    "fixed": COLOURS + ("big", "small", "old", "new"),
    "clothes": COLOURS + ("new", "old", "warm", "cheap", "expensive", "beautiful", "long",
                          "short"),
    "flower": ("red", "yellow", "white", "blue", "beautiful"),
    "tree": ("big", "small", "young", "old", "beautiful"),
    "match": ("long", "interesting", "exciting"),
    "map": ("big", "small", "old", "new"),
    "hat": COLOURS + ("new", "old", "warm", "cheap", "expensive", "beautiful"),
    "picture": ("big", "small", "beautiful", "old", "new", "funny"),
}

ANTONYMS = {
    "big": "small", "small": "big", "new": "old", "old": "new", "cheap": "expensive",
    "expensive": "cheap", "hot": "cold", "cold": "hot", "long": "short", "short": "long",
    "heavy": "light", "light": "heavy", "soft": "hard", "hard": "soft", "clean": "dirty",
    "dirty": "clean", "full": "empty", "empty": "full", "quiet": "noisy", "noisy": "quiet",
    "happy": "sad", "sad": "happy", "young": "old", "warm": "cold",
}

NOT_GRADABLE = set(COLOURS) | {"new", "ripe", "empty", "full"}

PERSON_ADJ = ("tired", "happy", "hungry", "busy", "sad", "ill", "angry", "calm", "nervous",
              "proud", "cheerful")

# --------------------------------------------------------------------------------------------
# places: key -> (noun phrase, locative, direction, "from" phrase or None, adjectives)

PLACES = {
    "market": ("the market", "at the market", "to the market", "from the market",
               ("busy", "quiet", "noisy", "big", "small")),
    "park": ("the park", "in the park", "to the park", None,
             ("quiet", "beautiful", "big", "green", "empty")),
    "school": ("the school", "at school", "to school", None, ("big", "small", "old", "new")),
    "station": ("the station", "at the station", "to the station", None,
                ("busy", "quiet", "noisy", "old", "new", "empty")),
    "bakery": ("the bakery", "at the bakery", "to the bakery", "from the bakery",
               ("small", "busy", "warm")),
    "office": ("the office", "at the office", "to the office", None,
               ("quiet", "noisy", "small", "big", "cold")),
    "kitchen": ("the kitchen", "in the kitchen", "into the kitchen", None,
                ("warm", "clean", "small", "big", "dirty")),
    "garden": ("the garden", "in the garden", "into the garden", "from the garden",
               ("beautiful", "green", "quiet", "small", "big")),
    "supermarket": ("the supermarket", "at the supermarket", "to the supermarket",
                    "from the supermarket", ("big", "busy", "empty", "new")),
    "library": ("the library", "at the library", "to the library", None,
                ("quiet", "old", "big", "new")),
    "cinema": ("the cinema", "at the cinema", "to the cinema", None, ("old", "new", "empty")),
    "hospital": ("the hospital", "at the hospital", "to the hospital", None,
                 ("big", "new", "old", "busy")),
    "beach": ("the beach", "at the beach", "to the beach", None,
              ("beautiful", "quiet", "empty", "busy")),
    "lake": ("the lake", "at the lake", "to the lake", None, ("beautiful", "quiet", "big")),
    "restaurant": ("the restaurant", "at the restaurant", "to the restaurant", None,
                   ("busy", "quiet", "expensive", "cheap", "new")),
    "cafe": ("the café", "at the café", "to the café", None,
             ("busy", "quiet", "small", "warm")),
    "museum": ("the museum", "at the museum", "to the museum", None,
               ("big", "old", "quiet", "interesting")),
    "post": ("the post office", "at the post office", "to the post office", None,
             ("small", "busy", "old")),
    "shop": ("the shop", "at the shop", "to the shop", "from the shop",
             ("small", "busy", "new", "expensive")),
    "farm": ("the farm", "on the farm", "to the farm", "from the farm",
             ("big", "small", "old", "quiet")),
    "bank": ("the bank", "at the bank", "to the bank", None, ("big", "new", "quiet")),
    "pool": ("the swimming pool", "at the swimming pool", "to the swimming pool", None,
             ("big", "new", "busy")),
    "university": ("the university", "at the university", "to the university", None,
                   ("big", "old", "new")),
    "home": (None, "at home", "home", None, ()),
}

CITIES = ("London", "Leeds", "York", "Bristol", "Glasgow", "Cardiff", "Oxford", "Dublin",
          "Brighton", "Chester")

# places one drives or rides to (trains only go to cities)
VEHICLE_PLACES = ("market", "school", "station", "farm", "beach", "lake", "hospital",
                  "university", "supermarket", "home", "office", "pool")

VEHICLES = (("by bus", "bus"), ("by train", "train"), ("by car", "car"), ("by bike", "bike"),
            ("on foot", None))

# --------------------------------------------------------------------------------------------
# verbs: base, 3sg present, past; object tags; places; allowed determiners

TRANSITIVE = (
    ("buy", "buys", "bought", "food flower thing clothes",
     ("market", "supermarket", "shop", "farm"), "a num the"),
    ("sell", "sells", "sold", "fruit veg flower clothes bake", ("market", "shop"), "a num"),
    ("eat", "eats", "ate", "fruit bake", ("kitchen", "garden", "park", "cafe", "home"),
     "a num the"),
    ("bake", "bakes", "baked", "bake", ("kitchen", "home"), "a num"),
    ("cook", "cooks", "cooked", "cook", ("kitchen", "home"), "a num the mass"),
    ("read", "reads", "read", "read", ("park", "library", "kitchen", "garden", "cafe"),
     "a the poss"),
    ("write", "writes", "wrote", "write", ("office", "kitchen", "library", "cafe", "home"),
     "a the"),
    ("wash", "washes", "washed", "wash", ("kitchen", "garden", "home"), "the poss num"),
    ("carry", "carries", "carried", "carry", ("station", "market"), "a the poss"),
    ("find", "finds", "found", "lose thing", ("park", "garden", "kitchen", "station", "office"),
     "a the poss"),
    ("lose", "loses", "lost", "lose", ("park", "station", "market", "cinema", "library"),
     "the poss"),
    ("open", "opens", "opened", "open", ("kitchen", "office", "home"), "the poss"),
    ("paint", "paints", "painted", "paint", ("garden", "kitchen", "home"), "the a"),
    ("repair", "repairs", "repaired", "fix", ("garden", "kitchen", "office", "home"),
     "the poss"),
    ("drink", "drinks", "drank", "drink", ("cafe", "kitchen", "garden", "restaurant", "home"),
     "mass"),
    ("order", "orders", "ordered", "order", ("cafe", "restaurant"), "mass"),
    ("watch", "watches", "watched", "watch", ("cinema", "home"), "a the"),
    ("plant", "plants", "planted", "plant", ("garden", "park", "farm"), "a num"),
    ("pick", "picks", "picked", "pick", ("garden", "farm"), "num"),
    ("draw", "draws", "drew", "draw", ("school", "kitchen", "park"), "a"),
    ("pack", "packs", "packed", "pack", ("home",), "the poss"),
    ("clean", "cleans", "cleaned", "clean", ("garden", "home"), "the poss"),
    ("sing", "sings", "sang", "sing", ("school", "kitchen", "garden"), "a the"),
    ("choose", "chooses", "chose", "clothes read", ("shop", "market", "library"), "a"),
    ("look for", "looks for", "looked for", "lose", ("kitchen", "garden", "office", "park"),
     "the poss"),
)

PAST_ONLY = ("lose", "find", "look for")

# verbs whose object is a person: base, 3sg, past, places
PERSON_VERBS = (
    ("visit", "visits", "visited", ("hospital", "farm", None)),
    ("meet", "meets", "met", ("market", "station", "cafe", "park", "library")),
    ("call", "calls", "called", (None,)),
    ("help", "helps", "helped", ("kitchen", "garden", "office", "market")),
    ("wait for", "waits for", "waited for", ("station", "cafe", "school")),
)

INTRANSITIVE = (
    ("work", "works", "worked",
     ("office", "at the school", "hospital", "bakery", "market", "garden", "library", "bank",
      "farm", "shop", "home")),
    ("sleep", "sleeps", "slept", ("home", "garden")),
    ("play", "plays", "played", ("park", "garden", "kitchen", "on the beach")),
    ("walk", "walks", "walked", ("park", "on the beach", "by the river")),
    ("run", "runs", "ran", ("park", "on the beach", "by the river")),
    ("swim", "swims", "swam", ("in the lake", "pool", "in the river", "in the sea")),
    ("dance", "dances", "danced", ("kitchen", "garden", "school")),
    ("wait", "waits", "waited", ("station", "cafe", "post", "bank", "school")),
    ("study", "studies", "studied", ("library", "school", "university", "home")),
    ("rest", "rests", "rested", ("garden", "home", "park")),
    ("have lunch", "has lunch", "had lunch", ("restaurant", "cafe", "kitchen", "park")),
    ("have breakfast", "has breakfast", "had breakfast", ("kitchen", "cafe", "home", "garden")),
    ("sing", "sings", "sang", ("school", "kitchen", "garden")),
    ("read", "reads", "read", ("library", "park", "garden", "home")),
)

MOTION = (("go", "goes", "went"), ("come", "comes", "came"), ("travel", "travels", "travelled"))

GIVE_VERBS = (("give", "gives", "gave"), ("bring", "brings", "brought"),
              ("send", "sends", "sent"), ("show", "shows", "showed"),
              ("lend", "lends", "lent"))

# --------------------------------------------------------------------------------------------
# times by tense

TIMES = {
    "past": ("yesterday", "last week", "on Monday", "on Saturday", "this morning", "last night",
             "yesterday evening", "two days ago", "last summer", "on Sunday afternoon",
             "last year", "an hour ago"),
    "present": ("every day", "every morning", "on Saturdays", "on Sundays", "in the evening",
                "at the weekend", "every week", "in the afternoon"),
    "future": ("tomorrow", "next week", "on Friday", "tomorrow morning", "next summer",
               "this evening", "on Sunday", "next month"),
}
DAY_TIMES = ("yesterday", "on Monday", "on Saturday")

NUMBERS = ("two", "three", "four", "some", "a few")


# --------------------------------------------------------------------------------------------
# helpers


def _cap(s):
    return s[0].upper() + s[1:]


def _a(word):
    return "an" if word[0] in "aeiou" else "a"


def _loc(place):
    return PLACES[place][1] if place in PLACES else place


def _tags(key):
    return NOUNS[key][3].split()


def _nouns_with(tags):
    want = tags.split()
    return [k for k in NOUNS if any(t in want for t in _tags(k))]


def _subject(rng, pronouns=True):
    r = rng.random()
    if pronouns and r < 0.12:
        return ("I", "1sg") if rng.random() < 0.5 else ("we", "1pl")
    if r < 0.55:
        name, g = rng.choice(NAMES)
        return name, g
    text, g = rng.choice(SUBJECT_NPS)
    return text, g


def _third(person):
    return PRON[person][5]


def _verb(forms, person, tense, neg=False):
    base, s, past = forms
    if tense == "present":
        if neg:
            return ("does not " if _third(person) else "do not ") + base
        return s if _third(person) else base
    if tense == "past":
        return "did not " + base if neg else past
    return ("will not " if neg else "will ") + base


def _be(person, tense, neg=False):
    if tense == "future":
        return "will not be" if neg else "will be"
    form = PRON[person][3] if tense == "present" else PRON[person][4]
    return form + " not" if neg else form


def _adj_for(rng, cls, avoid=()):
    opts = [a for a in ADJ_CLASSES[cls] if a not in avoid]
    return rng.choice(opts) if opts else None


def _np(rng, key, det, adj=None, poss="his"):
    """Noun phrase for a thing. det: a, num, the, poss, mass."""
    sg, pl, cls, _ = NOUNS[key]
    if pl is None:
        det = det if det in ("the", "poss") else "mass"
    head = sg
    if det == "num":
        head = pl
    if adj:
        head = adj + " " + head
    if det == "a":
        return _a(head) + " " + head
    if det == "num":
        return rng.choice(NUMBERS) + " " + head
    if det == "the":
        return "the " + head
    if det == "poss":
        return poss + " " + head
    # mass
    return rng.choice(("some ", "")) + head


def _relative(rng, poss, avoid=""):
    """A relative or friend after a possessive, sensible for the subject ``avoid``."""
    bad = set()
    if "grand" in avoid or "old man" in avoid:
        bad = {"grandmother", "grandfather", "grandparents", "parents", "mother", "father",
               "teacher"}
    elif "children" in avoid or "students" in avoid:
        bad = {"son", "daughter", "colleague", "colleagues"}
    while True:
        noun, g = rng.choice(RELATIVES)
        if noun not in avoid and noun not in bad:
            return poss + " " + noun, g


def _time(rng, tense):
    return rng.choice(TIMES[tense])


def _tense(rng, allow=("past", "present", "future")):
    return rng.choice(allow)


def _place_for(rng, verb, key):
    """A locative (or, for carry, a direction) that fits the verb and its object."""
    places = verb[4]
    if verb[0] in ("buy", "sell", "choose"):
        places = [p for p in places if _place_sells(p, key)] or ["market"]
    if key in ("car", "bicycle") and "garden" in places:
        places = ["garden"]
    return PLACES[rng.choice(places)][2 if verb[0] == "carry" else 1]


def _pick_object(rng, verb):
    keys = _nouns_with(verb[3])
    key = rng.choice(keys)
    dets = verb[5].split()
    if NOUNS[key][1] is None:
        dets = [d for d in dets if d in ("the", "poss", "mass")] or ["mass"]
    else:
        dets = [d for d in dets if d != "mass"] or ["a"]
    det = rng.choice(dets)
    if det == "poss" and "food" in _tags(key):
        det = "the"
    return key, det


# --------------------------------------------------------------------------------------------
# sentence templates


def _t_transitive(rng):
    subj, p = _subject(rng)
    verb = rng.choice(TRANSITIVE)
    tense = "past" if verb[0] in PAST_ONLY else _tense(rng)
    key, det = _pick_object(rng, verb)
    adj = _adj_for(rng, NOUNS[key][2]) if rng.random() < 0.6 else None
    obj = _np(rng, key, det, adj, poss=PRON[p][2])
    parts = [subj, _verb(verb[:3], p, tense), obj]
    if rng.random() < 0.7:
        parts.append(_place_for(rng, verb, key))
    parts.append(_time(rng, tense))
    if rng.random() < 0.3:
        parts = [_cap(parts[-1]) + ","] + parts[:-1]
    return " ".join(parts) + "."


def _t_intransitive(rng):
    subj, p = _subject(rng)
    verb = rng.choice(INTRANSITIVE)
    tense = _tense(rng)
    place = _loc(rng.choice(verb[3]))
    time = _time(rng, tense)
    if rng.random() < 0.35:
        return "%s, %s %s %s." % (_cap(time), subj, _verb(verb[:3], p, tense), place)
    extra = ""
    if rng.random() < 0.3 and p not in ("1sg", "1pl") and verb[0] != "sleep":
        other, _ = _relative(rng, PRON[p][2], avoid=subj)
        extra = " with " + other
    return "%s %s %s%s %s." % (subj, _verb(verb[:3], p, tense), place, extra, time)


def _t_motion(rng):
    subj, p = _subject(rng)
    tense = _tense(rng)
    forms = rng.choice(MOTION)
    city = forms[0] == "travel" or rng.random() < 0.3
    if city:
        dest = "to " + rng.choice(CITIES)
    else:
        key = rng.choice([k for k in PLACES if k not in ("kitchen", "garden")])
        dest = PLACES[key][2]
    how = ""
    if rng.random() < 0.6 and (city or key in VEHICLE_PLACES):
        how = " " + rng.choice([v for v in VEHICLES if (city and v[1]) or
                                (not city and v[1] != "train")])[0]
    return "%s %s %s%s %s." % (subj, _verb(forms, p, tense), dest, how, _time(rng, tense))


def _t_person_obj(rng):
    subj, p = _subject(rng)
    base, s3, past, places = rng.choice(PERSON_VERBS)
    tense = _tense(rng)
    who, _ = _relative(rng, PRON[p][2], avoid=subj)
    place = rng.choice(places)
    place = " " + PLACES[place][1] if place else ""
    time = _time(rng, tense)
    if rng.random() < 0.3:
        return "%s, %s %s %s%s." % (_cap(time), subj, _verb((base, s3, past), p, tense), who,
                                    place)
    return _cap("%s %s %s%s %s." % (subj, _verb((base, s3, past), p, tense), who, place, time))


def _t_thing_adj(rng):
    key = rng.choice(list(NOUNS))
    sg, pl, cls, _ = NOUNS[key]
    adj = _adj_for(rng, cls)
    plural = pl is not None and rng.random() < 0.4
    head = pl if plural else sg
    person = "pl" if plural else "m"
    det = "the "
    if any(t in ("thing", "clothes") for t in _tags(key)) and rng.random() < 0.4:
        det = rng.choice(("our ", "my "))
    from_places = [k for k in PLACES if PLACES[k][3] and _place_sells(k, key)]
    mod = ""
    if from_places and det == "the " and rng.random() < 0.5:
        mod = " " + PLACES[rng.choice(from_places)][3]
    tense = _tense(rng, ("present", "past"))
    very = "very " if adj not in NOT_GRADABLE and rng.random() < 0.5 else ""
    tail = ""
    if rng.random() < 0.4 and adj in ("fresh", "warm", "hot", "cold", "delicious"):
        tail = " " + rng.choice(("today", "this morning")) if tense == "present" else \
            " " + rng.choice(("yesterday", "this morning"))
        if tense == "present" and tail == " this morning":
            tail = " today"
    return _cap("%s%s%s %s %s%s%s." % (det, head, mod, _be(person, tense), very, adj, tail))


def _place_sells(place, key):
    tags = _tags(key)
    if place == "bakery":
        return "bake" in tags
    if place in ("market", "supermarket", "farm"):
        return "food" in tags or "flower" in tags or (place == "market" and "clothes" in tags)
    if place == "library":
        return "read" in tags
    if place == "garden":
        return "fruit" in tags or "veg" in tags or "flower" in tags
    if place == "shop":
        return "thing" in tags or "clothes" in tags
    return False


def _t_person_adj(rng):
    subj, p = _subject(rng)
    tense = _tense(rng)
    adj = rng.choice(PERSON_ADJ)
    very = "very " if rng.random() < 0.5 else ""
    time = rng.choice(("yesterday", "last night", "this morning", "on Monday", "on Saturday")) \
        if tense == "past" else rng.choice(("tomorrow", "this evening", "tomorrow morning"))
    if tense == "present":
        time = rng.choice(("today", "this morning", "now")) if rng.random() < 0.7 else \
            "in the evening"
    reason = ""
    if tense != "present" and rng.random() < 0.35:
        reason = " after " + rng.choice(("work", "school", "the long trip", "the party",
                                          "the match", "dinner"))
        time = rng.choice(("yesterday", "on Monday", "on Saturday") if tense == "past" else
                          ("tomorrow", "on Saturday"))
    return _cap("%s %s %s%s%s %s." % (subj, _be(p, tense), very, adj, reason, time))


WEATHER_TIMES = {
    "present": ("today", "this morning"),
    "past": ("yesterday", "on Monday", "on Saturday", "last week", "last night", "this morning"),
    "future": ("tomorrow", "on Friday", "on Sunday", "next week", "tomorrow morning"),
}
WHOLE_DAYS = ("yesterday", "on Monday", "on Saturday", "tomorrow", "on Friday", "on Sunday")


def _t_weather(rng):
    tense = _tense(rng)
    city = rng.choice(CITIES)
    time = rng.choice(WEATHER_TIMES[tense])
    r = rng.random()
    pair = rng.choice((("cold", "windy"), ("warm", "sunny"), ("cold", "wet"), ("hot", "dry"),
                       ("grey", "foggy"), ("cool", "cloudy"), ("sunny", "windy")))
    if r < 0.5:
        be = {"present": "is", "past": "was", "future": "will be"}[tense]
        return "It %s %s and %s in %s %s." % (be, pair[0], pair[1], city, time)
    verb = rng.choice((("rain", "is raining", "rained", "will rain"),
                       ("snow", "is snowing", "snowed", "will snow")))
    form = {"present": verb[1], "past": verb[2], "future": verb[3]}[tense]
    extra = rng.choice(("", " all day", " a lot")) if time in WHOLE_DAYS else ""
    return "It %s%s in %s %s." % (form, extra, city, time)


# main clause / reason pairs for "because"; each main: (tense) -> text using S and forms
BECAUSE = (
    # (main verb phrase forms (base, 3sg, past) + tail, reasons)
    (("stay", "stays", "stayed"), "at home", ("ill", "tired", "rain", "cold", "work")),
    (("go", "goes", "went"), "to bed early", ("tired", "ill", "early")),
    (("take", "takes", "took"), "an umbrella", ("rain",)),
    (("wear", "wears", "wore"), "a warm coat", ("cold",)),
    (("open", "opens", "opened"), "the window", ("hot",)),
    (("eat", "eats", "ate"), "a big sandwich", ("hungry",)),
    (("go", "goes", "went"), "to the bakery", ("hungry", "bread")),
    (("buy", "buys", "bought"), "a new lamp", ("broken",)),
    (("take", "takes", "took"), "the bus", ("rain", "cold", "late")),
    (("sing", "sings", "sang"), "in the kitchen", ("visit", "happy")),
    (("call", "calls", "called"), "the doctor", ("ill",)),
    (("walk", "walks", "walked"), "to the market", ("sunny",)),
)


def _reason(rng, kind, p, tense):
    pron = PRON[p][0]
    be = _be(p, tense)
    third = _third(p)
    if kind in ("ill", "tired", "hungry", "happy"):
        return "%s %s %s" % (pron, be, kind)
    if kind == "rain":
        return "it " + {"present": "is raining", "past": "was raining"}[tense]
    if kind == "cold":
        return "it " + {"present": "is", "past": "was"}[tense] + " very cold outside"
    if kind == "hot":
        return "it " + {"present": "is", "past": "was"}[tense] + " hot in the room"
    if kind == "sunny":
        return "the weather " + {"present": "is", "past": "was"}[tense] + " nice"
    if kind == "work":
        have = ("has" if third else "have") if tense == "present" else "had"
        return "%s %s a lot of work" % (pron, have)
    if kind == "early":
        have = ("has" if third else "have") if tense == "present" else "had"
        return "%s %s to get up early" % (pron, have)
    if kind == "bread":
        need = ("needs" if third else "need") if tense == "present" else "needed"
        return "%s %s fresh bread" % (pron, need)
    if kind == "broken":
        return "the old one " + {"present": "is", "past": "was"}[tense] + " broken"
    if kind == "late":
        return "%s %s late" % (pron, be)
    if kind == "visit":
        v = ("visit" if tense == "present" else "visited")
        return "%s friends %s %s" % (PRON[p][2], v, PRON[p][1])
    raise KeyError(kind)


def _t_because(rng):
    subj, p = _subject(rng)
    forms, tail, reasons = rng.choice(BECAUSE)
    tense = _tense(rng, ("present", "past"))
    kind = rng.choice(reasons)
    time = ""
    if rng.random() < 0.4:
        time = " " + (rng.choice(("today", "this morning")) if tense == "present"
                      else rng.choice(("yesterday", "last night", "on Monday")))
        if tense == "present" and tail == "to bed early":
            time = " today"
    return _cap("%s %s %s%s because %s." % (subj, _verb(forms, p, tense), tail, time,
                                            _reason(rng, kind, p, tense)))


def _t_modal(rng):
    subj, p = _subject(rng)
    verb = rng.choice([v for v in TRANSITIVE if v[0] not in ("lose", "find", "carry", "open",
                                                             "look for")])
    key, det = _pick_object(rng, verb)
    adj = _adj_for(rng, NOUNS[key][2]) if rng.random() < 0.5 else None
    obj = _np(rng, key, det, adj, poss=PRON[p][2])
    third = _third(p)
    modal = rng.choice((("wants to", "want to"), ("would like to", "would like to"),
                        ("has to", "have to"), ("can", "can"), ("likes to", "like to")))
    m = modal[0] if third else modal[1]
    place = ""
    if rng.random() < 0.6:
        place = " " + _place_for(rng, verb, key)
    time = ""
    if modal[0] in ("wants to", "would like to", "has to") and rng.random() < 0.5:
        time = " " + _time(rng, "future")
    if modal[0] == "likes to":
        time = " " + _time(rng, "present") if rng.random() < 0.5 else ""
    if modal[0] == "likes to" and obj.startswith("some "):
        obj = obj[5:]
    return _cap("%s %s %s %s%s%s." % (subj, m, verb[0], obj, place, time))


def _t_coordination(rng):
    tense = _tense(rng)
    s1, p1 = _subject(rng, pronouns=False)
    s2, p2 = _subject(rng, pronouns=False)
    if s1 == s2:
        s2, p2 = "I", "1sg"
    v1 = rng.choice([v for v in TRANSITIVE if tense == "past" or v[0] not in PAST_ONLY])
    k1, d1 = _pick_object(rng, v1)
    o1 = _np(rng, k1, d1, None, poss=PRON[p1][2])
    v2 = rng.choice([v for v in INTRANSITIVE if v[0] != v1[0]])
    place = _loc(rng.choice(v2[3]))
    if rng.random() < 0.5:
        body = "%s %s %s and %s %s %s" % (s1, _verb(v1[:3], p1, tense), o1, s2,
                                          _verb(v2[:3], p2, tense), place)
    else:
        body = "%s %s %s and then %s %s" % (s1, _verb(v1[:3], p1, tense), o1,
                                            _verb(v2[:3], p1, tense) if tense != "future"
                                            else v2[0], place)
    return _cap("%s %s." % (body, _time(rng, tense)))


def _t_there(rng):
    r = rng.random()
    if r < 0.5:
        key = rng.choice([k for k in PLACES if PLACES[k][0] and k not in
                          ("home", "school", "kitchen", "garden")])
        near = rng.choice([k for k in PLACES if PLACES[k][0] and k != key and k not in
                           ("kitchen", "garden", "home")])
        adj = rng.choice(PLACES[key][4])
        noun = PLACES[key][0][4:]
        prep = rng.choice(("near", "next to", "behind", "opposite"))
        tense = rng.choice(("is", "was"))
        return "There %s %s %s %s %s %s." % (tense, _a(adj), adj, noun, prep, PLACES[near][0])
    key = rng.choice([k for k in PLACES if k in ("market", "park", "station", "beach", "museum",
                                                   "supermarket", "cafe", "library", "pool")])
    tense = rng.choice((("are", "today"), ("were", "yesterday"), ("are", "at the weekend"),
                        ("were", "last Saturday")))
    q = rng.choice(("many people", "a lot of people", "only a few people", "lots of children",
                    "many tourists"))
    return "There %s %s %s %s." % (tense[0], q, PLACES[key][1], tense[1])


def _give_keys(lend=False):
    """Things one gives (food and flowers too, except when lending)."""
    want = ("thing", "clothes") if lend else ("thing", "flower", "clothes", "bake")
    return [k for k in NOUNS if NOUNS[k][1] and any(t in want for t in _tags(k))]


def _t_give(rng):
    subj, p = _subject(rng)
    forms = rng.choice(GIVE_VERBS)
    tense = _tense(rng)
    key = rng.choice(_give_keys(forms[0] == "lend"))
    adj = _adj_for(rng, NOUNS[key][2]) if rng.random() < 0.5 else None
    obj = _np(rng, key, rng.choice(("a", "num")), adj)
    who, _ = _relative(rng, PRON[p][2], avoid=subj)
    if rng.random() < 0.5:
        body = "%s %s %s %s" % (subj, _verb(forms, p, tense), who, obj)
    else:
        body = "%s %s %s to %s" % (subj, _verb(forms, p, tense), obj, who)
    return _cap(body + " " + _time(rng, tense) + ".")


RELATIVE_JOBS = (
    ("the man", "m", ("sell", "sells", "sold"), "fish", "at the market"),
    ("the woman", "f", ("sell", "sells", "sold"), "flowers", "at the market"),
    ("the girl", "f", ("work", "works", "worked"), "", "at the bakery"),
    ("the boy", "m", ("play", "plays", "played"), "football", "in the park"),
    ("the woman", "f", ("work", "works", "worked"), "", "at the library"),
    ("the man", "m", ("drive", "drives", "drove"), "the bus", "to school"),
    ("the doctor", "f", ("work", "works", "worked"), "", "at the hospital"),
    ("the old man", "m", ("sell", "sells", "sold"), "newspapers", "at the station"),
    ("the teacher", "f", ("teach", "teaches", "taught"), "music", "at school"),
    ("the farmer", "m", ("sell", "sells", "sold"), "eggs", "at the market"),
)


def _t_relative(rng):
    head, g, forms, obj, place = rng.choice(RELATIVE_JOBS)
    tense = _tense(rng, ("present", "past"))
    inner = _verb(forms, g, tense) + (" " + obj if obj else "") + " " + place
    r = rng.random()
    if r < 0.4:
        adj = rng.choice(("friendly", "very friendly", "always cheerful", "very busy", "tired",
                          "kind") + (() if head in ("the boy", "the girl") else
                                     ("quite old", "very young")))
        tail = "%s %s" % (_be(g, tense), adj)
    elif r < 0.7:
        city = rng.choice(CITIES)
        tail = "%s in %s" % (_verb(("live", "lives", "lived"), g, tense), city)
    else:
        who, _ = _relative(rng, rng.choice(("my", "our")))
        tail = "%s %s" % (_verb(("know", "knows", "knew"), g, tense), who)
    return _cap("%s who %s %s." % (head, inner, tail))


WHEN_PAIRS = (
    ("it rains", "the children play in the kitchen"),
    ("it rains", "we stay at home"),
    ("it is sunny", "we eat lunch in the garden"),
    ("it is cold", "my mother makes a hot soup"),
    ("it snows", "the children build a snowman in the park"),
    ("the weather is nice", "my grandparents walk to the market"),
    ("my father comes home", "we have dinner together"),
    ("the bus is late", "the students wait at the station"),
    ("the shop opens", "the baker sells fresh bread"),
    ("school ends", "the children run to the park"),
    ("my sister is hungry", "she eats an apple"),
    ("our neighbour goes on holiday", "we water his flowers"),
    ("the market closes", "the farmers go home"),
    ("my friends visit me", "I bake a cake"),
)

WHEN_PAIRS_PAST = (
    ("it started to rain", "the children ran into the house"),
    ("we arrived at the station", "the train was already there"),
    ("my brother came home", "he was very hungry"),
    ("the film ended", "we walked home"),
    ("the teacher opened the door", "the students were quiet"),
    ("Anna saw the cake", "she smiled"),
    ("the sun came out", "we went to the beach"),
    ("my grandmother called", "I was in the garden"),
    ("the baker opened the shop", "the bread was still warm"),
    ("we got to the lake", "the water was very cold"),
)


def _t_when(rng):
    if rng.random() < 0.55:
        a, b = rng.choice(WHEN_PAIRS)
    else:
        a, b = rng.choice(WHEN_PAIRS_PAST)
    if rng.random() < 0.7:
        return "When %s, %s." % (a, b)
    return _cap("%s when %s." % (b, a))


def _t_say(rng):
    subj, p = _subject(rng, pronouns=False)
    tense = _tense(rng, ("present", "past"))
    say = _verb(("say", "says", "said"), p, tense)
    key = rng.choice([k for k in NOUNS if "food" in _tags(k) or "thing" in _tags(k)])
    sg, pl, cls, _ = NOUNS[key]
    adj = _adj_for(rng, cls, avoid=COLOURS)
    plural = pl is not None and rng.random() < 0.4
    head = pl if plural else sg
    return _cap("%s %s that the %s %s %s." % (subj, say, head,
                                              _be("pl" if plural else "m", tense), adj))


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

NLI_VERBS = ("buy", "eat", "bake", "cook", "read", "write", "wash", "find", "lose", "paint",
             "repair", "plant", "pick", "sell")


def _nli_event(rng, label):
    verb = rng.choice([v for v in TRANSITIVE if v[0] in NLI_VERBS])
    base, s3, past = verb[:3]
    subj, p = _subject(rng, pronouns=False)
    keys = [k for k in _nouns_with(verb[3]) if NOUNS[k][1]]
    key = rng.choice(keys)
    sg, pl, cls, _ = NOUNS[key]
    adj = _adj_for(rng, cls)
    plural = rng.random() < 0.35
    if plural:
        num = rng.choice(("two", "three", "four"))
        obj, bare, obj_def = "%s %s %s" % (num, adj, pl), "%s %s" % (num, pl), "the " + pl
        any_obj = "any " + pl
    else:
        obj, bare, obj_def = "%s %s %s" % (_a(adj), adj, sg), "%s %s" % (_a(sg), sg), "the " + sg
        any_obj = bare
    place = _place_for(rng, verb, key)
    if place == "at home":
        place = "in the kitchen"
    time = _time(rng, "past")
    premise = _cap("%s %s %s %s %s." % (subj, past, obj, place, time))
    was = _be(p, "past")
    person = "pl" if plural else "m"
    if label == 0:
        opts = ["%s %s %s." % (subj, past, bare),
                "Somebody %s %s %s." % (past, obj, place),
                "%s %s %s %s." % (subj, was, place, time),
                "%s %s something %s." % (subj, past, time)]
    elif label == 2:
        opts = ["%s did not %s anything %s." % (subj, base, time),
                "%s did not %s %s %s." % (subj, base, any_obj, place),
                "Nobody %s anything %s %s." % (past, place, time)]
        if adj in ANTONYMS and ANTONYMS[adj] in ADJ_CLASSES[cls]:
            opts.append("The %s %s %s." % (pl if plural else sg, _be(person, "past"),
                                           ANTONYMS[adj]))
    else:
        other, _ = _relative(rng, PRON[p][2], avoid=subj)
        avoid = {adj, ANTONYMS.get(adj, "")}
        if adj in COLOURS:
            avoid |= set(COLOURS)
        neutral_adj = _adj_for(rng, cls, avoid=avoid)
        opts = ["%s %s %s with %s." % (subj, was, place, other),
                "%s %s very happy %s." % (subj, was, time)]
        if base in ("buy", "bake", "cook", "pick", "paint", "repair", "wash", "find"):
            opts.append("%s %s %s for %s." % (subj, past, obj_def, other))
        if neutral_adj:
            opts.append("%s %s %s." % (_cap(obj_def), _be(person, "past"), neutral_adj))
    return premise, _cap(rng.choice(opts))


def _nli_motion(rng, label):
    subj, p = _subject(rng, pronouns=False)
    if rng.random() < 0.4:
        city = rng.choice(CITIES)
        dest, there = "to " + city, "in " + city
    else:
        key = rng.choice(("market", "station", "library", "museum", "beach", "hospital",
                          "cinema", "bank", "post", "farm", "lake", "university"))
        dest, there = PLACES[key][2], PLACES[key][1]
    how, vehicle = rng.choice([v for v in VEHICLES[:4] if dest.startswith("to ") and
                               dest[3:] in CITIES or v[1] != "train"])
    time = _time(rng, "past")
    premise = _cap("%s went %s %s %s." % (subj, dest, how, time))
    was = _be(p, "past")
    if label == 0:
        opts = ["%s went %s." % (subj, dest), "%s travelled %s %s." % (subj, how, time),
                "%s %s %s %s." % (subj, was, there, time), "%s left the house %s." % (subj, time)]
    elif label == 2:
        opts = ["%s did not go %s %s." % (subj, dest, time),
                "%s did not leave the house %s." % (subj, time)]
        if time in DAY_TIMES:
            opts.append("%s stayed at home all day %s." % (subj, time))
    else:
        other, _ = _relative(rng, PRON[p][2], avoid=subj)
        opts = ["%s went %s to see %s." % (subj, dest, other),
                "%s %s late for work %s." % (subj, was, time),
                "%s %s very tired %s." % (subj, was, time)]
        if vehicle in ("bus", "train"):
            opts.append("The %s was full." % vehicle)
        if vehicle == "car":
            opts.append("The car was new.")
    return premise, _cap(rng.choice(opts))


STATE_WHERE = {
    "produce": ("in the basket", "in the kitchen"), "veg": ("in the basket",),
    "bakery": ("in the kitchen",), "bread": ("in the kitchen",),
    "dish": ("in the kitchen",), "hotdrink": ("in the cup",), "hat": ("in the shop window",),
    "clothes": ("in the shop window",), "egg": ("in the basket",),
}


def _nli_state(rng, label):
    keys = [k for k in NOUNS if any(a in ANTONYMS and ANTONYMS[a] in ADJ_CLASSES[NOUNS[k][2]]
                                    for a in ADJ_CLASSES[NOUNS[k][2]])]
    key = rng.choice(keys)
    sg, pl, cls, _ = NOUNS[key]
    adj = rng.choice([a for a in ADJ_CLASSES[cls] if a in ANTONYMS and
                      ANTONYMS[a] in ADJ_CLASSES[cls]])
    ant = ANTONYMS[adj]
    plural = pl is not None and rng.random() < 0.35
    head = pl if plural else sg
    person = "pl" if plural else "m"
    tense = _tense(rng, ("present", "past"))
    be, neg = _be(person, tense), _be(person, tense, neg=True)
    very = "very " if adj not in NOT_GRADABLE else ""
    where = ""
    if cls in STATE_WHERE and rng.random() < 0.6:
        where = " " + rng.choice(STATE_WHERE[cls])
    premise = "The %s%s %s %s%s." % (head, where, be, very, adj)
    if label == 0:
        opts = ["The %s %s %s." % (head, be, adj), "The %s %s %s." % (head, neg, ant)]
        opts = [o for o in opts if o != premise] or opts
    elif label == 2:
        opts = ["The %s %s %s." % (head, neg, adj), "The %s %s %s." % (head, be, ant)]
    else:
        opts = []
        other = _adj_for(rng, cls, avoid={adj, ant} | (set(COLOURS) if adj in COLOURS else set()))
        if other:
            opts.append("The %s %s %s." % (head, be, other))
        owner, op = _subject(rng, pronouns=False)
        tags = _tags(key)
        if "food" in tags or "thing" in tags or "clothes" in tags:
            shop = PLACES[rng.choice(("market", "shop", "supermarket"))][1]
            opts.append("%s bought the %s %s." % (owner, head, shop))
        if "food" in tags or "drink" in tags:
            opts.append("%s %s the %s." % (owner, "likes" if _third(op) else "like", head))
        if not opts:
            opts.append("%s %s the %s." % (owner, "likes" if _third(op) else "like", head))
    return premise, _cap(rng.choice(opts))


def _nli_because(rng, label):
    subj, p = _subject(rng, pronouns=False)
    kind = rng.choice(("ill", "tired", "rain", "work"))
    time = rng.choice(("yesterday", "on Monday", "on Saturday", "last Sunday"))
    premise = _cap("%s stayed at home %s because %s." % (subj, time,
                                                         _reason(rng, kind, p, "past")))
    was, wasnt = _be(p, "past"), _be(p, "past", neg=True)
    if label == 0:
        opts = ["%s stayed at home %s." % (subj, time), "%s did not go out %s." % (subj, time)]
        if kind in ("ill", "tired"):
            opts.append("%s %s %s %s." % (subj, was, kind, time))
        elif kind == "rain":
            opts.append("It rained %s." % time)
        else:
            opts.append("%s had a lot of work %s." % (subj, time))
    elif label == 2:
        opts = ["%s went out all day %s." % (subj, time),
                "%s was not at home at all %s." % (subj, time) if was == "was" else
                "%s were not at home at all %s." % (subj, time)]
        if kind in ("ill", "tired"):
            opts.append("%s %s %s %s." % (subj, wasnt, kind, time))
        elif kind == "rain":
            opts.append("It did not rain %s." % time)
        else:
            opts.append("%s had no work %s." % (subj, time))
    else:
        other, _ = _relative(rng, PRON[p][2], avoid=subj)
        opts = ["%s watched a film %s." % (subj, time),
                "%s called %s %s." % (subj, other, time),
                "%s cooked soup for dinner %s." % (subj, time),
                "%s read a book in the kitchen %s." % (subj, time)]
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
    verb = rng.choice([v for v in TRANSITIVE if v[0] in NLI_VERBS])
    base, s3, past = verb[:3]
    subj, p = _subject(rng, pronouns=False)
    key = rng.choice([k for k in _nouns_with(verb[3]) if NOUNS[k][1]])
    sg, pl, cls, _ = NOUNS[key]
    adj = _adj_for(rng, cls) if rng.random() < 0.6 else None
    if rng.random() < 0.3:
        obj = "%s %s" % (rng.choice(("two", "three", "four")), (adj + " " + pl) if adj else pl)
        obj_def = "the " + pl
    else:
        head = (adj + " " + sg) if adj else sg
        obj = _a(head) + " " + head
        obj_def = "the " + sg
    place = _place_for(rng, verb, key)
    time = _time(rng, "past")
    context = [_cap("%s %s %s %s %s." % (subj, past, obj, place, time))]
    other, op = _subject(rng, pronouns=False)
    while other == subj:
        other, op = _subject(rng, pronouns=False)
    v2 = rng.choice(INTRANSITIVE)
    context.append(_cap("%s %s %s." % (other, v2[2], _loc(rng.choice(v2[3])))))
    if rng.random() < 0.5:
        context.reverse()
    q = rng.randrange(4)
    if q == 0:
        question, answer = "Who %s %s %s?" % (past, obj_def, place), subj
    elif q == 1:
        question, answer = "What did %s %s %s?" % (subj, base, place), obj
    elif q == 2:
        question, answer = "Where did %s %s %s?" % (subj, base, obj_def), place
    else:
        question, answer = "When did %s %s %s?" % (subj, base, obj_def), time
    return " ".join(context), _cap(question), answer


WORKPLACES = ("hospital", "bakery", "library", "bank", "post", "at the school", "market",
              "museum", "office", "farm", "shop", "university", "supermarket")


def _qa_home(rng):
    name, g = rng.choice(NAMES)
    city = rng.choice(CITIES)
    work = _loc(rng.choice(WORKPLACES))
    rel, rg = rng.choice([r for r in RELATIVES if r[1] != "pl"])
    name2 = rng.choice([n for n, ng in NAMES if n != name and ng == rg] or [NAMES[0][0]])
    city2 = rng.choice([c for c in CITIES if c != city])
    context = "%s lives in %s. %s works %s. %s %s %s lives in %s." % (
        name, city, _cap(PRON[g][0]), work, _cap(PRON[g][2]), rel, name2, city2)
    q = rng.randrange(4)
    if q == 0:
        return context, "Where does %s live?" % name, city
    if q == 1:
        return context, "Where does %s work?" % name, work
    if q == 2:
        return context, "Who lives in %s?" % city2, name2
    return context, "Where does %s live?" % name2, city2


def _qa_give(rng):
    name, g = rng.choice(NAMES)
    forms = rng.choice(GIVE_VERBS)
    key = rng.choice(_give_keys(forms[0] == "lend"))
    sg, pl, cls, _ = NOUNS[key]
    adj = _adj_for(rng, cls) if rng.random() < 0.5 else None
    head = (adj + " " + sg) if adj else sg
    if len(head.split()) > 2:
        head = sg
    obj = _a(head) + " " + head
    who, wg = _relative(rng, PRON[g][2])
    time = _time(rng, "past")
    context = "%s %s %s to %s %s." % (name, forms[2], obj, who, time)
    if rng.random() < 0.5:
        context += " %s %s very happy." % (_cap(who), _be(wg, "past"))
    q = rng.randrange(3)
    if q == 0:
        return context, "What did %s %s to %s?" % (name, forms[0], who), obj
    if q == 1:
        return context, "Who did %s %s the %s to?" % (name, forms[0], sg), who
    return context, "When did %s %s the %s to %s?" % (name, forms[0], sg, who), time


def _qa_trip(rng):
    a, ag = rng.choice(NAMES)
    b, bg = rng.choice([n for n in NAMES if n[0] != a])
    city = rng.choice(CITIES)
    how, _ = rng.choice(VEHICLES[:3])
    time = rng.choice([t for t in TIMES["past"] if "hour" not in t])
    act = rng.choice((("saw", "see", "old paintings", "museum"),
                      ("bought", "buy", "a small map", "museum"),
                      ("bought", "buy", "fresh cheese", "market"),
                      ("ate", "eat", "fresh fish", "cafe"), ("had", "have", "lunch", "cafe"),
                      ("found", "find", "beautiful shells", "beach"),
                      ("saw", "see", "many ducks", "lake"), ("met", "meet", "old friends",
                                                               "park")))
    place = PLACES[act[3]][1]
    context = "%s and %s travelled to %s %s %s. They %s %s %s." % (
        a, b, city, how, time, act[0], act[2], place)
    q = rng.randrange(4)
    if q == 0:
        return context, "Where did %s and %s travel to?" % (a, b), city
    if q == 1:
        return context, "How did %s and %s travel to %s?" % (a, b, city), how
    if q == 2:
        return context, "When did %s and %s travel to %s?" % (a, b, city), time
    return context, "%s did they %s %s?" % ("Who" if act[1] == "meet" else "What", act[1],
                                             place), act[2]


_QA = (_qa_event, _qa_event, _qa_home, _qa_give, _qa_trip)


def qa(rng):
    """(context, question, answer) with the answer a 1-3 word span of the context."""
    while True:
        context, question, answer = rng.choice(_QA)(rng)
        if answer in context and 1 <= len(answer.split()) <= 3:
            return context, question, answer


# --------------------------------------------------------------------------------------------

PROMPTS = [
    "Yesterday my brother went",
    "The children in the park",
    "My grandmother always bakes",
    "At the market we bought",
    "This morning the weather was",
    "The teacher told the students",
    "On Sunday my family",
    "The baker opened his shop",
    "Our neighbour has a",
    "When it rains, we",
    "The train to London was",
    "After school the children",
    "My father works at the",
    "In the kitchen there is",
    "Anna could not find her",
    "Every morning my mother drinks",
    "The old man at the station",
    "Last summer we travelled to",
    "Tom bought a new bicycle",
    "The soup in the kitchen",
    "My sister wants to buy",
    "The shop near the bank",
    "We stayed at home because",
    "Tomorrow my friends will",
]
