// Byte-level BPE tokenizers from Hugging Face tokenizer.json files (Llama-3, Qwen2, GPT-2 and
// their kin), encoding exactly as the `tokenizers` library does, without Python or Rust.
#pragma once
#include <filesystem>
#include <memory>

#include "longalign/data/tokenize/tokenizer.hpp"

namespace longalign::data {

// Supported: model BPE (vocab, merges as "a b" or [a, b], ignore_merges, unk/byte_fallback);
// normalizers NFC/NFD/NFKC/NFKD (alone or in a Sequence); pre-tokenizers Split (Regex or String
// pattern, any behavior, invert) and ByteLevel (add_prefix_space, use_regex), alone or in a
// Sequence; added tokens (special or not, lstrip/rstrip/single_word/normalized).
// BOS is the special token the post_processor template puts before the text (-1 when none); EOS
// the one it puts after it, else the first added token among <|end_of_text|>, <|endoftext|>,
// <|im_end|>, </s>.
// Missing file -> UsageError; anything malformed or unsupported -> RuntimeError naming the file
// and the key.
std::unique_ptr<Tokenizer> load_bpe_tokenizer(const std::filesystem::path& tokenizer_json);

}  // namespace longalign::data
