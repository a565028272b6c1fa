// What a fuzz target asserts beyond the sanitizers: a property of the code under test that holds
// for every input (a round trip, a bound). A violation aborts, which libFuzzer reports as a crash,
// saving the input.
#pragma once

#include <cstdio>
#include <cstdlib>

#define TRL_FUZZ_CHECK(condition)                                                        \
  do {                                                                                   \
    if (!(condition)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (false)
