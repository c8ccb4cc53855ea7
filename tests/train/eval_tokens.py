# Pre-tokenized records for the eval-loss parity checks against HF (train_cli_test.sh,
# hf_family_cli_test.sh): five sequences of varied length (2 to 55 tokens, ids below 400), BOS
# first, labels on all but the first third.
import json
import random
import sys

random.seed(0)
with open(sys.argv[1], "w") as f:
    for n in [7, 30, 2, 55, 16]:
        ids = [1] + [random.randrange(3, 400) for _ in range(n - 1)]
        cut = max(1, n // 3)
        f.write(json.dumps({"input_ids": ids, "labels": [-100] * cut + ids[cut:]}) + "\n")
