// `longalign tokenizer train`: a sentencepiece model for demos and tests; `tokenizer encode`:
// stdin lines to id lists with any tokenizer the pipeline takes (parity checks, benchmarks).
#include <charconv>
#include <cstdio>

#include "commands.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"
#include "longalign/core/output_path.hpp"
#include "longalign/data/tokenize/tokenizer.hpp"
#include "options.hpp"

namespace longalign::cli {
namespace {

// Appends "[id,id,...]\n".
void append_ids(const std::vector<int32_t>& ids, std::string& out) {
  char buf[16];
  out += '[';
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out.append(buf, std::to_chars(buf, buf + sizeof buf, ids[i]).ptr);
  }
  out += "]\n";
}

// Encodes each stdin line (without its \n) and prints its ids; output is flushed in blocks.
int encode_stdin(const data::Tokenizer& tok) {
  std::string pending, out;
  std::vector<char> block(1 << 20);
  uint64_t line_no = 0;
  auto encode_line = [&](std::string_view line) {
    ++line_no;
    try {
      append_ids(tok.encode(line), out);
    } catch (const RuntimeError& e) {
      throw RuntimeError("stdin line " + std::to_string(line_no) + ": " + e.what());
    }
    if (out.size() >= (1 << 16)) std::fwrite(out.data(), 1, out.size(), stdout), out.clear();
  };
  size_t n;
  while ((n = std::fread(block.data(), 1, block.size(), stdin)) > 0) {
    pending.append(block.data(), n);
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
      encode_line(std::string_view(pending).substr(start, nl - start));
    pending.erase(0, start);
  }
  if (!pending.empty()) encode_line(pending);
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (std::fflush(stdout) != 0) throw RuntimeError("cannot write to stdout");
  return 0;
}

}  // namespace

void add_tokenizer(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("tokenizer", "Tokenizer utilities");
  cmd->require_subcommand(1);
  auto* train = cmd->add_subcommand("train", "Train a Llama-style sentencepiece BPE model on text or JSONL files");
  auto inputs = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  auto o = std::make_shared<data::TokenizerTrainOptions>();
  train->add_option("-i,--input", *inputs, "Text or JSONL files")->required();
  train->add_option("-o,--output", *out, "Output .model file")->required();
  // 300: the 256 byte pieces, the special and the template marker pieces need room.
  train->add_option("--vocab-size", o->vocab_size, "Vocabulary size")->capture_default_str()->check(int_range(300, 1000000));
  train->add_option("--model-type", o->model_type, "bpe or unigram")->capture_default_str()->check(one_of({"bpe", "unigram"}));
  train->footer("Example: longalign tokenizer train --input data.jsonl --vocab-size 4000 --output tok.model");
  train->callback([&action, inputs, out, o] {
    action = [inputs, out, o] {
      std::vector<std::filesystem::path> in(inputs->begin(), inputs->end());
      for (const auto& p : in) check_input_file(p, "--input");
      check_output_path(*out, OutputKind::file, "--output", in);
      data::train_sentencepiece(in, *out, *o);
      log::info("wrote tokenizer " + *out);
      return 0;
    };
  });

  auto* encode = cmd->add_subcommand(
      "encode", "Print the ids of each stdin line as a JSON list, one line each (no BOS/EOS)");
  auto tok_path = std::make_shared<std::string>();
  encode->add_option("-t,--tokenizer", *tok_path, "tokenizer.json (byte-level BPE) or sentencepiece .model")
      ->required();
  encode->footer("Example: printf 'Hello world\\n' | longalign tokenizer encode -t tokenizer.json");
  encode->callback([&action, tok_path] {
    action = [tok_path] {
      check_input_file(*tok_path, "--tokenizer");
      return encode_stdin(*data::load_tokenizer(*tok_path));
    };
  });
}

}  // namespace longalign::cli
