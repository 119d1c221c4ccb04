#pragma once
// A fault that the fault-injection tests plant in a real octo-delivery: a
// delivery whose send crashes the process, so that the tests can prove such
// a delivery is quarantined instead of being claimed forever.
//
// Off unless the process was started with OCTO_FAULT_CRASH_ON_URL set to a
// non-empty string; then sending to a URL that contains that string aborts
// the process (SIGABRT) just before the request is handed to libcurl. The
// variable is read once. Nothing a client sends can switch it on: only the
// environment of the process can.
#include <string_view>

namespace octo::delivery {

// Aborts the process when fault injection is on and `url` contains the
// configured string; otherwise does nothing (one branch on a cached flag).
void MaybeCrashBeforeSend(std::string_view url);

}  // namespace octo::delivery
