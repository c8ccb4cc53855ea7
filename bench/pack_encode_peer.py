"""The speed limit for `longalign pack` (bench/tokenizer_bench.sh): plain sentencepiece >= 0.2 from
Python encoding exactly the texts that `pack` encodes with the llama2 template, on N threads.

  records CORPUS OUT LINES   chat records for pack: every LINES lines of CORPUS become a user turn,
                             the next LINES lines its answer (zero-width characters removed, as
                             pack's record parser removes them from answers)
  encode JSONL MODEL THREADS prints "ids specials seconds": the ids sentencepiece gives the texts
                             of the llama2 template, the BOS/EOS ids pack adds around them, and
                             the best of 3 timings of SentencePieceProcessor.encode(texts,
                             num_threads=THREADS); loading and rendering are not timed
"""
import json
import re
import sys
import time

ZERO_WIDTH = re.compile("[\u200b-\u200d\ufeff]")


def records(corpus, out, per):
    with open(corpus, "rb") as f:
        lines = f.read().decode("utf-8").split("\n")
    with open(out, "w", encoding="utf-8") as o:
        for i in range(0, len(lines) - 2 * per + 1, 2 * per):
            user = "\n".join(lines[i:i + per])
            answer = ZERO_WIDTH.sub("", "\n".join(lines[i + per:i + 2 * per]))
            if not answer:
                continue  # pack skips records with an empty answer
            msgs = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
            o.write(json.dumps({"messages": msgs}, ensure_ascii=False) + "\n")


def llama2_texts(jsonl):
    """The text segments of src/data/chat/chat_template.cpp's llama2 template, and the number of
    BOS/EOS ids pack puts between them (one BOS a record, one EOS after each answer)."""
    texts, specials = [], 0
    with open(jsonl, encoding="utf-8") as f:
        for line in f:
            msgs = json.loads(line)["messages"]
            system = msgs[0]["content"] if msgs[0]["role"] == "system" else ""
            turns = msgs[1:] if msgs[0]["role"] == "system" else msgs
            specials += 1
            for r in range(len(turns) // 2):
                user, answer = turns[2 * r]["content"], ZERO_WIDTH.sub("", turns[2 * r + 1]["content"])
                sys_block = f"<<SYS>>\n{system}\n<</SYS>>\n\n" if r == 0 and system else ""
                texts.append(("\n\n" if r else "") + "[INST]" + sys_block + user + "[/INST]")
                texts.append(answer)
                specials += 1
    return texts, specials


def encode(jsonl, model, threads):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=model)
    texts, specials = llama2_texts(jsonl)
    best = None
    for _ in range(3):
        start = time.perf_counter()
        ids = sp.encode(texts, num_threads=threads)
        secs = time.perf_counter() - start
        best = secs if best is None else min(best, secs)
    print(sum(len(x) for x in ids), specials, best)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "records":
        records(args[0], args[1], int(args[2]))
    elif cmd == "encode":
        encode(args[0], args[1], int(args[2]))
    else:
        sys.exit(f"unknown command {cmd}")
