#!/usr/bin/env python3
"""Writes examples/data/general-text.jsonl: general prose unrelated to the chat sample, for the
forgetting check (train --forgetting-data). The sentences below were written for this project;
each line of the file joins two or three of them on one topic, in a fixed (seeded) order.

    python3 scripts/make-general-text.py
"""
import json
import random
from pathlib import Path

TOPICS = {
    "weather": [
        "The morning fog lifted slowly from the valley and left the grass wet and shining.",
        "By noon the wind had turned to the west, bringing low clouds that smelled of rain.",
        "A summer storm can pass in twenty minutes and still flood the narrow streets of a town.",
        "Farmers watch the sky in late spring, because a single frost can ruin a year of fruit.",
        "Snow fell all night, and in the morning the roads were quiet except for the plows.",
        "The thermometer on the porch showed the first freezing night of the autumn.",
        "After a week of heat, the evening rain cooled the stone walls of the old houses.",
        "Sailors learned long ago to read the shape of clouds before they left the harbor.",
        "Dry air in winter makes the stars look sharper than they do on humid summer nights.",
        "The forecast promised sunshine, but everyone carried an umbrella just in case.",
    ],
    "cooking": [
        "Bread needs time more than skill: flour, water, salt and a patient afternoon.",
        "A good soup starts with onions cooked slowly until they turn soft and sweet.",
        "She cut the vegetables into even pieces so that they would cook at the same pace.",
        "The smell of toasted cumin filled the kitchen before the rice was even washed.",
        "Fresh herbs lose their color quickly, so they are added at the very end.",
        "A cast iron pan holds heat well and browns potatoes better than a thin one.",
        "He tasted the sauce, added a pinch of salt, and tasted it again.",
        "Lemon juice brightens a heavy dish the way an open window brightens a room.",
        "Dough that rests overnight in a cold room develops a deeper flavor.",
        "The recipe called for two eggs, but the cake came out fine with one.",
    ],
    "city": [
        "The tram rattled across the bridge while the river below caught the evening light.",
        "Early in the morning the market fills with crates of apples, fish and cut flowers.",
        "Old streets in the center were laid out long before anyone imagined a car.",
        "A small park between tall buildings can feel like a room without a ceiling.",
        "The library stays open late, and its reading room is quiet even when the city is not.",
        "Cyclists wait at the red light in a neat line, one foot on the curb.",
        "The bakery on the corner sells out of rolls before eight o'clock most days.",
        "Street names often remember trades that disappeared a century ago.",
        "At night the harbor cranes stand still, lit from below like tall animals.",
        "The new station was built where a cattle market used to be.",
    ],
    "nature": [
        "Oak trees grow slowly, and a forest of them is older than most of the houses nearby.",
        "Bees visit thousands of flowers to gather enough nectar for a spoonful of honey.",
        "In the marsh, herons stand without moving until a fish comes close enough.",
        "The river changes its course a little every flood, carving new banks of sand.",
        "Moss grows on the shaded side of the stones, where the ground stays damp.",
        "Migrating geese fly in a long uneven line and call to each other as they go.",
        "A fallen tree becomes a home for beetles, fungi and eventually new seedlings.",
        "The tide pools hold small crabs that hide under stones when a shadow passes.",
        "Wild strawberries are tiny, but their taste is stronger than that of garden ones.",
        "On the high meadow the grass is short and full of blue and yellow flowers.",
    ],
    "work": [
        "The meeting ran long because nobody had written down what was decided last time.",
        "A clear list of tasks makes a busy week feel smaller than it is.",
        "He kept a notebook for every project and could find any decision in a minute.",
        "The workshop smelled of oil and sawdust, and every tool had its place on the wall.",
        "Good instructions say what to do first, not only what the result should look like.",
        "She fixed the leaking tap herself after reading the manual twice.",
        "New colleagues learn faster when someone answers their questions without impatience.",
        "The printer jammed again, so the report was handed out on a single shared screen.",
        "Measuring twice before cutting saves wood, time and a fair amount of temper.",
        "The night shift left a short note explaining why the machine had been stopped.",
    ],
    "travel": [
        "The train left on time and crossed three borders before lunch.",
        "A paper map still helps when the phone finds no signal in the mountains.",
        "The ferry was slow, but the view of the islands made nobody want it faster.",
        "Packing light means choosing clothes that can be worn together in many ways.",
        "In the small hotel the owner wrote directions to the beach on a napkin.",
        "They missed the last bus and walked back along the coast under a full moon.",
        "Every airport has the same chairs, but the coffee tastes different in each.",
        "The hiking trail was marked with red and white stripes painted on rocks.",
        "A language phrase book is most useful for ordering food and asking the way.",
        "At the border the guard looked at the passport for a long time and then smiled.",
    ],
    "science": [
        "Water expands when it freezes, which is why pipes can burst in a cold winter.",
        "Light from the sun takes about eight minutes to reach the earth.",
        "A lever lets a small force move a heavy load if the arm is long enough.",
        "Plants turn sunlight, water and carbon dioxide into sugar and oxygen.",
        "Sound travels faster in water than in air, and faster still in steel.",
        "The moon has no air, so footprints left there can last for a very long time.",
        "Salt lowers the freezing point of water, which is why it is spread on icy roads.",
        "A magnet has two poles, and cutting it in half gives two smaller magnets.",
        "Copper conducts electricity well, which is why it is used in most wires.",
        "The boiling point of water drops as one climbs higher above the sea.",
    ],
    "history": [
        "Many old towns grew where a river could be crossed on foot in the dry season.",
        "Before clocks were common, church bells told people when to start and stop work.",
        "Roads built for marching armies later carried merchants, pilgrims and letters.",
        "Paper made books cheaper, and cheaper books taught more people to read.",
        "The first lighthouses were simply fires kept burning on a hill above the sea.",
        "Canals once carried coal and grain through the country on slow, heavy barges.",
        "Windmills ground flour for villages long before engines came to the farms.",
        "Old maps often left blank spaces where the mapmaker had no reliable reports.",
        "Markets were held on the same weekday for centuries, and some still are.",
        "Stone bridges built by hand have outlasted many newer ones made of steel.",
    ],
    "home": [
        "The cat slept on the warm windowsill and ignored the birds outside.",
        "On rainy Sundays the family played cards at the kitchen table until dark.",
        "The old clock in the hall gained five minutes every week.",
        "Fresh paint changed the small room more than new furniture would have.",
        "He repaired the chair with glue and clamps, and it held for years.",
        "The garden gave more tomatoes than anyone could eat, so the neighbors got some.",
        "A shelf of well-read books says more about a house than its front door.",
        "The children built a fort of blankets and refused to come out for dinner.",
        "She kept the keys in a bowl by the door so that they were never lost.",
        "The radiator ticked and hissed as the heating came on in the evening.",
    ],
    "music": [
        "The choir practiced the same four bars until the harmony finally settled.",
        "An old piano needs tuning after it is moved from one room to another.",
        "The street musician played the violin while people dropped coins into the case.",
        "Learning an instrument is mostly a matter of playing a little every day.",
        "The drummer kept the band together when the singer lost her place.",
        "A song heard in childhood can bring back a whole summer in a few notes.",
        "The concert hall was built of wood so that the sound would stay warm.",
        "He wrote the melody on a train and the words many years later.",
        "Folk tunes change a little every time they pass from one player to another.",
        "The orchestra tuned to a single note before the conductor raised his hands.",
    ],
}


def main():
    rng = random.Random(16)
    lines = []
    for topic, sentences in TOPICS.items():
        for i in range(len(sentences)):
            for j in range(len(sentences)):
                if i != j:
                    lines.append((topic, [sentences[i], sentences[j]]))
    rng.shuffle(lines)
    out, seen = [], set()
    for topic, pair in lines:
        if len(out) == 300:
            break
        key = tuple(sorted(pair))
        if key in seen:
            continue
        seen.add(key)
        if rng.random() < 0.3:
            extra = rng.choice([s for s in TOPICS[topic] if s not in pair])
            pair = pair + [extra]
        out.append(" ".join(pair))
    path = Path(__file__).resolve().parent.parent / "examples" / "data" / "general-text.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for text in out:
            f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    print(f"wrote {len(out)} lines to {path}")


if __name__ == "__main__":
    main()
