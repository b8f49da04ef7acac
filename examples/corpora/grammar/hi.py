"""Hindi (हिन्दी, Devanagari script) demo grammar.

A hand-written demo grammar by the neuron-pilot authors: the word lists and sentence templates below
were written for the neuron-pilot demo corpora, not taken from any corpus. It encodes the agreement
Hindi needs: noun gender and number (marked -ā/-e and unmarked masculines, -ī and other feminines),
adjectives that agree (-ā/-e/-ī) or stay invariant, verbs that agree with the subject, or with the
object in the ने-ergative perfective, honorific plural agreement for elders, and possessive
का/की/के agreeing with the possessed noun. Word order is SOV.

Standard library only; every function takes a ``random.Random`` and is deterministic given it.
"""

import random

LANG = "hi"
NAME = "हिन्दी"
SCRIPT = "Devanagari"
XNLI_WORDS = {"right": "सही", "yes": "हाँ", "also": "इसलिए", "no": "नहीं"}

M, F = "m", "f"
SG, PL = "sg", "pl"


def _ag(g, n, ms, mp, fs, fp):
    """Pick the form agreeing with gender g and number n."""
    if g == M:
        return ms if n == SG else mp
    return fs if n == SG else fp


# =============================================================== language data (Hindi)

END = "।"
QEND = "?"

W = {
    "ne": "ने", "ko": "को", "se": "से", "nahi": "नहीं", "kyonki": "क्योंकि",
    "kaun": "कौन", "kahan": "कहाँ", "kahan_se": "कहाँ से", "kya": "क्या", "kab": "कब",
    "kabhi": "कभी", "kuch": "कुछ", "ek": "एक", "koi": "कोई", "bahut": "बहुत",
    "pasand": "पसंद", "ke_liye": "के लिए", "pehle": "पहले", "us_din": "उस दिन",
    "khush": "ख़ुश", "ghar": "घर", "next_month": "अगले महीने",
}
HAI = ("है", "हैं")
THA = ("था", "थे", "थी", "थीं")
RAHA = ("रहा", "रहे", "रही", "रही")
KA = ("का", "के", "की")  # masc. sg. direct, masc. oblique/plural, fem.
CHAHTA = ("चाहता है", "चाहते हैं", "चाहती है", "चाहती हैं")
GO_STEM = "जा"
INTENS = ["बहुत", "काफ़ी"]
NUMS = ["दो", "तीन", "चार", "पाँच", "कुछ"]
EXIST_NUMS = ["दो", "तीन", "कई"]

# ---- verb morphology -----------------------------------------------------------
_PERF_IRR = {
    "कर": ("किया", "किए", "की", "कीं"),
    "पी": ("पिया", "पिए", "पी", "पीं"),
    "ले": ("लिया", "लिए", "ली", "लीं"),
    "दे": ("दिया", "दिए", "दी", "दीं"),
    "जा": ("गया", "गए", "गई", "गईं"),
    "हो": ("हुआ", "हुए", "हुई", "हुईं"),
}
_FUT_IRR = {"पी": ("पिए", "पिएँ"), "ले": ("ले", "लें"), "दे": ("दे", "दें"), "हो": ("हो", "हों")}
_VOWEL_END = ("ा", "ो", "आ")


def _split(stem):
    if " " in stem:
        pre, base = stem.rsplit(" ", 1)
        return pre + " ", base
    return "", stem


def _perf(stem, g, n):
    pre, b = _split(stem)
    if b in _PERF_IRR:
        forms = _PERF_IRR[b]
    elif b.endswith(_VOWEL_END):
        forms = (b + "या", b + "ए", b + "ई", b + "ईं")
    else:
        forms = (b + "ा", b + "े", b + "ी", b + "ीं")
    return pre + _ag(g, n, *forms)


def _fut(stem, g, n):
    pre, b = _split(stem)
    if b in _FUT_IRR:
        s, p = _FUT_IRR[b]
    elif b.endswith(_VOWEL_END):
        s, p = b + "ए", b + "एँ"
    else:
        s, p = b + "े", b + "ें"
    return pre + _ag(g, n, s + "गा", p + "गे", s + "गी", p + "गी")


def _hab(stem, g, n, neg=False):
    if neg:  # negated habitual drops the auxiliary: नहीं जाता / नहीं जातीं
        return _ag(g, n, stem + "ता", stem + "ते", stem + "ती", stem + "तीं")
    return _ag(g, n, stem + "ता", stem + "ते", stem + "ती", stem + "ती") + " " + HAI[n == PL]


def _prog(stem, g, n):
    return stem + " " + _ag(g, n, *RAHA) + " " + HAI[n == PL]


def _inf(stem):
    return stem + "ना"


# ---- adjectives: (masc. sg. direct, masc. plural/oblique, feminine) -----------------
def _mk(ms):
    return (ms, ms[:-1] + "े", ms[:-1] + "ी")


def _inv(w):
    return (w, w, w)


ADJ = {
    "garam": _inv("गरम"), "svad": _inv("स्वादिष्ट"), "taza": _mk("ताज़ा"), "patla": _mk("पतला"),
    "hara": _mk("हरा"), "paka": _mk("पका"), "peela": _mk("पीला"), "khatta": _mk("खट्टा"),
    "meetha": _mk("मीठा"), "laal": _inv("लाल"), "thanda": _mk("ठंडा"), "saaf": _inv("साफ़"),
    "naya": ("नया", "नए", "नई"), "purana": _mk("पुराना"), "mota": _mk("मोटा"),
    "mazedar": _inv("मज़ेदार"), "lamba": _mk("लंबा"), "chhota": _mk("छोटा"), "bada": _mk("बड़ा"),
    "sundar": _inv("सुंदर"), "neela": _mk("नीला"), "kaala": _mk("काला"), "mehnga": _mk("महँगा"),
    "sasta": _mk("सस्ता"), "safed": _inv("सफ़ेद"), "bhaari": _inv("भारी"), "ganda": _mk("गंदा"),
    "sookha": _mk("सूखा"), "pyara": _mk("प्यारा"), "ooncha": _mk("ऊँचा"),
    "hara_bhara": ("हरा-भरा", "हरे-भरे", "हरी-भरी"), "mehnati": _inv("मेहनती"),
}
ANTONYMS = [("naya", "purana"), ("bada", "chhota"), ("mehnga", "sasta"), ("saaf", "ganda")]


# ---- nouns ---------------------------------------------------------------------------
def _m(sg):  # marked masculine plural: लड़का -> लड़के
    return sg[:-1] + "े"


def _fi(sg):  # feminine in -ī: लड़की -> लड़कियाँ
    return sg[:-1] + "ियाँ"


def _fc(sg):  # other feminines: किताब -> किताबें
    return sg + "ें"


def _o(sg, pl, g, kind, adjs, meas=None):
    """kind: 'count' (sg or pl), 'mass' (sg, may take a measure), 'sg' (always sg), 'pl' (plural only)."""
    return {"sg": sg, "pl": pl, "g": g, "kind": kind, "adjs": adjs, "meas": meas}


CUP = ["एक कप", "दो कप"]
GLASS = ["एक गिलास", "दो गिलास"]

OBJ = {
    # food
    "khana": _o("खाना", None, M, "mass", ["garam", "svad"]),
    "roti": _o("रोटी", _fi("रोटी"), F, "count", ["garam", "taza"]),
    "dal": _o("दाल", None, F, "mass", ["garam", "patla", "svad"]),
    "sabzi": _o("सब्ज़ी", _fi("सब्ज़ी"), F, "count", ["taza", "hara", "svad"]),
    "sabzi_dish": _o("सब्ज़ी", None, F, "sg", ["taza", "svad"]),
    "aam": _o("आम", "आम", M, "count", ["meetha", "paka", "khatta", "peela"]),
    "kela": _o("केला", _m("केला"), M, "count", ["peela", "paka"]),
    "seb": _o("सेब", "सेब", M, "count", ["laal", "meetha", "taza"]),
    "mithai": _o("मिठाई", "मिठाइयाँ", F, "count", ["taza", "svad"]),
    "samosa": _o("समोसा", _m("समोसा"), M, "count", ["garam", "svad"]),
    "paratha": _o("पराठा", _m("पराठा"), M, "count", ["garam"]),
    "khichdi": _o("खिचड़ी", None, F, "mass", ["garam"]),
    "amrood": _o("अमरूद", "अमरूद", M, "count", ["hara", "meetha", "paka"]),
    "anda": _o("अंडा", _m("अंडा"), M, "count", []),
    "halwa": _o("हलवा", None, M, "mass", ["garam", "meetha"]),
    # drinks
    "chai": _o("चाय", None, F, "mass", ["garam", "meetha"], CUP),
    "doodh": _o("दूध", None, M, "mass", ["thanda", "garam", "taza"], GLASS),
    "paani": _o("पानी", None, M, "mass", ["thanda", "saaf"], GLASS),
    "lassi": _o("लस्सी", None, F, "mass", ["thanda", "meetha"], GLASS),
    "coffee": _o("कॉफ़ी", None, F, "mass", ["garam"], CUP),
    "sharbat": _o("शरबत", None, M, "mass", ["thanda", "meetha"], GLASS),
    "juice": _o("जूस", None, M, "mass", ["thanda", "taza"], GLASS),
    # reading and writing
    "kitab": _o("किताब", _fc("किताब"), F, "count", ["naya", "purana", "mota", "mazedar"]),
    "akhbar": _o("अख़बार", None, M, "sg", []),
    "kahani": _o("कहानी", _fi("कहानी"), F, "count", ["lamba", "mazedar", "chhota"]),
    "chitthi": _o("चिट्ठी", _fi("चिट्ठी"), F, "count", ["lamba", "chhota"]),
    "patrika": _o("पत्रिका", "पत्रिकाएँ", F, "count", ["naya", "purana"]),
    "kavita": _o("कविता", "कविताएँ", F, "count", ["sundar", "chhota"]),
    "nibandh": _o("निबंध", "निबंध", M, "count", ["lamba", "chhota"]),
    "arzi": _o("अर्ज़ी", None, F, "sg", []),
    "hindi": _o("हिन्दी", None, F, "mass", []),
    "ganit": _o("गणित", None, M, "mass", []),
    "itihas": _o("इतिहास", None, M, "mass", []),
    "vigyan": _o("विज्ञान", None, M, "mass", []),
    "angrezi": _o("अंग्रेज़ी", None, F, "mass", []),
    # things to buy and wear
    "cycle": _o("साइकिल", _fc("साइकिल"), F, "count",
                ["naya", "purana", "laal", "neela", "kaala", "mehnga", "sasta"]),
    "ghadi": _o("घड़ी", _fi("घड़ी"), F, "count", ["naya", "sundar", "mehnga", "sasta"]),
    "joote": _o("जूते", None, M, "pl", ["naya", "kaala", "sasta", "mehnga"]),
    "kapde": _o("कपड़े", None, M, "pl", ["naya", "purana", "sundar", "ganda"]),
    "kurta": _o("कुर्ता", _m("कुर्ता"), M, "count", ["naya", "safed", "neela", "sundar"]),
    "saree": _o("साड़ी", _fi("साड़ी"), F, "count", ["naya", "laal", "sundar", "mehnga"]),
    "chhata": _o("छाता", _m("छाता"), M, "count", ["kaala", "naya", "bada"]),
    "thaila": _o("थैला", _m("थैला"), M, "count", ["bada", "naya"]),
    "kameez": _o("कमीज़", _fc("कमीज़"), F, "count", ["naya", "safed", "neela"]),
    "topi": _o("टोपी", _fi("टोपी"), F, "count", ["naya", "laal", "safed"]),
    "khilona": _o("खिलौना", _m("खिलौना"), M, "count", ["naya", "chhota", "sundar"]),
    "gend": _o("गेंद", _fc("गेंद"), F, "count", ["naya", "laal"]),
    "kalam": _o("कलम", _fc("कलम"), F, "count", ["naya", "neela", "kaala"]),
    "basta": _o("बस्ता", _m("बस्ता"), M, "count", ["naya", "bhaari", "neela"]),
    "sweater": _o("स्वेटर", "स्वेटर", M, "count", ["garam", "naya", "laal"]),
    # things to watch and hear
    "film": _o("फ़िल्म", _fc("फ़िल्म"), F, "count", ["naya", "purana", "mazedar"]),
    "match": _o("मैच", "मैच", M, "count", []),
    "natak": _o("नाटक", "नाटक", M, "count", ["mazedar"]),
    "tasveer": _o("तस्वीर", _fc("तस्वीर"), F, "count", ["sundar", "chhota"]),
    "gaana": _o("गाना", _m("गाना"), M, "count", ["naya", "purana"]),
    "geet": _o("गीत", "गीत", M, "count", ["sundar", "purana"]),
    "bhajan": _o("भजन", "भजन", M, "count", ["purana"]),
    "khabar": _o("ख़बरें", None, F, "pl", []),
    # house and farm
    "bartan": _o("बर्तन", None, M, "pl", ["ganda"]),
    "gaadi": _o("गाड़ी", None, F, "sg", ["purana"]),
    "kamra": _o("कमरा", None, M, "sg", ["ganda", "bada", "chhota"]),
    "ghar": _o("घर", None, M, "sg", []),
    "rasoi": _o("रसोई", None, F, "sg", []),
    "aangan": _o("आँगन", None, M, "sg", []),
    "mez": _o("मेज़", None, F, "sg", []),
    "khidki": _o("खिड़की", None, F, "sg", []),
    "darwaza": _o("दरवाज़ा", None, M, "sg", []),
    "dukan": _o("दुकान", None, F, "sg", []),
    "phool": _o("फूल", "फूल", M, "count", ["laal", "peela", "sundar"]),
    "gehun": _o("गेहूँ", None, M, "mass", []),
    "dhaan": _o("धान", None, M, "mass", []),
    "sarson": _o("सरसों", None, F, "mass", []),
    "beej": _o("बीज", None, M, "pl", []),
    "fasal": _o("फ़सल", None, F, "sg", ["paka"]),
    "ghaas": _o("घास", None, F, "mass", ["hara", "sookha"]),
    "paise": _o("पैसे", None, M, "pl", []),
    "tohfa": _o("तोहफ़ा", _m("तोहफ़ा"), M, "count", ["sundar", "chhota"]),
    "parcel": _o("पार्सल", "पार्सल", M, "count", ["chhota", "bada", "bhaari"]),
    "pankha": _o("पंखा", None, M, "sg", ["purana"]),
    "radio": _o("रेडियो", None, M, "sg", ["purana"]),
    "chabi": _o("चाबी", None, F, "sg", []),
    "chashma": _o("चश्मा", None, M, "sg", ["naya", "purana"]),
    "cricket": _o("क्रिकेट", None, M, "mass", []),
    "football": _o("फ़ुटबॉल", None, M, "mass", []),
    "hockey": _o("हॉकी", None, F, "mass", []),
    "kabaddi": _o("कबड्डी", None, F, "mass", []),
    "fees": _o("स्कूल की फ़ीस", None, F, "sg", []),
    "bill": _o("बिजली का बिल", None, M, "sg", []),
    "kiraya": _o("घर का किराया", None, M, "sg", []),
}

# ---- people ----------------------------------------------------------------------------
NAMES_M = ["राम", "मोहन", "अमित", "राहुल", "विजय", "सुरेश", "अर्जुन", "रवि"]
NAMES_F = ["सीता", "गीता", "प्रिया", "अनीता", "नेहा", "पूजा", "सुनीता", "मीना"]
POSS_PRON = [("मेरा", "मेरे", "मेरी"), ("हमारा", "हमारे", "हमारी")]
# key, direct sg, oblique sg, gender, honorific (plural agreement), age
KIN = [
    ("bhai", "भाई", "भाई", M, False, "any"),
    ("bahan", "बहन", "बहन", F, False, "any"),
    ("beta", "बेटा", "बेटे", M, False, "young"),
    ("beti", "बेटी", "बेटी", F, False, "young"),
    ("pita", "पिताजी", "पिताजी", M, True, "adult"),
    ("maa", "माँ", "माँ", F, True, "adult"),
    ("dada", "दादाजी", "दादाजी", M, True, "adult"),
    ("dadi", "दादी", "दादी", F, True, "adult"),
    ("chacha", "चाचाजी", "चाचाजी", M, True, "adult"),
    ("dost", "दोस्त", "दोस्त", M, False, "any"),
]
# direct, oblique, gender, number, age, kin key
OTHER_SUBJ = [
    ("बच्चे", "बच्चों", M, PL, "young", None),
    ("लड़कियाँ", "लड़कियों", F, PL, "young", None),
    ("मेरे दोस्त", "मेरे दोस्तों", M, PL, "any", "dost"),
    ("गाँव के लोग", "गाँव के लोगों", M, PL, "adult", None),
    ("वह लड़का", "उस लड़के", M, SG, "young", None),
    ("वह लड़की", "उस लड़की", F, SG, "young", None),
]
# reflexive kin (oblique), used before की/से/का/के साथ/के लिए
REFL = [("maa", "अपनी माँ"), ("pita", "अपने पिताजी"), ("bhai", "अपने भाई"), ("bahan", "अपनी बहन"),
        ("dost", "अपने दोस्त"), ("dadi", "अपनी दादी"), ("dada", "अपने दादाजी")]
WITH = " के साथ"
WITH_FRIENDS = "अपने दोस्तों के साथ"
FOR = " के लिए"
WAIT_COMP = ["बस का", "ट्रेन का", "अपने दोस्त का"]
EXAM_COMP = "परीक्षा की"

CITIES = ["दिल्ली", "मुंबई", "जयपुर", "लखनऊ", "पटना", "भोपाल", "कानपुर", "इंदौर"]

# ---- times -------------------------------------------------------------------------------
TIMES = {
    "hab": ["हर रोज़", "हर सुबह", "हर शाम", "रोज़ सुबह", "हर रविवार", "अक्सर", "हर हफ़्ते", "कभी-कभी"],
    "prog": ["अभी", "इस समय", "आज"],
    "past": ["कल", "परसों", "कल शाम", "कल सुबह", "पिछले हफ़्ते", "पिछले रविवार", "आज सुबह",
             "दो दिन पहले", "पिछले महीने"],
    "fut": ["कल", "परसों", "कल सुबह", "अगले हफ़्ते", "अगले रविवार", "आज शाम", "अगले महीने"],
}
NEG_HAB_TIMES = ["सुबह", "शाम को", "रविवार को", "आजकल"]
NO_KAB = ["अक्सर", "कभी-कभी", "आजकल", "इन दिनों", "हर रोज़"]
NONLOC = ["टीवी पर", "रेडियो पर", "फ़ोन पर"]

# ---- verbs ---------------------------------------------------------------------------------
def _tv(key, stem, objs, places, **kw):
    d = {"key": key, "stem": stem, "objs": objs, "places": places, "trans": True}
    d.update(kw)
    return d


def _iv(key, stem, places, **kw):
    d = {"key": key, "stem": stem, "objs": [], "places": places, "trans": False}
    d.update(kw)
    return d


GO_DESTS = ["बाज़ार", ("स्कूल", "young"), ("दफ़्तर", "adult"), ("खेत", "adult"), "अस्पताल",
            "मंदिर", "पार्क", "घर"]

TV = [
    _tv("buy", "ख़रीद", ["sabzi", "aam", "kela", "seb", "mithai", "cycle", "ghadi", "joote", "kapde",
                         "kurta", "saree", "chhata", "thaila", "kameez", "topi", "khilona", "gend",
                         "kalam", "basta", "kitab", "sweater", "doodh"],
        ["बाज़ार से", "दुकान से", "मेले से", "शहर से"], hab_pl=True, kuch=True, for_=True,
        hab_objs=["sabzi", "aam", "kela", "seb", "mithai", "doodh", "kitab"]),
    _tv("eat", "खा", ["khana", "roti", "dal", "sabzi_dish", "aam", "kela", "seb", "mithai", "samosa",
                      "paratha", "khichdi", "amrood", "anda", "halwa"],
        ["घर पर", "रसोई में", "स्कूल में"], kuch=True, daily=True),
    _tv("drink", "पी", ["chai", "doodh", "paani", "lassi", "coffee", "sharbat", "juice"],
        ["घर पर", "दुकान पर", "रसोई में"], kuch=True, meas=True, daily=True),
    _tv("read", "पढ़", ["kitab", "akhbar", "kahani", "chitthi", "patrika"],
        ["कमरे में", "पुस्तकालय में", "बगीचे में"], hab_pl=True, kuch=True),
    _tv("study", "पढ़", ["hindi", "ganit", "itihas", "vigyan", "angrezi"], ["स्कूल में", "कमरे में"],
        who="young"),
    _tv("write", "लिख", ["chitthi", "kahani", "kavita", "nibandh", "arzi"],
        ["कमरे में", "स्कूल में", "दफ़्तर में"], hab_pl=True, kuch=True, for_=True),
    _tv("cook", "बना", ["khana", "roti", "dal", "sabzi_dish", "chai", "khichdi", "halwa", "paratha"],
        ["रसोई में", "घर पर"], hab_pl=True, for_=True, daily=True),
    _tv("cook2", "पका", ["khana", "dal", "sabzi_dish", "khichdi", "halwa"], ["रसोई में"], hab_pl=True,
        for_=True, daily=True),
    _tv("wash", "धो", ["kapde", "bartan", "gaadi"], ["आँगन में", "नल पर", "घर पर"],
        adjs=["ganda", "purana"], daily=True),
    _tv("clean", "साफ़ कर", ["kamra", "ghar", "rasoi", "aangan", "mez", "khidki"], [], daily=True),
    _tv("sell", "बेच", ["sabzi", "aam", "kela", "doodh", "mithai", "kapde", "phool"],
        ["बाज़ार में", "मेले में", "दुकान पर"], who="adult", hab_pl=True),
    _tv("watch", "देख", ["film", "match", "natak"], ["घर पर", "टीवी पर"], hab_pl=True, nonum=True,
        times={"hab": ["हर रविवार", "अक्सर", "हर हफ़्ते"]}),
    _tv("listen", "सुन", ["gaana", "geet", "kahani", "khabar", "bhajan"], ["रेडियो पर", "घर पर"],
        hab_pl=True),
    _tv("open", "खोल", ["darwaza", "khidki", "dukan"], [], act=False),
    _tv("close", "बंद कर", ["darwaza", "khidki", "dukan"], [], act=False),
    _tv("pluck", "तोड़", ["aam", "amrood", "phool", "seb"], ["बगीचे में", "पेड़ से"], hab_pl=True),
    _tv("sow", "बो", ["gehun", "dhaan", "sarson", "beej"], ["खेत में"], who="adult",
        times={"hab": ["हर साल"]}),
    _tv("cut", "काट", ["fasal", "ghaas", "gehun"], ["खेत में"], who="adult",
        times={"hab": ["हर साल"]}),
    _tv("send", "भेज", ["chitthi", "paise", "tohfa", "parcel"], ["डाकघर से", "शहर से"],
        hab_pl=True, for_=True, act=False, times={"hab": ["हर महीने"]}),
    _tv("fix", "ठीक कर", ["cycle", "ghadi", "pankha", "gaadi", "radio"], ["घर पर", "दुकान पर"],
        hab_pl=True),
    _tv("search", "ढूँढ", ["chabi", "kitab", "ghadi", "basta", "gend", "chashma"],
        ["कमरे में", "घर में"], tenses=["prog", "past"], act=False, nonum=True),
    _tv("play", "खेल", ["cricket", "football", "hockey", "kabaddi"], ["मैदान में", "पार्क में", "स्कूल में"],
        who="young"),
    _tv("sing", "गा", ["gaana", "geet", "bhajan"], ["स्कूल में", "मेले में", "शादी में"],
        tenses=["prog", "past", "fut"], for_=True, nonum=True),
    _tv("pay", "भर", ["fees", "bill", "kiraya"], ["बैंक में"], who="adult", act=False,
        times={"hab": ["हर महीने"]}),
    _tv("decorate", "सजा", ["ghar", "kamra", "aangan", "dukan"], [], adjs=[],
        times={"hab": ["हर साल", "त्योहार पर"]}),
    _tv("draw", "बना", ["tasveer"], ["कॉपी में", "स्कूल में"], hab_pl=True, for_=True, who="young"),
    _tv("wear", "पहन", ["kurta", "kameez", "joote", "topi", "sweater"], [], nonum=True,
        times={"hab": ["हर रविवार", "अक्सर", "त्योहार पर"]}),
    _tv("work", "कर", [], ["खेत में", "दफ़्तर में", "दुकान पर", "अस्पताल में"], who="adult",
        fixed=("काम", M, SG)),
    _tv("study2", "कर", [], ["कमरे में", "पुस्तकालय में"], who="young", fixed=("पढ़ाई", F, SG)),
    _tv("help", "कर", [], ["रसोई में", "खेत में", "दुकान पर"], fixed=("मदद", F, SG), comp="ki"),
    _tv("talk", "कर", [], ["फ़ोन पर"], fixed=("बात", F, SG), comp="se"),
    _tv("wait", "कर", [], ["स्टेशन पर", "बस अड्डे पर"], fixed=("इंतज़ार", M, SG), comp="wait",
        act=False),
    _tv("prepare", "कर", [], ["कमरे में", "पुस्तकालय में"], who="young", fixed=("तैयारी", F, SG),
        comp="exam", act=False),
]

IV = [
    _iv("go", "जा", GO_DESTS, with_=True,
        times={"hab": ["हर रोज़", "हर सुबह", "रोज़ सुबह", "अक्सर", "कभी-कभी"]}),
    _iv("travel", "जा", CITIES, with_=True,
        times={"hab": ["हर साल", "हर महीने", "कभी-कभी", "गर्मियों में"]}, tenses=["hab", "past", "fut"]),
    _iv("come", "आ", ["घर", "गाँव", "शहर", "हमारे घर"], with_=True, act=False),
    _iv("return", "लौट", ["घर", "गाँव", ("स्कूल से घर", "young"), ("दफ़्तर से घर", "adult"),
                          "बाज़ार से घर"], with_=True, act=False),
    _iv("reach", "पहुँच", ["स्टेशन", ("स्कूल", "young"), ("दफ़्तर", "adult"), "अस्पताल"] + CITIES,
        tenses=["past", "fut"], act=False),
    _iv("leave", "निकल", ["घर से", ("दफ़्तर से", "adult"), ("स्कूल से", "young")],
        tenses=["prog", "past"], act=False,
        times={"past": ["कल सुबह", "आज सुबह", "कल शाम", "परसों सुबह"], "prog": ["अभी", "इस समय"]}),
    _iv("sleep", "सो", ["अपने कमरे में", "छत पर", "आँगन में"], aux=True,
        times={"hab": ["रात को", "हर रात", "गर्मियों में"], "past": ["कल रात", "परसों रात"],
               "fut": ["आज रात", "कल रात"], "prog": ["अभी", "इस समय"]}),
    _iv("run", "दौड़", ["पार्क में", "मैदान में", "सड़क के किनारे"]),
    _iv("sit", "बैठ", ["पेड़ के नीचे", "आँगन में", "नदी के किनारे"], aux=True, tenses=["hab", "past", "fut"]),
    _iv("bathe", "नहा", ["नदी में", "तालाब में"], with_=True),
    _iv("stroll", "टहल", ["पार्क में", "बगीचे में", "नदी के किनारे", "छत पर"], with_=True),
    _iv("swim", "तैर", ["नदी में", "तालाब में"], who="young", with_=True),
    _iv("dance", "नाच", ["मेले में", "शादी में"], tenses=["prog", "past", "fut"], with_=True),
    _iv("play_i", "खेल", ["मैदान में", "आँगन में", "पार्क में"], who="young", with_=True),
    _iv("live", "रह", ["{city} में", "गाँव में"], tenses=["hab", "fut"], act=False,
        times={"hab": ["आजकल", "इन दिनों"], "fut": ["अगले साल से", "अगले महीने से"]}),
    _iv("wander", "घूम", ["मेले में", "बाज़ार में", "पार्क में"], with_=True),
    _iv("climb", "चढ़", ["पहाड़ पर", "पेड़ पर", "छत पर"], who="young"),
    _iv("meet", "मिल", ["बाज़ार में", "स्टेशन पर", "मेले में"], comp="se", act=False),
]

# ---- fixed-text templates ------------------------------------------------------------------------
# (who, main clause, reasons); {S}/{So} subject direct/oblique, {a:ms|mp|fs|fp}, {n:sg|pl}
BECAUSE = [
    ("young", "{S} आज स्कूल नहीं {a:गया|गए|गई|गईं}",
     ["{n:वह|वे} बीमार {a:था|थे|थी|थीं}", "{n:उसे|उन्हें} तेज़ बुख़ार था",
      "सुबह से तेज़ बारिश हो रही थी", "आज स्कूल में छुट्टी थी"]),
    ("adult", "{S} आज दफ़्तर नहीं {a:गया|गए|गई|गईं}",
     ["{n:उसे|उन्हें} तेज़ बुख़ार था", "आज रविवार था", "{n:उसकी|उनकी} तबीयत ठीक नहीं थी",
      "घर पर मेहमान आए हुए थे"]),
    ("any", "{So} ने बाज़ार से एक छाता ख़रीदा",
     ["बाहर बारिश हो रही थी", "{n:उसका|उनका} पुराना छाता टूट गया था"]),
    ("any", "{S} पूरे दिन घर पर {a:रहा|रहे|रही|रहीं}",
     ["बाहर बहुत ठंड थी", "{n:उसकी|उनकी} तबीयत ठीक नहीं थी", "बाहर बहुत तेज़ धूप थी"]),
    ("any", "{S} रात को जल्दी सो {a:गया|गए|गई|गईं}",
     ["{n:वह|वे} बहुत {a:थका हुआ|थके हुए|थकी हुई|थकी हुई} {a:था|थे|थी|थीं}",
      "अगली सुबह {n:उसे|उन्हें} जल्दी उठना था"]),
    ("any", "{So} ने दो गिलास पानी पिया",
     ["{n:उसे|उन्हें} बहुत प्यास लगी थी", "बाहर बहुत गर्मी थी"]),
    ("any", "{So} ने जल्दी-जल्दी खाना खाया",
     ["{n:उसे|उन्हें} बहुत भूख लगी थी", "{n:उसे|उन्हें} ट्रेन पकड़नी थी"]),
    ("any", "{S} आज बहुत ख़ुश {n:है|हैं}",
     ["आज {n:उसका|उनका} जन्मदिन है", "{n:उसे|उन्हें} परीक्षा में अच्छे अंक मिले",
      "कल {n:उसकी|उनकी} बहन शहर से आएगी"]),
    ("any", "{S} शाम को बाज़ार {a:गया|गए|गई|गईं}",
     ["घर में सब्ज़ी ख़त्म हो गई थी", "{n:उसे|उन्हें} नए जूते ख़रीदने थे",
      "{n:उसे|उन्हें} दवाई ख़रीदनी थी"]),
    ("young", "{S} आज पैदल स्कूल {a:गया|गए|गई|गईं}",
     ["{n:उसकी|उनकी} साइकिल ख़राब थी", "आज बस नहीं आई"]),
    ("adult", "{S} बहुत ख़ुश {n:है|हैं}",
     ["इस साल {n:उसकी|उनकी} फ़सल अच्छी हुई", "इस साल गाँव में अच्छी बारिश हुई"]),
    ("any", "{So} ने खिड़की बंद कर दी",
     ["बाहर बहुत तेज़ हवा चल रही थी", "बाहर बहुत शोर हो रहा था"]),
    ("any", "{S} कल मेले में नहीं जा {a:सका|सके|सकी|सकीं}",
     ["{n:उसे|उन्हें} बहुत काम था", "{n:उसकी|उनकी} तबीयत ठीक नहीं थी"]),
    ("any", "{So} ने आज गरम स्वेटर पहना",
     ["बाहर बहुत ठंड थी", "सुबह से ठंडी हवा चल रही थी"]),
    ("any", "{S} समय पर स्टेशन नहीं पहुँच {a:सका|सके|सकी|सकीं}",
     ["रास्ते में बहुत भीड़ थी", "बस देर से आई"]),
]

WEATHER_PLACES = CITIES + ["हमारे गाँव", "शहर", "पहाड़ों"]
WEATHER = [
    "आज {P} में सुबह से तेज़ बारिश हो रही है",
    "कल रात {P} में बहुत तेज़ हवा चली",
    "सर्दियों में {P} में बहुत ठंड पड़ती है",
    "गर्मियों में {P} में बहुत गर्मी पड़ती है",
    "आज {P} में आसमान पर काले बादल छाए हुए हैं",
    "कल सुबह {P} में घना कोहरा था",
    "आज {P} में अच्छी धूप निकली है",
    "बारिश के बाद {P} की सड़कें बहुत गीली थीं",
    "पिछले हफ़्ते {P} में बहुत बारिश हुई",
    "अगले दो दिन {P} में बारिश होगी",
    "इस साल {P} में अच्छी बारिश नहीं हुई",
    "आज {P} का मौसम बहुत सुहाना है",
    "आज {P} में बहुत ठंडी हवा चल रही है",
]


def _n(sg, pl, g, adjs):
    return {"sg": sg, "pl": pl, "g": g, "adjs": adjs}


EXIST = [
    ("हमारे गाँव में", [_n("तालाब", "तालाब", M, ["bada", "purana"]),
                        _n("मंदिर", "मंदिर", M, ["purana", "sundar"]),
                        _n("स्कूल", "स्कूल", M, ["chhota", "naya"]),
                        _n("कुआँ", "कुएँ", M, ["purana"]),
                        _n("अस्पताल", "अस्पताल", M, ["chhota", "naya"])]),
    ("हमारे घर के पीछे", [_n("बगीचा", "बगीचे", M, ["chhota", "sundar"]),
                          _n("खेत", "खेत", M, ["bada", "hara_bhara"]),
                          _n("तालाब", "तालाब", M, ["chhota"])]),
    ("मेरे कमरे की मेज़ पर", [_n("किताब", "किताबें", F, ["purana", "naya", "mota"]),
                             _n("कलम", "कलमें", F, ["neela", "naya"]),
                             _n("घड़ी", "घड़ियाँ", F, ["purana", "sundar"])]),
    ("शहर के बाज़ार में", [_n("दुकान", "दुकानें", F, ["bada", "chhota", "naya"])]),
    ("स्कूल के पास", [_n("पार्क", "पार्क", M, ["chhota", "sundar"]),
                      _n("मैदान", "मैदान", M, ["bada"]),
                      _n("दुकान", "दुकानें", F, ["chhota"])]),
    ("नदी के किनारे", [_n("पेड़", "पेड़", M, ["ooncha", "bada"]),
                       _n("मंदिर", "मंदिर", M, ["purana", "chhota"])]),
]

# possessed nouns: (noun, gender, number, attributive adjs, predicate adjs, can have a location)
POSSESSED = [
    ("घर", M, SG, ["naya", "purana"], ["bada", "chhota", "sundar", "saaf"], True),
    ("कमरा", M, SG, [], ["bada", "chhota", "saaf", "ganda"], False),
    ("साइकिल", F, SG, ["naya", "laal", "neela", "kaala"], ["mehnga", "sasta", "bhaari"], False),
    ("घड़ी", F, SG, ["naya", "purana"], ["mehnga", "sasta", "sundar"], False),
    ("जूते", M, PL, ["naya", "kaala"], ["mehnga", "sasta", "ganda"], False),
    ("कपड़े", M, PL, ["naya"], ["saaf", "ganda", "sundar", "mehnga"], False),
    ("बस्ता", M, SG, ["naya", "neela"], ["bhaari", "bada", "chhota"], False),
    ("बगीचा", M, SG, [], ["bada", "sundar", "chhota", "hara_bhara"], True),
    ("खेत", M, PL, [], ["bada", "hara_bhara"], True),
    ("दुकान", F, SG, [], ["bada", "chhota", "purana"], True),
    ("गाय", F, SG, ["safed", "kaala"], ["sundar", "mota"], False),
    ("कुत्ता", M, SG, ["kaala", "safed", "chhota"], ["pyara", "mota"], False),
    ("आवाज़", F, SG, [], ["meetha"], False),
    ("बाल", M, PL, [], ["lamba", "kaala"], False),
    ("गाड़ी", F, SG, ["naya", "laal", "safed"], ["mehnga", "bada"], False),
    ("किताबें", F, PL, ["purana", "naya"], ["mota", "mazedar", "mehnga"], False),
]
SHARED = ["घर", "कमरा", "बगीचा", "खेत", "दुकान", "गाय", "कुत्ता", "गाड़ी"]
POSS_LOCS = ["बाज़ार के पास", "नदी के किनारे", "स्कूल के पीछे", "गाँव के बाहर", "मंदिर के सामने",
             "स्टेशन के पास"]

# kin descriptions: (who, gender or None, text)
KIN_DESC = [
    ("adult", M, "एक मेहनती किसान {n:है|हैं}"),
    ("adult", None, "शहर के अस्पताल में डॉक्टर {n:है|हैं}"),
    ("adult", M, "गाँव के स्कूल में अध्यापक {n:है|हैं}"),
    ("adult", F, "गाँव के स्कूल में अध्यापिका {n:है|हैं}"),
    ("adult", F, "शहर के अस्पताल में नर्स {n:है|हैं}"),
    ("adult", None, "बाज़ार में कपड़ों की दुकान {a:चलाता है|चलाते हैं|चलाती है|चलाती हैं}"),
    ("any", None, "{city} में {a:रहता है|रहते हैं|रहती है|रहती हैं}"),
    ("adult", None, "एक बैंक में काम {a:करता है|करते हैं|करती है|करती हैं}"),
    ("young", None, "गाँव के स्कूल में {a:पढ़ता है|पढ़ते हैं|पढ़ती है|पढ़ती हैं}"),
    ("young", None, "पाँचवीं कक्षा में {a:पढ़ता है|पढ़ते हैं|पढ़ती है|पढ़ती हैं}"),
    ("any", None, "बहुत अच्छा खाना {a:बनाता है|बनाते हैं|बनाती है|बनाती हैं}"),
    ("any", None, "हर साल गर्मियों में {city} {a:जाता है|जाते हैं|जाती है|जाती हैं}"),
    ("adult", None, "{city} के एक दफ़्तर में काम {a:करता है|करते हैं|करती है|करती हैं}"),
]

LIKE_OBJS = ["aam", "seb", "kela", "mithai", "samosa", "halwa", "chai", "lassi", "doodh", "coffee",
             "sharbat", "kitab", "kahani", "film", "gaana", "phool", "khichdi", "paratha"]

# travel: (vehicle phrase, 'far' = cities, 'near' = local places, 'both')
VEHICLES = [("बस से", "far"), ("ट्रेन से", "far"), ("साइकिल से", "near"), ("गाड़ी से", "both")]
NEAR_DESTS = [("स्कूल", "young"), "बाज़ार", ("दफ़्तर", "adult"), ("खेत", "adult")]
CONJ_DESTS = ["बाज़ार", ("स्कूल", "young"), ("दफ़्तर", "adult"), ("खेत", "adult"), "मंदिर", "पार्क"]
CONJ_TIMES = {"hab": ["हर रोज़", "हर सुबह", "रोज़ सुबह", "अक्सर", "हर रविवार"],
              "past": ["कल", "कल सुबह", "आज सुबह", "परसों", "कल शाम"],
              "fut": ["कल", "कल सुबह", "परसों", "आज शाम"]}
CONJ = ["नहाकर", "नाश्ता करके", "खाना खाकर", "तैयार होकर", "अपना काम ख़त्म करके"]

PROMPTS = [
    "हर सुबह मेरे पिताजी",
    "कल शाम राम ने",
    "हमारे गाँव में एक",
    "आज बाज़ार में बहुत",
    "मेरी माँ रसोई में",
    "बच्चे स्कूल के मैदान में",
    "अगले हफ़्ते सीता दिल्ली",
    "किसान ने खेत में",
    "बारिश के बाद गाँव की",
    "मेरे भाई को ठंडी",
    "पिछले साल हम लोग",
    "दुकानदार ने ताज़ी सब्ज़ियाँ",
    "सर्दियों में पहाड़ों पर",
    "राम की नई साइकिल",
    "स्कूल के पास एक",
    "दादी हर शाम बगीचे में",
    "आज सुबह से तेज़",
    "मोहन आज दफ़्तर नहीं",
    "गीता ने अपनी बहन को",
    "रविवार को हम सब",
    "मेरे दोस्त का घर",
    "शहर के अस्पताल में",
    "कल रात बहुत तेज़",
    "प्रिया हर रोज़ साइकिल से",
]

# =============================================================== engine (shared with ur.py)

TENSES = ["hab", "prog", "past", "fut"]


def _ok(age, who):
    if who == "young":
        return age != "adult"
    if who == "adult":
        return age != "young"
    return True


def _pw(p):
    """A place entry is a phrase or (phrase, who)."""
    return p if isinstance(p, tuple) else (p, "any")


def _adj(key, g, n):
    ms, mp, f = ADJ[key]
    if g == F:
        return f
    return ms if n == SG else mp


def _fill(t, S=None, rng=None):
    out = []
    i = 0
    while True:
        j = t.find("{", i)
        if j < 0:
            out.append(t[i:])
            break
        out.append(t[i:j])
        k = t.index("}", j)
        key = t[j + 1:k]
        i = k + 1
        if key == "S":
            out.append(S["d"])
        elif key == "So":
            out.append(S["o"])
        elif key == "city":
            out.append(rng.choice(CITIES))
        elif key.startswith("a:"):
            out.append(_ag(S["g"], S["n"], *key[2:].split("|")))
        elif key.startswith("n:"):
            a, b = key[2:].split("|")
            out.append(a if S["n"] == SG else b)
        else:
            raise KeyError(key)
    return "".join(out)


def _possessor(rng, avoid=()):
    if rng.random() < 0.5:
        return rng.choice(POSS_PRON), None
    name = rng.choice([x for x in NAMES_M + NAMES_F if x not in avoid])
    return (name + " " + KA[0], name + " " + KA[1], name + " " + KA[2]), name


def _kin(rng, P=None, pname=None, avoid=()):
    key, dsg, osg, g, hon, age = rng.choice(KIN)
    if P is None:
        P, pname = _possessor(rng, avoid)
    if g == M:
        d = (P[1] if hon else P[0]) + " " + dsg
        o = P[1] + " " + osg
    else:
        d = P[2] + " " + dsg
        o = P[2] + " " + osg
    return {"d": d, "o": o, "g": g, "n": PL if hon else SG, "age": age, "kin": key,
            "name": None, "pname": pname}


def _subject(rng, who="any", names_only=False, avoid=()):
    while True:
        r = rng.random()
        if names_only or r < 0.5:
            g = M if rng.random() < 0.5 else F
            name = rng.choice(NAMES_M if g == M else NAMES_F)
            if name in avoid:
                continue
            S = {"d": name, "o": name, "g": g, "n": SG, "age": "any", "kin": None, "name": name,
                 "pname": None}
        elif r < 0.82:
            S = _kin(rng, avoid=avoid)
        else:
            d, o, g, n, age, kin = rng.choice(OTHER_SUBJ)
            S = {"d": d, "o": o, "g": g, "n": n, "age": age, "kin": kin, "name": None, "pname": None}
        if _ok(S["age"], who):
            return S


def _other_name(rng, S):
    return rng.choice([x for x in NAMES_M + NAMES_F if x != S["name"] and x != S["pname"]])


def _real_pl(S):
    """A true plural subject (children, friends), not an honorific singular."""
    return S["n"] == PL and S["kin"] in (None, "dost")


def _refl(rng, S):
    bad = [S["kin"]]
    if S["kin"] in ("dada", "dadi"):  # grandparents: not with their own parents
        bad += ["maa", "pita", "dada", "dadi"]
    return rng.choice([t for k, t in REFL if k not in bad])


def _comp(rng, kind, S):
    if kind in ("ki", "se"):
        base = _refl(rng, S) if rng.random() < 0.5 and not _real_pl(S) else _other_name(rng, S)
        return base + " " + (KA[2] if kind == "ki" else W["se"])
    if kind == "wait":
        return rng.choice(WAIT_COMP)
    return EXAM_COMP


def _obj(rng, v, key, tense, qa=False, generic=False, nonum=False):
    o = OBJ[key]
    adjs = [a for a in o["adjs"] if a in v.get("adjs", o["adjs"])]
    adj = rng.choice(adjs) if adjs and rng.random() < 0.55 else None
    g, kind, det = o["g"], o["kind"], None
    if kind == "count":
        if generic or (tense == "hab" and v.get("hab_pl")):
            n, noun = PL, o["pl"]
        elif nonum or tense == "hab" or v.get("nonum"):
            n, noun = SG, o["sg"]
            det = W["ek"] if rng.random() < 0.3 and not (tense == "hab" and v.get("nonum")) else None
        else:
            r = rng.random()
            if r < 0.45:
                n, noun = SG, o["sg"]
                det = W["ek"] if rng.random() < 0.5 else None
            elif r < 0.8:
                n, noun = PL, o["pl"]
                det = rng.choice(NUMS)
            else:
                n, noun = PL, o["pl"]
    elif kind == "pl":
        n, noun = PL, o["sg"]
    else:
        n, noun = SG, o["sg"]
        if (kind == "mass" and o["meas"] and v.get("meas") and not generic and not qa
                and rng.random() < 0.5):
            det = rng.choice(o["meas"])
    words = [x for x in (det, _adj(adj, g, n) if adj else None, noun) if x]
    full = " ".join(words)
    if qa and len(full.split()) > 3:
        full = " ".join(words[1:])
    return {"full": full, "bare": noun, "g": g, "n": n, "key": key}


def _times(v, tense):
    own = v.get("times", {}).get(tense)
    if own:
        return own
    if v.get("daily") and tense in ("past", "fut"):  # everyday chores: no "last/next month"
        return TIMES[tense][:-1]
    return TIMES[tense]


def _event(rng, trans=None, tense=None, names_only=False, qa=False, avoid=(), verbs=None,
           nonum=False):
    if trans is None:
        trans = rng.random() < 0.62
    pool = verbs if verbs is not None else (TV if trans else IV)
    while True:
        v = rng.choice(pool)
        tenses = v.get("tenses", TENSES)
        if tense is not None and tense not in tenses:
            continue
        t = tense or rng.choice(tenses)
        break
    S = _subject(rng, v.get("who", "any"), names_only, avoid)
    places = [_pw(p)[0] for p in v["places"] if _ok(S["age"], _pw(p)[1])]
    place = _fill(rng.choice(places), S, rng) if places else None
    ev = {"S": S, "v": v, "t": t, "trans": v["trans"], "place": place, "O": None,
          "fixed": v.get("fixed"), "comp": None, "with": None,
          "time": rng.choice(_times(v, t))}
    if v.get("comp"):
        ev["comp"] = _comp(rng, v["comp"], S)
    if v["trans"] and not v.get("fixed"):
        objs = v.get("hab_objs", v["objs"]) if t == "hab" else v["objs"]
        ev["O"] = _obj(rng, v, rng.choice(objs), t, qa=qa, nonum=nonum)
    if v.get("with_") and not qa and rng.random() < 0.25:
        ev["with"] = WITH_FRIENDS if rng.random() < 0.3 or _real_pl(S) else _refl(rng, S) + WITH
    return ev


def _vgroup(ev, neg=False, wh_obj=False, wh_subj=False):
    S, v, t = ev["S"], ev["v"], ev["t"]
    if wh_subj:  # कौन takes default masculine singular agreement
        S = {"g": M, "n": SG}
    stem = v["stem"]
    if t == "past":
        if ev["trans"]:
            if wh_obj:
                g, n = M, SG
            elif ev["fixed"]:
                g, n = ev["fixed"][1], ev["fixed"][2]
            else:
                g, n = ev["O"]["g"], ev["O"]["n"]
        else:
            g, n = S["g"], S["n"]
        if v.get("aux") and not neg:
            form = stem + " " + _perf(GO_STEM, g, n)
        else:
            form = _perf(stem, g, n)
    elif t == "hab":
        form = _hab(stem, S["g"], S["n"], neg)
    elif t == "prog":
        form = _prog(stem, S["g"], S["n"])
    else:
        form = _fut(stem, S["g"], S["n"])
    if not neg:
        return form
    pre, _ = _split(stem)
    if pre and form.startswith(pre):  # साफ़ नहीं किया, बंद नहीं करेगा
        return pre + W["nahi"] + " " + form[len(pre):]
    return W["nahi"] + " " + form


def _render(ev, neg=False, time=True, place=True, adj=True, comp=True, front=False, wh=None,
            time_word=None):
    S, t = ev["S"], ev["t"]
    erg = ev["trans"] and t == "past"
    parts = []
    tm = ev["time"] if time else None
    if time_word:
        tm = time_word
    if wh == "time":
        tm = W["kab"]
    if front and tm and wh is None:
        parts.append(tm)
        tm = None
    if wh == "subj":
        parts.append(W["kaun"])
    else:
        parts.append(S["o"] + " " + W["ne"] if erg else S["d"])
    if tm:
        parts.append(tm)
    if ev["with"] and comp:
        parts.append(ev["with"])
    if ev["place"] and (place or wh == "place"):
        if wh == "place":
            parts.append(W["kahan_se"] if ev["place"].endswith(" " + W["se"]) else W["kahan"])
        else:
            parts.append(ev["place"])
    if ev["comp"]:
        parts.append(ev["comp"])
    if ev["trans"]:
        if ev["fixed"]:
            parts.append(ev["fixed"][0])
        elif wh == "obj":
            parts.append(W["kya"])
        else:
            parts.append(ev["O"]["full"] if adj else ev["O"]["bare"])
    parts.append(_vgroup(ev, neg, wh == "obj", wh == "subj"))
    return " ".join(parts)


WANT_VERBS = ["buy", "eat", "drink", "read", "write", "cook", "watch", "listen", "go", "travel",
              "live", "swim", "play", "play_i", "sing", "stroll", "wander", "talk", "help", "work",
              "study2", "climb", "dance", "pluck"]


def _activity(rng, S, generic=True, exclude=None):
    """An infinitive phrase ('पार्क में टहलना') the subject S could do; not with verb `exclude`.
    generic: a liking (generic plural objects); otherwise a wish (one specific thing)."""
    verbs = [v for v in TV + IV if v.get("act", True) and _ok(S["age"], v.get("who", "any"))
             and (exclude is None or v["stem"] != exclude["stem"])
             and (generic or v["key"] in WANT_VERBS)]
    v = rng.choice(verbs)
    parts = []
    places = [_pw(p)[0] for p in v["places"] if _ok(S["age"], _pw(p)[1])]
    if places and (not v["trans"] or v.get("fixed") or rng.random() < 0.6):
        parts.append(_fill(rng.choice(places), S, rng))
    if v.get("comp"):
        parts.append(_comp(rng, v["comp"], S))
    if v["trans"]:
        if v.get("fixed"):
            parts.append(v["fixed"][0])
        else:
            parts.append(_obj(rng, v, rng.choice(v["objs"]), "fut", generic=generic,
                              nonum=True)["full"])
    parts.append(_inf(v["stem"]))
    return " ".join(parts), v["key"]


# ---- sentence templates --------------------------------------------------------------------------

def _t_event(rng):
    neg = rng.random() < 0.2
    ev = _event(rng, nonum=neg)
    if neg and ev["t"] == "hab" and "times" not in ev["v"]:
        ev["time"] = rng.choice(NEG_HAB_TIMES)
    return _render(ev, neg=neg, front=rng.random() < 0.35)


def _t_because(rng):
    who, main, reasons = rng.choice(BECAUSE)
    S = _subject(rng, who)
    return _fill(main, S, rng) + " " + W["kyonki"] + " " + _fill(rng.choice(reasons), S, rng)


def _t_possessive(rng):
    S = _subject(rng)
    poss = POSSESSED
    if _real_pl(S):  # a real plural owns only shared things
        poss = [x for x in POSSESSED if x[0] in SHARED]
    noun, g, n, attrs, preds, has_loc = rng.choice(poss)
    ka = _ag(g, n, KA[0], KA[1], KA[2], KA[2])
    past = rng.random() < 0.25
    cop = _ag(g, n, *THA) if past else HAI[n == PL]
    head = [W["pehle"]] if past else []
    if has_loc and rng.random() < 0.35:
        return " ".join(head + [S["o"], ka, noun, rng.choice(POSS_LOCS), cop])
    pred = rng.choice(preds)
    words = head + [S["o"], ka]
    if attrs and rng.random() < 0.5:
        bad = set([pred])
        for a, b in ANTONYMS:
            if pred in (a, b):
                bad.update((a, b))
        if past:  # no "new/old" on what something used to be like
            bad.update(("naya", "purana"))
        choices = [a for a in attrs if a not in bad]
        if choices:
            words.append(_adj(rng.choice(choices), g, n))
    words += [noun, rng.choice(INTENS), _adj(pred, g, n), cop]
    return " ".join(words)


def _t_kin(rng):
    S = _kin(rng)
    descs = [(w, g, t) for w, g, t in KIN_DESC if _ok(S["age"], w) and (g is None or g == S["g"])]
    return S["d"] + " " + _fill(rng.choice(descs)[2], S, rng)


def _t_exist(rng):
    loc, nouns = rng.choice(EXIST)
    nn = rng.choice(nouns)
    r = rng.random()
    if r < 0.15:
        return " ".join([loc, W["koi"], nn["sg"], W["nahi"], HAI[0]])
    past = r > 0.8
    head = [W["pehle"]] if past else []
    if rng.random() < 0.6:
        n, det, noun = SG, W["ek"], nn["sg"]
    else:
        n, det, noun = PL, rng.choice(EXIST_NUMS), nn["pl"]
    cop = _ag(nn["g"], n, *THA) if past else HAI[n == PL]
    return " ".join(head + [loc, det, _adj(rng.choice(nn["adjs"]), nn["g"], n), noun, cop])


def _t_weather(rng):
    return rng.choice(WEATHER).replace("{P}", rng.choice(WEATHER_PLACES))


def _t_like(rng):
    S = _subject(rng)
    neg = rng.random() < 0.2
    if rng.random() < 0.5:
        what, _ = _activity(rng, S)
        n = SG
    else:
        o = _obj(rng, {}, rng.choice(LIKE_OBJS), "hab", generic=True)
        what, n = o["full"], o["n"]
    tail = [W["pasand"], W["nahi"], HAI[n == PL]] if neg else [rng.choice(INTENS), W["pasand"],
                                                                HAI[n == PL]]
    return " ".join([S["o"], W["ko"], what] + tail)


def _t_want(rng):
    S = _subject(rng)
    what, key = _activity(rng, S, generic=False)
    head = [S["d"]]
    if key in ("go", "travel", "buy", "watch", "wander") and rng.random() < 0.5:
        head.append(rng.choice(TIMES["fut"]))
    return " ".join(head + [what, _ag(S["g"], S["n"], *CHAHTA)])


def _go_group(S, t):
    if t == "past":
        return _perf(GO_STEM, S["g"], S["n"])
    if t == "hab":
        return _hab(GO_STEM, S["g"], S["n"])
    return _fut(GO_STEM, S["g"], S["n"])


_TRAVEL = [v for v in IV if v["key"] == "travel"][0]


def _t_conj(rng):
    S = _subject(rng)
    t = rng.choice(["hab", "past", "fut"])
    dests = [_pw(p)[0] for p in CONJ_DESTS if _ok(S["age"], _pw(p)[1])]
    return " ".join([S["d"], rng.choice(CONJ_TIMES[t]), rng.choice(CONJ), rng.choice(dests),
                     _go_group(S, t)])


def _t_travel(rng):
    S = _subject(rng)
    t = rng.choice(["hab", "past", "fut"])
    veh, kind = rng.choice(VEHICLES)
    near = [_pw(p)[0] for p in NEAR_DESTS if _ok(S["age"], _pw(p)[1])]
    dest = rng.choice(CITIES if kind == "far" else near if kind == "near" else CITIES + near)
    times = _times(_TRAVEL, t) if dest in CITIES else TIMES[t]
    return " ".join([S["d"], rng.choice(times), veh, dest, _go_group(S, t)])


_TEMPLATES = [
    (_t_event, 40), (_t_because, 10), (_t_possessive, 8), (_t_kin, 6), (_t_exist, 7),
    (_t_weather, 6), (_t_like, 8), (_t_want, 5), (_t_conj, 5), (_t_travel, 5),
]
_TOTAL = sum(w for _, w in _TEMPLATES)


def _pick_template(rng):
    x = rng.random() * _TOTAL
    for f, w in _TEMPLATES:
        x -= w
        if x < 0:
            return f
    return _TEMPLATES[-1][0]


def sentence(rng: random.Random) -> str:
    """One grammatical declarative sentence, 6-16 words, with final punctuation."""
    while True:
        s = _pick_template(rng)(rng)
        if 6 <= len(s.split()) <= 16:
            return s + END


# ---- NLI -----------------------------------------------------------------------------------------

def nli(rng: random.Random) -> tuple:
    """(premise, hypothesis, label): 0 entailment, 1 neutral, 2 contradiction, from one event."""
    label = rng.randrange(3)
    r = rng.random()
    if r < 0.5:
        ev = _event(rng, trans=True, tense="past")
    elif r < 0.7:
        ev = _event(rng, trans=False, tense="past")
    elif r < 0.85:
        ev = _event(rng, tense="hab")
    else:
        ev = _event(rng, tense="prog")
    premise = _render(ev, front=rng.random() < 0.4) + END
    S, v, t = ev["S"], ev["v"], ev["t"]
    if label == 0:
        if ev["trans"]:
            keep_time = rng.random() < 0.5 and t != "hab"
            hyp = _render(ev, time=keep_time, place=False, adj=False, comp=False)
            if hyp == _render(ev):
                hyp = _render(ev, time=False, place=False, adj=False, comp=False)
        else:
            hyp = _render(ev, time=False, comp=False)
    elif label == 2:
        if t == "past" and ev["trans"] and v.get("kuch") and rng.random() < 0.4:
            hyp = " ".join([S["o"], W["ne"], ev["time"], W["kuch"], W["nahi"],
                            _perf(v["stem"], M, SG)])
        elif t == "hab":
            hyp = _render(ev, neg=True, place=not ev["trans"], adj=False, comp=False,
                          time_word=W["kabhi"])
        else:
            keep_time = t == "prog" or rng.random() < 0.5
            hyp = _render(ev, neg=True, time=keep_time, place=not ev["trans"], adj=False, comp=False)
    else:
        opts = ["like"]
        if S["age"] != "young" and not _real_pl(S):
            opts.append("house")
        if t == "past":
            opts.append("happy")
        if v["key"] not in ("go", "travel", "live"):
            opts.append("future")
        if t == "past" and ev["trans"] and v.get("for_") and not ev["fixed"] and not _real_pl(S):
            opts += ["for", "for"]
        k = rng.choice(opts)
        if k == "like":
            what, _ = _activity(rng, S, exclude=v)
            hyp = " ".join([S["o"], W["ko"], what, W["pasand"], HAI[0]])
        elif k == "house":
            hyp = " ".join([S["o"], KA[0], W["ghar"], rng.choice(POSS_LOCS), HAI[0]])
        elif k == "happy":
            hyp = " ".join([S["d"], W["us_din"], W["bahut"], W["khush"], _ag(S["g"], S["n"], *THA)])
        elif k == "future":
            hyp = " ".join([S["d"], W["next_month"], rng.choice(CITIES), _fut(GO_STEM, S["g"], S["n"])])
        else:
            O = ev["O"]
            hyp = " ".join([S["o"], W["ne"], _refl(rng, S) + FOR, O["bare"],
                            _perf(v["stem"], O["g"], O["n"])])
    return premise, hyp + END, label


# ---- QA ------------------------------------------------------------------------------------------

def _filler(rng, avoid):
    k = rng.randrange(4)
    if k == 0:
        return _t_weather(rng)
    if k == 1:
        return _t_exist(rng)
    if k == 2:
        S = _kin(rng, P=POSS_PRON[0])
        descs = [(w, g, t) for w, g, t in KIN_DESC if _ok(S["age"], w) and (g is None or g == S["g"])]
        return S["d"] + " " + _fill(rng.choice(descs)[2], S, rng)
    while True:
        s = _t_possessive(rng)
        if not any(a in s.split() for a in avoid):
            return s


def qa(rng: random.Random) -> tuple:
    """(context, question, answer): the answer is a span copied from the context."""
    kind = rng.choice(["hab", "past_t", "past_i", "fut", "prog"])
    if kind == "past_t":
        ev = _event(rng, trans=True, tense="past", names_only=True, qa=True)
    elif kind == "past_i":
        ev = _event(rng, trans=False, tense="past", names_only=True, qa=True)
    else:
        ev = _event(rng, tense=kind, names_only=True, qa=True)
    S, t = ev["S"], ev["t"]
    erg = ev["trans"] and t == "past"
    whs = []
    if not erg:
        whs.append("subj")
    if ev["trans"] and not ev["fixed"]:
        whs.append("obj")
    p = ev["place"]
    if p and p not in NONLOC and p.count(" ") <= 2 and (" " + W["se"] + " ") not in p:
        whs.append("place")
    if t != "prog" and ev["time"] not in NO_KAB and ev["v"]["key"] != "live":
        whs.append("time")
    wh = rng.choice(whs)
    answer = {"subj": S["d"], "obj": ev["O"]["full"] if ev["O"] else None, "place": p,
              "time": ev["time"]}[wh]
    main = _render(ev, front=(wh != "time" and rng.random() < 0.3)) + END
    question = _render(ev, wh=wh) + QEND
    ctx = [main]
    for _ in range(rng.randrange(3)):
        f = _filler(rng, (S["d"],)) + END
        ctx.insert(rng.randrange(len(ctx) + 1), f)
    return " ".join(ctx), question, answer
