#!/usr/bin/python3
"""Writes tests/data/tokenizer_flags/tokenizer.json and tests/data/tokenizer_flags_text.jsonl.

The tokenizer is the fixture stories260k tokenizer plus added tokens that use the
flags the fixture tokenizers leave off (lstrip, rstrip, single_word, normalized
with a Prepend normalizer, a content already in the vocabulary) and a Metaspace
decoder; the text mixes those tokens with whitespace. gen_npm_goldens.js records
what Hugging Face tokenizers makes of it. Run from the repository root:
    /usr/bin/python3 tests/tokenizer/gen_flags_tokenizer.py $FIXTURES
"""
import json
import os
import random
import sys

fixtures = sys.argv[1]
j = json.load(open(os.path.join(fixtures, "tokenizers/stories260k/tokenizer.json"), encoding="utf-8"))
vocab = j["model"]["vocab"]
next_id = len(vocab)
extra = [  # content, lstrip, rstrip, single_word, normalized, special
    ("<mask>", True, False, False, False, True),
    ("[R]", False, True, False, False, True),
    ("word", False, False, True, True, False),
    ("ab", True, True, False, False, False),
    ("er", False, False, False, False, False),  # already in the vocab: keeps its id
]
for content, lstrip, rstrip, single, normalized, special in extra:
    if content in vocab:
        tid = vocab[content]
    else:
        tid, next_id = next_id, next_id + 1
    j["added_tokens"].append({"id": tid, "content": content, "single_word": single, "lstrip": lstrip,
                              "rstrip": rstrip, "normalized": normalized, "special": special})
j["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
os.makedirs("tests/data/tokenizer_flags", exist_ok=True)
with open("tests/data/tokenizer_flags/tokenizer.json", "w", encoding="utf-8") as f:
    json.dump(j, f, ensure_ascii=False, indent=1)

random.seed(5)
pool = ["<mask>", "[R]", "word", "ab", "er", " ", "  ", "\t", "\n", "x", "words", "sword", "_", "a", "b", "e",
        "r", "\u00e9", "\u3000", "9", "!", "<s>", "\u2581"]
with open("tests/data/tokenizer_flags_text.jsonl", "w", encoding="utf-8") as f:
    for i in range(600):
        f.write(json.dumps({"text": "".join(random.choice(pool) for _ in range(random.randint(0, 12)))}) + "\n")
