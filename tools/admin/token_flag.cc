#include "tools/admin/token_flag.h"

#include <algorithm>
#include <iterator>
#include <string_view>

namespace octo::admin {

std::string TakeTokenFileFlag(std::vector<std::string>& args, std::string fallback) {
  constexpr std::string_view kEquals = "--token-file=";
  std::string path = std::move(fallback);
  for (auto it = args.begin(); it != args.end();) {
    std::string name = it->substr(0, it->find('='));
    std::replace(name.begin(), name.end(), '_', '-');
    if (name != "--token-file") {
      ++it;
    } else if (it->size() > name.size()) {  // --token_file=PATH
      path = it->substr(kEquals.size());
      it = args.erase(it);
    } else {  // --token_file PATH
      const bool has_value = std::next(it) != args.end();
      path = has_value ? *std::next(it) : std::string();
      it = args.erase(it, std::next(it, has_value ? 2 : 1));
    }
  }
  return path;
}

}  // namespace octo::admin
