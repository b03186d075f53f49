#pragma once
// The qoracle subcommands. Each returns the process exit status.
#include <string>
#include <vector>

namespace qoracle::cli {

int check_command(const std::vector<std::string>& args);
int inspect_command(const std::vector<std::string>& args);
int generate_command(const std::vector<std::string>& args);
int deviations_command(const std::vector<std::string>& args);
int merge_quality_command(const std::vector<std::string>& args);
int aqlm_quantize_command(const std::vector<std::string>& args);
int eetq_decode_command(const std::vector<std::string>& args);
int seal_command(const std::vector<std::string>& args);

}  // namespace qoracle::cli
