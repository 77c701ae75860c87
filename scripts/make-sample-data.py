#!/usr/bin/env python3
"""Writes examples/data/sample-chat.jsonl: a few hundred short chat conversations with simple,
learnable answers (arithmetic, capitals, opposites, plurals, counting), deterministic (seed 7).
The repository ships the output; this script is the record of how it was made."""
import json
import random

rng = random.Random(7)
capitals = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid",
    "Portugal": "Lisbon", "Japan": "Tokyo", "China": "Beijing", "India": "New Delhi",
    "Canada": "Ottawa", "Brazil": "Brasilia", "Egypt": "Cairo", "Kenya": "Nairobi",
    "Norway": "Oslo", "Sweden": "Stockholm", "Finland": "Helsinki", "Poland": "Warsaw",
    "Greece": "Athens", "Turkey": "Ankara", "Peru": "Lima", "Chile": "Santiago",
    "Mexico": "Mexico City", "Ireland": "Dublin", "Austria": "Vienna", "Hungary": "Budapest",
    "Denmark": "Copenhagen", "Belgium": "Brussels", "Netherlands": "Amsterdam",
    "Argentina": "Buenos Aires", "Australia": "Canberra", "Russia": "Moscow",
}
opposites = {
    "hot": "cold", "big": "small", "fast": "slow", "up": "down", "light": "dark",
    "happy": "sad", "open": "closed", "early": "late", "full": "empty", "high": "low",
    "old": "new", "strong": "weak", "wet": "dry", "hard": "soft", "loud": "quiet",
}
plurals = {
    "cat": "cats", "dog": "dogs", "box": "boxes", "child": "children", "mouse": "mice",
    "city": "cities", "leaf": "leaves", "man": "men", "tooth": "teeth", "bus": "buses",
    "knife": "knives", "person": "people", "foot": "feet", "woman": "women", "baby": "babies",
}
numbers = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]

def chat(user, assistant):
    return {"messages": [{"role": "user", "content": user},
                         {"role": "assistant", "content": assistant}]}

rows = []
for _ in range(200):
    a, b = rng.randint(1, 50), rng.randint(1, 50)
    rows.append(chat(f"What is {a} + {b}?", f"{a} + {b} = {a + b}."))
for country, city in capitals.items():
    rows.append(chat(f"What is the capital of {country}?", f"The capital of {country} is {city}."))
    rows.append(chat(f"Name the capital city of {country}.", f"{city} is the capital of {country}."))
for w, o in opposites.items():
    rows.append(chat(f"What is the opposite of \"{w}\"?", f"The opposite of \"{w}\" is \"{o}\"."))
    rows.append(chat(f"What is the opposite of \"{o}\"?", f"The opposite of \"{o}\" is \"{w}\"."))
for w, p in plurals.items():
    rows.append(chat(f"What is the plural of \"{w}\"?", f"The plural of \"{w}\" is \"{p}\"."))
for n in range(1, 11):
    rows.append(chat(f"Write the number {n} in words.", f"{n} is written \"{numbers[n]}\"."))
    rows.append(chat(f"Count from one to {numbers[n]}.", ", ".join(numbers[1:n + 1]) + "."))
rng.shuffle(rows)
with open("examples/data/sample-chat.jsonl", "w") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
print(len(rows), "conversations")
