#pragma once
// octo-admin's --token_file flag, read before the command grammar (which
// knows nothing of it, so that every command, the operator ones included,
// takes it the same way).
#include <string>
#include <vector>

namespace octo::admin {

// Takes --token_file=PATH or --token_file PATH ('-' for '_' too, as for the
// other flags) out of `args`, wherever it stands; the last one wins. Without
// the flag: `fallback` ($OCTO_ADMIN_TOKEN_FILE). The flag without a value
// gives "", which ReadTokenFile refuses with a message naming the flag.
std::string TakeTokenFileFlag(std::vector<std::string>& args, std::string fallback);

}  // namespace octo::admin
