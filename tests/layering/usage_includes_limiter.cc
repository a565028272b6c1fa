// Built only by the test layering/a_wrong_include_does_not_compile (tests/CMakeLists.txt), which
// expects it to fail: trl_usage does not link trl_limits, so a target that links trl_usage alone
// must not find the limiter's headers.
#include "limits/limiter.h"
