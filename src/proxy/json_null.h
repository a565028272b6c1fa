// Whether a JSON value is `null`, read with simdjson On-Demand (request fields and usage
// objects treat a null as absent).
#pragma once

#include <simdjson.h>

namespace trl {

inline bool IsNull(simdjson::ondemand::value& value) {
  bool null = false;
  return value.is_null().get(null) == simdjson::SUCCESS && null;
}

}  // namespace trl
