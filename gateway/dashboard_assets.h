#pragma once
// The dashboard's pages, scripts and styles (gateway/dashboard/), embedded at
// build time: the gateway serves them with no file or network access.
#include <optional>
#include <string_view>

namespace octo::gateway {

struct DashboardAsset {
  std::string_view content_type;
  std::string_view body;
};

// By file name ("app.js"); nullopt for any other name.
std::optional<DashboardAsset> FindDashboardAsset(std::string_view name);

}  // namespace octo::gateway
