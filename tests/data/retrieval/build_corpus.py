"""Builds documents.jsonl and queries.jsonl from the sources in ./source.

    python tests/data/retrieval/build_corpus.py          # rewrite the JSONL files
    python tests/data/retrieval/build_corpus.py --check  # fail if they are out of date

Hand-written documents live in ``source/<topic>.txt``: each starts with a line
``@@@ <id> | <title>`` followed by its Markdown body.  Four families of short,
similar-looking documents (error runbooks, recipe cards, city guides, plant
cards) are rendered from the tables below, so that the vector side has
near-duplicates to confuse and the keyword side has rare exact tokens to win on.
Queries live in ``source/queries.txt``: ``kind | query | relevant ids``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "source"
DOCS_OUT = HERE / "documents.jsonl"
QUERIES_OUT = HERE / "queries.jsonl"

ID_RE = re.compile(r"[a-z0-9][a-z0-9-]*")
KINDS = ("paraphrase", "exact", "mixed")

# ---------------------------------------------------------------------------
# Error runbooks for the fictional company (topic "company")
# (code, service, owning team, title, symptom, cause, fix steps, command)
# ---------------------------------------------------------------------------

RUNBOOKS = [
    ("ERR-4410", "Larkspur", "Billing", "Invoice not found",
     "The public API answers 404 with this code when an invoice is requested.",
     "The invoice id belongs to another account, or it was a draft that has since been deleted.",
     ["Check the account id in the request against the invoice owner.", "Search the audit log for a deleted draft with that id."],
     "larkspur-admin invoices show inv_8f2k --include-deleted"),
    ("ERR-4417", "Larkspur", "Billing", "Currency mismatch on invoice",
     "Invoice creation fails for a customer who changed country.",
     "The customer's billing currency differs from the currency of the plan's price list.",
     ["Create or pick a price in the customer's currency.", "Switch the subscription to that price at the next renewal."],
     "larkspur-admin customers currency cus_1234 --set EUR"),
    ("ERR-4471", "Larkspur", "Billing", "Invoice run lock timeout",
     "A scheduled invoice run gives up after waiting ten minutes and no invoices are produced for that batch.",
     "Two invoice runs for the same billing period overlapped and the second could not take the run lock; a run that crashed can also leave a stale lock behind.",
     ["Confirm that no invoice run is still active.", "Release the stale lock, then start the run again for the affected batch."],
     "larkspur-admin locks release invoice-run --period 2024-05"),
    ("ERR-4474", "Larkspur", "Billing", "Payment processor handshake failed",
     "Card payments fail immediately for every customer.",
     "The TLS handshake with the payment processor fails, usually because a client certificate expired or was rotated on one side only.",
     ["Check the certificate expiry date in the deployment vault.", "Renew and redeploy; page the billing on-call engineer at once, this is a SEV1."],
     "larkspur-admin processor ping --verbose"),
    ("ERR-4480", "Larkspur", "Billing", "Card declined by issuer",
     "A renewal payment fails and the customer receives a dunning email.",
     "The customer's bank refused the charge: insufficient funds, an expired card or a fraud block.",
     ["Nothing to fix on our side; the customer must update the payment method.", "Retries follow the dunning schedule for 14 days."],
     "larkspur-admin payments retries pay_77ab"),
    ("ERR-4486", "Larkspur", "Billing", "Duplicate charge guard",
     "A payment request is rejected although the customer clicked only once.",
     "The same idempotency key was sent twice with different amounts. The guard stops the customer from being billed two times for one order.",
     ["Look up the first request with that key.", "If the client really retried with a new amount, it must use a new key."],
     "larkspur-admin idempotency show key_5d1e"),
    ("ERR-4493", "Larkspur", "Billing", "Proration overflow",
     "Changing plan in the middle of a period fails for very old subscriptions.",
     "The proration calculation overflows when a subscription has more than 10,000 line items of history.",
     ["Compact the subscription history.", "Retry the plan change."],
     "larkspur-admin subscriptions compact sub_42"),
    ("ERR-4502", "Osprey", "Platform", "Canary check failed",
     "A deploy stops at the canary stage and cannot be promoted.",
     "Error rate or latency of the canary exceeded the service's budget during the 20-minute watch window.",
     ["Open the canary report to see which check failed.", "Roll back, fix, and deploy a new version."],
     "osprey canary report larkspur --last"),
    ("ERR-4505", "Osprey", "Platform", "Image not found in registry",
     "A deploy fails at the start with this code.",
     "The build for that commit never finished, or the version tag was mistyped.",
     ["Check the build pipeline for the commit.", "Deploy the exact tag shown by the build."],
     "osprey images list bramble --limit 5"),
    ("ERR-4511", "Osprey", "Platform", "Deploy freeze active",
     "Deploys are refused on Tuesday evening and Wednesday.",
     "The code freeze before the release train is in effect.",
     ["Wait for the release train, or ask the release manager for an exception.", "Exceptions are logged in #deploys."],
     "osprey freeze status"),
    ("ERR-4520", "Wrenfield", "Data platform", "Scan quota exceeded",
     "A query is cancelled after reading several terabytes.",
     "Each person has a daily scan quota; the query would have gone past it.",
     ["Add a filter on the partition column and select fewer columns.", "For a one-off large job, ask the data platform team to raise the quota for a day."],
     "wrenfield quota show --user me"),
    ("ERR-4523", "Wrenfield", "Data platform", "Partition filter required",
     "A query on the events tables is rejected before it runs.",
     "Large tables require a filter on event_date so a query cannot scan all of history by accident.",
     ["Add a WHERE clause on event_date.", "Use a date range no wider than you need."],
     "wrenfield explain query.sql"),
    ("ERR-4530", "Wrenfield", "Data platform", "Permission denied on personal data table",
     "A query fails on tables in the pii schema.",
     "The pii-reader role is missing or expired after the quarterly access review.",
     ["Request the role again in the access portal.", "Approval comes from the data platform team and the security officer."],
     "wrenfield whoami --roles"),
    ("ERR-4541", "Thistle", "Identity", "Login assertion expired",
     "Single sign-on bounces back to the login page with this code.",
     "The clock of the application server is off by more than three minutes, so the SAML assertion looks expired.",
     ["Check that the server syncs its clock with NTP.", "Restart the time service and try again."],
     "timedatectl status"),
    ("ERR-4544", "Thistle", "Identity", "Hardware key not registered",
     "Login fails after the password step for new employees.",
     "The security key was never enrolled, or it was enrolled on a different account.",
     ["Visit the helpdesk with the key and your badge.", "Use a temporary phone code in the meantime."],
     "thistle-admin keys list --user alice"),
    ("ERR-4550", "Bramble", "Search", "Shard unassigned",
     "Search results are incomplete and the cluster health is yellow or red.",
     "A node left the cluster and its shards could not be placed elsewhere, usually because the disks were almost full.",
     ["Free disk space or add a node.", "Ask the cluster to retry the allocation."],
     "bramble-admin cluster reroute --retry-failed"),
    ("ERR-4553", "Bramble", "Search", "Mapping conflict during reindex",
     "A reindex stops part way with this code.",
     "A field has a different type in the new mapping than in some documents, for example text instead of a number.",
     ["Fix the mapping or convert the field in the reindex script.", "Restart the reindex into a fresh index."],
     "bramble-admin mapping diff products_v12 products_v13"),
    ("ERR-4562", "Puffin", "Mobile", "Push notification token invalid",
     "Some users stop receiving notifications on their phones.",
     "The device token changed after the app was reinstalled or restored, and the old token is rejected by the push service.",
     ["Remove rejected tokens automatically.", "The app registers a new token on its next start."],
     "puffin-admin push prune --dry-run"),
    ("ERR-4567", "Puffin", "Mobile", "App version too old",
     "Users of an old app version see a forced upgrade screen.",
     "The minimum supported version was raised after an incompatible change to the mobile API.",
     ["Confirm the minimum version setting is intended.", "Lower it temporarily if the store review of the new version is delayed."],
     "puffin-admin config get min_app_version"),
    ("ERR-4575", "Klaxon", "Site reliability", "Page delivery failed",
     "An on-call engineer did not receive a page on their phone.",
     "The phone number was changed, or the phone blocked the paging app's notifications.",
     ["Send a test page from your Klaxon profile.", "Allow critical alerts for the app so pages break through silent mode."],
     "klaxon test-page --me"),
    ("ERR-4581", "Tally", "Finance", "Receipt scan unreadable",
     "Tally cannot read the amount or date from an uploaded receipt.",
     "The photo is blurred, too dark, or the receipt is faded thermal paper.",
     ["Retake the photo flat and in good light.", "Type the amount and date yourself and attach the image anyway."],
     "tally-cli receipts rescan rcp_901"),
    ("ERR-4588", "Vaultline", "Security", "Vault sync conflict",
     "A passphrase edited on two devices shows two versions.",
     "Both devices were offline when the entry changed, so the server could not merge the edits.",
     ["Open the entry's history and keep the correct version.", "Rotate the passphrase if you are unsure which one is current."],
     "vaultline history --entry 'Larkspur admin'"),
]


def render_runbook(row) -> dict:
    code, service, team, title, symptom, cause, steps, command = row
    body = [
        f"# {code}: {title}",
        "",
        f"**Service:** {service}. **Owner:** {team} team.",
        "",
        "## Symptom",
        "",
        symptom,
        "",
        "## Cause",
        "",
        cause,
        "",
        "## What to do",
        "",
    ]
    body += [f"{i}. {s}" for i, s in enumerate(steps, 1)]
    body += ["", "```bash", command, "```"]
    return {
        "id": "kr-runbook-" + code.lower(),
        "title": f"{code}: {title}",
        "text": "\n".join(body),
        "metadata": {"topic": "company", "kind": "runbook", "service": service.lower()},
    }


# ---------------------------------------------------------------------------
# Recipe cards (topic "cooking")
# (slug, name, cuisine, serves, minutes, ingredients, steps, note)
# ---------------------------------------------------------------------------

RECIPES = [
    ("shakshuka", "Shakshuka", "North African", 2, 30,
     ["1 onion and 1 red pepper, sliced", "2 cloves garlic", "1 tsp cumin, 1 tsp paprika", "1 tin chopped tomatoes", "4 eggs", "feta and parsley"],
     ["Soften the onion and pepper in olive oil for ten minutes.", "Add garlic and spices, then the tomatoes; simmer until thick.", "Make four hollows, crack in the eggs, cover and cook until the whites set."],
     "Serve straight from the pan with bread for dipping."),
    ("kedgeree", "Kedgeree", "Anglo-Indian", 4, 40,
     ["400 g smoked haddock", "300 g basmati rice", "1 onion", "2 tsp mild curry powder", "4 eggs, soft boiled", "butter, lemon, coriander"],
     ["Poach the fish in milk for eight minutes, then flake it.", "Fry the onion in butter with the curry powder, add the rice and cook it in the poaching milk topped up with water.", "Fold in the fish and quartered eggs."],
     "A traditional British breakfast dish, also good for supper."),
    ("tteokbokki", "Tteokbokki", "Korean", 2, 25,
     ["400 g cylinder rice cakes", "2 tbsp gochujang", "1 tbsp gochugaru", "1 tbsp sugar", "500 ml anchovy stock", "fish cakes and spring onions"],
     ["Soak hard rice cakes in warm water for ten minutes.", "Bring the stock to a boil with the chilli paste, flakes and sugar.", "Add rice cakes and fish cakes; simmer until the sauce is glossy and thick."],
     "Chewy and spicy street food; add a boiled egg or cheese to make it milder."),
    ("pissaladiere", "Pissaladière", "French", 6, 90,
     ["1 sheet of bread dough", "1 kg onions, thinly sliced", "3 sprigs thyme", "12 anchovy fillets", "black olives"],
     ["Cook the onions very slowly with thyme and olive oil for 45 minutes until jammy.", "Spread them over the rolled dough.", "Lay anchovies in a lattice, dot with olives, and bake at 220 °C for 20 minutes."],
     "The onion tart of Nice, eaten warm or at room temperature."),
    ("feijoada", "Feijoada", "Brazilian", 8, 240,
     ["500 g black beans, soaked overnight", "smoked sausage, pork ribs and bacon", "2 onions, 4 cloves garlic", "bay leaves", "orange slices to serve"],
     ["Brown the meats in a large pot.", "Add onions, garlic, beans, bay and water to cover; simmer for three hours.", "Mash a ladle of beans to thicken the stew."],
     "Serve with rice, sautéed greens and toasted cassava flour."),
    ("khachapuri", "Adjarian khachapuri", "Georgian", 2, 120,
     ["bread dough from 300 g flour", "200 g sulguni or mozzarella", "100 g feta", "2 egg yolks", "butter"],
     ["Shape the dough into two boats with raised edges.", "Fill with the grated cheeses and bake at 240 °C for 12 minutes.", "Drop an egg yolk and a knob of butter into each and return to the oven for two minutes."],
     "Stir the yolk and butter into the molten cheese and tear off the crust to dip."),
    ("mujaddara", "Mujaddara", "Levantine", 4, 50,
     ["200 g brown or green lentils", "200 g long-grain rice", "4 large onions", "1 tsp cumin", "olive oil"],
     ["Fry half the onions until deeply brown and crisp; keep them for the top.", "Cook the lentils until almost tender, then add the rice, cumin and the rest of the onions with water to cover.", "Simmer covered until the rice is done."],
     "Humble and filling; serve with yoghurt and a chopped salad."),
    ("ribollita", "Ribollita", "Italian", 6, 120,
     ["cannellini beans", "cavolo nero", "carrots, celery, onion", "tin of tomatoes", "stale country bread", "parmesan rind"],
     ["Soften the vegetables slowly in olive oil.", "Add tomatoes, beans, the kale and water; simmer for an hour with the rind.", "Layer with torn bread and leave overnight, then reheat."],
     "The name means reboiled: it is better on the second day."),
    ("okonomiyaki", "Okonomiyaki", "Japanese", 2, 30,
     ["150 g flour", "150 ml dashi", "2 eggs", "quarter of a cabbage, shredded", "pork belly slices", "okonomi sauce, mayonnaise, bonito flakes"],
     ["Mix flour, dashi and eggs, then fold in the cabbage.", "Pour onto a hot griddle, lay pork on top, and cook five minutes a side.", "Brush with sauce, zigzag with mayonnaise, scatter bonito."],
     "A savoury pancake from Osaka; the name means grilled as you like it."),
    ("chilaquiles", "Chilaquiles rojos", "Mexican", 2, 25,
     ["tortilla chips or fried stale tortillas", "4 tomatoes and 2 guajillo chillies", "1 garlic clove, half an onion", "crema, queso fresco, fried eggs"],
     ["Blend the tomatoes, soaked chillies, garlic and onion, then fry the sauce until it darkens.", "Toss the chips in the sauce for one minute only.", "Top with crema, cheese, onion and a fried egg."],
     "Eat immediately, while the chips are still a little crunchy."),
    ("bobotie", "Bobotie", "South African", 6, 75,
     ["750 g minced beef", "1 slice of bread soaked in milk", "2 onions", "curry powder, turmeric, apricot jam", "raisins", "2 eggs beaten with milk"],
     ["Fry the onions and spices, add the mince and brown it.", "Stir in the soaked bread, jam and raisins and press into a dish.", "Pour over the egg custard, add bay leaves, and bake at 180 °C for 35 minutes."],
     "Served with yellow rice and chutney."),
    ("pierogi", "Pierogi ruskie", "Polish", 6, 120,
     ["dough of 500 g flour, warm water and oil", "600 g floury potatoes", "250 g farmer's cheese", "2 onions, fried", "salt and pepper"],
     ["Mash the potatoes with the cheese and half the fried onion.", "Roll the dough thinly, cut circles, fill and pinch shut.", "Boil until they float, then two minutes more; serve with the remaining onions."],
     "Freeze them raw on a tray, then bag them."),
    ("gado-gado", "Gado-gado", "Indonesian", 4, 40,
     ["blanched green beans, cabbage and bean sprouts", "boiled potatoes and eggs", "fried tofu and tempeh", "peanut sauce with lime and chilli", "prawn crackers"],
     ["Blanch the vegetables briefly and refresh in cold water.", "Arrange everything on a platter.", "Pour over the warm peanut sauce and scatter with crackers and fried shallots."],
     "A salad from Jakarta that works as a full meal."),
    ("cullen-skink", "Cullen skink", "Scottish", 4, 45,
     ["500 g smoked haddock", "1 leek or onion", "2 floury potatoes, diced", "600 ml whole milk", "chives"],
     ["Poach the fish in the milk, then lift it out and flake it.", "Cook the leek in butter, add the potatoes and the milk, and simmer until soft.", "Mash a few potatoes to thicken, return the fish and warm through."],
     "A thick smoked fish soup from the north-east coast of Scotland."),
]


def render_recipe(row) -> dict:
    slug, name, cuisine, serves, minutes, ingredients, steps, note = row
    body = [
        f"# {name}",
        "",
        f"*{cuisine}. Serves {serves}. About {minutes} minutes.*",
        "",
        "## Ingredients",
        "",
    ]
    body += [f"- {i}" for i in ingredients]
    body += ["", "## Method", ""]
    body += [f"{i}. {s}" for i, s in enumerate(steps, 1)]
    body += ["", note]
    return {
        "id": "recipe-" + slug,
        "title": f"Recipe: {name}",
        "text": "\n".join(body),
        "metadata": {"topic": "cooking", "kind": "recipe", "cuisine": cuisine.lower()},
    }


# ---------------------------------------------------------------------------
# City guides (topic "travel")
# (slug, city, country, best time, getting around, areas, food, tip)
# ---------------------------------------------------------------------------

CITIES = [
    ("lisbon", "Lisbon", "Portugal", "April to June and September to October; August is hot and crowded.",
     "Walk and use the metro; the old trams are charming but slow and packed. A rechargeable transit card covers buses, trams and ferries.",
     "Alfama for winding alleys and fado, Príncipe Real for gardens and small shops, Belém for the monastery and the river.",
     "Grilled sardines in June, custard tarts, and bifanas, pork sandwiches, at a standing counter.",
     "The hills are steep and the pavements slippery when wet; wear shoes with grip."),
    ("kyoto", "Kyoto", "Japan", "Late March to early April for cherry blossom, November for autumn leaves; both are busy.",
     "Buses reach most temples; a bicycle is faster in the flat centre. The subway has only two lines.",
     "Higashiyama for old wooden streets, Arashiyama for the bamboo grove, Gion in the evening.",
     "Kaiseki tasting menus, tofu dishes around the temples, and matcha sweets in Uji.",
     "Visit famous shrines right after they open, before the tour buses arrive."),
    ("oaxaca", "Oaxaca", "Mexico", "October to April, the dry season; Day of the Dead in early November is unforgettable but books out early.",
     "The historic centre is compact and walkable; colectivo taxis run to the villages.",
     "The centre around the Zócalo, Jalatlaco for colourful murals, and the craft villages of the valley.",
     "Seven kinds of mole, tlayudas, chocolate drinks, and mezcal from small producers.",
     "Day trips to Monte Albán and Hierve el Agua are worth an early start."),
    ("tbilisi", "Tbilisi", "Georgia", "May, June, September and October.",
     "The metro is cheap and fast; ride-hailing apps are reliable and avoid haggling with taxis.",
     "The old town with its carved balconies, the sulphur bath district, and Sololaki for cafés.",
     "Khinkali dumplings, cheese bread, and natural wines made in clay vessels.",
     "Guests are treated generously; learn to say thank you, madloba."),
    ("ljubljana", "Ljubljana", "Slovenia", "May to September; December has a lovely market.",
     "The centre is car-free and easy on foot; bikes can be rented from stations around town.",
     "The riverside old town, the castle hill, and the alternative Metelkova quarter.",
     "Open Kitchen, a food market on Friday in warmer months, and štruklji dumplings.",
     "Lake Bled and the Julian Alps are a day trip by bus."),
    ("hoi-an", "Hoi An", "Vietnam", "February to April; autumn brings typhoons and floods.",
     "Walk the old town, cycle to the beaches and rice fields.",
     "The ancient town with its lantern-lit streets, An Bang beach, and Tra Que vegetable village.",
     "Cao lau noodles, banh mi, and white rose dumplings.",
     "Tailors can make clothes in a day, but allow time for two fittings."),
    ("valparaiso", "Valparaíso", "Chile", "November to March, the southern summer.",
     "Old funiculars climb the hills; walking downhill is easier than up.",
     "Cerro Alegre and Cerro Concepción for street art and views over the bay.",
     "Seafood empanadas, chorrillana, and fresh fish by the port.",
     "Take a free walking tour on the first day to get your bearings in the maze of streets."),
    ("tallinn", "Tallinn", "Estonia", "June to August, with very long days; December for the Christmas market.",
     "Public transport is free for residents and cheap for visitors; the old town is walkable.",
     "The medieval old town, the creative Telliskivi quarter, and Kalamaja's wooden houses.",
     "Rye bread, smoked fish, and modern Nordic tasting menus.",
     "A ferry takes two hours to Helsinki for a day trip."),
    ("essaouira", "Essaouira", "Morocco", "All year; it is windy, which keeps summers cooler than inland.",
     "The walled medina is small and walkable; taxis wait outside the gates.",
     "The medina, the fishing port with its blue boats, and the long beach for kite surfing.",
     "Grilled fish chosen at the port stalls, tagines, and argan oil from nearby cooperatives.",
     "Much calmer than Marrakech, three hours away by bus."),
    ("bergen", "Bergen", "Norway", "May to September; expect rain in any month.",
     "Walk the centre; the funicular climbs Mount Fløyen in minutes.",
     "Bryggen's wooden wharf, the fish market, and the hills above town for hiking.",
     "Fish soup, brown cheese, and cinnamon buns.",
     "It is the gateway to the fjords; day cruises leave from the harbour."),
]


def render_city(row) -> dict:
    slug, city, country, best, transport, areas, food, tip = row
    body = [
        f"# {city}, {country}",
        "",
        f"**When to go:** {best}",
        "",
        f"**Getting around:** {transport}",
        "",
        f"**Where to wander:** {areas}",
        "",
        f"**What to eat:** {food}",
        "",
        f"**Tip:** {tip}",
    ]
    return {
        "id": "city-" + slug,
        "title": f"City guide: {city}",
        "text": "\n".join(body),
        "metadata": {"topic": "travel", "kind": "city-guide", "country": country.lower()},
    }


# ---------------------------------------------------------------------------
# Houseplant cards (topic "gardening")
# (slug, name, botanical name, light, water, soil, trouble, tip)
# ---------------------------------------------------------------------------

PLANTS = [
    ("monstera", "Monstera", "Monstera deliciosa",
     "Bright, indirect light; direct sun scorches the leaves.",
     "When the top 5 cm of soil is dry, roughly weekly in summer.",
     "Chunky aroid mix with bark and perlite.",
     "New leaves without splits mean not enough light.",
     "Give it a moss pole to climb and the leaves grow larger."),
    ("fiddle-leaf-fig", "Fiddle-leaf fig", "Ficus lyrata",
     "As much bright light as possible, including some morning sun.",
     "Thoroughly, then let the top third dry out.",
     "Free-draining mix with added bark.",
     "It drops leaves when moved or placed in a draught.",
     "Pick a spot and leave it there."),
    ("snake-plant", "Snake plant", "Dracaena trifasciata",
     "Anything from deep shade to full sun.",
     "Every three to four weeks; less in winter.",
     "Cactus and succulent mix.",
     "Soft, mushy leaves at the base mean too much water.",
     "Nearly indestructible, ideal for beginners."),
    ("pothos", "Pothos", "Epipremnum aureum",
     "Low to bright indirect light; variegation fades in shade.",
     "When the top half of the soil is dry.",
     "Any general potting mix.",
     "Long bare stems with few leaves need more light.",
     "Cuttings root easily in a glass of water."),
    ("calathea", "Calathea", "Goeppertia species",
     "Medium, indirect light.",
     "Keep the soil lightly moist with rain or filtered water.",
     "Peat-free mix that holds some moisture.",
     "Crispy brown leaf edges come from dry air or hard tap water.",
     "The leaves fold up at night, which is normal."),
    ("zz-plant", "ZZ plant", "Zamioculcas zamiifolia",
     "Low to bright indirect light.",
     "Every two to three weeks; it stores water in its rhizomes.",
     "Free-draining mix.",
     "Yellow stems usually mean the rhizomes are rotting from too much water.",
     "Happy in an office with only artificial light."),
    ("peace-lily", "Peace lily", "Spathiphyllum wallisii",
     "Medium to low light.",
     "It droops dramatically when thirsty and recovers within hours of watering.",
     "Moisture-retaining general mix.",
     "No flowers means too little light.",
     "Wipe the leaves so they can breathe."),
    ("string-of-pearls", "String of pearls", "Curio rowleyanus",
     "Bright light with a few hours of direct sun.",
     "Only when the pearls start to look slightly wrinkled.",
     "Gritty succulent mix in a shallow pot.",
     "Shrivelled strands near the soil mean rot from overwatering.",
     "Lay cut strands on soil to root new plants."),
    ("bird-of-paradise", "Bird of paradise", "Strelitzia reginae",
     "Full sun to very bright light.",
     "Generously in summer, sparingly in winter.",
     "Rich, well-drained potting mix.",
     "Split leaves are natural, caused by wind in the wild.",
     "Plants usually need to be four or five years old before flowering."),
    ("staghorn-fern", "Staghorn fern", "Platycerium bifurcatum",
     "Bright, indirect light.",
     "Soak the root ball weekly in summer, less often in winter.",
     "Mounted on a board with sphagnum moss rather than potted.",
     "Do not remove the brown shield fronds at the base; they are part of the plant.",
     "Mist in dry rooms."),
]


def render_plant(row) -> dict:
    slug, name, botanical, light, water, soil, trouble, tip = row
    body = [
        f"# {name} (*{botanical}*)",
        "",
        "| | |",
        "|---|---|",
        f"| Light | {light} |",
        f"| Watering | {water} |",
        f"| Soil | {soil} |",
        "",
        f"**Common trouble:** {trouble}",
        "",
        f"**Tip:** {tip}",
    ]
    return {
        "id": "plant-" + slug,
        "title": f"Houseplant care: {name}",
        "text": "\n".join(body),
        "metadata": {"topic": "gardening", "kind": "plant-card"},
    }


# ---------------------------------------------------------------------------
# Assembly
# ---------------------------------------------------------------------------


def read_handwritten() -> list[dict]:
    docs = []
    for path in sorted(SOURCE.glob("*.txt")):
        if path.name == "queries.txt":
            continue
        topic = path.stem
        current = None
        lines: list[str] = []

        def flush():
            if current is not None:
                doc_id, title = current
                docs.append({"id": doc_id, "title": title, "text": "\n".join(lines).strip(), "metadata": {"topic": topic}})

        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("@@@ "):
                flush()
                doc_id, _, title = line[4:].partition("|")
                current = (doc_id.strip(), title.strip())
                lines = []
            elif current is not None:
                lines.append(line)
        flush()
    return docs


def build_documents() -> list[dict]:
    docs = read_handwritten()
    docs += [render_runbook(r) for r in RUNBOOKS]
    docs += [render_recipe(r) for r in RECIPES]
    docs += [render_city(r) for r in CITIES]
    docs += [render_plant(r) for r in PLANTS]
    docs.sort(key=lambda d: d["id"])
    seen = set()
    for d in docs:
        if not ID_RE.fullmatch(d["id"]):
            raise SystemExit(f"bad document id: {d['id']!r}")
        if d["id"] in seen:
            raise SystemExit(f"duplicate document id: {d['id']}")
        seen.add(d["id"])
        words = len(d["text"].split())
        if not 40 <= words <= 400:
            raise SystemExit(f"{d['id']}: {words} words, expected 40..400")
    return docs


def build_queries(doc_ids: set[str]) -> list[dict]:
    queries = []
    for lineno, raw in enumerate((SOURCE / "queries.txt").read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3:
            raise SystemExit(f"queries.txt:{lineno}: expected 'kind | query | ids'")
        kind, query, ids = parts
        relevant = ids.split()
        if kind not in KINDS:
            raise SystemExit(f"queries.txt:{lineno}: unknown kind {kind!r}")
        missing = [i for i in relevant if i not in doc_ids]
        if not relevant or missing:
            raise SystemExit(f"queries.txt:{lineno}: unknown or missing relevant ids {missing}")
        queries.append({"query": query, "relevant": relevant, "kind": kind})
    return queries


def to_jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only verify that the JSONL files are up to date")
    args = parser.parse_args(argv)
    docs = build_documents()
    queries = build_queries({d["id"] for d in docs})
    outputs = {DOCS_OUT: to_jsonl(docs), QUERIES_OUT: to_jsonl(queries)}
    if args.check:
        stale = [p.name for p, text in outputs.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        if stale:
            print("out of date: " + ", ".join(stale), file=sys.stderr)
            return 1
        print(f"up to date: {len(docs)} documents, {len(queries)} queries")
        return 0
    for path, text in outputs.items():
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(docs)} documents and {len(queries)} queries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
