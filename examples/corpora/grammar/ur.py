"""Urdu (اردو, Arabic/Nastaliq-script Unicode) demo grammar.

A hand-written demo grammar by the neuron-pilot authors: the word lists and sentence templates below
were written for the neuron-pilot demo corpora, not taken from any corpus. It encodes the agreement
Urdu needs: noun gender and number (marked -ā/-e and unmarked masculines, -ī and other feminines),
adjectives that agree (-ā/-e/-ī) or stay invariant (تازہ، خوبصورت), verbs that agree with the
subject, or with the object in the نے-ergative perfective, honorific plural agreement for elders,
and possessive کا/کی/کے agreeing with the possessed noun. Word order is SOV; sentences end in "۔".

Standard library only; every function takes a ``random.Random`` and is deterministic given it.
"""

import random

LANG = "ur"
NAME = "اردو"
SCRIPT = "Arabic"
XNLI_WORDS = {"right": "صحیح", "yes": "ہاں", "also": "اس لیے", "no": "نہیں"}

M, F = "m", "f"
SG, PL = "sg", "pl"


def _ag(g, n, ms, mp, fs, fp):
    """Pick the form agreeing with gender g and number n."""
    if g == M:
        return ms if n == SG else mp
    return fs if n == SG else fp


# =============================================================== language data (Urdu)

END = "۔"
QEND = "؟"

W = {
    "ne": "نے", "ko": "کو", "se": "سے", "nahi": "نہیں", "kyonki": "کیونکہ",
    "kaun": "کون", "kahan": "کہاں", "kahan_se": "کہاں سے", "kya": "کیا", "kab": "کب",
    "kabhi": "کبھی", "kuch": "کچھ", "ek": "ایک", "koi": "کوئی", "bahut": "بہت",
    "pasand": "پسند", "ke_liye": "کے لیے", "pehle": "پہلے", "us_din": "اس دن",
    "khush": "خوش", "ghar": "گھر", "next_month": "اگلے مہینے",
}
HAI = ("ہے", "ہیں")
THA = ("تھا", "تھے", "تھی", "تھیں")
RAHA = ("رہا", "رہے", "رہی", "رہی")
KA = ("کا", "کے", "کی")  # masc. sg. direct, masc. oblique/plural, fem.
CHAHTA = ("چاہتا ہے", "چاہتے ہیں", "چاہتی ہے", "چاہتی ہیں")
GO_STEM = "جا"
INTENS = ["بہت", "کافی"]
NUMS = ["دو", "تین", "چار", "پانچ", "کچھ"]
EXIST_NUMS = ["دو", "تین", "کئی"]

# ---- verb morphology -----------------------------------------------------------
_PERF_IRR = {
    "کر": ("کیا", "کیے", "کی", "کیں"),
    "پی": ("پیا", "پیے", "پی", "پیں"),
    "لے": ("لیا", "لیے", "لی", "لیں"),
    "دے": ("دیا", "دیے", "دی", "دیں"),
    "جا": ("گیا", "گئے", "گئی", "گئیں"),
    "ہو": ("ہوا", "ہوئے", "ہوئی", "ہوئیں"),
}
_FUT_IRR = {"پی": ("پیے", "پئیں"), "لے": ("لے", "لیں"), "دے": ("دے", "دیں"), "ہو": ("ہو", "ہوں")}
_VOWEL_END = ("ا", "و", "آ")


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
        forms = (b + "یا", b + "ئے", b + "ئی", b + "ئیں")
    else:
        forms = (b + "ا", b + "ے", b + "ی", b + "یں")
    return pre + _ag(g, n, *forms)


def _fut(stem, g, n):
    pre, b = _split(stem)
    if b in _FUT_IRR:
        s, p = _FUT_IRR[b]
    elif b.endswith(_VOWEL_END):
        s, p = b + "ئے", b + "ئیں"
    else:
        s, p = b + "ے", b + "یں"
    return pre + _ag(g, n, s + " گا", p + " گے", s + " گی", p + " گی")


def _hab(stem, g, n, neg=False):
    if neg:  # negated habitual drops the auxiliary: نہیں جاتا / نہیں جاتیں
        return _ag(g, n, stem + "تا", stem + "تے", stem + "تی", stem + "تیں")
    return _ag(g, n, stem + "تا", stem + "تے", stem + "تی", stem + "تی") + " " + HAI[n == PL]


def _prog(stem, g, n):
    return stem + " " + _ag(g, n, *RAHA) + " " + HAI[n == PL]


def _inf(stem):
    return stem + "نا"


# ---- adjectives: (masc. sg. direct, masc. plural/oblique, feminine) -----------------
def _mk(ms):
    return (ms, ms[:-1] + "ے", ms[:-1] + "ی")


def _inv(w):
    return (w, w, w)


ADJ = {
    "garam": _inv("گرم"), "svad": _inv("لذیذ"), "taza": _inv("تازہ"), "patla": _mk("پتلا"),
    "hara": _mk("ہرا"), "paka": _mk("پکا"), "peela": _mk("پیلا"), "khatta": _mk("کھٹا"),
    "meetha": _mk("میٹھا"), "laal": _inv("لال"), "thanda": _mk("ٹھنڈا"), "saaf": _inv("صاف"),
    "naya": ("نیا", "نئے", "نئی"), "purana": _mk("پرانا"), "mota": _mk("موٹا"),
    "mazedar": _inv("مزیدار"), "lamba": _mk("لمبا"), "chhota": _mk("چھوٹا"), "bada": _mk("بڑا"),
    "sundar": _inv("خوبصورت"), "neela": _mk("نیلا"), "kaala": _mk("کالا"), "mehnga": _mk("مہنگا"),
    "sasta": _mk("سستا"), "safed": _inv("سفید"), "bhaari": _inv("بھاری"), "ganda": _mk("گندا"),
    "sookha": _mk("سوکھا"), "pyara": _mk("پیارا"), "ooncha": _mk("اونچا"),
    "hara_bhara": ("ہرا بھرا", "ہرے بھرے", "ہری بھری"), "mehnati": _inv("محنتی"),
}
ANTONYMS = [("naya", "purana"), ("bada", "chhota"), ("mehnga", "sasta"), ("saaf", "ganda")]


# ---- nouns ---------------------------------------------------------------------------
def _m(sg):  # marked masculine plural: لڑکا -> لڑکے، کمرہ -> کمرے
    return sg[:-1] + "ے"


def _fi(sg):  # feminine in -ī: لڑکی -> لڑکیاں
    return sg + "اں"


def _fc(sg):  # other feminines: کتاب -> کتابیں
    return sg + "یں"


def _o(sg, pl, g, kind, adjs, meas=None):
    """kind: 'count' (sg or pl), 'mass' (sg, may take a measure), 'sg' (always sg), 'pl' (plural only)."""
    return {"sg": sg, "pl": pl, "g": g, "kind": kind, "adjs": adjs, "meas": meas}


CUP = ["ایک کپ", "دو کپ"]
GLASS = ["ایک گلاس", "دو گلاس"]

OBJ = {
    # food
    "khana": _o("کھانا", None, M, "mass", ["garam", "svad"]),
    "roti": _o("روٹی", _fi("روٹی"), F, "count", ["garam", "taza"]),
    "dal": _o("دال", None, F, "mass", ["garam", "patla", "svad"]),
    "sabzi": _o("سبزی", _fi("سبزی"), F, "count", ["taza", "hara", "svad"]),
    "sabzi_dish": _o("سبزی", None, F, "sg", ["taza", "svad"]),
    "aam": _o("آم", "آم", M, "count", ["meetha", "paka", "khatta", "peela"]),
    "kela": _o("کیلا", _m("کیلا"), M, "count", ["peela", "paka"]),
    "seb": _o("سیب", "سیب", M, "count", ["laal", "meetha", "taza"]),
    "mithai": _o("مٹھائی", _fi("مٹھائی"), F, "count", ["taza", "svad"]),
    "samosa": _o("سموسہ", _m("سموسہ"), M, "count", ["garam", "svad"]),
    "paratha": _o("پراٹھا", _m("پراٹھا"), M, "count", ["garam"]),
    "khichdi": _o("کھچڑی", None, F, "mass", ["garam"]),
    "amrood": _o("امرود", "امرود", M, "count", ["hara", "meetha", "paka"]),
    "anda": _o("انڈا", _m("انڈا"), M, "count", []),
    "halwa": _o("حلوہ", None, M, "mass", ["garam", "meetha"]),
    # drinks
    "chai": _o("چائے", None, F, "mass", ["garam", "meetha"], CUP),
    "doodh": _o("دودھ", None, M, "mass", ["thanda", "garam", "taza"], GLASS),
    "paani": _o("پانی", None, M, "mass", ["thanda", "saaf"], GLASS),
    "lassi": _o("لسی", None, F, "mass", ["thanda", "meetha"], GLASS),
    "coffee": _o("قہوہ", None, M, "mass", ["garam"], CUP),
    "sharbat": _o("شربت", None, M, "mass", ["thanda", "meetha"], GLASS),
    "juice": _o("جوس", None, M, "mass", ["thanda", "taza"], GLASS),
    # reading and writing
    "kitab": _o("کتاب", _fc("کتاب"), F, "count", ["naya", "purana", "mota", "mazedar"]),
    "akhbar": _o("اخبار", None, M, "sg", []),
    "kahani": _o("کہانی", _fi("کہانی"), F, "count", ["lamba", "mazedar", "chhota"]),
    "chitthi": _o("خط", "خط", M, "count", ["lamba", "chhota"]),
    "patrika": _o("رسالہ", _m("رسالہ"), M, "count", ["naya", "purana"]),
    "kavita": _o("نظم", _fc("نظم"), F, "count", ["sundar", "chhota"]),
    "nibandh": _o("مضمون", None, M, "sg", ["lamba", "chhota"]),
    "arzi": _o("درخواست", None, F, "sg", []),
    "hindi": _o("اردو", None, F, "mass", []),
    "ganit": _o("ریاضی", None, F, "mass", []),
    "itihas": _o("تاریخ", None, F, "mass", []),
    "vigyan": _o("سائنس", None, F, "mass", []),
    "angrezi": _o("انگریزی", None, F, "mass", []),
    # things to buy and wear
    "cycle": _o("سائیکل", _fc("سائیکل"), F, "count",
                ["naya", "purana", "laal", "neela", "kaala", "mehnga", "sasta"]),
    "ghadi": _o("گھڑی", _fi("گھڑی"), F, "count", ["naya", "sundar", "mehnga", "sasta"]),
    "joote": _o("جوتے", None, M, "pl", ["naya", "kaala", "sasta", "mehnga"]),
    "kapde": _o("کپڑے", None, M, "pl", ["naya", "purana", "sundar", "ganda"]),
    "kurta": _o("کرتا", _m("کرتا"), M, "count", ["naya", "safed", "neela", "sundar"]),
    "saree": _o("دوپٹہ", _m("دوپٹہ"), M, "count", ["naya", "laal", "sundar", "mehnga"]),
    "chhata": _o("چھتری", _fi("چھتری"), F, "count", ["kaala", "naya", "bada"]),
    "thaila": _o("تھیلا", _m("تھیلا"), M, "count", ["bada", "naya"]),
    "kameez": _o("قمیض", _fc("قمیض"), F, "count", ["naya", "safed", "neela"]),
    "topi": _o("ٹوپی", _fi("ٹوپی"), F, "count", ["naya", "laal", "safed"]),
    "khilona": _o("کھلونا", _m("کھلونا"), M, "count", ["naya", "chhota", "sundar"]),
    "gend": _o("گیند", _fc("گیند"), F, "count", ["naya", "laal"]),
    "kalam": _o("قلم", "قلم", M, "count", ["naya", "neela", "kaala"]),
    "basta": _o("بستہ", _m("بستہ"), M, "count", ["naya", "bhaari", "neela"]),
    "sweater": _o("سویٹر", "سویٹر", M, "count", ["garam", "naya", "laal"]),
    # things to watch and hear
    "film": _o("فلم", _fc("فلم"), F, "count", ["naya", "purana", "mazedar"]),
    "match": _o("میچ", "میچ", M, "count", []),
    "natak": _o("ڈراما", _m("ڈراما"), M, "count", ["mazedar"]),
    "tasveer": _o("تصویر", _fc("تصویر"), F, "count", ["sundar", "chhota"]),
    "gaana": _o("گانا", _m("گانا"), M, "count", ["naya", "purana"]),
    "geet": _o("غزل", _fc("غزل"), F, "count", ["sundar", "purana"]),
    "bhajan": _o("قوالی", _fi("قوالی"), F, "count", ["purana"]),
    "khabar": _o("خبریں", None, F, "pl", []),
    # house and farm
    "bartan": _o("برتن", None, M, "pl", ["ganda"]),
    "gaadi": _o("گاڑی", None, F, "sg", ["purana"]),
    "kamra": _o("کمرہ", None, M, "sg", ["ganda", "bada", "chhota"]),
    "ghar": _o("گھر", None, M, "sg", []),
    "rasoi": _o("باورچی خانہ", None, M, "sg", []),
    "aangan": _o("صحن", None, M, "sg", []),
    "mez": _o("میز", None, F, "sg", []),
    "khidki": _o("کھڑکی", None, F, "sg", []),
    "darwaza": _o("دروازہ", None, M, "sg", []),
    "dukan": _o("دکان", None, F, "sg", []),
    "phool": _o("پھول", "پھول", M, "count", ["laal", "peela", "sundar"]),
    "gehun": _o("گندم", None, F, "mass", []),
    "dhaan": _o("دھان", None, M, "mass", []),
    "sarson": _o("سرسوں", None, F, "mass", []),
    "beej": _o("بیج", None, M, "pl", []),
    "fasal": _o("فصل", None, F, "sg", ["paka"]),
    "ghaas": _o("گھاس", None, F, "mass", ["hara", "sookha"]),
    "paise": _o("پیسے", None, M, "pl", []),
    "tohfa": _o("تحفہ", _m("تحفہ"), M, "count", ["sundar", "chhota"]),
    "parcel": _o("پارسل", "پارسل", M, "count", ["chhota", "bada", "bhaari"]),
    "pankha": _o("پنکھا", None, M, "sg", ["purana"]),
    "radio": _o("ریڈیو", None, M, "sg", ["purana"]),
    "chabi": _o("چابی", None, F, "sg", []),
    "chashma": _o("عینک", None, F, "sg", ["naya", "purana"]),
    "cricket": _o("کرکٹ", None, F, "mass", []),
    "football": _o("فٹ بال", None, M, "mass", []),
    "hockey": _o("ہاکی", None, F, "mass", []),
    "kabaddi": _o("کبڈی", None, F, "mass", []),
    "fees": _o("اسکول کی فیس", None, F, "sg", []),
    "bill": _o("بجلی کا بل", None, M, "sg", []),
    "kiraya": _o("گھر کا کرایہ", None, M, "sg", []),
}

# ---- people ----------------------------------------------------------------------------
NAMES_M = ["احمد", "علی", "عمران", "بلال", "حسن", "فیصل", "کامران", "زبیر"]
NAMES_F = ["فاطمہ", "عائشہ", "زینب", "سارہ", "مریم", "نادیہ", "صبا", "ثنا"]
POSS_PRON = [("میرا", "میرے", "میری"), ("ہمارا", "ہمارے", "ہماری")]
# key, direct sg, oblique sg, gender, honorific (plural agreement), age
KIN = [
    ("bhai", "بھائی", "بھائی", M, False, "any"),
    ("bahan", "بہن", "بہن", F, False, "any"),
    ("beta", "بیٹا", "بیٹے", M, False, "young"),
    ("beti", "بیٹی", "بیٹی", F, False, "young"),
    ("pita", "ابو", "ابو", M, True, "adult"),
    ("maa", "امی", "امی", F, True, "adult"),
    ("dada", "دادا", "دادا", M, True, "adult"),
    ("dadi", "دادی", "دادی", F, True, "adult"),
    ("chacha", "چچا", "چچا", M, True, "adult"),
    ("dost", "دوست", "دوست", M, False, "any"),
]
# direct, oblique, gender, number, age, kin key
OTHER_SUBJ = [
    ("بچے", "بچوں", M, PL, "young", None),
    ("لڑکیاں", "لڑکیوں", F, PL, "young", None),
    ("میرے دوست", "میرے دوستوں", M, PL, "any", "dost"),
    ("گاؤں کے لوگ", "گاؤں کے لوگوں", M, PL, "adult", None),
    ("وہ لڑکا", "اس لڑکے", M, SG, "young", None),
    ("وہ لڑکی", "اس لڑکی", F, SG, "young", None),
]
# reflexive kin (oblique), used before کی/سے/کا/کے ساتھ/کے لیے
REFL = [("maa", "اپنی امی"), ("pita", "اپنے ابو"), ("bhai", "اپنے بھائی"), ("bahan", "اپنی بہن"),
        ("dost", "اپنے دوست"), ("dadi", "اپنی دادی"), ("dada", "اپنے دادا")]
WITH = " کے ساتھ"
WITH_FRIENDS = "اپنے دوستوں کے ساتھ"
FOR = " کے لیے"
WAIT_COMP = ["بس کا", "ٹرین کا", "اپنے دوست کا"]
EXAM_COMP = "امتحان کی"

CITIES = ["لاہور", "کراچی", "اسلام آباد", "ملتان", "پشاور", "کوئٹہ", "فیصل آباد", "حیدرآباد"]

# ---- times -------------------------------------------------------------------------------
TIMES = {
    "hab": ["ہر روز", "ہر صبح", "ہر شام", "روز صبح", "ہر اتوار", "اکثر", "ہر ہفتے", "کبھی کبھی"],
    "prog": ["ابھی", "اس وقت", "آج"],
    "past": ["کل", "پرسوں", "کل شام", "کل صبح", "پچھلے ہفتے", "پچھلے اتوار", "آج صبح",
             "دو دن پہلے", "پچھلے مہینے"],
    "fut": ["کل", "پرسوں", "کل صبح", "اگلے ہفتے", "اگلے اتوار", "آج شام", "اگلے مہینے"],
}
NEG_HAB_TIMES = ["صبح", "شام کو", "اتوار کو", "آج کل"]
NO_KAB = ["اکثر", "کبھی کبھی", "آج کل", "ان دنوں", "ہر روز"]
NONLOC = ["ٹی وی پر", "ریڈیو پر", "فون پر"]

# ---- verbs ---------------------------------------------------------------------------------
def _tv(key, stem, objs, places, **kw):
    d = {"key": key, "stem": stem, "objs": objs, "places": places, "trans": True}
    d.update(kw)
    return d


def _iv(key, stem, places, **kw):
    d = {"key": key, "stem": stem, "objs": [], "places": places, "trans": False}
    d.update(kw)
    return d


GO_DESTS = ["بازار", ("اسکول", "young"), ("دفتر", "adult"), ("کھیت", "adult"), "ہسپتال",
            "مسجد", "پارک", "گھر"]

TV = [
    _tv("buy", "خرید", ["sabzi", "aam", "kela", "seb", "mithai", "cycle", "ghadi", "joote", "kapde",
                        "kurta", "saree", "chhata", "thaila", "kameez", "topi", "khilona", "gend",
                        "kalam", "basta", "kitab", "sweater", "doodh"],
        ["بازار سے", "دکان سے", "میلے سے", "شہر سے"], hab_pl=True, kuch=True, for_=True,
        hab_objs=["sabzi", "aam", "kela", "seb", "mithai", "doodh", "kitab"]),
    _tv("eat", "کھا", ["khana", "roti", "dal", "sabzi_dish", "aam", "kela", "seb", "mithai", "samosa",
                      "paratha", "khichdi", "amrood", "anda", "halwa"],
        ["گھر پر", "باورچی خانے میں", "اسکول میں"], kuch=True, daily=True),
    _tv("drink", "پی", ["chai", "doodh", "paani", "lassi", "coffee", "sharbat", "juice"],
        ["گھر پر", "ہوٹل میں", "باورچی خانے میں"], kuch=True, meas=True, daily=True),
    _tv("read", "پڑھ", ["kitab", "akhbar", "kahani", "chitthi", "patrika"],
        ["کمرے میں", "کتب خانے میں", "باغ میں"], hab_pl=True, kuch=True),
    _tv("study", "پڑھ", ["hindi", "ganit", "itihas", "vigyan", "angrezi"], ["اسکول میں", "کمرے میں"],
        who="young"),
    _tv("write", "لکھ", ["chitthi", "kahani", "kavita", "nibandh", "arzi"],
        ["کمرے میں", "اسکول میں", "دفتر میں"], hab_pl=True, kuch=True, for_=True),
    _tv("cook", "بنا", ["khana", "roti", "dal", "sabzi_dish", "chai", "khichdi", "halwa", "paratha"],
        ["باورچی خانے میں", "گھر پر"], hab_pl=True, for_=True, daily=True),
    _tv("cook2", "پکا", ["khana", "dal", "sabzi_dish", "khichdi", "halwa"], ["باورچی خانے میں"],
        hab_pl=True, for_=True, daily=True),
    _tv("wash", "دھو", ["kapde", "bartan", "gaadi"], ["صحن میں", "نلکے پر", "گھر پر"],
        adjs=["ganda", "purana"], daily=True),
    _tv("clean", "صاف کر", ["kamra", "ghar", "rasoi", "aangan", "mez", "khidki"], [], daily=True),
    _tv("sell", "بیچ", ["sabzi", "aam", "kela", "doodh", "mithai", "kapde", "phool"],
        ["بازار میں", "میلے میں", "دکان پر"], who="adult", hab_pl=True),
    _tv("watch", "دیکھ", ["film", "match", "natak"], ["گھر پر", "ٹی وی پر"], hab_pl=True, nonum=True,
        times={"hab": ["ہر اتوار", "اکثر", "ہر ہفتے"]}),
    _tv("listen", "سن", ["gaana", "geet", "kahani", "khabar", "bhajan"], ["ریڈیو پر", "گھر پر"],
        hab_pl=True),
    _tv("open", "کھول", ["darwaza", "khidki", "dukan"], [], act=False),
    _tv("close", "بند کر", ["darwaza", "khidki", "dukan"], [], act=False),
    _tv("pluck", "توڑ", ["aam", "amrood", "phool", "seb"], ["باغ میں", "درخت سے"], hab_pl=True),
    _tv("sow", "بو", ["gehun", "dhaan", "sarson", "beej"], ["کھیت میں"], who="adult",
        times={"hab": ["ہر سال"]}),
    _tv("cut", "کاٹ", ["fasal", "ghaas", "gehun"], ["کھیت میں"], who="adult",
        times={"hab": ["ہر سال"]}),
    _tv("send", "بھیج", ["chitthi", "paise", "tohfa", "parcel"], ["ڈاک خانے سے", "شہر سے"],
        hab_pl=True, for_=True, act=False, times={"hab": ["ہر مہینے"]}),
    _tv("fix", "ٹھیک کر", ["cycle", "ghadi", "pankha", "gaadi", "radio"], ["گھر پر", "دکان پر"],
        hab_pl=True),
    _tv("search", "ڈھونڈ", ["chabi", "kitab", "ghadi", "basta", "gend", "chashma"],
        ["کمرے میں", "گھر میں"], tenses=["prog", "past"], act=False, nonum=True),
    _tv("play", "کھیل", ["cricket", "football", "hockey", "kabaddi"],
        ["میدان میں", "پارک میں", "اسکول میں"], who="young"),
    _tv("sing", "گا", ["gaana", "geet", "bhajan"], ["اسکول میں", "میلے میں", "شادی میں"],
        tenses=["prog", "past", "fut"], for_=True, nonum=True),
    _tv("pay", "بھر", ["fees", "bill", "kiraya"], ["بینک میں"], who="adult", act=False,
        times={"hab": ["ہر مہینے"]}),
    _tv("decorate", "سجا", ["ghar", "kamra", "aangan", "dukan"], [], adjs=[],
        times={"hab": ["ہر سال", "عید پر"]}),
    _tv("draw", "بنا", ["tasveer"], ["کاپی میں", "اسکول میں"], hab_pl=True, for_=True, who="young"),
    _tv("wear", "پہن", ["kurta", "kameez", "joote", "topi", "sweater"], [], nonum=True,
        times={"hab": ["ہر اتوار", "اکثر", "عید پر"]}),
    _tv("work", "کر", [], ["کھیت میں", "دفتر میں", "دکان پر", "ہسپتال میں"], who="adult",
        fixed=("کام", M, SG)),
    _tv("study2", "کر", [], ["کمرے میں", "کتب خانے میں"], who="young", fixed=("پڑھائی", F, SG)),
    _tv("help", "کر", [], ["باورچی خانے میں", "کھیت میں", "دکان پر"], fixed=("مدد", F, SG),
        comp="ki"),
    _tv("talk", "کر", [], ["فون پر"], fixed=("بات", F, SG), comp="se"),
    _tv("wait", "کر", [], ["اسٹیشن پر", "بس اڈے پر"], fixed=("انتظار", M, SG), comp="wait",
        act=False),
    _tv("prepare", "کر", [], ["کمرے میں", "کتب خانے میں"], who="young", fixed=("تیاری", F, SG),
        comp="exam", act=False),
]

IV = [
    _iv("go", "جا", GO_DESTS, with_=True,
        times={"hab": ["ہر روز", "ہر صبح", "روز صبح", "اکثر", "کبھی کبھی"]}),
    _iv("travel", "جا", CITIES, with_=True,
        times={"hab": ["ہر سال", "ہر مہینے", "کبھی کبھی", "گرمیوں میں"]}, tenses=["hab", "past", "fut"]),
    _iv("come", "آ", ["گھر", "گاؤں", "شہر", "ہمارے گھر"], with_=True, act=False),
    _iv("return", "واپس آ", ["گھر", "گاؤں", ("اسکول سے گھر", "young"), ("دفتر سے گھر", "adult"),
                             "بازار سے گھر"], with_=True, act=False),
    _iv("reach", "پہنچ", ["اسٹیشن", ("اسکول", "young"), ("دفتر", "adult"), "ہسپتال"] + CITIES,
        tenses=["past", "fut"], act=False),
    _iv("leave", "نکل", ["گھر سے", ("دفتر سے", "adult"), ("اسکول سے", "young")],
        tenses=["prog", "past"], act=False,
        times={"past": ["کل صبح", "آج صبح", "کل شام", "پرسوں صبح"], "prog": ["ابھی", "اس وقت"]}),
    _iv("sleep", "سو", ["اپنے کمرے میں", "چھت پر", "صحن میں"], aux=True,
        times={"hab": ["رات کو", "ہر رات", "گرمیوں میں"], "past": ["کل رات", "پرسوں رات"],
               "fut": ["آج رات", "کل رات"], "prog": ["ابھی", "اس وقت"]}),
    _iv("run", "دوڑ", ["پارک میں", "میدان میں", "سڑک کے کنارے"]),
    _iv("sit", "بیٹھ", ["درخت کے نیچے", "صحن میں", "دریا کے کنارے"], aux=True, tenses=["hab", "past", "fut"]),
    _iv("bathe", "نہا", ["دریا میں", "تالاب میں"], with_=True),
    _iv("stroll", "ٹہل", ["پارک میں", "باغ میں", "دریا کے کنارے", "چھت پر"], with_=True),
    _iv("swim", "تیر", ["دریا میں", "تالاب میں"], who="young", with_=True),
    _iv("dance", "ناچ", ["میلے میں", "شادی میں"], tenses=["prog", "past", "fut"], with_=True),
    _iv("play_i", "کھیل", ["میدان میں", "صحن میں", "پارک میں"], who="young", with_=True),
    _iv("live", "رہ", ["{city} میں", "گاؤں میں"], tenses=["hab", "fut"], act=False,
        times={"hab": ["آج کل", "ان دنوں"], "fut": ["اگلے سال سے", "اگلے مہینے سے"]}),
    _iv("wander", "گھوم", ["میلے میں", "بازار میں", "پارک میں"], with_=True),
    _iv("climb", "چڑھ", ["پہاڑ پر", "درخت پر", "چھت پر"], who="young"),
    _iv("meet", "مل", ["بازار میں", "اسٹیشن پر", "میلے میں"], comp="se", act=False),
]

# ---- fixed-text templates ------------------------------------------------------------------------
# (who, main clause, reasons); {S}/{So} subject direct/oblique, {a:ms|mp|fs|fp}, {n:sg|pl}
BECAUSE = [
    ("young", "{S} آج اسکول نہیں {a:گیا|گئے|گئی|گئیں}",
     ["{n:وہ|وہ} بیمار {a:تھا|تھے|تھی|تھیں}", "{n:اسے|انہیں} تیز بخار تھا",
      "صبح سے تیز بارش ہو رہی تھی", "آج اسکول میں چھٹی تھی"]),
    ("adult", "{S} آج دفتر نہیں {a:گیا|گئے|گئی|گئیں}",
     ["{n:اسے|انہیں} تیز بخار تھا", "آج اتوار تھا", "{n:اس کی|ان کی} طبیعت ٹھیک نہیں تھی",
      "گھر پر مہمان آئے ہوئے تھے"]),
    ("any", "{So} نے بازار سے ایک چھتری خریدی",
     ["باہر بارش ہو رہی تھی", "{n:اس کی|ان کی} پرانی چھتری ٹوٹ گئی تھی"]),
    ("any", "{S} سارا دن گھر پر {a:رہا|رہے|رہی|رہیں}",
     ["باہر بہت سردی تھی", "{n:اس کی|ان کی} طبیعت ٹھیک نہیں تھی", "باہر بہت تیز دھوپ تھی"]),
    ("any", "{S} رات کو جلدی سو {a:گیا|گئے|گئی|گئیں}",
     ["{n:وہ|وہ} بہت {a:تھکا ہوا|تھکے ہوئے|تھکی ہوئی|تھکی ہوئی} {a:تھا|تھے|تھی|تھیں}",
      "اگلی صبح {n:اسے|انہیں} جلدی اٹھنا تھا"]),
    ("any", "{So} نے دو گلاس پانی پیا",
     ["{n:اسے|انہیں} بہت پیاس لگی تھی", "باہر بہت گرمی تھی"]),
    ("any", "{So} نے جلدی جلدی کھانا کھایا",
     ["{n:اسے|انہیں} بہت بھوک لگی تھی", "{n:اسے|انہیں} ٹرین پکڑنی تھی"]),
    ("any", "{S} آج بہت خوش {n:ہے|ہیں}",
     ["آج {n:اس کی|ان کی} سالگرہ ہے", "{n:اسے|انہیں} امتحان میں اچھے نمبر ملے",
      "کل {n:اس کی|ان کی} بہن شہر سے آئے گی"]),
    ("any", "{S} شام کو بازار {a:گیا|گئے|گئی|گئیں}",
     ["گھر میں سبزی ختم ہو گئی تھی", "{n:اسے|انہیں} نئے جوتے خریدنے تھے",
      "{n:اسے|انہیں} دوائی خریدنی تھی"]),
    ("young", "{S} آج پیدل اسکول {a:گیا|گئے|گئی|گئیں}",
     ["{n:اس کی|ان کی} سائیکل خراب تھی", "آج بس نہیں آئی"]),
    ("adult", "{S} بہت خوش {n:ہے|ہیں}",
     ["اس سال {n:اس کی|ان کی} فصل اچھی ہوئی", "اس سال گاؤں میں اچھی بارش ہوئی"]),
    ("any", "{So} نے کھڑکی بند کر دی",
     ["باہر بہت تیز ہوا چل رہی تھی", "باہر بہت شور ہو رہا تھا"]),
    ("any", "{S} کل میلے میں نہیں جا {a:سکا|سکے|سکی|سکیں}",
     ["{n:اسے|انہیں} بہت کام تھا", "{n:اس کی|ان کی} طبیعت ٹھیک نہیں تھی"]),
    ("any", "{So} نے آج گرم سویٹر پہنا",
     ["باہر بہت سردی تھی", "صبح سے ٹھنڈی ہوا چل رہی تھی"]),
    ("any", "{S} وقت پر اسٹیشن نہیں پہنچ {a:سکا|سکے|سکی|سکیں}",
     ["راستے میں بہت رش تھا", "بس دیر سے آئی"]),
]

WEATHER_PLACES = CITIES + ["ہمارے گاؤں", "شہر", "پہاڑوں"]
WEATHER = [
    "آج {P} میں صبح سے تیز بارش ہو رہی ہے",
    "کل رات {P} میں بہت تیز ہوا چلی",
    "سردیوں میں {P} میں بہت سردی پڑتی ہے",
    "گرمیوں میں {P} میں بہت گرمی پڑتی ہے",
    "آج {P} میں آسمان پر کالے بادل چھائے ہوئے ہیں",
    "کل صبح {P} میں گہری دھند تھی",
    "آج {P} میں اچھی دھوپ نکلی ہے",
    "بارش کے بعد {P} کی سڑکیں بہت گیلی تھیں",
    "پچھلے ہفتے {P} میں بہت بارش ہوئی",
    "اگلے دو دن {P} میں بارش ہو گی",
    "اس سال {P} میں اچھی بارش نہیں ہوئی",
    "آج {P} کا موسم بہت خوشگوار ہے",
    "آج {P} میں بہت ٹھنڈی ہوا چل رہی ہے",
]


def _n(sg, pl, g, adjs):
    return {"sg": sg, "pl": pl, "g": g, "adjs": adjs}


EXIST = [
    ("ہمارے گاؤں میں", [_n("تالاب", "تالاب", M, ["bada", "purana"]),
                        _n("مسجد", "مسجدیں", F, ["purana", "sundar"]),
                        _n("اسکول", "اسکول", M, ["chhota", "naya"]),
                        _n("کنواں", "کنویں", M, ["purana"]),
                        _n("ہسپتال", "ہسپتال", M, ["chhota", "naya"])]),
    ("ہمارے گھر کے پیچھے", [_n("باغ", "باغ", M, ["chhota", "sundar"]),
                            _n("کھیت", "کھیت", M, ["bada", "hara_bhara"]),
                            _n("تالاب", "تالاب", M, ["chhota"])]),
    ("میرے کمرے کی میز پر", [_n("کتاب", "کتابیں", F, ["purana", "naya", "mota"]),
                             _n("قلم", "قلم", M, ["neela", "naya"]),
                             _n("گھڑی", "گھڑیاں", F, ["purana", "sundar"])]),
    ("شہر کے بازار میں", [_n("دکان", "دکانیں", F, ["bada", "chhota", "naya"])]),
    ("اسکول کے قریب", [_n("پارک", "پارک", M, ["chhota", "sundar"]),
                       _n("میدان", "میدان", M, ["bada"]),
                       _n("دکان", "دکانیں", F, ["chhota"])]),
    ("دریا کے کنارے", [_n("درخت", "درخت", M, ["ooncha", "bada"]),
                       _n("مسجد", "مسجدیں", F, ["purana", "chhota"])]),
]

# possessed nouns: (noun, gender, number, attributive adjs, predicate adjs, can have a location)
POSSESSED = [
    ("گھر", M, SG, ["naya", "purana"], ["bada", "chhota", "sundar", "saaf"], True),
    ("کمرہ", M, SG, [], ["bada", "chhota", "saaf", "ganda"], False),
    ("سائیکل", F, SG, ["naya", "laal", "neela", "kaala"], ["mehnga", "sasta", "bhaari"], False),
    ("گھڑی", F, SG, ["naya", "purana"], ["mehnga", "sasta", "sundar"], False),
    ("جوتے", M, PL, ["naya", "kaala"], ["mehnga", "sasta", "ganda"], False),
    ("کپڑے", M, PL, ["naya"], ["saaf", "ganda", "sundar", "mehnga"], False),
    ("بستہ", M, SG, ["naya", "neela"], ["bhaari", "bada", "chhota"], False),
    ("باغ", M, SG, [], ["bada", "sundar", "chhota", "hara_bhara"], True),
    ("کھیت", M, PL, [], ["bada", "hara_bhara"], True),
    ("دکان", F, SG, [], ["bada", "chhota", "purana"], True),
    ("گائے", F, SG, ["safed", "kaala"], ["sundar", "mota"], False),
    ("کتا", M, SG, ["kaala", "safed", "chhota"], ["pyara", "mota"], False),
    ("آواز", F, SG, [], ["meetha"], False),
    ("بال", M, PL, [], ["lamba", "kaala"], False),
    ("گاڑی", F, SG, ["naya", "laal", "safed"], ["mehnga", "bada"], False),
    ("کتابیں", F, PL, ["purana", "naya"], ["mota", "mazedar", "mehnga"], False),
]
SHARED = ["گھر", "کمرہ", "باغ", "کھیت", "دکان", "گائے", "کتا", "گاڑی"]
POSS_LOCS = ["بازار کے قریب", "دریا کے کنارے", "اسکول کے پیچھے", "گاؤں کے باہر", "مسجد کے سامنے",
             "اسٹیشن کے قریب"]

# kin descriptions: (who, gender or None, text)
KIN_DESC = [
    ("adult", M, "ایک محنتی کسان {n:ہے|ہیں}"),
    ("adult", None, "شہر کے ہسپتال میں ڈاکٹر {n:ہے|ہیں}"),
    ("adult", M, "گاؤں کے اسکول میں استاد {n:ہے|ہیں}"),
    ("adult", F, "گاؤں کے اسکول میں استانی {n:ہے|ہیں}"),
    ("adult", F, "شہر کے ہسپتال میں نرس {n:ہے|ہیں}"),
    ("adult", None, "بازار میں کپڑوں کی دکان {a:چلاتا ہے|چلاتے ہیں|چلاتی ہے|چلاتی ہیں}"),
    ("any", None, "{city} میں {a:رہتا ہے|رہتے ہیں|رہتی ہے|رہتی ہیں}"),
    ("adult", None, "ایک بینک میں کام {a:کرتا ہے|کرتے ہیں|کرتی ہے|کرتی ہیں}"),
    ("young", None, "گاؤں کے اسکول میں {a:پڑھتا ہے|پڑھتے ہیں|پڑھتی ہے|پڑھتی ہیں}"),
    ("young", None, "پانچویں جماعت میں {a:پڑھتا ہے|پڑھتے ہیں|پڑھتی ہے|پڑھتی ہیں}"),
    ("any", None, "بہت اچھا کھانا {a:پکاتا ہے|پکاتے ہیں|پکاتی ہے|پکاتی ہیں}"),
    ("any", None, "ہر سال گرمیوں میں {city} {a:جاتا ہے|جاتے ہیں|جاتی ہے|جاتی ہیں}"),
    ("adult", None, "{city} کے ایک دفتر میں کام {a:کرتا ہے|کرتے ہیں|کرتی ہے|کرتی ہیں}"),
]

LIKE_OBJS = ["aam", "seb", "kela", "mithai", "samosa", "halwa", "chai", "lassi", "doodh", "coffee",
             "sharbat", "kitab", "kahani", "film", "gaana", "phool", "khichdi", "paratha"]

# travel: (vehicle phrase, 'far' = cities, 'near' = local places, 'both')
VEHICLES = [("بس سے", "far"), ("ٹرین سے", "far"), ("سائیکل پر", "near"), ("گاڑی سے", "both")]
NEAR_DESTS = [("اسکول", "young"), "بازار", ("دفتر", "adult"), ("کھیت", "adult")]
CONJ_DESTS = ["بازار", ("اسکول", "young"), ("دفتر", "adult"), ("کھیت", "adult"), "مسجد", "پارک"]
CONJ_TIMES = {"hab": ["ہر روز", "ہر صبح", "روز صبح", "اکثر", "ہر اتوار"],
              "past": ["کل", "کل صبح", "آج صبح", "پرسوں", "کل شام"],
              "fut": ["کل", "کل صبح", "پرسوں", "آج شام"]}
CONJ = ["نہا کر", "ناشتہ کر کے", "کھانا کھا کر", "تیار ہو کر", "اپنا کام ختم کر کے"]

PROMPTS = [
    "ہر صبح میرے ابو",
    "کل شام علی نے",
    "ہمارے گاؤں میں ایک",
    "آج بازار میں بہت",
    "میری امی باورچی خانے میں",
    "بچے اسکول کے میدان میں",
    "اگلے ہفتے فاطمہ لاہور",
    "کسان نے کھیت میں",
    "بارش کے بعد گاؤں کی",
    "میرے بھائی کو ٹھنڈی",
    "پچھلے سال ہم لوگ",
    "دکاندار نے تازہ سبزیاں",
    "سردیوں میں پہاڑوں پر",
    "احمد کی نئی سائیکل",
    "اسکول کے قریب ایک",
    "دادی ہر شام باغ میں",
    "آج صبح سے تیز",
    "عمران آج دفتر نہیں",
    "زینب نے اپنی بہن کو",
    "اتوار کو ہم سب",
    "میرے دوست کا گھر",
    "شہر کے ہسپتال میں",
    "کل رات بہت تیز",
    "سارہ ہر روز سائیکل پر",
]

# =============================================================== engine (shared with hi.py)

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
    if wh_subj:  # کون takes default masculine singular agreement
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
    if pre and form.startswith(pre):  # صاف نہیں کیا، بند نہیں کرے گا
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
    """An infinitive phrase ('پارک میں ٹہلنا') the subject S could do; not with verb `exclude`.
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
