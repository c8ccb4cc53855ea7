// The paths a command reads and writes, checked before any work starts, so that no run ends
// with its results lost or its own inputs overwritten: an output must not be a directory where
// a file is meant (or the reverse), nor one of the command's inputs, nor sit under a parent
// that cannot be created; an input must be a regular file, so a FIFO is refused instead of
// blocking the run forever and a directory is named as such. Every failure is a UsageError
// naming the option (or config key) and the path.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace longalign {

enum class OutputKind {
  file,          // one file, written beside itself and renamed into place
  stream,        // one file written by write_file_atomic: a device or FIFO is written in place
  dir,           // a directory the command creates or writes into
  replaced_dir,  // a directory the command replaces as a whole: it must hold none of the inputs
};

void check_output_path(const std::filesystem::path& out, OutputKind kind, const std::string& flag,
                       const std::vector<std::filesystem::path>& inputs = {});

// A file the command will read: it exists and is a regular file.
void check_input_file(const std::filesystem::path& in, const std::string& flag);

// A directory the command will read (a model, a folder of documents).
void check_input_dir(const std::filesystem::path& in, const std::string& flag);

}  // namespace longalign
