"""Hugging Face `tokenizers` side of the tokenizer.json parity test and benchmark (offline):

  corpus OUT LINES SEED      a varied UTF-8 corpus, one line each (no \\n inside a line)
  train DIR CORPUS VOCAB     trains gpt2, gpt2_prefix, llama3 and qwen2 style byte-level BPE
                             tokenizers on CORPUS, writing DIR/<name>.json
  encode TOKENIZER CORPUS    prints HF's ids of each line, one JSON list a line, like
                             `longalign tokenizer encode`
  bench TOKENIZER CORPUS     ids and seconds (best of 3) of encode_batch over the corpus,
                             single-threaded when TOKENIZERS_PARALLELISM=false
"""
import json
import random
import sys
import time

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

# The pre-tokenizer patterns of the real files (Llama-3: tokenizer.json of Meta-Llama-3-8B;
# Qwen2: PRETOKENIZE_REGEX of transformers' Qwen2 tokenizer).
LLAMA3 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

WORDS = """the of and to in is was that for it with as his on be at by had are but from or have an they which
one you were her all she there would their we him been has when who will more no if out so said what up its
about into than them can only other new some could time these two may then do first any my now such like our
over man me even most made after also did many before must through back years where much your way well down
should because each just those people Mr how too little state good very make world still own see men work long
get here between both life being under never day same another know while last might us great old year off come
since against go came right used take three""".split()
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D",
                "'Re", "'Ll", "'rE", "’s", "'ſ", "'K", "'x", "''", "'"]
ACCENTED = ["café", "naïve", "résumé", "Zürich", "São Paulo", "Ærøskøbing", "façade", "jalapeño", "Œuvre", "Straße",
            "ﬁnance", "Ångström", "Ελληνικά", "Москва", "Київ", "Tiếng Việt", "Đà Nẵng", "Ṁ", "ǅemal", "İstanbul",
            "e\u0301", "A\u030a", "o\u0308\u0304", "\u1100\u1161\u11a8", "n\u0303o", "Å", "Ω", "ﬀ"]
SCRIPTS = ["中文文本，标点符号。", "日本語のテキストです。", "カタカナ", "한국어 문장입니다", "العربية جميلة", "עברית",
           "हिन्दी भाषा", "ภาษาไทย", "ქართული", "Հայերեն", "ᚠᛇᚻ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𠜎𠜱𠝹", "ꦗꦮ", "ᠮᠣᠩᠭᠣᠯ"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "❤️", "🤖", "🎉🎉🎉", "©", "™", "☃", "🧑🏿‍🚀", "✈︎", "🔥💯"]
NUMBERS = ["1234567890", "3.14159", "1,000,000", "007", "2026-11-26", "٣٤٥", "①②③", "Ⅻ", "½", "１２３", "१२३",
           "0x1F", "1e-9", "42", "9" * 23, "12:30", "$5.99", "50%"]
PUNCT = ["!!!", "...", "--", "«»", "“quoted”", "(parens)", "<html>&amp;</html>", "def f(x): return x**2  # sq",
         "https://example.com/a?b=c&d=e", "user@mail.org", "C++", "a_b_c", "\\n", "{'k': [1, 2]}", "¿Qué?", "¡Hola!",
         "—", "…", "·", "§3", "@#$%^&*", "|>", "=>", "''", '"', "`code`", "~~~", "////"]
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
           "<|im_start|>user", "[MASK]", "<|endoftext", "<|", "|>"]
SPACES = [" ", "  ", "   ", "\t", "\t\t", " \t ", "\u00a0", "\u3000", "\u2009", "\u0085", "\u2028", "\u180e",
          "\u200b", "\ufeff", "\r", " \r ", "\u000b", "\u000c", "\u001c", "    "]


def fragment(rng):
    kind = rng.random()
    if kind < 0.35:
        w = rng.choice(WORDS)
        return w.upper() if rng.random() < 0.1 else w.capitalize() if rng.random() < 0.2 else w
    if kind < 0.45:
        return rng.choice(WORDS) + rng.choice(CONTRACTIONS)
    for limit, pool in ((0.55, ACCENTED), (0.65, SCRIPTS), (0.72, EMOJI), (0.82, NUMBERS), (0.92, PUNCT),
                        (0.95, SPECIAL)):
        if kind < limit:
            return rng.choice(pool)
    return rng.choice(SPACES)


def line(rng):
    parts = []
    for _ in range(rng.randint(0, 24)):
        parts.append(fragment(rng))
        r = rng.random()
        parts.append("" if r < 0.1 else " " if r < 0.8 else rng.choice(SPACES))
    s = "".join(parts)
    if rng.random() < 0.1:
        s = rng.choice(SPACES) + s  # leading whitespace
    return s.replace("\n", " ")


def corpus(out, n, seed):
    rng = random.Random(seed)
    with open(out, "w", encoding="utf-8", newline="") as f:
        for _ in range(n):
            f.write(line(rng) + "\n")


def read_lines(path):
    with open(path, "rb") as f:
        data = f.read().decode("utf-8")
    lines = data.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def trainer(vocab, specials):
    return trainers.BpeTrainer(vocab_size=vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                               special_tokens=specials, show_progress=False)


def train(out_dir, corpus_path, vocab):
    lines = read_lines(corpus_path)

    # GPT-2: ByteLevel with its built-in regex; merges saved in the older "a b" spelling.
    gpt2 = Tokenizer(models.BPE())
    gpt2.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    gpt2.decoder = decoders.ByteLevel()
    gpt2.post_processor = processors.ByteLevel(trim_offsets=False)
    gpt2.train_from_iterator(lines, trainer(vocab, ["<|endoftext|>"]))
    spec = json.loads(gpt2.to_str())
    spec["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in spec["model"]["merges"]]
    with open(f"{out_dir}/gpt2.json", "w", encoding="utf-8") as f:
        json.dump(spec, f, ensure_ascii=False)

    # GPT-2 with add_prefix_space and non-special added tokens that strip whitespace.
    gp = Tokenizer(models.BPE())
    gp.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    gp.decoder = decoders.ByteLevel()
    gp.train_from_iterator(lines, trainer(vocab, ["<|endoftext|>"]))
    gp.add_tokens([AddedToken("[MASK]", lstrip=True), AddedToken("|>", rstrip=True, normalized=False),
                   AddedToken("café", single_word=True)])
    gp.save(f"{out_dir}/gpt2_prefix.json")

    # Llama-3: its Split regex, ByteLevel without regex, ignore_merges, BOS from the template.
    llama = Tokenizer(models.BPE(ignore_merges=True))
    llama.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    llama.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    llama.train_from_iterator(lines, trainer(vocab, specials))
    llama.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", llama.token_to_id("<|begin_of_text|>"))])])
    llama.save(f"{out_dir}/llama3.json")

    # Qwen2: NFC, its Split regex (digits one by one), ByteLevel without regex.
    qwen = Tokenizer(models.BPE())
    qwen.normalizer = normalizers.NFC()
    qwen.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    qwen.decoder = decoders.ByteLevel()
    qwen.train_from_iterator(lines, trainer(vocab, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]))
    qwen.save(f"{out_dir}/qwen2.json")


def encode(tok_path, corpus_path):
    tok = Tokenizer.from_file(tok_path)
    out = sys.stdout
    for enc in tok.encode_batch(read_lines(corpus_path), add_special_tokens=False):
        out.write("[" + ",".join(map(str, enc.ids)) + "]\n")


def bench(tok_path, corpus_path):
    tok = Tokenizer.from_file(tok_path)
    lines = read_lines(corpus_path)
    best = None
    for _ in range(3):
        start = time.perf_counter()
        n = sum(len(e.ids) for e in tok.encode_batch(lines, add_special_tokens=False))
        secs = time.perf_counter() - start
        best = secs if best is None else min(best, secs)
    print(n, best)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "corpus":
        corpus(args[0], int(args[1]), int(args[2]))
    elif cmd == "train":
        train(args[0], args[1], int(args[2]))
    elif cmd == "encode":
        encode(args[0], args[1])
    elif cmd == "bench":
        bench(args[0], args[1])
    else:
        sys.exit(f"unknown command {cmd}")
