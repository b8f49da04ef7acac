"""Kiswahili (sw) demo grammar, hand-written by the neuron-pilot authors.

A small generative grammar for plain everyday Swahili: word lists (nouns with
their noun class, verb stems, adjective stems, names, places, times) and
sentence templates that apply the agreement rules of the language: subject
prefixes, negative subject prefixes, object concords, adjective prefixes
(including the nasal rules of classes 9/10), possessives, the associative -a,
amba- relatives, the locative copula -ko and the locative suffix -ni.

This is demo data, not corpus text. Every function takes a ``random.Random``
and is deterministic given it.
"""

LANG = "sw"
NAME = "Kiswahili"
SCRIPT = "Latin"

XNLI_WORDS = {"right": "sivyo", "yes": "Ndiyo", "also": "Pia", "no": "Hapana"}

# --------------------------------------------------------------------------
# Agreement tables.  Keys are noun classes 1..11 as strings, plus "1s"/"1p"
# for the first person singular / plural ("mimi", "sisi").
# --------------------------------------------------------------------------

SP = {"1": "a", "2": "wa", "3": "u", "4": "i", "5": "li", "6": "ya", "7": "ki",
      "8": "vi", "9": "i", "10": "zi", "11": "u", "1s": "ni", "1p": "tu"}
NEG = {"1": "ha", "2": "hawa", "3": "hau", "4": "hai", "5": "hali", "6": "haya",
       "7": "haki", "8": "havi", "9": "hai", "10": "hazi", "11": "hau",
       "1s": "si", "1p": "hatu"}
OC = {"1": "m", "2": "wa", "3": "u", "4": "i", "5": "li", "6": "ya", "7": "ki",
      "8": "vi", "9": "i", "10": "zi", "11": "u"}
POSS = {"1": "w", "2": "w", "3": "w", "4": "y", "5": "l", "6": "y", "7": "ch",
        "8": "vy", "9": "y", "10": "z", "11": "w"}
ASSOC = {"1": "wa", "2": "wa", "3": "wa", "4": "ya", "5": "la", "6": "ya",
         "7": "cha", "8": "vya", "9": "ya", "10": "za", "11": "wa"}
AMBA = {"1": "ambaye", "2": "ambao", "3": "ambao", "4": "ambayo", "5": "ambalo",
        "6": "ambayo", "7": "ambacho", "8": "ambavyo", "9": "ambayo",
        "10": "ambazo", "11": "ambao"}
KO = {"1": "yuko", "2": "wako", "3": "uko", "4": "iko", "5": "liko", "6": "yako",
      "7": "kiko", "8": "viko", "9": "iko", "10": "ziko", "11": "uko",
      "1s": "niko", "1p": "tuko"}
THIS = {"1": "huyu", "2": "hawa", "3": "huu", "4": "hii", "5": "hili", "6": "haya",
        "7": "hiki", "8": "hivi", "9": "hii", "10": "hizi", "11": "huu"}
THAT = {"1": "yule", "2": "wale", "3": "ule", "4": "ile", "5": "lile", "6": "yale",
        "7": "kile", "8": "vile", "9": "ile", "10": "zile", "11": "ule"}

_VOWELS = "aeiou"

# --------------------------------------------------------------------------
# Adjectives.  "b": Bantu stem taking the class prefix; "i": invariable;
# "a": associative phrase (-a + word, e.g. "ya kijani").
# --------------------------------------------------------------------------

ADJ_KIND = {
    "kubwa": "b", "dogo": "b", "zuri": "b", "baya": "b", "pya": "b", "refu": "b",
    "fupi": "b", "eupe": "b", "eusi": "b", "ekundu": "b", "zito": "b",
    "epesi": "b", "chafu": "b", "tamu": "b", "bivu": "b", "bichi": "b",
    "kavu": "b", "kali": "b", "nene": "b", "ema": "b", "pole": "b",
    "erevu": "b", "karimu": "b", "changamfu": "b", "pana": "b",
    "embamba": "b", "gumu": "b", "ingi": "b", "chache": "b",
    "wili": "b", "tatu": "b", "nne": "b", "tano": "b",
    "safi": "i", "baridi": "i", "ghali": "i", "rahisi": "i", "hodari": "i",
    "kijani": "a", "bluu": "a", "njano": "a", "zamani": "a", "moto": "a",
}

ADJ_GROUPS = {
    "size": ["kubwa", "dogo"],
    "tall": ["refu", "fupi"],
    "color": ["eupe", "eusi", "ekundu", "kijani", "bluu", "njano"],
    "acolor": ["eupe", "eusi"],
    "newold": ["pya", "zamani"],
    "heavy": ["zito", "epesi"],
    "clean": ["safi", "chafu"],
    "taste": ["tamu", "zuri"],
    "ripe": ["bivu", "bichi", "tamu"],
    "fresh": ["bichi", "safi"],
    "hot": ["moto", "tamu"],
    "water": ["safi", "baridi", "moto"],
    "milk": ["moto", "bichi"],
    "maize": ["bichi", "kavu"],
    "dry": ["kavu"],
    "sharp": ["kali", "dogo"],
    "long": ["refu", "fupi"],
    "song": ["zuri", "pya", "refu"],
    "news": ["ema", "baya"],
    "wide": ["pana", "embamba", "refu"],
    "good": ["zuri"],
    "fat": ["nene"],
    "fierce": ["kali"],
    "hard": ["gumu", "rahisi"],
}

_INGI = {"2": "wengi", "4": "mingi", "6": "mengi", "8": "vingi", "10": "nyingi"}


def _nasal(stem):
    if stem == "pya":
        return "mpya"
    c = stem[0]
    if c in "bv":
        return "m" + stem
    if c in "dgjz":
        return "n" + stem
    if c in "rl":
        return "nd" + stem[1:]
    if c == "w":
        return "mb" + stem[1:]
    return stem


def adj(stem, cls):
    """The adjective ``stem`` agreeing with noun class ``cls``."""
    kind = ADJ_KIND[stem]
    if kind == "i":
        return stem
    if kind == "a":
        return ASSOC[cls] + " " + stem
    if stem == "ingi":
        return _INGI[cls]
    vowel = stem[0] in _VOWELS
    if cls in ("1", "3", "11"):
        return ("mw" if vowel else "m") + stem
    if cls == "2":
        return ("we" + stem[1:]) if vowel else "wa" + stem
    if cls == "4":
        return ("my" + stem) if vowel else "mi" + stem
    if cls == "5":
        if vowel:
            return "j" + stem
        return "ji" + stem if stem == "pya" else stem
    if cls == "6":
        return ("me" + stem[1:]) if vowel else "ma" + stem
    if cls == "7":
        return ("ch" + stem) if vowel else "ki" + stem
    if cls == "8":
        return ("vy" + stem) if vowel else "vi" + stem
    # classes 9 and 10
    if stem == "ema":
        return "njema"
    return ("ny" + stem) if vowel else _nasal(stem)


def poss(cls, suffix):
    """Possessive: class prefix + angu/ako/ake/etu/enu/ao."""
    return POSS[cls] + suffix


# --------------------------------------------------------------------------
# Verbs.
# --------------------------------------------------------------------------

_MONO = ("la", "nywa", "ja", "enda", "wa", "pa")


def _neg_final(stem):
    return stem[:-1] + "i" if stem.endswith("a") else stem


def _ku(stem):
    return "kwenda" if stem == "enda" else "ku" + stem


def verb(agr, tense, stem, neg=False, oc=None):
    """Conjugate ``stem``.

    tense: "na" present, "li" past, "ta" future, "me" perfect, "ka" narrative,
    "hu" habitual, "inf" infinitive.  ``oc`` is the class of an object concord.
    """
    if " " in stem:
        head, rest = stem.split(" ", 1)
        return verb(agr, tense, head, neg, oc) + " " + rest
    o = ""
    if oc is not None:
        o = OC[oc]
        if o == "m" and stem[0] in _VOWELS:
            o = "mw"
    mono = stem in _MONO and not o
    if tense == "inf":
        return "ku" + o + stem if o else _ku(stem)
    if tense == "hu":
        return "hu" + o + stem
    if not neg:
        sp = SP[agr]
        if tense == "ka":
            return sp + "ka" + o + stem
        return sp + tense + (_ku(stem) if mono else o + stem)
    n = NEG[agr]
    if tense == "na":
        return n + o + _neg_final(stem)
    if tense == "li":
        if stem == "enda" and not o:
            return n + "kwenda"
        return n + "ku" + o + stem
    if tense == "ta":
        return n + "ta" + (_ku(stem) if mono else o + stem)
    if tense == "me":
        return n + "ja" + o + stem
    raise ValueError(tense)


def _have(agr, tense, neg=False):
    """'to have' (kuwa na): ana / alikuwa na / atakuwa na and negatives."""
    if tense == "na":
        return (NEG[agr] if neg else SP[agr]) + "na"
    return verb(agr, tense, "wa", neg) + " na"


def _was(agr, tense, neg=False):
    """Copula in past/future: alikuwa / atakuwa / hakuwa."""
    return verb(agr, tense, "wa", neg)


# --------------------------------------------------------------------------
# Vocabulary.
# --------------------------------------------------------------------------

NAMES = ["Juma", "Amina", "Baraka", "Neema", "Hamisi", "Zawadi", "Rehema",
         "Salim", "Fatuma", "Daudi", "Halima", "Omari", "Upendo", "Musa",
         "Asha", "Yusufu", "Mariamu", "Ali", "Imani", "Saida", "Petro",
         "Tumaini", "Jabiri", "Mwanaisha", "Bakari", "Khadija", "Rashidi",
         "Subira"]

# kinship nouns: (singular, possessive class sg, plural, possessive class pl)
KIN = [("mama", "9", None, None), ("baba", "9", None, None),
       ("dada", "9", None, None), ("kaka", "9", None, None),
       ("bibi", "9", None, None), ("babu", "9", None, None),
       ("shangazi", "9", None, None), ("mjomba", "1", None, None),
       ("rafiki", "9", "rafiki", "10"), ("jirani", "9", "jirani", "10"),
       ("binamu", "9", None, None)]
KIN_PL = [("wazazi", "2"), ("ndugu", "10"), ("rafiki", "10"), ("jirani", "10"),
          ("watoto", "2")]

# people (class 1/2 agreement): singular, plural, kind ("a" adult, "c" child)
PEOPLE = [
    ("mtoto", "watoto", "c"), ("mwanafunzi", "wanafunzi", "c"),
    ("msichana", "wasichana", "c"), ("mvulana", "wavulana", "c"),
    ("mwalimu", "walimu", "a"), ("mkulima", "wakulima", "a"),
    ("mpishi", "wapishi", "a"), ("mgeni", "wageni", "a"),
    ("mzee", "wazee", "a"), ("mfanyabiashara", "wafanyabiashara", "a"),
    ("mvuvi", "wavuvi", "a"), ("mwanamke", "wanawake", "a"),
    ("mwanamume", "wanaume", "a"), ("daktari", "madaktari", "a"),
    ("dereva", "madereva", "a"), ("fundi", "mafundi", "a"),
    ("kijana", "vijana", "a"), ("muuguzi", "wauguzi", "a"),
    ("mchezaji", "wachezaji", "a"), ("mama", "akina mama", "a"),
]
PERSON_ADJ = {"c": ["dogo", "changamfu", "erevu", "pole"],
              "a": ["pole", "hodari", "changamfu", "karimu", "ema"]}

# things: singular, plural (None = mass noun), class sg, class pl, number
# ("b" both, "p" plural preferred), tags, adjective groups
_N = [
    ("mti", "miti", "3", "4", "b", "plant cutwood", "size tall"),
    ("mkate", "mikate", "3", "4", "b", "eat buy sell bring cutfood", "size taste"),
    ("mfuko", "mifuko", "3", "4", "b", "buy sell carry seek bring lose", "size color heavy"),
    ("mlango", "milango", "3", "4", "b", "repair open close paint", "size color newold"),
    ("mpira", "mipira", "3", "4", "b", "buy play bring seek", "size newold color"),
    ("mkeka", "mikeka", "3", "4", "b", "buy sell carry weave", "size newold color"),
    ("mwavuli", "miavuli", "3", "4", "b", "buy carry seek bring lose", "size color newold"),
    ("mkoba", "mikoba", "3", "4", "b", "buy sell carry seek lose", "size color newold"),
    ("mchele", None, "3", None, "b", "buy sell cook", "good"),
    ("mwembe", "miembe", "3", "4", "b", "plant", "size tall"),
    ("mgomba", "migomba", "3", "4", "b", "plant", "size tall"),
    ("ukuta", "kuta", "11", "10", "b", "build paint", "tall color"),
    ("wimbo", "nyimbo", "11", "10", "b", "sing listen write", "song"),
    ("ufunguo", "funguo", "11", "10", "b", "seek lose bring", "size newold"),
    ("ugali", None, "11", None, "b", "eat cook", "taste hot"),
    ("wali", None, "11", None, "b", "eat cook", "taste hot"),
    ("uji", None, "11", None, "b", "drink cook", "hot"),
    ("tunda", "matunda", "5", "6", "p", "eat buy sell pick", "ripe"),
    ("embe", "maembe", "5", "6", "b", "eat buy sell pick", "ripe size"),
    ("chungwa", "machungwa", "5", "6", "b", "eat buy sell pick", "ripe size"),
    ("yai", "mayai", "5", "6", "p", "eat buy sell cook boil", "size"),
    ("gari", "magari", "5", "6", "b", "buy sell repair washcar drive", "size color newold"),
    ("dirisha", "madirisha", "5", "6", "b", "open close repair clean", "size"),
    ("sanduku", "masanduku", "5", "6", "b", "carry buy open close", "size heavy color newold"),
    ("jembe", "majembe", "5", "6", "b", "buy sell borrow bring", "newold"),
    ("gazeti", "magazeti", "5", "6", "b", "read buy sell", "newold"),
    ("koti", "makoti", "5", "6", "b", "wear buy sell sew launder", "color newold heavy"),
    ("shati", "mashati", "5", "6", "b", "wear buy sell sew launder fold", "color newold clean"),
    ("kabati", "makabati", "5", "6", "b", "buy repair clean open", "size newold"),
    ("ua", "maua", "5", "6", "p", "plant pick", "color"),
    ("boga", "maboga", "5", "6", "b", "buy sell cook plant", "size"),
    ("maji", None, "6", None, "b", "drink carry boil", "water"),
    ("maziwa", None, "6", None, "b", "drink buy sell boil", "milk"),
    ("mafuta", None, "6", None, "b", "buy sell", ""),
    ("mahindi", None, "6", None, "b", "buy sell plant harvest cook", "maize"),
    ("maharage", None, "6", None, "b", "buy sell plant harvest cook", "dry"),
    ("kitabu", "vitabu", "7", "8", "b", "read buy sell bring borrow seek", "size newold color heavy"),
    ("kiti", "viti", "7", "8", "b", "buy sell repair clean carry", "size newold"),
    ("kikombe", "vikombe", "7", "8", "b", "buy wash", "size color clean"),
    ("kijiko", "vijiko", "7", "8", "b", "buy wash", "size clean"),
    ("kisu", "visu", "7", "8", "b", "buy sell seek", "sharp"),
    ("kikapu", "vikapu", "7", "8", "b", "buy sell carry weave", "size heavy"),
    ("chakula", "vyakula", "7", "8", "b", "eat cook bring", "taste hot"),
    ("chumba", "vyumba", "7", "8", "b", "clean sweep", "size clean"),
    ("kiatu", "viatu", "7", "8", "p", "buy sell wear repair", "color newold"),
    ("kitanda", "vitanda", "7", "8", "b", "buy repair", "size newold"),
    ("chungu", "vyungu", "7", "8", "b", "buy wash", "size"),
    ("kitambaa", "vitambaa", "7", "8", "b", "buy sell", "color"),
    ("chombo", "vyombo", "7", "8", "p", "wash", "clean"),
    ("nyumba", "nyumba", "9", "10", "b", "build clean paint sweep", "size newold color"),
    ("baiskeli", "baiskeli", "9", "10", "b", "buy sell repair drive borrow", "color newold"),
    ("barua", "barua", "9", "10", "b", "write read send receive", "long"),
    ("nguo", "nguo", "9", "10", "b", "buy sell launder wear sew fold", "color newold clean"),
    ("kalamu", "kalamu", "9", "10", "b", "buy seek lose borrow", "color newold"),
    ("meza", "meza", "9", "10", "b", "buy sell repair clean", "size newold"),
    ("sahani", "sahani", "9", "10", "b", "buy wash", "clean size"),
    ("chai", None, "9", None, "b", "drink cook", "hot"),
    ("kahawa", None, "9", None, "b", "drink buy sell harvest", "hot"),
    ("ndizi", "ndizi", "9", "10", "p", "eat buy sell cook", "ripe"),
    ("nyama", None, "9", None, "b", "eat buy sell cook cutfood", "taste"),
    ("redio", "redio", "9", "10", "b", "buy sell repair listen", "newold size"),
    ("simu", "simu", "9", "10", "b", "buy sell repair seek lose", "newold"),
    ("saa", "saa", "9", "10", "b", "buy sell repair lose", "newold"),
    ("picha", "picha", "9", "10", "b", "draw send", "size"),
    ("chupa", "chupa", "9", "10", "b", "buy open", "size"),
    ("kofia", "kofia", "9", "10", "b", "buy sell wear", "color newold"),
    ("ndoo", "ndoo", "9", "10", "b", "buy carry", "size"),
    ("mboga", "mboga", "9", "10", "p", "buy sell cook plant", "fresh"),
    ("habari", "habari", "9", "10", "b", "listen receive", "news"),
    ("suruali", "suruali", "9", "10", "b", "buy wear sew launder", "color newold"),
    ("keki", "keki", "9", "10", "b", "eat buy cook", "taste size"),
    ("juisi", None, "9", None, "b", "drink buy", "taste"),
    ("kuni", None, "10", None, "b", "carry buy sell", "dry"),
    ("hadithi", "hadithi", "9", "10", "b", "read write", "long"),
    ("zawadi", "zawadi", "9", "10", "b", "buy receive bring", "size"),
    ("barabara", "barabara", "9", "10", "b", "build", "wide"),
    ("shamba", "mashamba", "5", "6", "b", "farm", "size"),
    ("daraja", "madaraja", "5", "6", "b", "build", "size"),
    ("pesa", None, "10", None, "b", "send receive lose", ""),
    ("kazi", None, "9", None, "b", "", ""),
]
# animals take class 1/2 agreement; singular and plural have the same form
_A = [
    ("ng'ombe", "buy sell feed herd milk", "size fat acolor"),
    ("mbuzi", "buy sell feed herd milk", "size fat acolor"),
    ("kondoo", "buy sell feed herd", "size fat acolor"),
    ("kuku", "buy sell feed", "size fat acolor"),
    ("mbwa", "feed", "size fierce acolor"),
    ("paka", "feed", "size acolor"),
    ("samaki", "buy sell cook eat", "size"),
]


class Noun:
    __slots__ = ("sg", "pl", "csg", "cpl", "num", "tags", "adjs")

    def __init__(self, sg, pl, csg, cpl, num, tags, groups):
        self.sg, self.pl, self.csg, self.cpl, self.num = sg, pl, csg, cpl, num
        self.tags = tags.split()
        self.adjs = []
        for g in groups.split():
            for a in ADJ_GROUPS[g]:
                if a not in self.adjs:
                    self.adjs.append(a)


NOUNS = [Noun(*row) for row in _N] + [Noun(w, w, "1", "2", "b", t, g) for w, t, g in _A]


_BY_TAG = {}
for _n in NOUNS:
    for _t in _n.tags:
        _BY_TAG.setdefault(_t, []).append(_n)
_BY_NAME = {n.sg: n for n in NOUNS}

# locatives
HOME_LOCS = ["nyumbani", "jikoni", "sebuleni", "chumbani"]
CITIES = ["Mombasa", "Nairobi", "Arusha", "Dodoma", "Kisumu", "Tanga", "Mwanza",
          "Moshi", "Nakuru", "Morogoro", "Iringa", "Kigoma", "Malindi", "Mbeya",
          "Dar es Salaam", "Zanzibar"]
TRANSPORT = ["basi", "gari", "treni", "ndege", "pikipiki"]

PAST_TIMES = ["jana", "jana asubuhi", "jana jioni", "jana usiku", "juzi",
              "wiki iliyopita", "Jumamosi iliyopita", "leo asubuhi"]
LONG_PAST = ["mwaka jana", "mwezi uliopita", "wiki iliyopita", "mwaka juzi"]
PRES_TIMES = ["kila siku", "kila asubuhi", "kila jioni", "kila Jumapili", "leo",
              "sasa hivi", "siku hizi", "kila wiki"]
FUT_TIMES = ["kesho", "kesho asubuhi", "kesho jioni", "kesho kutwa", "wiki ijayo",
             "Jumamosi ijayo"]
LONG_FUT = ["mwaka ujao", "mwezi ujao", "wiki ijayo"]
PERF_TIMES = ["leo", "leo asubuhi", "tayari", "sasa hivi"]
TIMES = {"li": PAST_TIMES, "na": PRES_TIMES, "ta": FUT_TIMES, "me": PERF_TIMES}

ADVERBS = ["vizuri", "haraka", "kwa makini", "mapema"]

# transitive actions with an inanimate (or animal) object:
# (verb stem, object tag, locatives ("" = none), who)
ACTIONS = [
    ("nunua", "buy", ["sokoni", "dukani", "mjini"], "any"),
    ("uza", "sell", ["sokoni", "dukani", "mjini"], "adult"),
    ("pika", "cook", ["jikoni", "nyumbani"], "adult"),
    ("la", "eat", ["nyumbani", "mgahawani", "sebuleni", "shuleni"], "any"),
    ("nywa", "drink", ["nyumbani", "mgahawani", "sebuleni"], "any"),
    ("soma", "read", ["maktabani", "nyumbani", "darasani", "chumbani"], "any"),
    ("andika", "write", ["darasani", "ofisini", "nyumbani", "maktabani"], "any"),
    ("osha", "wash", ["jikoni", "nyumbani"], "any"),
    ("osha", "washcar", ["nyumbani", ""], "adult"),
    ("fua", "launder", ["mtoni", "nyumbani"], "any"),
    ("tengeneza", "repair", ["nyumbani", ""], "adult"),
    ("safisha", "clean", [""], "any"),
    ("fagia", "sweep", [""], "any"),
    ("beba", "carry", ["sokoni", "shambani", "barabarani"], "any"),
    ("panda", "plant", ["shambani", "bustanini"], "adult"),
    ("vuna", "harvest", ["shambani"], "adult"),
    ("tafuta", "seek", ["nyumbani", "chumbani", "ofisini", "sokoni"], "any"),
    ("poteza", "lose", ["sokoni", "shuleni", "mjini", "kanisani"], "any"),
    ("leta", "bring", ["nyumbani", "shuleni", "ofisini", "sokoni"], "any"),
    ("vaa", "wear", ["kanisani", "shuleni", "harusini", "kazini"], "any"),
    ("fungua", "open", [""], "any"),
    ("funga", "close", [""], "any"),
    ("lisha", "feed", ["shambani", "nyumbani"], "any"),
    ("chunga", "herd", ["shambani", "kijijini"], "any"),
    ("kamua", "milk", ["shambani", "zizini"], "adult"),
    ("sikiliza", "listen", ["nyumbani", "sebuleni"], "any"),
    ("imba", "sing", ["kanisani", "shuleni", "harusini"], "any"),
    ("kata", "cutwood", ["shambani", "msituni"], "adult"),
    ("kata", "cutfood", ["jikoni"], "adult"),
    ("jenga", "build", ["kijijini", "mjini"], "adult"),
    ("tuma", "send", [""], "adult"),
    ("endesha", "drive", ["mjini", "barabarani", "kijijini"], "adult"),
    ("chemsha", "boil", ["jikoni"], "adult"),
    ("shona", "sew", ["nyumbani", "dukani"], "adult"),
    ("kunja", "fold", ["chumbani", "nyumbani"], "any"),
    ("chora", "draw", ["darasani", "nyumbani"], "any"),
    ("azima", "borrow", [""], "any"),
    ("pokea", "receive", [""], "any"),
    ("chuma", "pick", ["shambani", "bustanini"], "any"),
    ("cheza", "play", ["uwanjani"], "any"),
    ("suka", "weave", ["nyumbani"], "adult"),
    ("paka rangi", "paint", [""], "adult"),
    ("lima", "farm", [""], "adult"),
]

# intransitive actions: (verb stem, complement, locatives, who)
INTRANS = [
    ("cheza", "", ["uwanjani", "nje", "bustanini"], "child"),
    ("lala", "", ["chumbani", "nyumbani"], "any"),
    ("kimbia", "", ["uwanjani", "barabarani"], "any"),
    ("ogelea", "", ["ziwani", "baharini", "mtoni"], "any"),
    ("fanya", "kazi", ["shambani", "ofisini", "hospitalini", "sokoni", "kiwandani"], "adult"),
    ("pumzika", "", ["nyumbani", "bustanini", "sebuleni"], "any"),
    ("tembea", "", ["mjini", "bustanini", "ufukweni"], "any"),
    ("sali", "", ["kanisani", "msikitini"], "any"),
    ("soma", "", ["shuleni", "maktabani", "darasani"], "child"),
    ("kaa", "", ["nyumbani", "sebuleni", "kivulini"], "any"),
    ("imba", "", ["kanisani", "harusini", "shuleni"], "any"),
    ("pika", "", ["jikoni"], "adult"),
]

# adjectives an action allows on its object (tags not listed: any of the noun's)
ACTION_ADJ = {
    "plant": ["dogo"], "harvest": ["kavu"], "pick": ["bivu", "ekundu", "eupe", "njano"],
    "wash": ["chafu", "kubwa", "dogo"], "clean": ["chafu", "kubwa", "dogo"],
    "sweep": ["chafu", "kubwa", "dogo"], "boil": ["safi", "bichi"],
    "launder": ["chafu", "eupe", "eusi", "ekundu", "kijani", "bluu", "njano"],
    "build": ["kubwa", "dogo", "eupe", "refu", "pana", "embamba", "pya"],
    "cutfood": ["kubwa", "dogo"], "cutwood": ["refu", "kubwa", "kavu"],
    "paint": ["refu", "dogo", "kubwa"],
}

# tenses an action allows (tags not listed: any)
TAG_TENSES = {"lose": ("li", "me"), "seek": ("li", "na", "me"), "receive": ("li", "me"),
              "pick": ("li", "na", "ta"), "harvest": ("li", "na", "ta")}

# actions whose object naturally takes the subject's possessive
POSS_TAGS = ["repair", "clean", "washcar", "launder", "seek", "bring", "sell",
             "wear", "sweep", "lose", "carry", "read", "farm", "paint", "fold",
             "feed"]

# human objects: singular, plural, kind, takes the subject's possessive
HUMAN_OBJ = [("mtoto", "watoto", "c", True), ("mwalimu", "walimu", "a", True),
             ("mgeni", "wageni", "a", False), ("mzee", "wazee", "a", False),
             ("daktari", "madaktari", "a", False), ("fundi", "mafundi", "a", False),
             ("mwanafunzi", "wanafunzi", "c", False), ("mkulima", "wakulima", "a", False),
             ("jirani", "jirani", "a", False)]

# verbs with a human object (object concord required):
# (stem, locatives, complement placed after the object)
HUMAN_VERBS = [
    ("saidia", ["jikoni", "shambani", "nyumbani", "dukani", "sokoni"], ""),
    ("tembelea", ["hospitalini", "kijijini", "mjini"], ""),
    ("salimia", ["sokoni", "kanisani", "barabarani"], ""),
    ("subiri", ["kituoni", "nje ya shule", "sokoni"], ""),
    ("ona", ["sokoni", "mjini", "kanisani", "barabarani"], ""),
    ("pigia", [""], "simu"),
    ("andikia", [""], "barua ndefu"),
    ("nunulia", ["sokoni", "dukani", "mjini"], "@gift"),
    ("pikia", ["nyumbani", "jikoni"], "@food"),
    ("peleka", ["hospitalini", "shuleni", "sokoni"], ""),
    ("penda", [""], "sana"),
]
GIFTS = [("kitabu", "pya"), ("nguo", "pya"), ("kiatu", "pya"), ("kofia", "ekundu"),
         ("saa", "pya"), ("baiskeli", "pya"), ("mpira", "pya"), ("koti", "zito"),
         ("keki", "kubwa"), ("redio", "dogo"), ("kalamu", "pya"), ("simu", "pya")]
FOODS = [("chakula", "tamu"), ("wali", "tamu"), ("ugali", "moto"), ("chai", "moto"),
         ("uji", "moto"), ("nyama", "tamu"), ("samaki", "kubwa"), ("keki", "tamu")]

HOBBIES = ["kusafiri", "kusoma vitabu", "kucheza mpira", "kuimba", "kupika",
           "kuogelea", "kusikiliza redio", "kutembea jioni", "kuandika barua",
           "kucheza karata", "kulima bustani", "kupanda miti"]


# --------------------------------------------------------------------------
# Helpers.
# --------------------------------------------------------------------------

def _cap(s):
    return s[0].upper() + s[1:]


def _join(*parts):
    return " ".join(p for p in parts if p)


def _finish(s, mark="."):
    s = " ".join(s.split())
    return _cap(s) + mark


class Subj:
    """A subject noun phrase: text, agreement class and the possessive suffix
    that refers back to it."""
    __slots__ = ("text", "agr", "own", "kind")

    def __init__(self, text, agr, own, kind="a"):
        self.text, self.agr, self.own, self.kind = text, agr, own, kind

    @property
    def plural(self):
        return self.agr in ("2", "1p")


def _kin_np(rng, own, plural=False):
    if plural:
        w, c = rng.choice(KIN_PL)
        return w + " " + poss(c, own), "2"
    w, c, _, _ = rng.choice(KIN)
    return w + " " + poss(c, own), "1"


def _subject(rng, who="any", pron=True, names_only=False):
    r = rng.random()
    if names_only or r < 0.34:
        return Subj(rng.choice(NAMES), "1", "ake")
    if who == "child":
        sg, pl, kind = rng.choice([p for p in PEOPLE if p[2] == "c"])
        if rng.random() < 0.5:
            return Subj(pl, "2", "ao", "c")
        return Subj(sg, "1", "ake", "c")
    if r < 0.52:
        plural = rng.random() < 0.2
        while True:
            text, agr = _kin_np(rng, rng.choice(["angu", "etu", "angu", "ake"]), plural)
            if not (who == "adult" and text.startswith("watoto")):
                break
        kind = "c" if text.startswith("watoto") else "a"
        return Subj(text, agr, "ao" if plural else "ake", kind)
    if r < 0.88 or not pron:
        pool = [p for p in PEOPLE if who == "any" or p[2] == "a"]
        sg, pl, kind = rng.choice(pool)
        plural = rng.random() < 0.45
        text = pl if plural else sg
        cls = "2" if plural else "1"
        if rng.random() < 0.25 and sg != "mama":
            text += " " + adj(rng.choice(PERSON_ADJ[kind]), cls)
        elif plural and rng.random() < 0.2:
            text += " " + adj(rng.choice(["ingi", "chache"]), "2")
        return Subj(text, cls, "ao" if plural else "ake", kind)
    if rng.random() < 0.5:
        text = "mimi" if rng.random() < 0.5 else ""
        return Subj(text, "1s", "angu")
    text = "sisi" if rng.random() < 0.5 else ""
    return Subj(text, "1p", "etu")


_WORK = {"mkulima": "shambani", "mwalimu": "shuleni", "daktari": "hospitalini",
         "muuguzi": "hospitalini", "mfanyabiashara": "sokoni", "mvuvi": "baharini"}
for _sg, _pl, _k in PEOPLE:
    if _sg in _WORK:
        _WORK[_pl] = _WORK[_sg]


def _workplace(rng, s):
    """Where the subject goes to work or study."""
    if s.kind == "c":
        return "shuleni"
    head = (s.text.split() or [""])[0]
    if head in _WORK:
        return _WORK[head]
    return rng.choice(["kazini", "shambani", "sokoni", "ofisini"])


_BIG = ["gari", "baiskeli", "ng'ombe", "mbuzi", "kondoo", "kuku", "samaki"]


def _place_for(rng, noun, locs):
    """A locative from ``locs`` that suits ``noun`` (no cars or goats in a shop)."""
    if noun.sg in ("gari", "baiskeli"):
        locs = [x for x in locs if x not in ("dukani", "sokoni")] or ["mjini"]
    elif noun.sg in _BIG:
        locs = [x for x in locs if x != "dukani"] or ["sokoni"]
    return rng.choice(locs)


def _other_name(rng, avoid):
    while True:
        n = rng.choice(NAMES)
        if n not in avoid:
            return n


def _adjs_for(noun, tag):
    """The noun's adjectives that suit the action ``tag``."""
    if tag in ACTION_ADJ:
        return [a for a in noun.adjs if a in ACTION_ADJ[tag]]
    return noun.adjs


def _obj(rng, noun, plural=None, adj_p=0.55, quant_p=0.25, own=None, tag=None):
    """Build an object NP. Returns (text, class)."""
    adjs = _adjs_for(noun, tag)
    if noun.pl is None or tag == "play":
        plural = False
    elif plural is None:
        plural = noun.num == "p" or rng.random() < 0.45
    word = noun.pl if plural else noun.sg
    cls = noun.cpl if plural else noun.csg
    parts = [word]
    if own:
        parts.append(poss(cls, own))
    if adjs and rng.random() < adj_p:
        parts.append(adj(rng.choice(adjs), cls))
    elif (plural and noun.pl is not None and rng.random() < quant_p and not own
          and tag not in ("listen", "drive", "seek", "lose", "wear")):
        parts.append(adj(rng.choice(["ingi", "wili", "tatu", "nne", "tano", "chache"]), cls))
    return " ".join(parts), cls


def _pick_action(rng, tags=None):
    pool = [a for a in ACTIONS if tags is None or a[1] in tags]
    while True:
        a = rng.choice(pool)
        if a[1] in _BY_TAG:
            return a


def _tense(rng, weights=("li", "li", "na", "ta", "me")):
    return rng.choice(weights)


def _time(rng, tense, p=0.75, long=False):
    if rng.random() < p:
        pool = TIMES[tense]
        if long and tense in ("li", "ta"):
            pool = pool + (LONG_PAST if tense == "li" else LONG_FUT)
        return rng.choice(pool)
    return ""


# --------------------------------------------------------------------------
# Sentence templates.
# --------------------------------------------------------------------------

def _t_svo(rng):
    """S V O [adj] [loc] [time], any tense, sometimes negated."""
    stem, tag, locs, who = _pick_action(rng)
    s = _subject(rng, who)
    tense = _tense(rng, TAG_TENSES.get(tag, ("li", "li", "na", "ta", "me")))
    neg = tense != "me" and rng.random() < 0.3
    noun = rng.choice(_BY_TAG[tag])
    o, _ = _obj(rng, noun, tag=tag)
    loc = _place_for(rng, noun, locs)
    extra = "" if loc else rng.choice(ADVERBS)
    return _finish(_join(s.text, verb(s.agr, tense, stem, neg), o, loc, extra,
                         _time(rng, tense)))


def _t_poss(rng):
    """S V O-possessive [adj] [loc/adverb] time: 'Baraka alitengeneza baiskeli yake'."""
    stem, tag, locs, who = _pick_action(rng, POSS_TAGS)
    s = _subject(rng, who)
    tense = _tense(rng, TAG_TENSES.get(tag, ("li", "li", "na", "ta", "me")))
    neg = tense != "me" and rng.random() < 0.2
    noun = rng.choice(_BY_TAG[tag])
    o, _ = _obj(rng, noun, own=s.own, adj_p=0.4, tag=tag)
    loc = _place_for(rng, noun, locs)
    if tag == "lose":
        loc = loc if not neg else ""
    extra = rng.choice(ADVERBS) if (not loc and tag not in ("lose", "seek")) else ""
    return _finish(_join(s.text, verb(s.agr, tense, stem, neg), o, loc, extra,
                         rng.choice(TIMES[tense])))


def _t_human(rng):
    """Verb with an object concord for a human object."""
    if rng.random() < 0.12:
        # teacher / doctor frames
        if rng.random() < 0.5:
            s = Subj(rng.choice(["mwalimu", "mwalimu wetu", "walimu"]), "1", "ake")
            if s.text == "walimu":
                s = Subj("walimu", "2", "ao")
            objs = rng.choice(["wanafunzi", "watoto", "wanafunzi " + poss("2", s.own)])
            subj = rng.choice(["hesabu", "Kiingereza", "Kiswahili", "historia",
                               "kusoma", "kuandika", "jiografia"])
            tense = _tense(rng)
            return _finish(_join(s.text, verb(s.agr, tense, "fundisha", oc="2"), objs,
                                 subj, rng.choice(["darasani", "shuleni", ""]),
                                 _time(rng, tense)))
        s = rng.choice([Subj("daktari", "1", "ake"), Subj("madaktari", "2", "ao"),
                        Subj("muuguzi", "1", "ake"), Subj("wauguzi", "2", "ao")])
        tense = _tense(rng)
        pl = rng.random() < 0.6
        o = "wagonjwa" if pl else "mgonjwa"
        if rng.random() < 0.3:
            o += " " + adj(rng.choice(["ingi", "wili", "tatu"]), "2") if pl else " mmoja"
        return _finish(_join(s.text, verb(s.agr, tense, rng.choice(["tibu", "saidia"]),
                                          oc="2" if pl else "1"),
                             o, "hospitalini", _time(rng, tense)))
    stem, locs, comp = rng.choice(HUMAN_VERBS)
    s = _subject(rng, "adult" if stem == "peleka" else "any")
    tense = _tense(rng)
    neg = tense != "me" and rng.random() < 0.2
    while True:
        r = rng.random()
        if r < 0.45:
            o, c = _kin_np(rng, s.own, rng.random() < 0.3)
        elif r < 0.75 and s.agr == "1" and s.text in NAMES:
            o, c = _other_name(rng, [s.text]), "1"
        else:
            pool = [h for h in HUMAN_OBJ if not (s.kind == "c" and h[0] == "mtoto")]
            sg, pl, _, owned = rng.choice(pool)
            plural = rng.random() < 0.5
            o, c = (pl, "2") if plural else (sg, "1")
            if owned and rng.random() < 0.6:
                o += " " + poss(c, s.own)
        if o.split()[0] != (s.text.split() or [""])[0].lower():
            break
    if stem == "peleka":
        o, c, loc = rng.choice([
            ("mtoto " + poss("1", s.own), "1", rng.choice(["shuleni", "hospitalini"])),
            ("watoto " + poss("2", s.own), "2", rng.choice(["shuleni", "sokoni"])),
            ("mgonjwa", "1", "hospitalini"),
            ("bibi " + poss("9", s.own), "1", "hospitalini"),
            ("babu " + poss("9", s.own), "1", "hospitalini")])
        locs = [loc]
    if stem == "penda":
        tense, neg = "na", False
    elif comp and tense == "na":
        tense = rng.choice(["li", "ta", "me"])
    if comp == "@gift":
        w, a = rng.choice(GIFTS)
        n = _BY_NAME[w]
        pl = n.num == "p" or (rng.random() < 0.3 and w in ("kitabu", "kalamu"))
        c2 = n.cpl if pl else n.csg
        comp = (n.pl if pl else n.sg) + " " + adj(a, c2)
        locs = [x for x in locs if x != "dukani"] if w == "baiskeli" else locs
    elif comp == "@food":
        w, a = rng.choice(FOODS)
        comp = w + " " + adj(a, _BY_NAME[w].csg)
    v = verb(s.agr, tense, stem, neg, oc=c)
    t = "" if stem == "penda" else _time(rng, tense)
    return _finish(_join(s.text, v, o, comp, rng.choice(locs), t))


_FOLLOW = {
    "read": [("soma", "usiku"), ("soma", "nyumbani")],
    "wear": [("vaa", "kanisani"), ("vaa", "siku ya harusi")],
    "cook": [("pika", "jikoni")],
    "plant": [("panda", "shambani")],
}


def _t_narrative(rng):
    """S alinunua O ..., kisha akaOC-V ...: narrative -ka- with object concord."""
    first = rng.choice(["nunua", "nunua", "pokea", "chuma", "vuna", "azima"])
    tag = {"nunua": "buy", "pokea": "receive", "chuma": "pick", "vuna": "harvest",
           "azima": "borrow"}[first]
    s = _subject(rng, "adult" if first == "vuna" else "any")
    noun = rng.choice(_BY_TAG[tag])
    plural = None
    if first == "chuma":
        plural = True
    elif noun.sg == noun.pl and noun.num != "p" and noun.csg != "1":
        plural = False  # keep ambiguous 9/10 nouns singular so the concord reads clearly
    o, c = _obj(rng, noun, plural=plural, adj_p=0.5, tag=tag)
    if first in ("nunua",):
        loc = rng.choice(["sokoni", "dukani", "mjini"])
    elif first in ("chuma", "vuna"):
        loc = "shambani"
    else:
        loc = ""
    follows = [("peleka", "nyumbani")]
    for t in noun.tags:
        if t != "plant" or first == "nunua":
            follows += _FOLLOW.get(t, [])
    if first in ("chuma", "vuna"):
        follows = [("uza", "sokoni"), ("peleka", "nyumbani")]
    if first == "pokea" and noun.sg == "habari":
        follows = [("eleza", "mama " + poss("9", s.own))]
    future = rng.random() < 0.3
    v2, comp = rng.choice(follows)
    if rng.random() < 0.2 and first == "nunua":
        kin, kc = _kin_np(rng, s.own)
        second = "kisha " + (verb(s.agr, "ta", "pa", oc=kc) if future
                             else verb(s.agr, "ka", "pa", oc=kc)) + " " + kin
    elif v2 == "eleza":
        second = "kisha " + verb(s.agr, "ta" if future else "ka", "elezea",
                                 oc="1") + " " + comp
    else:
        second = "kisha " + (verb(s.agr, "ta", v2, oc=c) if future
                             else verb(s.agr, "ka", v2, oc=c)) + " " + comp
    tense = "ta" if future else "li"
    t = _time(rng, tense, 0.6)
    if t.endswith("usiku"):
        t = t.replace("usiku", "jioni")
    head = _join(s.text, verb(s.agr, tense, first), o, loc, t)
    return _finish(head + ", " + second)


def _t_because(rng):
    """Main clause + kwa sababu + reason, tense-consistent."""
    r = rng.random()
    s = _subject(rng)
    a = s.agr
    sick = "wagonjwa" if s.plural else "mgonjwa"
    if r < 0.3:
        # past: did not go / came back early / was late
        place = rng.choice([_workplace(rng, s), _workplace(rng, s), "sokoni", "kanisani",
                            "mjini"])
        main = rng.choice(["neg", "back", "late"])
        t = rng.choice(PAST_TIMES)
        if main == "neg":
            head = _join(s.text, verb(a, "li", "enda", True), place, t)
            reason = rng.choice([
                verb(a, "li", "wa") + " " + sick,
                verb(a, "li", "wa") + " " + verb(a, "me", "choka") + " sana",
                "mvua ilinyesha sana",
                verb(a, "li", "wa", True) + " na nauli",
                "basi lilichelewa kufika",
                verb(a, "li", "wa") + " na kazi nyingi nyumbani",
            ])
        elif main == "back":
            t = rng.choice(["jana", "jana jioni", "juzi", "leo"])
            head = _join(s.text, verb(a, "li", "rudi"), "nyumbani mapema", t)
            reason = rng.choice([
                verb(a, "li", "wa") + " " + sick,
                verb(a, "li", "wa") + " " + verb(a, "me", "choka") + " sana",
                "mvua ilianza kunyesha",
                "wageni " + poss("2", s.own) + " walikuwa wanakuja",
                "giza lilikuwa linaingia",
            ])
        else:
            head = _join(s.text, verb(a, "li", "chelewa"), "kufika", place, t)
            reason = rng.choice([
                "basi lilichelewa",
                "mvua ilinyesha sana",
                verb(a, "li", "chelewa") + " kuamka",
                "barabara ilikuwa imefungwa",
                "gari " + poss("5", s.own) + " liliharibika njiani",
            ])
    elif r < 0.55:
        # buying: agreement of the reason with the object
        s = _subject(rng, "adult")
        a = s.agr
        noun = rng.choice(_BY_TAG["buy"])
        plural = noun.pl is not None and (noun.num == "p" or rng.random() < 0.5)
        o, c = _obj(rng, noun, plural=plural, adj_p=0.3, quant_p=0.0)
        t = rng.choice(PAST_TIMES)
        loc = rng.choice(["sokoni", "dukani", "mjini"])
        if rng.random() < 0.5:
            head = _join(s.text, verb(a, "li", "nunua", True), o, loc, t)
            reason = rng.choice([
                verb(c, "li", "wa") + " ghali sana",
                verb(a, "li", "wa", True) + " na pesa za kutosha",
            ])
        else:
            q = adj("ingi", c) if plural else ""
            base = noun.pl if plural else noun.sg
            head = _join(s.text, verb(a, "li", "nunua"), base, q, loc, t)
            reason = rng.choice([
                verb(c, "li", "wa") + " rahisi sana",
                verb(c, "li", "wa") + " " + adj("zuri", c) + " sana",
                verb(a, "li", "wa") + " na wageni nyumbani",
            ])
    elif r < 0.75:
        # future: new clothes / tools because the old ones are worn out/broken
        s = _subject(rng, "adult")
        a = s.agr
        worn = rng.random() < 0.5
        tag = "wear" if worn else "repair"
        noun = rng.choice([n for n in _BY_TAG[tag] if n.pl is not None])
        plural = noun.num == "p" or rng.random() < 0.3
        word = noun.pl if plural else noun.sg
        c = noun.cpl if plural else noun.csg
        t = rng.choice(FUT_TIMES)
        head = _join(s.text, verb(a, "ta", "nunua"), word, adj("pya", c), t)
        reason = ASSOC[c] + " zamani " + verb(c, "me", "chakaa" if worn else "haribika")
    elif r < 0.88:
        # future negative
        place = rng.choice([_workplace(rng, s), _workplace(rng, s), "sokoni"])
        t = rng.choice(["kesho", "kesho asubuhi", "Jumatatu ijayo", "wiki ijayo"])
        head = _join(s.text, verb(a, "ta", "enda", True), place, t)
        reason = rng.choice([
            "ni sikukuu",
            verb(a, "ta", "safiri") + " kwenda " + rng.choice(CITIES),
            verb(a, "ta", "tembelea", oc="1") + " " + _kin_np(rng, s.own)[0],
            _have(a, "na") + " kazi nyingi nyumbani",
        ])
    else:
        # present
        if rng.random() < 0.5:
            head = _join(s.text, verb(a, "na", "pika"), "chakula kingi leo")
            reason = rng.choice(["wageni wanakuja jioni",
                                 "kuna sherehe nyumbani",
                                 _kin_np(rng, s.own)[0] + " anarudi kutoka " +
                                 rng.choice(CITIES)])
        else:
            place = rng.choice([_workplace(rng, s), _workplace(rng, s), "sokoni"])
            head = _join(s.text, verb(a, "na", "enda", True), place, "leo")
            reason = rng.choice(["ni " + sick, "ni sikukuu",
                                 "mvua inanyesha sana",
                                 _have(a, "na") + " homa kali"])
    return _finish(head + " kwa sababu " + reason)


_OPPOSITES = [("kubwa", "dogo"), ("refu", "fupi"), ("safi", "chafu"), ("ghali", "rahisi"),
              ("bivu", "bichi"), ("zito", "epesi"), ("pana", "embamba"), ("ema", "baya"),
              ("gumu", "rahisi"), ("kavu", "bichi"), ("eupe", "eusi"), ("eupe", "ekundu"),
              ("eusi", "ekundu")]


GRADABLE = ["kubwa", "dogo", "zuri", "baya", "refu", "fupi", "zito", "epesi", "chafu",
            "tamu", "kali", "nene", "pana", "embamba", "gumu", "safi", "pya"]
TEMPORARY = ["chafu", "safi", "tamu", "moto", "baridi", "bichi", "bivu", "kavu"]
NOT_OWNED = ["barabara", "daraja", "ukuta", "kazi", "mchele", "habari", "pesa"]
OWNERS = ["mwalimu", "mkulima", "bibi yangu", "jirani yetu", "mama yangu", "baba yake",
          "mjomba wangu", "babu yetu"]


def _compatible(a1, others):
    return [x for x in others
            if x != a1 and ADJ_KIND[x] != "a"
            and not any(x in pair and a1 in pair for pair in _OPPOSITES)]


def _t_predicate(rng):
    """Copula with adjective agreement: 'Nyumba ya Juma ni kubwa na nzuri.'"""
    pool = [n for n in NOUNS if n.adjs and n.csg != "1" and n.sg not in NOT_OWNED]
    noun = rng.choice(pool)
    plural = noun.pl is not None and (noun.num == "p" or rng.random() < 0.45)
    word = noun.pl if plural else noun.sg
    c = noun.cpl if plural else noun.csg
    buyable = "buy" in noun.tags or "sell" in noun.tags
    r = rng.random()
    if r < 0.45:
        owner = rng.choice(NAMES) if rng.random() < 0.6 else rng.choice(OWNERS)
        np_ = word + " " + ASSOC[c] + " " + owner
    elif r < 0.7:
        np_ = word + " " + poss(c, rng.choice(["angu", "ake", "etu", "ao"]))
    else:
        np_ = word + " " + THIS[c]
    pattern = rng.random()
    grad = [a for a in noun.adjs if a in GRADABLE]
    temp = [a for a in noun.adjs if a in TEMPORARY]
    if pattern < 0.3:
        # ni A na B
        firsts = [a for a in noun.adjs if ADJ_KIND[a] != "a"]
        if firsts:
            a1 = rng.choice(firsts)
            others = _compatible(a1, noun.adjs + (["ghali", "rahisi"] if buyable else []))
            if others:
                return _finish(_join(np_, "ni", adj(a1, c), "na", adj(rng.choice(others), c)))
    if pattern < 0.5 and temp:
        # temporary state in the past
        a1 = rng.choice(temp)
        tail = "" if ADJ_KIND[a1] == "a" else "sana"
        return _finish(_join(np_, verb(c, "li", "wa"), adj(a1, c), tail,
                             rng.choice(["jana", "jana jioni", "leo asubuhi"])))
    if pattern < 0.7 and grad and np_.endswith(THIS[c]):
        # si A kama yule
        return _finish(_join(np_, "si", adj(rng.choice(grad), c), "kama", THAT[c]))
    a1 = rng.choice(noun.adjs)
    tail = "" if ADJ_KIND[a1] == "a" else "sana"
    body = _join("ni", adj(a1, c), tail)
    if buyable and rng.random() < 0.5:
        body += rng.choice([", lakini ni ghali", ", na ni rahisi"])
    return _finish(np_ + " " + body)


def _t_compare(rng):
    """Comparison with kuliko."""
    if rng.random() < 0.5:
        noun = rng.choice([n for n in NOUNS if set(n.adjs) & {"kubwa", "refu", "pya", "zito"}
                           and n.pl is not None and n.csg != "1" and n.sg not in NOT_OWNED])
        a = rng.choice([x for x in noun.adjs if x in ("kubwa", "dogo", "refu", "fupi",
                                                        "pya", "zito", "epesi")])
        c = noun.csg
        o1, o2 = rng.sample(NAMES + OWNERS, 2)
        return _finish(_join(noun.sg, ASSOC[c], o1, "ni", adj(a, c), "kuliko", noun.sg,
                             ASSOC[c], o2))
    a = rng.choice(["refu", "fupi", "nene", "dogo", "kubwa", "hodari", "changamfu"])
    if rng.random() < 0.5:
        k1, k2 = rng.sample(["dada", "kaka", "binamu", "rafiki", "jirani"], 2)
        own = rng.choice(["angu", "ake", "etu"])
        return _finish(_join(k1, poss("9", own), "ni", adj(a, "1"), "kuliko", k2,
                             poss("9", own)))
    n1, n2 = rng.sample(NAMES, 2)
    k = rng.choice(["rafiki", "jirani", "binamu"])
    return _finish(_join(n1, "ni", adj(a, "1"), "kuliko", k, "yake", n2))


_EXIST_PLACES = [
    ("shambani", ["mti", "mwembe", "mgomba", "mahindi", "maharage", "mboga", "ng'ombe",
                  "mbuzi", "kondoo", "kuku"], True),
    ("sokoni", ["tunda", "embe", "chungwa", "ndizi", "mboga", "samaki", "nyama", "mkeka",
                "kikapu", "nguo", "kiatu", "ng'ombe", "mbuzi", "kuku", "yai"], False),
    ("dukani", ["mchele", "mafuta", "kalamu", "kitabu", "kofia", "simu", "redio", "sahani",
                "kikombe", "mkate", "juisi", "maziwa"], False),
    ("jikoni", ["chakula", "chombo", "sahani", "kikombe", "chungu", "maji", "maziwa",
                "nyama", "mkate", "ndizi", "yai"], False),
    ("darasani", ["kitabu", "kiti", "meza", "kalamu"], False),
]


def _t_exist(rng):
    """Existential kuna/kulikuwa na/kutakuwa na, and the locative copula -ko."""
    r = rng.random()
    if r < 0.5:
        loc, words, fixed = rng.choice(_EXIST_PLACES)
        noun = _BY_NAME[rng.choice(words)]
        if noun.pl is None:
            q = ASSOC[noun.csg] + " kutosha"
            if noun.adjs and rng.random() < 0.5:
                q = adj(rng.choice(noun.adjs), noun.csg)
            np_ = noun.sg + " " + q
        else:
            np_, _ = _obj(rng, noun, plural=True, adj_p=0.5, quant_p=1.0)
        if loc in ("shambani", "dukani") and rng.random() < 0.6:
            loc += " kwa " + rng.choice(NAMES + ["babu", "mjomba wangu", "jirani yetu"])
        tense = "na" if fixed else rng.choice(["na", "li", "ta"])
        ex = {"na": "kuna", "li": "kulikuwa na", "ta": "kutakuwa na"}[tense]
        neg = {"na": "hakuna", "li": "hakukuwa na", "ta": "hakutakuwa na"}[tense]
        if fixed:
            t = rng.choice(["", "siku hizi"])
        else:
            t = rng.choice([x for x in TIMES[tense] if "usiku" not in x]
                           if tense != "na" else ["leo", "siku hizi", "sasa hivi"])
        if rng.random() < 0.25:
            return _finish(_join(t, neg, noun.pl or noun.sg, loc, "kwa sasa" if not t else ""))
        return _finish(_join(t, ex, np_, loc))
    if r < 0.75:
        # people: -ko
        s = _subject(rng, pron=False)
        loc = rng.choice(["sokoni", "shambani", "hospitalini", "kanisani", "jikoni",
                          "shuleni", "ofisini", "mjini", "nyumbani"])
        kin = _kin_np(rng, s.own, rng.random() < 0.3)[0]
        if kin.split()[0] == s.text.split()[0].lower():
            kin = "rafiki " + poss("10" if s.plural else "9", s.own)
        with_ = rng.choice(["pamoja na " + kin, "sasa hivi", "tangu asubuhi"])
        if rng.random() < 0.5:
            return _finish(_join(s.text, KO[s.agr], loc, with_))
        return _finish(_join(s.text, verb(s.agr, "li", "wa"), loc,
                             rng.choice(["jana", "jana jioni", "juzi", "wiki iliyopita"]),
                             with_ if not with_.startswith(("sasa", "tangu")) else ""))
    # things: -ko
    noun = rng.choice(_BY_TAG["seek"] + _BY_TAG["lose"])
    plural = noun.pl is not None and (noun.num == "p" or rng.random() < 0.4)
    word = noun.pl if plural else noun.sg
    c = noun.cpl if plural else noun.csg
    own = rng.choice(["angu", "ake", "etu"])
    np_ = word + " " + poss(c, own)
    if noun.adjs and rng.random() < 0.4:
        np_ += " " + adj(rng.choice(noun.adjs), c)
    l1, l2 = rng.sample(["mezani", "kabatini", "chumbani", "jikoni", "sandukuni",
                         "garini", "sebuleni", "ofisini"], 2)
    tail = rng.choice([", si " + l2, " kwa " + rng.choice(NAMES), ""])
    if tail == "":
        return _finish(_join(np_, KO[c], l1, "tangu jana"))
    return _finish(np_ + " " + KO[c] + " " + l1 + tail)


_TRAVEL_TIMES = {"na": ["leo", "sasa hivi"], "me": ["leo", "leo asubuhi", "sasa hivi"]}


def _travel_time(rng, tense, p):
    if tense in _TRAVEL_TIMES:
        return rng.choice(_TRAVEL_TIMES[tense]) if rng.random() < p else ""
    return _time(rng, tense, p, True)


def _t_travel(rng):
    s = _subject(rng)
    a = s.agr
    tense = rng.choice(["li", "ta", "li", "ta", "na", "me"])
    city = rng.choice(CITIES)
    r = rng.random()
    if r < 0.4:
        trans = rng.choice(TRANSPORT + ["boti"] if city in ("Zanzibar",) else TRANSPORT)
        if city == "Zanzibar":
            trans = rng.choice(["ndege", "boti", "meli"])
        neg = tense in ("li", "ta") and rng.random() < 0.2
        return _finish(_join(s.text, verb(a, tense, "safiri", neg), "kwenda", city,
                             _travel_time(rng, tense, 0.8), "kwa " + trans))
    if r < 0.7:
        kin, c = _kin_np(rng, s.own, rng.random() < 0.3)
        if tense == "na":
            tense = "ta"
        return _finish(_join(s.text, verb(a, tense, "enda"), city, _travel_time(rng, tense, 0.8),
                             verb(a, "inf", "tembelea", oc=c), kin))
    if r < 0.85:
        if tense == "na":
            tense = "li"
        c2 = rng.choice([x for x in CITIES if x != city])
        return _finish(_join(s.text, verb(a, tense, "fika"), city, _travel_time(rng, tense, 0.9),
                             "kutoka", c2))
    kin, c = _kin_np(rng, s.own, rng.random() < 0.4)
    return _finish(_join(s.text, verb(a, "na", "ishi"), city, "pamoja na", kin))


WANT_TAGS = ["buy", "cook", "read", "write", "eat", "drink", "sing", "play", "plant",
             "wear", "listen", "launder", "sew", "drive", "build", "draw", "feed",
             "herd", "pick", "repair", "wash", "clean", "sweep", "paint", "milk"]


def _t_want(rng):
    """penda / taka + infinitive."""
    s = _subject(rng)
    a = s.agr
    form = rng.choice([("penda", "na", False), ("taka", "na", False),
                       ("taka", "li", False), ("penda", "na", True),
                       ("taka", "na", True), ("taka", "li", True)])
    head = verb(a, form[1], form[0], form[2])
    r = rng.random()
    if r < 0.55:
        stem, tag, locs, who = _pick_action(rng, WANT_TAGS)
        noun = rng.choice(_BY_TAG[tag])
        o, _ = _obj(rng, noun, adj_p=0.5, tag=tag)
        inf = _join(verb(a, "inf", stem), o, _place_for(rng, noun, locs))
    elif r < 0.8:
        stem, comp, locs, who = rng.choice(INTRANS)
        inf = _join(verb(a, "inf", stem), comp, rng.choice(locs))
    else:
        stem, locs, comp = rng.choice([h for h in HUMAN_VERBS
                                       if h[0] in ("saidia", "tembelea", "pigia", "ona")])
        kin, c = _kin_np(rng, s.own)
        inf = _join(verb(a, "inf", stem, oc=c), kin, comp, rng.choice(locs))
    if form[1] == "li":
        t = rng.choice(PAST_TIMES)
    else:
        t = rng.choice(["kila siku", "kila jioni", "siku hizi", ""] +
                       (["leo", "kesho"] if form[0] == "taka" else []))
    out = _join(s.text, head, inf, t)
    if len(out.split()) < 5:
        out = _join(out, "sana") if form[0] == "penda" and not form[2] else out
    return _finish(out)


_STILL = [("maliza", "kazi @own"), ("la", "chakula cha mchana"), ("rudi", "nyumbani"),
          ("fika", "shuleni"), ("amka", ""), ("lala", ""), ("oga", ""),
          ("nunua", "zawadi"), ("fika", "kazini"), ("maliza", "kusoma kitabu")]


def _t_still(rng):
    """Perfect vs. negative perfect with bado."""
    s1 = _subject(rng, pron=False)
    while True:
        s2 = _subject(rng, pron=False)
        if s2.text != s1.text:
            break
    stem, comp = rng.choice(_STILL)
    comp = comp.replace("@own", poss("9", s1.own))
    return _finish(_join(s1.text, verb(s1.agr, "me", stem), comp) + ", lakini " +
                   _join(s2.text, "bado", verb(s2.agr, "me", stem, True)))


_WEATHER = {
    "rain": {"li": "mvua ilinyesha sana", "na": "mvua inanyesha sana",
             "ta": "mvua itanyesha sana"},
    "cold": {"li": "kulikuwa na baridi kali", "na": "kuna baridi kali",
             "ta": "kutakuwa na baridi kali"},
    "sun": {"li": "jua lilikuwa kali sana", "na": "jua ni kali sana",
            "ta": "jua litakuwa kali sana"},
    "wind": {"li": "upepo mkali ulivuma", "na": "upepo mkali unavuma",
             "ta": "upepo mkali utavuma"},
}


def _t_weather(rng):
    kind = rng.choice(sorted(_WEATHER))
    tense = rng.choice(["li", "na", "ta"])
    t = {"li": rng.choice(["jana", "jana usiku", "juzi", "wiki iliyopita"]),
         "na": rng.choice(["leo", "siku hizi"]),
         "ta": rng.choice(["kesho", "kesho asubuhi", "wiki ijayo"])}[tense]
    w = _WEATHER[kind][tense]
    s = _subject(rng)
    a = s.agr
    if kind == "rain":
        opts = [(verb(a, tense, "enda", True), rng.choice(["shambani", "sokoni", "mjini"])),
                (verb(a, tense, "beba"), "miavuli" if s.plural else "mwavuli"),
                (verb(a, tense, "baki"), "nyumbani")]
        if s.kind == "c":
            opts.append((verb(a, tense, "cheza"), "ndani"))
        if s.plural:
            opts.append(("wakulima " + verb("2", tense, "furahi"), "sana"))
    elif kind == "cold":
        coat = "makoti mazito" if s.plural else "koti zito"
        opts = [(verb(a, tense, "vaa"), coat),
                (verb(a, tense, "nywa"), "chai ya moto"),
                (verb(a, tense, "kaa"), "ndani karibu na moto")]
    elif kind == "sun":
        opts = [(verb(a, tense, "nywa"), "maji mengi"),
                (verb(a, tense, "pumzika"), "chini ya mti"),
                (verb(a, tense, "vaa"), "kofia" if not s.plural else "kofia zao")]
    else:
        opts = [(verb(a, tense, "funga"), "madirisha yote"),
                (verb(a, tense, "enda", True), "baharini"),
                (verb(a, tense, "baki"), "nyumbani")]
        if tense != "na":
            opts.append(("wavuvi " + verb("2", tense, "enda", True), "baharini"))
    v, comp = rng.choice(opts)
    if v.startswith(("wakulima", "wavuvi")):
        clause = _join(v, comp)
    else:
        clause = _join(s.text, v, comp)
    return _finish(_join(t, w) + ", kwa hiyo " + clause)


def _t_joint(rng):
    n1, n2 = rng.sample(NAMES, 2)
    if rng.random() < 0.4:
        n2 = _kin_np(rng, "ake")[0]
    stem, tag, locs, who = _pick_action(rng, [t for t in WANT_TAGS if t != "drive"])
    tense = _tense(rng, ("li", "na", "ta", "li"))
    noun = rng.choice(_BY_TAG[tag])
    o, _ = _obj(rng, noun, adj_p=0.4, tag=tag, quant_p=0.0 if tag == "listen" else 0.25)
    return _finish(_join(n1, "na", n2, verb("2", tense, stem), o, "pamoja",
                         _place_for(rng, noun, locs), _time(rng, tense, 0.6)))


COLORS = ["eupe", "eusi", "ekundu", "kijani", "bluu", "njano"]


def _t_relative(rng):
    """amba- relative + copula agreeing with the head noun."""
    stem, tag, locs, who = _pick_action(rng, ["buy", "sell", "cook", "read", "write",
                                              "build", "repair", "receive", "sew"])
    noun = rng.choice([n for n in _BY_TAG[tag] if n.adjs])
    plural = noun.pl is not None and (noun.num == "p" or rng.random() < 0.45)
    word = noun.pl if plural else noun.sg
    c = noun.cpl if plural else noun.csg
    s = _subject(rng, "adult" if tag in ("build", "sew") else who)
    past_cop = tag in ("cook", "receive") or rng.random() < 0.5
    preds = [x for x in noun.adjs if (x not in ("pya", "zamani") or not past_cop)
             and x != "chafu"]
    preds += ["ghali", "rahisi"] if tag in ("buy", "sell") else []
    if tag in ("cook", "receive", "write", "read"):
        preds = [x for x in preds if x not in COLORS]
    if not preds:
        preds = ["zuri"]
    a = rng.choice(preds)
    tail = "" if a in COLORS or ADJ_KIND[a] == "a" else "sana"
    v = verb(s.agr, "li", stem)
    t = rng.choice(LONG_PAST if tag == "build" else [x for x in PAST_TIMES if "usiku" not in x])
    loc = _place_for(rng, noun, locs)
    cop = verb(c, "li", "wa") if past_cop else "ni"
    return _finish(_join(word, AMBA[c], s.text, v, loc, t, cop, adj(a, c), tail))


def _t_habit(rng):
    """Habitual hu-."""
    s = _subject(rng, pron=False)
    if rng.random() < 0.5:
        t = rng.choice(["kila asubuhi", "kila siku", "kila Jumatatu", "siku za kazi"])
        place = _workplace(rng, s)
        return _finish(t + " " + _join(s.text, "huamka mapema na kwenda", place))
    stem, tag, locs, who = _pick_action(rng, ["cook", "read", "buy", "sell", "launder",
                                              "feed", "drink", "listen", "herd", "sweep"])
    pool = _BY_TAG[tag]
    if tag in ("buy", "sell"):
        pool = [n for n in pool if "eat" in n.tags or "drink" in n.tags]
    noun = rng.choice(pool)
    o, _ = _obj(rng, noun, adj_p=0.3, tag=tag)
    loc = _place_for(rng, noun, locs)
    return _finish(_join(s.text, verb(s.agr, "hu", stem), o, loc,
                         rng.choice(["kila jioni", "kila asubuhi", "kila Jumamosi",
                                     "kila wiki", "mara kwa mara"])))


_SLEEP_TIMES = {"li": ["jana usiku", "juzi usiku"], "na": ["kila usiku", "siku hizi"],
                "ta": ["leo usiku", "kesho usiku"], "me": ["sasa hivi", "tayari"]}


def _t_intrans(rng):
    stem, comp, locs, who = rng.choice(INTRANS)
    s = _subject(rng, who)
    tense = _tense(rng)
    neg = tense != "me" and rng.random() < 0.25
    while True:
        kin = _kin_np(rng, s.own)[0]
        if kin.split()[0] != (s.text.split() or [""])[0].lower():
            break
    extra = rng.choice(["", "", "pamoja na " + kin, "kwa muda mrefu"])
    times = TIMES[tense]
    if stem == "lala":
        times = _SLEEP_TIMES[tense]
        extra = "mapema" if not neg else ""
    return _finish(_join(s.text, verb(s.agr, tense, stem, neg), comp,
                         rng.choice(locs), extra, rng.choice(times)))


HAVE_NOUNS = ["kitabu", "baiskeli", "gari", "ng'ombe", "mbuzi", "kuku", "kondoo", "simu",
              "redio", "kiti", "meza", "kitanda", "shati", "koti", "kiatu", "nguo", "mkoba",
              "jembe", "sanduku", "kikapu", "saa", "kalamu", "mwavuli", "kabati", "ndoo",
              "sahani", "kikombe", "mbwa", "paka"]


def _t_have(rng):
    """kuwa na: possession with number agreement."""
    s = _subject(rng)
    a = s.agr
    noun = _BY_NAME[rng.choice(HAVE_NOUNS)]
    tense = rng.choice(["na", "na", "li", "ta"])
    if rng.random() < 0.3:
        veh = rng.choice(["gari", "baiskeli"])
        how = rng.choice(["kwa miguu", "kwa basi", "kwa pikipiki"])
        return _finish(_join(s.text, _have(a, "na", True), veh, ", kwa hiyo",
                             verb(a, "na", "enda"), _workplace(rng, s),
                             how).replace(" ,", ","))
    o, c = _obj(rng, noun, plural=True, adj_p=0.4, quant_p=0.9)
    home = "nyumbani kw" + s.own
    loc = rng.choice([home, "shambani", ""]) if "herd" in noun.tags else rng.choice([home, ""])
    t = {"na": "", "li": rng.choice(["zamani", "mwaka jana", "mwaka juzi"]),
         "ta": rng.choice(["mwaka ujao", "hivi karibuni"])}[tense]
    return _finish(_join(s.text, _have(a, tense), o, loc, t))


_TEMPLATES = [
    (_t_svo, 5), (_t_poss, 3), (_t_human, 3), (_t_narrative, 2), (_t_because, 3),
    (_t_predicate, 2), (_t_compare, 1), (_t_exist, 2), (_t_travel, 2), (_t_want, 2),
    (_t_still, 1), (_t_weather, 2), (_t_joint, 1), (_t_relative, 2), (_t_habit, 1),
    (_t_intrans, 2), (_t_have, 1),
]
_WEIGHTED = [f for f, w in _TEMPLATES for _ in range(w)]


def sentence(rng):
    """One grammatical declarative sentence of 6-16 words."""
    while True:
        s = rng.choice(_WEIGHTED)(rng)
        n = len(s.split())
        if 6 <= n <= 16:
            return s


# --------------------------------------------------------------------------
# NLI.
# --------------------------------------------------------------------------

_NLI_ACTIONS = [("nunua", "buy", ["sokoni", "dukani", "mjini"], "any"),
                ("uza", "sell", ["sokoni", "dukani"], "adult"),
                ("pika", "cook", ["jikoni", "nyumbani"], "adult"),
                ("soma", "read", ["maktabani", "nyumbani", "darasani"], "any"),
                ("andika", "write", ["darasani", "ofisini", "nyumbani"], "any"),
                ("tengeneza", "repair", ["nyumbani", "mjini"], "adult"),
                ("leta", "bring", ["shuleni", "ofisini", "nyumbani"], "any"),
                ("beba", "carry", ["sokoni", "shambani"], "any"),
                ("panda", "plant", ["shambani", "bustanini"], "adult"),
                ("fua", "launder", ["mtoni", "nyumbani"], "any"),
                ("la", "eat", ["mgahawani", "nyumbani", "shuleni"], "any")]


_DAY_TIMES = [t for t in PAST_TIMES if "usiku" not in t]
_GO = {"sokoni": "sokoni", "dukani": "dukani", "mjini": "mjini", "shuleni": "shuleni",
       "darasani": "shuleni", "maktabani": "maktabani", "ofisini": "ofisini",
       "shambani": "shambani", "mtoni": "mtoni", "mgahawani": "mgahawani"}


def _nli_subject(rng, who="any"):
    r = rng.random()
    if r < 0.6:
        return Subj(rng.choice(NAMES), "1", "ake")
    if r < 0.8:
        text, agr = _kin_np(rng, "angu")
        return Subj(_cap(text), agr, "ake")
    sg, pl, _ = rng.choice([p for p in PEOPLE if p[0] != "mama" and
                            (who == "any" or p[2] == "a")])
    if rng.random() < 0.5:
        return Subj(_cap(pl), "2", "ao")
    return Subj(_cap(sg), "1", "ake")


def nli(rng):
    """(premise, hypothesis, label): 0 entailment, 1 neutral, 2 contradiction."""
    stem, tag, locs, who = rng.choice(_NLI_ACTIONS)
    s = _nli_subject(rng, who)
    a = s.agr
    noun = rng.choice(_BY_TAG[tag])
    plural = noun.pl is not None and (noun.num == "p" or rng.random() < 0.4)
    word = noun.pl if plural else noun.sg
    c = noun.cpl if plural else noun.csg
    full = word
    adjs = _adjs_for(noun, tag)
    if adjs and rng.random() < 0.8:
        full = word + " " + adj(rng.choice(adjs), c)
    loc = _place_for(rng, noun, locs)
    t = rng.choice(_DAY_TIMES)
    v = verb(a, "li", stem)
    vneg = verb(a, "li", stem, True)
    premise = _finish(_join(s.text, v, full, loc, t))
    label = rng.randrange(3)
    if label == 0:
        hyp = rng.choice([
            _join(s.text, v, word),
            _join(s.text, v, word, loc),
            _join(s.text, v, word, t),
            _join(s.text, verb(a, "li", "wa"), loc, t),
            _join(s.text, v, "kitu", loc) if tag in ("buy", "sell", "bring", "carry",
                                                       "cook", "eat") else
            _join(s.text, v, full),
        ])
    elif label == 2:
        hyp = rng.choice([
            _join(s.text, vneg, word),
            _join(s.text, verb(a, "li", "wa", True), loc, t),
            _join(s.text, vneg, word, t),
            _join(s.text, vneg, "kitu", t) if tag in ("buy", "sell", "bring", "carry",
                                                        "cook", "eat") else
            _join(s.text, vneg, word, loc),
        ])
    else:
        opts = [
            _join(s.text, verb(a, "na", "penda"), rng.choice(HOBBIES)),
            _join(s.text, verb(a, "li", "enda"), _GO.get(loc, "mjini"), "kwa " + rng.choice(
                      ["basi", "baiskeli", "pikipiki", "miguu"])),
            _join(s.text, verb(a, "li", "fanya"), "hivyo pamoja na",
                  ("rafiki " + poss("10", "ao")) if s.plural else ("rafiki " + poss("9", "ake"))),
            _join(s.text, verb(a, "li", "wa"), "na furaha sana siku hiyo"),
        ]
        if tag in ("buy", "sell"):
            opts.append(_join(_cap(word), verb(c, "li", "wa"), rng.choice(["ghali", "rahisi"]),
                              "sana"))
        if tag in ("buy", "cook", "bring", "repair", "write"):
            kin, _ = _kin_np(rng, s.own)
            opts.append(_join(s.text, v, word, "kwa ajili ya", kin))
        if not s.plural:
            opts.append(_join(s.text, _have(a, "na"),
                              rng.choice(["dada", "kaka", "watoto"]) + " " +
                              rng.choice(["wawili", "watatu", "wanne"])))
        hyp = rng.choice(opts)
    return premise, _finish(hyp), label


# --------------------------------------------------------------------------
# QA.
# --------------------------------------------------------------------------

def _qa_event(rng, name, used_stems):
    """One past event about ``name``; returns (sentence, qa-dict)."""
    r = rng.random()
    if r < 0.55:
        while True:
            stem, tag, locs, who = rng.choice(_NLI_ACTIONS)
            if stem not in used_stems:
                break
        used_stems.append(stem)
        noun = rng.choice(_BY_TAG[tag])
        plural = noun.pl is not None and (noun.num == "p" or rng.random() < 0.4)
        word = noun.pl if plural else noun.sg
        c = noun.cpl if plural else noun.csg
        obj = word
        adjs = _adjs_for(noun, tag)
        if adjs and rng.random() < 0.6:
            obj = word + " " + adj(rng.choice(adjs), c)
        loc = _place_for(rng, noun, locs)
        t = rng.choice(_DAY_TIMES)
        v = verb("1", "li", stem)
        sent = _finish(_join(name, v, obj, loc, t))
        qs = {
            "nani": ("Nani " + v + " " + word + "?", name),
            "nini": (_join(name, v, "nini", loc) + "?", obj),
            "wapi": (_join(name, v, word, "wapi") + "?", loc),
            "lini": (_join(name, v, word, "lini") + "?", t),
        }
        return sent, qs
    if r < 0.8:
        if "safiri" in used_stems:
            return _qa_event(rng, name, used_stems)
        used_stems.append("safiri")
        city = rng.choice(CITIES)
        t = rng.choice(PAST_TIMES)
        trans = rng.choice(TRANSPORT) if city != "Zanzibar" else "ndege"
        sent = _finish(_join(name, "alisafiri kwenda", city, t, "kwa", trans))
        qs = {
            "nani": ("Nani alisafiri kwenda " + city + "?", name),
            "wapi": (name + " alisafiri kwenda wapi?", city),
            "lini": (name + " alisafiri kwenda " + city + " lini?", t),
        }
        return sent, qs
    if "saidia" in used_stems:
        return _qa_event(rng, name, used_stems)
    used_stems.append("saidia")
    kin, c = _kin_np(rng, "ake")
    loc = rng.choice(["jikoni", "shambani", "dukani", "sokoni"])
    t = rng.choice(PAST_TIMES)
    v = verb("1", "li", "saidia", oc=c)
    sent = _finish(_join(name, v, kin, loc, t))
    qs = {
        "nani": (name + " " + v + " nani " + loc + "?", kin),
        "wapi": (_join(name, v, kin, "wapi") + "?", loc),
        "lini": (_join(name, v, kin, "lini") + "?", t),
    }
    return sent, qs


def qa(rng):
    """(context, question, answer); the answer is a span of the context."""
    n = rng.choice([1, 2, 2, 3])
    names = rng.sample(NAMES, n)
    used = []
    events = [_qa_event(rng, nm, used) for nm in names]
    context = " ".join(e[0] for e in events)
    k = rng.randrange(n)
    qs = events[k][1]
    kind = rng.choice(sorted(qs))
    question, answer = qs[kind]
    question = _cap(question)
    assert answer in context
    return context, question, answer


# --------------------------------------------------------------------------
# Generation prompts.
# --------------------------------------------------------------------------

PROMPTS = [
    "Kila asubuhi mama yangu",
    "Jana jioni watoto walikwenda",
    "Mwalimu wetu anapenda sana",
    "Sokoni leo kuna",
    "Wakulima wa kijiji hiki",
    "Kesho asubuhi tutasafiri kwenda",
    "Nyumba ya bibi yangu",
    "Baada ya chakula cha jioni",
    "Juma alinunua baiskeli mpya",
    "Mvua ilinyesha sana jana",
    "Watoto wanapenda kucheza mpira",
    "Dada yangu anafanya kazi",
    "Wiki iliyopita tulikwenda",
    "Kitabu ambacho nilinunua jana",
    "Baba yangu hakwenda kazini",
    "Katika shamba la babu",
    "Amina anapika chakula kitamu",
    "Wanafunzi walimsikiliza mwalimu wao",
    "Siku ya Jumamosi sisi",
    "Mkulima aliuza ng'ombe wawili",
    "Daktari aliwaambia wagonjwa",
    "Kila jioni baada ya kazi",
    "Rafiki yangu anaishi Mombasa na",
    "Leo asubuhi jua lilikuwa",
]
