// `longalign tokenizer train`: a sentencepiece model for demos and tests.
#include "commands.hpp"
#include "longalign/core/log.hpp"
#include "longalign/data/tokenizer.hpp"

namespace longalign::cli {

void add_tokenizer(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("tokenizer", "Tokenizer utilities");
  cmd->require_subcommand(1);
  auto* train = cmd->add_subcommand("train", "Train a Llama-style sentencepiece BPE model on text or JSONL files");
  auto inputs = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  auto o = std::make_shared<data::TokenizerTrainOptions>();
  train->add_option("-i,--input", *inputs, "Text or JSONL files")->required()->check(CLI::ExistingFile);
  train->add_option("-o,--output", *out, "Output .model file")->required();
  train->add_option("--vocab-size", o->vocab_size, "Vocabulary size")->capture_default_str();
  train->add_option("--model-type", o->model_type, "bpe or unigram")->capture_default_str();
  train->footer("Example: longalign tokenizer train --input data.jsonl --vocab-size 4000 --output tok.model");
  train->callback([&action, inputs, out, o] {
    action = [inputs, out, o] {
      std::vector<std::filesystem::path> in(inputs->begin(), inputs->end());
      data::train_sentencepiece(in, *out, *o);
      log::info("wrote tokenizer " + *out);
      return 0;
    };
  });
}

}  // namespace longalign::cli
