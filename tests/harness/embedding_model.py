"""A deterministic, "semantic-ish but imperfect" text embedding for tests.

Standard library only.  The fake ``/v1/embeddings`` endpoint of
``harness.llm_server`` serves these vectors and ``tests/retrieval_eval.py``
uses the same functions for its local reference search, so both always agree.

How a text becomes a vector
---------------------------
1. ``tokenize``: NFKD-fold accents, lower-case, split on anything that is not
   ``[a-z0-9]`` ("ERR-4471" -> ``err``, ``4471``).
2. ``stem``: a light, inflection-only English stemmer (plurals, -ing, -ed and a
   final -e: ``baked``/``baking``/``bake`` -> ``bak``); no derivational rules.
3. Stop words (``STOPWORDS``) are dropped.
4. Each stem, and each pair of adjacent stems (``time off``, ``sign in``), is
   looked up in ``LEXICON_TEXT``: some 360 hand-written concepts, each a
   group of synonyms under a domain (``home.faucet = faucet tap spigot
   mixer``).  A known word adds its concept (weight ``CONCEPT_WEIGHT``, or
   ``GENERAL_WEIGHT`` for the topic-free ``gen.*`` concepts; an ambiguous word
   splits its weight between its concepts) plus a little of the concept's
   domain (``DOMAIN_WEIGHT``), so texts on the same topic drift together.
5. A word the lexicon does not know (a name, a product, a foreign dish) only
   adds itself as a raw feature with the small ``RAW_WEIGHT``: it leaves a
   trace, but a faint one.
6. A token with a digit (``4471``, ``e0502``) adds itself (``CODE_WEIGHT``),
   its first three characters (so ``4471`` and ``4474`` look alike) and the
   shared ``#number`` concept.
7. Feature weights are damped (``1 + ln(w)`` above 1) and each feature is
   hashed with blake2b into two signed slots of the ``dimensions`` buckets;
   the vector is L2-normalised and rounded to 6 decimals.

What that gives, by design
--------------------------
* Synonyms and paraphrases meet (``tap``/``faucet``, ``skillet``/``pan``,
  ``misplaced``/``lost``) where keyword search sees no shared word.
* Exact rare tokens are blurred: at the default 64 dimensions every slot holds
  several features, so a single code or surname barely moves the ranking and
  ``ERR-4471`` is hard to tell from ``ERR-4474``.  More dimensions mean fewer
  collisions; at a few thousand the vectors become good at exact tokens too.
* The usual failure modes of real embeddings: ambiguous words keep all their
  meanings (``python``, ``java``, ``bank``, ``blade``), internal code names
  that are also ordinary words look like birds and wild flowers (``Osprey``,
  ``Bramble``), negation is ignored, and neighbouring topics crowd each other.

Everything is a pure function of the text (and ``dimensions``): no state, no
randomness, identical across processes and platforms.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from functools import lru_cache
from typing import Iterable

DEFAULT_DIMENSIONS = 64
MAX_DIMENSIONS = 3072

CONCEPT_WEIGHT = 1.0
GENERAL_WEIGHT = 0.6
DOMAIN_WEIGHT = 0.35
RAW_WEIGHT = 0.3
NUMBER_WEIGHT = 0.5
CODE_WEIGHT = 1.2
CODE_PREFIX_WEIGHT = 0.5
SLOTS_PER_FEATURE = 2

_TOKEN_RE = re.compile(r"[a-z0-9]+")

STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below between both
    but by can could did do does doing don down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves s t ll ve re d m
    also get got gets getting one ever every many much may might must shall us let lets via per etc
    """.split()
)


# ---------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------


def fold(text: str) -> str:
    """Lower-case and strip accents (``Ljubljana``, ``pissaladière`` -> ascii)."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def tokenize(text: str) -> list[str]:
    """Lower-cased alphanumeric runs; everything else separates tokens."""
    return _TOKEN_RE.findall(fold(text))


_VOWELS = set("aeiouy")


def _has_vowel(s: str) -> bool:
    return any(ch in _VOWELS for ch in s)


@lru_cache(maxsize=65536)
def stem(token: str) -> str:
    """A light inflectional stemmer: plurals, -ing, -ed and a final -e.

    ``berries`` -> ``berry``, ``dripping`` -> ``drip``, ``baked``/``baking``/
    ``bake`` -> ``bak``, ``glasses`` -> ``glass``.  Tokens with digits and
    tokens of three letters or fewer are left alone.
    """
    w = token
    if len(w) <= 3 or not w.isalpha():
        return w
    # plurals and third person
    if w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    # past tense and gerund
    stripped = False
    if w.endswith("ied") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("eed"):
        pass
    elif w.endswith("ed") and len(w) >= 5 and _has_vowel(w[:-2]):
        w, stripped = w[:-2], True
    elif w.endswith("ing") and len(w) >= 6 and _has_vowel(w[:-3]):
        w, stripped = w[:-3], True
    if stripped and len(w) >= 3 and w[-1] == w[-2] and w[-1] not in "lsz" + "aeiou":
        w = w[:-1]
    # a final silent e: bake / baked / baking all meet at "bak"
    if len(w) > 3 and w.endswith("e") and not w.endswith("ee"):
        w = w[:-1]
    return w


def terms(text: str, stopwords: Iterable[str] = STOPWORDS) -> list[str]:
    """Stemmed tokens with stop words removed (the keyword side uses this too)."""
    stop = stopwords if isinstance(stopwords, (set, frozenset)) else frozenset(stopwords)
    return [stem(t) for t in tokenize(text) if t not in stop]


# ---------------------------------------------------------------------------
# The lexicon
# ---------------------------------------------------------------------------

# One line per concept: ``domain.concept = word word ...``.  Words are stemmed
# when the table is loaded, so list one form of each.  A word listed under two
# concepts is ambiguous and splits its weight between them.
LEXICON_TEXT = """
# --- general purpose (no topic pull) -------------------------------------
gen.fix = fix repair mend solve resolve remedy rescue revive restore bring_back
gen.problem = problem issue trouble fault defect glitch
gen.fail = fail failure failing broke broken break malfunction
gen.error = error mistake wrong incorrect inaccurate off_by
gen.stop = stop halt stuck freeze frozen stall block blocked hang pause
gen.start = start begin launch kick_off
gen.fast = fast quick quickly rapid speed faster hurry
gen.slow = slow slowly slower sluggish crawl lag
gen.grow = grow growth increase rise raise climb climbing swell expand
gen.reduce = reduce lower cut decrease shrink trim less fewer
gen.remove = remove delete discard throw_away rid
gen.lose = lose lost loss misplace misplaced missing vanish incomplete gone
gen.find = find locate trace search look_for detect
gen.prevent = prevent avoid protect protection guard defend
gen.safe = safe safety secure risk danger dangerous hazard harmful
gen.limit = limit threshold cap maximum ceiling quota upper_limit
gen.rule = rule policy regulation guideline law requirement
gen.approve = approve approval sign_off authorise authorize permit consent
gen.duplicate = duplicate twice double two_times repeat repeated again copy copies
gen.many = many multiple several numerous plenty lots
gen.old = old older earlier previous prior former outdated aged
gen.new = new newer fresh brand_new latest recent
gen.often = often frequent frequently regularly daily weekly routine habit
gen.wait = wait delay delayed late postpone
gen.help = help assist support advice guidance
gen.ask = ask request question enquiry query
gen.report = report write_up document record log postmortem diary paperwork
gen.notify = notify notification alert tell inform warn warning announce notice contact update receive ring
gen.answer = answer respond response reply acknowledge
gen.change = change alter modify mutate edit adjust switch shift trade swap
gen.check = check test verify inspect examine measure monitor
gen.compare = compare versus difference choose choice decide
gen.clean = clean wash scrub rinse wipe tidy
gen.dirty = dirty grime stain stained filth dust
gen.hot = hot heat warm warmth scorching boiling
gen.cold = cold chill chilly cool freezing icy frost ice
gen.wet = wet damp moist moisture soggy humid humidity
gen.dry = dry dried parched arid
gen.dark = dark dim shade shady gloomy black
gen.bright = bright light sunny sunlight daylight glare
gen.big = big large huge heavy bulky
gen.small = small little tiny mini
gen.time = time duration how_long period window
gen.morning = morning dawn sunrise early_morning breakfast
gen.night = night evening dusk overnight nightly bedtime
gen.winter = winter wintry snow
gen.summer = summer summertime heatwave
gen.hole = hole gap crack split opening puncture
gen.noise = noise noisy sound beep chirp squeak creak rumble bang hiss howl
gen.hurt = hurt pain painful ache aching sore injury
gen.die = die dying death dead mortality longevity lifespan long_life
gen.crash = crash crashed killed kill dies
gen.save = save saving rescue preserve

# --- food and cooking -------------------------------------------------------
food.cook = cook cooking recipe dish meal chef kitchen
food.bread = bread loaf baguette crust crumb toast sourdough dough starter yeast
food.stale = stale hard leathery staling
food.store = store storage keep_fresh container jar airtight
food.freeze = freezer freeze frozen ice_cube
food.fridge = fridge refrigerator refrigerate chill
food.leftover = leftover leftovers reheat
food.spoil = spoil spoiled rotten contamination bacteria mould
food.rice = rice grain basmati jasmine risotto
food.mushy = mushy gummy sticky gluey clump soggy sludgy
food.knife = knife knives blade cleaver
food.sharp = sharp sharpen sharpening hone honing whetstone dull blunt edge burr
food.egg = egg eggs yolk omelette
food.vegan = vegan plant_based substitute replacement replace swap dairy_free
food.bake = bake baking oven cake muffin brownie pastry
food.pan = pan skillet frying_pan wok griddle cast_iron pot
food.rust = rust rusty corrode corroding corrosion oxidise
food.oil = oil olive ghee butter fat grease greasy
food.meat = meat beef steak pork chicken lamb mince sausage bacon
food.fish = fish seafood haddock anchovy prawn sardine
food.temperature = temperature thermometer degree doneness
food.stock = stock broth soup stew
food.vegetable = vegetable onion carrot celery cabbage potato leek pepper kale
food.spice = spice cumin paprika chilli curry turmeric gochugaru gochujang seasoning
food.salt = salt salty brine
food.sugar = sugar caramel syrup sweet sweets
food.sour = sour tangy acidic vinegar ferment fermented fermentation
food.herb = herb basil parsley coriander dill rosemary thyme oregano mint chives
food.cookie = cookie biscuit
food.pasta = pasta noodle spaghetti dumpling pierogi
food.pizza = pizza flatbread
food.fruit = fruit avocado banana apple lemon lime berry
food.ripe = ripe ripen ripening unripe
food.cheese = cheese feta mozzarella parmesan
food.bean = bean lentil chickpea tofu tempeh
food.eat = eat eating food feed feeding meal hungry appetite
food.drink_coffee = coffee espresso tea caffeine
food.beer = beer wine alcohol mezcal

# --- travel -----------------------------------------------------------------
travel.trip = trip travel travelling journey holiday vacation tourist visit
travel.flight = flight fly flying plane airline airport boarding
travel.jetlag = jet_lag body_clock time_zone circadian
travel.rail = train rail railway shinkansen interrail eurail sleeper
travel.ticket = ticket pass fare reservation booking
travel.luggage = luggage baggage suitcase bag backpack carry_on
travel.pack = pack packing
travel.visa = visa schengen passport border entry immigration
travel.stay_days = overstay stay_days
travel.insurance = insurance cover policy_holder
travel.altitude = altitude high_altitude mountain summit oxygen cusco andes
travel.currency = currency exchange foreign cash atm conversion
travel.hotel = hotel hostel dorm accommodation lodging
travel.city = city town old_town neighbourhood medina quarter
travel.temple = temple shrine monastery palace borobudur
travel.road_trip = road_trip drive driving ring_road
travel.camp = camping camp permit backcountry trail trailhead
travel.compensation = compensation payout compensate
travel.island = island java bali
travel.beach = beach coast bay harbour port
travel.japan = japan tokyo kyoto osaka hiroshima

# --- software ---------------------------------------------------------------
soft.code = code program programming software script source developer process function method
soft.python = python pip venv asyncio
soft.java = java jvm
soft.rust = rust cargo borrow lifetime tokio annotation
soft.js = javascript node typescript npm promise
soft.git = git commit rebase branch merge bisect
soft.undo = undo revert rollback roll_back go_back reset
soft.version = version release build tag
soft.env = environment virtualenv virtual_environment
soft.list = list array vector vec collection element item
soft.mutate = mutable mutation mutate borrow_checker
soft.reference = reference pointer dangling
soft.compiler = compiler compile compiled
soft.async = async await concurrent concurrency coroutine parallel thread
soft.database = database sql query index table schema postgres orm django rails sqlalchemy
soft.slow_query = slow_query full_scan sequential_scan
soft.web = http browser website web html url link click fetch
soft.cache = cache caching cached cdn
soft.cors = cors origin preflight cross_origin
soft.cookie = cookie samesite httponly session
soft.container = docker container image dockerfile pod registry
soft.cluster = kubernetes k8s cluster node shard
soft.restart = restart restarting crashloop backoff
soft.kernel = kernel module driver linux
soft.shell = bash shell terminal command_line
soft.memory = memory ram heap leak garbage_collection gc
soft.float = floating_point float decimal precision rounding
soft.sum = sum add adding total summing
soft.text = text encoding utf character letter symbol accent unicode emoji string str
soft.garble = garbled garbage mojibake corrupted gibberish
soft.test = unit_test mock fake pytest assert
soft.ml = model training overfit overfitting validation dataset
soft.timezone_code = utc timestamp datetime zoneinfo
soft.rate_limit = rate_limit token_bucket throttle throttling
soft.port = port socket listen bind address_already
soft.api = api endpoint pagination call calls
soft.regex = regex regular_expression pattern
soft.config = config configuration setting settings yaml profile

# --- the workplace (company docs) ------------------------------------------
work.job = job work workplace employee staff colleague company office employer career
work.new_hire = new_starter new_hire onboarding joiner newcomer
work.laptop = laptop computer notebook device machine
work.expense = expense expenses claim receipt reimburse reimbursement refund
work.allowance = allowance stipend per_diem budget quota
work.furniture = desk chair monitor furniture
work.leave = leave time_off absence sabbatical break
work.remote = remote home_office hybrid telework wfh
work.manager = manager boss lead supervisor controller
work.oncall = on_call pager paging page rota rotation escalation escalate
work.incident = incident outage downtime sev1 sev2 severity
work.deploy = deploy deployment rollout ship release_train canary promote
work.trial = trial canary pilot experiment
work.stage = stage phase step
work.password = password passphrase passcode credential
work.phishing = phishing phish scam trick suspicious fraud fraudster dodgy shady sketchy
work.email = email mail inbox message
work.login = login log_in log_on sign_in sign_on single_sign authentication authenticate sso saml oidc
work.security_key = hardware_key security_key yubikey mfa two_factor
work.permission = permission access role denied authorised forbidden
work.privacy = pii personal_data privacy anonymised masking
work.certificate = certificate cert tls ssl handshake
work.expire = expire expired expiry lapse renewal renew
work.billing = billing invoice bill billed charge charged payment pay statement
work.customer = customer client account subscriber
work.cost = cost spend spending expensive price cheap bill money
work.warehouse = warehouse analytics data_warehouse
work.scan = scan scanned terabytes bytes read reading unreadable readable legible
work.search_cluster = search relevance reindex mapping result
work.mobile = mobile app phone ios android
work.push = push_notification notification
work.photo = photo picture image blurry blurred
work.meeting = meeting room meeting_room
work.parent = parent parental baby birth adoption newborn maternity paternity surrogacy pregnancy
# internal code names that look like ordinary words to a general-purpose model
nature.bird = osprey puffin kestrel wren lark bird
nature.wild_plant = larkspur bramble thistle wildflower weed

# --- home repair ------------------------------------------------------------
home.faucet = faucet tap spigot mixer
home.leak = leak leaking leaky drip dripping seep trickle
home.plumbing = plumbing pipe plumber valve washer trap
home.toilet = toilet flush cistern flapper
home.drain = drain plughole plunger auger clog blockage blocked
home.sink = sink basin washbasin
home.bath = bathroom shower bathtub tub
home.wall = wall drywall plasterboard plaster stud
home.floor = floor floorboard joist subfloor
home.door = door hinge latch
home.seal = caulk sealant silicone grout sealer seal
home.paint = paint primer repaint coat stain
home.electric = electric electrical outlet socket circuit breaker gfci wiring voltage trip tripping
home.heating = heating furnace boiler radiator heater pressure
home.filter = filter merv airflow
home.window = window glass glazing sash windowpane
home.draft = draught draft draughty breeze weatherstripping insulation air
home.mold = mould mold mildew
home.deck = deck decking
home.roof = roof attic gutter downpipe flashing rafter
home.alarm = alarm detector smoke_alarm smoke
home.fan = fan blade ceiling_fan
home.tool = screw screwdriver drill toggle anchor ladder

# --- money ----------------------------------------------------------------
money.money = money cash finances financial
money.save = savings saving save_up rainy_day nest_egg
money.emergency = emergency emergency_fund safety_net cushion buffer unexpected
money.income = income salary wage pay payday paycheck earnings take_home
money.invest = invest investing investment portfolio stock share fund index_fund
money.fee = fee fees charge commission expense_ratio
money.credit = credit credit_score lender borrow borrowing
money.card = credit_card card apr
money.debt = debt loan owe balance repayment
money.interest = interest rate apr compound
money.mortgage = mortgage refinance home_loan
money.budget = budget budgeting spending
money.tax = tax taxes taxable bracket vat
money.retire = retirement retire pension ira roth
money.inflation = inflation buying_power purchasing_power
money.bank = bank banking account overdraft branch
money.insurance = insurance premium deductible excess
money.identity = identity_theft identity fraud
money.car = car vehicle lease automobile windscreen windshield
money.house = house home property rent renting housing
money.kids = allowance pocket_money
money.will = will estate inheritance inherit executor guardian belongings possessions assets

# --- garden ---------------------------------------------------------------
garden.plant = plant houseplant greenery foliage shrub
garden.leaf = leaf leaves frond
garden.root = root roots rhizome
garden.rot = rot root_rot rotting mushy rotten
garden.water = watering water hose drip_line soaker
garden.soil = soil compost potting_mix earth loam
garden.ph = ph acidic alkaline lime sulphur
garden.tomato = tomato tomatoes
garden.pest = pest bug insect aphid greenfly whitefly mite grub larva
garden.slug = slug snail
garden.rose = rose roses rosebush
garden.prune = prune pruning trim cut_back
garden.lawn = lawn grass turf
garden.seed = seed seedling sow germinate sprout
garden.bulb = bulb tulip daffodil crocus hyacinth
garden.frost = frost fleece frost_protection
garden.flower = flower bloom blossom petal
garden.bee = bee pollinator pollen
garden.tree = tree orchard graft grafting scion rootstock
garden.mulch = mulch mulching bark
garden.erosion = erosion bank riverbank
garden.light = indirect_light shade sun full_sun
garden.hardy = hardy indestructible tough survive resilient

# --- health -----------------------------------------------------------------
health.sleep = sleep asleep bedtime nap insomnia sleepy wake waking awake nod_off
health.tired = tired tiredness exhausted exhaustion fatigue drained weary
health.hydrate = hydration dehydration thirst thirsty fluid
health.back = back_pain spine posture ergonomic
health.run = running runner jog jogging mileage
health.shin = shin shinbone stress_fracture
health.strength = strength weights squat deadlift muscle
health.stretch = stretch stretching flexibility warm_up
health.blood_pressure = blood_pressure hypertension pressure
health.headache = headache migraine
health.skin = skin sunburn sunscreen spf
health.flu = flu cold_virus fever cough sneeze virus
health.vitamin = vitamin mineral iron calcium nutrient ferritin supplement
health.deficiency = deficiency deficient low_iron lack short_of
health.allergy = allergy allergic hay_fever pollen antihistamine
health.eye = eye eyes vision sight eyesight blink
health.screen = screen monitor display
health.anxiety = anxiety anxious panic stress stressed nerve nervous
health.calm = calm relax relaxation soothe settle breathing breath
health.stomach = heartburn acid reflux stomach indigestion
health.burn = burn burned scald blister
health.walk = walk walking steps footsteps stroll brisk
health.tick = tick lyme
health.knee = knee joint
health.heat_illness = heat_exhaustion heatstroke sweating dizzy dizziness
health.doctor = doctor gp clinic medical medication medicine

# --- pets -------------------------------------------------------------------
pet.dog = dog puppy pooch hound
pet.cat = cat kitten litter
pet.snake = snake reptile python ball_python
pet.fish_tank = aquarium fish_tank tank
pet.separation = separation left_alone alone
pet.chew = chew chewing wreck destroy

# --- hobbies ----------------------------------------------------------------
hobby.music = guitar string fret tuning tune
hobby.bike = bike bicycle cycling cyclist chain saddle pedal
hobby.photo = photography camera aperture shutter iso exposure
hobby.chess = chess pawn knight bishop castle
hobby.laundry = laundry stain wash detergent
hobby.car_battery = battery jump_start flat_battery

gen.refuse = refuse refusal reject rejected decline declined deny denied say_no said_no complain
gen.crime = stolen steal theft thief stole robbery burglary
gen.smell = smell smelly odour odor stink stench
gen.outdoor = outside outdoor outdoors exterior
gen.damage = damage damaged chip chipped scratch dent dented
gen.clock = clock ntp clock_skew time_service timedatectl sync
gen.rest = rest resting recover recovery recuperate
food.sauce = sauce gravy salsa dressing
soft.batch = batch cron job_run nightly_run
soft.exception = throw exception raise rejection
travel.abroad = abroad overseas country another_country relocate moved_abroad
travel.country = spain france italy japan iceland indonesia mexico georgia portugal morocco norway estonia vietnam chile slovenia switzerland germany poland peru bolivia
travel.rental = rental hire car_hire rent_a
travel.toiletries = toiletry toiletries toothbrush shampoo overnight_kit
travel.europe_city = lisbon zurich berlin warsaw london paris tallinn ljubljana bergen
work.followup = follow_up action_item todo next_step
soft.conflict = conflict clash merge_conflict
money.wants = fun leisure entertainment wants hobbies eating_out

# --- more everyday vocabulary ----------------------------------------------
gen.weather = weather rain rainy storm wind windy flood typhoon forecast
gen.season = season seasonal autumn spring_time
gen.weekday = monday tuesday wednesday thursday friday saturday sunday weekday weekend midweek
gen.month = january february march april may june july august september october november december
gen.schedule = schedule calendar deadline timetable agenda
gen.person = person people someone everyone user
gen.team = team colleague teammate group crew
gen.owner = owner responsible in_charge accountable
gen.secret = secret secrets vault encryption encrypt encrypted confidential
gen.data = data dataset record records information
gen.server = server backend service host
gen.exercise = exercise workout fitness sport training_session
gen.body_part = arm leg feet foot hip head nose hand shoulder hair
gen.child = child children kid kids toddler teenager minor son daughter
gen.buy = buy purchase purchasing order shop shopping
gen.sell = sell sale selling
gen.vendor = vendor supplier provider contractor
gen.review = review audit assessment inspection
gen.entry = entry access admission enter admittance
gen.crowd = crowd crowded busy packed queue tourists
gen.walkable = walkable on_foot stroll wander
gen.steep = steep hill hilly slope climb
gen.shoe = shoe shoes boots footwear trainers
gen.slippery = slippery slip grip
travel.boat = boat ferry cruise fjord sail sailing harbour
travel.transit = bus metro tram taxi subway funicular transit transport colectivo
travel.market = market bazaar stall
travel.mountain = alps mountain volcano crater hike hiking trek trekking
food.boil = boil simmer poach blanch
food.fry = fry frying sear roast grill toast saute
food.chop = chop slice dice julienne mince grate
food.flour = flour dough batter knead
food.dessert = chocolate custard tart pancake dessert cake
food.dairy = milk yoghurt yogurt cream crema
food.nut = peanut nut almond
food.salad = salad greens lettuce
health.medicine = ibuprofen paracetamol antibiotic antiviral treatment painkiller drug
health.nausea = nausea nauseous vomit sick sickness queasy
health.symptom = symptom symptoms sign_of
health.heart = heart heartbeat pulse cardio
soft.security = security secure vulnerability
soft.user = user users account login_name
soft.dashboard = dashboard graph metrics chart
soft.log = log logging logs trace traces
soft.hash = hash checksum digest
work.vendor_review = security_review vendor_review
work.badge = badge reception keycard
work.project = project initiative objective okr
home.plumbing_leak = burst_pipe water_damage
garden.vine = vine vines trailing climber stem stems
garden.yellow = yellow yellowing pale
garden.crispy = crispy brittle dried_out
"""


def _parse_lexicon(text: str) -> tuple[dict[str, tuple[str, ...]], dict[tuple[str, str], tuple[str, ...]], dict[str, str]]:
    by_stem: dict[str, list[str]] = {}
    by_pair: dict[tuple[str, str], list[str]] = {}
    domains: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        head, sep, words = line.partition("=")
        concept = head.strip()
        if not sep or "." not in concept or not words.split():
            raise ValueError(f"lexicon line {lineno}: expected 'domain.concept = words': {raw!r}")
        if concept in domains:
            raise ValueError(f"lexicon line {lineno}: concept {concept!r} defined twice")
        domains[concept] = concept.split(".", 1)[0]
        for word in words.split():
            stems = [stem(t) for t in tokenize(word.replace("_", " "))]
            if len(stems) == 1:
                bucket = by_stem.setdefault(stems[0], [])
            elif len(stems) == 2:
                bucket = by_pair.setdefault((stems[0], stems[1]), [])
            else:
                raise ValueError(f"lexicon line {lineno}: phrases have two words at most: {word!r}")
            if concept not in bucket:
                bucket.append(concept)
    return (
        {s: tuple(c) for s, c in by_stem.items()},
        {p: tuple(c) for p, c in by_pair.items()},
        domains,
    )


CONCEPTS_BY_STEM, CONCEPTS_BY_PAIR, DOMAIN_OF = _parse_lexicon(LEXICON_TEXT)


def concepts_of(word: str) -> tuple[str, ...]:
    """The concepts a single word maps to (empty when it is not in the lexicon)."""
    toks = tokenize(word)
    return CONCEPTS_BY_STEM.get(stem(toks[0]), ()) if toks else ()


# ---------------------------------------------------------------------------
# Features and vectors
# ---------------------------------------------------------------------------


def features(text: str) -> dict[str, float]:
    """Weighted sparse features of ``text`` (before damping and hashing)."""
    out: dict[str, float] = {}

    def add(name: str, weight: float) -> None:
        out[name] = out.get(name, 0.0) + weight

    def add_concepts(concepts: tuple[str, ...]) -> None:
        share = 1.0 / len(concepts)
        for c in concepts:
            domain = DOMAIN_OF[c]
            if domain == "gen":  # general-purpose concepts weigh less and pull towards no topic
                add("c:" + c, GENERAL_WEIGHT * share)
            else:
                add("c:" + c, CONCEPT_WEIGHT * share)
                add("d:" + domain, DOMAIN_WEIGHT * share)

    tokens = tokenize(text)
    stems = [stem(t) for t in tokens]
    for i, (tok, s) in enumerate(zip(tokens, stems)):
        if i + 1 < len(stems):
            pair = CONCEPTS_BY_PAIR.get((s, stems[i + 1]))
            if pair:
                add_concepts(pair)
        if tok in STOPWORDS:
            continue
        if any(ch.isdigit() for ch in s):
            # codes and numbers: the exact token counts for something, its first three characters
            # (a crude sub-word piece) make neighbouring codes look alike, and all of them share #number
            add("w:" + s, CODE_WEIGHT)
            if len(s) >= 4:
                add("p:" + s[:3], CODE_PREFIX_WEIGHT)
            add("c:#number", NUMBER_WEIGHT)
            continue
        concepts = CONCEPTS_BY_STEM.get(s)
        if concepts:
            add_concepts(concepts)
        else:
            add("w:" + s, RAW_WEIGHT)
    if not out:
        # only stop words or punctuation: fall back to whatever is there so the vector is defined
        for t in tokens:
            add("w:" + t, RAW_WEIGHT)
        if not out:
            add("empty:" + (text or "").strip(), 1.0)
    return out


def _damp(x: float) -> float:
    return 1.0 + math.log(x) if x > 1.0 else x


@lru_cache(maxsize=262144)
def _slots(feature: str, dimensions: int) -> tuple[tuple[int, float], ...]:
    out = []
    for j in range(SLOTS_PER_FEATURE):
        h = int.from_bytes(hashlib.blake2b(f"{j}|{feature}".encode("utf-8"), digest_size=8).digest(), "little")
        out.append((h % dimensions, 1.0 if (h >> 40) & 1 else -1.0))
    return tuple(out)


def embed(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """The embedding of ``text``: ``dimensions`` floats, unit length, rounded to 6 decimals."""
    if not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_DIMENSIONS:
        raise ValueError(f"dimensions must be an integer in 1..{MAX_DIMENSIONS}")
    vec = [0.0] * dimensions
    scale = 1.0 / math.sqrt(SLOTS_PER_FEATURE)
    for name, weight in sorted(features(text).items()):
        value = _damp(weight) * scale
        for idx, sign in _slots(name, dimensions):
            vec[idx] += sign * value
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:
        # every slot cancelled out (possible with tiny dimensions): a fixed unit vector
        vec = [0.0] * dimensions
        vec[_slots("empty:" + (text or ""), dimensions)[0][0]] = 1.0
        norm = 1.0
    return [round(v / norm, 6) for v in vec]


def cosine(a: list[float], b: list[float]) -> float:
    """Cosine similarity (vectors need not be normalised)."""
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def count_tokens(text: str) -> int:
    """A rough token count for ``usage`` (words and punctuation marks)."""
    return len(re.findall(r"\w+|[^\w\s]", text or ""))
